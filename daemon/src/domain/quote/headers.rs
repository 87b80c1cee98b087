use super::*;

// ---------------------------------------------------------------------------
// Outlook-style header blocks: "From: … / Sent: … / To: … / Subject: …"
// ---------------------------------------------------------------------------

/// Labels naming the sender, lowercase.
#[rustfmt::skip]
pub(super) const FROM_LABELS: &[&str] = &[
    "from", "de", "von", "van", "da", "fra", "från", "od", "от", "lähettäjä", "feladó", "kimden",
    "frá", "mittente", "remitente", "afzender", "expéditeur", "发件人", "寄件者", "差出人",
    "від", "보낸 사람",
];

/// Labels giving the date a message was sent, lowercase.
#[rustfmt::skip]
pub(super) const SENT_LABELS: &[&str] = &[
    "sent", "sent at", "date",                                  // en
    "envoyé", "envoyé le", "envoye", "date d'envoi",            // fr
    "gesendet", "datum",                                        // de
    "verzonden", "verstuurd",                                   // nl
    "inviato", "inviato il", "data",                            // it
    "enviado", "enviada", "enviado el", "enviada em", "fecha",  // es, pt
    "sendt", "skickat", "dato", "lähetetty", "päivämäärä",      // nordic
    "wysłano", "wysłane", "odesláno", "elküldve", "dátum",      // pl, cs, hu
    "gönderildi", "tarih", "отправлено", "дата",                // tr, ru
    "发送时间", "日期", "日付", "寄件日期", "送信日時", "보낸 날짜",    // cjk
    "надіслано",                                                // uk
];

/// The other labels of a header block, lowercase.
#[rustfmt::skip]
pub(super) const OTHER_LABELS: &[&str] = &[
    "to", "subject", "cc", "bcc", "reply-to",                   // en
    "à", "a", "objet", "copie à", "sujet",                      // fr
    "an", "betreff", "kopie", "antwort an",                     // de
    "aan", "onderwerp",                                         // nl
    "oggetto",                                                  // it
    "para", "asunto", "assunto",                                // es, pt
    "til", "emne", "till", "ämne", "vastaanottaja", "aihe",     // nordic
    "kopio",
    "do", "temat", "komu", "předmět", "címzett", "tárgy",       // pl, cs, hu
    "kime", "konu", "кому", "тема", "копия",                    // tr, ru
    "收件人", "主题", "收件者", "主旨", "宛先", "件名",         // cjk
    "받는 사람", "제목", "참조",
];

/// The lowercase label of a "Label: value" line, with bold markers
/// (`*From:*`) and a space before the colon ("De :") allowed.
pub(super) fn header_label(line: &str) -> Option<String> {
    let t = line.trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == '_');
    let colon = t.find([':', '：'])?;
    if colon == 0 || colon > 40 {
        return None;
    }
    let label = t[..colon].trim().trim_end_matches('*').trim();
    let plain = label
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’'));
    if label.is_empty() || !plain || label.split_whitespace().count() > 3 {
        return None;
    }
    Some(label.to_lowercase())
}

/// What kind of "Label: value" line this is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    /// Not a "Label: value" line.
    None,
    From,
    Sent,
    Other,
    /// Shaped like one, with a label no header block uses ("Message du").
    Unknown,
}

pub(super) fn label_kind(line: &str) -> Label {
    let Some(label) = header_label(line) else {
        return Label::None;
    };
    let label = label.as_str();
    if FROM_LABELS.contains(&label) {
        Label::From
    } else if SENT_LABELS.contains(&label) {
        Label::Sent
    } else if OTHER_LABELS.contains(&label) {
        Label::Other
    } else {
        Label::Unknown
    }
}

