//! Raw RFC 5322 bytes to an [`Inbound`], with mail-parser. Never fails: what
//! cannot be read becomes a warning on the mail, and only a mail the desk
//! cannot keep as a ticket message at all (too large, not a mail, no sender)
//! is sent to quarantine with the reason. Charsets never are: text that is
//! not UTF-8 under UTF-8, ASCII, no charset or an unknown one (body, raw
//! 8-bit subject, file names, RFC 2231 ones included) is read as UTF-8
//! where it is and Windows-1252 elsewhere, with a warning.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::domain::mail::{
    Address, AttachmentMeta, Inbound, dedup_key, one_line, sanitize_filename, without_nul,
};
use crate::domain::quote::HtmlText;

/// Text bodies longer than this are cut on the ticket; the raw mail keeps all.
const MAX_TEXT_CHARS: usize = 1 << 20;

#[derive(Debug, Clone)]
pub enum Parsed {
    Mail(Box<Inbound>),
    Quarantine(String),
}

/// A parsed mail with the key the pipeline deduplicates by.
#[derive(Debug, Clone)]
pub struct ParsedMail {
    pub dedup_key: String,
    pub parsed: Parsed,
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// [`parse`] with a panic in the parser caught: the mail is quarantined
/// with the panic's message instead of failing its batch.
pub fn parse_guarded(raw: &[u8], max_bytes: usize) -> ParsedMail {
    std::panic::catch_unwind(|| parse(raw, max_bytes)).unwrap_or_else(|panic| ParsedMail {
        dedup_key: dedup_key(None, &sha256_hex(raw)),
        parsed: Parsed::Quarantine(format!(
            "the parser panicked: {}",
            crate::panic_message(&*panic)
        )),
    })
}

/// A mail the server says is larger than `ingest.max_message_bytes`, of
/// which only `prefix` was fetched: quarantined with its size, the prefix
/// kept so that the quarantine shows whose and what it was.
pub fn too_large(prefix: &[u8], size: u64, max_bytes: usize) -> ParsedMail {
    ParsedMail {
        dedup_key: dedup_key(None, &sha256_hex(prefix)),
        parsed: Parsed::Quarantine(format!(
            "message is {size} bytes, more than ingest.max_message_bytes ({max_bytes}); \
             its first {} bytes are kept here, the whole mail stays in the mailbox",
            prefix.len()
        )),
    }
}

pub fn parse(raw: &[u8], max_bytes: usize) -> ParsedMail {
    // Hashing the whole mail costs as much as parsing it: only done when the
    // mail has no Message-ID to deduplicate by.
    let by_hash = || dedup_key(None, &sha256_hex(raw));
    let quarantine = |reason: String| ParsedMail {
        dedup_key: by_hash(),
        parsed: Parsed::Quarantine(reason),
    };
    if raw.len() > max_bytes {
        return quarantine(format!(
            "message is {} bytes, more than ingest.max_message_bytes ({max_bytes})",
            raw.len()
        ));
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return quarantine("message is empty".into());
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        return quarantine("not an RFC 5322 message: no header could be read".into());
    };
    if msg.headers().is_empty() {
        return quarantine("not an RFC 5322 message: no header could be read".into());
    }

    let message_id = msg.message_id().map(clean_id).filter(|id| !id.is_empty());
    let key = match &message_id {
        Some(id) => dedup_key(Some(id), ""),
        None => by_hash(),
    };
    let mut warnings = super::repairs::warnings(&msg);
    let robot = super::robot::signals(&msg);

    let from = first_address(msg.from())
        .or_else(|| first_address(msg.sender()))
        .or_else(|| {
            msg.return_address()
                .filter(|a| a.contains('@'))
                .map(|a| Address::new("", a))
        });
    // Many MTAs send bounces from a bare `MAILER-DAEMON` or `<>`: such a
    // mail is still a bounce the desk must read, so it keeps a placeholder sender.
    let from = from.or_else(|| {
        let daemon_name = msg
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name().or(a.address()))
            .is_some_and(|n| {
                let n = n.to_ascii_lowercase();
                n.contains("mailer-daemon")
                    || n.contains("mail delivery")
                    || n.contains("postmaster")
            });
        let bounce = robot.null_return_path
            || robot.x_failed_recipients
            || robot.report == Some(crate::domain::mail::Report::DeliveryStatus)
            || daemon_name;
        bounce.then(|| {
            warnings.push("no sender address; kept as a bounce from MAILER-DAEMON".into());
            Address::new("Mail Delivery System", "mailer-daemon")
        })
    });
    let Some(from) = from else {
        return ParsedMail {
            dedup_key: key,
            parsed: Parsed::Quarantine(
                "no sender: neither From, Sender nor Return-Path holds an address".into(),
            ),
        };
    };
    let to = addresses(msg.to());
    let cc = addresses(msg.cc());
    if msg.from().is_none() {
        warnings.push("no readable From header; sender taken from Sender or Return-Path".into());
    }
    if message_id.is_none() {
        warnings.push("no Message-ID; deduplicated by content hash".into());
    }

