//! Outbound mail: rendering [`Outgoing`] to RFC 5322 bytes, and the sender
//! that drains the outbox table over SMTP. A row is marked sent only after
//! the server accepted it; transient failures (4xx, connection loss) are
//! retried with exponential backoff, permanent ones (5xx) fail at once with
//! the server's text.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, DurationRound, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address as LettreAddress, Message};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{OutboxConfig, ServerConfig};
use crate::domain::ack::Outgoing;
use crate::domain::mail::{Address, one_line};
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::entity::outbox;

mod smtp;
pub use smtp::Connector;
use smtp::SendError;

fn mailbox(a: &Address) -> Result<Mailbox> {
    let email = sendable_address(&a.email)
        .map_err(|why| Error::Invalid(format!("cannot send to {:?}: {why}", a.email)))?;
    let name = one_line(&a.name);
    Ok(Mailbox::new((!name.is_empty()).then_some(name), email))
}

/// The address as lettre sends it, or why the desk does not send to it.
fn sendable_address(email: &str) -> std::result::Result<LettreAddress, String> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("no domain".into());
    };
    if local.is_empty() || domain.is_empty() {
        return Err("empty local part or domain".into());
    }
    if domain.starts_with('[') {
        return Err("a domain literal: the desk sends only to domain names".into());
    }
    if email.chars().any(char::is_control) {
        return Err("control characters in the address".into());
    }
    email.parse::<LettreAddress>().map_err(|e| e.to_string())
}

/// Whether the desk can write to `a`: a mail to it renders and its address
/// is a valid SMTP recipient. Checked when a mail is read, so a mail that
/// cannot be answered is stored with the reason instead of failing later.
pub fn check_recipient(a: &Address) -> std::result::Result<(), String> {
    use std::fmt::Write;
    let mb = mailbox(a).map_err(|e| match e {
        Error::Invalid(m) => m,
        other => other.to_string(),
    })?;
    // `to_string` panics where `Display` fails; `write!` reports it.
    let mut shown = String::new();
    write!(shown, "{mb}").map_err(|_| format!("{:?} cannot be written in a header", a.name))?;
    Ok(())
}

/// Renders a mail the desk sends. Automatic mail carries `Auto-Submitted`
/// and `X-Auto-Response-Suppress: All` so that robots do not answer it.
///
/// Never panics: every header value is made one line first, and a mail
/// that cannot be written is an error for its caller to skip.
pub fn render(out: &Outgoing, date: DateTime<Utc>) -> Result<Vec<u8>> {
    let fail = |why: String| Error::Invalid(format!("cannot build mail {}: {why}", out.message_id));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render_unguarded(out, date))) {
        Ok(r) => r,
        Err(panic) => Err(fail(format!(
            "the mail library panicked: {}",
            crate::panic_message(&panic)
        ))),
    }
}

