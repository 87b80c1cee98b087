//! Reads what tells a robot from a person out of a parsed mail: the header and
//! MIME facts (`signals`, on every mail) and what a bounce reports about the
//! mail that failed (`bounce`, only on mail classified as a bounce). Deciding
//! is `domain::classify`'s job; this file only reads.
//!
//! `signals` looks at headers and part types only, never at bodies, so it
//! costs next to nothing per mail. `bounce` reads bodies, at most 64 KB of
//! each text.
//!
//! A `Bounce`'s `kind` is `Complaint` for a feedback report, `Delayed` for a
//! DSN that names no failed delivery (delay, relay or delivery notices), else
//! `Failed`. Where the facts come from, best source first:
//! - failed recipients: the `message/delivery-status` part (RFC 3464; read
//!   from the text when a broken boundary hid the part), for each record
//!   whose `Action` is `failed`, `expired` or missing: the
//!   `Original-Recipient` (the address as the desk wrote it), else the
//!   `Final-Recipient`. A DSN whose records were all delayed or delivered
//!   names no failed recipient, and nothing else is asked. Else
//!   `X-Failed-Recipients`; else the bounce text above the returned message,
//!   where MTAs put the address: `RCPT TO:<a@b>`, or at the start of a line
//!   (`<a@b>: host … said`, `a@b`, `<a@b>... User unknown`, with Postfix's
//!   and Sendmail's `(expanded from <a@b>)` preferred), last any address in
//!   that text; the bounce's own sender and recipients (the desk),
//!   postmasters and Message-IDs are never taken from text. Last resort: the
//!   returned message's envelope (`Received: … for <a@b>`) or its only `To`.
//! - the original Message-ID: the returned `message/rfc822` part; a returned
//!   message pasted into a part without a blank line (its headers became the
//!   part's); a `Message-ID:` line in a `text/rfc822-headers` or report part
//!   or quoted in the bounce text; then an `In-Reply-To:` or `References:`
//!   line there (the mail the bounced one answered is in the same ticket);
//!   then the bounce's own `In-Reply-To` (Gmail and Exchange set it to the
//!   bounced mail).
//! - status and diagnostic: the DSN (`Status`, `Diagnostic-Code` without its
//!   `smtp;` type), else the first enhanced status code (`5.1.1`) in the
//!   bounce text and its line, else the first line with an SMTP reply code.
//!
//! A feedback report (ARF, RFC 5965, or Hotmail's "complaint about message
//! from 192.0.2.1") is a complaint about a mail that *was* delivered: it gets
//! the original Message-ID (to find the ticket) and `feedback report: abuse`
//! (its `Feedback-Type`) as diagnostic, but no recipients and no status, so
//! nothing is marked as failed.
//!
//! Failures stated only in a body (`failure_text`, read for robots whose
//! headers did not make them a bounce, see `classify::body_may_tell`; only
//! the first lines of the notice's own text count, never quoted lines):
//! - Amazon SES notifications: the JSON of an SNS notification (SES's JSON
//!   in its `Message` string) or of SES event publishing. `Bounce` gives the
//!   `bouncedRecipients` with the first one's `status` and `diagnosticCode`
//!   (else the bounce type), `Complaint` a complaint, `Delivery` and
//!   `DeliveryDelay` a `Delayed` notice; the original Message-ID is the
//!   `Message-ID` among `mail.headers`, else `commonHeaders.messageId`, else
//!   SES's own `mail.messageId`. Lines Sendmail broke with `!` are joined.
//! - List managers refusing a post (Mailman, Google Groups, Sympa,
//!   LISTSERV, ezmlm: "not allowed to post", "not a member", "rejected by
//!   the list moderator" …; a post only held for the moderator is not
//!   refused): the failed recipient is the list, an address on the
//!   rejection line, else the returned post's recipient on the manager's
//!   host, else the list of the manager's mailbox (`foo-owner@h` → `foo@h`),
//!   else `List-Post`; the diagnostic is the rejection line.
//! - Plain-text delivery failures (qmail, Exim, Exchange and Office 365,
//!   Notes, Yahoo, Gmail, in English, German, French, Spanish, Italian,
//!   Portuguese and Dutch): read as any text bounce above, with an address
//!   on a line saying what failed ("wasn't delivered to a@b") preferred to
//!   any other address, and that line as diagnostic when no code is given.

use std::borrow::Cow;

use mail_parser::{HeaderName, HeaderValue, Message, MessagePart, MimeHeaders, PartType};

use super::parse::clean_id;
use crate::domain::classify::{is_complaint_subject, is_list_manager};
use crate::domain::mail::{Bounce, BounceKind, FailureText, Report, RobotSignals};

/// A diagnostic is kept to one line of at most this many characters.
const MAX_DIAGNOSTIC_CHARS: usize = 300;
/// A bounce naming more recipients than this is cut (a list explosion).
const MAX_RECIPIENTS: usize = 100;
/// Only this much of a bounce text is searched for addresses and codes.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Headers only mailing lists and list managers add (RFC 2369, RFC 2919,
/// Mailman, ezmlm, fml).
const LIST_HEADERS: &[&str] = &[
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Owner",
    "List-Archive",
    "X-BeenThere",
    "Mailing-List",
    "X-Mailing-List",
    "X-ML-Name",
    "X-MLServer",
];

/// The robot signals of a mail: headers and part types only.
pub fn signals(msg: &Message<'_>) -> RobotSignals {
    if msg.parts.is_empty() {
        // mail-parser's accessors index the root part.
        return RobotSignals::default();
    }
    let text_header = |name: &str| msg.header_raw(name).map(|v| unfold(v.trim()));
    let root = msg.root_part().content_type();
    let multipart_report = root.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let declared = root
        .filter(|_| multipart_report)
        .map(|ct| ct.attribute("report-type").map_or(Report::Other, report_of));
    let report = match declared {
        Some(Report::Other) | None => report_part(msg).or(declared),
        known => known,
    };
    let mut signals = RobotSignals {
        auto_submitted: text_header("Auto-Submitted"),
        precedence: text_header("Precedence"),
        x_auto_response_suppress: text_header("X-Auto-Response-Suppress")
            .is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("none")),
        null_return_path: msg.header_raw("Return-Path").is_some_and(|v| {
            let v = v
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            // Some MTAs write the null sender as <MAILER-DAEMON>.
            v.is_empty() || v.eq_ignore_ascii_case("mailer-daemon")
        }),
        multipart_report,
        report,
        ..RobotSignals::default()
    };
    // One pass for the headers whose presence is the signal.
    for header in msg.headers() {
        let name = header.name.as_str();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("X-Autoreply") || is("X-Autorespond") {
            signals.x_autoreply = true;
        } else if is("X-Loop") {
            signals.x_loop = true;
        } else if is("X-Failed-Recipients") {
            signals.x_failed_recipients = true;
        } else if is("X-Amz-Sns-Message-Id") {
            signals.notification_service = true;
        } else if LIST_HEADERS.iter().any(|h| is(h)) {
            signals.list_id = true;
        }
    }
    signals
}

/// What a bounce reports; `None` for a failure report that names no
/// recipient, no original Message-ID, no status and no diagnostic.
pub fn bounce(msg: &Message<'_>) -> Option<Bounce> {
    if msg.parts.is_empty() {
        return None;
    }
    let own_id = msg.message_id().map(clean_id);
    let mut out = Bounce::default();
    let mut feedback_type: Option<String> = None;
    let mut dsn = Dsn::default();

    for part in &msg.parts {
        match part_type(part) {
            Some(("message", "delivery-status" | "global-delivery-status")) => {
                dsn.add(read_dsn(
                    &String::from_utf8_lossy(part.contents()),
                    &mut out,
                ));
            }
            Some(("message", "feedback-report")) => {
                let text = String::from_utf8_lossy(part.contents());
                feedback_type = fields(&text)
                    .find(|(name, _)| name.eq_ignore_ascii_case("feedback-type"))
                    .map(|(_, v)| unfold(&v))
                    .or(feedback_type);
            }
            _ => {}
        }
    }
    if feedback_type.is_none() && msg.subject().is_some_and(is_complaint_subject) {
        // Hotmail's JMRP: a complaint without a feedback-report part.
        feedback_type = Some("abuse".into());
    }

    // The texts of the bounce itself (not of the returned message).
    let texts = bounce_texts(msg);
    if dsn.records == 0
        && feedback_type.is_none()
        && let Some(ses) = texts.iter().find_map(|t| ses_notification(t))
    {
        return Some(ses);
    }
    if dsn.records == 0 {
        // A DSN mail-parser could not split out (a broken boundary) still
        // reads as text.
        for t in &texts {
            dsn.add(read_dsn(head(t, MAX_TEXT_BYTES), &mut out));
        }
    }
    // Cut above the returned message when it is quoted inline.
    let report_text: String = texts
        .iter()
        .map(|t| above_returned_message(t))
        .collect::<Vec<_>>()
        .join("\n");

    if let Some(kind) = feedback_type {
        // A complaint about a delivered mail: nothing failed.
        out.kind = BounceKind::Complaint;
        out.recipients.clear();
        out.status = None;
        out.diagnostic = Some(cap(&format!("feedback report: {kind}")));
    } else if dsn.records > 0 && dsn.failed == 0 {
        out.kind = BounceKind::Delayed;
    } else if out.recipients.is_empty() {
        // No DSN, or a failure the DSN names no usable address for.
        let exclude = not_recipients(msg, own_id.as_deref());
        for (_, value) in msg
            .headers_raw()
            .filter(|(name, _)| name.eq_ignore_ascii_case("X-Failed-Recipients"))
        {
            // Named outright: only robots are left out.
            for a in addresses_in(value) {
                push_text_recipient(&mut out.recipients, a, &[]);
            }
        }
        let lines = notice_lines(msg, &texts, false);
        let rejection = list_rejection_line(&lines);
        if out.recipients.is_empty()
            && let Some(line) = rejection
        {
            // A list manager refused the post: the list is what failed.
            out.recipients = list_address(msg, line, &exclude).into_iter().collect();
        }
        if out.recipients.is_empty() {
            out.recipients = text_recipients(&report_text, &exclude);
        }
        if out.recipients.is_empty() {
            out.recipients = returned_recipient(msg).into_iter().collect();
        }
        if out.status.is_none() && out.diagnostic.is_none() {
            let (status, diagnostic) = text_status(&report_text);
            out.status = status;
            out.diagnostic =
                diagnostic.or_else(|| rejection.or_else(|| failure_line(&lines)).map(|l| cap(l)));
        }
    }

    out.original_message_id = original_message_id(msg, &texts, own_id.as_deref());

    let empty = out.kind == BounceKind::Failed
        && out.recipients.is_empty()
        && out.original_message_id.is_none()
        && out.status.is_none()
        && out.diagnostic.is_none();
    (!empty).then_some(out)
}

