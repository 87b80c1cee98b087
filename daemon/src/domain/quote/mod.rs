//! The new text of a mail reply: what its author just wrote, without the
//! quoted history, the reply headers and the signature under it.
//!
//! The desk shows this on the ticket; the raw mail is stored elsewhere, so a
//! cut that goes too far loses nothing for good. Still, every rule here leans
//! towards keeping text: a line is dropped only when it has the shape of a
//! known client's quoting, header or signature.
//!
//! Plain text is read line by line, top to bottom:
//! - `>` lines are quoted history and go; new lines between quoted blocks stay
//!   (interleaved replies).
//! - A reply header ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", a
//!   date and an address ending in `>:`, possibly wrapped over up to four
//!   lines) goes with the quote under it; when no `>` quote follows, the old
//!   message was pasted unquoted and everything from the header on goes.
//! - Everything from an Outlook-style header block (`From:` + `Sent:`/`To:`…
//!   in several languages, `*From:*` too), an "-----Original Message-----" or
//!   forwarded-message separator, a mobile signature ("Sent from my iPhone",
//!   "Get Outlook for iOS"…) or the `-- ` delimiter on goes.
//! - Finally, at the end of what is left, a short signature-like block after
//!   a separator line (`___`, `---`, `———`) or after a "Regards"-type
//!   valediction goes.
//!
//! HTML is cut at the first quote marker a client leaves (Gmail's
//! `gmail_quote`, Outlook's `divRplyFwdMsg` and border-top separators,
//! Thunderbird's `moz-cite-prefix`, Apple's `blockquote type=cite`, Yahoo's
//! `yahoo_quoted`…), turned into text (blockquotes become `>` lines) and read
//! as plain text.
//!
//! Pure and linear in the input: lines longer than [`MAX_MARKER_LINE`] are
//! never headers or signatures, and every look-ahead or look-behind is
//! bounded, so a 750 KB quote costs one pass. No input panics.

use std::borrow::Cow;

/// Lines longer than this (bytes) are never a header, separator or signature.
const MAX_MARKER_LINE: usize = 300;
/// A reply header wraps over at most this many lines.
const MAX_HEADER_LINES: usize = 4;
/// An Outlook header block spans at most this many lines after its first.
const MAX_BLOCK_LOOKAHEAD: usize = 8;
/// A signature block under a separator or valediction has at most this many
/// non-empty lines.
const MAX_SIGNATURE_LINES: usize = 8;

/// The new text of a plain-text reply: quoted history, reply headers ("On …
/// wrote:", Outlook "From: … Sent: …" blocks, "-----Original Message-----")
/// and signatures removed; trimmed.
pub fn strip_plain(text: &str) -> String {
    let text = normalise_newlines(text);
    let lines: Vec<Line<'_>> = text.split('\n').map(Line::new).collect();
    let mut kept = new_lines(&lines);
    cut_trailing_signature(&mut kept);
    render(&kept)
}

/// The new text of an HTML reply as plain text: the HTML is cut at the quote
/// markers (Outlook's divRplyFwdMsg / "border-top:solid #E1E1E1" separators,
/// Gmail's gmail_quote / gmail_extra, Apple/Thunderbird blockquote type=cite,
/// moz-cite-prefix, Yahoo yahoo_quoted, etc.), converted to text with a small
/// tag-stripping converter (block tags → newlines, <br> → newline, entities
/// decoded), then passed through strip_plain.
pub fn strip_html(html: &str) -> String {
    strip_plain(&html_to_text(html))
}

/// Chooses: the plain part when the mail has one with content, else the HTML
/// part.
pub fn reply_text(plain: Option<&str>, html: Option<&str>) -> String {
    match (plain, html) {
        (Some(p), _) if !p.trim().is_empty() => strip_plain(p),
        (_, Some(h)) => strip_html(h),
        _ => String::new(),
    }
}

mod headers;
mod html;
mod plain;
mod signature;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

use headers::*;
use html::*;
use plain::*;
use signature::*;
