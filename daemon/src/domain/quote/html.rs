// ---------------------------------------------------------------------------
// HTML: quote markers and the conversion to text
// ---------------------------------------------------------------------------

/// Text in an opening tag (lowercase) that marks the start of the quoted
/// part, and the tag name or word the same tag must also hold.
pub(super) const HTML_MARKERS: &[(&str, Option<&str>)] = &[
    ("gmail_quote", None),
    ("gmail_extra", None),
    ("divrplyfwdmsg", None),
    ("solid #e1e1e1", Some("border-top")),
    ("solid #b5c4df", Some("border-top")),
    ("type=\"cite\"", Some("<blockquote")),
    ("type='cite'", Some("<blockquote")),
    ("type=cite", Some("<blockquote")),
    ("moz-cite-prefix", None),
    ("yahoo_quoted", None),
    ("olk_src_body_section", None),
    ("appendonsend", None),
    ("mail-editor-reference-message-container", None),
    ("outlookmessageheader", None),
    ("stopspelling", None),
    ("zwchr", None),
    ("zmail_extra", None),
    ("protonmail_quote", None),
    ("__quoted_text__", None),
];

/// Whether this opening tag (its whole text, lowercase) starts the quote.
pub(super) fn is_quote_marker(tag: &str) -> bool {
    HTML_MARKERS
        .iter()
        .any(|&(marker, needs)| tag.contains(marker) && needs.is_none_or(|w| tag.contains(w)))
}

/// Text out of HTML the way a reader sees it, up to the first quote marker:
/// runs of whitespace collapse, block tags and `<br>` break lines,
/// `<blockquote>` lines get `> `, `<style>`, `<script>` and comments vanish,
/// entities are decoded.
pub(super) fn html_to_text(html: &str) -> String {
    html_text(html, AtMarker::Stop).0
}

/// All the text of the HTML, quote markers or not.
pub(super) fn html_to_text_whole(html: &str) -> String {
    html_text(html, AtMarker::Ignore).0
}

/// All the text of the HTML and, when it has a quote marker, the text up to
/// the first one, in one pass.
pub(super) fn html_to_text_both(html: &str) -> (String, Option<String>) {
    html_text(html, AtMarker::Note)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AtMarker {
    /// The text ends at the first marker.
    Stop,
    Ignore,
    /// The text up to the first marker is kept aside and the pass goes on.
    Note,
}

fn html_text(html: &str, at_marker: AtMarker) -> (String, Option<String>) {
    // ASCII lowercasing keeps every byte offset of `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = TextOut::default();
    let mut cut: Option<String> = None;
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        let Some(lt) = rest.find(['<', '&']) else {
            out.text(rest);
            break;
        };
        out.text(&rest[..lt]);
        i += lt;
        if html.as_bytes()[i] == b'&' {
            let (decoded, used) = decode_entity(&html[i..]);
            out.text_char(decoded);
            i += used;
            continue;
        }
        i = match read_tag(html, &lower, i) {
            Tag::Skip(next) => next,
            Tag::Text => {
                out.text_char('<');
                i + 1
            }
            Tag::Element {
                name,
                closing,
                next,
            } => {
                if at_marker != AtMarker::Ignore
                    && cut.is_none()
                    && !closing
                    && is_quote_marker(&lower[i..next])
                {
                    if at_marker == AtMarker::Stop {
                        break;
                    }
                    cut = Some(out.clone().finish());
                }
                out.element(&name, closing);
                let raw = matches!(
                    name.as_str(),
                    "style" | "script" | "title" | "xml" | "noscript"
                );
                if raw && !closing {
                    skip_raw_element(&lower, next, &name)
                } else {
                    next
                }
            }
        };
    }
    (out.finish(), cut)
}

pub(super) enum Tag {
    /// A comment, doctype or processing instruction: resume at the offset.
    Skip(usize),
    /// A `<` that opens no tag.
    Text,
    Element {
        name: String,
        closing: bool,
        next: usize,
    },
}

/// Reads the tag at `at` (which holds `<`).
pub(super) fn read_tag(html: &str, lower: &str, at: usize) -> Tag {
    let rest = &lower[at..];
    if rest.starts_with("<!--") {
        return Tag::Skip(rest.find("-->").map_or(html.len(), |e| at + e + 3));
    }
    if rest.starts_with("<!") || rest.starts_with("<?") {
        return Tag::Skip(rest.find('>').map_or(html.len(), |e| at + e + 1));
    }
    let closing = rest.starts_with("</");
    let name_start = if closing { 2 } else { 1 };
    let name: String = rest[name_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-'))
        .collect();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Tag::Text;
    }
    // The end of the tag: the first `>` outside a quoted attribute value.
    let bytes = html.as_bytes();
    let mut j = at + name_start + name.len();
    let mut quote: Option<u8> = None;
    // The last byte outside quotes that was not a space: a quote opens a
    // value only right after `=` (`<p class=it's>` has no quoted value).
    let mut last = 0u8;
    while j < bytes.len() {
        let b = bytes[j];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if (b == b'"' || b == b'\'') && last == b'=' => quote = Some(b),
            None if b == b'>' => break,
            None if !b.is_ascii_whitespace() => last = b,
            None => {}
        }
        j += 1;
    }
    Tag::Element {
        name,
        closing,
        next: (j + 1).min(html.len()),
    }
}