/// Addresses a bounce text names that are not failed recipients: the
/// bounce's own sender and recipients (the desk), and Message-IDs, which
/// look like addresses.
fn not_recipients(msg: &Message<'_>, own_id: Option<&str>) -> Vec<String> {
    let mut exclude: Vec<String> = Vec::new();
    for list in [msg.from(), msg.to(), msg.cc(), msg.sender(), msg.reply_to()]
        .into_iter()
        .flatten()
    {
        exclude.extend(
            list.iter()
                .filter_map(|a| a.address())
                .map(|a| a.trim().to_ascii_lowercase()),
        );
    }
    exclude.extend(msg.return_address().map(|a| {
        a.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_ascii_lowercase()
    }));
    exclude.extend(own_id.map(str::to_ascii_lowercase));
    exclude.extend(ids_of(msg.in_reply_to()).map(str::to_ascii_lowercase));
    exclude.extend(ids_of(msg.references()).map(str::to_ascii_lowercase));
    exclude
}

/// The last resort for a bounce that names nobody: the envelope recipient
/// in the returned message's newest `Received: … for <a@b>`, else its only
/// `To` address when it was sent to one address.
fn returned_recipient(msg: &Message<'_>) -> Option<String> {
    let returned = msg.parts.iter().find_map(MessagePart::message)?;
    if returned.parts.is_empty() {
        return None;
    }
    let envelope = returned.header_raw("Received").and_then(|r| {
        let mut words = r.split_whitespace();
        words.find(|w| w.eq_ignore_ascii_case("for"))?;
        addresses_in(words.next()?).into_iter().next()
    });
    envelope.or_else(|| {
        let to: Vec<&str> = [returned.to(), returned.cc()]
            .into_iter()
            .flatten()
            .flat_map(|list| list.iter().filter_map(|a| a.address()))
            .collect();
        match to.as_slice() {
            [one] if is_address(&one.to_ascii_lowercase()) => Some(one.to_ascii_lowercase()),
            _ => None,
        }
    })
}

// ---- report types --------------------------------------------------------

fn report_of(report_type: &str) -> Report {
    let t = report_type.trim();
    if t.eq_ignore_ascii_case("delivery-status") || t.eq_ignore_ascii_case("global-delivery-status")
    {
        Report::DeliveryStatus
    } else if t.eq_ignore_ascii_case("feedback-report") {
        Report::Feedback
    } else if t.eq_ignore_ascii_case("disposition-notification")
        || t.eq_ignore_ascii_case("global-disposition-notification")
    {
        Report::Disposition
    } else {
        Report::Other
    }
}

/// A report part anywhere in the mail's own MIME tree (not inside a returned
/// or forwarded message): some MTAs send a DSN inside `multipart/mixed`.
fn report_part(msg: &Message<'_>) -> Option<Report> {
    msg.parts.iter().find_map(|p| match part_type(p) {
        Some(("message", sub)) => match report_of(sub) {
            Report::Other => None,
            r => Some(r),
        },
        _ => None,
    })
}

/// The lower-cased type and subtype of a part.
fn part_type<'a>(part: &'a MessagePart<'_>) -> Option<(&'a str, &'a str)> {
    let ct = part.content_type()?;
    // mail-parser lower-cases both.
    Some((ct.ctype(), ct.subtype().unwrap_or("")))
}

// ---- the delivery-status part --------------------------------------------

/// One recipient record of a DSN.
#[derive(Default)]
struct Record {
    original: Option<String>,
    final_: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

impl Record {
    fn is_empty(&self) -> bool {
        self.original.is_none() && self.final_.is_none()
    }

    fn failed(&self) -> bool {
        self.action.as_deref().is_none_or(|a| {
            // `expired`: given up after retries (SendGrid and others).
            let a = a.trim().to_ascii_lowercase();
            a.starts_with("failed") || a.starts_with("expired")
        })
    }

    fn recipient(&self) -> Option<String> {
        self.original
            .as_deref()
            .and_then(dsn_address)
            .or_else(|| self.final_.as_deref().and_then(dsn_address))
    }
}

/// How many recipient records DSNs held, and how many of them failed.
#[derive(Clone, Copy, Default)]
struct Dsn {
    records: usize,
    failed: usize,
}

impl Dsn {
    fn add(&mut self, other: Dsn) {
        self.records += other.records;
        self.failed += other.failed;
    }
}

/// The field of a record a DSN field name fills.
fn slot<'r>(r: &'r mut Record, name: &str) -> Option<&'r mut Option<String>> {
    Some(match name {
        "original-recipient" => &mut r.original,
        "final-recipient" => &mut r.final_,
        "action" => &mut r.action,
        "status" => &mut r.status,
        "diagnostic-code" => &mut r.diagnostic,
        _ => return None,
    })
}

/// Reads the per-recipient records of a `message/delivery-status` body into
/// `out`: failed recipients, and status and diagnostic of the first failure
/// (of the first record when none failed).
fn read_dsn(text: &str, out: &mut Bounce) -> Dsn {
    let mut records: Vec<Record> = Vec::new();
    let mut current = Record::default();
    for line in logical_lines(text) {
        let Some((name, value)) = line.as_deref().and_then(field) else {
            // A blank line ends a record.
            if line.is_none() && !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        };
        let name = name.to_ascii_lowercase();
        let Some(taken) = slot(&mut current, &name).map(|s| s.is_some()) else {
            continue;
        };
        if taken && !current.is_empty() {
            // Records run together without a blank line: a repeated field
            // starts the next one.
            records.push(std::mem::take(&mut current));
        }
        if let Some(s) = slot(&mut current, &name) {
            *s = Some(value.trim().to_string());
        }
    }
    if !current.is_empty() {
        records.push(current);
    }

    for r in records.iter().filter(|r| r.failed()) {
        if let Some(a) = r.recipient()
            && !out.recipients.contains(&a)
            && out.recipients.len() < MAX_RECIPIENTS
        {
            out.recipients.push(a);
        }
    }
    let first = records
        .iter()
        .find(|r| r.failed())
        .or_else(|| records.first());
    if let Some(r) = first {
        if out.status.is_none() {
            out.status = r.status.as_deref().and_then(status_code);
        }
        if out.diagnostic.is_none() {
            out.diagnostic = r
                .diagnostic
                .as_deref()
                .map(|d| {
                    // "smtp; 550 5.1.1 …": the type before `;` is not news.
                    let d = d.trim();
                    match d.split_once(';') {
                        Some((kind, rest))
                            if !kind.is_empty()
                                && kind.len() < 20
                                && !kind.contains(char::is_whitespace) =>
                        {
                            rest
                        }
                        _ => d,
                    }
                })
                .map(cap)
                .filter(|d| !d.is_empty());
        }
    }
    Dsn {
        records: records.len(),
        failed: records.iter().filter(|r| r.failed()).count(),
    }
}

/// `rfc822; <A@B>` → `a@b`; `None` unless it is an address.
fn dsn_address(value: &str) -> Option<String> {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    let v = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_ascii_lowercase();
    is_address(&v).then_some(v)
}

/// `5.1.1` out of a Status value like `5.1.1 (bad destination mailbox)`.
fn status_code(value: &str) -> Option<String> {
    value
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .find(|t| !t.is_empty())
        .filter(|t| is_status_code(t))
        .map(str::to_string)
}

/// `class.subject.detail` of RFC 3463: class 2, 4 or 5, numbers of 1–3 digits.
fn is_status_code(t: &str) -> bool {
    let mut parts = t.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(class, "2" | "4" | "5")
        && [subject, detail]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

// ---- header-like text ------------------------------------------------------

/// The logical lines of a header-like text, continuation lines unfolded;
/// `None` stands for a blank line.
fn logical_lines(text: &str) -> impl Iterator<Item = Option<String>> + '_ {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || {
        let line = lines.next()?;
        if line.trim().is_empty() {
            return Some(None);
        }
        let mut joined = line.trim_end().to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) && !next.trim().is_empty() {
                joined.push(' ');
                joined.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        Some(Some(joined))
    })
}

/// `Name: value` → (`Name`, `value`), for a plausible field name.
fn field(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some((name, value))
}

/// The fields of a header-like text, unfolded.
fn fields(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    logical_lines(text)
        .flatten()
        .filter_map(|l| field(&l).map(|(n, v)| (n.to_string(), v.trim().to_string())))
}

fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line, at most `MAX_DIAGNOSTIC_CHARS` characters.
fn cap(value: &str) -> String {
    unfold(value).chars().take(MAX_DIAGNOSTIC_CHARS).collect()
}

// ---- the bounce text -------------------------------------------------------

/// The text parts of the bounce's own MIME tree (a returned message is a
/// nested message and not among them). HTML only when there is no plain text.
fn bounce_texts<'a>(msg: &'a Message<'_>) -> Vec<Cow<'a, str>> {
    let plain: Vec<Cow<'a, str>> = msg
        .parts
        .iter()
        .filter_map(|p| match (&p.body, part_type(p)) {
            // Returned messages and headers, and report parts, are read
            // on their own.
            (_, Some(("text", "rfc822-headers") | ("message", _))) => None,
            (PartType::Text(t), _) => Some(Cow::Borrowed(t.as_ref())),
            // A text part mail-parser could not split or decode (a broken
            // header or boundary) is still searched.
            (PartType::Binary(b) | PartType::InlineBinary(b), Some(("text" | "multipart", _))) => {
                Some(String::from_utf8_lossy(head_bytes(b, MAX_TEXT_BYTES)))
            }
            _ => None,
        })
        .collect();
    if !plain.is_empty() {
        return plain;
    }
    msg.parts
        .iter()
        .filter_map(|p| match &p.body {
            PartType::Html(h) => Some(Cow::Owned(html_to_text(h))),
            _ => None,
        })
        .collect()
}

