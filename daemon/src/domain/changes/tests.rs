use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::apply::{self, Verdict, judge, verdict};
use super::token::{self, Found};
use super::*;
use crate::domain::classify::Class;
use crate::domain::conversation::tests::{mail, settings, ticket};
use crate::domain::conversation::{self, Author, Effects, Lookup, MailIn, Settings, TicketState};
use crate::domain::mail::{Address, Inbound};
use crate::domain::ticket::{Kind, TicketId, TicketNumber, Visibility};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_default()
}

fn item(name: &str, kind: ItemKind, deps: &[&str]) -> Item {
    Item {
        name: name.into(),
        kind,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn catalog() -> Catalog {
    Catalog {
        items: vec![
            item("email", ItemKind::Service, &["mx1", "db1"]),
            item("web", ItemKind::Service, &["app1"]),
            item("app1", ItemKind::System, &["db1"]),
            item("db1", ItemKind::System, &["disk7"]),
            item("disk7", ItemKind::Component, &[]),
            item("mx1", ItemKind::System, &[]),
            item("portal", ItemKind::Service, &["web"]),
        ],
    }
}

#[test]
fn an_item_affects_itself_when_a_service_and_every_service_above_it() {
    let c = catalog();
    let table: &[(&str, &[&str])] = &[
        ("disk7", &["email", "portal", "web"]),
        ("db1", &["email", "portal", "web"]),
        ("app1", &["portal", "web"]),
        ("mx1", &["email"]),
        ("web", &["portal", "web"]),
        ("portal", &["portal"]),
        ("EMAIL", &["email"]),
        ("nothing", &[]),
    ];
    for (name, want) in table {
        assert_eq!(c.affected_services(name), *want, "{name}");
    }
    assert_eq!(
        c.services_of(&["mx1".to_string(), "app1".to_string()]),
        vec!["email", "portal", "web"]
    );
    assert_eq!(c.cycle(), None);
}

#[test]
fn dependency_cycles_are_found() {
    let mut c = catalog();
    c.items.push(item("a", ItemKind::System, &["b"]));
    c.items.push(item("b", ItemKind::System, &["c"]));
    c.items.push(item("c", ItemKind::System, &["a"]));
    let cycle = c.cycle().expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    // A cycle in the graph still ends the affected-services walk.
    assert!(c.affected_services("a").is_empty());
}

#[test]
fn quorum_all_any_and_n_of_m() {
    // (quorum, approvers, approvals, rejections, tally)
    let table = [
        (Quorum::All, 3, 3, 0, Tally::Approved),
        (Quorum::All, 3, 2, 0, Tally::Open),
        (Quorum::All, 3, 2, 1, Tally::Rejected),
        (Quorum::Any, 3, 1, 0, Tally::Approved),
        (Quorum::Any, 3, 0, 2, Tally::Open),
        (Quorum::Any, 3, 0, 3, Tally::Rejected),
        (Quorum::AtLeast(2), 3, 2, 0, Tally::Approved),
        (Quorum::AtLeast(2), 3, 1, 1, Tally::Open),
        (Quorum::AtLeast(2), 3, 0, 2, Tally::Rejected),
        (Quorum::AtLeast(2), 3, 1, 2, Tally::Rejected),
        (Quorum::AtLeast(3), 3, 2, 1, Tally::Rejected),
    ];
    for (q, m, a, r, want) in table {
        assert_eq!(tally(q, m, a, r), want, "{q} of {m}: {a} yes {r} no");
    }
    assert_eq!("ALL".parse(), Ok(Quorum::All));
    assert_eq!("2".parse(), Ok(Quorum::AtLeast(2)));
    assert!("0".parse::<Quorum>().is_err());
    assert!("most".parse::<Quorum>().is_err());
}

#[test]
fn the_deadline_is_wall_hours_after_the_submission() {
    assert_eq!(deadline(now(), 48), utc(2026, 12, 3, 9, 0));
}

#[test]
fn state_moves() {
    use State::*;
    let legal = [
        (Draft, Closed),
        (Submitted, Draft),
        (Approved, Scheduled),
        (Approved, Implemented),
        (Scheduled, Implemented),
        (Scheduled, Failed),
        (Implemented, Closed),
        (Failed, Draft),
        (Rejected, Closed),
    ];
    for (a, b) in legal {
        assert!(a.staff_move(b).is_ok(), "{a:?} → {b:?}");
    }
    let illegal = [
        (Draft, Approved),
        (Draft, Submitted),
        (Draft, Implemented),
        (Submitted, Approved),
        (Submitted, Scheduled),
        (Rejected, Scheduled),
        (Implemented, Failed),
        (Closed, Draft),
        (Scheduled, Scheduled),
    ];
    for (a, b) in illegal {
        assert!(a.staff_move(b).is_err(), "{a:?} → {b:?}");
    }
    for s in [Draft, Submitted, Rejected, Failed] {
        assert!(s.may_submit().is_ok(), "{s:?}");
    }
    for s in [Approved, Scheduled, Implemented, Closed] {
        assert!(s.may_submit().is_err(), "{s:?}");
    }
    assert!(Draft.editable().is_ok());
    assert!(Submitted.editable().is_err());
    assert!(Approved.editable().is_err());
    for s in State::ALL {
        assert_eq!(s.as_str().parse(), Ok(s));
    }
}

#[test]
fn windows_are_read_in_their_zone() {
    let w =
        Window::parse("2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin", Tz::UTC).expect("window");
    assert_eq!(w.start, utc(2026, 12, 10, 21, 0));
    assert_eq!(w.end, utc(2026, 12, 11, 1, 0));
    assert_eq!(w.zone, "Europe/Berlin");
    assert!(
        w.describe()
            .contains("2026-12-10 22:00 – 2026-12-11 02:00 Europe/Berlin")
    );
    let w = Window::parse("2026-12-10T22:00 2026-12-11T02:00", Tz::UTC).expect("window");
    assert_eq!(w.start, utc(2026, 12, 10, 22, 0));
    assert_eq!(w.zone, "UTC");
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    let w = Window::parse("2026-12-10 22:00 2026-12-11 02:00", berlin).expect("default zone");
    assert_eq!(w.start, utc(2026, 12, 10, 21, 0));
}

#[test]
fn malformed_windows_say_why() {
    let table = [
        ("2026-12-10 22:00", "needs a start and an end"),
        ("2026-12-11 02:00 2026-12-10 22:00", "before it starts"),
        ("2026-12-10 22:00 2026-12-10 22:00", "before it starts"),
        ("2026-13-10 22:00 2026-12-11 02:00", "not a date"),
        ("2026-12-10 25:00 2026-12-11 02:00", "not a time"),
        ("tomorrow night", "not a date and time"),
        (
            "2026-12-10 22:00 2026-12-11 02:00 Mars/Olympus",
            "not an IANA time zone",
        ),
        ("2026-12-10 22:00 2026-12-11 02:00 UTC extra", "unexpected"),
        (
            "2026-03-29 02:30 2026-03-29 04:00 Europe/Berlin",
            "does not exist",
        ),
    ];
    for (arg, want) in table {
        let e = Window::parse(arg, Tz::UTC).expect_err(arg);
        assert!(e.contains(want), "{arg}: {e}");
    }
}

fn window(a: DateTime<Utc>, b: DateTime<Utc>) -> Window {
    Window {
        start: a,
        end: b,
        zone: "UTC".into(),
    }
}

#[test]
fn overlaps_on_shared_items_and_freezes_are_flagged() {
    let w = window(utc(2026, 12, 10, 22, 0), utc(2026, 12, 11, 2, 0));
    let planned = |seq, state, a, b, items: &[&str]| Planned {
        ticket_seq: seq,
        state,
        start: a,
        end: b,
        items: items.iter().map(|s| s.to_string()).collect(),
    };
    let others = vec![
        planned(
            2,
            State::Approved,
            utc(2026, 12, 11, 1, 0),
            utc(2026, 12, 11, 3, 0),
            &["db1"],
        ),
        planned(
            3,
            State::Approved,
            utc(2026, 12, 11, 1, 0),
            utc(2026, 12, 11, 3, 0),
            &["mx1"],
        ),
        planned(
            4,
            State::Rejected,
            utc(2026, 12, 11, 1, 0),
            utc(2026, 12, 11, 3, 0),
            &["db1"],
        ),
        planned(
            5,
            State::Scheduled,
            utc(2026, 12, 11, 2, 0),
            utc(2026, 12, 11, 3, 0),
            &["db1"],
        ),
        planned(
            1,
            State::Submitted,
            utc(2026, 12, 11, 1, 0),
            utc(2026, 12, 11, 3, 0),
            &["db1"],
        ),
    ];
    let freezes = vec![
        Freeze {
            name: "year end".into(),
            start: utc(2026, 12, 11, 0, 0),
            end: utc(2027, 1, 2, 0, 0),
        },
        Freeze {
            name: "summer".into(),
            start: utc(2026, 7, 1, 0, 0),
            end: utc(2026, 8, 1, 0, 0),
        },
    ];
    let flags = collisions(1, &w, &["DB1".to_string()], &others, &freezes);
    assert_eq!(flags.len(), 2, "{flags:?}");
    assert!(flags[0].contains("CHG-000002") && flags[0].contains("db1"));
    assert!(flags[1].contains("year end"));
}

fn board(name: &str, services: &[&str], risk: &[Risk]) -> Cab {
    Cab {
        name: name.into(),
        approvers: vec![Address::new("", &format!("{name}@example.test"))],
        services: services.iter().map(|s| s.to_string()).collect(),
        risk: risk.to_vec(),
        quorum: Quorum::All,
        deadline_hours: 24,
    }
}

#[test]
fn the_first_matching_board_decides() {
    let cfg = Config {
        cabs: vec![
            board("mail-high", &["email"], &[Risk::High]),
            board("mail", &["email"], &[]),
            board("risky", &[], &[Risk::High]),
            board("default", &[], &[]),
        ],
        ..Config::default()
    };
    let name = |risk, services: &[&str]| {
        let s: Vec<String> = services.iter().map(|s| s.to_string()).collect();
        cfg.board(risk, &s).map(|c| c.name.clone())
    };
    assert_eq!(
        name(Risk::High, &["email", "web"]).as_deref(),
        Some("mail-high")
    );
    assert_eq!(name(Risk::Low, &["email"]).as_deref(), Some("mail"));
    assert_eq!(name(Risk::High, &["web"]).as_deref(), Some("risky"));
    assert_eq!(name(Risk::Low, &[]).as_deref(), Some("default"));
}

#[test]
fn verdicts_are_read_from_the_first_line() {
    let table = [
        ("approve", Some(Verdict::Approve(String::new()))),
        (
            "  \n\nAPPROVE.\n> quoted",
            Some(Verdict::Approve(String::new())),
        ),
        (
            "Approved: looks fine",
            Some(Verdict::Approve("looks fine".into())),
        ),
        (
            "reject too risky before Christmas",
            Some(Verdict::Reject("too risky before Christmas".into())),
        ),
        (
            "Reject: no rollback plan",
            Some(Verdict::Reject("no rollback plan".into())),
        ),
        ("I approve", None),
        ("approval needs a meeting", None),
        ("", None),
    ];
    for (text, want) in table {
        assert_eq!(verdict(text), want, "{text:?}");
    }
}

fn submitted(s: &Settings) -> Record {
    let _ = s;
    Record {
        state: State::Submitted,
        round: 2,
        approvers: vec![
            "ann@example.test".into(),
            "ben@example.test".into(),
            "cat@example.test".into(),
        ],
        quorum: Quorum::AtLeast(2),
        deadline: Some(utc(2026, 12, 3, 9, 0)),
        ..Record::default()
    }
}

fn found(s: &Settings, seq: i64, round: u32, approver: &str) -> Found {
    let t = token::tag(&s.key, seq, round, approver);
    let (r, mac) = t.split_once('.').expect("tag");
    Found {
        seq: Some(seq),
        round: r[1..].parse().expect("round"),
        mac: mac.into(),
    }
}

#[test]
fn answers_are_judged_by_token_sender_state_and_deadline() {
    let s = settings();
    let rec = submitted(&s);
    let ann = found(&s, 7, 2, "ann@example.test");
    let ok = |sender: &str, f: &[Found], at| judge(&s.key, &rec, 7, sender, f, at);
    assert_eq!(
        ok("ann@example.test", std::slice::from_ref(&ann), now()),
        None
    );
    assert_eq!(
        ok("ANN@example.test", std::slice::from_ref(&ann), now()),
        None
    );
    // A reply quoting the requests of two rounds counts by the current one.
    let old = found(&s, 7, 1, "ann@example.test");
    assert_eq!(ok("ann@example.test", &[old, ann.clone()], now()), None);
    let refused = |sender: &str, f: &[Found], at, want: &str| {
        let why = ok(sender, f, at).unwrap_or_else(|| panic!("{sender} accepted"));
        assert!(why.contains(want), "{sender}: {why}");
    };
    // A forged From: without any token, with another approver's, a tampered one.
    refused("ann@example.test", &[], now(), "no approval token");
    refused(
        "ben@example.test",
        std::slice::from_ref(&ann),
        now(),
        "issued to ann@example.test",
    );
    let mut tampered = ann.clone();
    tampered.mac.replace_range(
        0..1,
        if tampered.mac.starts_with('0') {
            "1"
        } else {
            "0"
        },
    );
    refused("ann@example.test", &[tampered], now(), "does not verify");
    let mut bad_base = ann.clone();
    bad_base.seq = None;
    refused("ann@example.test", &[bad_base], now(), "does not verify");
    // Another change's token, an earlier round's, a stranger.
    refused(
        "ann@example.test",
        &[found(&s, 8, 2, "ann@example.test")],
        now(),
        "does not verify",
    );
    refused(
        "ann@example.test",
        &[found(&s, 7, 1, "ann@example.test")],
        now(),
        "round 1",
    );
    refused(
        "eve@example.test",
        std::slice::from_ref(&ann),
        now(),
        "not an approver",
    );
    refused("eve@example.test", &[], now(), "not an approver");
    // After the deadline, after the decision, twice.
    refused(
        "ann@example.test",
        std::slice::from_ref(&ann),
        utc(2026, 12, 3, 9, 1),
        "after the deadline",
    );
    let mut decided = rec.clone();
    decided.state = State::Approved;
    assert!(
        judge(
            &s.key,
            &decided,
            7,
            "ann@example.test",
            std::slice::from_ref(&ann),
            now()
        )
        .is_some_and(|w| w.contains("after the decision"))
    );
    let mut answered = rec.clone();
    answered.answers.push(Answer {
        approver: "ann@example.test".into(),
        approve: true,
        reason: String::new(),
    });
    assert!(
        judge(&s.key, &answered, 7, "ann@example.test", &[ann], now())
            .is_some_and(|w| w.contains("already answered"))
    );
}

// ---- the flow through the conversation rules ---------------------------------

struct Nothing;
impl Lookup for Nothing {
    fn ticket_id(&self, _: TicketNumber) -> Option<TicketId> {
        None
    }
}

fn change_settings() -> Settings {
    let mut s = settings();
    s.changes = Config {
        catalog: catalog(),
        cabs: vec![Cab {
            name: "infra".into(),
            approvers: ["ann", "ben", "cat"]
                .iter()
                .map(|n| Address::new("", &format!("{n}@example.test")))
                .collect(),
            services: vec![],
            risk: vec![],
            quorum: Quorum::AtLeast(2),
            deadline_hours: 48,
        }],
        freezes: vec![],
        manager: Some(Address::new("Max", "max@example.test")),
        zone: Tz::UTC,
    };
    s
}

fn run(
    s: &Settings,
    t: &mut TicketState,
    m: &Inbound,
    author: &Author,
    at: DateTime<Utc>,
) -> Effects {
    let sender = m.from.clone().unwrap_or_default();
    conversation::apply(
        s,
        t,
        &MailIn {
            mail: m,
            sender: &sender,
            author,
            class: &Class::Normal,
            new_ticket: false,
            may_acknowledge: false,
            bounced: None,
            known_error: None,
        },
        &Nothing,
        at,
    )
}

fn ada(s: &Settings) -> Author {
    Author::Staff(s.staff.by_email("ada@example.test").cloned().expect("ada"))
}

/// The approval request's copy for `to`, as `queue_drafts` addresses it.
fn request_for(
    s: &Settings,
    t: &TicketState,
    fx: &Effects,
    to: &str,
) -> crate::domain::ack::Outgoing {
    let d = fx
        .drafts
        .iter()
        .find(|d| matches!(d.kind, conversation::DraftKind::ApprovalRequest(_)))
        .expect("an approval request");
    let a = d.to.iter().find(|a| a.email == to).expect("recipient");
    d.address(
        s,
        a,
        crate::domain::token::Token {
            number: t.number,
            contact: crate::domain::ticket::ContactId(40),
        },
        "u1",
    )
}

fn answer_to(out: &crate::domain::ack::Outgoing, from: &str, text: &str) -> Inbound {
    let mut m = mail(from, text);
    m.to = vec![out.reply_to.clone().expect("reply-to")];
    m.in_reply_to = vec![out.message_id.clone()];
    m
}

#[test]
fn a_change_is_submitted_approved_by_two_and_forgeries_are_refused() {
    let s = change_settings();
    let mut t = ticket();
    t.kind = Kind::Change;
    let fx = run(
        &s,
        &mut t,
        &mail(
            "ada@example.test",
            "/ci db1\n/risk high\n/impact mail down for 10 minutes\n\
             /window 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin\n/submit",
        ),
        &ada(&s),
        now(),
    );
    assert_eq!(fx.flag, None, "{:?}", fx.drafts);
    let rec = t.change.as_deref().expect("record").clone();
    assert_eq!(rec.state, State::Submitted);
    assert_eq!(rec.round, 1);
    assert_eq!(rec.items, vec!["db1"]);
    assert_eq!(rec.deadline, Some(utc(2026, 12, 3, 9, 0)));
    assert_eq!(fx.process.hooks, vec!["change.submitted"]);
    assert_eq!(fx.process.items, vec!["db1"]);
    assert!(fx.process.history.iter().all(|e| !e.proof.is_empty()));
    let req = request_for(&s, &t, &fx, "ann@example.test");
    for want in [
        "CHG-000001",
        "high",
        "mail down",
        "db1",
        "email, portal, web",
        "approve",
        "reject <your reason>",
        "2026-12-03 09:00",
    ] {
        assert!(
            req.body.contains(want),
            "request lacks {want:?}:\n{}",
            req.body
        );
    }
    let reply_to = req.reply_to.clone().expect("reply-to").email;
    assert!(reply_to.contains(".a1."), "{reply_to}");

    // A forged approval: From ann, but a reply to ben's request.
    let ben_req = request_for(&s, &t, &fx, "ben@example.test");
    let customer = Author::Customer;
    let fx = run(
        &s,
        &mut t,
        &answer_to(&ben_req, "ann@example.test", "approve"),
        &customer,
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("issued to ben@example.test")),
        "{:?}",
        fx.flag
    );
    assert_eq!(fx.visibility, Visibility::Internal);
    // The owner and the manager are told, and the sender gets the reason.
    assert_eq!(fx.drafts.len(), 2);
    let to: Vec<&str> = fx.drafts[0].to.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(to, vec!["ada@example.test", "max@example.test"]);
    assert!(fx.drafts[0].subject.contains("Approval answer refused"));
    assert!(fx.drafts[0].body.contains("issued to ben@example.test"));
    assert_eq!(fx.drafts[1].kind, conversation::DraftKind::CommandError);
    assert_eq!(fx.drafts[1].to, vec![Address::new("", "ann@example.test")]);
    assert!(
        fx.drafts[1]
            .subject
            .starts_with("Not counted: [ACME CHG-000001]")
    );
    assert!(fx.drafts[1].body.contains("issued to ben@example.test"));
    assert_eq!(t.change.as_deref().map(|r| r.answers.len()), Some(0));
    assert_eq!(fx.process.history[0].action, "refused");

    // Ann approves: open; Ben approves: approved, owner and manager told.
    let fx = run(
        &s,
        &mut t,
        &answer_to(&req, "ann@example.test", "Approve\n\n> quoted request"),
        &customer,
        now(),
    );
    assert_eq!(fx.flag, None);
    assert_eq!(t.change.as_deref().map(|r| r.state), Some(State::Submitted));
    let fx = run(
        &s,
        &mut t,
        &answer_to(&ben_req, "ben@example.test", "approve"),
        &customer,
        now(),
    );
    assert_eq!(t.change.as_deref().map(|r| r.state), Some(State::Approved));
    assert_eq!(fx.process.hooks, vec!["change.approved"]);
    let notice = fx.drafts.first().expect("decision mail");
    let to: Vec<&str> = notice.to.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(to, vec!["ada@example.test", "max@example.test"]);
    assert!(notice.body.contains("is approved"));

    // Cat answers after the decision: refused, nothing changes.
    let cat_req = request_for(&s, &t, &fx_of_submit(&s), "cat@example.test");
    let fx = run(
        &s,
        &mut t,
        &answer_to(&cat_req, "cat@example.test", "reject no"),
        &customer,
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("after the decision")),
        "{:?}",
        fx.flag
    );
    assert_eq!(t.change.as_deref().map(|r| r.state), Some(State::Approved));
}

