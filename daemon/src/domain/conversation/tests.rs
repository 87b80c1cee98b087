use super::*;
use crate::domain::ticket::{ContactId, Kind, TicketId, Visibility};

/// A fixed instant: the domain never reads the clock.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

pub(crate) fn settings() -> Settings {
    Settings {
        desk: Desk {
            name: "ACME Desk".into(),
            address: Address::new("ACME Desk", "support@example.test"),
            tag: "ACME".into(),
        },
        staff: Directory::new(vec![
            StaffMember {
                name: "Ada".into(),
                email: "ada@example.test".into(),
                groups: vec!["network".into()],
            },
            StaffMember {
                name: "Bob".into(),
                email: "bob@example.test".into(),
                groups: vec!["desktop".into()],
            },
        ]),
        key: TokenKey::new(b"a-test-secret-of-enough-bytes").expect("key"),
        trusted_authserv: vec!["mx.example.test".into()],
        reopen_window: Duration::days(7),
        ack_limit_per_hour: 5,
        mailbox_groups: Default::default(),
        mailbox_services: Default::default(),
        mailbox_kinds: Default::default(),
        relationship: Default::default(),
        services: [(
            "email".to_string(),
            crate::domain::sla::ServicePolicy {
                calendar: crate::domain::sla::always(),
                response: [Some(Duration::hours(1)); 4],
                resolution: [None; 4],
                warn: crate::domain::sla::clock::Percent::new(80).expect("percent"),
            },
        )]
        .into_iter()
        .collect(),
        service_escalation: Default::default(),
        emit_events: false,
        max_recipients: 50,
        problem_on_resolve: Default::default(),
        release_subscribers: Vec::new(),
        changes: Default::default(),
        suppliers: vec![Supplier {
            name: "NetCo".into(),
            contacts: vec![Address::new("NOC", "noc@netco.test")],
        }],
    }
}

fn number(seq: i64) -> TicketNumber {
    TicketNumber {
        kind: Kind::Incident,
        seq,
    }
}

pub(crate) fn ticket() -> TicketState {
    let customer = Address::new("Jo", "jo@cust.test");
    TicketState {
        id: TicketId(1),
        number: number(1),
        subject: "Printer on fire".into(),
        status: Status::Open,
        priority: Priority::Normal,
        kind: Kind::Incident,
        assignee: None,
        team: None,
        customer: customer.clone(),
        resolved_at: None,
        root_message_id: Some("m1@cust.test".into()),
        last_public_message_id: Some("m2@cust.test".into()),
        participants: vec![Participant {
            address: customer,
            role: Role::Customer,
        }],
        created_at: now(),
        service: None,
        responded_at: None,
        mailbox: "support".into(),
        fields: "{}".into(),
        change: None,
    }
}

pub(crate) fn mail(from: &str, text: &str) -> Inbound {
    Inbound {
        message_id: Some(format!("{}@mail.test", text.len())),
        from: Some(Address::new("", from)),
        subject: "Re: [ACME INC-000001] Printer on fire".into(),
        text: text.into(),
        new_text: Some(text.into()),
        ..Default::default()
    }
}

struct NoTickets;
impl Lookup for NoTickets {
    fn ticket_id(&self, n: TicketNumber) -> Option<TicketId> {
        (n.seq == 9).then_some(TicketId(9))
    }
}

fn run(t: &mut TicketState, m: &Inbound, author: &Author, new_ticket: bool) -> Effects {
    let s = settings();
    let sender = m.from.clone().unwrap_or_default();
    apply(
        &s,
        t,
        &MailIn {
            mail: m,
            sender: &sender,
            author,
            class: &Class::Normal,
            new_ticket,
            may_acknowledge: true,
            bounced: None,
            known_error: None,
        },
        &NoTickets,
        now(),
    )
}

fn staff(email: &str) -> StaffMember {
    settings().staff.by_email(email).cloned().expect("staff")
}

fn kinds(fx: &Effects) -> Vec<&'static str> {
    fx.drafts.iter().map(|d| d.kind.as_str()).collect()
}