/// Tags out, line breaks kept, the entities that matter around addresses
/// decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(MAX_TEXT_BYTES));
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => {
                in_tag = false;
                out.push('\n');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
        if out.len() >= MAX_TEXT_BYTES {
            break;
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#64;", "@")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The text above the returned message when an MTA quotes it inline (Exim,
/// qmail, Sendmail, Exchange and others), at most `MAX_TEXT_BYTES`.
fn above_returned_message(text: &str) -> &str {
    let text = head(text, MAX_TEXT_BYTES);
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim().to_ascii_lowercase();
        let marker = [
            "this is a copy of the message",
            "below this line is a copy of the message",
            "original message follows",
            "original message headers",
            "the header of the original message",
            "headers of the original message",
            "unsent message below",
            "message headers follow",
        ]
        .iter()
        .any(|m| l.contains(m));
        // `------ Returned message ------`, `----- Original message -----`.
        let separator = (l.starts_with("---") || l.starts_with("===") || l.starts_with("***"))
            && ["message", "original", "header"]
                .iter()
                .any(|w| l.contains(w));
        let marker = marker || separator;
        let header_block = line.starts_with("Received: ")
            || line.starts_with("Return-Path: ")
            || line.starts_with("Return-path: ");
        if marker || header_block {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Lines that are header fields of a quoted message or of a transcript and
/// name addresses that did not fail.
fn is_header_like(line: &str) -> bool {
    let l = line
        .trim_start_matches(['>', ' ', '\t'])
        .to_ascii_lowercase();
    [
        "message-id:",
        "in-reply-to:",
        "references:",
        "received:",
        "return-path:",
        "from:",
        "sender:",
        "reply-to:",
        "dkim-signature:",
        "date:",
        "subject:",
        "mail from:",
        ">>> mail from:",
        "envelope-from",
        "x-",
        "by ",
        "id ",
    ]
    .iter()
    .any(|h| l.starts_with(h))
}

/// Failed recipients named in a bounce text, best evidence first.
fn text_recipients(text: &str, exclude: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    // 1. The SMTP command that was refused.
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("rcpt to:") {
            rest = &rest[i + "rcpt to:".len()..];
            if let Some(a) = addresses_in(rest).into_iter().next() {
                push_text_recipient(&mut found, a, exclude);
            }
        }
    }
    if !found.is_empty() {
        return found;
    }
    // 2. An address at the start of a line: `<a@b>: host said`, `a@b`.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if is_header_like(line) {
            continue;
        }
        let t = line.trim_start_matches(['>', ' ', '\t', '*', '-', '•']);
        let t = t.strip_prefix("<<< ").unwrap_or(t);
        let t = t.strip_prefix('"').unwrap_or(t);
        let t = t.strip_prefix('<').unwrap_or(t);
        let token: &str = t
            .split(|c: char| c.is_whitespace() || matches!(c, '>' | ':' | ',' | ';' | '"' | '('))
            .next()
            .unwrap_or("");
        let token = token.trim_end_matches(['.']);
        if !is_address(token) {
            continue;
        }
        // Postfix and Sendmail: `<alias@host> (expanded from <a@b>)`, on the
        // same line or an indented one below: the desk wrote a@b.
        let continuation = lines
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .take(3)
            .take_while(|l| l.starts_with([' ', '\t']));
        let expanded = std::iter::once(line).chain(continuation).find_map(|l| {
            let lower = l.to_ascii_lowercase();
            let at = lower.find("(expanded from")?;
            addresses_in(&lower[at..]).into_iter().next()
        });
        let a = expanded.unwrap_or_else(|| token.to_ascii_lowercase());
        push_text_recipient(&mut found, a, exclude);
    }
    if !found.is_empty() {
        return found;
    }
    // 3. An address on a line that says what failed: "Your message wasn't
    // delivered to a@b because …", "Your message to a@b couldn't be
    // delivered".
    for line in text.lines().filter(|l| !is_header_like(l)) {
        let l = normal_line(line);
        if FAILURE_PHRASES.iter().any(|p| line_has(&l, p))
            || [
                "delivered to",
                "delivery to",
                "your message to",
                "deliver to",
            ]
            .iter()
            .any(|p| l.contains(p))
        {
            for a in addresses_in(line) {
                push_text_recipient(&mut found, a, exclude);
            }
        }
    }
    if !found.is_empty() {
        return found;
    }
    // 4. Any other address in the text.
    for line in text.lines().filter(|l| !is_header_like(l)) {
        for a in addresses_in(line) {
            push_text_recipient(&mut found, a, exclude);
        }
    }
    found
}

/// The first enhanced status code in a bounce text and its line; else the
/// first line carrying an SMTP reply code.
fn text_status(text: &str) -> (Option<String>, Option<String>) {
    let lines = || text.lines().filter(|l| !is_header_like(l));
    for line in lines() {
        let code = line
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|t| t.trim_end_matches('.'))
            .find(|t| is_status_code(t));
        if let Some(code) = code {
            return (Some(code.to_string()), Some(cap(line)));
        }
    }
    let smtp_code = |t: &str| {
        let b = t.as_bytes();
        b.len() == 3
            && matches!(b[0], b'4' | b'5')
            && matches!(b[1], b'0'..=b'5')
            && b[2].is_ascii_digit()
    };
    for line in lines() {
        if line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(smtp_code)
        {
            return (None, Some(cap(line)));
        }
    }
    (None, None)
}

fn push_text_recipient(list: &mut Vec<String>, address: String, exclude: &[String]) {
    let a = address.trim().to_ascii_lowercase();
    let local = a.rsplit_once('@').map_or("", |(l, _)| l);
    let robot = matches!(
        local,
        "mailer-daemon" | "mailer_daemon" | "mailerdaemon" | "mail-daemon" | "postmaster"
    );
    if is_address(&a)
        && !robot
        && !exclude.contains(&a)
        && !list.contains(&a)
        && list.len() < MAX_RECIPIENTS
    {
        list.push(a);
    }
}

/// The addresses in a piece of text, lower-cased.
fn addresses_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let local_ok = |b: u8| b.is_ascii_alphanumeric() || b"._%+-=!#$&'*/?^`{|}~".contains(&b);
    let domain_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let mut out = Vec::new();
    for (at, _) in text.match_indices('@') {
        let mut start = at;
        while start > 0 && local_ok(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && domain_ok(bytes[end]) {
            end += 1;
        }
        let candidate = text[start..end]
            .trim_start_matches(['.', '\'', '`', '{', '|', '}', '~', '=', '/'])
            .trim_end_matches(['.', '-']);
        if is_address(candidate) {
            let a = candidate.to_ascii_lowercase();
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// A plausible `local@domain.tld`.
fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(['@', ' ', '<', '>', '(', ')', ',', ';', ':', '"'])
        && domain.len() <= 255
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

// ---- failures a body states ------------------------------------------------

/// How many lines at the top of a notice are searched for what it is:
/// notices say it first, a person's forwarded or quoted bounce further down.
const NOTICE_LINES: usize = 40;

/// Phrases of a list manager refusing a post. Each entry: all of its parts
/// on one line.
const LIST_REJECTION_PHRASES: &[&[&str]] = &[
    &["you are not allowed to post to this mailing list"],
    &["not allowed to post to this"],
    &["has been rejected by the list moderator"],
    &["request to mailing list", "rejected"],
    &["your message to", "rejected"],
    &["your message for list", "rejected"],
    &["mailing list", "rejected"],
    &["you are not a member of"],
    &["is not a member of"],
    &["not a member of the list"],
    &["not a member of this"],
    &["only members can post"],
    &["only members may post"],
    &["only subscribers may post"],
    &["only subscribers can post"],
    &["only subscribers are allowed to post"],
    &["you do not have permission to post"],
    &["you don't have permission to post"],
    &["not have permission to post messages to the group"],
    &["you are not authorized to send mail to"],
    &["you are not allowed to send messages to"],
    &["you are not allowed to send to"],
    &["posting to this list is restricted"],
    &["non-members are not allowed to post"],
];

/// Held for the moderator: not refused (yet).
const LIST_HELD_PHRASES: &[&str] = &[
    "held until",
    "being held",
    "held for moderation",
    "awaits moderator approval",
    "awaiting moderator approval",
    "pending moderator approval",
];

/// Phrases of plain-text delivery failures (all parts on one line),
/// lower-cased, apostrophes straight: qmail, Exim, Sendmail, Postfix, Exchange and Office 365,
/// Notes, Yahoo, Gmail, in English and the languages of common servers.
const FAILURE_PHRASES: &[&[&str]] = &[
    &["this is the qmail-send program"],
    &["wasn't able to deliver your message"],
    &["could not be delivered to one or more of its recipients"],
    &["delivery has failed to these recipients"],
    &["delivery to the following recipient failed"],
    &["delivery to the following recipients failed"],
    &["did not reach some or all of the intended recipients"],
    &["the following recipient(s) could not be reached"],
    &["couldn't be delivered"],
    &["could not be delivered"],
    &["cannot be delivered"],
    &["can't be delivered"],
    &["wasn't delivered to"],
    &["was not delivered to"],
    &["was undeliverable"],
    &["is undeliverable"],
    &["unable to deliver your message"],
    &["unable to deliver the message"],
    &["permanent fatal errors"],
    &["address not found"],
    &["delivery failed"],
    &["delivery failure"],
    &["failed to deliver"],
    &["message not delivered"],
    &["returned to sender"],
    // German
    &["unzustellbar"],
    &["nicht zugestellt werden"],
    &["zustellung an folgende empfänger"],
    &["zustellung fehlgeschlagen"],
    &["konnte nicht zugestellt"],
    &["konnte nicht", "zugestellt werden"],
    // French
    &["non remis"],
    &["n'a pas pu être remis"],
    &["n'a pas pu être distribué"],
    &["la remise", "a échoué"],
    &["échec de la remise"],
    &["impossible de remettre"],
    // Spanish
    &["no se puede entregar"],
    &["no se pudo entregar"],
    &["error en la entrega"],
    &["no pudo ser entregado"],
    &["no se ha podido entregar"],
    // Italian
    &["impossibile recapitare"],
    &["non è stato possibile recapitare"],
    &["non recapitabile"],
    // Portuguese
    &["não foi possível entregar"],
    &["não entregue"],
    &["falha na entrega"],
    // Dutch
    &["kan niet worden bezorgd"],
    &["onbestelbaar"],
    &["bezorging is mislukt"],
];

/// The first lines of a notice's own text (not of a returned or quoted
/// message), unfolded; the subject first when asked for.
fn notice_lines(msg: &Message<'_>, texts: &[Cow<'_, str>], with_subject: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if with_subject {
        out.extend(msg.subject().map(unfold));
    }
    for t in texts {
        out.extend(
            above_returned_message(t)
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with(['>', '|']))
                .take(NOTICE_LINES)
                .map(unfold),
        );
    }
    out
}

/// Every part of a phrase is on the line.
fn line_has(line: &str, phrase: &[&str]) -> bool {
    phrase.iter().all(|p| line.contains(p))
}

/// Lower-cased, apostrophes straight: as the phrases are written.
fn normal_line(line: &str) -> String {
    line.to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'")
}

/// The first line stating a list rejection, unless the post is only held.
fn list_rejection_line(lines: &[String]) -> Option<&String> {
    let lower: Vec<String> = lines.iter().map(|l| normal_line(l)).collect();
    if lower
        .iter()
        .any(|l| LIST_HELD_PHRASES.iter().any(|p| l.contains(p)))
    {
        return None;
    }
    let i = lower
        .iter()
        .position(|l| LIST_REJECTION_PHRASES.iter().any(|p| line_has(l, p)))?;
    lines.get(i)
}

/// The first line stating a delivery failure.
fn failure_line(lines: &[String]) -> Option<&String> {
    lines.iter().find(|l| {
        let l = normal_line(l);
        FAILURE_PHRASES.iter().any(|p| line_has(&l, p))
    })
}

/// What the body of a mail says about a failed delivery: read only for
/// mail whose headers did not make it a bounce, and only for robots (see
/// `classify::body_may_tell`).
pub fn failure_text(msg: &Message<'_>) -> Option<FailureText> {
    if msg.parts.is_empty() {
        return None;
    }
    let texts = bounce_texts(msg);
    if texts.iter().any(|t| ses_notification(t).is_some()) {
        return Some(FailureText::AmazonSes);
    }
    let lines = notice_lines(msg, &texts, true);
    if list_rejection_line(&lines).is_some() {
        Some(FailureText::ListRejection)
    } else if failure_line(&lines).is_some() {
        Some(FailureText::DeliveryFailure)
    } else {
        None
    }
}

/// The list a rejected post was sent to: an address the rejection names
/// on its rejection line, else the returned post's recipient on the list
/// manager's host, else the list the manager's mailbox belongs to
/// (`list-owner@host` → `list@host`), else the rejection's `List-Post`.
fn list_address(msg: &Message<'_>, line: &str, exclude: &[String]) -> Option<String> {
    let manager = |a: &str| {
        a.rsplit_once('@')
            .is_some_and(|(l, _)| is_list_manager(l.split('+').next().unwrap_or("")))
    };
    let usable = |a: &String| !exclude.contains(a) && !manager(a);
    if let Some(a) = addresses_in(line).into_iter().find(usable) {
        return Some(a);
    }
    let sender = msg
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (local, host) = sender.rsplit_once('@').unwrap_or(("", ""));
    let returned = msg
        .parts
        .iter()
        .filter_map(MessagePart::message)
        .find(|m| !m.parts.is_empty());
    if let Some(m) = returned {
        let to: Vec<String> = [m.to(), m.cc()]
            .into_iter()
            .flatten()
            .flat_map(|list| list.iter().filter_map(|a| a.address()))
            .map(str::to_ascii_lowercase)
            .filter(|a| is_address(a) && usable(a))
            .collect();
        if let Some(a) = to
            .iter()
            .find(|a| !host.is_empty() && a.ends_with(&format!("@{host}")))
        {
            return Some(a.clone());
        }
    }
    let local = local.split('+').next().unwrap_or("");
    let list = ["-owner", "-bounces", "-bounce", "-request", "-admin"]
        .iter()
        .find_map(|s| local.strip_suffix(s))
        .or_else(|| local.strip_prefix("owner-"))
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}@{host}"))
        .filter(|a| is_address(a));
    if list.is_some() {
        return list;
    }
    msg.header_raw("List-Post")
        .and_then(|v| addresses_in(v).into_iter().next())
}

