//! The intake decisions for one inbound mail besides threading and the
//! conversation: which ticket it lands on when threading found a finished
//! one, what a new ticket looks like, whether its sender still has an
//! acknowledgement left this hour, and what a bounce says about the desk
//! mail it reports. The ingest writer gathers the inputs and writes the rows.

use chrono::{DateTime, Duration, Utc};

use super::classify::Class;
use super::conversation::{self, Author, Participant, Settings, TicketState};
use super::mail::{Address, Bounce, BounceKind, Inbound};
use super::threading::{self, Decision, Known, TicketRef};
use super::ticket::{ContactId, Kind, Priority, Role, Status, TicketId, TicketNumber};
use super::token::Token;

/// One inbound mail as intake sees it.
pub struct MailFacts<'a> {
    pub mail: &'a Inbound,
    pub sender: &'a Address,
    pub class: &'a Class,
    /// Its verified reply tokens.
    pub tokens: &'a [Token],
    /// The sender's contact id.
    pub contact: ContactId,
}

/// Where a mail goes and who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub route: Route,
    pub author: Author,
}

/// Threads a mail (a bounce also by the Message-ID it reports), tells who
/// wrote it, and applies the reopen rule; `finished` says whether a ticket
/// is finished (see [`TicketState::is_finished`]).
pub fn place(
    settings: &Settings,
    m: &MailFacts<'_>,
    known: &impl Known,
    finished: impl Fn(TicketId) -> bool,
) -> Placed {
    let numbers: Vec<TicketNumber> = m.tokens.iter().map(|t| t.number).collect();
    let mut in_reply_to = m.mail.in_reply_to.clone();
    if m.class.is_bounce()
        && let Some(id) = m
            .mail
            .bounce
            .as_ref()
            .and_then(|b| b.original_message_id.clone())
    {
        in_reply_to.insert(0, id);
    }
    let decision = threading::thread(
        &threading::Keys {
            message_id: m.mail.message_id.as_deref(),
            in_reply_to: &in_reply_to,
            references: &m.mail.references,
            subject: &m.mail.subject,
            sender: Some(&m.sender.email),
            tokens: &numbers,
            sender_is_staff: settings.staff.by_email(&m.sender.email).is_some(),
        },
        &settings.desk.tag,
        known,
    );
    let author_on = |ticket: Option<TicketRef>| {
        conversation::author(
            settings,
            m.mail,
            m.sender,
            m.class,
            ticket.map(|t| t.number),
            m.tokens,
            m.contact,
        )
    };
    let author = author_on(decision.ticket());
    let route = route(
        &decision,
        &author,
        decision.ticket().is_some_and(|t| finished(t.id)),
    );
    // Off a finished ticket, its tokens prove nothing about the new one.
    let author = if route.ticket == decision.ticket() {
        author
    } else {
        author_on(None)
    };
    Placed { route, author }
}

/// Where a mail goes after threading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The ticket it joins; `None` opens a new one.
    pub ticket: Option<TicketRef>,
    /// The ticket a new one is linked to, and why.
    pub link: Option<(TicketId, &'static str)>,
    /// The threading rule, as the message row records it.
    pub rule: &'static str,
}

/// The reopen rule: a customer writing to a closed ticket, or to a resolved
/// one after the reopen window, starts a new ticket linked to the old one.
/// `finished` tells whether the threaded ticket is finished (see
/// [`TicketState::is_finished`]); staff, robots and suppliers always join.
pub fn route(decision: &Decision, author: &Author, finished: bool) -> Route {
    let customer_side = matches!(author, Author::Customer | Author::ClaimedStaff(_));
    match decision.ticket() {
        Some(t) if customer_side && finished => Route {
            ticket: None,
            link: Some((t.id, "reply to a finished ticket")),
            rule: "new_after_finished",
        },
        Some(t) => Route {
            ticket: Some(t),
            link: None,
            rule: decision.rule(),
        },
        None => Route {
            ticket: None,
            link: match decision {
                Decision::New {
                    linked_to: Some(other),
                } => Some((
                    other.id,
                    "subject tag of another ticket from a non-participant",
                )),
                _ => None,
            },
            rule: decision.rule(),
        },
    }
}