#[test]
fn a_new_ticket_is_acknowledged_and_staff_notified() {
    let mut t = ticket();
    t.status = Status::New;
    let m = mail("jo@cust.test", "It burns");
    let fx = run(&mut t, &m, &Author::Customer, true);
    assert_eq!(kinds(&fx), ["acknowledgement", "notification"]);
    assert_eq!(fx.drafts[0].to, vec![Address::new("", "jo@cust.test")]);
    let note = &fx.drafts[1];
    assert_eq!(note.to.len(), 2, "nobody assigned: all staff");
    assert!(note.body.contains("INC-000001") && note.body.contains("It burns"));
    assert!(note.body.contains("Status:   new"));
}

#[test]
fn the_author_is_decided_by_proof_not_by_from() {
    let s = settings();
    let ada = Address::new("Ada", "ada@example.test");
    let n = number(1);
    let m = mail("ada@example.test", "x");
    let good = Token {
        number: n,
        contact: ContactId(5),
    };
    let a = |tokens: &[Token], contact: i64| {
        author(
            &s,
            &m,
            &ada,
            &Class::Normal,
            Some(n),
            tokens,
            ContactId(contact),
        )
    };
    assert_eq!(a(&[good], 5), Author::Staff(staff("ada@example.test")));
    // No token, a customer's token, a token for another ticket: refused.
    assert_eq!(a(&[], 5), Author::ClaimedStaff(staff("ada@example.test")));
    assert_eq!(
        a(
            &[Token {
                number: n,
                contact: ContactId(6)
            }],
            5
        ),
        Author::ClaimedStaff(staff("ada@example.test"))
    );
    assert_eq!(
        a(
            &[Token {
                number: number(2),
                contact: ContactId(5)
            }],
            5
        ),
        Author::ClaimedStaff(staff("ada@example.test"))
    );
    // A trusted DKIM pass proves it without a token.
    let mut signed = m.clone();
    signed.auth_results = vec!["mx.example.test; dkim=pass header.d=example.test".into()];
    assert_eq!(
        author(
            &s,
            &signed,
            &ada,
            &Class::Normal,
            Some(n),
            &[],
            ContactId(5)
        ),
        Author::Staff(staff("ada@example.test"))
    );
    let cust = Address::new("", "jo@cust.test");
    assert_eq!(
        author(&s, &m, &cust, &Class::Normal, Some(n), &[], ContactId(1)),
        Author::Customer
    );
    let desk = Address::new("", "support+INC-000001.1.abc@example.test");
    assert_eq!(
        author(&s, &m, &desk, &Class::Normal, Some(n), &[], ContactId(1)),
        Author::Desk
    );
    assert_eq!(
        author(
            &s,
            &m,
            &cust,
            &Class::AutoReply("x"),
            Some(n),
            &[],
            ContactId(1)
        ),
        Author::Robot
    );
}

#[test]
fn a_staff_answer_is_relayed_to_the_customer_side_from_the_desk() {
    let mut t = ticket();
    t.status = Status::New;
    t.participants.push(Participant {
        address: Address::new("", "kim@cust.test"),
        role: Role::Cc,
    });
    let m = mail(
        "ada@example.test",
        "/priority high\n/assign me\n\nPlease restart it.",
    );
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert_eq!(kinds(&fx), ["answer"]);
    let answer = &fx.drafts[0];
    assert_eq!(answer.to.len(), 2);
    assert_eq!(answer.from_name, "Ada via ACME Desk");
    assert!(answer.body.starts_with("Please restart it."));
    assert!(!answer.body.contains("/priority"));
    assert_eq!(answer.in_reply_to.as_deref(), Some("m2@cust.test"));
    assert_eq!(answer.references, ["m1@cust.test", "m2@cust.test"]);
    assert_eq!(t.priority, Priority::High);
    assert_eq!(t.assignee.as_deref(), Some("ada@example.test"));
    assert_eq!(t.status, Status::Open);
    assert_eq!(fx.visibility, Visibility::Public);
    let fields: Vec<&str> = fx.changes.iter().map(|c| c.field).collect();
    assert_eq!(fields, ["priority", "assignee", "status"]);

    // Its copy for one recipient comes from the desk with that recipient's token.
    let s = settings();
    let tok = Token {
        number: t.number,
        contact: ContactId(3),
    };
    let out = answer.address(&s, &answer.to[0], tok, "u1");
    assert_eq!(out.from.email, "support@example.test");
    assert_eq!(out.auto_submitted, None);
    let reply_to = out.reply_to.expect("reply-to");
    assert_eq!(
        s.key.find(&s.desk.address, [reply_to.email.as_str()], []),
        vec![tok]
    );
    assert_eq!(
        s.key.find(&s.desk.address, [], [out.message_id.as_str()]),
        vec![tok]
    );
}