/// The drafts of a submission of ticket 1 (for the requests' addresses).
fn fx_of_submit(s: &Settings) -> Effects {
    let mut t = ticket();
    t.kind = Kind::Change;
    run(
        s,
        &mut t,
        &mail(
            "ada@example.test",
            "/risk low\n/window 2026-12-10T22:00 2026-12-11T02:00\n/submit",
        ),
        &ada(s),
        now(),
    )
}

#[test]
fn two_rejections_of_three_with_a_quorum_of_two_reject() {
    let s = change_settings();
    let mut t = ticket();
    t.kind = Kind::Change;
    let fx = run(
        &s,
        &mut t,
        &mail(
            "ada@example.test",
            "/risk low\n/window 2026-12-10T22:00 2026-12-11T02:00\n/submit",
        ),
        &ada(&s),
        now(),
    );
    let customer = Author::Customer;
    for who in ["ann", "ben"] {
        let email = format!("{who}@example.test");
        let req = request_for(&s, &t, &fx, &email);
        run(
            &s,
            &mut t,
            &answer_to(&req, &email, "reject no rollback plan"),
            &customer,
            now(),
        );
    }
    let rec = t.change.as_deref().expect("record");
    assert_eq!(rec.state, State::Rejected);
    assert_eq!(rec.answers[0].reason, "no rollback plan");
}

