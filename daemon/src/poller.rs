//! One task per mailbox: connect (implicit TLS, STARTTLS or plain), select
//! the folder, store every mail above the watermark in bounded batches, mark
//! each batch processed only after the writer committed it, then wait for
//! new mail with IDLE (or by polling) and start again. Before IDLE it asks
//! once more for mail above the last fetched UID (`UID SEARCH`), and it
//! looks at what the server announced as IDLE began: mail that arrived
//! during the sync is fetched at once, not at the next mail or the IDLE
//! timeout. A lost connection is retried with exponential backoff; a
//! changed UIDVALIDITY starts the folder over, and deduplication keeps that
//! from storing anything twice.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_imap::Session;
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::config::{IngestConfig, MailboxConfig, OAuth2Login, Processed, TlsMode};
use crate::error::{Error, Result};
use crate::ingest::{self, Pending, Stats, Watermark, Writer};
use crate::metrics::{self, health, status::Report};
use crate::oauth2::{AccessToken, Tokens};
use crate::shutdown::Shutdown;
use crate::store::{MailboxClaim, Store};

/// The keyword set on processed mail in `processed = "flag"` mode.
pub const PROCESSED_KEYWORD: &str = "$HelpdeskProcessed";
/// Upper bound of one fetched batch in bytes, besides `ingest.batch_size`:
/// three batches are under way at once (fetched, parsed, committing), each
/// alive as raw bytes plus the text read from them, so this keeps the
/// daemon near 100 MB whatever the mail sizes. A single larger mail (up to
/// `ingest.max_message_bytes`) is a batch of its own and alone in flight.
const MAX_BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// A mail larger than this (alone in its batch, being larger than
/// `MAX_BATCH_BYTES`) is fetched in pieces of this size.
const FETCH_PIECE: u64 = 4 * 1024 * 1024;
/// What is fetched and kept of a mail larger than `ingest.max_message_bytes`.
const TOO_LARGE_KEPT: usize = 1024 * 1024;
/// Committed mails marked processed per IMAP command: a backlog is marked
/// in about `MARK_COMMANDS` commands, of a size within these bounds. A
/// command costs the server a part that grows with the folders (Dovecot
/// updates their indexes) plus a part per mail. Small groups are marked
/// while the writer commits the next batch, so they seldom hold the fetches
/// up and leave little to mark after the last commit; a long backlog needs
/// larger ones, or the fixed parts add up to more than the mails.
const MARK_GROUP: std::ops::RangeInclusive<usize> = 400..=5000;
const MARK_COMMANDS: usize = 25;
const BACKOFF_START: Duration = Duration::from_secs(1);
/// How often a daemon asks for a mailbox another daemon polls.
const CLAIM_RETRY: Duration = Duration::from_secs(5);

/// Whether a daemon that polls `held` of `mailboxes` mailboxes holds its
/// share already, with `daemons` daemons present: it then lets the others
/// claim first ([`CLAIM_RETRY`]), so the mailboxes spread over the daemons
/// however far apart they started, and takes what is left after that.
fn at_share(held: usize, mailboxes: usize, daemons: usize) -> bool {
    held >= mailboxes.div_ceil(daemons.max(1))
}
/// The pollers of one daemon claim this far apart, in their order.
const SHARE_STEP: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long a poller waits to record its state for `helpdeskd status`
/// before it goes on without.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry interval after the server refused the login or the folder: an
/// admin has to act, and a server should not see a login a second.
const REFUSED_BACKOFF: Duration = Duration::from_secs(600);
/// How often a poller whose OAuth2 account is refused asks the token cache
/// again: the cache answers at once until the provider is due again or the
/// refresh token file changed, so a new login is picked up within this.
const TOKEN_REFUSED_RECHECK: Duration = Duration::from_secs(10);

pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}

pub type ImapSession = Session<Box<dyn ImapIo>>;

/// A fetched batch being parsed.
struct Parsing {
    uids: Vec<u32>,
    watermark: Watermark,
    parsed: tokio::task::JoinHandle<Result<Vec<ingest::Incoming>>>,
    /// When its mails were fetched: the ingest latency counts from here.
    fetched_at: Instant,
}

/// A batch handed to the writer: its UIDs, when it was fetched, its answer.
type Submitted = (Vec<u32>, Instant, Pending);

pub struct Poller {
    pub mailbox: MailboxConfig,
    /// The mailbox's place in the configuration: on a shared database the
    /// pollers of a daemon claim one after the other (see [`at_share`]).
    pub position: usize,
    /// How many mailboxes the daemon polls.
    pub of: usize,
    pub ingest: IngestConfig,
    pub store: Store,
    pub writer: Writer,
    pub clock: Arc<dyn Clock>,
    pub tokens: Tokens,
}

