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
    /// Inside a fenced code block (its fences included): content, whatever
    /// it looks like.
    pub(super) code: bool,
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
            code: false,
        }
    }
}

/// The lines of a text (newlines normalised), fenced code blocks marked.
pub(super) fn read_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = text.split('\n').map(Line::new).collect();
    mark_code(&mut lines);
    lines
}

/// The fence a line opens or closes a code block with: three or more
/// backticks or tildes at its start (Markdown).
fn fence(line: &Line<'_>) -> Option<char> {
    if line.quote || line.blank {
        return None;
    }
    let t = line.text.trim_start();
    ['`', '~']
        .into_iter()
        .find(|&c| t.chars().take_while(|&x| x == c).count() >= 3)
}

/// Marks the lines of each closed fenced code block as code. An opening
/// fence without a closing one marks nothing: a lone "```" must not hide
/// the quote under it. Linear: a fence kind that finds no closer has no
/// fence left to pair with.
fn mark_code(lines: &mut [Line<'_>]) {
    let mut i = 0;
    while i < lines.len() {
        let Some(kind) = fence(&lines[i]) else {
            i += 1;
            continue;
        };
        let Some(close) = (i + 1..lines.len()).find(|&j| fence(&lines[j]) == Some(kind)) else {
            i += 1;
            continue;
        };
        for line in &mut lines[i..=close] {
            line.code = true;
            line.quote = false;
            line.label = Label::None;
            line.dated = false;
            line.has_at = false;
            line.header_tail = false;
        }
        i = close + 1;
    }
}

/// Whether the text has words of its own: a line that is not quoted
/// history, a reply header, a header-block line, a separator or a mobile
/// signature, and holds a letter or digit.
pub(super) fn has_own_words(lines: &[Line<'_>]) -> bool {
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.blank || line.quote {
            i += 1;
            continue;
        }
        if line.short && !line.code {
            if let Some(end) = reply_header_at(lines, i) {
                i = end + 1;
                continue;
            }
            if matches!(line.label, Label::From | Label::Sent | Label::Other)
                || is_signature_delimiter(line.text)
                || is_separator_line(line.text)
                || is_original_message_separator(line.text)
                || is_mobile_signature(line.text)
            {
                i += 1;
                continue;
            }
        }
        if line.text.chars().any(char::is_alphanumeric) {
            return true;
        }
        i += 1;
    }
    false
}

/// The text without the invisible characters some clients add: zero-width
/// spaces (U+200B), word joiners (U+2060), byte order marks (U+FEFF) and
/// Gmail's "ᐧ" (U+1427) where no Canadian syllabics surround it; zero-width
/// (non-)joiners (U+200C, U+200D) only where they join nothing (between two
/// non-ASCII letters or emoji they shape the text: Persian, Indic scripts,
/// emoji sequences).
pub(super) fn without_invisibles(text: &str) -> Cow<'_, str> {
    const INVISIBLE: [char; 6] = [
        '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{1427}',
    ];
    if !text.contains(INVISIBLE) {
        return Cow::Borrowed(text);
    }
    let joinable = |c: Option<char>| c.is_some_and(|c| !c.is_ascii() && !c.is_whitespace());
    let syllabic = |c: Option<char>| c.is_some_and(|c| ('\u{1400}'..='\u{167f}').contains(&c));
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let drop = match c {
            '\u{200b}' | '\u{2060}' | '\u{feff}' => true,
            '\u{200c}' | '\u{200d}' => !(joinable(prev) && joinable(next)),
            '\u{1427}' => !(syllabic(prev) || syllabic(next)),
            _ => false,
        };
        if !drop {
            out.push(c);
            prev = Some(c);
        }
    }
    Cow::Owned(out)
}

/// The lines written by the author, in order, before the trailing-signature
/// pass.
pub(super) fn new_lines<'l, 'a>(lines: &'l [Line<'a>]) -> Vec<&'l Line<'a>> {
    let mut kept: Vec<&Line<'a>> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if line.quote {
            i = end_of_quote_block(lines, i);
            continue;
        }
        if line.short && !line.blank && !line.code {
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
    trim_trailing_junk(&mut kept);
    kept
}

/// A quoted line: `>` (`>:` is not one: it ends a wrapped header,
/// `<a@b.c\n>:`), `|` (some clients and list archives; a Markdown table row
/// `| a | b |` is not one), or initials before `>` (Supercite: `JD> `,
/// `AB>`).
pub(super) fn is_quote(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('>') {
        return !t.starts_with(">:");
    }
    if let Some(rest) = t.strip_prefix('|') {
        let rest = rest.trim_end();
        return rest.is_empty() || (rest.starts_with([' ', '\t']) && !rest.ends_with('|'));
    }
    is_initials_quote(t)
}

/// `JD> text`, `AB>`, `JD>> text`: one to three letters, the first a
/// capital, then `>` and a space, another `>` or the end of the line.
fn is_initials_quote(t: &str) -> bool {
    let letters = t.chars().take_while(|c| c.is_alphabetic()).count();
    if letters == 0 || letters > 3 || !t.starts_with(char::is_uppercase) {
        return false;
    }
    let Some((at, _)) = t.char_indices().nth(letters) else {
        return false;
    };
    let rest = &t[at..];
    rest.strip_prefix('>')
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '>', '\t']))
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

pub(super) fn render<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
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