#[test]
fn change_commands_are_checked_all_or_nothing() {
    let s = change_settings();
    // On a ticket that is not a change.
    let mut t = ticket();
    let fx = run(
        &s,
        &mut t,
        &mail("ada@example.test", "/submit"),
        &ada(&s),
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("not a change")),
        "{:?}",
        fx.flag
    );
    assert_eq!(fx.drafts.len(), 1);
    assert_eq!(fx.drafts[0].kind, conversation::DraftKind::CommandError);
    assert!(t.change.is_none());
    // A malformed window refuses the whole reply.
    let mut t = ticket();
    t.kind = Kind::Change;
    let fx = run(
        &s,
        &mut t,
        &mail(
            "ada@example.test",
            "/risk high\n/window 2026-12-11 02:00 2026-12-10 22:00",
        ),
        &ada(&s),
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("before it starts")),
        "{:?}",
        fx.flag
    );
    assert!(t.change.is_none());
    assert!(fx.process.history.is_empty());
    // /submit without a window; an unknown item names the known ones.
    let fx = run(
        &s,
        &mut t,
        &mail("ada@example.test", "/risk high\n/submit"),
        &ada(&s),
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("set the window first")),
        "{:?}",
        fx.flag
    );
    let fx = run(
        &s,
        &mut t,
        &mail("ada@example.test", "/ci db9"),
        &ada(&s),
        now(),
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("known: email, web")),
        "{:?}",
        fx.flag
    );
    // /ci on an incident records the item, no change record row.
    let mut t = ticket();
    let fx = run(
        &s,
        &mut t,
        &mail("ada@example.test", "/ci MX1"),
        &ada(&s),
        now(),
    );
    assert_eq!(fx.flag, None);
    assert_eq!(fx.process.items, vec!["mx1"]);
    assert!(!fx.process.touched);
}