    unanswerable_warnings(std::iter::once(&from).chain(&to).chain(&cc), &mut warnings);

    // A mail whose only text is HTML is read once, by the quote reader, for
    // the whole text and the reply alike.
    let html_only = msg
        .text_body
        .first()
        .filter(|&&i| msg.html_body.first() == Some(&i))
        .and_then(|&i| match &msg.parts.get(i as usize)?.body {
            PartType::Html(h) => Some(HtmlText::read(h)),
            _ => None,
        });
    let mut text = match &html_only {
        Some(h) => without_nul(&h.whole).into_owned(),
        None => msg
            .body_text(0)
            .map(|t| without_nul(&t).into_owned())
            .unwrap_or_default(),
    };
    if text.contains(REPLACEMENT)
        && let Some(readable) = readable_body(&msg)
    {
        text = without_nul(&readable).into_owned();
        warnings.push(format!("text body: {NOT_UTF8}"));
    }
    if msg.text_body.is_empty() && msg.html_body.is_empty() && msg.attachments.is_empty() {
        warnings.push("no readable body".into());
    }
    let attachments = msg
        .attachments
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize).map(|p| (id, p)))
        .map(|(id, part)| {
            let content_type = content_type_of(part);
            let bytes = part.contents();
            AttachmentMeta {
                part: id,
                filename: sanitize_filename(&attachment_name(&msg, part)),
                content_type,
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            }
        })
        .collect();

    let mut inbound = Inbound {
        message_id,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        from: Some(from),
        to,
        cc,
        subject: one_line(&subject(&msg)),
        delivered_to: header_list(&msg, &["Delivered-To", "X-Original-To"]),
        auth_results: header_list(&msg, &["Authentication-Results"]),
        text: String::new(),
        new_text: None,
        attachments,
        robot,
        bounce: None,
        warnings,
    };
    // Bodies are searched for bounce facts only when the mail is a bounce,
    // and for a failure a robot states in its body only when the headers
    // did not make it one.
    let class = crate::domain::classify::classify(&inbound);
    if crate::domain::classify::body_may_tell(&inbound, &class) {
        inbound.robot.failure_text = super::robot::failure_text(&msg);
    }
    if class.is_bounce() || inbound.robot.failure_text.is_some() {
        inbound.bounce = super::robot::bounce(&msg);
    }
    if inbound.may_thread() {
        let (shown, whole) = new_text(&msg, &text, html_only.as_ref());
        if whole {
            let warning = crate::domain::quote::WHOLE_TEXT_SHOWN;
            inbound.warnings.push(warning.into());
        }
        inbound.new_text = Some(shown);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        text = text.chars().take(MAX_TEXT_CHARS).collect();
        inbound.warnings.push(format!(
            "text body cut at {MAX_TEXT_CHARS} characters; the raw mail keeps all"
        ));
    }
    inbound.text = text;
    ParsedMail {
        dedup_key: key,
        parsed: Parsed::Mail(Box::new(inbound)),
    }
}

const REPLACEMENT: char = '\u{FFFD}';
const NOT_UTF8: &str = "bytes that are not UTF-8 read as Windows-1252 (Latin-1)";