// ---- Amazon SES notifications ----------------------------------------------

/// An Amazon SES notification in a text: the JSON of an SNS notification
/// (its `Message` holds SES's JSON as a string), or SES's JSON itself
/// (SNS raw delivery, event publishing). `None` unless it is a bounce,
/// complaint, delivery or delay notification.
fn ses_notification(text: &str) -> Option<Bounce> {
    let text = head(text, MAX_TEXT_BYTES);
    if !text.contains("otificationType") && !text.contains("eventType") {
        return None;
    }
    let top = first_json(text)?;
    let inner = match top.get("Message").and_then(|m| m.as_str()) {
        Some(m) => first_json(m)?,
        None => top,
    };
    let kind = inner
        .get("notificationType")
        .or_else(|| inner.get("eventType"))
        .and_then(|k| k.as_str())?;
    fn str_of<'v>(v: &'v serde_json::Value, k: &str) -> Option<&'v str> {
        v.get(k).and_then(|x| x.as_str()).map(str::trim)
    }
    let mut out = Bounce::default();
    match kind {
        "Bounce" => {
            let b = inner.get("bounce")?;
            let records = b
                .get("bouncedRecipients")
                .and_then(|r| r.as_array())
                .map(Vec::as_slice)
                .unwrap_or_default();
            for r in records {
                if let Some(a) = str_of(r, "emailAddress") {
                    for a in addresses_in(a).into_iter().take(1) {
                        push_text_recipient(&mut out.recipients, a, &[]);
                    }
                }
            }
            let first = records.first();
            out.status = first
                .and_then(|r| str_of(r, "status"))
                .and_then(status_code);
            out.diagnostic = first
                .and_then(|r| str_of(r, "diagnosticCode"))
                .map(without_type)
                .map(cap)
                .filter(|d| !d.is_empty())
                .or_else(|| {
                    let kind = str_of(b, "bounceType")?;
                    Some(cap(&match str_of(b, "bounceSubType") {
                        Some(sub) => format!("{kind} bounce ({sub})"),
                        None => format!("{kind} bounce"),
                    }))
                });
        }
        "Complaint" => {
            let c = inner.get("complaint");
            let feedback = c
                .and_then(|c| str_of(c, "complaintFeedbackType"))
                .filter(|t| !t.is_empty())
                .unwrap_or("abuse");
            out.kind = BounceKind::Complaint;
            out.diagnostic = Some(cap(&format!("feedback report: {feedback}")));
        }
        "Delivery" | "DeliveryDelay" => {
            out.kind = BounceKind::Delayed;
            out.diagnostic = inner
                .get("delivery")
                .and_then(|d| str_of(d, "smtpResponse"))
                .or_else(|| {
                    inner
                        .get("deliveryDelay")
                        .and_then(|d| str_of(d, "delayType"))
                })
                .map(cap);
        }
        _ => return None,
    }
    let mail = inner.get("mail");
    let header_id = mail
        .and_then(|m| m.get("headers"))
        .and_then(|h| h.as_array())
        .and_then(|headers| {
            headers.iter().find_map(|h| {
                let name = str_of(h, "name")?;
                name.eq_ignore_ascii_case("message-id")
                    .then(|| str_of(h, "value").and_then(id_in))?
            })
        });
    out.original_message_id = header_id
        .or_else(|| {
            mail.and_then(|m| m.get("commonHeaders"))
                .and_then(|c| str_of(c, "messageId"))
                .and_then(id_in)
        })
        .or_else(|| {
            mail.and_then(|m| str_of(m, "messageId"))
                .map(clean_id)
                .filter(|id| !id.is_empty())
        });
    Some(out)
}

/// The first JSON object in a text. Long lines some MTAs broke with `!`
/// and a folded line break (Sendmail's line limit) are joined first.
fn first_json(text: &str) -> Option<serde_json::Value> {
    let start = text.find('{')?;
    let read = |t: &str| {
        serde_json::Deserializer::from_str(t)
            .into_iter::<serde_json::Value>()
            .next()
            .and_then(Result::ok)
            .filter(serde_json::Value::is_object)
    };
    read(&text[start..]).or_else(|| {
        let joined = text[start..].replace("!\r\n ", "").replace("!\n ", "");
        read(&joined)
    })
}

/// "smtp; 550 5.1.1 …" → "550 5.1.1 …": the type before `;` is not news.
fn without_type(d: &str) -> &str {
    let d = d.trim();
    match d.split_once(';') {
        Some((kind, rest))
            if !kind.is_empty() && kind.len() < 20 && !kind.contains(char::is_whitespace) =>
        {
            rest.trim()
        }
        _ => d,
    }
}

// ---- the original Message-ID ------------------------------------------------

fn original_message_id(
    msg: &Message<'_>,
    texts: &[Cow<'_, str>],
    own_id: Option<&str>,
) -> Option<String> {
    let not_own = |id: &String| own_id.is_none_or(|own| own != id.as_str());
    // The returned message, parsed by mail-parser.
    let returned = msg
        .parts
        .iter()
        .filter_map(MessagePart::message)
        // mail-parser's accessors index the root part.
        .filter(|m| !m.parts.is_empty())
        .filter_map(|m| m.message_id().map(clean_id))
        .find(|id| !id.is_empty() && not_own(id));
    if returned.is_some() {
        return returned;
    }
    // A returned message pasted into a MIME part without a blank line first:
    // its headers became the part's headers.
    let pasted = msg.parts.iter().skip(1).find_map(|p| {
        p.headers()
            .iter()
            .filter(|h| h.name == HeaderName::MessageId)
            .find_map(|h| h.value.as_text().map(clean_id))
            .filter(|id| !id.is_empty() && not_own(id))
    });
    if pasted.is_some() {
        return pasted;
    }
    // Returned headers, or a returned message mail-parser kept as bytes, and
    // then the bounce text: the first quoted Message-ID, else In-Reply-To,
    // else References.
    let returned_parts: Vec<Cow<'_, str>> = msg
        .parts
        .iter()
        .filter(|p| {
            matches!(
                part_type(p),
                Some((
                    "text" | "message",
                    "rfc822-headers" | "rfc822" | "global" | "global-headers" | "partial"
                ))
            ) || matches!(
                part_type(p),
                Some((
                    "message",
                    "delivery-status" | "global-delivery-status" | "feedback-report"
                ))
            )
        })
        .map(|p| String::from_utf8_lossy(head_bytes(p.contents(), MAX_TEXT_BYTES)))
        .collect();
    let everything = || {
        returned_parts
            .iter()
            .chain(texts.iter())
            .map(|t| head(t, MAX_TEXT_BYTES))
    };
    for names in [
        &["message-id", "original-message-id", "x-original-message-id"][..],
        &["in-reply-to"][..],
        &["references"][..],
    ] {
        if let Some(id) = everything().find_map(|t| quoted_id(t, names, own_id)) {
            return Some(id);
        }
    }
    ids_of(msg.in_reply_to())
        .map(str::to_string)
        .find(|id| not_own(id))
}

fn head_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

/// The id of the first `Name: <id>` line with one of `names`, quoted or not.
fn quoted_id(text: &str, names: &[&str], own_id: Option<&str>) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let l = line.trim_start_matches(['>', ' ', '\t']);
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        if !names.iter().any(|n| name.trim().eq_ignore_ascii_case(n)) {
            continue;
        }
        // The value may be folded onto the next line.
        let value = if value.trim().is_empty() {
            lines
                .next()
                .unwrap_or("")
                .trim_start_matches(['>', ' ', '\t'])
        } else {
            value
        };
        if let Some(id) = id_in(value).filter(|id| own_id.is_none_or(|own| own != id)) {
            return Some(id);
        }
    }
    None
}

