use super::*;

// ---------------------------------------------------------------------------
// Plain text: the top-to-bottom pass
// ---------------------------------------------------------------------------

pub(super) fn normalise_newlines(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// What the pass asks about a line, worked out once so that every
/// look-ahead and look-behind is a few field reads.
pub(super) struct Line<'a> {
    pub(super) text: &'a str,
    pub(super) blank: bool,
    pub(super) quote: bool,
    /// Short enough to be a header, separator or signature line.
    pub(super) short: bool,
    pub(super) label: Label,
    /// Holds a digit or an `@`: a date or an address.
    pub(super) dated: bool,
    pub(super) has_at: bool,
    /// Ends the way a reply header ends ("wrote:", "a écrit :", `>:`).
    pub(super) header_tail: bool,
}

impl<'a> Line<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let blank = text.trim().is_empty();
        let quote = is_quote(text);
        let short = text.len() <= MAX_MARKER_LINE;
        let marker = short && !blank && !quote;
        Line {
            text,
            blank,
            quote,
            short,
            label: if marker {
                label_kind(text)
            } else {
                Label::None
            },
            dated: marker && has_date_or_address(text),
            has_at: marker && text.contains('@'),
            header_tail: marker && is_header_tail(text),
        }
    }
}

/// The lines written by the author, in order, before the trailing-signature
/// pass.
pub(super) fn new_lines<'a>(lines: &[Line<'a>]) -> Vec<&'a str> {
    let mut kept: Vec<&Line<'a>> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.quote {
            i = end_of_quote_block(lines, i);
            continue;
        }
        if line.short && !line.blank {
            if is_signature_delimiter(line.text)
                || is_original_message_separator(line.text)
                || is_mobile_signature(line.text)
            {
                break;
            }
            if is_header_block(lines, i) {
                drop_header_lead(&mut kept);
                break;
            }
            if let Some(end) = reply_header_at(lines, i) {
                match lines.iter().skip(end + 1).find(|l| !l.blank) {
                    // Header over a `>` quote: drop both, keep what follows
                    // (bottom-posted and interleaved replies).
                    Some(next) if next.quote => {
                        i = end + 1;
                        continue;
                    }
                    // The old message follows unquoted: it all goes.
                    _ => break,
                }
            }
        }
        kept.push(line);
        i += 1;
    }
    let mut kept: Vec<&'a str> = kept.iter().map(|l| l.text).collect();
    trim_trailing_junk(&mut kept);
    kept
}

pub(super) fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// A `>` line. `>:` is not one: it ends a wrapped header (`<a@b.c\n>:`).
pub(super) fn is_quote(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('>') && !t.starts_with(">:")
}

/// The index after a block of `>` lines starting at `start`. A client that
/// re-wraps a long quoted line leaves its tail unquoted between two `>`
/// lines; such a tail belongs to the quote.
pub(super) fn end_of_quote_block(lines: &[Line<'_>], start: usize) -> usize {
    let mut j = start;
    while j < lines.len() && (lines[j].quote || is_wrapped_quote_tail(lines, j)) {
        j += 1;
    }
    j
}

pub(super) fn is_wrapped_quote_tail(lines: &[Line<'_>], j: usize) -> bool {
    let (Some(prev), Some(line), Some(next)) = (
        j.checked_sub(1).and_then(|p| lines.get(p)),
        lines.get(j),
        lines.get(j + 1),
    ) else {
        return false;
    };
    if !prev.quote || !next.quote || line.blank {
        return false;
    }
    let prev = prev.text.trim_end();
    let prev_is_long = prev.len() >= 50;
    let prev_sentence_ended = prev.ends_with(['.', '?', '!', ':']);
    let starts_lower = line
        .text
        .trim_start()
        .chars()
        .next()
        .is_some_and(char::is_lowercase);
    prev_is_long && (!prev_sentence_ended || starts_lower)
}

pub(super) fn render(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank_before = false;
    for line in lines {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_before = true;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_before {
                out.push('\n');
            }
        }
        blank_before = false;
        out.push_str(line);
    }
    out.trim().to_string()
}
