//! Business relationship management by mail: the satisfaction question a
//! customer gets when a ticket is resolved, reading the rating they answer
//! with (a number 1–5 and optional words), what a rating does (it is kept
//! on the ticket, never reopens it, and a 1 or 2 tells the service's
//! manager), and the notices to the complaints group.
//!
//! Pure: `ingest::apply` (and the plugin dispatcher) load what these
//! functions decide with and write the rows.

use std::collections::HashMap;

use super::ack::Desk;
use super::conversation::{Author, Draft, DraftKind, Effects, MailIn, Settings, TicketState};
use super::mail::Address;
use super::threading::tagged_subject;
use super::ticket::{Kind, Status, TicketNumber, Visibility};

/// The subject of the question, before the ticket tag; `{subject}` and
/// `{number}` are filled in.
pub const DEFAULT_SUBJECT: &str = "How did we do? {subject}";

/// The question; `{name}`, `{number}`, `{subject}` and `{desk}` are filled in.
pub const DEFAULT_TEXT: &str = "Hello {name},\n\n\
your ticket {number} \"{subject}\" has been resolved. How satisfied are you \
with the help you got?\n\n\
Please reply to this mail with a number from 1 (very dissatisfied) to 5 (very \
satisfied) on the first line, and any words you like after it, for example:\n\n\
    4 quick and friendly\n\n\
Your rating does not reopen the ticket. If the problem is not solved, reply \
to our last answer instead.\n\n\
-- \n{desk}\n";

/// A rating at or below this tells the service's manager.
pub const LOW_SCORE: u8 = 2;

/// The relationship rules from the configuration (`[satisfaction]`,
/// `[complaints]`, `[[service]] manager`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Ask customers to rate resolved tickets (`[satisfaction] enabled`).
    pub enabled: bool,
    /// `[satisfaction] subject`; empty: [`DEFAULT_SUBJECT`].
    pub subject: String,
    /// `[satisfaction] text`; empty: [`DEFAULT_TEXT`].
    pub text: String,
    /// Service name → who hears of a low rating: its `manager`, or else its
    /// `escalation` address.
    pub managers: HashMap<String, Address>,
    /// `[complaints] notify`, groups resolved to their members.
    pub complaints: Vec<Address>,
}

impl Policy {
    /// Everyone the relationship mails may go to besides customers.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.managers
            .values()
            .chain(&self.complaints)
            .map(|a| a.email.as_str())
    }

    /// Who is told of a low rating of a ticket of `service`: the service's
    /// manager (or escalation address), else the complaints group.
    pub fn low_rating_recipients(&self, service: Option<&str>) -> Vec<Address> {
        match service.and_then(|s| self.managers.get(s)) {
            Some(m) => vec![m.clone()],
            None => self.complaints.clone(),
        }
    }
}

/// A customer's rating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    /// 1 to 5.
    pub score: u8,
    /// The words after the number (the rest of the first line and the lines
    /// below it, up to the quoted history), trimmed; may be empty.
    pub comment: String,
}

/// The longest comment kept, in characters.
const MAX_COMMENT: usize = 4000;

/// Reads a rating from the new text of a reply: the first line that is not
/// empty or quoted must start with a score 1–5 (any script's decimal
/// digits, a circled digit or a keycap; "4/5", "4 of 5", "4 out of 5",
/// "5 stars", a row of ★, optionally after "Rating:" or "Score:"); words
/// after it are the comment. Anything else ("45", "4.5", "10/10", "I'd say
/// 4", "it is broken again") is not a rating.
pub fn parse(text: &str) -> Option<Rating> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    // One short greeting ("Hi,") may come first.
    if lines.peek().is_some_and(|l| {
        l.ends_with(',') && l.split_whitespace().count() <= 4 && score_at(l).is_none()
    }) {
        lines.next();
    }
    let first = lines.next()?;
    if is_history(first) {
        return None;
    }
    let (score, rest) = score_at(strip_label(first))?;
    let mut comment = vec![rest.trim_start_matches(SEPARATORS).trim().to_string()];
    for l in lines {
        if is_history(l) {
            break;
        }
        comment.push(l.to_string());
    }
    let comment = comment.join("\n").trim().to_string();
    Some(Rating {
        score,
        comment: comment.chars().take(MAX_COMMENT).collect(),
    })
}

/// What may stand between the score and the comment.
const SEPARATORS: &[char] = &[
    ' ', '\t', '-', '–', '—', ':', ',', ';', '.', '!', ')', '(', '|', '/', '=',
];