#[test]
fn a_reply_of_only_commands_changes_the_ticket_and_sends_nothing() {
    let mut t = ticket();
    let m = mail("ada@example.test", "/resolve\n/link INC-9");
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert!(fx.drafts.is_empty());
    assert_eq!(t.status, Status::Resolved);
    assert!(t.resolved_at.is_some());
    assert_eq!(fx.links, vec![number(9)]);
    assert_eq!(fx.visibility, Visibility::Internal);
}

#[test]
fn bad_commands_change_nothing_and_answer_the_staff_member() {
    let mut t = ticket();
    let before = t.clone();
    let m = mail(
        "ada@example.test",
        "/priority high\n/stauts open\n/link INC-5\nHello",
    );
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert_eq!(t, before);
    assert_eq!(kinds(&fx), ["command-error"]);
    let err = &fx.drafts[0];
    assert_eq!(err.to, vec![staff("ada@example.test").address()]);
    assert!(err.body.contains("unknown command /stauts"), "{}", err.body);
    assert!(
        err.body.contains("/link INC-000005: no such ticket"),
        "{}",
        err.body
    );
    assert_eq!(fx.visibility, Visibility::Internal);
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.starts_with("commands refused"))
    );
}

#[test]
fn a_note_stays_internal_and_goes_to_the_other_staff() {
    let mut t = ticket();
    let m = mail("ada@example.test", "/note the switch in room 4 is dead");
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert_eq!(fx.visibility, Visibility::Internal);
    assert_eq!(fx.shown_text, "the switch in room 4 is dead");
    assert_eq!(kinds(&fx), ["notification"]);
    assert_eq!(fx.drafts[0].to, vec![staff("bob@example.test").address()]);
}

#[test]
fn a_forged_staff_mail_changes_nothing_and_is_flagged() {
    let mut t = ticket();
    t.assignee = Some("bob@example.test".into());
    let before = t.clone();
    let m = mail("ada@example.test", "/close\nDone.");
    let fx = run(
        &mut t,
        &m,
        &Author::ClaimedStaff(staff("ada@example.test")),
        false,
    );
    assert_eq!(
        (t.status, t.assignee.clone()),
        (before.status, before.assignee)
    );
    assert!(fx.changes.is_empty());
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("refused staff claim"))
    );
    assert_eq!(kinds(&fx), ["notification"]);
    assert_eq!(fx.drafts[0].to, vec![staff("bob@example.test").address()]);
    assert!(fx.drafts[0].body.contains("WARNING"));
}

#[test]
fn customer_replies_reopen_and_bring_their_cc() {
    let mut t = ticket();
    t.status = Status::Pending;
    t.assignee = Some("ada@example.test".into());
    let mut m = mail("jo@cust.test", "Still broken");
    m.cc = vec![
        Address::new("Kim", "kim@cust.test"),
        Address::new("", "bob@example.test"),
        Address::new("", "support@example.test"),
    ];
    let fx = run(&mut t, &m, &Author::Customer, false);
    assert_eq!(t.status, Status::Open);
    assert_eq!(fx.added.len(), 1);
    assert_eq!(fx.added[0].address.email, "kim@cust.test");
    assert_eq!(kinds(&fx), ["notification"]);
    assert_eq!(fx.drafts[0].to, vec![staff("ada@example.test").address()]);
    assert_eq!(t.last_public_message_id, m.message_id);
}

