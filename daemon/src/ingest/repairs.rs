//! The repairs mail-parser makes without a word, found again so that the
//! message carries a warning for each: invalid UTF-8 (in a header, or in a
//! text part declared UTF-8 or without a charset), broken base64, broken
//! quoted-printable escapes, a charset mail-parser cannot decode, and a
//! multipart that is not closed or whose boundary never appears.
//!
//! Works from the parts mail-parser found and the raw bytes: each part's
//! header and body bytes are scanned once, nothing is copied, and every
//! offset is bounds-checked (a broken mail can have any). One warning per
//! kind, naming at most [`MAX_NAMED`] places and counting the rest. Parts
//! are numbered as in [`crate::domain::mail::AttachmentMeta::part`] (0 is
//! the message itself). The insides of an attached `message/rfc822` are not
//! looked at: the desk keeps that mail as it came.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::HEX_MAP;
use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

/// Places named in one warning; the others are counted.
const MAX_NAMED: usize = 3;

#[derive(Clone, Copy)]
enum Kind {
    InvalidUtf8,
    UnknownCharset,
    Base64Characters,
    Base64Length,
    QuotedPrintable,
    MultipartUnclosed,
    MultipartNoBoundary,
}

const KINDS: usize = 7;

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::InvalidUtf8 => "invalid UTF-8; bytes that are not UTF-8 read as Windows-1252",
            Kind::UnknownCharset => "unknown charset, read as UTF-8",
            Kind::Base64Characters => {
                "invalid characters in base64; the part is kept undecoded, as text"
            }
            Kind::Base64Length => "base64 of a broken length or padding; its last bytes are lost",
            Kind::QuotedPrintable => "invalid quoted-printable escapes repaired (kept as written)",
            Kind::MultipartUnclosed => {
                "multipart without its closing boundary; parts read to the end of the mail"
            }
            Kind::MultipartNoBoundary => {
                "multipart whose boundary is missing or never appears; read as one undecoded part"
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    named: Vec<String>,
    more: usize,
}

#[derive(Default)]
struct Found([Tally; KINDS]);

impl Found {
    fn add(&mut self, kind: Kind, place: impl FnOnce() -> String) {
        let t = &mut self.0[kind as usize];
        if t.named.len() < MAX_NAMED {
            t.named.push(place());
        } else {
            t.more += 1;
        }
    }

    fn warnings(self) -> Vec<String> {
        let kinds = [
            Kind::InvalidUtf8,
            Kind::UnknownCharset,
            Kind::Base64Characters,
            Kind::Base64Length,
            Kind::QuotedPrintable,
            Kind::MultipartUnclosed,
            Kind::MultipartNoBoundary,
        ];
        kinds
            .into_iter()
            .zip(self.0)
            .filter(|(_, t)| !t.named.is_empty())
            .map(|(kind, t)| {
                let mut places = t.named.join(", ");
                if t.more > 0 {
                    places.push_str(&format!(" and {} more", t.more));
                }
                format!("{places}: {}", kind.what())
            })
            .collect()
    }
}

/// One warning per kind of repair mail-parser made in `msg`.
pub fn warnings(msg: &Message<'_>) -> Vec<String> {
    let raw: &[u8] = msg.raw_message.as_ref();
    let mut found = Found::default();
    let unclosed = unclosed(raw, msg);
    for (i, part) in msg.parts.iter().enumerate() {
        headers(raw, i, part, &mut found);
        body(raw, i, part, &mut found);
        if unclosed.get(i).copied() == Some(Unclosed::Here) {
            found.add(Kind::MultipartUnclosed, || part_place(i, part));
        }
    }
    found.warnings()
}

/// `type/subtype` as declared (text/plain when nothing is).
fn declared_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        }
        .to_ascii_lowercase(),
        None => "text/plain".into(),
    }
}

fn part_place(i: usize, part: &MessagePart<'_>) -> String {
    if i == 0 {
        format!("body ({})", declared_type(part))
    } else {
        format!("part {i} ({})", declared_type(part))
    }
}

fn header_place(i: usize) -> String {
    if i == 0 {
        "header".into()
    } else {
        format!("part {i} header")
    }
}

