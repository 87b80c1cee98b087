use super::*;

/// `-- ` (RFC 3676) or `--`: everything under it is signature.
pub(super) fn is_signature_delimiter(line: &str) -> bool {
    line.trim_end() == "--"
}

/// A line of separator characters only (`-----`, `_____`, `=====`, `———`).
pub(super) fn is_separator_line(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && t.chars()
            .all(|c| matches!(c, '-' | '_' | '=' | '*' | '~' | '#' | '—' | '–' | '•'))
}

/// "-----Original Message-----", "-------- Message d'origine --------",
/// "---------- Forwarded message ---------", "Begin forwarded message:"…
pub(super) fn is_original_message_separator(line: &str) -> bool {
    const DASHED: &[&str] = &[
        "original message",
        "original-nachricht",
        "ursprüngliche nachricht",
        "ursprungliche nachricht",
        "message d'origine",
        "message d’origine",
        "message original",
        "messaggio originale",
        "mensaje original",
        "mensagem original",
        "oorspronkelijk bericht",
        "origineel bericht",
        "oprindelig besked",
        "oprindelig meddelelse",
        "opprinnelig melding",
        "ursprungligt meddelande",
        "alkuperäinen viesti",
        "oryginalna wiadomość",
        "wiadomość oryginalna",
        "původní zpráva",
        "eredeti üzenet",
        "исходное сообщение",
        "пересланное сообщение",
        "forwarded message",
        "forwarded by",
        "przekazana wiadomość",
        "wiadomość przekazana",
        "přeposlaná zpráva",
        "転送メッセージ",
        "元のメッセージ",
        "转发的消息",
        "转发邮件",
        "原始邮件",
        "原始郵件",
        "轉寄郵件",
        "원본 메시지",
        "전달된 메시지",
        "weitergeleitete nachricht",
        "message transféré",
        "mensaje reenviado",
        "messaggio inoltrato",
        "doorgestuurd bericht",
        "videresendt melding",
        "videresendt besked",
        "vidarebefordrat meddelande",
        "välitetty viesti",
        "mensagem encaminhada",
    ];
    const BARE: &[&str] = &[
        "begin forwarded message",
        "anfang der weitergeleiteten nachricht",
        "début du message réexpédié",
        "début du message transféré",
        "inicio del mensaje reenviado",
        "inizio messaggio inoltrato",
        "begin doorgestuurd bericht",
        "início da mensagem reencaminhada",
        "começo da mensagem encaminhada",
        "początek przekazanej wiadomości",
        "vidarebefordrat mejl",
        "начало переадресованного сообщения",
        "転送されたメッセージ",
        "以下是转发的邮件",
    ];
    let t = line.trim();
    let inner = t.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '-' | '_' | '=' | '*' | '—' | '–')
    });
    let dashed = t.len() - inner.len() >= 2;
    if inner.is_empty() || (!dashed && !inner.ends_with([':', '：'])) {
        return false;
    }
    let lower = inner.to_lowercase();
    let lower = lower.trim_end_matches([':', '：', ' ']);
    (dashed && DASHED.iter().any(|p| lower.starts_with(p))) || BARE.contains(&lower)
}

/// "Sent from my iPhone", "Get Outlook for iOS<https://aka.ms/…>", "Von
/// meinem iPhone gesendet"…: a short line, no sentence in it.
pub(super) fn is_mobile_signature(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sent from ",
        "sent with ",
        "sent using ",
        "get outlook for ",
        "envoyé de mon ",
        "envoyé depuis ",
        "envoyé à partir de ",
        "envoyé avec ",
        "gesendet von ",
        "gesendet mit ",
        "von meinem ",
        "enviado desde ",
        "enviado do meu ",
        "enviado de meu ",
        "enviado a partir do ",
        "enviado com ",
        "inviato da ",
        "inviato dal ",
        "verzonden met ",
        "verzonden vanaf ",
        "verstuurd vanaf ",
        "verstuurd met ",
        "sendt fra ",
        "skickat från ",
        "lähetetty ",
        "wysłane z ",
        "odesláno z ",
        "отправлено с ",
        "отправлено из ",
    ];
    // The first words of the prefixes, to turn most lines away cheaply.
    #[rustfmt::skip]
    const FIRST_WORDS: &[&str] = &[
        "sent", "get", "envoyé", "gesendet", "von", "enviado", "inviato", "verzonden", "verstuurd",
        "sendt", "skickat", "lähetetty", "wysłane", "odesláno", "отправлено",
    ];
    // Scripts without spaces: "iPhoneから送信", "发自我的iPhone", "從我的 iPhone 傳送".
    let t = line.trim();
    if t.len() <= 60
        && (t.ends_with("から送信")
            || t.starts_with("发自我的")
            || t.starts_with("從我的")
            || t.starts_with("来自我的"))
    {
        return true;
    }
    let first = line.split_whitespace().next().unwrap_or("");
    if first.len() > 20 || !FIRST_WORDS.contains(&first.to_lowercase().as_str()) {
        return false;
    }
    let text = without_links(line.trim());
    let lower = text.trim().to_lowercase();
    PREFIXES.iter().any(|p| lower.starts_with(p))
        && lower.split_whitespace().count() <= 10
        && !lower.contains([',', ':', '?'])
}