/// Whether an Outlook-style header block starts at `i`: contiguous
/// "Label: value" lines (values may wrap) with a sender label, a date or an
/// address, and either three labels or a sender and a date with an address
/// ("From: 1 May / To: 5 May" in a leave request is not a header block).
pub(super) fn is_header_block(lines: &[Line<'_>], i: usize) -> bool {
    let first = &lines[i];
    if matches!(first.label, Label::None | Label::Unknown) {
        return false;
    }
    let mut has_from = first.label == Label::From;
    if has_from && first.dated && has_inline_labels(first.text) {
        return true;
    }
    let mut has_sent = first.label == Label::Sent;
    let mut has_at = first.has_at;
    let mut dated = first.dated;
    let mut labels = 1;
    for line in lines.iter().skip(i + 1).take(MAX_BLOCK_LOOKAHEAD) {
        if line.blank || line.quote || !line.short {
            break;
        }
        match line.label {
            Label::From => has_from = true,
            Label::Sent => has_sent = true,
            _ => {}
        }
        if matches!(line.label, Label::From | Label::Sent | Label::Other) {
            labels += 1;
        }
        // A value may wrap ("From: Human Resources\n<hr@example.com>").
        has_at |= line.has_at;
        dated |= line.dated;
        if has_from && dated && (labels >= 3 || (labels == 2 && has_sent && has_at)) {
            return true;
        }
    }
    false
}

pub(super) fn has_date_or_address(value: &str) -> bool {
    value.contains('@') || value.chars().any(|c| c.is_ascii_digit())
}

/// "From: Bob <b@example.com> Sent: Monday, 2 May 2022 10:00 To: …" on one
/// line, as some converters leave it.
pub(super) fn has_inline_labels(line: &str) -> bool {
    let lower = line.to_lowercase();
    [
        " sent:",
        " date:",
        " subject:",
        " gesendet:",
        " envoyé :",
        " enviado:",
        " verzonden:",
    ]
    .iter()
    .any(|l| lower.contains(l))
}

/// Drops "Message du : 12/12/2016 13:20"-like lines that lead into a header
/// block from the kept text (at most two, directly above it).
pub(super) fn drop_header_lead(kept: &mut Vec<&Line<'_>>) {
    for _ in 0..2 {
        match kept.last() {
            Some(l) if l.label != Label::None && l.dated => {
                kept.pop();
            }
            _ => break,
        }
    }
}

// ---------------------------------------------------------------------------
// Reply headers: "On … wrote:" and its relatives
// ---------------------------------------------------------------------------

/// Verbs a reply header ends with, lowercase ("…, Bob <b@c> wrote:").
pub(super) const HEADER_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "a écrit",
    "a ecrit",
    "schrieb",
    "geschrieben",
    "escribió",
    "escribio",
    "schreef",
    "ha scritto",
    "scrisse",
    "escreveu",
    "skrev",
    "skrev følgende",
    "kirjoitti",
    "napisał",
    "napisała",
    "napisał(a)",
    "napisal",
    "írta",
    "пишет",
    "написал",
    "написала",
    "написал(а)",
    "написав",
    "yazdı",
    "napsal",
    "napsala",
    "napísal",
    "menulis",
    "pisze",
    "napisao",
    "napisala",
    "написа",
    "έγραψε",
    "写道",
    "寫道",
    "書きました",
    "작성",
];

/// First words a reply header may open with, even with text right above it.
pub(super) const HEADER_OPENERS: &[&str] = &[
    "On", "Am", "Le", "El", "Op", "Il", "Em", "In", "Den", "Dne", "W", "Dnia", "På", "Quoting",
];