fn slice(raw: &[u8], start: u32, end: u32) -> &[u8] {
    raw.get(start as usize..end as usize).unwrap_or_default()
}

fn headers(raw: &[u8], i: usize, part: &MessagePart<'_>, found: &mut Found) {
    let h = slice(raw, part.offset_header, part.offset_body);
    let mut bad_utf8 = std::str::from_utf8(h).is_err();
    let mut unknown: Option<String> = None;
    encoded_words(h, |charset, encoding, data| {
        if is_utf8_label(charset) {
            bad_utf8 = bad_utf8 || !word_is_utf8(encoding, data);
        } else if unknown.is_none() && charset_decoder(charset).is_none() {
            unknown = Some(String::from_utf8_lossy(charset).into_owned());
        }
    });
    if bad_utf8 {
        found.add(Kind::InvalidUtf8, || header_place(i));
    }
    if let Some(cs) = unknown {
        found.add(Kind::UnknownCharset, || {
            format!("{} (charset {cs:?} in an encoded word)", header_place(i))
        });
    }
}

fn is_multipart(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
}

fn body(raw: &[u8], i: usize, part: &MessagePart<'_>, found: &mut Found) {
    let ct = part.content_type();
    if is_multipart(part) {
        if !matches!(part.body, PartType::Multipart(_)) {
            found.add(Kind::MultipartNoBoundary, || part_place(i, part));
        }
        return;
    }
    let body = slice(raw, part.offset_body, part.offset_end);
    let cte = part.content_transfer_encoding().map(str::trim);
    let base64 = cte.is_some_and(|e| e.eq_ignore_ascii_case("base64"));
    let qp = cte.is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
    if !matches!(part.body, PartType::Message(_)) {
        if base64 {
            match scan_base64(body) {
                Base64::Fine => {}
                Base64::BadCharacter => found.add(Kind::Base64Characters, || part_place(i, part)),
                Base64::BadLength => found.add(Kind::Base64Length, || part_place(i, part)),
            }
        } else if qp && !qp_is_clean(body) {
            found.add(Kind::QuotedPrintable, || part_place(i, part));
        }
    }
    let (PartType::Text(text) | PartType::Html(text)) = &part.body else {
        return;
    };
    let charset = ct
        .and_then(|ct| ct.attribute("charset"))
        .map(str::trim)
        .filter(|c| !c.is_empty());
    match charset {
        Some(cs) if !is_utf8_label(cs.as_bytes()) => {
            // Read as UTF-8; no harm done when the text is ASCII and the
            // charset is ASCII-compatible (UTF-7 is, but for its `+` escapes).
            let unknown = charset_decoder(cs.as_bytes()).is_none();
            let utf7 = cs.to_ascii_lowercase().contains("utf-7");
            let harmless = text.is_ascii() && !(utf7 && text.contains('+'));
            if unknown && !harmless {
                found.add(Kind::UnknownCharset, || {
                    format!("{} charset {cs:?}", part_place(i, part))
                });
            }
        }
        // UTF-8 or no charset: mail-parser replaced what was not UTF-8 with
        // U+FFFD. Only then is the source checked again, so a U+FFFD the
        // sender wrote is no alarm.
        _ if text.contains('\u{FFFD}') => {
            let valid = match part.encoding {
                mail_parser::Encoding::Base64 => base64_is_utf8(body),
                mail_parser::Encoding::QuotedPrintable => qp_is_utf8(body),
                mail_parser::Encoding::None => std::str::from_utf8(body).is_ok(),
            };
            if !valid {
                found.add(Kind::InvalidUtf8, || part_place(i, part));
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unclosed {
    No,
    /// Its `--boundary--` does not follow its last part.
    Here,
    /// Nor does it, but because its last part (a multipart) is not closed
    /// and ran to the end: that one is named, not this.
    ByLastPart,
}

/// Which multipart parts are not closed by `--boundary--` after their last
/// part. Children come after their parent in `msg.parts`, so one pass
/// from the end knows each last child's state.
fn unclosed(raw: &[u8], msg: &Message<'_>) -> Vec<Unclosed> {
    let mut state = vec![Unclosed::No; msg.parts.len()];
    for (i, part) in msg.parts.iter().enumerate().rev() {
        let PartType::Multipart(children) = &part.body else {
            continue;
        };
        let Some(boundary) = part.content_type().and_then(|ct| ct.attribute("boundary")) else {
            continue;
        };
        let Some((last_id, last)) = children
            .last()
            .and_then(|&id| Some((id as usize, msg.parts.get(id as usize)?)))
        else {
            continue;
        };
        let mut rest = raw.get(last.offset_end as usize..).unwrap_or_default();
        for nl in [b'\r', b'\n'] {
            if let Some(r) = rest.strip_prefix(&[nl]) {
                rest = r;
            }
        }
        let closed = rest
            .strip_prefix(b"--")
            .and_then(|r| r.strip_prefix(boundary.as_bytes()))
            .is_some_and(|r| r.starts_with(b"--"));
        if !closed {
            let by_last = last_id > i && state.get(last_id).is_some_and(|&s| s != Unclosed::No);
            if let Some(s) = state.get_mut(i) {
                *s = if by_last {
                    Unclosed::ByLastPart
                } else {
                    Unclosed::Here
                };
            }
        }
    }
    state
}

/// Labels mail-parser reads as UTF-8 on purpose (it has no decoder for them).
fn is_utf8_label(charset: &[u8]) -> bool {
    [
        &b"utf-8"[..],
        b"utf8",
        b"unicode-1-1-utf-8",
        b"unicode11utf8",
        b"unicode20utf8",
        b"x-unicode20utf8",
    ]
    .iter()
    .any(|l| l.eq_ignore_ascii_case(charset))
}

/// Calls `f(charset, encoding, data)` for each RFC 2047 encoded word
/// (`=?charset?Q?data?=`) in header bytes; the language of `charset*lang`
/// is cut.
fn encoded_words(h: &[u8], mut f: impl FnMut(&[u8], u8, &[u8])) {
    let mut at = 0;
    while let Some(p) = find(h.get(at..).unwrap_or_default(), b"=?") {
        let start = at + p + 2;
        at = start;
        let rest = h.get(start..).unwrap_or_default();
        let Some(q) = rest.iter().take(76).position(|&b| b == b'?') else {
            continue;
        };
        let label = &rest[..q];
        let charset = label.split(|&b| b == b'*').next().unwrap_or_default();
        let label_ok = charset.len() >= 2
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-_.:*".contains(&b));
        let (Some(&enc), Some(b'?')) = (rest.get(q + 1), rest.get(q + 2)) else {
            continue;
        };
        if !label_ok || !b"QqBb".contains(&enc) {
            continue;
        }
        // A word is at most 75 characters; a longer search would make a
        // header full of `=?` quadratic.
        let data = rest.get(q + 3..).unwrap_or_default();
        let data = data.get(..data.len().min(1024)).unwrap_or_default();
        let Some(end) = find(data, b"?=") else {
            continue;
        };
        f(charset, enc.to_ascii_uppercase(), &data[..end]);
        at = start + q + 3 + end + 2;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether an encoded word declared UTF-8 decodes to UTF-8, as mail-parser
/// decodes it (each word on its own).
fn word_is_utf8(encoding: u8, data: &[u8]) -> bool {
    let mut sink = Utf8Sink::default();
    if encoding == b'B' {
        let mut b64 = Base64Decoder::default();
        for &ch in data {
            match B64[ch as usize] {
                v if v < 64 => b64.push(v, &mut sink),
                PAD => b64.pad(&mut sink),
                WS => {}
                // mail-parser keeps such a word undecoded.
                _ => return true,
            }
        }
    } else {
        qp_decode(data, true, &mut sink);
    }
    sink.finish()
}

// ---- base64 ----

const PAD: u8 = 64;
const WS: u8 = 65;
const BAD: u8 = 66;

static B64: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut v = 0u8;
    while v < 64 {
        let ch = match v {
            0..=25 => b'A' + v,
            26..=51 => b'a' + (v - 26),
            52..=61 => b'0' + (v - 52),
            62 => b'+',
            _ => b'/',
        };
        t[ch as usize] = v;
        v += 1;
    }
    t[b'=' as usize] = PAD;
    t[b' ' as usize] = WS;
    t[b'\t' as usize] = WS;
    t[b'\r' as usize] = WS;
    t[b'\n' as usize] = WS;
    t
};

enum Base64 {
    Fine,
    BadCharacter,
    BadLength,
}

/// Base64 mail-parser decodes as the sender meant: only the alphabet,
/// `=` and white space; each run of characters ended by padding (or the
/// end) of a length it can decode whole. Runs joined with their padding
/// (`aGk=aGk=`) are read right and are fine.
fn scan_base64(body: &[u8]) -> Base64 {
    let mut run = 0usize;
    let mut short = false;
    for &ch in body {
        match B64[ch as usize] {
            v if v < 64 => run += 1,
            PAD => {
                // One character before the padding carries no whole byte.
                short |= run % 4 == 1;
                run = 0;
            }
            WS => {}
            _ => return Base64::BadCharacter,
        }
    }
    if short || !run.is_multiple_of(4) {
        Base64::BadLength
    } else {
        Base64::Fine
    }
}

#[derive(Default)]
struct Base64Decoder {
    chunk: u32,
    n: u8,
}

impl Base64Decoder {
    fn push(&mut self, v: u8, out: &mut Utf8Sink) {
        self.chunk = (self.chunk << 6) | u32::from(v);
        self.n += 1;
        if self.n == 4 {
            let [_, a, b, c] = self.chunk.to_be_bytes();
            out.push(a);
            out.push(b);
            out.push(c);
            self.n = 0;
            self.chunk = 0;
        }
    }

    fn pad(&mut self, out: &mut Utf8Sink) {
        match self.n {
            2 => out.push((self.chunk >> 4) as u8),
            3 => {
                out.push((self.chunk >> 10) as u8);
                out.push((self.chunk >> 2) as u8);
            }
            _ => {}
        }
        self.n = 0;
        self.chunk = 0;
    }
}

fn base64_is_utf8(body: &[u8]) -> bool {
    let mut sink = Utf8Sink::default();
    let mut b64 = Base64Decoder::default();
    for &ch in body {
        match B64[ch as usize] {
            v if v < 64 => b64.push(v, &mut sink),
            PAD => b64.pad(&mut sink),
            _ => {}
        }
        if sink.bad {
            return false;
        }
    }
    // mail-parser drops an unpadded tail: so does this.
    sink.finish()
}

// ---- quoted-printable ----

fn is_hex(b: u8) -> bool {
    HEX_MAP.get(b as usize).is_some_and(|&v| v >= 0)
}

/// Every `=` starts a hex escape (`=E9`) or a soft line break (`=`, white
/// space, then the end of the line or of the part).
fn qp_is_clean(body: &[u8]) -> bool {
    let mut at = 0;
    while let Some(p) = body
        .get(at..)
        .and_then(|r| r.iter().position(|&b| b == b'='))
    {
        let i = at + p;
        let next = body.get(i + 1..).unwrap_or_default();
        match next {
            [a, b, ..] if is_hex(*a) && is_hex(*b) => at = i + 3,
            _ => {
                let after_ws = next
                    .iter()
                    .position(|&b| b != b' ' && b != b'\t')
                    .map_or(&[][..], |k| &next[k..]);
                let soft = matches!(after_ws, [] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r']);
                if !soft {
                    return false;
                }
                at = i + 1;
            }
        }
    }
    true
}

/// Decodes quoted-printable into `out` as mail-parser does (a broken escape
/// is kept as written); `word` for the Q encoding of headers (`_` is a space).
fn qp_decode(data: &[u8], word: bool, out: &mut Utf8Sink) {
    let mut i = 0;
    while let Some(&ch) = data.get(i) {
        i += 1;
        match ch {
            b'=' => match (data.get(i), data.get(i + 1)) {
                (Some(&a), Some(&b)) if is_hex(a) && is_hex(b) => {
                    let hex = |x: u8| HEX_MAP.get(x as usize).map_or(0, |&v| v as u8);
                    out.push((hex(a) << 4) | hex(b));
                    i += 2;
                }
                _ => {}
            },
            b'_' if word => out.push(b' '),
            _ => out.push(ch),
        }
        if out.bad {
            return;
        }
    }
}

fn qp_is_utf8(body: &[u8]) -> bool {
    let mut sink = Utf8Sink::default();
    qp_decode(body, false, &mut sink);
    sink.finish()
}

// ---- UTF-8 ----

/// Checks bytes for UTF-8 as they come, through a small buffer; a
/// character cut by a buffer flush is carried over.
struct Utf8Sink {
    buf: [u8; 512],
    len: usize,
    bad: bool,
}

impl Default for Utf8Sink {
    fn default() -> Self {
        Utf8Sink {
            buf: [0; 512],
            len: 0,
            bad: false,
        }
    }
}

impl Utf8Sink {
    fn push(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.flush(false);
        }
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn flush(&mut self, last: bool) {
        let filled = self.buf.get(..self.len).unwrap_or_default();
        match std::str::from_utf8(filled) {
            Ok(_) => self.len = 0,
            Err(e) if e.error_len().is_none() && !last => {
                // An incomplete character at the end: keep it for the next bytes.
                let start = e.valid_up_to();
                self.buf.copy_within(start..self.len, 0);
                self.len -= start;
            }
            Err(_) => {
                self.bad = true;
                self.len = 0;
            }
        }
    }

    fn finish(mut self) -> bool {
        if !self.bad {
            self.flush(true);
        }
        !self.bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn warned(raw: &[u8]) -> Vec<String> {
        match MessageParser::default().parse(raw) {
            Some(msg) => warnings(&msg),
            None => vec!["(not parsed)".into()],
        }
    }

    fn one(raw: &[u8]) -> String {
        let w = warned(raw);
        assert_eq!(w.len(), 1, "{w:?}");
        w.into_iter().next().unwrap_or_default()
    }

    const HEAD: &str = "From: a@b.test\r\nTo: c@d.test\r\nSubject: x\r\nMessage-ID: <r@x>\r\n";

    #[test]
    fn a_clean_mail_gets_no_warning() {
        // text, HTML, a base64 attachment, QP with soft breaks, a
        // multipart/alternative in a multipart/mixed, encoded words.
        let raw = format!(
            "{HEAD}Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?utf-8?B?w6k=?= =?iso-8859-1?q?caf=E9?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=C3=BC=C3=9Fe, this line is long and is broken with a soft line break =\r\n\
here, and =3D is an equals sign, and lower case =c3=a9 too.=20\r\n\
--inner\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
<p>Gr\u{fc}\u{df}e \u{fffd} caf\u{e9}</p>\r\n\
--inner--\r\n\r\n--outer\r\nContent-Type: application/pdf; name=\"x.pdf\"\r\n\
Content-Disposition: attachment; filename=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQK\r\naGVsbG8=\r\naGk=\r\n--outer\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: base64\r\n\r\nY2Fm6Q==\r\n--outer--\r\nepilogue\r\n"
        );
        assert_eq!(warned(raw.as_bytes()), Vec::<String>::new());
        // The same with bare LF line ends.
        assert_eq!(
            warned(raw.replace("\r\n", "\n").as_bytes()),
            Vec::<String>::new()
        );
        // A single part, base64 of UTF-8 with U+FFFD written by the sender.
        let raw = format!(
            "{HEAD}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n77+9IMOp\r\n"
        );
        assert_eq!(warned(raw.as_bytes()), Vec::<String>::new());
    }

    #[test]
    fn invalid_utf8_in_a_part_declared_utf8_is_warned() {
        let mut raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nok\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf"
        )
        .into_bytes();
        raw.extend_from_slice(b"\xe9 au lait\r\n--b--\r\n");
        assert_eq!(
            one(&raw),
            "part 2 (text/plain): invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
        // In QP and base64 alike.
        let qp = format!(
            "{HEAD}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n"
        );
        assert_eq!(
            one(qp.as_bytes()),
            "body (text/plain): invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
        let b64 = format!(
            "{HEAD}Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nY2Fm6Q==\r\n"
        );
        assert_eq!(
            one(b64.as_bytes()),
            "body (text/html): invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
    }

    #[test]
    fn invalid_utf8_in_headers_is_warned() {
        let mut raw = b"From: a@b.test\r\nSubject: caf\xe9\r\n\r\nhello\r\n".to_vec();
        assert_eq!(
            one(&raw),
            "header: invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
        raw = b"From: a@b.test\r\nSubject: =?utf-8?q?caf=E9?=\r\n\r\nhello\r\n".to_vec();
        assert_eq!(
            one(&raw),
            "header: invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
    }

    #[test]
    fn an_8bit_part_without_charset_that_is_not_utf8_is_warned() {
        let mut raw = format!("{HEAD}Content-Transfer-Encoding: 8bit\r\n\r\n").into_bytes();
        raw.extend_from_slice(b"Gr\xfc\xdfe\r\n");
        assert_eq!(
            one(&raw),
            "body (text/plain): invalid UTF-8; bytes that are not UTF-8 read as Windows-1252"
        );
    }

    #[test]
    fn broken_base64_is_warned() {
        let part = |data: &str| {
            format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}\r\n--b--\r\n"
            )
        };
        assert_eq!(
            one(part("aGVs*bG8=").as_bytes()),
            "part 2 (application/octet-stream): invalid characters in base64; \
the part is kept undecoded, as text"
        );
        for bad in ["aGVsbG8", "aGVsb", "aGVsbG8=aGVsb"] {
            assert_eq!(
                one(part(bad).as_bytes()),
                "part 2 (application/octet-stream): base64 of a broken length or padding; \
its last bytes are lost",
                "{bad}"
            );
        }
        assert!(warned(part("aGVsbA==\r\naGk=").as_bytes()).is_empty());
    }

    #[test]
    fn broken_quoted_printable_is_warned() {
        for bad in [
            "price =ZZ euro",
            "ends in =4",
            "=4\r\nnext",
            "a == b",
            "= x",
        ] {
            let raw = format!(
                "{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b\r\n\
Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n{bad}\r\n--b--\r\n"
            );
            assert_eq!(
                one(raw.as_bytes()),
                "part 2 (text/plain): invalid quoted-printable escapes repaired (kept as written)",
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unknown_charset_is_warned() {
        let mut raw =
            format!("{HEAD}Content-Type: text/plain; charset=x-martian\r\n\r\n").into_bytes();
        raw.extend_from_slice(b"\xe9\xe9\r\n");
        assert_eq!(
            one(&raw),
            "body (text/plain) charset \"x-martian\": unknown charset, read as UTF-8"
        );
        // ASCII text loses nothing.
        let ascii = format!("{HEAD}Content-Type: text/plain; charset=x-martian\r\n\r\nhello\r\n");
        assert!(warned(ascii.as_bytes()).is_empty());
        let word = "From: a@b.test\r\nSubject: =?x-martian?q?caf=E9?=\r\n\r\nhello\r\n";
        assert_eq!(
            one(word.as_bytes()),
            "header (charset \"x-martian\" in an encoded word): unknown charset, read as UTF-8"
        );
    }

    #[test]
    fn an_unterminated_multipart_is_warned() {
        let raw = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n\
--b\r\nContent-Type: text/plain\r\n\r\ntwo\r\n"
        );
        assert_eq!(
            one(raw.as_bytes()),
            "body (multipart/mixed): multipart without its closing boundary; \
parts read to the end of the mail"
        );
        let never = format!(
            "{HEAD}Content-Type: multipart/mixed; boundary=zzz\r\n\r\n--b\r\n\r\none\r\n--b--\r\n"
        );
        assert_eq!(
            one(never.as_bytes()),
            "body (multipart/mixed): multipart whose boundary is missing or never appears; \
read as one undecoded part"
        );
    }

    #[test]
    fn a_thousand_broken_parts_give_one_short_warning() {
        let mut raw = format!("{HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..1000 {
            raw.push_str("--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ\r\n");
        }
        raw.push_str("--b--\r\n");
        let w = one(raw.as_bytes());
        assert_eq!(
            w,
            "part 1 (text/plain), part 2 (text/plain), part 3 (text/plain) and 997 more: \
invalid quoted-printable escapes repaired (kept as written)"
        );
    }

    #[test]
    fn never_panics_on_cut_mail() {
        let raw = format!(
            "{HEAD}Subject: =?utf-8?B?w6\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Transfer-Encoding: base64\r\n\r\nw6k=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=C3=\r\n--b--\r\n"
        );
        for end in 0..=raw.len() {
            let _ = warned(&raw.as_bytes()[..end]);
        }
    }
}

/// Real mail of the shared corpus: no repair warning on mail that needs none.
#[cfg(test)]
mod corpus {
    use std::path::{Path, PathBuf};

    use mail_parser::MessageParser;

    fn root() -> Option<PathBuf> {
        std::env::var_os("HELPDESK_CORPUS")
            .map(PathBuf::from)
            .into_iter()
            .chain([PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/corpus"
            ))])
            .find(|p| p.is_dir())
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_none_or(|e| e == "eml") {
                out.push(p);
            }
        }
    }

    /// Corpus mails that are broken, each looked at by hand: bounces cut
    /// short by their collector (no closing boundary) or with a folded
    /// `boundary=` lost, Outlook's UTF-7 with `+` escapes, mail-parser's own
    /// malformed set, Latin-1 raw in headers, placeholder text as base64.
    const BROKEN: &[&str] = &[
        "autoreplies-bounces/sisimai/arf-01.eml",
        "autoreplies-bounces/sisimai/arf-15.eml",
        "autoreplies-bounces/sisimai/arf-16.eml",
        "autoreplies-bounces/sisimai/arf-21.eml",
        "autoreplies-bounces/sisimai/lhost-activehunter-01.eml",
        "autoreplies-bounces/sisimai/lhost-activehunter-02.eml",
        "autoreplies-bounces/sisimai/lhost-biglobe-01.eml",
        "autoreplies-bounces/sisimai/lhost-courier-02.eml",
        "autoreplies-bounces/sisimai/lhost-courier-03.eml",
        "autoreplies-bounces/sisimai/lhost-domino-03.eml",
        "autoreplies-bounces/sisimai/lhost-exchange2003-03.eml",
        "autoreplies-bounces/sisimai/lhost-exchange2007-02.eml",
        "autoreplies-bounces/sisimai/lhost-exchange2007-03.eml",
        "autoreplies-bounces/sisimai/lhost-ezweb-02.eml",
        "autoreplies-bounces/sisimai/lhost-kddi-01.eml",
        "autoreplies-bounces/sisimai/lhost-mailfoundry-01.eml",
        "autoreplies-bounces/sisimai/lhost-messagingserver-02.eml",
        "autoreplies-bounces/sisimai/lhost-messagingserver-03.eml",
        "autoreplies-bounces/sisimai/lhost-office365-01.eml",
        "autoreplies-bounces/sisimai/lhost-office365-10.eml",
        "autoreplies-bounces/sisimai/lhost-office365-11.eml",
        "autoreplies-bounces/sisimai/lhost-office365-12.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-01.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-03.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-05.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-16.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-17.eml",
        "autoreplies-bounces/sisimai/lhost-postfix-64.eml",
        "autoreplies-bounces/sisimai/lhost-sendgrid-01.eml",
        "autoreplies-bounces/sisimai/lhost-sendgrid-02.eml",
        "autoreplies-bounces/sisimai/lhost-sendmail-08.eml",
        "autoreplies-bounces/sisimai/lhost-sendmail-13.eml",
        "autoreplies-bounces/sisimai/lhost-sendmail-17.eml",
        "autoreplies-bounces/sisimai/lhost-sendmail-20.eml",
        "autoreplies-bounces/sisimai/lhost-sendmail-22.eml",
        "autoreplies-bounces/sisimai/lhost-surfcontrol-03.eml",
        "autoreplies-bounces/sisimai/lhost-trendmicro-01.eml",
        "autoreplies-bounces/sisimai/lhost-verizon-02.eml",
        "autoreplies-bounces/sisimai/rfc3464-04.eml",
        "autoreplies-bounces/sisimai/rfc3464-06.eml",
        "autoreplies-bounces/sisimai/rfc3464-08.eml",
        "autoreplies-bounces/sisimai/rfc3464-09.eml",
        "autoreplies-bounces/sisimai/rfc3464-26.eml",
        "autoreplies-bounces/sisimai/rfc3464-35.eml",
        "autoreplies-bounces/sisimai/rfc3464-61.eml",
        "autoreplies-bounces/sisimai/rhost-franceptt-06.eml",
        "autoreplies-bounces/sisimai/rhost-franceptt-07.eml",
        "autoreplies-bounces/sisimai/rhost-google-01.eml",
        "autoreplies-bounces/sisimai/rhost-google-02.eml",
        "mime-oddities/flanker/false-multipart.eml",
        "mime-oddities/flanker/from-encoding.eml",
        "mime-oddities/flanker/mailformed-headers.eml",
        "mime-oddities/flanker/missing-final-boundary.eml",
        "mime-oddities/flanker/spam/broken-ctype.eml",
        "mime-oddities/flanker/spam/broken-headers.eml",
        "mime-oddities/mail-parser-malformed/001.eml",
        "mime-oddities/mail-parser-malformed/002.eml",
        "mime-oddities/mail-parser-malformed/003.eml",
        "mime-oddities/mail-parser-malformed/004.eml",
        "mime-oddities/mail-parser-malformed/006.eml",
        "mime-oddities/mail-parser-malformed/007.eml",
        "mime-oddities/mail-parser-malformed/008.eml",
        "mime-oddities/mail-parser-malformed/009.eml",
        "mime-oddities/mail-parser-malformed/011.eml",
        "mime-oddities/mail-parser-malformed/012.eml",
        "mime-oddities/mail-parser-malformed/013.eml",
        "mime-oddities/mail-parser-malformed/014.eml",
        "mime-oddities/mail-parser-malformed/016.eml",
        "mime-oddities/mail-parser-malformed/018.eml",
        "mime-oddities/mail-parser-malformed/019.eml",
        "mime-oddities/mail-parser-malformed/022.eml",
        "mime-oddities/mail-parser-rfc/000.eml",
        "mime-oddities/mail-parser-thirdparty/002.eml",
        "mime-oddities/mail-parser-thirdparty/015.eml",
        "mime-oddities/mail-parser-thirdparty/016.eml",
        "mime-oddities/mail-parser-thirdparty/017.eml",
        "mime-oddities/mail-parser-thirdparty/018.eml",
        "mime-oddities/mail-parser-thirdparty/019.eml",
        "mime-oddities/notmuch/broken/empty-part",
        "mime-oddities/rt/multipart-report",
        "mime-oddities/rt/new-ticket-from-iso-8859-1",
        "mime-oddities/rt/new-ticket-from-iso-8859-1-full",
        "mime-oddities/rt/russian-subject-no-content-type",
    ];

    #[test]
    fn corpus_mail_gets_no_false_repair_warning() {
        let Some(root) = root() else {
            println!("SKIPPED: no shared corpus (set HELPDESK_CORPUS)");
            return;
        };
        // People's mail (threads, replies): not one warning.
        let mut human = Vec::new();
        for sub in ["threads", "replies/talon"] {
            files(&root.join(sub), &mut human);
        }
        // Robots' mail and MIME oddities: warnings only on mail known broken.
        let mut odd = Vec::new();
        for sub in ["autoreplies-bounces", "mime-oddities"] {
            files(&root.join(sub), &mut odd);
        }
        let warned = |path: &Path| -> Option<Vec<String>> {
            let raw = std::fs::read(path).ok()?;
            let msg = MessageParser::default().parse(&raw)?;
            // What parse() quarantines gets no warnings.
            (!msg.headers().is_empty()).then(|| super::warnings(&msg))
        };
        let name = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
        let mut unexpected = Vec::new();
        for p in &human {
            if let Some(w) = warned(p).filter(|w| !w.is_empty()) {
                unexpected.push(format!("{}: {w:?}", name(p)));
            }
        }
        let mut on_broken = 0;
        for p in &odd {
            if let Some(w) = warned(p).filter(|w| !w.is_empty()) {
                if BROKEN.contains(&name(p).as_str()) {
                    on_broken += 1;
                } else {
                    unexpected.push(format!("{}: {w:?}", name(p)));
                }
            }
        }
        println!(
            "repair warnings: {} human mails, none warned; {} robot and odd mails, \
{on_broken} of the {} known broken warned",
            human.len(),
            odd.len(),
            BROKEN.len()
        );
        assert!(human.len() > 50, "human corpus incomplete: {}", human.len());
        assert!(
            unexpected.is_empty(),
            "warnings on mail not known broken:\n{}",
            unexpected.join("\n")
        );
    }
}