/// Bytes as UTF-8 where they are UTF-8, every other byte as Windows-1252:
/// text without a charset, with a wrong one or one nobody knows
/// (`unknown-8bit`) is UTF-8 or Latin-1 nearly always, and reads back so.
pub(crate) fn lenient(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push(match b {
                0x80..=0x9f => HIGH[usize::from(b - 0x80)],
                _ => char::from(b),
            });
        }
    }
    out
}

/// Whether mail-parser decodes `charset` itself (and its U+FFFD are the
/// text's own): any known charset but UTF-8 and ASCII, which 8-bit mail
/// declares wrongly most often.
fn decodes_itself(charset: Option<&str>) -> bool {
    charset.is_some_and(|c| {
        let c = c.trim().to_ascii_lowercase();
        !matches!(c.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii")
            && mail_parser::decoders::charsets::map::charset_decoder(c.as_bytes()).is_some()
    })
}

/// The first text part read again from its raw bytes with [`lenient`],
/// for a text mail-parser could only read with U+FFFD in it (bytes that
/// are not UTF-8 under UTF-8, ASCII, no charset or an unknown one).
fn readable_body(msg: &mail_parser::Message<'_>) -> Option<String> {
    use mail_parser::Encoding;
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
    let part = msg.parts.get(*msg.text_body.first()? as usize)?;
    if !matches!(part.body, PartType::Text(_))
        || decodes_itself(part.content_type().and_then(|ct| ct.attribute("charset")))
    {
        return None;
    }
    let raw = msg
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        Encoding::None => raw.to_vec(),
        Encoding::QuotedPrintable => quoted_printable_decode(raw)?,
        Encoding::Base64 => base64_decode(raw)?,
    };
    let text = lenient(&bytes);
    let fewer = |t: &str| t.matches(REPLACEMENT).count();
    let before = match &part.body {
        PartType::Text(t) => fewer(t),
        _ => 0,
    };
    (fewer(&text) < before).then_some(text)
}

/// The subject; one written in raw 8-bit bytes that are not UTF-8 is read
/// with [`lenient`] (encoded words are mail-parser's to decode).
fn subject(msg: &mail_parser::Message<'_>) -> String {
    let parsed = msg.subject().unwrap_or("");
    if !parsed.contains(REPLACEMENT) {
        return parsed.to_string();
    }
    msg.parts
        .first()
        .and_then(|p| {
            p.headers
                .iter()
                .find(|h| h.name == mail_parser::HeaderName::Subject)
        })
        .and_then(|h| {
            msg.raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
        })
        .filter(|raw| !raw.windows(2).any(|w| w == b"=?"))
        .map(|raw| lenient(raw).trim().to_string())
        .unwrap_or_else(|| parsed.to_string())
}

/// An attachment's file name; one mail-parser read with U+FFFD in it (raw
/// 8-bit bytes, or RFC 2231 percent-escapes that are not UTF-8) is read
/// again from the part's raw header: RFC 2231 (`filename*=cs'lang'v`,
/// continued as `filename*0*=`) in its charset, else [`lenient`].
fn attachment_name(msg: &mail_parser::Message<'_>, part: &mail_parser::MessagePart<'_>) -> String {
    let parsed = part.attachment_name().unwrap_or("");
    if !parsed.contains(REPLACEMENT) && !parsed.contains("ï¿½") {
        return parsed.to_string();
    }
    msg.raw_message
        .get(part.offset_header as usize..part.offset_body as usize)
        .and_then(|raw| raw_file_name(raw, "filename").or_else(|| raw_file_name(raw, "name")))
        .unwrap_or_else(|| parsed.to_string())
}