#[test]
fn finished_tickets_send_customers_to_a_new_ticket() {
    let now = self::now();
    let w = Duration::days(7);
    let mut t = ticket();
    t.status = Status::Resolved;
    t.resolved_at = Some(now - Duration::days(2));
    assert!(!t.is_finished(now, w));
    t.resolved_at = Some(now - Duration::days(8));
    assert!(t.is_finished(now, w));
    t.status = Status::Closed;
    t.resolved_at = None;
    assert!(t.is_finished(now, w));
    t.status = Status::Pending;
    assert!(!t.is_finished(now, w));
}

#[test]
fn cc_commands_add_and_remove_participants() {
    let mut t = ticket();
    let ada = Author::Staff(staff("ada@example.test"));
    let fx = run(
        &mut t,
        &mail("ada@example.test", "/cc add kim@cust.test"),
        &ada,
        false,
    );
    assert_eq!(fx.added.len(), 1);
    assert_eq!(t.audience().len(), 2);
    let fx = run(
        &mut t,
        &mail("ada@example.test", "/cc remove kim@cust.test"),
        &ada,
        false,
    );
    assert_eq!(fx.removed, ["kim@cust.test"]);
    assert_eq!(t.audience().len(), 1);
    let fx = run(
        &mut t,
        &mail("ada@example.test", "/cc remove jo@cust.test"),
        &ada,
        false,
    );
    assert_eq!(kinds(&fx), ["command-error"], "the customer is not a Cc");
}

#[test]
fn robots_are_stored_and_never_answered() {
    let s = settings();
    let mut t = ticket();
    let m = mail("noreply@cust.test", "I am out of office");
    let sender = Address::new("", "noreply@cust.test");
    let fx = apply(
        &s,
        &mut t,
        &MailIn {
            mail: &m,
            sender: &sender,
            author: &Author::Robot,
            class: &Class::AutoReply("Auto-Submitted"),
            new_ticket: false,
            may_acknowledge: true,
            bounced: None,
            known_error: None,
        },
        &NoTickets,
        now(),
    );
    assert!(fx.drafts.is_empty());
    assert_eq!(t.status, Status::Open);
    let fx = apply(
        &s,
        &mut t,
        &MailIn {
            mail: &m,
            sender: &sender,
            author: &Author::Robot,
            class: &Class::Bounce("multipart/report"),
            new_ticket: false,
            may_acknowledge: true,
            bounced: Some("jo@cust.test (5.1.1 user unknown)".into()),
            known_error: None,
        },
        &NoTickets,
        now(),
    );
    assert_eq!(kinds(&fx), ["bounce-notice"]);
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("jo@cust.test"))
    );
    assert!(
        fx.drafts
            .iter()
            .all(|d| d.to.iter().all(|a| a.email.ends_with("@example.test")))
    );
}

#[test]
fn service_and_supplier_commands() {
    let mut t = ticket();
    let ada = Author::Staff(staff("ada@example.test"));
    let fx = run(
        &mut t,
        &mail(
            "ada@example.test",
            "/service email\n/supplier netco router dead",
        ),
        &ada,
        false,
    );
    assert_eq!(t.service.as_deref(), Some("email"));
    assert_eq!(
        fx.escalations,
        vec![("NetCo".to_string(), "router dead".to_string())]
    );
    assert_eq!(kinds(&fx), ["supplier-escalation"]);
    let esc = &fx.drafts[0];
    assert_eq!(esc.to, vec![Address::new("NOC", "noc@netco.test")]);
    assert!(esc.body.contains("router dead") && esc.body.contains("INC-000001"));
    let fx = run(
        &mut t,
        &mail("ada@example.test", "/service nope\n/supplier acme"),
        &ada,
        false,
    );
    assert_eq!(kinds(&fx), ["command-error"]);
    assert!(fx.drafts[0].body.contains("/service nope"));
    assert!(
        fx.drafts[0]
            .body
            .contains("/supplier acme: no such supplier")
    );
}

