//! Problem management: the record of a problem ticket (root cause,
//! workaround, known error), how a new incident is matched to a known error,
//! and the mails a solved problem sends on its incidents' behalf.
//!
//! A problem is a ticket of kind `problem` (`PRB-…`); its incidents are the
//! tickets linked to it, in either direction. Known-error keywords are
//! groups separated by commas, alternatives within a group by `|`: a mail
//! matches when every group has an alternative in its subject or text, as
//! whole words (`vpn|anyconnect, disconnect|drops`). All groups, so that one
//! common word never pulls in unrelated mail.

use std::fmt;
use std::str::FromStr;

use super::ack::reply_subject;
use super::conversation::{Draft, DraftKind, Settings, TicketState};
use super::staff::StaffMember;
use super::threading::tagged_subject;
use super::ticket::{TicketId, TicketNumber};

/// What the desk knows about a problem beyond its ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub known_error: bool,
    /// The keyword spec as staff wrote it (empty unless a known error).
    pub keywords: String,
}

/// What staff commands change on a problem's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    /// `Some(Some(spec))`: a known error with these keywords; `Some(None)`:
    /// no longer one.
    pub known_error: Option<Option<Keywords>>,
}

impl Edit {
    pub fn is_empty(&self) -> bool {
        *self == Edit::default()
    }

    pub fn merge(&mut self, later: Edit) {
        if later.root_cause.is_some() {
            self.root_cause = later.root_cause;
        }
        if later.workaround.is_some() {
            self.workaround = later.workaround;
        }
        if later.known_error.is_some() {
            self.known_error = later.known_error;
        }
    }

    /// `record` after this edit. A known error needs a workaround, from this
    /// edit or recorded before.
    pub fn apply_to(&self, record: &Record) -> Result<Record, String> {
        let mut next = record.clone();
        if let Some(r) = &self.root_cause {
            next.root_cause = Some(r.clone());
        }
        if let Some(w) = &self.workaround {
            next.workaround = Some(w.clone());
        }
        match &self.known_error {
            Some(Some(k)) => {
                if next
                    .workaround
                    .as_deref()
                    .is_none_or(|w| w.trim().is_empty())
                {
                    return Err(
                        "/knownerror: record the workaround first (/workaround TEXT): \
                                a known error is a problem with a workaround"
                            .into(),
                    );
                }
                next.known_error = true;
                next.keywords = k.to_string();
            }
            Some(None) => {
                next.known_error = false;
                next.keywords.clear();
            }
            None => {}
        }
        Ok(next)
    }
}

/// Known-error keywords: every group must match, any alternative of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keywords(Vec<Vec<String>>);

/// Groups per spec and words per phrase at most: a spec is for matching a
/// handful of symptoms, not a search engine.
const MAX_GROUPS: usize = 8;
const MAX_PHRASE_WORDS: usize = 6;

impl FromStr for Keywords {
    type Err = String;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut groups = Vec::new();
        for group in spec.split(',') {
            let alternatives: Vec<String> = group
                .split('|')
                .map(normalize)
                .filter(|p| !p.is_empty())
                .collect();
            if alternatives.is_empty() {
                if group.trim().is_empty() && spec.contains(',') {
                    return Err(format!("/knownerror {spec}: an empty keyword group"));
                }
                continue;
            }
            if let Some(long) = alternatives
                .iter()
                .find(|p| p.split(' ').count() > MAX_PHRASE_WORDS)
            {
                return Err(format!(
                    "/knownerror: {long:?} is longer than {MAX_PHRASE_WORDS} words"
                ));
            }
            if let Some(short) = alternatives.iter().find(|p| p.chars().count() < 2) {
                return Err(format!(
                    "/knownerror: {short:?} is too short to match on (2 characters at least)"
                ));
            }
            groups.push(alternatives);
        }
        if groups.is_empty() {
            return Err(
                "/knownerror needs keywords, e.g. /knownerror vpn|anyconnect, drops \
                        (every comma-separated group must match; | separates alternatives), \
                        or /knownerror off"
                    .into(),
            );
        }
        if groups.len() > MAX_GROUPS {
            return Err(format!(
                "/knownerror: {} keyword groups; {MAX_GROUPS} at most",
                groups.len()
            ));
        }
        Ok(Keywords(groups))
    }
}

impl fmt::Display for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.0.iter().map(|g| g.join("|")).collect();
        f.write_str(&groups.join(", "))
    }
}

impl Keywords {
    /// How many words the matching phrases have: more is more specific.
    fn score(&self, haystack: &str) -> Option<usize> {
        let mut score = 0;
        for group in &self.0 {
            let best = group
                .iter()
                .filter(|p| haystack.contains(&format!(" {p} ")))
                .map(|p| p.split(' ').count())
                .max()?;
            score += best;
        }
        Some(score)
    }
}

/// Lower case, every run of characters that are not letters or digits one
/// space: words compare whole, whatever the punctuation.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// A problem that is a known error, as new incidents are matched against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownError {
    pub id: TicketId,
    pub number: TicketNumber,
    pub subject: String,
    pub workaround: String,
    pub keywords: Keywords,
}

