//! Finds the ticket a mail belongs to (design "Threading rules"):
//!
//! 1. `In-Reply-To` / `References` name a Message-ID the desk stored or sent;
//! 2. a signed reply token (`domain::token`) in the reply address or a
//!    referenced Message-ID, for clients that drop In-Reply-To;
//! 3. a subject tag `[TAG INC-000042]`, accepted only from a participant of
//!    that ticket, otherwise a new ticket linked to the tagged one, so a
//!    stranger cannot write into somebody else's ticket;
//! 4. otherwise a new ticket.

use super::ticket::{TicketId, TicketNumber};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TicketRef {
    pub id: TicketId,
    pub number: TicketNumber,
}

/// What the desk already knows, as the threading rules ask for it.
pub trait Known {
    fn ticket_by_message_id(&self, message_id: &str) -> Option<TicketRef>;
    fn ticket_by_number(&self, number: TicketNumber) -> Option<TicketRef>;
    fn is_participant(&self, ticket_id: TicketId, email: &str) -> bool;
}

/// The headers threading reads.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    /// The mail's own Message-ID: an earlier mail may have named it.
    pub message_id: Option<&'a str>,
    pub in_reply_to: &'a [String],
    pub references: &'a [String],
    pub subject: &'a str,
    /// The sender's address, lower-cased.
    pub sender: Option<&'a str>,
    /// Tickets named by verified reply tokens.
    pub tokens: &'a [TicketNumber],
    /// The sender is configured staff: their subject tags thread like a
    /// participant's (whether they may change the ticket is the trust rules' call).
    pub sender_is_staff: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Rule 1: a referenced Message-ID is known, or the mail's own
    /// Message-ID was named by a mail of a ticket.
    ByReference(TicketRef),
    /// Rule 2: a verified reply token.
    ByToken(TicketRef),
    /// Rule 3: the subject tag, from a participant.
    BySubjectTag(TicketRef),
    /// Rule 4; `linked_to` is set when a stranger used another ticket's tag.
    New { linked_to: Option<TicketRef> },
}

impl Decision {
    pub fn ticket(&self) -> Option<TicketRef> {
        match self {
            Decision::ByReference(t) | Decision::ByToken(t) | Decision::BySubjectTag(t) => Some(*t),
            Decision::New { .. } => None,
        }
    }

    pub fn rule(&self) -> &'static str {
        match self {
            Decision::ByReference(_) => "reference",
            Decision::ByToken(_) => "token",
            Decision::BySubjectTag(_) => "subject_tag",
            Decision::New { linked_to: None } => "new",
            Decision::New { linked_to: Some(_) } => "new_linked",
        }
    }
}

pub fn thread(keys: &Keys<'_>, desk_tag: &str, known: &impl Known) -> Decision {
    // The direct parent first, then References from the newest ancestor
    // back, then the mail's own ID (an earlier reply named it).
    let candidates = keys
        .in_reply_to
        .iter()
        .chain(keys.references.iter().rev())
        .map(String::as_str)
        .chain(keys.message_id);
    for id in candidates.filter(|id| is_message_id(id)) {
        if let Some(t) = known.ticket_by_message_id(id) {
            return Decision::ByReference(t);
        }
    }
    for number in keys.tokens {
        if let Some(t) = known.ticket_by_number(*number) {
            return Decision::ByToken(t);
        }
    }
    if let Some(number) = subject_tag(keys.subject, desk_tag)
        && let Some(t) = known.ticket_by_number(number)
    {
        let participant =
            keys.sender_is_staff || keys.sender.is_some_and(|s| known.is_participant(t.id, s));
        return if participant {
            Decision::BySubjectTag(t)
        } else {
            Decision::New { linked_to: Some(t) }
        };
    }
    Decision::New { linked_to: None }
}