/// The `param` of a raw MIME header block, RFC 2231 or plain.
fn raw_file_name(header: &[u8], param: &str) -> Option<String> {
    // Parameters split at `;`, unfolded; quoted `;` are rare in names.
    let mut extended: Vec<u8> = Vec::new();
    let mut charset: Option<String> = None;
    let mut plain: Option<Vec<u8>> = None;
    for piece in header.split(|&b| b == b';' || b == b'\n') {
        let piece = piece.trim_ascii();
        let Some(eq) = piece.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (
            lenient(piece[..eq].trim_ascii()),
            piece[eq + 1..].trim_ascii(),
        );
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        let name = name.to_ascii_lowercase();
        let Some(rest) = name.strip_prefix(param) else {
            continue;
        };
        if rest.is_empty() {
            plain.get_or_insert_with(|| value.to_vec());
        } else if rest.starts_with('*') {
            let encoded = rest.ends_with('*');
            let mut value = value;
            if encoded && charset.is_none() {
                // `charset'language'` before the first piece.
                let mut quotes = value.splitn(3, |&b| b == b'\'');
                if let (Some(cs), Some(_), Some(v)) = (quotes.next(), quotes.next(), quotes.next())
                {
                    charset = Some(lenient(cs));
                    value = v;
                }
            }
            if encoded {
                extended.extend(percent_decode(value));
            } else {
                extended.extend_from_slice(value);
            }
        }
    }
    if !extended.is_empty() {
        let cs = charset.unwrap_or_default();
        let decoded = if decodes_itself(Some(&cs)) {
            mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes())
                .map(|d| d(&extended))
                .filter(|t| !t.contains(REPLACEMENT))
        } else {
            None
        };
        return Some(decoded.unwrap_or_else(|| lenient(&extended)));
    }
    plain.map(|p| lenient(&p))
}

fn percent_decode(value: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let escaped = (value[i] == b'%')
            .then(|| Some(hex(*value.get(i + 1)?)? * 16 + hex(*value.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b as u8);
                i += 3;
            }
            None => {
                out.push(value[i]);
                i += 1;
            }
        }
    }
    out
}

/// What the writer added, without quoted history and signature: from the
/// plain part when there is one, else from the HTML part; and whether the
/// cut left nothing, so the whole text is shown.
fn new_text(
    msg: &mail_parser::Message<'_>,
    text: &str,
    html_only: Option<&HtmlText>,
) -> (String, bool) {
    let part_of = |list: &[u32]| list.first().and_then(|&i| msg.parts.get(i as usize));
    let plain = part_of(&msg.text_body)
        .is_some_and(|p| matches!(p.body, mail_parser::PartType::Text(_)))
        .then_some(text);
    let html = part_of(&msg.html_body).and_then(|p| match &p.body {
        mail_parser::PartType::Html(h) => Some(h.as_ref()),
        _ => None,
    });
    let reply = match html_only {
        Some(h) => h.reply(),
        None => crate::domain::quote::reply(plain, html),
    };
    let mut out = reply.text;
    if out.contains('\0') {
        out = without_nul(&out).into_owned();
    }
    if out.chars().count() > MAX_TEXT_CHARS {
        out = out.chars().take(MAX_TEXT_CHARS).collect();
    }
    (out, reply.whole)
}

/// [`Inbound::new_text`] of a raw mail, for a mail whose parse skipped it
/// (see [`Inbound::may_thread`]) and that threaded all the same.
pub fn new_text_of(raw: &[u8]) -> String {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return String::new();
    };
    let text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    new_text(&msg, &text, None).0
}

/// The attachments of a raw mail with their bytes, to send along with a
/// relayed answer. The decoded bodies are moved out of the parsed mail, not
/// copied: a large attachment is held once, besides the raw mail.
pub fn attachments(raw: &[u8]) -> Vec<crate::domain::ack::OutAttachment> {
    let Some(mut msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let ids = std::mem::take(&mut msg.attachments);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(filename) = msg
            .parts
            .get(id as usize)
            .map(|p| sanitize_filename(&attachment_name(&msg, p)))
        else {
            continue;
        };
        let Some(part) = msg.parts.get_mut(id as usize) else {
            continue;
        };
        let content_type = content_type_of(part);
        let data = match std::mem::take(&mut part.body) {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.into_owned(),
            PartType::Text(t) | PartType::Html(t) => t.into_owned().into_bytes(),
            other => {
                part.body = other;
                part.contents().to_vec()
            }
        };
        out.push(crate::domain::ack::OutAttachment {
            filename,
            content_type,
            data,
        });
    }
    out
}