/// The text of a mail a known error is matched against is cut here: the
/// symptoms are at the top, and a pasted log must not cost the batch.
const MATCH_TEXT_LIMIT: usize = 16 * 1024;

/// The known error whose keywords all match `subject` and `text`; of several,
/// the most specific (more matched words), then the newest.
pub fn best_match<'a>(
    errors: &'a [KnownError],
    subject: &str,
    text: &str,
) -> Option<&'a KnownError> {
    if errors.is_empty() {
        return None;
    }
    let mut cut = text.len().min(MATCH_TEXT_LIMIT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let haystack = format!(" {} {} ", normalize(subject), normalize(&text[..cut]));
    errors
        .iter()
        .filter_map(|e| e.keywords.score(&haystack).map(|s| (s, e.id, e)))
        .max_by_key(|(s, id, _)| (*s, *id))
        .map(|(_, _, e)| e)
}

/// What a solved problem does to its open incidents (`[problems] on_resolve`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnResolve {
    /// Resolve them: the customer's reply within the reopen window opens
    /// the incident again.
    #[default]
    Resolve,
    /// Leave them as they are and tell their assignees.
    Notify,
}

impl FromStr for OnResolve {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resolve" => Ok(OnResolve::Resolve),
            "notify" => Ok(OnResolve::Notify),
            other => Err(format!("unknown value {other:?} (resolve, notify)")),
        }
    }
}

/// The mail to an incident's customers when its problem is solved.
pub fn resolution_notice(
    settings: &Settings,
    problem: &TicketState,
    record: &Record,
    incident: &TicketState,
    text: &str,
    resolved: bool,
) -> Draft {
    let desk = &settings.desk;
    let mut body = format!(
        "Hello,\n\n\
         Your ticket {number} (\"{subject}\") was caused by a problem the desk has now \
         solved.\n",
        number = incident.number,
        subject = incident.subject,
    );
    if !text.trim().is_empty() {
        body.push_str(&format!("\n{}\n", text.trim()));
    } else if let Some(cause) = record
        .root_cause
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        body.push_str(&format!("\nThe cause: {}\n", cause.trim()));
    }
    body.push_str(if resolved {
        "\nYour ticket is now resolved. If the trouble is still there, reply to this mail \
         and the ticket opens again.\n"
    } else {
        "\nThe desk will check your ticket and tell you when it is done. If the trouble is \
         still there, reply to this mail.\n"
    });
    body.push_str(&format!(
        "\n(problem {})\n\n-- \n{}\n",
        problem.number, desk.name
    ));
    let mut references: Vec<String> = Vec::new();
    for id in [&incident.root_message_id, &incident.last_public_message_id]
        .into_iter()
        .flatten()
    {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    Draft {
        kind: DraftKind::ProblemResolved,
        to: incident.audience(),
        from_name: desk.name.clone(),
        subject: tagged_subject(
            &reply_subject(&incident.subject),
            &desk.tag,
            incident.number,
        ),
        body,
        in_reply_to: incident.last_public_message_id.clone(),
        references,
        with_attachments: false,
    }
}

/// The mail to an incident's watchers when its problem is solved and the
/// incidents are left to them (`on_resolve = "notify"`).
pub fn incident_notice(
    settings: &Settings,
    problem: &TicketState,
    incident: &TicketState,
    text: &str,
) -> Option<Draft> {
    let to: Vec<_> = settings
        .staff
        .watchers(incident.assignee.as_deref(), incident.team.as_deref())
        .into_iter()
        .map(StaffMember::address)
        .collect();
    if to.is_empty() {
        return None;
    }
    Some(Draft {
        kind: DraftKind::Notification,
        to,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(&incident.subject, &settings.desk.tag, incident.number),
        body: format!(
            "Problem {problem} (\"{title}\") is solved; its customers were told.\n\n\
             {text}\n\n\
             Ticket {number} is linked to it and still {status}: check it and resolve it \
             (/resolve) or answer the customer.\n",
            problem = problem.number,
            title = problem.subject,
            text = if text.trim().is_empty() {
                "(no text)"
            } else {
                text.trim()
            },
            number = incident.number,
            status = incident.status.as_str(),
        ),
        in_reply_to: None,
        references: vec![format!(
            "{}.staff@{}",
            incident.number,
            settings.desk.id_domain()
        )],
        with_attachments: false,
    })
}