/// Where a reply's own text ends: a quote, a reply header, a signature.
fn is_history(line: &str) -> bool {
    let lower = line.to_lowercase();
    line.starts_with('>')
        || line == "--"
        || line.starts_with("-- ")
        || line.starts_with("-----")
        || line.starts_with("________")
        || lower.starts_with("from:")
        || lower.starts_with("von:")
        || lower.starts_with("de :")
        || lower.starts_with("de:")
        || (lower.ends_with(':')
            && [
                "wrote",
                "schrieb",
                "a écrit",
                "escribió",
                "scritto",
                "schreef",
            ]
            .iter()
            .any(|w| lower.contains(w)))
}

/// "Rating: 4" → "4": one leading word ending in a colon.
fn strip_label(line: &str) -> &str {
    match line.split_once(':') {
        Some((label, rest))
            if !label.trim().is_empty()
                && label.trim().chars().all(char::is_alphabetic)
                && label.trim().chars().count() <= 12 =>
        {
            rest.trim_start()
        }
        _ => line,
    }
}

/// The decimal digit a character stands for, in any common script.
fn digit(c: char) -> Option<u32> {
    // The zero of each block of ten decimal digits (Unicode Nd).
    const ZEROS: &[u32] = &[
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0xFF10,
        0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
    ];
    let u = c as u32;
    ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&u))
        .map(|z| u - z)
        .or(match u {
            // ① … ⑨, ❶ … ❾, ➀ … ➈, ➊ … ➒
            0x2460..=0x2468 => Some(u - 0x2460 + 1),
            0x2776..=0x277E => Some(u - 0x2776 + 1),
            0x2780..=0x2788 => Some(u - 0x2780 + 1),
            0x278A..=0x2792 => Some(u - 0x278A + 1),
            _ => None,
        })
}

/// Words that name the scale after a score ("5 stars").
const UNITS: &[&str] = &[
    "stars",
    "star",
    "sterne",
    "stern",
    "étoiles",
    "étoile",
    "estrellas",
    "estrella",
    "stelle",
    "stella",
    "sterren",
    "ster",
    "points",
    "point",
    "punkte",
    "punkt",
    "pts",
];

/// The score at the start of `s` and what follows it.
fn score_at(s: &str) -> Option<(u8, &str)> {
    // A row of stars: "★★★★☆" is 4 (emoji stars may carry U+FE0F).
    if s.starts_with(['★', '⭐']) {
        let mut full = 0;
        let mut end = s.len();
        for (i, c) in s.char_indices() {
            match c {
                '★' | '⭐' => full += 1,
                '☆' | '\u{fe0f}' => {}
                _ => {
                    end = i;
                    break;
                }
            }
        }
        return (1..=5).contains(&full).then_some((full as u8, &s[end..]));
    }
    let c = s.chars().next()?;
    let n = digit(c)?;
    let mut rest = &s[c.len_utf8()..];
    // A keycap: "4️⃣".
    rest = rest
        .trim_start_matches('\u{fe0f}')
        .trim_start_matches('\u{20e3}');
    // "45", "4.5", "4,5" are not a score of 1-5.
    let mut next = rest.chars();
    match (next.next(), next.next()) {
        (Some(d), _) if digit(d).is_some() => return None,
        (Some('.' | ','), Some(d)) if digit(d).is_some() => return None,
        // "4stars" is fine, "4th" or "3pm" is not.
        (Some(c), _) if c.is_alphanumeric() && !UNITS.iter().any(|u| starts_with_word(rest, u)) => {
            return None;
        }
        _ => {}
    }
    if !(1..=5).contains(&n) {
        return None;
    }
    Some((n as u8, strip_scale(rest)?))
}

/// Drops "/5", "of 5", "out of 5", "von 5", "sur 5" and unit words after a
/// score; `None` when the scale is not 5 ("4/10").
fn strip_scale(rest: &str) -> Option<&str> {
    let t = rest.trim_start();
    for lead in ["/", "out of", "of", "von", "sur", "de", "su", "van"] {
        if let Some(after) = strip_word(t, lead) {
            let after = after.trim_start();
            let digits: Vec<(usize, char)> = after
                .char_indices()
                .take_while(|(_, c)| digit(*c).is_some())
                .collect();
            if let [(_, c)] = digits.as_slice() {
                if digit(*c) != Some(5) {
                    return None;
                }
                return Some(strip_unit(&after[c.len_utf8()..]));
            }
            if !digits.is_empty() {
                return None;
            }
            if lead == "/" {
                return None;
            }
        }
    }
    Some(strip_unit(rest))
}