#[test]
fn a_resubmission_invalidates_the_tokens_of_the_round_before() {
    let s = change_settings();
    let mut t = ticket();
    t.kind = Kind::Change;
    let first = run(
        &s,
        &mut t,
        &mail(
            "ada@example.test",
            "/risk low\n/window 2026-12-10T22:00 2026-12-11T02:00\n/submit",
        ),
        &ada(&s),
        now(),
    );
    let old = request_for(&s, &t, &first, "ann@example.test");
    run(
        &s,
        &mut t,
        &mail("ada@example.test", "/submit"),
        &ada(&s),
        now(),
    );
    assert_eq!(t.change.as_deref().map(|r| r.round), Some(2));
    let fx = run(
        &s,
        &mut t,
        &answer_to(&old, "ann@example.test", "approve"),
        &Author::Customer,
        now(),
    );
    assert!(
        fx.flag.as_deref().is_some_and(|f| f.contains("round 1")),
        "{:?}",
        fx.flag
    );
    assert_eq!(t.change.as_deref().map(|r| r.answers.len()), Some(0));
}

#[test]
fn an_answer_after_the_deadline_is_refused() {
    let s = change_settings();
    let mut t = ticket();
    t.kind = Kind::Change;
    let fx = run(
        &s,
        &mut t,
        &mail(
            "ada@example.test",
            "/risk low\n/window 2026-12-10T22:00 2026-12-11T02:00\n/submit",
        ),
        &ada(&s),
        now(),
    );
    let req = request_for(&s, &t, &fx, "cat@example.test");
    let late = now() + Duration::hours(49);
    let fx = run(
        &s,
        &mut t,
        &answer_to(&req, "cat@example.test", "approve"),
        &Author::Customer,
        late,
    );
    assert!(
        fx.flag
            .as_deref()
            .is_some_and(|f| f.contains("after the deadline")),
        "{:?}",
        fx.flag
    );
    assert_eq!(apply::chg(&t).to_string(), "CHG-000001");
}