/// A part's `type/subtype`, lower-cased; `application/octet-stream` without one.
fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

/// The raw values of every header named in `names`, in message order.
fn header_list(msg: &mail_parser::Message<'_>, names: &[&str]) -> Vec<String> {
    msg.headers_raw()
        .filter(|(n, _)| names.iter().any(|x| x.eq_ignore_ascii_case(n)))
        .map(|(_, v)| one_line(v))
        .filter(|v| !v.is_empty())
        .collect()
}

/// A Message-ID without its angle brackets and surrounding space.
/// Control characters and white space are dropped: a Message-ID is written
/// back into the `In-Reply-To` and `References` of the desk's answers.
pub(super) fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect()
}

/// One warning for the addresses of a mail the desk cannot write to (a
/// domain literal, a malformed address): the mail is stored and answered
/// to everybody else.
fn unanswerable_warnings<'a>(all: impl Iterator<Item = &'a Address>, warnings: &mut Vec<String>) {
    const LISTED: usize = 5;
    let mut bad: Vec<String> = Vec::new();
    let mut count = 0usize;
    // The placeholder sender of a bounce without one has no address at all.
    for a in all.filter(|a| a.email.contains('@')) {
        if let Err(why) = crate::domain::render::check_recipient(a) {
            count += 1;
            if bad.len() < LISTED {
                bad.push(format!("{} ({why})", a.email));
            }
        }
    }
    if count > 0 {
        let more = if count > LISTED {
            format!(" and {} more", count - LISTED)
        } else {
            String::new()
        };
        warnings.push(format!(
            "cannot be answered, no desk mail goes to: {}{more}",
            bad.join(", ")
        ));
    }
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        // A References loop or repeat (seen in the wild) must not repeat here.
        if !id.is_empty() && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn addresses(value: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    value
        .map(|a| {
            a.iter()
                .filter_map(|addr| {
                    addr.address()
                        .filter(|e| e.contains('@'))
                        .map(|e| Address::new(addr.name().unwrap_or("").trim(), e))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn first_address(value: Option<&mail_parser::Address<'_>>) -> Option<Address> {
    addresses(value).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(p: ParsedMail) -> Inbound {
        match p.parsed {
            Parsed::Mail(m) => *m,
            Parsed::Quarantine(r) => panic!("quarantined: {r}"),
        }
    }

    #[test]
    fn reads_the_threading_headers() {
        let raw = b"From: Jo Doe <Jo@Example.TEST>\r\nTo: support@example.test\r\n\
Subject: Re: [ACME INC-000001] Printer\r\nMessage-ID: <b@cust>\r\n\
In-Reply-To: <a@desk>\r\nReferences: <x@cust> <a@desk> <x@cust>\r\n\r\nHello\r\n";
        let p = parse(raw, 1 << 20);
        assert_eq!(p.dedup_key, "mid:b@cust");
        let m = mail(p);
        assert_eq!(m.from, Some(Address::new("Jo Doe", "jo@example.test")));
        assert_eq!(m.in_reply_to, vec!["a@desk"]);
        assert_eq!(m.references, vec!["x@cust", "a@desk"]);
        assert_eq!(m.subject, "Re: [ACME INC-000001] Printer");
        assert_eq!(m.text.trim(), "Hello");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn an_html_only_reply_is_read_once_for_its_whole_text_and_its_new_text() {
        let html = r#"<div dir="ltr">Thanks, that <b>fixed</b> it.</div><div class="gmail_quote">On Mon, Desk wrote:<blockquote class="gmail_quote">Try a restart.</blockquote></div>"#;
        let raw = format!(
            "From: jo@example.test\r\nIn-Reply-To: <a@desk>\r\nMessage-ID: <h@x>\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
        );
        let m = mail(parse(raw.as_bytes(), 1 << 20));
        assert_eq!(m.new_text.as_deref(), Some("Thanks, that fixed it."));
        // The whole text is the quote reader's, quote lines marked.
        assert!(m.text.starts_with("Thanks, that fixed it."), "{}", m.text);
        assert!(m.text.contains("> Try a restart."), "{}", m.text);
        assert!(!m.text.contains('<'), "{}", m.text);

        // With a plain alternative, the plain part is the text.
        let raw = format!(
            "From: jo@example.test\r\nIn-Reply-To: <a@desk>\r\nMessage-ID: <h2@x>\r\n\
             Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nPlain thanks.\r\n\r\n> old\r\n--b\r\n\
             Content-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
        );
        let m = mail(parse(raw.as_bytes(), 1 << 20));
        assert_eq!(m.text.trim_end(), "Plain thanks.\r\n\r\n> old");
        assert_eq!(m.new_text.as_deref(), Some("Plain thanks."));
    }

    #[test]
    fn a_reply_cut_to_nothing_shows_the_whole_text_with_a_warning() {
        let raw = b"From: jo@example.test\r\nIn-Reply-To: <a@desk>\r\nMessage-ID: <f@x>\r\n\r\n\
---------- Forwarded message ---------\r\nFrom: Ann <ann@example.test>\r\n\
Date: Mon, 2 Mar 2026 at 09:00\r\nSubject: Printer\r\nTo: <desk@example.test>\r\n\r\n\
The printer is jammed.\r\n";
        let m = mail(parse(raw, 1 << 20));
        let shown = m.new_text.as_deref().unwrap_or("");
        assert!(shown.starts_with("---------- Forwarded message"), "{shown}");
        assert!(shown.ends_with("The printer is jammed."), "{shown}");
        let warning = crate::domain::quote::WHOLE_TEXT_SHOWN;
        assert!(m.warnings.iter().any(|w| w == warning), "{:?}", m.warnings);
    }

    #[test]
    fn quotes_are_stripped_only_from_mail_that_can_thread() {
        let body = "Thanks, that works.\r\n\r\nOn Mon, 2 Mar 2026 at 10:00, Desk <support@example.test> wrote:\r\n> old text\r\n";
        let fresh =
            format!("From: jo@example.test\r\nSubject: Printer\r\nMessage-ID: <n@x>\r\n\r\n{body}");
        let m = mail(parse(fresh.as_bytes(), 1 << 20));
        assert!(!m.may_thread());
        assert_eq!(m.new_text, None);
        assert_eq!(m.reply_text(), m.text);
        for extra in [
            "In-Reply-To: <a@desk>\r\n",
            "References: <a@desk>\r\n",
            "Subject: Re: [ACME INC-000001] Printer\r\n",
            "To: support+INC-000001.1.abc@example.test\r\n",
            "Delivered-To: support+INC-000001.1.abc@example.test\r\n",
        ] {
            let reply = format!("From: jo@example.test\r\n{extra}Message-ID: <r@x>\r\n\r\n{body}");
            let m = mail(parse(reply.as_bytes(), 1 << 20));
            assert_eq!(
                m.new_text.as_deref(),
                Some("Thanks, that works."),
                "{extra}"
            );
        }
        assert_eq!(new_text_of(fresh.as_bytes()), "Thanks, that works.");
    }

    #[test]
    fn without_message_id_the_hash_dedups() {
        let raw = b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n";
        let p = parse(raw, 1 << 20);
        assert!(p.dedup_key.starts_with("sha256:"));
        assert_eq!(p.dedup_key, parse(raw, 1 << 20).dedup_key);
        assert!(mail(p).warnings.iter().any(|w| w.contains("Message-ID")));
    }

    #[test]
    fn quarantines_what_cannot_be_a_ticket_message() {
        assert!(matches!(parse(b"", 100).parsed, Parsed::Quarantine(_)));
        assert!(
            matches!(parse(&[b'x'; 200], 100).parsed, Parsed::Quarantine(r) if r.contains("max_message_bytes"))
        );
        let no_sender = b"Subject: x\r\nMessage-ID: <q@x>\r\n\r\nbody\r\n";
        let p = parse(no_sender, 1 << 20);
        assert_eq!(p.dedup_key, "mid:q@x");
        assert!(matches!(p.parsed, Parsed::Quarantine(r) if r.contains("no sender")));
    }

    #[test]
    fn robot_headers_are_read() {
        let raw = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.test\r\nAuto-Submitted: auto-replied\r\n\
Precedence: bulk\r\nX-Auto-Response-Suppress: All\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        let m = mail(parse(raw, 1 << 20));
        assert!(m.robot.null_return_path);
        assert!(m.robot.multipart_report);
        assert!(m.robot.x_auto_response_suppress);
        assert_eq!(m.robot.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(m.robot.precedence.as_deref(), Some("bulk"));
    }

    #[test]
    fn attachments_are_described() {
        let raw = b"From: a@b.test\r\nMessage-ID: <att@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: application/pdf; name=\"../../x.pdf\"\r\nContent-Disposition: attachment; filename=\"../../x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";
        let m = mail(parse(raw, 1 << 20));
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.filename, "x.pdf");
        assert_eq!(a.content_type, "application/pdf");
        assert_eq!(a.size, 5);
        assert_eq!(a.sha256, sha256_hex(b"hello"));
        let out = attachments(raw);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].filename, "x.pdf");
        assert_eq!(out[0].content_type, "application/pdf");
        assert_eq!(out[0].data, b"hello");
    }

    #[test]
    fn decoding_repairs_are_warned_on_the_message() {
        let raw = b"From: a@b.test\r\nMessage-ID: <qp@x>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nprice =ZZ\r\n";
        let m = mail(parse(raw, 1 << 20));
        assert_eq!(
            m.warnings,
            vec!["body (text/plain): invalid quoted-printable escapes repaired (kept as written)"]
        );
    }

    #[test]
    fn a_thousand_nested_parts_do_not_break_the_parser() {
        let mut raw = String::from("From: a@b.test\r\nMessage-ID: <deep@x>\r\n");
        for i in 0..1000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ndeep\r\n");
        for i in (0..1000).rev() {
            raw.push_str(&format!("--b{i}--\r\n"));
        }
        let p = parse(raw.as_bytes(), 1 << 24);
        assert_eq!(p.dedup_key, "mid:deep@x");
    }
}

/// Charsets as real mail has them: stored readably, with a warning where
/// the text had to be read another way, never quarantined for a charset.
#[cfg(test)]
mod charsets {
    use super::*;

    fn read(raw: &[u8]) -> Inbound {
        match parse(raw, 1 << 20).parsed {
            Parsed::Mail(m) => *m,
            Parsed::Quarantine(r) => panic!("quarantined: {r}"),
        }
    }

    const H: &[u8] = b"From: a@b.test\r\nMessage-ID: <c@x>\r\n";

    fn with(headers: &[u8], rest: &[u8]) -> Vec<u8> {
        [H, headers, b"\r\n", rest].concat()
    }

    #[test]
    fn text_bodies() {
        // (case, raw, the text, a warning containing)
        let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
            (
                "invalid UTF-8 in a UTF-8 part: the rest stays UTF-8",
                with(
                    b"Content-Type: text/plain; charset=utf-8\r\n",
                    "Grüße, Caf\u{e9}".as_bytes(),
                )
                .into_iter()
                .chain(*b" M\xfcller \x93ok\x94\r\n")
                .collect(),
                "Grüße, Café Müller “ok”",
                Some(NOT_UTF8),
            ),
            (
                "no charset, Latin-1 bytes",
                with(
                    b"Content-Type: text/plain\r\n",
                    b"M\xfcller gr\xfc\xdfe\r\n",
                ),
                "Müller grüße",
                Some(NOT_UTF8),
            ),
            (
                "no Content-Type at all, UTF-8",
                with(b"", "Müller grüße\r\n".as_bytes()),
                "Müller grüße",
                None,
            ),
            (
                "unknown-8bit",
                with(
                    b"Content-Type: text/plain; charset=unknown-8bit\r\n",
                    b"M\xfcller\r\n",
                ),
                "Müller",
                Some("unknown charset"),
            ),
            (
                "a charset nobody knows, quoted-printable",
                with(
                    b"Content-Type: text/plain; charset=x-mac-klingon\r\n\
Content-Transfer-Encoding: quoted-printable\r\n",
                    b"M=FCller=\r\n ok\r\n",
                ),
                "Müller ok",
                Some(NOT_UTF8),
            ),
            (
                "US-ASCII declared, 8-bit sent, base64",
                with(
                    b"Content-Type: text/plain; charset=us-ascii\r\n\
Content-Transfer-Encoding: base64\r\n",
                    b"TfxsbGVy\r\n",
                ),
                // mail-parser reads ASCII's 8-bit bytes as Latin-1 itself.
                "Müller",
                None,
            ),
            (
                "windows-1258, which mail-parser knows",
                with(
                    b"Content-Type: text/plain; charset=windows-1258\r\n",
                    b"Vi\xd2t caf\xe9\r\n",
                ),
                "Vi\u{309}t café",
                None,
            ),
        ];
        for (name, raw, text, warning) in cases {
            let m = read(&raw);
            assert_eq!(m.text.trim(), text, "{name}");
            assert!(!m.text.contains(REPLACEMENT), "{name}");
            match warning {
                Some(w) => assert!(
                    m.warnings.iter().any(|x| x.contains(w)),
                    "{name}: {:?}",
                    m.warnings
                ),
                None => assert!(
                    !m.warnings.iter().any(|x| x.contains(NOT_UTF8)),
                    "{name}: {:?}",
                    m.warnings
                ),
            }
        }
    }

    #[test]
    fn eight_bit_subjects() {
        let m = read(&with(b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\n", b"x\r\n"));
        assert_eq!(m.subject, "Grüße aus Köln");
        let m = read(&with("Subject: Grüße\r\n".as_bytes(), b"x\r\n"));
        assert_eq!(m.subject, "Grüße");
        let m = read(&with(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n", b"x\r\n"));
        assert_eq!(m.subject, "Grüße");
    }

    #[test]
    fn rfc_2231_and_8_bit_file_names() {
        let part = |disposition: &[u8]| -> Vec<u8> {
            [
                &b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "[..],
                disposition,
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n",
            ]
            .concat()
        };
        let cases: Vec<(&[u8], &str)> = vec![
            (b"filename*=iso-8859-1''Rechnung_M\xfcller.pdf", "Rechnung_Müller.pdf"),
            (b"filename*=iso-8859-1''Rechnung_M%FCller.pdf", "Rechnung_Müller.pdf"),
            (b"filename*=utf-8''Gr%FC%DFe.pdf", "Grüße.pdf"),
            (b"filename*=utf-8''Gr%C3%BC%C3%9Fe.pdf", "Grüße.pdf"),
            (b"filename*=''M\xfcller.pdf", "Müller.pdf"),
            (
                b"\r\n filename*0*=iso-8859-1''Gro%DFe;\r\n filename*1*=_Rechnung_M\xfc;\r\n filename*2=ller.pdf",
                "Große_Rechnung_Müller.pdf",
            ),
            (b"filename=\"M\xfcller.pdf\"", "Müller.pdf"),
            (b"filename=\"plain.pdf\"", "plain.pdf"),
        ];
        for (disposition, name) in cases {
            let raw = with(
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                &[
                    &b"--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n"[..],
                    &part(disposition),
                    b"--b--\r\n",
                ]
                .concat(),
            );
            let m = read(&raw);
            let names: Vec<&str> = m.attachments.iter().map(|a| a.filename.as_str()).collect();
            assert_eq!(
                names,
                vec![name],
                "{}",
                String::from_utf8_lossy(disposition)
            );
            assert_eq!(m.attachments[0].size, 5);
            let out = attachments(&raw);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].filename, name);
        }
    }

    #[test]
    fn lenient_reads_utf8_and_windows_1252() {
        assert_eq!(lenient(b"a\xe9\x80"), "aé€");
        assert_eq!(lenient("é".as_bytes()), "é");
        assert_eq!(lenient(b"\xc3"), "Ã");
        assert_eq!(lenient(b""), "");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz%41"), b"%zzA");
    }
}