impl Poller {
    /// The daemon's loop: runs until shutdown, reconnecting with backoff.
    pub async fn run(self, mut shutdown: Shutdown) {
        let health = &metrics::get().health;
        metrics::get().mailbox_known(&self.mailbox.name);
        health.poller(&self.mailbox.name, health::Poller::Starting);
        // One daemon polls a mailbox at a time; the others wait for it to
        // stop or die (its claim ends with its database connection).
        loop {
            let Some(claim) = self.claim(&mut shutdown).await else {
                return;
            };
            tokio::select! {
                () = self.poll(&mut shutdown) => {
                    self.closed().await;
                    claim.release().await;
                    return;
                }
                () = claim.lost() => {
                    self.closed().await;
                    warn!(mailbox = self.mailbox.name, "lost the claim on the mailbox (its database connection ended); claiming it again");
                }
            }
        }
    }

    fn stagger(&self) -> Duration {
        SHARE_STEP * u32::try_from(self.position).unwrap_or(u32::MAX).min(8)
    }

    /// How long to wait before asking for the mailbox: nothing on SQLite or
    /// while this daemon holds less than its share ([`at_share`]) with
    /// `held` mailboxes.
    async fn turn(&self, held: usize) -> Duration {
        if !self.store.shared() {
            return Duration::ZERO;
        }
        let daemons = self.store.daemons_present().await.unwrap_or_else(|e| {
            debug!(mailbox = self.mailbox.name, error = %e, "cannot count the daemons; claiming as if alone");
            1
        });
        if at_share(held, self.of, daemons) {
            CLAIM_RETRY
        } else {
            Duration::ZERO
        }
    }

    /// Waits for this daemon's claim on the mailbox; `None` at shutdown.
    async fn claim(&self, shutdown: &mut Shutdown) -> Option<MailboxClaim> {
        let mut waiting = false;
        if self.store.shared() && shutdown.sleep(self.stagger()).await {
            return None;
        }
        loop {
            if shutdown
                .sleep(self.turn(self.store.claims_held()).await)
                .await
            {
                return None;
            }
            match self.store.claim_mailbox(&self.mailbox.name).await {
                Ok(Some(claim)) => {
                    if waiting {
                        info!(mailbox = self.mailbox.name, "took the mailbox over");
                        metrics::get()
                            .health
                            .poller(&self.mailbox.name, health::Poller::Starting);
                    }
                    return Some(claim);
                }
                Ok(None) if !waiting => {
                    info!(mailbox = self.mailbox.name, retry_in = ?CLAIM_RETRY, "another daemon polls this mailbox; waiting for it");
                    metrics::get()
                        .health
                        .poller(&self.mailbox.name, health::Poller::Standby);
                    waiting = true;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(mailbox = self.mailbox.name, error = %e, "cannot claim the mailbox")
                }
            }
            if shutdown.sleep(CLAIM_RETRY).await {
                return None;
            }
        }
    }

    /// Logged in. `/readyz` counts the poller as connected only once a
    /// sync went through, so a session that logs in and fails at once
    /// does not restart its outage every time.
    async fn connected(&self) {
        metrics::get().imap_connected(&self.mailbox.name);
        self.report(Report::Connected).await;
    }

    /// A session ended in `e` (the poller retries it).
    async fn failed(&self, e: &Error) {
        let m = metrics::get();
        let text = e.to_string();
        m.imap_error(&self.mailbox.name);
        m.health.poller_failed(
            &self.mailbox.name,
            text.clone(),
            matches!(e, Error::ImapRefused { .. }),
            Instant::now(),
        );
        self.report(Report::Error(&text)).await;
    }

    async fn closed(&self) {
        metrics::get().imap_closed(&self.mailbox.name);
        self.report(Report::Closed).await;
    }