/// If a reply header starts at line `i`, the index of its last line.
pub(super) fn reply_header_at(lines: &[Line<'_>], i: usize) -> Option<usize> {
    let mut total = 0;
    for end in i..lines.len().min(i + MAX_HEADER_LINES) {
        let line = &lines[end];
        if !line.short || (end > i && (line.blank || line.quote)) {
            return None;
        }
        total += line.text.len();
        if total > MAX_MARKER_LINE * 2 {
            return None;
        }
        if !line.header_tail {
            continue;
        }
        if !may_start_header(lines, i) {
            return None;
        }
        if !is_reply_header(&lines[i..=end]) {
            continue;
        }
        // A shorter header ending on the same line wins: the text above it
        // is the author's ("On Monday I tried.\nOn 1 May, Bob <b@c> wrote:").
        let later =
            (i + 1..=end).any(|s| may_start_header(lines, s) && is_reply_header(&lines[s..=end]));
        return if later { None } else { Some(end) };
    }
    None
}

/// A header starts a paragraph, follows a quote, or opens with a date or a
/// header word ("On", "Am", "Le"…).
pub(super) fn may_start_header(lines: &[Line<'_>], s: usize) -> bool {
    let Some(prev) = s.checked_sub(1).and_then(|p| lines.get(p)) else {
        return true;
    };
    if prev.blank || prev.quote || (prev.short && is_separator_line(prev.text)) {
        return true;
    }
    let t = lines[s]
        .text
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*'));
    t.starts_with(|c: char| c.is_ascii_digit())
        || t.split_whitespace()
            .next()
            .is_some_and(|w| HEADER_OPENERS.contains(&w.trim_end_matches(',')))
}

/// Whether a line may end a reply header: with a header verb and a colon
/// ("wrote" may go without; a wrapped "a\nécrit :" ends with the verb's
/// last word), with `>:`, with a time or a bracketed date and a colon
/// ("…schrieb am Mo., 2. März 2026, 09:00:", mutt's "[2026-03-02 09:00]:"),
/// or with a verb and a name and a colon ("…, skrev Jo Doe:").
/// [`is_reply_header`] decides on the whole window.
pub(super) fn is_header_tail(line: &str) -> bool {
    let t = line.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*'));
    let (head, colon) = match t.strip_suffix([':', '：']) {
        Some(head) => (head.trim_end(), true),
        None => (t, false),
    };
    if colon && (head.ends_with(['>', ']', ')']) || head.ends_with(|c: char| c.is_ascii_digit())) {
        return true;
    }
    let ends_wrote =
        head.len() >= 5 && head.as_bytes()[head.len() - 5..].eq_ignore_ascii_case(b"wrote");
    if !colon && !ends_wrote {
        return false;
    }
    // The longest verb has 15 characters; one more shows the word boundary.
    let from = head.char_indices().rev().nth(16).map_or(0, |(k, _)| k);
    let tail = head[from..].to_lowercase();
    HEADER_VERBS
        .iter()
        .any(|v| ends_with_word(&tail, v) || ends_with_word(&tail, last_word(v)))
        || (colon && verb_before_name(head))
}

fn last_word(verb: &str) -> &str {
    verb.rsplit(' ').next().unwrap_or(verb)
}

/// Header verbs clients put before the name ("Am … schrieb Jo Doe:").
const VERBS_BEFORE_NAME: &[&str] = &["schrieb", "schreef", "skrev", "napsal", "napsala"];

/// "…, skrev Jo Doe", "…um 09:00 schrieb Jo Doe": a header verb followed by
/// one to four words of a name (capitalised; "van", "de"… may be lowercase)
/// and no address. "Am 2. März schrieb ich dem Support" is prose.
fn verb_before_name(head: &str) -> bool {
    const PARTICLES: &[&str] = &[
        "van", "von", "der", "den", "de", "da", "di", "la", "le", "du",
    ];
    let words: Vec<(usize, &str)> = head
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - head.as_ptr() as usize, w))
        .collect();
    (1..=4.min(words.len())).any(|n| {
        let (at, _) = words[words.len() - n];
        let before = head[..at].trim_end().to_lowercase();
        let name_like = words[words.len() - n..]
            .iter()
            .enumerate()
            .all(|(k, (_, w))| {
                w.starts_with(char::is_uppercase) || (k > 0 && PARTICLES.contains(w))
            });
        name_like && VERBS_BEFORE_NAME.iter().any(|v| ends_with_word(&before, v))
    })
}