#[test]
fn a_supplier_reply_is_internal_and_told_to_staff() {
    let s = settings();
    let mut t = ticket();
    let m = mail("noc@netco.test", "Replaced the router.");
    let sender = Address::new("", "noc@netco.test");
    let who = author(
        &s,
        &m,
        &sender,
        &Class::Normal,
        Some(t.number),
        &[],
        ContactId(9),
    );
    assert_eq!(who, Author::Supplier("NetCo".into()));
    let fx = run(&mut t, &m, &who, false);
    assert_eq!(fx.visibility, Visibility::Internal);
    assert_eq!(fx.supplier_reply.as_deref(), Some("NetCo"));
    assert_eq!(kinds(&fx), ["notification"]);
    assert!(fx.drafts[0].body.contains("Replaced the router."));
}

#[test]
fn the_first_answer_is_the_response() {
    let mut t = ticket();
    let ada = Author::Staff(staff("ada@example.test"));
    run(&mut t, &mail("ada@example.test", "On it."), &ada, false);
    assert_eq!(t.responded_at, Some(now()));
    run(
        &mut t,
        &mail("ada@example.test", "Still on it."),
        &ada,
        false,
    );
    assert_eq!(t.responded_at, Some(now()));
}

#[test]
fn an_answer_to_more_than_max_recipients_goes_to_the_customer_first_and_tells_staff() {
    let mut t = ticket();
    // The customer joined after others, as rows loaded from a database may come.
    t.participants.clear();
    for i in 0..60 {
        t.participants.push(Participant {
            address: Address::new("", &format!("cc{i}@cust.test")),
            role: Role::Cc,
        });
    }
    t.participants.push(Participant {
        address: t.customer.clone(),
        role: Role::Customer,
    });
    let m = mail("ada@example.test", "Please restart it.");
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert_eq!(kinds(&fx), ["command-error", "answer"]);
    let answer = &fx.drafts[1];
    assert_eq!(answer.to.len(), 50);
    assert_eq!(answer.to[0].email, "jo@cust.test");
    assert_eq!(answer.to[1].email, "cc0@cust.test");
    let notice = &fx.drafts[0];
    assert_eq!(notice.to[0].email, "ada@example.test");
    assert!(notice.subject.contains("50 of 61"), "{}", notice.subject);
    assert!(notice.body.contains("cc49@cust.test"), "{}", notice.body);
    assert!(notice.body.contains("cc59@cust.test"), "{}", notice.body);
    assert!(!notice.body.contains("cc48@cust.test"), "{}", notice.body);

    // At the cap exactly, nobody is left out and nothing is said.
    let mut t = ticket();
    for i in 0..49 {
        t.participants.push(Participant {
            address: Address::new("", &format!("cc{i}@cust.test")),
            role: Role::Cc,
        });
    }
    let fx = run(&mut t, &m, &Author::Staff(staff("ada@example.test")), false);
    assert_eq!(kinds(&fx), ["answer"]);
    assert_eq!(fx.drafts[0].to.len(), 50);
}

struct WithRecord(problem::Record);
impl Lookup for WithRecord {
    fn ticket_id(&self, _: TicketNumber) -> Option<TicketId> {
        None
    }
    fn problem(&self, _: TicketId) -> Option<problem::Record> {
        Some(self.0.clone())
    }
}

fn problem_ticket() -> TicketState {
    let ada = Address::new("Ada", "ada@example.test");
    let mut t = ticket();
    t.kind = Kind::Problem;
    t.number = TicketNumber {
        kind: Kind::Problem,
        seq: 1,
    };
    t.customer = ada.clone();
    t.assignee = Some(ada.email.clone());
    t.participants = vec![Participant {
        address: ada,
        role: Role::Customer,
    }];
    t
}

fn staff_run(t: &mut TicketState, text: &str, lookup: &dyn Lookup) -> Effects {
    let s = settings();
    let m = mail("ada@example.test", text);
    let sender = m.from.clone().unwrap_or_default();
    apply(
        &s,
        t,
        &MailIn {
            mail: &m,
            sender: &sender,
            author: &Author::Staff(staff("ada@example.test")),
            class: &Class::Normal,
            new_ticket: false,
            may_acknowledge: false,
            bounced: None,
            known_error: None,
        },
        lookup,
        now(),
    )
}

