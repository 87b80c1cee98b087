//! Outbound mail: the sender that drains the outbox table over SMTP (the
//! rows hold mails rendered by `domain::render`). A row is marked sent only after
//! the server accepted it; transient failures (4xx, connection loss) are
//! retried with exponential backoff, permanent ones (5xx) fail at once with
//! the server's text.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use lettre::Address as LettreAddress;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::config::{OutboxConfig, ServerConfig};
use crate::error::{Error, Result};
use crate::oauth2::Tokens;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::entity::outbox;

mod smtp;
pub use smtp::Connector;
use smtp::SendError;

/// Rows claimed at a time per mail in flight (`outbox.parallel`): a small
/// claim is sent (and recorded) quickly.
const CLAIM_PER_SEND: u64 = 2;
/// How long a claim holds its rows; renewed every third of it while they
/// are in flight, so the rows of a sender that died are due again within
/// this time, however slow the SMTP server is for a live one.
const LEASE: Duration = Duration::from_secs(10);

/// The ids of mails the SMTP server accepted, appended the moment it said
/// so, before the database is told (which may wait behind the ingest
/// writer's commit). A write to the file survives the process being killed
/// (the kernel has it), so a restarted sender marks those rows sent instead
/// of sending them again. It is not fsynced: after a power loss a mail may
/// go twice, which at-least-once delivery allows.
pub struct SentJournal {
    path: std::path::PathBuf,
    file: std::sync::Mutex<Option<std::fs::File>>,
}

impl SentJournal {
    pub fn new(path: std::path::PathBuf) -> SentJournal {
        SentJournal {
            path,
            file: std::sync::Mutex::new(None),
        }
    }