/// A ticket opened by a mail: an incident, new and normal, in the group and
/// service its mailbox is configured with, the sender its customer.
pub fn new_ticket(
    id: TicketId,
    subject: &str,
    sender: &Address,
    mailbox: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> TicketState {
    TicketState {
        id,
        number: TicketNumber {
            kind: Kind::Incident,
            seq: id.0,
        },
        subject: subject.to_string(),
        status: Status::New,
        priority: Priority::Normal,
        kind: Kind::Incident,
        assignee: None,
        team: settings.mailbox_groups.get(mailbox).cloned(),
        customer: sender.clone(),
        resolved_at: None,
        root_message_id: None,
        last_public_message_id: None,
        participants: vec![Participant {
            address: sender.clone(),
            role: Role::Customer,
        }],
        created_at: now,
        service: settings.mailbox_services.get(mailbox).cloned(),
        responded_at: None,
        mailbox: mailbox.to_string(),
        fields: "{}".into(),
    }
}

/// Makes the sender of a mail to an existing ticket one of its
/// participants: staff (proven) as staff, anyone else as a participant.
/// Returns the role it was given, or `None` if it was one already.
pub fn join(ticket: &mut TicketState, sender: &Address, author: &Author) -> Option<Role> {
    if ticket.is_participant(&sender.email) {
        return None;
    }
    let role = if matches!(author, Author::Staff(_)) {
        Role::Staff
    } else {
        Role::Participant
    };
    ticket.participants.push(Participant {
        address: sender.clone(),
        role,
    });
    Some(role)
}

/// A sender's acknowledgements in the current hour: a mail loop or a flood
/// from one address gets at most the configured number per hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckBudget {
    /// When the current hour began; `None` before the first acknowledgement.
    pub window_start: Option<DateTime<Utc>>,
    /// Acknowledgements sent in it.
    pub sent: i32,
}

impl AckBudget {
    /// Takes one acknowledgement, if any is left; a window older than an
    /// hour starts over at `now`.
    pub fn take(&mut self, now: DateTime<Utc>, per_hour: u32) -> bool {
        if self
            .window_start
            .is_none_or(|start| now - start >= Duration::hours(1))
        {
            *self = AckBudget {
                window_start: Some(now),
                sent: 0,
            };
        }
        if i64::from(self.sent) >= i64::from(per_hour) {
            return false;
        }
        self.sent += 1;
        true
    }
}