/// The mail to the staff member who opened a problem from an incident: it
/// carries their token for the problem, so their reply to it commands it.
pub fn opened_notice(
    settings: &Settings,
    problem: &TicketState,
    incident: &TicketState,
    member: &StaffMember,
) -> Draft {
    Draft {
        kind: DraftKind::Notification,
        to: vec![member.address()],
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(&problem.subject, &settings.desk.tag, problem.number),
        body: format!(
            "Problem {problem} (\"{title}\") was opened from {incident} by {name} and is \
             assigned to them. {incident} is linked to it.\n\n\
             Reply to this mail to work on the problem. Commands in the first lines:\n\
             \x20 /rootcause TEXT          the cause, once found\n\
             \x20 /workaround TEXT         what helps until it is fixed\n\
             \x20 /knownerror KEYWORDS     a known error: new incidents whose subject or text\n\
             \x20                          has every comma-separated group (| separates\n\
             \x20                          alternatives) get the workaround and the link\n\
             \x20 /resolve                 solved: the text of your reply goes to the\n\
             \x20                          customers of every open linked incident\n\
             Link more incidents from them with /link {problem}.\n",
            problem = problem.number,
            title = problem.subject,
            incident = incident.number,
            name = member.name,
        ),
        in_reply_to: None,
        references: vec![format!(
            "{}.staff@{}",
            problem.number,
            settings.desk.id_domain()
        )],
        with_attachments: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ke(id: i64, spec: &str) -> KnownError {
        KnownError {
            id: TicketId(id),
            number: format!("PRB-{id}").parse().expect("number"),
            subject: format!("problem {id}"),
            workaround: "restart".into(),
            keywords: spec.parse().expect("spec"),
        }
    }

    #[test]
    fn keywords_parse_groups_and_alternatives() {
        let k: Keywords = " VPN | AnyConnect ,  drops|disconnects every hour "
            .parse()
            .expect("k");
        assert_eq!(
            k.to_string(),
            "vpn|anyconnect, drops|disconnects every hour"
        );
        for bad in [
            "",
            " , ",
            "vpn,,drops",
            "a",
            "x, one two three four five six seven",
        ] {
            assert!(bad.parse::<Keywords>().is_err(), "{bad:?}");
        }
        let many = (0..9)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(many.parse::<Keywords>().is_err());
    }

    #[test]
    fn every_group_must_match_as_whole_words() {
        let errors = vec![ke(12, "vpn|anyconnect, drops|disconnect")];
        let hit = |s: &str, t: &str| best_match(&errors, s, t).map(|e| e.id.0);
        assert_eq!(hit("VPN keeps dropping", "it drops every hour"), Some(12));
        assert_eq!(hit("AnyConnect: disconnect!", ""), Some(12));
        assert_eq!(hit("vpn slow", "nothing else"), None, "one group only");
        assert_eq!(hit("vpnclient drops", ""), None, "vpn is not a word here");
        assert_eq!(
            hit("", "Die VPN-Verbindung drops"),
            Some(12),
            "punctuation splits words"
        );
    }

    #[test]
    fn matching_is_case_and_script_aware() {
        let errors = vec![ke(3, "принтер, ошибка"), ke(4, "drucker, papierstau")];
        assert_eq!(
            best_match(&errors, "Принтер", "ОШИБКА 42").map(|e| e.id.0),
            Some(3)
        );
        assert_eq!(
            best_match(&errors, "Re: Drucker im 2. Stock", "Papierstau seit heute").map(|e| e.id.0),
            Some(4)
        );
    }

    #[test]
    fn the_most_specific_then_the_newest_wins() {
        let errors = vec![
            ke(5, "outlook, crash"),
            ke(7, "outlook, crash on start"),
            ke(9, "outlook, crash"),
        ];
        let hit = |t: &str| best_match(&errors, "", t).map(|e| e.id.0);
        assert_eq!(hit("Outlook: crash on start since the update"), Some(7));
        assert_eq!(hit("outlook has a crash when printing"), Some(9));
        assert_eq!(hit("word crashes"), None);
    }

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary() {
        let errors = vec![ke(1, "disk, full")];
        let text = format!("{}disk full", "é".repeat(MATCH_TEXT_LIMIT));
        assert_eq!(best_match(&errors, "", &text), None, "beyond the limit");
        assert!(best_match(&errors, "disk full", &text).is_some());
    }

    #[test]
    fn a_known_error_needs_a_workaround() {
        let k: Keywords = "vpn".parse().expect("k");
        let edit = Edit {
            known_error: Some(Some(k.clone())),
            ..Edit::default()
        };
        assert!(edit.apply_to(&Record::default()).is_err());
        let with = Edit {
            workaround: Some("use the web client".into()),
            known_error: Some(Some(k)),
            ..Edit::default()
        };
        let r = with.apply_to(&Record::default()).expect("record");
        assert!(r.known_error);
        assert_eq!(r.keywords, "vpn");
        let off = Edit {
            known_error: Some(None),
            ..Edit::default()
        }
        .apply_to(&r)
        .expect("off");
        assert!(!off.known_error && off.keywords.is_empty());
        assert_eq!(off.workaround.as_deref(), Some("use the web client"));
    }

    #[test]
    fn later_edits_win() {
        let mut a = Edit {
            root_cause: Some("a".into()),
            workaround: Some("w".into()),
            ..Edit::default()
        };
        a.merge(Edit {
            root_cause: Some("b".into()),
            ..Edit::default()
        });
        assert_eq!(a.root_cause.as_deref(), Some("b"));
        assert_eq!(a.workaround.as_deref(), Some("w"));
    }
}
