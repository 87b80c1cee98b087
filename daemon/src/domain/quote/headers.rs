use super::*;

// ---------------------------------------------------------------------------
// Outlook-style header blocks: "From: … / Sent: … / To: … / Subject: …"
// ---------------------------------------------------------------------------

/// Labels naming the sender, lowercase.
#[rustfmt::skip]
pub(super) const FROM_LABELS: &[&str] = &[
    "from", "de", "von", "van", "da", "fra", "från", "od", "от", "lähettäjä", "feladó", "kimden",
    "frá", "mittente", "remitente", "afzender", "expéditeur", "发件人", "寄件者", "差出人",
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
    "发送时间", "日期", "寄件日期", "送信日時",                 // cjk
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
    "写道",
    "寫道",
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

/// Whether a line ends the way a reply header's last line does: with a
/// header verb and a colon ("wrote" may go without), or with `>:`.
pub(super) fn is_header_tail(line: &str) -> bool {
    let t = line.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*'));
    let (head, colon) = match t.strip_suffix([':', '：']) {
        Some(head) => (head.trim_end(), true),
        None => (t, false),
    };
    if colon && head.ends_with('>') {
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
    HEADER_VERBS.iter().any(|v| ends_with_word(&tail, v))
}

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
    ends_with_colon && head.ends_with('>') && has_at && has_digit
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
