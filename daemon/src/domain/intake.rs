//! The intake decisions for one inbound mail besides threading and the
//! conversation: which ticket it lands on when threading found a finished
//! one, what a new ticket looks like, whether its sender still has an
//! acknowledgement left this hour, and what a bounce says about the desk
//! mail it reports. The ingest writer gathers the inputs and writes the rows.

use chrono::{DateTime, Duration, Utc};

use super::ack::{Outgoing, reply_subject};
use super::classify::{Class, classify};
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

/// A ticket opened by a mail: new and normal, of the kind (default
/// incident), in the group and service its mailbox is configured with, the
/// sender its customer.
pub fn new_ticket(
    id: TicketId,
    subject: &str,
    sender: &Address,
    mailbox: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> TicketState {
    let kind = settings
        .mailbox_kinds
        .get(mailbox)
        .copied()
        .unwrap_or(Kind::Incident);
    TicketState {
        id,
        number: TicketNumber { kind, seq: id.0 },
        subject: subject.to_string(),
        status: Status::New,
        priority: Priority::Normal,
        kind,
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
        change: None,
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

/// The notice to the sender of a mail too large to take (`size` bytes,
/// more than `limit`), read from its head: a person's mail gets one short
/// answer saying so; a robot's, the desk's own, or one without a sender
/// gets none. The caller sends at most one a day per sender.
pub fn too_large_notice(
    settings: &Settings,
    head: &Inbound,
    size: u64,
    limit: usize,
    unique: &str,
) -> Option<Outgoing> {
    let sender = head.from.as_ref()?;
    if sender.email.is_empty()
        || settings.is_desk_address(&sender.email)
        || !classify(head).may_answer()
    {
        return None;
    }
    let desk = &settings.desk;
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1_048_576.0);
    let subject = if head.subject.trim().is_empty() {
        "(no subject)".to_string()
    } else {
        head.subject.trim().to_string()
    };
    let body = format!(
        "Hello {name},\n\n\
         your mail \"{subject}\" is {size} bytes ({size_mb}); {desk_name} takes mails of \
         up to {limit} bytes ({limit_mb}), so it was not turned into a ticket.\n\n\
         Please send it again without the large attachments (a link to them \
         will do).\n\n-- \n{desk_name}\n",
        name = if sender.name.trim().is_empty() {
            sender.email.as_str()
        } else {
            sender.name.trim()
        },
        size_mb = mb(size),
        limit_mb = mb(limit as u64),
        desk_name = desk.name,
    );
    let mut from = desk.address.clone();
    from.name = desk.name.clone();
    Some(Outgoing {
        message_id: format!("too-large.{unique}@{}", desk.id_domain()),
        from,
        reply_to: None,
        to: vec![sender.clone()],
        subject: reply_subject(&subject),
        in_reply_to: head.message_id.clone(),
        references: head.message_id.iter().cloned().collect(),
        auto_submitted: Some("auto-replied"),
        body,
        html: None,
        attachments: Vec::new(),
        thread: None,
    })
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
    fn a_person_sending_too_large_a_mail_is_told_robots_are_not() {
        use crate::domain::conversation::tests::mail;
        let settings = test_settings();
        let mut head = mail("cy@x.example", "the log is attached");
        head.from = Some(Address::new("Cy", "cy@x.example"));
        head.subject = "Crash logs".into();
        let out = too_large_notice(&settings, &head, 31_457_280, 26_214_400, "abc")
            .expect("a person is told");
        assert_eq!(out.to, vec![Address::new("Cy", "cy@x.example")]);
        assert_eq!(out.subject, "Re: Crash logs");
        assert_eq!(out.in_reply_to, head.message_id);
        assert_eq!(out.auto_submitted, Some("auto-replied"));
        assert_eq!(out.thread, None, "no ticket was opened");
        assert!(
            out.message_id.starts_with("too-large.abc@"),
            "{}",
            out.message_id
        );
        for want in [
            "Hello Cy",
            "31457280 bytes (30.0 MB)",
            "26214400 bytes (25.0 MB)",
            "not turned into a ticket",
        ] {
            assert!(out.body.contains(want), "{want:?} in {}", out.body);
        }

        let mut robot = head.clone();
        robot.robot.auto_submitted = Some("auto-replied".into());
        assert_eq!(
            too_large_notice(&settings, &robot, 31_457_280, 26_214_400, "abc"),
            None
        );
        let mut list = head.clone();
        list.robot.list_id = true;
        assert_eq!(
            too_large_notice(&settings, &list, 31_457_280, 26_214_400, "abc"),
            None
        );
        let mut desk = head.clone();
        desk.from = Some(settings.desk.address.clone());
        assert_eq!(
            too_large_notice(&settings, &desk, 31_457_280, 26_214_400, "abc"),
            None
        );
        let mut nobody = head;
        nobody.from = None;
        assert_eq!(
            too_large_notice(&settings, &nobody, 31_457_280, 26_214_400, "abc"),
            None
        );
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