fn strip_unit(rest: &str) -> &str {
    let t = rest.trim_start();
    UNITS.iter().find_map(|u| strip_word(t, u)).unwrap_or(rest)
}

/// `s` without the leading word `w` (case-insensitive, not a prefix of a
/// longer word; "/" needs no word end).
fn strip_word<'a>(s: &'a str, w: &str) -> Option<&'a str> {
    if !starts_with_word(s, w) {
        return None;
    }
    Some(&s[w.len()..])
}

fn starts_with_word(s: &str, w: &str) -> bool {
    let Some(head) = s.get(..w.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(w) && head.to_lowercase() != w {
        return false;
    }
    w == "/" || !s[w.len()..].starts_with(char::is_alphanumeric)
}

/// Whether a status is one the desk still works in.
fn working(s: Status) -> bool {
    matches!(s, Status::New | Status::Open | Status::Pending)
}

/// Whether the customer of `t`, which moved from `before` to its status
/// now, is asked to rate it: the question is on, the ticket left the
/// working states for resolved or closed (so once per resolution: closing
/// a resolved ticket asks nothing), it is an incident, a request or a
/// complaint (problems and changes are the desk's own records), and its
/// customer is a person (`person`: a mail of theirs was not a robot's)
/// who is neither the desk, staff nor a supplier's contact.
pub fn asks(settings: &Settings, t: &TicketState, before: Status, person: bool) -> bool {
    let customer = &t.customer.email;
    let insider = customer.is_empty()
        || settings.is_desk_address(customer)
        || settings.staff.by_email(customer).is_some()
        || settings.supplier_of(customer).is_some();
    should_ask(
        &settings.relationship,
        t.kind,
        (before, t.status),
        person && !insider,
    )
}

/// [`asks`] from its facts: `moved` is the status before and after, and
/// `person` whether the customer is a person outside the desk.
pub fn should_ask(p: &Policy, kind: Kind, moved: (Status, Status), person: bool) -> bool {
    p.enabled
        && working(moved.0)
        && !working(moved.1)
        && matches!(kind, Kind::Incident | Kind::Request | Kind::Complaint)
        && person
}

fn fill(template: &str, t: &Asking<'_>, name: &str, desk: &str) -> String {
    template
        .replace("{name}", name)
        .replace("{number}", &t.number.to_string())
        .replace("{subject}", t.subject.trim())
        .replace("{desk}", desk)
}

/// The question to the customer of a resolved ticket, threaded below the
/// conversation (so the answer threads back to it by its Message-ID).
pub fn request(settings: &Settings, t: &TicketState) -> Draft {
    question(
        &settings.desk,
        &settings.relationship,
        &Asking {
            number: t.number,
            subject: &t.subject,
            customer: &t.customer,
            root: t.root_message_id.as_deref(),
            last: t.last_public_message_id.as_deref(),
        },
    )
}

/// The ticket facts the question is written from.
pub struct Asking<'a> {
    pub number: TicketNumber,
    pub subject: &'a str,
    pub customer: &'a Address,
    /// The Message-ID the conversation started with.
    pub root: Option<&'a str>,
    /// The newest Message-ID the customer has seen or sent.
    pub last: Option<&'a str>,
}

/// [`request`] from its facts (the plugin dispatcher has no `Settings`).
pub fn question(desk: &Desk, p: &Policy, t: &Asking<'_>) -> Draft {
    let name = if t.customer.name.trim().is_empty() {
        t.customer.email.as_str()
    } else {
        t.customer.name.trim()
    };
    let subject = fill(
        if p.subject.is_empty() {
            DEFAULT_SUBJECT
        } else {
            &p.subject
        },
        t,
        name,
        &desk.name,
    );
    let body = fill(
        if p.text.is_empty() {
            DEFAULT_TEXT
        } else {
            &p.text
        },
        t,
        name,
        &desk.name,
    );
    let mut references: Vec<String> = Vec::new();
    for id in [t.root, t.last].into_iter().flatten() {
        if !references.iter().any(|r| r == id) {
            references.push(id.to_string());
        }
    }
    Draft {
        kind: DraftKind::SatisfactionRequest,
        to: vec![t.customer.clone()],
        from_name: desk.name.clone(),
        subject: tagged_subject(&super::mail::one_line(&subject), &desk.tag, t.number),
        body,
        in_reply_to: t.last.map(str::to_string),
        references,
        with_attachments: false,
    }
}

/// What the request a rating answers recorded at the resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub assignee: Option<String>,
    pub service: Option<String>,
}