/// What a failed delivery says about the desk mail it reports, for the
/// outbox row and the ticket: `who (status diagnostic)`. `outbox_recipients`
/// stands in when the report names nobody. Delay notices and complaints
/// report mail that was (or may still be) delivered: they give `None`.
pub fn bounce_summary(bounce: &Bounce, outbox_recipients: &str) -> Option<String> {
    if bounce.kind != BounceKind::Failed {
        return None;
    }
    let who = if bounce.recipients.is_empty() {
        outbox_recipients.to_string()
    } else {
        bounce.recipients.join(", ")
    };
    let why = [bounce.status.as_deref(), bounce.diagnostic.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Some(if why.is_empty() {
        who
    } else {
        format!("{who} ({why})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::tests::settings as test_settings;
    use crate::domain::staff::StaffMember;

    fn t(id: i64) -> TicketRef {
        TicketRef {
            id: TicketId(id),
            number: TicketNumber {
                kind: Kind::Incident,
                seq: id,
            },
        }
    }

    fn at(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::hours(h) + Duration::minutes(m)
    }

    #[test]
    fn the_reopen_rule_sends_only_the_customer_side_to_a_new_ticket() {
        let staff = StaffMember {
            name: "Ann".into(),
            email: "ann@desk.example".into(),
            groups: Vec::new(),
        };
        let by_ref = Decision::ByReference(t(7));
        let cases: Vec<(&str, &Decision, Author, bool, Route)> = vec![
            (
                "customer, open ticket",
                &by_ref,
                Author::Customer,
                false,
                Route {
                    ticket: Some(t(7)),
                    link: None,
                    rule: "reference",
                },
            ),
            (
                "customer, finished ticket",
                &by_ref,
                Author::Customer,
                true,
                Route {
                    ticket: None,
                    link: Some((TicketId(7), "reply to a finished ticket")),
                    rule: "new_after_finished",
                },
            ),
            (
                "unproven staff counts as a customer",
                &by_ref,
                Author::ClaimedStaff(staff.clone()),
                true,
                Route {
                    ticket: None,
                    link: Some((TicketId(7), "reply to a finished ticket")),
                    rule: "new_after_finished",
                },
            ),
            (
                "staff may write to a finished ticket",
                &by_ref,
                Author::Staff(staff),
                true,
                Route {
                    ticket: Some(t(7)),
                    link: None,
                    rule: "reference",
                },
            ),
            (
                "a robot joins the finished ticket",
                &by_ref,
                Author::Robot,
                true,
                Route {
                    ticket: Some(t(7)),
                    link: None,
                    rule: "reference",
                },
            ),
        ];
        for (name, decision, author, finished, want) in cases {
            assert_eq!(route(decision, &author, finished), want, "{name}");
        }
        let stranger = Decision::New {
            linked_to: Some(t(3)),
        };
        assert_eq!(
            route(&stranger, &Author::Customer, false),
            Route {
                ticket: None,
                link: Some((
                    TicketId(3),
                    "subject tag of another ticket from a non-participant"
                )),
                rule: "new_linked",
            }
        );
        assert_eq!(
            route(&Decision::New { linked_to: None }, &Author::Customer, false),
            Route {
                ticket: None,
                link: None,
                rule: "new",
            }
        );
    }

    #[test]
    fn the_acknowledgement_budget_is_per_hour() {
        let mut b = AckBudget::default();
        assert!(b.take(at(0, 0), 2));
        assert!(b.take(at(0, 10), 2));
        assert!(!b.take(at(0, 59), 2), "third in the hour");
        assert!(b.take(at(1, 0), 2), "a new hour starts over");
        assert_eq!(
            b,
            AckBudget {
                window_start: Some(at(1, 0)),
                sent: 1
            }
        );
        let mut none = AckBudget::default();
        assert!(!none.take(at(0, 0), 0), "a budget of zero sends nothing");
    }

    #[test]
    fn a_bounce_summary_names_who_and_why() {
        let failed = Bounce {
            kind: BounceKind::Failed,
            recipients: vec!["a@x.example".into(), "b@x.example".into()],
            original_message_id: Some("m@desk".into()),
            status: Some("5.1.1".into()),
            diagnostic: Some("user unknown".into()),
        };
        assert_eq!(
            bounce_summary(&failed, "c@x.example").as_deref(),
            Some("a@x.example, b@x.example (5.1.1 user unknown)")
        );
        let bare = Bounce {
            recipients: Vec::new(),
            status: None,
            diagnostic: None,
            ..failed.clone()
        };
        assert_eq!(
            bounce_summary(&bare, "c@x.example").as_deref(),
            Some("c@x.example")
        );
        let delayed = Bounce {
            kind: BounceKind::Delayed,
            ..failed
        };
        assert_eq!(bounce_summary(&delayed, "c@x.example"), None);
    }

    #[test]
    fn a_new_ticket_takes_its_mailbox_group_and_service() {
        let mut settings = test_settings();
        settings
            .mailbox_groups
            .insert("support".into(), "first-line".into());
        settings
            .mailbox_services
            .insert("support".into(), "email".into());
        let sender = Address::new("Cy", "cy@x.example");
        let st = new_ticket(
            TicketId(12),
            "Printer",
            &sender,
            "support",
            &settings,
            at(0, 0),
        );
        assert_eq!(st.number.to_string(), "INC-000012");
        assert_eq!(
            (st.status, st.priority, st.kind),
            (Status::New, Priority::Normal, Kind::Incident)
        );
        assert_eq!(st.team.as_deref(), Some("first-line"));
        assert_eq!(st.service.as_deref(), Some("email"));
        assert_eq!(st.customer, sender);
        assert!(st.is_participant("cy@x.example"));
        let other = new_ticket(TicketId(13), "x", &sender, "sales", &settings, at(0, 0));
        assert_eq!((other.team, other.service), (None, None));
    }
}