/// The first `<id>` in a value, or its first token when it has no brackets.
fn id_in(value: &str) -> Option<String> {
    let id = match value.find('<') {
        Some(open) => {
            let rest = &value[open + 1..];
            &rest[..rest.find('>').unwrap_or(rest.len())]
        }
        None => value.split_whitespace().next().unwrap_or(""),
    };
    let id = clean_id(id);
    let ok = id.contains('@')
        && id.len() <= 250
        && !id.contains(char::is_whitespace)
        && !id.starts_with('@')
        && !id.ends_with('@');
    ok.then_some(id)
}

fn ids_of<'a>(value: &'a HeaderValue<'_>) -> impl Iterator<Item = &'a str> + 'a {
    let list: Vec<&'a str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    fn parsed(raw: &str) -> Message<'_> {
        MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap_or_default()
    }

    const DSN: &str = "Return-Path: <>\r\n\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
To: support@desk.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <bounce-1@mx.example.net>\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
<Jo@Example.com>: host mx.example.com said: 550 5.1.1 unknown user\r\n\
--b\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Original-Recipient: rfc822; Jo@Example.com\r\n\
Final-Recipient: rfc822; jo.doe@example.com\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <jo.doe@example.com>:\r\n\
\t Recipient address rejected: User unknown\r\n\
\r\n\
Final-Recipient: rfc822; late@example.com\r\n\
Action: delayed\r\n\
Status: 4.4.1\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: support@desk.test\r\n\
To: jo@example.com\r\n\
Subject: [ACME INC-000001] Printer\r\n\
Message-ID: <INC-000001.ack.abc@desk.test>\r\n\
\r\n\
Hello\r\n\
--b--\r\n";

    #[test]
    fn a_dsn_is_read() {
        let msg = parsed(DSN);
        let s = signals(&msg);
        assert!(s.multipart_report && s.null_return_path);
        assert_eq!(s.report, Some(Report::DeliveryStatus));
        let b = bounce(&msg).unwrap_or_default();
        assert_eq!(b.kind, BounceKind::Failed);
        assert_eq!(b.recipients, vec!["jo@example.com"]);
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("INC-000001.ack.abc@desk.test")
        );
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            b.diagnostic.as_deref(),
            Some("550 5.1.1 <jo.doe@example.com>: Recipient address rejected: User unknown")
        );
    }

    #[test]
    fn a_dsn_inside_multipart_mixed_is_found() {
        let raw = DSN.replace(
            "multipart/report; report-type=delivery-status;",
            "multipart/mixed;",
        );
        let msg = parsed(&raw);
        let s = signals(&msg);
        assert!(!s.multipart_report);
        assert_eq!(s.report, Some(Report::DeliveryStatus));
    }

    #[test]
    fn a_delay_names_no_failed_recipient() {
        let raw = DSN.replace("Action: failed", "Action: delayed");
        let b = bounce(&parsed(&raw)).unwrap_or_default();
        assert_eq!(b.kind, BounceKind::Delayed);
        assert!(b.recipients.is_empty(), "{:?}", b.recipients);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn an_exim_bounce_is_read_from_headers_and_text() {
        let raw = "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\n\
To: support@desk.test\r\n\
Subject: Mail delivery failed: returning message to sender\r\n\
X-Failed-Recipients: Jo@Example.com, ann@example.org\r\n\
\r\n\
This message was created automatically by mail delivery software.\r\n\
\r\n\
  jo@example.com\r\n\
    host mx.example.com [192.0.2.1]\r\n\
    SMTP error from remote mail server after RCPT TO:<jo@example.com>:\r\n\
    550 5.1.1 User unknown\r\n\
\r\n\
------ This is a copy of the message, including all the headers. ------\r\n\
\r\n\
Received: from desk.test\r\n\
Message-Id: <m1@desk.test>\r\n\
From: support@desk.test\r\n\
To: jo@example.com\r\n";
        let msg = parsed(raw);
        assert!(signals(&msg).x_failed_recipients);
        let b = bounce(&msg).unwrap_or_default();
        assert_eq!(b.recipients, vec!["jo@example.com", "ann@example.org"]);
        assert_eq!(b.original_message_id.as_deref(), Some("m1@desk.test"));
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.diagnostic.as_deref(), Some("550 5.1.1 User unknown"));
    }

    #[test]
    fn a_qmail_bounce_is_read_from_text() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\n\
To: support@desk.test\r\n\
Subject: failure notice\r\n\
Message-ID: <own@mx.example.net>\r\n\
\r\n\
Hi. This is the qmail-send program at mx.example.net.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
\r\n\
<Jo@example.com>:\r\n\
192.0.2.1 does not like recipient.\r\n\
Remote host said: 550 sorry, no mailbox here by that name\r\n\
\r\n\
--- Below this line is a copy of the message.\r\n\
\r\n\
Return-Path: <support@desk.test>\r\n\
References: <r0@cust.test> <r1@cust.test>\r\n\
In-Reply-To: <r1@cust.test>\r\n\
To: jo@example.com\r\n";
        let b = bounce(&parsed(raw)).unwrap_or_default();
        assert_eq!(b.recipients, vec!["jo@example.com"]);
        // No Message-ID quoted: the answered mail's id finds the ticket too.
        assert_eq!(b.original_message_id.as_deref(), Some("r1@cust.test"));
        assert_eq!(b.status, None);
        assert_eq!(
            b.diagnostic.as_deref(),
            Some("Remote host said: 550 sorry, no mailbox here by that name")
        );
    }

    #[test]
    fn a_feedback_report_names_no_failed_recipient() {
        let raw = "From: abuse@isp.example\r\n\
To: support@desk.test\r\n\
Subject: complaint\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
A complaint from jo@example.com\r\n\
--b\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
Original-Rcpt-To: jo@example.com\r\n\
--b\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: support@desk.test\r\n\
Message-ID: <m9@desk.test>\r\n\
--b--\r\n";
        let msg = parsed(raw);
        assert_eq!(signals(&msg).report, Some(Report::Feedback));
        let b = bounce(&msg).unwrap_or_default();
        assert_eq!(b.kind, BounceKind::Complaint);
        assert!(b.recipients.is_empty());
        assert_eq!(b.original_message_id.as_deref(), Some("m9@desk.test"));
        assert_eq!(b.diagnostic.as_deref(), Some("feedback report: abuse"));
    }

    #[test]
    fn a_dsn_behind_a_broken_boundary_is_read_as_text() {
        let raw = DSN.replace("boundary=\"b\"", "boundary=\"other\"");
        let msg = parsed(&raw);
        let b = bounce(&msg).unwrap_or_default();
        assert_eq!(b.recipients, vec!["jo@example.com"]);
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn an_expired_record_failed() {
        let raw = DSN.replace("Action: failed", "Action: expired");
        let b = bounce(&parsed(&raw)).unwrap_or_default();
        assert_eq!(b.recipients, vec!["jo@example.com"]);
    }

    #[test]
    fn a_bounce_naming_nobody_falls_back_to_the_returned_envelope() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\n\
To: support@desk.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
--- Delivery report unavailable ---\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Received: from desk.test by mx.example.net\r\n\
\tfor <Jo@Example.com>; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
From: support@desk.test\r\n\
To: jo@example.com, ann@example.com\r\n\
Message-ID: <m2@desk.test>\r\n\
\r\n\
Hello\r\n\
--b--\r\n";
        let b = bounce(&parsed(raw)).unwrap_or_default();
        assert_eq!(b.recipients, vec!["jo@example.com"]);
        assert_eq!(b.original_message_id.as_deref(), Some("m2@desk.test"));
    }

    #[test]
    fn header_signals_are_read() {
        let raw = "From: news@shop.example\r\nList-Unsubscribe: <mailto:u@shop.example>\r\n\
X-Loop: desk\r\nX-Auto-Response-Suppress: None\r\nReturn-Path: <MAILER-DAEMON>\r\n\r\nx\r\n";
        let s = signals(&parsed(raw));
        assert!(s.list_id && s.x_loop && s.null_return_path);
        assert!(!s.x_auto_response_suppress && !s.x_failed_recipients);
        assert_eq!(s.report, None);
    }

    #[test]
    fn bounce_reading_never_panics_on_odd_input() {
        for raw in [
            "",
            "From: a@b.c\r\n\r\n",
            "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient:\r\n\r\n:\r\n",
            "Content-Type: message/delivery-status\r\n\r\nStatus: 5.\r\nDiagnostic-Code: ;\r\n",
            "From: x\r\n\r\nMessage-ID:\r\nIn-Reply-To: <\r\nRCPT TO:<@>\r\n\u{e9}@\u{e9}.\u{e9}\r\n",
        ] {
            let msg = parsed(raw);
            let _ = signals(&msg);
            let _ = bounce(&msg);
        }
        assert!(addresses_in("@ a@ @b .@. x@y.z1 ok@ex-ample.com.").len() == 1);
        assert!(!is_status_code("5.1") && is_status_code("5.7.26") && !is_status_code("6.1.1"));
    }
}

/// Delivery failures in the shapes real servers write them, typed after the
/// public formats (Sisimai's and Flanker's test mails, vendors' documents),
/// read end to end through `parse`: the class, and what the bounce says.
#[cfg(test)]
mod formats {
    use crate::domain::classify::{Class, classify};
    use crate::domain::mail::{Bounce, BounceKind};
    use crate::ingest::parse::{Parsed, parse};