/// What a rating does: it is stored on the ticket as the customer's
/// message, changes no field (no reopen, no SLA move), and a score of
/// [`LOW_SCORE`] or less tells the service's manager.
pub fn rated(
    settings: &Settings,
    t: &TicketState,
    input: &MailIn<'_>,
    rating: &Rating,
    asked: &Asked,
) -> Effects {
    let mut fx = Effects {
        visibility: Visibility::Public,
        shown_text: input.mail.reply_text().to_string(),
        ..Effects::default()
    };
    if rating.score > LOW_SCORE {
        return fx;
    }
    let to = settings
        .relationship
        .low_rating_recipients(asked.service.as_deref());
    if to.is_empty() {
        return fx;
    }
    let body = format!(
        "The customer rated {number} {score} of 5.\n\n\
         Ticket:   {number} ({kind})\n\
         Subject:  {subject}\n\
         Status:   {status}\n\
         Service:  {service}\n\
         Resolved by: {assignee}\n\
         Customer: {customer}\n\n\
         Their words:\n{comment}\n\n\
         -- \n\
         The rating is kept on the ticket; it did not reopen it. This notice goes to \
         the service's manager for every rating of {low} or less.\n",
        number = t.number,
        score = rating.score,
        kind = t.kind.as_str(),
        subject = t.subject,
        status = t.status.as_str(),
        service = asked.service.as_deref().unwrap_or("-"),
        assignee = asked.assignee.as_deref().unwrap_or("nobody"),
        customer = input.sender.display(),
        comment = if rating.comment.is_empty() {
            "(none)"
        } else {
            &rating.comment
        },
        low = LOW_SCORE,
    );
    fx.drafts.push(Draft {
        kind: DraftKind::LowRating,
        to,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!("Low rating {}/5: {}", rating.score, t.subject.trim()),
            &settings.desk.tag,
            t.number,
        ),
        body,
        in_reply_to: None,
        references: vec![format!("{}.staff@{}", t.number, settings.desk.id_domain())],
        with_attachments: false,
    });
    fx
}

/// The notice to `[complaints] notify` a mail causes, if any: a new
/// complaint from a customer, a customer's reply on a complaint, or a
/// staff member turning a ticket into one (`/kind complaint`). Whoever the
/// mail's usual staff notification already reaches is left out.
pub fn complaint_notice(
    settings: &Settings,
    t: &TicketState,
    input: &MailIn<'_>,
    fx: &Effects,
) -> Option<Draft> {
    if t.kind != Kind::Complaint || settings.relationship.complaints.is_empty() {
        return None;
    }
    let turned = fx
        .changes
        .iter()
        .any(|c| c.field == "kind" && c.to == Kind::Complaint.as_str());
    let head = match input.author {
        Author::Customer if input.new_ticket => "New complaint.".to_string(),
        Author::Customer => "The customer replied on a complaint.".to_string(),
        Author::Staff(m) if turned => format!("{} made this ticket a complaint.", m.name),
        _ => return None,
    };
    let told: Vec<&str> = fx
        .drafts
        .iter()
        .filter(|d| d.kind == DraftKind::Notification)
        .flat_map(|d| d.to.iter().map(|a| a.email.as_str()))
        .collect();
    let to: Vec<Address> = settings
        .relationship
        .complaints
        .iter()
        .filter(|a| !told.contains(&a.email.as_str()))
        .cloned()
        .collect();
    if to.is_empty() {
        return None;
    }
    let text = input.mail.reply_text().trim();
    let body = format!(
        "{head}\n\n\
         Ticket:   {number} (complaint)\n\
         Subject:  {subject}\n\
         Status:   {status}\n\
         Assignee: {assignee}\n\
         Service:  {service}\n\
         Customer: {customer}\n\
         From:     {from}\n\n\
         {text}\n\n\
         -- \n\
         You get this as a member of the complaints group ([complaints] notify).\n",
        number = t.number,
        subject = t.subject,
        status = t.status.as_str(),
        assignee = t
            .assignee
            .clone()
            .or_else(|| t.team.as_ref().map(|g| format!("group {g}")))
            .unwrap_or_else(|| "nobody".into()),
        service = t.service.as_deref().unwrap_or("-"),
        customer = t.customer.display(),
        from = input.sender.display(),
        text = if text.is_empty() { "(no text)" } else { text },
    );
    Some(Draft {
        kind: DraftKind::ComplaintNotice,
        to,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(
            &format!("Complaint: {}", t.subject.trim()),
            &settings.desk.tag,
            t.number,
        ),
        body,
        in_reply_to: None,
        references: vec![format!("{}.staff@{}", t.number, settings.desk.id_domain())],
        with_attachments: false,
    })
}

#[cfg(test)]
mod tests;
