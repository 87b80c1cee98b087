//! The new text of a mail reply: what its author just wrote, without the
//! quoted history, the reply headers and the signature under it.
//!
//! The desk shows this on the ticket; the raw mail is stored elsewhere, so a
//! cut that goes too far loses nothing for good. Still, every rule here leans
//! towards keeping text: a line is dropped only when it has the shape of a
//! known client's quoting, header or signature.
//!
//! Plain text is first freed of invisible markers (zero-width spaces, word
//! joiners, BOMs, Gmail's "ᐧ"), then read line by line, top to bottom:
//! - Quoted lines go: `>`, `| ` (list archives, some clients) and initials
//!   (`JD> `, Supercite); new lines between quoted blocks stay (interleaved
//!   and bottom-posted replies).
//! - Lines of a closed fenced code block (```` ``` ```` or `~~~`) are
//!   content, whatever they look like (`--`, `#####`, `From:`, `>`).
//! - A reply header ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", a
//!   date and an address ending in `>:`, "<addr> schrieb am DATE:", "Am DATE
//!   schrieb Name:", mutt's "* Name <addr> [DATE]:", "Quoting Name <addr>:",
//!   possibly wrapped over up to four lines) goes with the quote under it;
//!   when no quote follows, the old message was pasted unquoted and
//!   everything from the header on goes.
//! - Everything from an Outlook-style header block (`From:` + `Sent:`/`To:`…
//!   in several languages, `*From:*` too), an "-----Original Message-----" or
//!   forwarded-message separator, a mobile signature ("Sent from my iPhone",
//!   "Von meinem iPhone gesendet", "iPhoneから送信"…) or the `-- ` delimiter
//!   on goes.
//! - At the end of what is left, a short signature-like block after a
//!   separator line (`___`, `---`, `———`) or after a "Regards"-type
//!   valediction goes; a sign-off with at most the writer's name under it
//!   ("Cordialement,\nJo") is the writer's and stays.
//! - Never empty for a text with words of its own: when the cut leaves
//!   nothing (a forward without a note, an attribution line above the
//!   writer's unquoted text), the whole text is shown and [`Reply::whole`]
//!   says so; the mail then carries [`WHOLE_TEXT_SHOWN`].
//!
//! HTML is cut at the first quote marker a client leaves (Gmail's
//! `gmail_quote`, Outlook's `divRplyFwdMsg` and border-top separators,
//! Thunderbird's `moz-cite-prefix`, Apple's `blockquote type=cite`, Yahoo's
//! `yahoo_quoted`…), turned into text (blockquotes become `>` lines) and read
//! as plain text. When a marker at the top leaves nothing, all of the HTML
//! is read as text the same way (a bottom-posted answer under the quote, or
//! the whole text under the same never-empty rule).
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

/// The warning a mail carries when the cut left nothing of a text that has
/// words of its own, so the whole text is shown instead.
pub const WHOLE_TEXT_SHOWN: &str = "quote cut left nothing; the whole text is shown";

/// The new text of a reply and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub text: String,
    /// The cut left nothing of a text with words of its own (a forward
    /// without a note, an attribution line above the writer's own text), so
    /// `text` is the whole text: the mail deserves [`WHOLE_TEXT_SHOWN`].
    pub whole: bool,
}

/// The new text of a plain-text reply: quoted history, reply headers ("On …
/// wrote:", Outlook "From: … Sent: …" blocks, "-----Original Message-----")
/// and signatures removed; trimmed. Never empty for a text with words of
/// its own (see [`Reply::whole`]).
pub fn strip_plain(text: &str) -> String {
    plain_reply(text).text
}

/// The new text of an HTML reply as plain text: the HTML is cut at the quote
/// markers (Outlook's divRplyFwdMsg / "border-top:solid #E1E1E1" separators,
/// Gmail's gmail_quote / gmail_extra, Apple/Thunderbird blockquote type=cite,
/// moz-cite-prefix, Yahoo yahoo_quoted, etc.), converted to text with a small
/// tag-stripping converter (block tags → newlines, <br> → newline, entities
/// decoded), then passed through strip_plain. When a marker at the top leaves
/// nothing, the whole HTML is read as text (blockquotes as `>` lines).
pub fn strip_html(html: &str) -> String {
    html_reply(html).text
}

/// Chooses: the plain part when the mail has one with content, else the HTML
/// part.
pub fn reply_text(plain: Option<&str>, html: Option<&str>) -> String {
    reply(plain, html).text
}

/// [`reply_text`], with whether the whole text had to be kept.
pub fn reply(plain: Option<&str>, html: Option<&str>) -> Reply {
    match (plain, html) {
        (Some(p), _) if !p.trim().is_empty() => plain_reply(p),
        (_, Some(h)) => html_reply(h),
        _ => Reply::default(),
    }
}

fn plain_reply(text: &str) -> Reply {
    let text = normalise_newlines(text);
    let text = without_invisibles(&text);
    let lines = read_lines(&text);
    let mut kept = new_lines(&lines);
    cut_trailing_signature(&mut kept);
    let cut = render(kept.iter().map(|l| l.text));
    if cut.is_empty() && has_own_words(&lines) {
        return Reply {
            text: render(lines.iter().map(|l| l.text)),
            whole: true,
        };
    }
    Reply {
        text: cut,
        whole: false,
    }
}

/// An HTML part read once, for a mail whose only text is HTML: all of its
/// text (what a mail that opens a ticket shows) and, when it has a quote
/// marker, the text up to it.
pub struct HtmlText {
    pub whole: String,
    cut: Option<String>,
}

impl HtmlText {
    pub fn read(html: &str) -> HtmlText {
        let (whole, cut) = html_to_text_both(html);
        HtmlText { whole, cut }
    }

    /// The reply, the same as [`reply`] gives for the HTML alone.
    pub fn reply(&self) -> Reply {
        let Some(cut) = &self.cut else {
            return plain_reply(&self.whole);
        };
        let r = plain_reply(cut);
        if r.text.is_empty() {
            plain_reply(&self.whole)
        } else {
            r
        }
    }
}

fn html_reply(html: &str) -> Reply {
    let cut = plain_reply(&html_to_text(html));
    if !cut.text.is_empty() {
        return cut;
    }
    // A marker at the top (a forward without a note, a bottom-posted
    // answer under the quote): read all of it.
    plain_reply(&html_to_text_whole(html))
}

mod headers;
mod html;
mod plain;
mod signature;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

use headers::*;
use html::*;
use plain::*;
use signature::*;