    /// Writes the mailbox's row of `helpdeskd status`; a failure costs the
    /// row, never the poll.
    async fn report(&self, report: Report<'_>) {
        let daemon = crate::jobs::owner();
        let now = self.clock.now();
        let write = metrics::status::record(&self.store, &self.mailbox.name, &daemon, report, now);
        match tokio::time::timeout(STATUS_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(mailbox = self.mailbox.name, error = %e, "mailbox status not recorded")
            }
            Err(_) => debug!(
                mailbox = self.mailbox.name,
                "mailbox status not recorded: the database did not answer"
            ),
        }
    }

    async fn poll(&self, shutdown: &mut Shutdown) {
        let mut delay = BACKOFF_START;
        // A refusal is logged when it first comes and when its text changes,
        // not at every retry.
        let mut refused: Option<String> = None;
        while !shutdown.is_set() {
            match self.session_loop(shutdown).await {
                Ok(_) => {
                    delay = BACKOFF_START;
                    refused = None;
                }
                Err(e @ Error::OAuth2Refused { .. }) => {
                    // The token cache logged the refusal once, with the reason.
                    debug!(mailbox = self.mailbox.name, error = %e, "no OAuth2 token; mail waits on the server");
                    refused = None;
                    if shutdown.sleep(TOKEN_REFUSED_RECHECK).await {
                        return;
                    }
                }
                Err(e @ Error::ImapRefused { .. }) => {
                    self.failed(&e).await;
                    let text = e.to_string();
                    if refused.as_deref() != Some(text.as_str()) {
                        error!(mailbox = self.mailbox.name, error = %text, retry_in = ?REFUSED_BACKOFF, "mailbox refused; check the configuration (helpdeskd check)");
                        refused = Some(text);
                    }
                    if shutdown.sleep(REFUSED_BACKOFF).await {
                        return;
                    }
                }
                Err(e) => {
                    self.failed(&e).await;
                    refused = None;
                    warn!(mailbox = self.mailbox.name, error = %e, retry_in = ?delay, "mailbox connection failed");
                    if shutdown.sleep(delay).await {
                        return;
                    }
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// One full pass for `run --once`: everything above the watermark, then
    /// return; nothing when another daemon polls the mailbox.
    pub async fn run_once(&self) -> Result<Stats> {
        if self.store.shared() {
            tokio::time::sleep(self.stagger()).await;
            // A pass lets its mailbox go when it ends: what counts is how
            // many this run took, or a fast daemon would take them all.
            tokio::time::sleep(self.turn(self.store.claims_taken()).await).await;
        }
        let Some(claim) = self.store.claim_mailbox(&self.mailbox.name).await? else {
            info!(
                mailbox = self.mailbox.name,
                "another daemon polls this mailbox; skipped"
            );
            return Ok(Stats::default());
        };
        let r = self.run_once_claimed().await;
        claim.release().await;
        r
    }

    async fn run_once_claimed(&self) -> Result<Stats> {
        match self.pass().await {
            // A batch the database refused whole is stored mail by mail when
            // it comes again: fetch it again at once rather than next cycle.
            Err(e)
                if !matches!(
                    e,
                    Error::Imap { .. }
                        | Error::ImapRefused { .. }
                        | Error::OAuth2 { .. }
                        | Error::OAuth2Refused { .. }
                        | Error::Tls(_)
                        | Error::Io { .. }
                ) =>
            {
                warn!(mailbox = self.mailbox.name, error = %e, "a batch was not stored; fetching it again");
                self.pass().await
            }
            r => r,
        }
    }

    async fn pass(&self) -> Result<Stats> {
        let r = async {
            let mut session = connect(&self.mailbox, &self.tokens).await?;
            self.connected().await;
            let (stats, _) = self.sync(&mut session).await?;
            let _ = session.logout().await;
            Ok(stats)
        }
        .await;
        match &r {
            Ok(_) => self.closed().await,
            Err(e) => self.failed(e).await,
        }
        r
    }

    async fn session_loop(&self, shutdown: &mut Shutdown) -> Result<Stats> {
        let session = connect(&self.mailbox, &self.tokens).await?;
        self.connected().await;
        // While connected, the row of `helpdeskd status` is refreshed every
        // minute, so a daemon that died without closing shows as silent.
        let heartbeat = async {
            loop {
                tokio::time::sleep(metrics::status::HEARTBEAT).await;
                self.report(Report::Alive).await;
            }
        };
        tokio::select! {
            r = self.polling(session, shutdown) => r,
            () = heartbeat => unreachable!("the heartbeat loops until the session ends"),
        }
    }

    async fn polling(&self, mut session: ImapSession, shutdown: &mut Shutdown) -> Result<Stats> {
        let idle = self.mailbox.idle && {
            let caps = session.capabilities().await.map_err(|e| self.err(e))?;
            caps.has_str("IDLE")
        };
        info!(mailbox = self.mailbox.name, idle, "connected");
        let mut total = Stats::default();
        // The UID a sync ended at when the poller last went straight into
        // another sync instead of waiting. Once per UID: if the next sync
        // ends there again, the mail above it cannot be fetched (or the
        // server announces mail that is not there), and the poller waits
        // as usual instead of spinning.
        let mut rechecked_at: Option<u32> = None;
        loop {
            let (stats, last) = self.sync(&mut session).await?;
            metrics::get()
                .health
                .poller(&self.mailbox.name, health::Poller::Connected);
            total.merge(stats);
            if shutdown.is_set() {
                let _ = session.logout().await;
                return Ok(total);
            }
            if idle {
                let recheck = rechecked_at != Some(last);
                // Mail that arrived after the sync asked for new UIDs was
                // announced (EXISTS) in the answers to its later commands,
                // which the client puts aside (and nobody reads); IDLE would
                // then wait for the next mail or the timeout. Ask once more.
                while session.unsolicited_responses.try_recv().is_ok() {}
                if self.newer_than(&mut session, last).await? {
                    if recheck {
                        debug!(
                            mailbox = self.mailbox.name,
                            last, "new mail arrived during the sync"
                        );
                        rechecked_at = Some(last);
                        continue;
                    }
                    debug!(
                        mailbox = self.mailbox.name,
                        last, "mail above the last fetched UID could not be fetched; waiting"
                    );
                }
                let announced = session.unsolicited_responses.clone();
                let mut handle = session.idle();
                handle.init().await.map_err(|e| self.err(e))?;
                // Mail of the last moment may be announced before the
                // server's continuation, which `init` puts aside as well.
                if new_mail_announced(|| announced.try_recv().ok()) && recheck {
                    debug!(
                        mailbox = self.mailbox.name,
                        "new mail announced as IDLE began"
                    );
                    rechecked_at = Some(last);
                    session = handle.done().await.map_err(|e| self.err(e))?;
                    continue;
                }
                let (wait, _stop) = handle.wait_with_timeout(self.mailbox.poll_interval);
                tokio::select! {
                    r = wait => { r.map_err(|e| self.err(e))?; }
                    _ = shutdown.wait() => return Ok(total),
                }
                session = handle.done().await.map_err(|e| self.err(e))?;
            } else if shutdown.sleep(self.mailbox.poll_interval).await {
                let _ = session.logout().await;
                return Ok(total);
            }
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::imap(&self.mailbox.name, e)
    }

    /// Whether the selected folder holds mail above UID `last`.
    async fn newer_than(&self, session: &mut ImapSession, last: u32) -> Result<bool> {
        let query = format!("UID {}:*", last.saturating_add(1));
        let found = session.uid_search(&query).await.map_err(|e| self.err(e))?;
        // `n:*` always includes the highest UID, even when it is below n.
        Ok(found.into_iter().any(|u| u > last))
    }

    /// Selects the folder and stores everything above the watermark;
    /// returns the figures and the highest UID fetched (or the watermark).
    async fn sync(&self, session: &mut ImapSession) -> Result<(Stats, u32)> {
        let name = &self.mailbox.name;
        let selected = session.select(&self.mailbox.folder).await.map_err(|e| {
            let text = format!("select {}: {e}", self.mailbox.folder);
            if refused(&e) {
                Error::imap_refused(name, text)
            } else {
                self.err(text)
            }
        })?;
        let validity = selected.uid_validity.unwrap_or(0);
        let mut last = match self.store.watermark(name).await? {
            Some((v, last)) if v == validity => last,
            Some((v, _)) => {
                warn!(
                    mailbox = name,
                    old = v,
                    new = validity,
                    "UIDVALIDITY changed: reading the folder again; stored mails are deduplicated"
                );
                0
            }
            None => 0,
        };
        self.mark_leftovers(session, last).await?;

        let sizes = self.sizes_above(session, last).await?;
        test_pause_before_idle(name).await;
        if sizes.is_empty() {
            return Ok((Stats::default(), last));
        }
        debug!(mailbox = name, backlog = sizes.len(), "fetching");
        let mut stats = Stats::default();
        // Three batches are under way at once: one is fetched while the one
        // before it is parsed and the one before that is committed.
        let mut parsing: Option<Parsing> = None;
        let mut pending: Option<Submitted> = None;
        let mut committed: Vec<u32> = Vec::new();
        let group = mark_group(sizes.len());
        let mut after_large = false;
        for chunk in chunks(&sizes, self.ingest.batch_size, MAX_BATCH_BYTES) {
            let uids: Vec<u32> = chunk.iter().map(|(u, _)| *u).collect();
            // A mail larger than a batch is alone in flight: the batches
            // before it are committed before it is fetched, and it is
            // committed before the next one is fetched, so the bytes in
            // flight stay about one batch's, or that one mail's.
            let large = chunk.iter().map(|(_, size)| size).sum::<u64>() > MAX_BATCH_BYTES;
            if large || after_large {
                self.drain(&mut parsing, &mut pending, &mut committed, &mut stats)
                    .await?;
            }
            after_large = large;
            let max = self.ingest.max_message_bytes;
            let too_large = match chunk {
                [(_, size)] => usize::try_from(*size).map_or(true, |s| s > max),
                _ => false,
            };
            let raws = match chunk {
                // Only its head is fetched: it is quarantined whatever it says.
                [(uid, _)] if too_large => {
                    self.fetch_in_pieces(session, *uid, TOO_LARGE_KEPT as u64, TOO_LARGE_KEPT)
                        .await?
                }
                [(uid, size)] if *size > FETCH_PIECE => {
                    self.fetch_in_pieces(session, *uid, *size, max.saturating_add(1))
                        .await?
                }
                _ => self.fetch(session, &uids).await?,
            };
            let fetched_at = Instant::now();
            metrics::get().fetched(name, raws.len());
            stats.bytes += raws.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
            let fetched: Vec<u32> = raws.iter().filter_map(|(u, _)| *u).collect();
            if fetched.len() < uids.len() {
                // Expunged by another client meanwhile, or a connection that
                // ended mid-answer: only a live connection lets us go on.
                session
                    .noop()
                    .await
                    .map_err(|e| self.err(format!("connection lost during fetch: {e}")))?;
            }
            if fetched.is_empty() {
                continue;
            }
            // The watermark follows what was fetched, never what was asked for.
            let top = fetched.iter().copied().max().unwrap_or(last).max(last);
            let watermark = Watermark {
                mailbox: name.clone(),
                uid_validity: validity,
                last_uid: top,
            };
            let parsed = if let ([(_, size)], true) = (chunk, too_large) {
                let (mailbox, size) = (name.clone(), *size);
                tokio::spawn(async move {
                    Ok(raws
                        .into_iter()
                        .map(|(uid, raw)| ingest::Incoming {
                            mailbox: mailbox.clone(),
                            uid,
                            parsed: ingest::parse::too_large(&raw, size, max),
                            raw,
                            oversize: Some(ingest::Oversize { size, limit: max }),
                        })
                        .collect())
                })
            } else {
                tokio::spawn(ingest::parse_batch(name.clone(), raws, max))
            };
            if let Some(previous) = parsing.replace(Parsing {
                uids: fetched,
                watermark,
                parsed,
                fetched_at,
            }) {
                self.submit(previous, &mut pending, &mut committed, &mut stats)
                    .await?;
            }
            last = top;
            // Committed mail is marked in groups while the writer works; the
            // watermark and `mark_leftovers` cover a crash in between.
            if committed.len() >= group {
                self.mark(session, &committed).await?;
                committed.clear();
            }
        }
        self.drain(&mut parsing, &mut pending, &mut committed, &mut stats)
            .await?;
        for part in committed.chunks(group) {
            self.mark(session, part).await?;
        }
        info!(
            mailbox = name,
            stored = stats.stored,
            duplicates = stats.duplicates,
            quarantined = stats.quarantined,
            "mailbox synced"
        );
        if stats.mails() > 0 {
            self.report(Report::Mail).await;
        }
        Ok((stats, last))
    }

    /// Submits the batch being parsed and waits until every submitted batch
    /// has committed.
    async fn drain(
        &self,
        parsing: &mut Option<Parsing>,
        pending: &mut Option<Submitted>,
        committed: &mut Vec<u32>,
        stats: &mut Stats,
    ) -> Result<()> {
        if let Some(previous) = parsing.take() {
            self.submit(previous, pending, committed, stats).await?;
        }
        if let Some((done, fetched_at, p)) = pending.take() {
            self.settle(p, fetched_at, stats).await?;
            committed.extend(done);
        }
        Ok(())
    }

    /// Hands a parsed batch to the writer once the batch before it has
    /// committed, so the watermark never passes a batch that is not stored.
    async fn submit(
        &self,
        batch: Parsing,
        pending: &mut Option<Submitted>,
        committed: &mut Vec<u32>,
        stats: &mut Stats,
    ) -> Result<()> {
        let parsed = batch
            .parsed
            .await
            .map_err(|e| Error::Invalid(format!("parser task failed: {e}")))??;
        if let Some((done, fetched_at, p)) = pending.take() {
            self.settle(p, fetched_at, stats).await?;
            committed.extend(done);
        }
        *pending = Some((
            batch.uids,
            batch.fetched_at,
            self.writer.submit(parsed, Some(batch.watermark)).await?,
        ));
        Ok(())
    }

    /// Waits for a submitted batch's commit and counts its outcomes.
    async fn settle(&self, p: Pending, fetched_at: Instant, stats: &mut Stats) -> Result<()> {
        let (outcomes, at) = p.committed().await?;
        let mut batch = Stats::default();
        batch.add(&outcomes);
        let outcomes = metrics::Outcomes {
            stored: batch.stored,
            duplicates: batch.duplicates,
            quarantined: batch.quarantined,
        };
        metrics::get().committed(
            &self.mailbox.name,
            outcomes,
            at.saturating_duration_since(fetched_at),
        );
        stats.merge(batch);
        Ok(())
    }

    /// UIDs and sizes of the mails above `last`, ascending. Read one
    /// response at a time: the client keeps a buffer per response, which for
    /// a 100,000-mail backlog would otherwise be hundreds of megabytes.
    async fn sizes_above(&self, session: &mut ImapSession, last: u32) -> Result<Vec<(u32, u64)>> {
        let query = format!("{}:*", last.saturating_add(1));
        let mut stream = session
            .uid_fetch(&query, "(UID RFC822.SIZE)")
            .await
            .map_err(|e| self.err(e))?;
        let mut out: Vec<(u32, u64)> = Vec::new();
        while let Some(f) = stream.try_next().await.map_err(|e| self.err(e))? {
            // `n:*` always includes the highest UID, even when it is below n.
            if let Some(uid) = f.uid.filter(|u| *u > last) {
                out.push((uid, u64::from(f.size.unwrap_or(0))));
            }
        }
        out.sort_unstable();
        out.dedup_by_key(|(u, _)| *u);
        Ok(out)
    }

    async fn fetch(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
    ) -> Result<Vec<(Option<u32>, Vec<u8>)>> {
        let mut stream = session
            .uid_fetch(uid_set(uids), "(UID BODY.PEEK[])")
            .await
            .map_err(|e| self.err(e))?;
        let mut out: Vec<(Option<u32>, Vec<u8>)> = Vec::with_capacity(uids.len());
        while let Some(f) = stream.try_next().await.map_err(|e| self.err(e))? {
            if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                out.push((Some(uid), body.to_vec()));
            }
        }
        out.sort_by_key(|(u, _)| *u);
        Ok(out)
    }

    /// Fetches one large mail in pieces of [`FETCH_PIECE`] bytes into one
    /// buffer of its size: fetched whole, it would be held twice, by the
    /// client's response buffer and by its copy. At most `limit` bytes are
    /// fetched: a mail that grows past `ingest.max_message_bytes` (the size
    /// is the server's word) is quarantined from what was read.
    async fn fetch_in_pieces(
        &self,
        session: &mut ImapSession,
        uid: u32,
        size: u64,
        limit: usize,
    ) -> Result<Vec<(Option<u32>, Vec<u8>)>> {
        // The size is a hint for the buffer, not a limit.
        let hint = usize::try_from(size.min(1 << 30)).unwrap_or(0).min(limit);
        let mut raw: Vec<u8> = Vec::with_capacity(hint);
        let mut found = false;
        while raw.len() < limit {
            let offset = u32::try_from(raw.len())
                .map_err(|_| self.err(format!("mail {uid} is larger than 4 GB")))?;
            let want = FETCH_PIECE.min((limit - raw.len()) as u64);
            let mut stream = session
                .uid_fetch(
                    uid.to_string(),
                    format!("(UID BODY.PEEK[]<{offset}.{want}>)"),
                )
                .await
                .map_err(|e| self.err(e))?;
            let mut piece_len: Option<usize> = None;
            while let Some(f) = stream.try_next().await.map_err(|e| self.err(e))? {
                if f.uid == Some(uid)
                    && piece_len.is_none()
                    && let Some(body) = f.body()
                {
                    raw.extend_from_slice(body);
                    piece_len = Some(body.len());
                }
            }
            match piece_len {
                // Expunged meanwhile (or the connection ended): as `fetch`.
                None => break,
                Some(n) => {
                    found = true;
                    if (n as u64) < want {
                        break;
                    }
                }
            }
        }
        Ok(if found {
            vec![(Some(uid), raw)]
        } else {
            Vec::new()
        })
    }

    /// Marks committed mails processed: the flag, or a move to the processed folder.
    async fn mark(&self, session: &mut ImapSession, uids: &[u32]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        match self.mailbox.processed {
            Processed::Flag => {
                let stream = session
                    .uid_store(&set, format!("+FLAGS.SILENT (\\Seen {PROCESSED_KEYWORD})"))
                    .await
                    .map_err(|e| self.err(e))?;
                let _: Vec<_> = stream.try_collect().await.map_err(|e| self.err(e))?;
            }
            Processed::Move => {
                let target = &self.mailbox.processed_folder;
                if let Err(first) = session.uid_mv(&set, target).await {
                    // The folder may not exist yet: create it and try once more.
                    debug!(mailbox = self.mailbox.name, error = %first, "move failed; creating {target}");
                    let _ = session.create(target).await;
                    session
                        .uid_mv(&set, target)
                        .await
                        .map_err(|e| self.err(format!("move to {target}: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// After a crash between commit and marking, mails at or below the
    /// watermark are stored but still unmarked: mark them now.
    async fn mark_leftovers(&self, session: &mut ImapSession, last: u32) -> Result<()> {
        if last == 0 {
            return Ok(());
        }
        let query = match self.mailbox.processed {
            Processed::Flag => format!("UID 1:{last} UNKEYWORD {PROCESSED_KEYWORD}"),
            Processed::Move => format!("UID 1:{last}"),
        };
        let found = session.uid_search(&query).await.map_err(|e| self.err(e))?;
        let uids: Vec<u32> = found
            .into_iter()
            .filter(|u| *u <= last)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !uids.is_empty() {
            info!(
                mailbox = self.mailbox.name,
                count = uids.len(),
                "marking mails stored before an interruption"
            );
            for chunk in uids.chunks(1000) {
                self.mark(session, chunk).await?;
            }
        }
        Ok(())
    }
}

/// Whether the server announced new mail (EXISTS or RECENT) among the
/// responses put aside; takes them all.
fn new_mail_announced(mut next: impl FnMut() -> Option<UnsolicitedResponse>) -> bool {
    let mut any = false;
    while let Some(r) = next() {
        any |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    any
}

/// Test knob (hidden, for the end-to-end tests only):
/// `HELPDESK_TEST_PAUSE_BEFORE_IDLE_MS=N` makes the first sync of the
/// process wait N ms right after it asked the server for new UIDs, so that
/// a test can deliver a mail in the window between that question and IDLE.
/// Read once; the pause is logged at debug level ("test pause before IDLE").
async fn test_pause_before_idle(mailbox: &str) {
    static PAUSE: OnceLock<Option<Duration>> = OnceLock::new();
    static PAUSED: AtomicBool = AtomicBool::new(false);
    let pause = PAUSE.get_or_init(|| {
        std::env::var("HELPDESK_TEST_PAUSE_BEFORE_IDLE_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    });
    if let Some(pause) = *pause
        && !PAUSED.swap(true, Ordering::Relaxed)
    {
        debug!(mailbox, ?pause, "test pause before IDLE");
        tokio::time::sleep(pause).await;
        debug!(mailbox, "test pause before IDLE over");
    }
}

/// Mails marked per command for a backlog of `backlog` mails.
fn mark_group(backlog: usize) -> usize {
    (backlog / MARK_COMMANDS).clamp(*MARK_GROUP.start(), *MARK_GROUP.end())
}

/// Connects and logs in as the mailbox's `[mailbox.imap]` says: with the
/// password, or with XOAUTH2 and a token of `tokens`. A token the server
/// refuses is replaced by a fresh one once.
pub async fn connect(cfg: &MailboxConfig, tokens: &Tokens) -> Result<ImapSession> {
    let Some(login) = &cfg.imap.oauth2 else {
        return password_login(open(cfg).await?, cfg).await;
    };
    let token = tokens.token(&login.account).await?;
    match xoauth2_login(open(cfg).await?, cfg, login, &token).await {
        Err(Error::ImapRefused { message, .. }) => {
            info!(mailbox = cfg.name, account = login.account, error = %message, "the server refused the access token; asking for a fresh one");
            let token = tokens.renew(&login.account, &token.secret).await?;
            xoauth2_login(open(cfg).await?, cfg, login, &token).await
        }
        r => r,
    }
}

/// A connection to the mailbox's server, greeted and secured, not logged in.
async fn open(cfg: &MailboxConfig) -> Result<async_imap::Client<Box<dyn ImapIo>>> {
    let s = &cfg.imap;
    let err =
        |e: &dyn std::fmt::Display| Error::imap(&cfg.name, format!("{}:{}: {e}", s.host, s.port));
    let tcp = tokio::time::timeout(s.timeout, TcpStream::connect((s.host.as_str(), s.port)))
        .await
        .map_err(|_| err(&"connect timed out"))?
        .map_err(|e| err(&e))?;
    let tls = || -> Result<(TlsConnector, _)> {
        let config = crate::tls::client_config(s.ca_file.as_deref())?;
        Ok((
            TlsConnector::from(config),
            crate::tls::server_name(&s.host)?,
        ))
    };
    let client: async_imap::Client<Box<dyn ImapIo>> = match s.tls {
        TlsMode::Implicit => {
            let (connector, name) = tls()?;
            let stream = connector.connect(name, tcp).await.map_err(|e| err(&e))?;
            let mut client = async_imap::Client::new(Box::new(stream) as Box<dyn ImapIo>);
            greeting(&mut client).await.map_err(|e| err(&e))?;
            client
        }
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            greeting(&mut client).await.map_err(|e| err(&e))?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| err(&format!("STARTTLS refused: {e}")))?;
            let (connector, name) = tls()?;
            let stream = connector
                .connect(name, client.into_inner())
                .await
                .map_err(|e| err(&e))?;
            async_imap::Client::new(Box::new(stream) as Box<dyn ImapIo>)
        }
        TlsMode::None => {
            let mut client = async_imap::Client::new(Box::new(tcp) as Box<dyn ImapIo>);
            greeting(&mut client).await.map_err(|e| err(&e))?;
            client
        }
    };
    Ok(client)
}

async fn password_login(
    client: async_imap::Client<Box<dyn ImapIo>>,
    cfg: &MailboxConfig,
) -> Result<ImapSession> {
    let s = &cfg.imap;
    let err =
        |e: &dyn std::fmt::Display| Error::imap(&cfg.name, format!("{}:{}: {e}", s.host, s.port));
    let user = s.user.as_deref().unwrap_or("");
    let password = s.password.as_ref().map(|p| p.expose()).unwrap_or("");
    tokio::time::timeout(s.timeout, client.login(user, password))
        .await
        .map_err(|_| err(&"login timed out"))?
        .map_err(|(e, _)| {
            let text = format!("{}:{}: login as {user} failed: {e}", s.host, s.port);
            if refused(&e) {
                Error::imap_refused(&cfg.name, text)
            } else {
                Error::imap(&cfg.name, text)
            }
        })
}

/// The SASL XOAUTH2 exchange: the token first; to the server's error
/// challenge (a JSON status), the empty answer RFC 7628 asks for.
struct XOAuth2 {
    initial: Option<String>,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.initial.take().unwrap_or_default()
    }
}

async fn xoauth2_login(
    client: async_imap::Client<Box<dyn ImapIo>>,
    cfg: &MailboxConfig,
    login: &OAuth2Login,
    token: &AccessToken,
) -> Result<ImapSession> {
    let s = &cfg.imap;
    let auth = XOAuth2 {
        initial: Some(crate::oauth2::xoauth2(&login.user, token.secret.expose())),
    };
    tokio::time::timeout(s.timeout, client.authenticate("XOAUTH2", auth))
        .await
        .map_err(|_| {
            Error::imap(
                &cfg.name,
                format!("{}:{}: XOAUTH2 login timed out", s.host, s.port),
            )
        })?
        .map_err(|(e, _)| {
            let text = format!(
                "{}:{}: XOAUTH2 login as {} failed: {e}",
                s.host, s.port, login.user
            );
            if refused(&e) {
                Error::imap_refused(&cfg.name, text)
            } else {
                Error::imap(&cfg.name, text)
            }
        })
}

/// The server's NO or BAD to a command: an answer, not a lost connection,
/// so asking again the same way gets the same answer.
fn refused(e: &async_imap::error::Error) -> bool {
    matches!(
        e,
        async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)
    )
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    client: &mut async_imap::Client<T>,
) -> std::io::Result<()> {
    match client.read_response().await? {
        Some(_) => Ok(()),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "server closed the connection before its greeting",
        )),
    }
}

/// `1:3,7,9:10` from sorted or unsorted UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let sorted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter();
    let Some(mut start) = iter.next() else {
        return String::new();
    };
    let mut end = start;
    for u in iter {
        if u == end + 1 {
            end = u;
        } else {
            parts.push(range(start, end));
            start = u;
            end = u;
        }
    }
    parts.push(range(start, end));
    parts.join(",")
}

fn range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}:{b}")
    }
}

/// Splits `(uid, size)` into batches of at most `count` mails and about
/// `max_bytes` bytes (a single larger mail makes a batch of its own).
pub fn chunks(sizes: &[(u32, u64)], count: usize, max_bytes: u64) -> Vec<&[(u32, u64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, (_, size)) in sizes.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= count || bytes + size > max_bytes) {
            out.push(&sizes[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(&sizes[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_takes_its_share_of_the_mailboxes_first() {
        // Three daemons, three mailboxes: one each.
        assert!(!at_share(0, 3, 3));
        assert!(at_share(1, 3, 3));
        // Two daemons, three mailboxes: two and one.
        assert!(!at_share(1, 3, 2));
        assert!(at_share(2, 3, 2));
        // Alone: every mailbox.
        assert!(!at_share(2, 3, 1));
        // More daemons than mailboxes: one, and the rest wait.
        assert!(!at_share(0, 1, 3));
        assert!(at_share(1, 1, 3));
        assert!(!at_share(0, 1, 0), "no daemon counted is one: this one");
    }

    #[test]
    fn long_backlogs_are_marked_in_larger_groups() {
        assert_eq!(mark_group(50), 400);
        assert_eq!(mark_group(10_000), 400);
        assert_eq!(mark_group(40_000), 1_600);
        assert_eq!(mark_group(100_000), 4_000);
        assert_eq!(mark_group(1_000_000), 5_000);
    }

    #[test]
    fn exists_or_recent_announce_new_mail_and_all_are_taken() {
        let mut put_aside = vec![
            UnsolicitedResponse::Expunge(3),
            UnsolicitedResponse::Exists(7),
            UnsolicitedResponse::Expunge(2),
        ];
        assert!(new_mail_announced(|| put_aside.pop()));
        assert!(put_aside.is_empty());
        let mut put_aside = vec![UnsolicitedResponse::Recent(1)];
        assert!(new_mail_announced(|| put_aside.pop()));
        let mut put_aside = vec![UnsolicitedResponse::Expunge(1)];
        assert!(!new_mail_announced(|| put_aside.pop()));
        assert!(!new_mail_announced(|| None));
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[3, 1, 2, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn batches_respect_count_and_bytes() {
        let sizes: Vec<(u32, u64)> = (1..=10).map(|u| (u, 10)).collect();
        let c = chunks(&sizes, 4, 1000);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
        let c = chunks(&sizes, 100, 25);
        assert_eq!(
            c.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![2, 2, 2, 2, 2]
        );
        let big = vec![(1, 5), (2, 1000), (3, 5)];
        let c = chunks(&big, 100, 100);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(chunks(&[], 10, 10).is_empty());
    }
}