/// "jo doe <jo@x> schrieb am mo., 2. märz 2026, 09:00": a header verb right
/// after the address, a date after the verb, lowercase.
fn verb_after_address(lower: &str) -> bool {
    HEADER_VERBS.iter().any(|v| {
        lower.match_indices(v).any(|(k, _)| {
            let before = lower[..k].trim_end();
            let after = &lower[k + v.len()..];
            let address_before = before.ends_with(['>', ')'])
                || before
                    .rsplit(char::is_whitespace)
                    .next()
                    .is_some_and(|w| w.contains('@'));
            address_before
                && after.starts_with(char::is_whitespace)
                && after.chars().any(|c| c.is_ascii_digit())
        })
    })
}

/// Ends with a bracketed date and time: "[2026-03-02 09:00 +0100]".
fn is_bracketed_time(head: &str) -> bool {
    let Some(inner) = head.strip_suffix(']') else {
        return false;
    };
    inner.rsplit_once('[').is_some_and(|(_, b)| {
        b.contains(':') && b.chars().filter(char::is_ascii_digit).count() >= 4
    })
}

/// Words a quoting attribution opens with when it holds no date (Horde,
/// IMP: "Quoting Jo Doe <jo@example.com>:"), lowercase.
const QUOTING_OPENERS: &[&str] = &["quoting ", "zitat von ", "citando ", "citation ", "cytuję "];

/// Whether these lines, joined, are a reply header: they end with a verb
/// ("wrote", "schrieb", "a écrit :"…) and hold a date or an address, or they
/// hold a date and an address and end with `>:` (`…, "Bob" <b@c.d>:`).
pub(super) fn is_reply_header(window: &[Line<'_>]) -> bool {
    let joined = window
        .iter()
        .map(|l| l.text.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let t = joined.trim_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*' | '_'));
    let lower = t.to_lowercase();
    let has_digit = lower.chars().any(|c| c.is_ascii_digit());
    let has_at = lower.contains('@');
    let ends_with_colon = lower.ends_with([':', '：']);
    let head = lower.trim_end_matches([':', '：']).trim_end();
    let ends_with_verb = HEADER_VERBS.iter().any(|v| ends_with_word(head, v));
    if ends_with_verb && (has_digit || has_at) {
        // Only "wrote" goes without a colon ("On … John <j@d.com> wrote").
        return ends_with_colon || head.ends_with("wrote");
    }
    if !ends_with_colon {
        return false;
    }
    let opens_like_header = t.starts_with(|c: char| c.is_ascii_digit())
        || t.split_whitespace()
            .next()
            .is_some_and(|w| HEADER_OPENERS.contains(&w.trim_end_matches(',')));
    let name_last = t.trim_end_matches([':', '：']).trim_end();
    if has_at && head.ends_with('>') {
        // "2026-03-02 9:00 GMT+01:00 Jo <jo@x>:", "пн, 2 мар. 2026 г. в 09:00,
        // Jo <jo@x>:"; Horde: "Quoting Jo Doe <jo@x>:"
        return has_digit || QUOTING_OPENERS.iter().any(|q| lower.starts_with(q));
    }
    // "Jo Doe <jo@x> schrieb am Mo., 2. März 2026, 09:00:" (Gmail on phones)
    (has_at && has_digit && verb_after_address(head))
        // "Den 2026-03-02 kl. 09:00, skrev Jo Doe:" (Thunderbird)
        || (has_digit && opens_like_header && verb_before_name(name_last))
        // mutt: "* Jo Doe <jo@x> [2026-03-02 09:00]:"
        || (joined.trim_start().starts_with('*') && is_bracketed_time(head))
}

/// `text` ends with `word`, not with a longer word ("rewrote").
pub(super) fn ends_with_word(text: &str, word: &str) -> bool {
    let Some(before) = text.strip_suffix(word) else {
        return false;
    };
    let is_cjk = word.chars().next().is_some_and(|c| c >= '\u{2e80}');
    is_cjk
        || !before
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
}