/// The offset after `</name…>`, or the end.
pub(super) fn skip_raw_element(lower: &str, from: usize, name: &str) -> usize {
    let close = format!("</{name}");
    let Some(found) = lower.get(from..).and_then(|s| s.find(&close)) else {
        return lower.len();
    };
    let after = from + found;
    lower[after..]
        .find('>')
        .map_or(lower.len(), |e| after + e + 1)
}

/// The character an entity at the start of `s` stands for, and its length.
/// An unknown or broken entity is a literal `&`.
pub(super) fn decode_entity(s: &str) -> (char, usize) {
    let Some(semi) = s.bytes().take(12).position(|b| b == b';') else {
        return ('&', 1);
    };
    let name = &s[1..semi];
    let numeric = name
        .strip_prefix('#')
        .and_then(|n| match n.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => n.parse::<u32>().ok(),
        });
    let c = match numeric {
        Some(code) => char::from_u32(code).unwrap_or('\u{fffd}'),
        None => match name {
            "nbsp" => '\u{a0}',
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "ndash" => '–',
            "mdash" => '—',
            "hellip" => '…',
            "lsquo" => '‘',
            "rsquo" => '’',
            "ldquo" => '“',
            "rdquo" => '”',
            "laquo" => '«',
            "raquo" => '»',
            "bull" => '•',
            "middot" => '·',
            "copy" => '©',
            "reg" => '®',
            "trade" => '™',
            "euro" => '€',
            "shy" | "zwnj" | "zwj" | "lrm" | "rlm" => '\u{200b}',
            "eacute" => 'é',
            "egrave" => 'è',
            "agrave" => 'à',
            "ccedil" => 'ç',
            "auml" => 'ä',
            "ouml" => 'ö',
            "uuml" => 'ü',
            "Auml" => 'Ä',
            "Ouml" => 'Ö',
            "Uuml" => 'Ü',
            "szlig" => 'ß',
            _ => return ('&', 1),
        },
    };
    (c, semi + 1)
}

/// The text being built, with the state HTML whitespace rules need.
#[derive(Default, Clone)]
pub(super) struct TextOut {
    out: String,
    quote_depth: usize,
    pre_depth: usize,
    /// Text has been written on the current line.
    in_line: bool,
    /// Collapsed whitespace is pending before the next word.
    space: bool,
}

impl TextOut {
    fn text(&mut self, s: &str) {
        // Runs of printable ASCII (no whitespace, nothing invisible) are
        // written whole; every other character goes through `text_char`.
        let mut rest = s;
        while !rest.is_empty() {
            let run = rest
                .bytes()
                .position(|b| !b.is_ascii_graphic())
                .unwrap_or(rest.len());
            if run > 0 {
                self.shown(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            let Some(c) = rest.chars().next() else {
                break;
            };
            self.text_char(c);
            rest = &rest[c.len_utf8()..];
        }
    }

    fn text_char(&mut self, c: char) {
        match c {
            '\u{200b}' | '\u{feff}' | '\u{200e}' | '\u{200f}' => {}
            '\n' if self.pre_depth > 0 => self.newline(),
            c if c.is_whitespace() && c != '\u{a0}' && self.pre_depth == 0 => {
                self.space = self.in_line;
            }
            '\u{a0}' => self.shown(" "),
            c => self.shown(c.encode_utf8(&mut [0; 4])),
        }
    }

    /// Visible text: after the line's quote marks or the pending space.
    fn shown(&mut self, s: &str) {
        if !self.in_line {
            for _ in 0..self.quote_depth {
                self.out.push_str("> ");
            }
            self.in_line = true;
        } else if self.space {
            self.out.push(' ');
        }
        self.space = false;
        self.out.push_str(s);
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.in_line = false;
        self.space = false;
    }

    fn line_break(&mut self) {
        if self.in_line {
            self.newline();
        }
    }

    fn element(&mut self, name: &str, closing: bool) {
        match name {
            "br" => self.newline(),
            "blockquote" => {
                self.line_break();
                self.quote_depth = if closing {
                    self.quote_depth.saturating_sub(1)
                } else {
                    self.quote_depth + 1
                };
            }
            "pre" => {
                self.line_break();
                self.pre_depth = if closing {
                    self.pre_depth.saturating_sub(1)
                } else {
                    self.pre_depth + 1
                };
            }
            "li" => {
                self.line_break();
                if !closing {
                    self.text("- ");
                }
            }
            "p" | "div" | "tr" | "table" | "tbody" | "thead" | "ul" | "ol" | "dl" | "dt" | "dd"
            | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "hr" | "section" | "article" | "header"
            | "footer" | "center" | "address" | "form" | "fieldset" | "body" | "html" => {
                self.line_break();
            }
            "td" | "th" if closing => self.space = self.in_line,
            _ => {}
        }
    }

    fn finish(self) -> String {
        self.out
    }
}