    fn append(&self, id: i64) -> std::io::Result<()> {
        use std::io::Write;
        let mut guard = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        if guard.is_none() {
            *guard = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        match guard.as_mut() {
            Some(f) => f.write_all(format!("{id}\n").as_bytes()),
            None => Ok(()),
        }
    }

    /// The ids recorded since the last [`SentJournal::clear`].
    fn read(&self) -> std::io::Result<Vec<i64>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn clear(&self) -> std::io::Result<()> {
        let guard = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        drop(guard);
        match std::fs::OpenOptions::new().write(true).open(&self.path) {
            Ok(f) => f.set_len(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
}

pub struct Sender {
    store: Store,
    connector: Arc<Connector>,
    cfg: OutboxConfig,
    clock: Arc<dyn Clock>,
    journal: Arc<SentJournal>,
}

async fn send_one(
    connector: &Connector,
    row: &outbox::Model,
) -> std::result::Result<(), SendError> {
    let envelope = envelope(&row.envelope_from, &row.recipients)
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    connector.send(&envelope, &row.raw).await
}

impl Sender {
    /// `journal` is the file of accepted mails (`<data_dir>/outbox.sent`).
    pub fn new(
        store: Store,
        smtp: ServerConfig,
        cfg: OutboxConfig,
        clock: Arc<dyn Clock>,
        journal: std::path::PathBuf,
        tokens: Tokens,
    ) -> Result<Sender> {
        Ok(Sender {
            store,
            connector: Arc::new(Connector::new(&smtp, cfg.parallel, tokens)?),
            cfg,
            clock,
            journal: Arc::new(SentJournal::new(journal)),
        })
    }

    /// Marks sent what the journal says the server accepted (a sender killed
    /// before the database heard of it), then empties the journal.
    async fn reconcile(&self) -> Result<()> {
        let ids = self
            .journal
            .read()
            .map_err(|e| Error::io(&self.journal.path, e))?;
        if ids.is_empty() {
            return Ok(());
        }
        let marked = self.store.outbox_sent_many(&ids, self.clock.now()).await?;
        if marked > 0 {
            info!(
                marked,
                "outbox rows accepted by the SMTP server before a restart marked sent"
            );
        }
        self.journal
            .clear()
            .map_err(|e| Error::io(&self.journal.path, e))
    }

    /// Sends every row that is due now, `outbox.parallel` at a time; each row is
    /// tried at most once per call.
    pub async fn flush(&self) -> Result<FlushStats> {
        let mut stats = FlushStats::default();
        let health = &crate::metrics::get().health;
        loop {
            health.sender_beat(std::time::Instant::now());
            self.reconcile().await?;
            // The claim's instant carries this process's own microseconds so
            // two senders never share one.
            let now = self.clock.now();
            let lease_until = |now: DateTime<Utc>| {
                let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
                until
                    .duration_trunc(chrono::Duration::milliseconds(1))
                    .unwrap_or(until)
                    + chrono::Duration::microseconds(i64::from(std::process::id() % 1000))
            };
            let mut until = lease_until(now);
            let rows = self
                .store
                .outbox_claim(now, until, CLAIM_PER_SEND * self.cfg.parallel as u64)
                .await?;
            if rows.is_empty() {
                return Ok(stats);
            }
            // Each send runs as its own task, so a mail the server accepted
            // is journaled at once, even while this loop waits for the
            // database to record another.
            let mut in_flight: HashSet<i64> = rows.iter().map(|r| r.id).collect();
            let mut queue = rows.into_iter();
            let mut tasks = tokio::task::JoinSet::new();
            let spawn = |tasks: &mut tokio::task::JoinSet<_>, row: outbox::Model| {
                let (connector, journal) = (self.connector.clone(), self.journal.clone());
                tasks.spawn(async move {
                    let result = send_one(&connector, &row).await;
                    if result.is_ok()
                        && let Err(e) = journal.append(row.id)
                    {
                        warn!(outbox = row.id, error = %e, "cannot journal a sent mail");
                    }
                    (row, result)
                });
            };
            for row in queue.by_ref().take(self.cfg.parallel) {
                spawn(&mut tasks, row);
            }
            let mut renew = tokio::time::interval(LEASE / 3);
            renew.tick().await;
            loop {
                tokio::select! {
                    done = tasks.join_next() => {
                        let Some(done) = done else { break };
                        let (row, result) = done.map_err(|e| {
                            Error::Smtp(format!("a send task failed: {e}"))
                        })?;
                        in_flight.remove(&row.id);
                        self.record(&row, result, &mut stats).await?;
                        if let Some(next) = queue.next() {
                            spawn(&mut tasks, next);
                        }
                    }
                    _ = renew.tick() => {
                        health.sender_beat(std::time::Instant::now());
                        let next = lease_until(self.clock.now());
                        let ids: Vec<i64> = in_flight.iter().copied().collect();
                        self.store.outbox_renew(&ids, until, next).await?;
                        until = next;
                    }
                }
            }
        }
    }

    async fn record(
        &self,
        row: &outbox::Model,
        result: std::result::Result<(), SendError>,
        stats: &mut FlushStats,
    ) -> Result<()> {
        let (text, permanent) = match result {
            Ok(()) => {
                self.store.outbox_sent(row.id, self.clock.now()).await?;
                info!(
                    outbox = row.id,
                    message_id = row.message_id,
                    to = row.recipients,
                    "sent"
                );
                stats.sent += 1;
                crate::metrics::get().outbox_sent();
                return Ok(());
            }
            Err(SendError::Permanent(text)) => (text, true),
            Err(SendError::Transient(text)) => (text, false),
            Err(SendError::Waiting(text)) => {
                let next = self.clock.now()
                    + chrono::Duration::from_std(self.cfg.retry_initial)
                        .unwrap_or(chrono::Duration::MAX);
                if row.last_error.as_deref() == Some(text.as_str()) {
                    debug!(outbox = row.id, error = text, "still no SMTP login token");
                } else {
                    info!(outbox = row.id, message_id = row.message_id, error = text, retry_in = ?self.cfg.retry_initial, "not sent: no SMTP login token; the mail waits");
                }
                self.store.outbox_postpone(row.id, &text, next).await?;
                stats.deferred += 1;
                return Ok(());
            }
        };
        let attempts = row.attempts as u32 + 1;
        if permanent || attempts >= self.cfg.max_attempts {
            warn!(
                outbox = row.id,
                message_id = row.message_id,
                error = text,
                attempts,
                "delivery failed for good"
            );
            self.store
                .outbox_attempt_failed(row.id, &text, None)
                .await?;
            stats.failed += 1;
            crate::metrics::get().outbox_failed();
        } else {
            let delay = backoff(self.cfg.retry_initial, self.cfg.retry_max, attempts);
            let next = self.clock.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            warn!(outbox = row.id, message_id = row.message_id, error = text, attempts, retry_in = ?delay, "delivery deferred");
            self.store
                .outbox_attempt_failed(row.id, &text, Some(next))
                .await?;
            stats.deferred += 1;
            crate::metrics::get().outbox_deferred();
        }
        Ok(())
    }

    /// The sender task of the daemon: flushes when woken by the ingest writer
    /// or every `flush_interval`, until shutdown.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: Shutdown) {
        loop {
            if let Err(e) = self.flush().await {
                warn!(error = %e, "outbox flush failed; retrying");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.flush_interval) => {}
                _ = shutdown.wait() => {
                    self.connector.close().await;
                    return;
                }
            }
        }
    }
}

/// `initial · 2^(attempts-1)`, capped at `max`.
pub fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    initial.saturating_mul(factor).min(max)
}

fn envelope(from: &str, recipients: &str) -> Result<lettre::address::Envelope> {
    let parse = |s: &str| {
        s.trim()
            .parse::<LettreAddress>()
            .map_err(|e| Error::Invalid(format!("bad address {s:?}: {e}")))
    };
    let to = recipients
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse)
        .collect::<Result<Vec<_>>>()?;
    lettre::address::Envelope::new(Some(parse(from)?), to)
        .map_err(|e| Error::Invalid(format!("bad envelope: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_takes_every_recipient() {
        assert!(envelope("a@b.test", "c@d.test,e@f.test").is_ok());
        assert!(envelope("a@b.test", "not an address").is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), s(3600), 1), s(30));
        assert_eq!(backoff(s(30), s(3600), 2), s(60));
        assert_eq!(backoff(s(30), s(3600), 4), s(240));
        assert_eq!(backoff(s(30), s(3600), 10), s(3600));
        assert_eq!(backoff(s(30), s(3600), 1000), s(3600));
    }
}