fn render_unguarded(out: &Outgoing, date: DateTime<Utc>) -> Result<Vec<u8>> {
    let from = mailbox(&out.from)?;
    let mut to_addrs = Vec::with_capacity(out.to.len());
    let mut b = Message::builder()
        .message_id(Some(format!("<{}>", one_line(&out.message_id))))
        .from(from.clone())
        .subject(one_line(&out.subject))
        .date(SystemTime::from(date));
    for to in &out.to {
        let mb = mailbox(to)?;
        to_addrs.push(mb.email.clone());
        b = b.to(mb);
    }
    // The envelope is set, not read back from the headers: a valid
    // recipient whose header form lettre cannot parse again (a quoted local
    // part) would otherwise fail the whole mail.
    b = b.envelope(
        lettre::address::Envelope::new(Some(from.email), to_addrs)
            .map_err(|e| Error::Invalid(format!("cannot build mail {}: {e}", out.message_id)))?,
    );
    if let Some(r) = &out.reply_to {
        b = b.reply_to(mailbox(r)?);
    }
    let id = |r: &str| {
        format!(
            "<{}>",
            r.chars()
                .filter(|c| !c.is_control() && !c.is_whitespace())
                .collect::<String>()
        )
    };
    if let Some(irt) = &out.in_reply_to {
        b = b.in_reply_to(id(irt));
    }
    if !out.references.is_empty() {
        let refs: Vec<String> = out.references.iter().map(|r| id(r)).collect();
        b = b.references(refs.join(" "));
    }
    if let Some(v) = out.auto_submitted {
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                v.to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_string(),
            ));
    }
    // The text, or text and HTML as alternatives; attachments around it.
    let text = || SinglePart::plain(out.body.clone());
    let built = if out.attachments.is_empty() {
        match &out.html {
            None => b.header(ContentType::TEXT_PLAIN).body(out.body.clone()),
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                out.body.clone(),
                html.clone(),
            )),
        }
    } else {
        let mut parts = match &out.html {
            None => MultiPart::mixed().singlepart(text()),
            Some(html) => MultiPart::mixed().multipart(
                MultiPart::alternative()
                    .singlepart(text())
                    .singlepart(SinglePart::html(html.clone())),
            ),
        };
        for a in &out.attachments {
            let ct = ContentType::parse(&a.content_type)
                .or_else(|_| ContentType::parse("application/octet-stream"))
                .map_err(|e| Error::Invalid(format!("attachment {}: {e}", a.filename)))?;
            parts = parts.singlepart(Attachment::new(a.filename.clone()).body(a.data.clone(), ct));
        }
        b.multipart(parts)
    };
    let msg =
        built.map_err(|e| Error::Invalid(format!("cannot build mail {}: {e}", out.message_id)))?;
    Ok(msg.formatted())
}

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
    ) -> Result<Sender> {
        Ok(Sender {
            store,
            connector: Arc::new(Connector::new(&smtp, cfg.parallel)?),
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
        loop {
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
                return Ok(());
            }
            Err(SendError::Permanent(text)) => (text, true),
            Err(SendError::Transient(text)) => (text, false),
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
        } else {
            let delay = backoff(self.cfg.retry_initial, self.cfg.retry_max, attempts);
            let next = self.clock.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            warn!(outbox = row.id, message_id = row.message_id, error = text, attempts, retry_in = ?delay, "delivery deferred");
            self.store
                .outbox_attempt_failed(row.id, &text, Some(next))
                .await?;
            stats.deferred += 1;
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
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), s(3600), 1), s(30));
        assert_eq!(backoff(s(30), s(3600), 2), s(60));
        assert_eq!(backoff(s(30), s(3600), 4), s(240));
        assert_eq!(backoff(s(30), s(3600), 10), s(3600));
        assert_eq!(backoff(s(30), s(3600), 1000), s(3600));
    }

    #[test]
    fn rendered_ack_has_threading_and_robot_headers() {
        let out = Outgoing {
            message_id: "INC-000001.ack.x@example.test".into(),
            from: Address::new("Desk", "support@example.test"),
            to: vec![Address::new("Jo", "jo@example.test")],
            subject: "[ACME INC-000001] Re: hi".into(),
            in_reply_to: Some("m1@cust".into()),
            references: vec!["m0@cust".into(), "m1@cust".into()],
            auto_submitted: Some("auto-replied"),
            body: "hello".into(),
            html: None,
            reply_to: Some(Address {
                name: "Desk".into(),
                email: "support+INC-000001.2.abc@example.test".into(),
            }),
            attachments: vec![crate::domain::ack::OutAttachment {
                filename: "log.txt".into(),
                content_type: "text/plain".into(),
                data: b"line 1".to_vec(),
            }],
        };
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        let raw = String::from_utf8(render(&out, now).expect("renders")).expect("utf8");
        for want in [
            "Message-ID: <INC-000001.ack.x@example.test>",
            "In-Reply-To: <m1@cust>",
            "References: <m0@cust> <m1@cust>",
            "Auto-Submitted: auto-replied",
            "X-Auto-Response-Suppress: All",
            "Reply-To: Desk <support+INC-000001.2.abc@example.test>",
            "Content-Type: multipart/mixed",
            "filename=\"log.txt\"",
            "Subject: [ACME INC-000001] Re: hi",
        ] {
            assert!(raw.contains(want), "missing {want:?} in\n{raw}");
        }
        assert!(envelope("a@b.test", "c@d.test,e@f.test").is_ok());
        assert!(envelope("a@b.test", "not an address").is_err());
    }

    fn to(name: &str, email: &str) -> Outgoing {
        Outgoing {
            message_id: "INC-000001.ack.x@example.test".into(),
            from: Address::new("Desk", "support@example.test"),
            reply_to: None,
            to: vec![Address {
                name: name.into(),
                email: email.into(),
            }],
            subject: "Re: a\r\nBcc: victim@example.test".into(),
            in_reply_to: Some("m1@cust\r\nBcc: x@y.test".into()),
            references: Vec::new(),
            auto_submitted: Some("auto-replied"),
            body: "hello".into(),
            html: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn hostile_names_and_ids_render_on_one_line_and_never_panic() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        // Built by hand, not by Address::new: rows stored before names were
        // cleaned reach the renderer as they are.
        for name in ["A\nB", "A\r\nB", "A\u{0}B", "\n", "\"q\"\\"] {
            let raw = render(&to(name, "jo@example.test"), now).expect("renders");
            let text = String::from_utf8_lossy(&raw);
            let head = text.split("\r\n\r\n").next().unwrap_or("");
            assert!(
                head.lines().all(|l| !l.starts_with("Bcc")),
                "{name:?}: no injected header in\n{head}"
            );
        }
    }

    #[test]
    fn recipients_the_desk_cannot_write_to_are_named() {
        let a = |e: &str| Address::new("Jo", e);
        assert!(check_recipient(&a("jo@example.test")).is_ok());
        assert!(check_recipient(&Address::new("A\nB", "jo@example.test")).is_ok());
        for bad in [
            "x@[127.0.0.1]",
            "mailer-daemon",
            "@example.test",
            "jo@",
            "a@b@",
        ] {
            assert!(check_recipient(&a(bad)).is_err(), "{bad}");
        }
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        assert!(render(&to("Jo", "x@[127.0.0.1]"), now).is_err());
        // A quoted local part is valid and answered when the library takes it;
        // either way it never panics.
        let _ = render(&to("Jo", "\"a b\"@example.test"), now);
    }

    #[test]
    fn html_makes_an_alternative_inside_mixed_with_attachments() {
        let mut out = Outgoing {
            message_id: "report.1.0@example.test".into(),
            from: Address::new("Desk", "support@example.test"),
            reply_to: None,
            to: vec![Address::new("", "boss@example.test")],
            subject: "[ACME] Service report".into(),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: Some("auto-generated"),
            body: "plain figures".into(),
            html: Some("<p>chart</p>".into()),
            attachments: Vec::new(),
        };
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
        let parse = |raw: Vec<u8>| String::from_utf8(raw).expect("utf8");
        let raw = parse(render(&out, now).expect("renders"));
        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(!raw.contains("multipart/mixed"), "{raw}");
        let (plain, html) = (
            raw.find("Content-Type: text/plain").expect("plain part"),
            raw.find("Content-Type: text/html").expect("html part"),
        );
        assert!(plain < html, "the preferred HTML part comes last");

        out.attachments.push(crate::domain::ack::OutAttachment {
            filename: "figures.csv".into(),
            content_type: "text/csv".into(),
            data: b"a,b".to_vec(),
        });
        let raw = parse(render(&out, now).expect("renders"));
        let (mixed, alternative) = (
            raw.find("Content-Type: multipart/mixed").expect("mixed"),
            raw.find("Content-Type: multipart/alternative")
                .expect("alternative"),
        );
        assert!(mixed < alternative, "{raw}");
        assert!(raw.contains("filename=\"figures.csv\""), "{raw}");
    }
}