    /// What a case must give: class reason (`""` for a person), kind,
    /// failed recipients, status, a piece of the diagnostic, original id.
    struct Case {
        name: &'static str,
        raw: String,
        class: (&'static str, &'static str),
        kind: BounceKind,
        recipients: &'static [&'static str],
        status: Option<&'static str>,
        diagnostic: Option<&'static str>,
        original: Option<&'static str>,
    }

    fn case(name: &'static str, raw: String) -> Case {
        Case {
            name,
            raw,
            class: ("bounce", ""),
            kind: BounceKind::Failed,
            recipients: &[],
            status: None,
            diagnostic: None,
            original: None,
        }
    }

    fn check(cases: Vec<Case>) {
        for c in cases {
            let mail = match parse(c.raw.as_bytes(), 1 << 20).parsed {
                Parsed::Mail(m) => m,
                Parsed::Quarantine(r) => panic!("{}: quarantined: {r}", c.name),
            };
            let class = classify(&mail);
            assert_eq!(class.as_str(), c.class.0, "{}: {class:?}", c.name);
            if !c.class.1.is_empty() {
                assert_eq!(class.reason(), c.class.1, "{}", c.name);
            }
            if class != Class::Bounce(class.reason()) {
                assert_eq!(mail.bounce, None, "{}", c.name);
                continue;
            }
            let b: Bounce = mail.bounce.clone().unwrap_or_default();
            assert_eq!(b.kind, c.kind, "{}: {b:?}", c.name);
            assert_eq!(b.recipients, c.recipients, "{}: {b:?}", c.name);
            assert_eq!(b.status.as_deref(), c.status, "{}: {b:?}", c.name);
            if let Some(d) = c.diagnostic {
                assert!(
                    b.diagnostic.as_deref().is_some_and(|x| x.contains(d)),
                    "{}: diagnostic {:?} lacks {d:?}",
                    c.name,
                    b.diagnostic
                );
            }
            assert_eq!(b.original_message_id.as_deref(), c.original, "{}", c.name);
        }
    }

    /// A mail from `headers` (CRLF added) and a body.
    fn mail(headers: &[&str], body: &str) -> String {
        let mut s = String::new();
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.push_str(&body.replace('\n', "\r\n"));
        s
    }

    /// The desk's returned mail as a `message/rfc822` part after a text part.
    fn with_returned(headers: &[&str], text: &str, to: &str) -> String {
        let mut h: Vec<&str> = headers.to_vec();
        h.push("MIME-Version: 1.0");
        h.push("Content-Type: multipart/mixed; boundary=\"XX\"");
        mail(
            &h,
            &format!(
                "--XX\nContent-Type: text/plain; charset=utf-8\n\n{text}\n--XX\n\
Content-Type: message/rfc822\n\nFrom: support@desk.test\nTo: {to}\n\
Subject: [ACME INC-000007] Printer\nMessage-ID: <INC-000007.r.k1@desk.test>\n\n\
Hello\n--XX--\n"
            ),
        )
    }

    const SNS_HEADERS: &[&str] = &[
        "From: SES-Bounces <no-reply@sns.amazonaws.com>",
        "To: support@desk.test",
        "Subject: AWS Notification Message",
        "Message-ID: <0100018a-sns@email.amazonses.com>",
        "Content-Type: text/plain; charset=UTF-8",
        "x-amz-sns-message-id: 3f5c1a2b-0000-4000-8000-000000000001",
        "x-amz-sns-subscription-arn: arn:aws:sns:eu-west-1:123456789012:ses-bounces:abc",
    ];

    /// An SNS notification email: SES's JSON as the string `Message`.
    fn sns(inner: &str) -> String {
        let escaped = inner.replace('\\', "\\\\").replace('"', "\\\"");
        mail(
            SNS_HEADERS,
            &format!(
                "{{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"3f5c1a2b\",\n  \
\"TopicArn\" : \"arn:aws:sns:eu-west-1:123456789012:ses-bounces\",\n  \
\"Message\" : \"{escaped}\",\n  \"Timestamp\" : \"2024-05-01T10:00:00.000Z\",\n  \
\"SignatureVersion\" : \"1\"\n}}\n\n--\nIf you wish to stop receiving notifications \
from this topic, please click or visit the link below to unsubscribe:\n\
https://sns.eu-west-1.amazonaws.com/unsubscribe.html?Endpoint=support@desk.test\n"
            ),
        )
    }

    const SES_MAIL: &str = r#""mail":{"timestamp":"2024-05-01T09:59:58.000Z","source":"support@desk.test","messageId":"0102018f2a-5e5e-000000","destination":["jo@example.com"],"headersTruncated":false,"headers":[{"name":"From","value":"support@desk.test"},{"name":"To","value":"jo@example.com"},{"name":"Message-ID","value":"<INC-000007.r.k1@desk.test>"},{"name":"Subject","value":"[ACME INC-000007] Printer"}],"commonHeaders":{"from":["support@desk.test"],"to":["jo@example.com"],"messageId":"<INC-000007.r.k1@desk.test>","subject":"[ACME INC-000007] Printer"}}"#;

    #[test]
    fn amazon_ses_notifications() {
        let bounce = format!(
            r#"{{"notificationType":"Bounce","bounce":{{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{{"emailAddress":"Jo Doe <Jo@Example.com>","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}}],"timestamp":"2024-05-01T10:00:00.000Z","feedbackId":"0102-ab","reportingMTA":"dsn; a1-2.smtp-out.eu-west-1.amazonses.com"}},{SES_MAIL}}}"#
        );
        let no_header_id = bounce
            .replace(
                r#"{"name":"Message-ID","value":"<INC-000007.r.k1@desk.test>"},"#,
                "",
            )
            .replace(r#""messageId":"<INC-000007.r.k1@desk.test>","#, "");
        // Sendmail broke the long line with `!` and a folded line break.
        let broken = sns(&bounce).replacen("user unknown", "user unk!\r\n nown", 1);
        let complaint = format!(
            r#"{{"notificationType":"Complaint","complaint":{{"complainedRecipients":[{{"emailAddress":"jo@example.com"}}],"complaintFeedbackType":"abuse","userAgent":"Yahoo!"}},{SES_MAIL}}}"#
        );
        let delivery = format!(
            r#"{{"notificationType":"Delivery","delivery":{{"recipients":["jo@example.com"],"smtpResponse":"250 2.6.0 Message received","reportingMTA":"a1-2.smtp-out"}},{SES_MAIL}}}"#
        );
        // SES event publishing, without SNS's envelope, a soft bounce.
        let event = format!(
            r#"{{"eventType":"Bounce","bounce":{{"bounceType":"Transient","bounceSubType":"MailboxFull","bouncedRecipients":[{{"emailAddress":"ann@example.org"}}]}},{SES_MAIL}}}"#
        );
        let id = Some("INC-000007.r.k1@desk.test");
        check(vec![
            Case {
                class: ("bounce", "Amazon SES notification"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                diagnostic: Some("550 5.1.1 user unknown"),
                original: id,
                ..case("SNS bounce", sns(&bounce))
            },
            Case {
                class: ("bounce", "Amazon SES notification"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                diagnostic: Some("550 5.1.1 user unknown"),
                original: id,
                ..case("SNS bounce, line broken by Sendmail", broken)
            },
            Case {
                class: ("bounce", "Amazon SES notification"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                original: Some("0102018f2a-5e5e-000000"),
                ..case(
                    "SNS bounce without the Message-ID header",
                    sns(&no_header_id),
                )
            },
            Case {
                class: ("bounce", "Amazon SES notification"),
                kind: BounceKind::Complaint,
                diagnostic: Some("feedback report: abuse"),
                original: id,
                ..case("SNS complaint", sns(&complaint))
            },
            Case {
                class: ("bounce", "Amazon SES notification"),
                kind: BounceKind::Delayed,
                diagnostic: Some("250 2.6.0"),
                original: id,
                ..case("SNS delivery", sns(&delivery))
            },
            Case {
                class: ("bounce", "Amazon SES notification"),
                recipients: &["ann@example.org"],
                diagnostic: Some("Transient bounce (MailboxFull)"),
                original: id,
                ..case(
                    "SES event publishing",
                    mail(
                        &[
                            "From: ses-events@desk.test",
                            "To: support@desk.test",
                            "Subject: SES event",
                            "Auto-Submitted: auto-generated",
                        ],
                        &event,
                    ),
                )
            },
            Case {
                class: ("auto_reply", "notification service"),
                ..case(
                    "another SNS notification",
                    mail(
                        SNS_HEADERS,
                        "{\"Type\":\"Notification\",\"Message\":\"disk full\"}",
                    ),
                )
            },
        ]);
    }

    #[test]
    fn mailing_list_rejections() {
        let mailman2 = with_returned(
            &[
                "From: foo-owner@lists.example.org",
                "To: support@desk.test",
                "Subject: Request to mailing list Foo rejected",
                "Message-ID: <mailman.1.1714550000.1234.foo@lists.example.org>",
                "Precedence: bulk",
                "X-BeenThere: foo@lists.example.org",
                "X-Mailman-Version: 2.1.39",
                "List-Id: Foo <foo.lists.example.org>",
            ],
            "Your request to the Foo mailing list\n\n    Posting of your message titled \
\"[ACME INC-000007] Printer\"\n\nhas been rejected by the list moderator.  The moderator \
gave the following reason for rejecting your request:\n\n\"You are not allowed to post to \
this mailing list, and your message has been automatically rejected.  If you think that \
your messages are being rejected in error, contact the mailing list owner at \
foo-owner@lists.example.org.\"\n\nAny questions or comments should be directed to the list \
administrator at:\n\n    foo-owner@lists.example.org\n",
            "foo@lists.example.org, jo@example.com",
        );
        let mailman3 = with_returned(
            &[
                "From: foo-bounces@lists.example.org",
                "To: support@desk.test",
                "Subject: Your message to foo@lists.example.org was rejected",
                "Auto-Submitted: auto-replied",
                "Precedence: bulk",
            ],
            "Your message to the foo mailing list was rejected for the following\nreasons:\n\n\
The message is not from a list member\n",
            "foo@lists.example.org",
        );
        let sympa = with_returned(
            &[
                "From: SYMPA <sympa@lists.example.org>",
                "To: support@desk.test",
                "Subject: Message distribution: Forbidden",
                "Auto-Submitted: auto-replied",
            ],
            "Your message for list 'staff' (attached below) was rejected.\n\
You are not allowed to send messages to this list.\n",
            "staff@lists.example.org",
        );
        let listserv = with_returned(
            &[
                "From: \"L-Soft list server at LISTS.EXAMPLE.ORG (16.0)\" <LISTSERV@LISTS.EXAMPLE.ORG>",
                "To: support@desk.test",
                "Subject: Re: [ACME INC-000007] Printer",
                "Precedence: bulk",
            ],
            "You are not authorized to send mail to the HELP-L list from your\n\
support@desk.test account. You might be authorized to send to the list from\n\
another of your accounts.\n",
            "HELP-L@LISTS.EXAMPLE.ORG",
        );
        let google_groups = mail(
            &[
                "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                "To: support@desk.test",
                "Subject: Delivery Status Notification (Failure)",
                "Auto-Submitted: auto-replied",
                "In-Reply-To: <INC-000007.r.k1@desk.test>",
                "Content-Type: text/plain; charset=UTF-8",
            ],
            "** You do not have permission to post **\n\nYour message wasn't delivered to \
team@googlegroups.com because you do not have permission to post to this group. \
If you have questions about this group, contact the group owner.\n",
        );
        let ezmlm = mail(
            &[
                "From: MAILER-DAEMON@lists.example.org",
                "To: support@desk.test",
                "Subject: failure notice",
            ],
            "Hi. This is the qmail-send program at lists.example.org.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
<dev@lists.example.org>:\nSorry, only subscribers may post. If you are a subscriber, \
please forward\nthis message to dev-owner@lists.example.org to get your new address \
included (#5.7.2)\n\n--- Below this line is a copy of the message.\n\n\
Message-ID: <INC-000007.r.k1@desk.test>\nTo: dev@lists.example.org\n",
        );
        let held = with_returned(
            &[
                "From: foo-owner@lists.example.org",
                "To: support@desk.test",
                "Subject: Your message to Foo awaits moderator approval",
                "Precedence: bulk",
                "List-Id: Foo <foo.lists.example.org>",
            ],
            "Your mail to 'Foo' with the subject\n\n    Printer\n\nIs being held until the \
list moderator can review it for approval.\n\nThe reason it is being held:\n\n    Post by \
non-member to a members-only list\n",
            "foo@lists.example.org",
        );
        let id = Some("INC-000007.r.k1@desk.test");
        check(vec![
            Case {
                class: ("bounce", "mailing list rejection"),
                recipients: &["foo@lists.example.org"],
                diagnostic: Some("rejected"),
                original: id,
                ..case("Mailman 2", mailman2)
            },
            Case {
                class: ("bounce", "mailing list rejection"),
                recipients: &["foo@lists.example.org"],
                diagnostic: Some("was rejected"),
                original: id,
                ..case("Mailman 3", mailman3)
            },
            Case {
                class: ("bounce", "mailing list rejection"),
                recipients: &["staff@lists.example.org"],
                diagnostic: Some("was rejected"),
                original: id,
                ..case("Sympa", sympa)
            },
            Case {
                class: ("bounce", "mailing list rejection"),
                recipients: &["help-l@lists.example.org"],
                diagnostic: Some("not authorized to send mail to the HELP-L list"),
                original: id,
                ..case("LISTSERV", listserv)
            },
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["team@googlegroups.com"],
                diagnostic: Some("permission to post"),
                original: id,
                ..case("Google Groups", google_groups)
            },
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["dev@lists.example.org"],
                status: Some("5.7.2"),
                original: id,
                ..case("ezmlm through qmail", ezmlm)
            },
            Case {
                class: ("auto_reply", ""),
                ..case("Mailman: held for the moderator", held)
            },
        ]);
    }

    #[test]
    fn plain_text_delivery_failures() {
        let daemon = |subject: &'static str, extra: &'static str| -> Vec<&'static str> {
            let mut h = vec![
                "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
                "To: support@desk.test",
                subject,
            ];
            if !extra.is_empty() {
                h.push(extra);
            }
            h
        };
        let exim = mail(
            &daemon(
                "Subject: Mail delivery failed: returning message to sender",
                "Auto-Submitted: auto-replied",
            ),
            "This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\n\
  jo@example.com\n    host mx.example.com [192.0.2.1]\n\
    SMTP error from remote mail server after RCPT TO:<jo@example.com>:\n\
    550 5.1.1 <jo@example.com>: Recipient address rejected: User unknown\n\n\
------ This is a copy of the message, including all the headers. ------\n\n\
Return-path: <support@desk.test>\nMessage-Id: <INC-000007.r.k1@desk.test>\n",
        );
        let postfix = mail(
            &daemon("Subject: Undelivered Mail Returned to Sender", ""),
            "This is the mail system at host mx.example.net.\n\n\
I'm sorry to have to inform you that your message could not\n\
be delivered to one or more recipients. It's attached below.\n\n\
<jo@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1\n\
    <jo@example.com>: Recipient address rejected: User unknown in local\n\
    recipient table (in reply to RCPT TO command)\n\n\
--- Undelivered message headers follow ---\n\
Message-ID: <INC-000007.r.k1@desk.test>\n",
        );
        // Office 365 through a relay that kept only the text, with
        // auto-reply headers: a bounce all the same.
        let office365 = mail(
            &[
                "From: Mail Gateway <gateway@example.com>",
                "To: support@desk.test",
                "Subject: Printer",
                "Auto-Submitted: auto-replied",
                "X-Autoreply: yes",
                "In-Reply-To: <INC-000007.r.k1@desk.test>",
            ],
            "Your message to jo@example.com couldn\u{2019}t be delivered.\n\
jo wasn't found at example.com.\n\nsupport    Office 365    jo\nAction Required\n\n\
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not \
found by SMTP address lookup'\n",
        );
        let exchange_de = mail(
            &[
                "From: Microsoft Outlook <gateway@firma.example>",
                "To: support@desk.test",
                "Subject: Drucker",
                "Auto-Submitted: auto-generated",
            ],
            "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\n\n\
jo@firma.example\nDie eingegebene E-Mail-Adresse wurde nicht gefunden.\n\n\
Diagnoseinformationen für Administratoren:\n\nGenerierender Server: mx.firma.example\n\n\
jo@firma.example\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipientNotFound'\n\n\
Ursprüngliche Nachrichtenkopfzeilen:\n\nMessage-ID: <INC-000007.r.k1@desk.test>\n",
        );
        let exchange_fr = mail(
            &[
                "From: Microsoft Outlook <gateway@societe.example>",
                "To: support@desk.test",
                "Subject: Imprimante",
                "X-Autoreply: yes",
            ],
            "La remise à ces destinataires ou groupes a échoué :\n\n\
jean@societe.example\nL'adresse de messagerie que vous avez entrée est introuvable.\n",
        );
        let exchange_es = mail(
            &[
                "From: Microsoft Outlook <gateway@empresa.example>",
                "To: support@desk.test",
                "Subject: Impresora",
                "Precedence: bulk",
            ],
            "Error en la entrega a estos destinatarios o grupos:\n\n\
ana@empresa.example\nNo se encontró la dirección de correo electrónico.\n",
        );
        let notes = mail(
            &[
                "From: Mail Router <router@notes.example>",
                "To: support@desk.test",
                "Subject: Printer",
                "Auto-Submitted: auto-generated",
            ],
            "Your message\n\n  Subject: [ACME INC-000007] Printer\n\nwas not delivered to:\n\n\
  jo@notes.example\n\nbecause:\n\n  User jo (jo@notes.example) not listed in Domino \
Directory\n",
        );
        let yahoo = mail(
            &[
                "From: MAILER-DAEMON@yahoo.com",
                "To: support@desk.test",
                "Subject: Failure Notice",
            ],
            "Sorry, we were unable to deliver your message to the following address.\n\n\
<jo@example.com>:\nRemote host said: 550 5.1.1 <jo@example.com>: Recipient address \
rejected: User unknown [RCPT_TO]\n\n--- Below this line is a copy of the message.\n\n\
Message-ID: <INC-000007.r.k1@desk.test>\n",
        );
        let gmail = mail(
            &[
                "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                "To: support@desk.test",
                "Subject: Delivery Status Notification (Failure)",
                "Auto-Submitted: auto-replied",
                "In-Reply-To: <INC-000007.r.k1@desk.test>",
            ],
            "** Address not found **\n\nYour message wasn't delivered to jo@example.com \
because the address couldn't be found, or is unable to receive mail.\n\n\
The response from the remote server was:\n550 5.1.1 The email account that you tried \
to reach does not exist.\n",
        );
        let id = Some("INC-000007.r.k1@desk.test");
        let text = ("bounce", "delivery failure text");
        check(vec![
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                diagnostic: Some("User unknown"),
                original: id,
                ..case("Exim with Auto-Submitted", exim)
            },
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                original: id,
                ..case("Postfix without a report part", postfix)
            },
            Case {
                class: text,
                recipients: &["jo@example.com"],
                status: Some("5.1.10"),
                diagnostic: Some("RecipientNotFound"),
                original: id,
                ..case("Office 365 text with X-Autoreply", office365)
            },
            Case {
                class: text,
                recipients: &["jo@firma.example"],
                status: Some("5.1.1"),
                original: id,
                ..case("Exchange, German", exchange_de)
            },
            Case {
                class: text,
                recipients: &["jean@societe.example"],
                diagnostic: Some("a échoué"),
                ..case("Exchange, French", exchange_fr)
            },
            Case {
                class: text,
                recipients: &["ana@empresa.example"],
                diagnostic: Some("Error en la entrega"),
                ..case("Exchange, Spanish", exchange_es)
            },
            Case {
                class: text,
                recipients: &["jo@notes.example"],
                diagnostic: Some("was not delivered to"),
                ..case("Lotus Notes", notes)
            },
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                original: id,
                ..case("Yahoo", yahoo)
            },
            Case {
                class: ("bounce", "sent by MAILER-DAEMON/postmaster"),
                recipients: &["jo@example.com"],
                status: Some("5.1.1"),
                original: id,
                ..case("Gmail", gmail)
            },
        ]);
    }

    /// People and auto-replies stay what they are, whatever their body says.
    #[test]
    fn what_is_not_a_failure_stays_as_it_was() {
        let bounce_text = "Delivery has failed to these recipients or groups:\n\n\
jo@example.com\nThe email address you entered couldn't be found.\n";
        check(vec![
            Case {
                class: ("normal", ""),
                ..case(
                    "a person forwarding a bounce",
                    mail(
                        &[
                            "From: Ann <ann@example.org>",
                            "To: support@desk.test",
                            "Subject: Fwd: Undeliverable: Printer",
                        ],
                        &format!("Why do I get this?\n\n-----Original Message-----\n{bounce_text}"),
                    ),
                )
            },
            Case {
                class: ("normal", ""),
                ..case(
                    "a person pasting a bounce at the top",
                    mail(
                        &[
                            "From: Ann <ann@example.org>",
                            "To: support@desk.test",
                            "Subject: mails to jo fail",
                        ],
                        bounce_text,
                    ),
                )
            },
            Case {
                class: ("auto_reply", "mailing list"),
                ..case(
                    "a person's list post about a bounce",
                    mail(
                        &[
                            "From: Ann <ann@example.org>",
                            "To: users@lists.example.org",
                            "Subject: Re: NDRs from Exchange",
                            "List-Id: Users <users.lists.example.org>",
                            "Precedence: list",
                        ],
                        bounce_text,
                    ),
                )
            },
            Case {
                class: ("auto_reply", "Auto-Submitted"),
                ..case(
                    "a vacation reply",
                    mail(
                        &[
                            "From: Jo <jo@example.com>",
                            "To: support@desk.test",
                            "Subject: Printer",
                            "Auto-Submitted: auto-replied",
                        ],
                        "I am out of the office until Monday and will read your message \
then. Urgent matters: ann@example.com.\n",
                    ),
                )
            },
        ]);
    }

    #[test]
    fn odd_bodies_do_not_panic() {
        for body in [
            "{",
            "{\"notificationType\":",
            "{\"Type\":\"Notification\",\"Message\":\"{\\\"notificationType\\\":\\\"Bounce\\\"}\"}",
            "{\"eventType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[{\"emailAddress\":7}]}}",
            "{\"notificationType\":\"Bounce\",\"bounce\":[],\"mail\":{\"headers\":{}}}",
            "\u{e9}\u{e9} was not delivered to \u{e9}@\u{e9}\n",
            "you are not a member of\n",
        ] {
            let raw = mail(
                &["From: noreply@x.example", "Auto-Submitted: auto-generated"],
                body,
            );
            let _ = parse(raw.as_bytes(), 1 << 20);
        }
    }
}