/// The line without `<…>` and `(http…)` parts (links mobile clients append).
pub(super) fn without_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = rest.find(['<', '(']) {
        let (before, from) = rest.split_at(pos);
        out.push_str(before);
        let is_link = from.starts_with('<') || from[1..].trim_start().starts_with("http");
        let close = if from.starts_with('<') { '>' } else { ')' };
        match (is_link, from.find(close)) {
            (true, Some(end)) => rest = &from[end + close.len_utf8()..],
            (true, None) => return out,
            (false, _) => {
                out.push('(');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// The end of the kept text: junk and trailing signature blocks
// ---------------------------------------------------------------------------

/// Drops blank and separator lines from the end.
pub(super) fn trim_trailing_junk(kept: &mut Vec<&Line<'_>>) {
    while kept
        .last()
        .is_some_and(|l| l.blank || (!l.code && is_separator_line(l.text)))
    {
        kept.pop();
    }
}

/// Cuts a short, signature-like block at the end that follows a separator
/// line (`___`, `----`, `———`) or a "Regards"-type valediction. A sign-off
/// with at most the writer's name under it ("Cordialement,\nJo") is the
/// writer's and stays; a code block is content and ends the search.
pub(super) fn cut_trailing_signature(kept: &mut Vec<&Line<'_>>) {
    let Some(first_text) = kept.iter().position(|l| !l.blank) else {
        return;
    };
    let mut cut = None;
    let mut below = 0;
    for k in (first_text + 1..kept.len()).rev() {
        if kept[k].code {
            break;
        }
        let line = kept[k].text.trim();
        if line.is_empty() {
            continue;
        }
        if (is_separator_line(line) && line.chars().count() >= 2) || is_valediction(line) {
            cut = Some(k);
            continue;
        }
        below += 1;
        if below > MAX_SIGNATURE_LINES || is_sentence(line) || is_list_item(line) {
            break;
        }
    }
    let Some(k) = cut else {
        return;
    };
    if is_valediction(kept[k].text.trim()) && is_sign_off(&kept[k + 1..]) {
        return;
    }
    kept.truncate(k);
    trim_trailing_junk(kept);
}

/// The lines under a valediction are at most a name: one short line
/// without digits, addresses or links ("Jo", "Jo Doe", "Anna-Lena").
fn is_sign_off(below: &[&Line<'_>]) -> bool {
    let mut lines = below
        .iter()
        .map(|l| l.text.trim())
        .filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (None, _) => true,
        (Some(name), None) => {
            name.chars().count() <= 40
                && name.split_whitespace().count() <= 4
                && !name.contains(|c: char| c.is_ascii_digit() || matches!(c, '@' | ':' | '/'))
        }
        _ => false,
    }
}

/// "Regards," and its translations: closings that a signature follows.
/// "Thanks," and "Cheers," are kept: they often carry the message.
pub(super) fn is_valediction(line: &str) -> bool {
    const CLOSINGS: &[&str] = &[
        "regards",
        "best regards",
        "kind regards",
        "kindest regards",
        "warm regards",
        "warmest regards",
        "many regards",
        "with regards",
        "with best regards",
        "with kind regards",
        "mit freundlichen grüßen",
        "mit freundlichen grüssen",
        "freundliche grüße",
        "freundliche grüsse",
        "beste grüße",
        "viele grüße",
        "liebe grüße",
        "cordialement",
        "bien cordialement",
        "salutations",
        "saludos",
        "saludos cordiales",
        "un saludo",
        "atentamente",
        "met vriendelijke groet",
        "met vriendelijke groeten",
        "vriendelijke groet",
        "cordiali saluti",
        "distinti saluti",
        "atenciosamente",
        "cumprimentos",
        "med vennlig hilsen",
        "vennlig hilsen",
        "med venlig hilsen",
        "venlig hilsen",
        "med vänliga hälsningar",
        "vänliga hälsningar",
        "ystävällisin terveisin",
        "terveisin",
        "pozdrawiam",
        "z poważaniem",
        "с уважением",
    ];
    if line.len() > 40 {
        return false;
    }
    let lower = line.to_lowercase();
    CLOSINGS.contains(&lower.trim_end_matches([',', '.', '!', ' ']))
}

/// "1. reboot", "- log in", "• done": content, not a signature line.
pub(super) fn is_list_item(line: &str) -> bool {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let rest = &line[digits..];
    (digits > 0 && rest.starts_with(['.', ')']))
        || ["- ", "* ", "• ", "– "].iter().any(|m| line.starts_with(m))
}

/// A line of prose, which a signature block does not hold.
pub(super) fn is_sentence(line: &str) -> bool {
    let end = line.trim_end_matches(['"', '\'', ')', '”', '’', ' ']);
    line.len() > 120
        || (line.split_whitespace().count() >= 6 && end.ends_with(['.', '?', '!', ';', ':']))
}
