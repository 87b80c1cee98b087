//! Rendering a mail the desk sends ([`Outgoing`]) to RFC 5322 bytes, and
//! whether an address can be written to at all. Pure: the rendered bytes go
//! into the outbox table, and the sender sends them as they are.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address as LettreAddress, Message};

use super::ack::Outgoing;
use super::mail::{Address, one_line};

/// Why a mail cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

fn mailbox(a: &Address) -> Result<Mailbox, RenderError> {
    let email = sendable_address(&a.email)
        .map_err(|why| RenderError(format!("cannot send to {:?}: {why}", a.email)))?;
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
    let mb = mailbox(a).map_err(|RenderError(m)| m)?;
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
pub fn render(out: &Outgoing, date: DateTime<Utc>) -> Result<Vec<u8>, RenderError> {
    let fail = |why: String| RenderError(format!("cannot build mail {}: {why}", out.message_id));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render_unguarded(out, date))) {
        Ok(r) => r,
        Err(panic) => Err(fail(format!(
            "the mail library panicked: {}",
            crate::panic_message(&panic)
        ))),
    }
}

fn render_unguarded(out: &Outgoing, date: DateTime<Utc>) -> Result<Vec<u8>, RenderError> {
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
            .map_err(|e| RenderError(format!("cannot build mail {}: {e}", out.message_id)))?,
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
    if let Some(ticket) = &out.thread {
        let domain = out.from.domain();
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Thread-Topic"),
                one_line(&thread_topic(&out.subject, ticket)),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Thread-Index"),
                thread_index(domain, ticket, date),
            ));
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
                .map_err(|e| RenderError(format!("attachment {}: {e}", a.filename)))?;
            parts = parts.singlepart(Attachment::new(a.filename.clone()).body(a.data.clone(), ct));
        }
        b.multipart(parts)
    };
    let msg =
        built.map_err(|e| RenderError(format!("cannot build mail {}: {e}", out.message_id)))?;
    Ok(msg.formatted())
}

/// The conversation topic Outlook shows: the subject without the ticket's
/// tag and without reply and forward prefixes.
pub fn thread_topic(subject: &str, ticket: &str) -> String {
    let mut s = subject.trim().to_string();
    while let Some(open) = s.find('[') {
        match s[open..].find(']') {
            Some(close) if s[open..open + close].contains(ticket) => {
                s.replace_range(open..open + close + 1, "");
            }
            _ => break,
        }
    }
    let mut rest = s.trim();
    while let Some((head, tail)) = rest.split_once(':') {
        let prefix = head.trim().to_ascii_lowercase();
        if !REPLY_PREFIXES.contains(&prefix.as_str()) {
            break;
        }
        rest = tail.trim_start();
    }
    rest.trim().to_string()
}

/// Reply and forward prefixes of the common clients' languages.
const REPLY_PREFIXES: &[&str] = &[
    "re", "aw", "sv", "vs", "antw", "odp", "ynt", "fw", "fwd", "wg", "tr", "rv", "doorst", "vl",
    "enc", "i",
];

/// Outlook's conversation index (MS-OXOMSG, `PidTagConversationIndex`) for a
/// mail of `ticket`: a 22-byte header block that is the same for every mail
/// of the ticket — a fixed time and a GUID from the desk's domain and the
/// ticket number — and one 5-byte child block with the mail's time. Outlook
/// files mails whose index shares the header as one conversation, whatever
/// their subjects.
pub fn thread_index(domain: &str, ticket: &str, date: DateTime<Utc>) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    // 2020-01-01T00:00:00Z as a FILETIME (100 ns since 1601), cut to the
    // six bytes the header keeps.
    const BASE: u64 = (1_577_836_800 + 11_644_473_600) * 10_000_000;
    let header_time = BASE >> 16;
    let guid = Sha256::digest(format!("{domain}\n{ticket}").as_bytes());
    let mut index = Vec::with_capacity(27);
    index.extend_from_slice(&header_time.to_be_bytes()[2..]);
    index.extend_from_slice(&guid[..16]);
    let now = u64::try_from(date.timestamp())
        .unwrap_or(0)
        .saturating_add(11_644_473_600)
        .saturating_mul(10_000_000);
    let delta = now.saturating_sub(header_time << 16);
    // The delta code says which 31 bits of the time difference are kept:
    // bits 18..49 while it is under two years, else bits 23..54.
    let (code, bits) = if delta < 1 << 49 {
        (0u64, (delta >> 18) & 0x7fff_ffff)
    } else {
        (1u64, (delta >> 23) & 0x7fff_ffff)
    };
    let child = (code << 39) | (bits << 8) | u64::from(guid[16]);
    index.extend_from_slice(&child.to_be_bytes()[3..]);
    base64::engine::general_purpose::STANDARD.encode(index)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            thread: Some("INC-000001".into()),
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
    }

    #[test]
    fn a_tickets_mails_share_outlooks_conversation_header() {
        use base64::Engine;
        let decode = |s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("base64")
        };
        let day = |d: i64| DateTime::from_timestamp(1_780_000_000 + d * 86_400, 0).expect("time");
        let first = decode(&thread_index("acme.test", "INC-000001", day(0)));
        let later = decode(&thread_index("acme.test", "INC-000001", day(3)));
        let other = decode(&thread_index("acme.test", "INC-000002", day(0)));
        assert_eq!(first.len(), 27, "a header block and one child block");
        assert_eq!(first[..22], later[..22], "one conversation");
        assert_ne!(first[22..], later[22..], "the child block carries the time");
        assert_ne!(
            first[..22],
            other[..22],
            "another ticket, another conversation"
        );
        assert_eq!(
            first[0], 0x01,
            "a FILETIME of this century starts with 0x01"
        );
        assert!(
            later[22..26] > first[22..26],
            "later mails sort after earlier ones"
        );

        for (subject, topic) in [
            ("[ACME INC-000001] Re: VPN down", "VPN down"),
            ("RE: AW: [ACME INC-000001] VPN down", "VPN down"),
            ("[ACME INC-000001] Fwd: Printer [old]", "Printer [old]"),
            ("Re:", ""),
            ("Review: the plan", "Review: the plan"),
        ] {
            assert_eq!(thread_topic(subject, "INC-000001"), topic, "{subject}");
        }
        let mut out = to("Jo", "jo@example.test");
        out.thread = Some("INC-000001".into());
        out.subject = "[ACME INC-000001] Re: VPN down".into();
        let now = DateTime::from_timestamp(1_780_000_000, 0).expect("time");
        let raw = String::from_utf8(render(&out, now).expect("renders")).expect("utf8");
        assert!(raw.contains("Thread-Topic: VPN down\r\n"), "{raw}");
        assert!(raw.contains("Thread-Index: Ad"), "{raw}");
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
            thread: Some("INC-000001\r\nBcc: z@y.test".into()),
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
            thread: None,
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