/// Whether a reference names a message: `local@domain`, as RFC 5322 has
/// it. Some programs write other things there (git send-email's
/// `In-Reply-To: yes`); those name nothing and join nothing.
pub fn is_message_id(id: &str) -> bool {
    id.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

/// The Message-IDs a mail refers to, each once, that may thread.
pub fn referenced<'a>(in_reply_to: &'a [String], references: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for id in in_reply_to.iter().chain(references) {
        if is_message_id(id) && !out.contains(&id.as_str()) {
            out.push(id);
        }
    }
    out
}

/// Finds `[TAG NUMBER]` in a subject (tag compared case-insensitively).
pub fn subject_tag(subject: &str, desk_tag: &str) -> Option<TicketNumber> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inside = after[..close].trim();
        if let Some((tag, number)) = inside.rsplit_once(char::is_whitespace)
            && tag.trim().eq_ignore_ascii_case(desk_tag)
            && let Ok(n) = number.parse::<TicketNumber>()
        {
            return Some(n);
        }
        rest = &after[close + 1..];
    }
    None
}

/// The subject with the desk's tag in front, unless it already carries it.
pub fn tagged_subject(subject: &str, desk_tag: &str, number: TicketNumber) -> String {
    if subject_tag(subject, desk_tag) == Some(number) {
        subject.to_string()
    } else if subject.trim().is_empty() {
        format!("[{desk_tag} {number}]")
    } else {
        format!("[{desk_tag} {number}] {}", subject.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::Kind;
    use std::collections::{HashMap, HashSet};

    #[derive(Default)]
    struct Fake {
        by_mid: HashMap<String, TicketRef>,
        tickets: Vec<TicketRef>,
        participants: HashSet<(TicketId, String)>,
    }

    impl Known for Fake {
        fn ticket_by_message_id(&self, m: &str) -> Option<TicketRef> {
            self.by_mid.get(m).copied()
        }
        fn ticket_by_number(&self, n: TicketNumber) -> Option<TicketRef> {
            self.tickets.iter().find(|t| t.number == n).copied()
        }
        fn is_participant(&self, id: TicketId, email: &str) -> bool {
            self.participants.contains(&(id, email.to_string()))
        }
    }

    fn t(seq: i64) -> TicketRef {
        TicketRef {
            id: TicketId(seq),
            number: TicketNumber {
                kind: Kind::Incident,
                seq,
            },
        }
    }

    fn desk() -> Fake {
        let mut f = Fake::default();
        f.by_mid.insert("a@x".into(), t(1));
        f.by_mid.insert("b@x".into(), t(2));
        f.tickets = vec![t(1), t(2), t(3)];
        f.participants.insert((TicketId(3), "cust@x.test".into()));
        f
    }

    fn keys<'a>(
        irt: &'a [String],
        refs: &'a [String],
        subject: &'a str,
        from: &'a str,
    ) -> Keys<'a> {
        Keys {
            message_id: None,
            in_reply_to: irt,
            references: refs,
            subject,
            sender: Some(from),
            tokens: &[],
            sender_is_staff: false,
        }
    }

    #[test]
    fn a_token_threads_when_references_are_gone() {
        let tokens = [t(3).number];
        let mut k = keys(&[], &[], "[ACME INC-000001] other tag", "evil@x.test");
        k.tokens = &tokens;
        assert_eq!(thread(&k, "ACME", &desk()), Decision::ByToken(t(3)));
        let irt = vec!["a@x".to_string()];
        k.in_reply_to = &irt;
        assert_eq!(thread(&k, "ACME", &desk()), Decision::ByReference(t(1)));
    }

    #[test]
    fn staff_tags_thread_like_a_participants() {
        let mut k = keys(&[], &[], "[ACME INC-000003] printer", "ada@desk.test");
        k.sender_is_staff = true;
        assert_eq!(thread(&k, "ACME", &desk()), Decision::BySubjectTag(t(3)));
    }

    #[test]
    fn in_reply_to_wins_over_references_and_tag() {
        let irt = vec!["b@x".to_string()];
        let refs = vec!["a@x".to_string()];
        let d = thread(
            &keys(&irt, &refs, "[ACME INC-000003] hi", "cust@x.test"),
            "ACME",
            &desk(),
        );
        assert_eq!(d, Decision::ByReference(t(2)));
    }

    #[test]
    fn a_mail_an_earlier_reply_named_joins_its_ticket() {
        let mut k = keys(&[], &[], "The printer", "cust@x.test");
        k.message_id = Some("a@x");
        assert_eq!(thread(&k, "ACME", &desk()), Decision::ByReference(t(1)));
        // Its own parent still comes first.
        let irt = vec!["b@x".to_string()];
        k.in_reply_to = &irt;
        assert_eq!(thread(&k, "ACME", &desk()), Decision::ByReference(t(2)));
    }

    #[test]
    fn references_without_an_at_join_nothing() {
        let mut f = desk();
        f.by_mid.insert("yes".into(), t(3));
        f.by_mid.insert("@x".into(), t(3));
        let irt = vec!["yes".to_string()];
        let refs = vec!["@x".to_string(), "".to_string()];
        let mut k = keys(&irt, &refs, "[PATCH] fix", "dev@x.test");
        k.message_id = Some("yes");
        assert_eq!(thread(&k, "ACME", &f), Decision::New { linked_to: None });
        assert!(!is_message_id("yes") && !is_message_id("a@") && is_message_id("a@x"));
        assert_eq!(
            referenced(
                &["p@x".to_string(), "yes".to_string()],
                &["r@x".to_string(), "p@x".to_string()]
            ),
            vec!["p@x", "r@x"]
        );
    }

    #[test]
    fn newest_reference_first() {
        let refs = vec![
            "a@x".to_string(),
            "unknown@x".to_string(),
            "b@x".to_string(),
        ];
        let d = thread(&keys(&[], &refs, "", "z@x"), "ACME", &desk());
        assert_eq!(d, Decision::ByReference(t(2)));
    }

    #[test]
    fn tag_from_participant_threads() {
        let d = thread(
            &keys(&[], &[], "Re: [acme INC-3] printer", "cust@x.test"),
            "ACME",
            &desk(),
        );
        assert_eq!(d, Decision::BySubjectTag(t(3)));
    }

    #[test]
    fn tag_from_stranger_opens_linked_ticket() {
        let d = thread(
            &keys(&[], &[], "[ACME INC-000003] printer", "evil@x.test"),
            "ACME",
            &desk(),
        );
        assert_eq!(
            d,
            Decision::New {
                linked_to: Some(t(3))
            }
        );
        assert_eq!(d.rule(), "new_linked");
    }

    #[test]
    fn unknown_tag_or_other_desk_is_new() {
        for s in [
            "[ACME INC-000099] x",
            "[OTHER INC-000003] x",
            "[ACME] x",
            "INC-000003",
            "[ACME INC-000003",
        ] {
            let d = thread(&keys(&[], &[], s, "cust@x.test"), "ACME", &desk());
            assert_eq!(d, Decision::New { linked_to: None }, "{s}");
        }
    }

    #[test]
    fn tag_found_after_other_brackets() {
        assert_eq!(
            subject_tag("[EXT] Re: [ACME CHG-12] window", "ACME"),
            Some(TicketNumber {
                kind: Kind::Change,
                seq: 12
            })
        );
        assert_eq!(
            subject_tag("[ACME Desk INC-5]", "ACME Desk").map(|n| n.seq),
            Some(5)
        );
    }

    #[test]
    fn subject_is_tagged_once() {
        let n = t(42).number;
        assert_eq!(
            tagged_subject("Printer", "ACME", n),
            "[ACME INC-000042] Printer"
        );
        assert_eq!(
            tagged_subject("Re: [ACME INC-000042] Printer", "ACME", n),
            "Re: [ACME INC-000042] Printer"
        );
        assert_eq!(tagged_subject("  ", "ACME", n), "[ACME INC-000042]");
    }
}