/// The robot corpus (real DSNs, bounces, ARF reports, vacation replies) must
/// be recognised; the human corpus must stay Normal.
#[cfg(test)]
mod corpus {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use mail_parser::MessageParser;

    use crate::domain::classify::{Class, classify};
    use crate::domain::mail::{BounceKind, Inbound, Report};
    use crate::ingest::parse::{Parsed, parse};

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");
    /// The shares reached; they must not fall. Of the mails `parse` keeps,
    /// one is missed on purpose (a person forwarding a bounce).
    const MIN_KEPT_RECOGNISED_PERCENT: f64 = 99.5;
    /// All mails, counting those `parse` quarantines for want of a sender
    /// address as not recognised.
    const MIN_RECOGNISED_PERCENT: f64 = 99.5;

    fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if keep(&p) {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    enum Read {
        Mail(Vec<u8>, Box<Inbound>),
        Quarantined(Vec<u8>, String),
        Unreadable,
    }

    fn read(path: &Path) -> Read {
        let Ok(raw) = std::fs::read(path) else {
            return Read::Unreadable;
        };
        match parse(&raw, usize::MAX).parsed {
            Parsed::Mail(m) => Read::Mail(raw, m),
            Parsed::Quarantine(reason) => Read::Quarantined(raw, reason),
        }
    }

    /// What classify says from the signals and subject alone, for a mail
    /// `parse` did not keep.
    fn classify_signals(raw: &[u8]) -> Class {
        let Some(msg) = MessageParser::default().parse(raw) else {
            return Class::Normal;
        };
        classify(&Inbound {
            subject: msg.subject().unwrap_or("").trim().to_string(),
            robot: super::signals(&msg),
            ..Default::default()
        })
    }

    fn name(path: &Path) -> String {
        path.strip_prefix(ROOT)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn pct(n: usize, of: usize) -> f64 {
        100.0 * n as f64 / of.max(1) as f64
    }

    #[test]
    fn autoreplies_and_bounces_are_recognised() {
        let dir = Path::new(ROOT).join("autoreplies-bounces");
        if !dir.is_dir() {
            println!("corpus not found at {}: skipped", dir.display());
            return;
        }
        let all = files(&dir, &|p| p.extension().is_some_and(|e| e == "eml"));
        let (mut kept, mut recognised, mut quarantined, mut quarantined_recognised) = (0, 0, 0, 0);
        let (mut bounces, mut with_rcpt, mut with_id, mut with_status, mut delays) =
            (0, 0, 0, 0, 0);
        let mut feedback = (0, 0);
        let mut misses = Vec::new();
        let mut no_rcpt = Vec::new();
        let mut no_id = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        // The text fallback checked against the DSN where a mail has both.
        let (mut both, mut agree) = (0, 0);
        for path in &all {
            let (raw, mail) = match read(path) {
                Read::Mail(raw, mail) => (raw, mail),
                Read::Quarantined(raw, reason) => {
                    quarantined += 1;
                    let class = classify_signals(&raw);
                    quarantined_recognised += usize::from(class != Class::Normal);
                    misses.push(format!(
                        "{}: quarantined by parse ({reason}); from its signals: {} ({})",
                        name(path),
                        class.as_str(),
                        class.reason()
                    ));
                    continue;
                }
                Read::Unreadable => {
                    misses.push(format!("{}: unreadable", name(path)));
                    continue;
                }
            };
            kept += 1;
            let class = classify(&mail);
            *reasons
                .entry(format!("{} / {}", class.as_str(), class.reason()))
                .or_default() += 1;
            if class == Class::Normal {
                misses.push(format!(
                    "{}: normal, subject {:?}",
                    name(path),
                    mail.subject
                ));
                continue;
            }
            recognised += 1;
            let b = mail.bounce.clone().unwrap_or_default();
            if b.kind == BounceKind::Complaint {
                feedback.0 += 1;
                feedback.1 += usize::from(b.original_message_id.is_some());
                continue;
            }
            if !class.is_bounce() {
                continue;
            }
            bounces += 1;
            if !b.recipients.is_empty() {
                with_rcpt += 1;
            } else if b.kind == BounceKind::Delayed {
                // A delay notice: nothing failed (yet).
                delays += 1;
            } else {
                no_rcpt.push(format!("{} ({})", name(path), class.reason()));
            }
            if b.original_message_id.is_some() {
                with_id += 1;
            } else {
                no_id.push(name(path));
            }
            with_status += usize::from(b.status.is_some());
            if let Some(msg) = MessageParser::default().parse(&raw)
                && msg
                    .headers_raw()
                    .all(|(n, _)| !n.eq_ignore_ascii_case("X-Failed-Recipients"))
                && !b.recipients.is_empty()
                && super::report_part(&msg) == Some(Report::DeliveryStatus)
            {
                let text: String = super::bounce_texts(&msg)
                    .iter()
                    .map(|t| super::above_returned_message(t).to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                let exclude = super::not_recipients(&msg, msg.message_id());
                let from_text = super::text_recipients(&text, &exclude);
                both += 1;
                agree += usize::from(from_text.first() == b.recipients.first());
            }
        }
        let total = all.len();
        println!(
            "autoreplies-bounces corpus: {recognised}/{total} recognised ({:.1}%)",
            pct(recognised, total)
        );
        println!(
            "  of the {kept} mails parse keeps: {recognised} recognised ({:.1}%); \
{quarantined} quarantined by parse, of which {quarantined_recognised} are recognised \
from their signals alone",
            pct(recognised, kept)
        );
        println!("  classes: {reasons:#?}");
        println!(
            "  bounces (feedback reports apart): {bounces}; failed recipient extracted \
{with_rcpt} ({:.1}%), delay notices without failed recipient {delays}, \
original Message-ID {with_id} ({:.1}%), status {with_status} ({:.1}%)",
            pct(with_rcpt, bounces),
            pct(with_id, bounces),
            pct(with_status, bounces)
        );
        println!(
            "  feedback reports: {}, original Message-ID extracted {}",
            feedback.0, feedback.1
        );
        println!(
            "  text fallback vs DSN (first failed recipient): {agree}/{both} agree ({:.1}%)",
            pct(agree, both)
        );
        println!("misses ({}):", misses.len());
        for m in &misses {
            println!("  {m}");
        }
        println!(
            "bounces without failed recipient, delays apart ({}):",
            no_rcpt.len()
        );
        for m in &no_rcpt {
            println!("  {m}");
        }
        println!("bounces without original Message-ID ({}):", no_id.len());
        for m in &no_id {
            println!("  {m}");
        }
        assert!(
            pct(recognised, kept) >= MIN_KEPT_RECOGNISED_PERCENT,
            "recognised share of kept mails fell below {MIN_KEPT_RECOGNISED_PERCENT}%"
        );
        assert!(
            pct(recognised, total) >= MIN_RECOGNISED_PERCENT,
            "recognised share fell below {MIN_RECOGNISED_PERCENT}%"
        );
        assert_eq!(
            quarantined_recognised, quarantined,
            "a quarantined robot mail would not be recognised"
        );
    }

    #[test]
    fn human_mail_is_normal() {
        let root = Path::new(ROOT);
        if !root.is_dir() {
            println!("corpus not found at {}: skipped", root.display());
            return;
        }
        let mut human = files(&root.join("replies/talon"), &|p| {
            p.extension().is_some_and(|e| e == "eml")
        });
        human.extend(files(&root.join("threads/notmuch-default"), &|p| {
            p.extension().is_none()
        }));
        let (mut normal, mut via_list) = (0, 0);
        let mut false_positives = Vec::new();
        for path in &human {
            let mail = match read(path) {
                Read::Mail(_, mail) => mail,
                Read::Quarantined(_, reason) => {
                    false_positives.push(format!("{}: quarantined: {reason}", name(path)));
                    continue;
                }
                Read::Unreadable => continue,
            };
            match classify(&mail) {
                Class::Normal => normal += 1,
                // A person's post through a mailing list: RFC 3834 says not
                // to answer it, and the rules say so on purpose.
                Class::AutoReply("mailing list")
                    if mail.robot.list_id
                        || mail
                            .robot
                            .precedence
                            .as_deref()
                            .is_some_and(|p| p.eq_ignore_ascii_case("list")) =>
                {
                    via_list += 1
                }
                c => false_positives.push(format!(
                    "{}: {} ({}) subject {:?}",
                    name(path),
                    c.as_str(),
                    c.reason(),
                    mail.subject
                )),
            }
        }
        println!(
            "human corpus: {} mails, {normal} normal, {via_list} posts via a mailing list \
(auto_reply / mailing list by rule), {} false positives",
            human.len(),
            false_positives.len()
        );
        for f in &false_positives {
            println!("  {f}");
        }
        assert!(
            human.len() >= 60,
            "human corpus incomplete: {}",
            human.len()
        );
        assert!(false_positives.is_empty(), "{false_positives:#?}");
    }
}
