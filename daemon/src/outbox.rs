//! Outbound mail: rendering [`Outgoing`] to RFC 5322 bytes, and the sender
//! that drains the outbox table over SMTP. A row is marked sent only after
//! the server accepted it; transient failures (4xx, connection loss) are
//! retried with exponential backoff, permanent ones (5xx) fail at once with
//! the server's text.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, DurationRound, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{
    Address as LettreAddress, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{OutboxConfig, ServerConfig, TlsMode};
use crate::domain::ack::Outgoing;
use crate::domain::mail::Address;
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::entity::outbox;

fn mailbox(a: &Address) -> Result<Mailbox> {
    let email: LettreAddress = a
        .email
        .parse()
        .map_err(|e| Error::Invalid(format!("cannot send to {:?}: {e}", a.email)))?;
    Ok(Mailbox::new(
        (!a.name.is_empty()).then(|| a.name.clone()),
        email,
    ))
}

/// Renders a mail the desk sends. Automatic mail carries `Auto-Submitted`
/// and `X-Auto-Response-Suppress: All` so that robots do not answer it.
pub fn render(out: &Outgoing, date: DateTime<Utc>) -> Result<Vec<u8>> {
    let mut b = Message::builder()
        .message_id(Some(format!("<{}>", out.message_id)))
        .from(mailbox(&out.from)?)
        .subject(out.subject.clone())
        .date(SystemTime::from(date));
    for to in &out.to {
        b = b.to(mailbox(to)?);
    }
    if let Some(r) = &out.reply_to {
        b = b.reply_to(mailbox(r)?);
    }
    if let Some(irt) = &out.in_reply_to {
        b = b.in_reply_to(format!("<{irt}>"));
    }
    if !out.references.is_empty() {
        let refs: Vec<String> = out.references.iter().map(|r| format!("<{r}>")).collect();
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

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Why a mail was not sent: a 5xx or a malformed envelope fails the mail for
/// good; anything else (4xx, connection trouble) is retried with backoff.
enum SendError {
    Permanent(String),
    Transient(String),
}

/// Mails in flight at once; lettre pools one connection per mail in flight.
const PARALLEL: usize = 8;
/// Rows claimed at a time: a small claim is sent (and recorded) quickly, so
/// a claim can be short and a crashed sender's rows come back soon.
const CLAIM_ROWS: u64 = 2 * PARALLEL as u64;

/// Builds the SMTP transport from the `[smtp]` section.
pub fn transport(cfg: &ServerConfig) -> Result<Transport> {
    let tls_params = || -> Result<TlsParameters> {
        let mut p = TlsParameters::builder(cfg.host.clone());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| Error::io(ca, e))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| Error::Tls(format!("{}: {e}", ca.display())))?;
            p = p.add_root_certificate(cert);
        }
        p.build_rustls().map_err(|e| Error::Tls(e.to_string()))
    };
    let tls = match cfg.tls {
        TlsMode::None => Tls::None,
        TlsMode::Starttls => Tls::Required(tls_params()?),
        TlsMode::Implicit => Tls::Wrapper(tls_params()?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(cfg.timeout))
        .pool_config(
            PoolConfig::new()
                .max_size(4)
                .idle_timeout(Duration::from_secs(30)),
        );
    if let (Some(user), Some(pw)) = (&cfg.user, &cfg.password) {
        b = b.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
    }
    Ok(b.build())
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
}

pub struct Sender {
    store: Store,
    smtp: ServerConfig,
    transport: Transport,
    cfg: OutboxConfig,
    clock: Arc<dyn Clock>,
}

impl Sender {
    pub fn new(
        store: Store,
        smtp: ServerConfig,
        cfg: OutboxConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Sender> {
        Ok(Sender {
            store,
            transport: transport(&smtp)?,
            smtp,
            cfg,
            clock,
        })
    }

    /// Sends one mail; a transient failure is tried once more at once on a
    /// fresh connection, since servers limit mails per session (OpenSMTPD
    /// answers the 101st with 452) and pooled connections go stale.
    async fn send(&self, row: &outbox::Model) -> std::result::Result<(), SendError> {
        let envelope = envelope(&row.envelope_from, &row.recipients)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send_raw(&envelope, &row.raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(first) => {
                let fresh =
                    transport(&self.smtp).map_err(|e| SendError::Transient(e.to_string()))?;
                match fresh.send_raw(&envelope, &row.raw).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Err(e) => Err(SendError::Transient(format!("{e} (before that: {first})"))),
                }
            }
        }
    }

    /// Sends every row that is due now, `PARALLEL` at a time; each row is
    /// tried at most once per call.
    pub async fn flush(&self) -> Result<FlushStats> {
        use futures::StreamExt;
        let mut stats = FlushStats::default();
        loop {
            // A claim holds its rows for three SMTP timeouts (each send is
            // one attempt plus one retry); its instant carries this
            // process's own microseconds so two senders never share one.
            let now = self.clock.now();
            let hold = chrono::Duration::from_std(self.smtp.timeout * 3)
                .unwrap_or(chrono::Duration::minutes(5));
            let until = (now + hold)
                .duration_trunc(chrono::Duration::milliseconds(1))
                .unwrap_or(now + hold)
                + chrono::Duration::microseconds(i64::from(std::process::id() % 1000));
            let rows = self.store.outbox_claim(now, until, CLAIM_ROWS).await?;
            if rows.is_empty() {
                return Ok(stats);
            }
            // Each result is recorded as soon as it is known, so a crash
            // re-sends at most the mails in flight.
            let mut in_flight = futures::stream::iter(rows)
                .map(|row| async move {
                    let r = self.send(&row).await;
                    (row, r)
                })
                .buffer_unordered(PARALLEL);
            while let Some((row, result)) = in_flight.next().await {
                self.record(&row, result, &mut stats).await?;
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
                _ = shutdown.wait() => return,
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