#[test]
fn problem_commands_belong_on_problems_and_problems_are_opened_from_incidents() {
    let mut t = ticket();
    let fx = staff_run(
        &mut t,
        "/problem VPN drops hourly\nLooking into it.",
        &NoTickets,
    );
    assert_eq!(fx.new_problem.as_deref(), Some("VPN drops hourly"));
    assert_eq!(
        kinds(&fx),
        vec!["answer"],
        "the text still goes to the customer"
    );

    for text in [
        "/rootcause lease pool",
        "/workaround reconnect",
        "/knownerror vpn",
    ] {
        let mut t = ticket();
        let before = t.clone();
        let fx = staff_run(&mut t, text, &NoTickets);
        assert_eq!(t, before, "{text}");
        assert_eq!(kinds(&fx), vec!["command-error"], "{text}");
        assert!(fx.drafts[0].body.contains("not a problem"), "{text}");
        assert!(fx.problem_edit.is_empty());
    }

    let mut p = problem_ticket();
    let fx = staff_run(&mut p, "/problem another", &NoTickets);
    assert_eq!(kinds(&fx), vec!["command-error"]);
    assert!(fx.new_problem.is_none());
}

#[test]
fn a_problem_record_is_set_by_commands_and_its_text_is_not_sent_back_to_its_writer() {
    let mut p = problem_ticket();
    let fx = staff_run(
        &mut p,
        "/rootcause\n/workaround use the web client\n/knownerror vpn, drops\n\nThe DHCP lease pool was too small.",
        &WithRecord(problem::Record::default()),
    );
    assert_eq!(
        fx.problem_edit.root_cause.as_deref(),
        Some("The DHCP lease pool was too small.")
    );
    assert_eq!(
        fx.problem_edit.workaround.as_deref(),
        Some("use the web client")
    );
    assert!(matches!(fx.problem_edit.known_error, Some(Some(_))));
    assert_eq!(
        fx.visibility,
        Visibility::Internal,
        "the text was the cause"
    );
    assert!(kinds(&fx).is_empty(), "{:?}", kinds(&fx));

    // Text on a problem whose only participant is its writer reaches nobody.
    let mut p = problem_ticket();
    let fx = staff_run(&mut p, "Still digging.", &NoTickets);
    assert!(kinds(&fx).is_empty(), "{:?}", kinds(&fx));
}

#[test]
fn a_known_error_needs_a_workaround_recorded_or_in_the_same_reply() {
    let mut p = problem_ticket();
    let fx = staff_run(
        &mut p,
        "/knownerror vpn",
        &WithRecord(problem::Record::default()),
    );
    assert_eq!(kinds(&fx), vec!["command-error"]);
    assert!(fx.drafts[0].body.contains("workaround first"));
    let recorded = problem::Record {
        workaround: Some("reconnect".into()),
        ..problem::Record::default()
    };
    let fx = staff_run(&mut p, "/knownerror vpn", &WithRecord(recorded));
    assert!(kinds(&fx).is_empty());
    assert!(matches!(fx.problem_edit.known_error, Some(Some(_))));
}

#[test]
fn a_new_incident_matching_a_known_error_gets_the_workaround() {
    let s = settings();
    let mut t = ticket();
    t.status = Status::New;
    let m = mail("jo@cust.test", "my VPN drops every hour");
    let sender = m.from.clone().unwrap_or_default();
    let ke = problem::KnownError {
        id: TicketId(7),
        number: "PRB-000007".parse().expect("n"),
        subject: "VPN drops".into(),
        workaround: "Reconnect with the web client.".into(),
        keywords: "vpn, drops".parse().expect("k"),
    };
    let fx = apply(
        &s,
        &mut t,
        &MailIn {
            mail: &m,
            sender: &sender,
            author: &Author::Customer,
            class: &Class::Normal,
            new_ticket: true,
            may_acknowledge: true,
            bounced: None,
            known_error: Some(&ke),
        },
        &NoTickets,
        now(),
    );
    assert_eq!(fx.known_error.map(|n| n.seq), Some(7));
    let ack = fx
        .drafts
        .iter()
        .find(|d| d.kind == DraftKind::Acknowledgement)
        .expect("ack");
    assert!(
        ack.body.contains("Reconnect with the web client."),
        "{}",
        ack.body
    );
    assert!(ack.body.contains("PRB-000007"));
}
