use chrono::TimeZone;
use sea_orm::ActiveValue::Set;

use super::*;
use crate::config::{ServiceConfig, SupplierConfig};
use crate::store::entity::contact;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0)
        .single()
        .expect("valid time")
}

fn h(n: i64) -> Duration {
    Duration::hours(n)
}

#[test]
fn outcome_of_one_target() {
    let now = at(20, 12);
    let due = Some(at(20, 10));
    assert_eq!(outcome(Some(at(20, 9)), due, now), Outcome::Met);
    assert_eq!(
        outcome(Some(at(20, 10)), due, now),
        Outcome::Met,
        "on the due instant"
    );
    assert_eq!(outcome(Some(at(20, 11)), due, now), Outcome::Breached);
    assert_eq!(
        outcome(None, due, now),
        Outcome::Breached,
        "missing past due"
    );
    assert_eq!(outcome(None, Some(at(20, 13)), now), Outcome::Open);
    assert_eq!(outcome(Some(at(20, 9)), None, now), Outcome::NoTarget);
    assert_eq!(outcome(None, None, now), Outcome::NoTarget);
}

#[test]
fn age_buckets_split_at_1_3_7_30_days() {
    let cases = [
        (Duration::seconds(-5), AgeBucket::UnderOneDay),
        (Duration::zero(), AgeBucket::UnderOneDay),
        (h(23), AgeBucket::UnderOneDay),
        (h(24), AgeBucket::OneToThreeDays),
        (h(71), AgeBucket::OneToThreeDays),
        (h(72), AgeBucket::ThreeToSevenDays),
        (
            Duration::days(7) - Duration::seconds(1),
            AgeBucket::ThreeToSevenDays,
        ),
        (Duration::days(7), AgeBucket::SevenToThirtyDays),
        (Duration::days(29), AgeBucket::SevenToThirtyDays),
        (Duration::days(30), AgeBucket::OverThirtyDays),
        (Duration::days(400), AgeBucket::OverThirtyDays),
    ];
    for (age, want) in cases {
        assert_eq!(AgeBucket::of(age), want, "age {age}");
    }
    // The bounds the database counts with agree with `of`, and the buckets
    // cover every age once.
    let mut expected_lower = Duration::zero();
    for b in AgeBucket::ALL {
        let (lower, upper) = b.bounds();
        assert_eq!(
            lower, expected_lower,
            "{b:?} starts where the previous ended"
        );
        assert_eq!(AgeBucket::of(lower), b);
        if let Some(u) = upper {
            assert_eq!(AgeBucket::of(u - Duration::seconds(1)), b);
            expected_lower = u;
        }
    }
    let labels: Vec<_> = AgeBucket::ALL.iter().map(|b| b.label()).collect();
    assert_eq!(labels, ["<1d", "1-3d", "3-7d", "7-30d", ">30d"]);
    assert_eq!(
        serde_json::to_value(AgeBucket::OverThirtyDays).expect("serialises"),
        ">30d"
    );
}

#[test]
fn volumes_have_every_day_of_the_period() {
    let v = volumes(
        at(1, 0),
        at(4, 0),
        &[at(1, 9), at(1, 23), at(3, 0), at(4, 0), at(30, 1)],
        &[at(2, 12), at(1, 5)],
    );
    let got: Vec<_> = v
        .iter()
        .map(|d| (d.date.format("%d").to_string(), d.created, d.resolved))
        .collect();
    assert_eq!(
        got,
        [
            ("01".to_string(), 2, 1),
            ("02".to_string(), 0, 1),
            ("03".to_string(), 1, 0)
        ]
    );
    // A period not on midnight covers the days it touches.
    assert_eq!(volumes(at(1, 12), at(2, 1), &[], &[]).len(), 2);
    assert!(volumes(at(2, 0), at(1, 0), &[], &[]).is_empty());
}

fn facts(service: Option<&str>, priority: &str, created: DateTime<Utc>) -> TicketFacts {
    TicketFacts {
        service: service.map(str::to_string),
        priority: priority.into(),
        status: "open".into(),
        created_at: created,
        updated_at: created,
        response_due_at: None,
        responded_at: None,
        resolution_due_at: None,
        resolved_at: None,
    }
}

fn levels() -> ServiceLevels {
    let mut l = ServiceLevels::default();
    for name in ["Network", "Email"] {
        l.services.push(ServiceConfig {
            name: name.into(),
            policy: "standard".into(),
            escalation: None,
            manager: None,
        });
    }
    l.suppliers.push(SupplierConfig {
        name: "Fibre Co".into(),
        contacts: Vec::new(),
        services: Vec::new(),
        response_target: h(4),
        resolution_target: h(24),
        calendar: None,
        contract_end: None,
        review: None,
        manager: "mgr@example.test".into(),
    });
    l.suppliers.push(SupplierConfig {
        name: "Idle Ltd".into(),
        response_target: h(1),
        resolution_target: h(8),
        ..l.suppliers[0].clone()
    });
    l
}

#[test]
fn sla_rows_group_by_service_and_priority() {
    let now = at(20, 12);
    let mut a = facts(Some("Email"), "normal", at(20, 8));
    a.response_due_at = Some(at(20, 9));
    a.responded_at = Some(at(20, 8));
    a.resolution_due_at = Some(at(20, 16));
    let mut b = facts(Some("Email"), "normal", at(20, 8));
    b.response_due_at = Some(at(20, 9));
    b.resolution_due_at = Some(at(20, 16));
    // Resolved without an answer: the response clock stopped at resolution.
    let mut c = facts(Some("Email"), "normal", at(20, 8));
    c.response_due_at = Some(at(20, 9));
    c.resolution_due_at = Some(at(20, 10));
    c.resolved_at = Some(at(20, 8));
    // Closed without passing through resolved: the last change counts.
    let mut d = facts(Some("Network"), "urgent", at(20, 8));
    d.status = "closed".into();
    d.updated_at = at(20, 11);
    d.resolution_due_at = Some(at(20, 10));
    let e = facts(None, "low", at(20, 8));
    let f = facts(Some("Retired"), "high", at(20, 8));
    let g = facts(Some("Email"), "urgent", at(20, 8));

    let rows = sla_rows(&levels(), &[a, b, c, d, e, f, g], now);
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (r.service.as_deref(), r.priority.as_str(), r.tickets))
        .collect();
    assert_eq!(
        keys,
        [
            (Some("Network"), "urgent", 1),
            (Some("Email"), "urgent", 1),
            (Some("Email"), "normal", 3),
            (Some("Retired"), "high", 1),
            (None, "low", 1),
        ],
        "configured services in order, then unknown ones, then none; urgent first"
    );
    let email = &rows[2];
    assert_eq!(
        (
            email.response.met,
            email.response.breached,
            email.response.open
        ),
        (2, 1, 0)
    );
    assert_eq!(email.response.met_percent, Some(66.7));
    assert_eq!(
        (
            email.resolution.met,
            email.resolution.breached,
            email.resolution.open
        ),
        (1, 0, 2)
    );
    assert_eq!(email.resolution.met_percent, Some(100.0));
    assert_eq!(rows[0].resolution.breached, 1);
    assert_eq!(rows[0].response.no_target, 1);
    assert_eq!(rows[4].response.met_percent, None);
}

fn escalation(supplier: &str, at_: DateTime<Utc>) -> supplier_escalation::Model {
    supplier_escalation::Model {
        id: 0,
        ticket_id: 1,
        supplier: supplier.into(),
        note: String::new(),
        escalated_at: at_,
        responded_at: None,
        resolved_at: None,
    }
}

#[test]
fn supplier_rows_measure_against_the_contract() {
    let now = at(20, 12);
    let mut a = escalation("Fibre Co", at(18, 0));
    a.responded_at = Some(at(18, 1));
    a.resolved_at = Some(at(18, 10));
    let mut b = escalation("fibre co", at(18, 0));
    b.responded_at = Some(at(18, 3));
    let mut c = escalation("Fibre Co", at(18, 0));
    c.responded_at = Some(at(18, 9));
    let d = escalation("Fibre Co", at(20, 10)); // 2 h, no answer yet: pending
    let e = escalation("Fibre Co", at(19, 0)); // 36 h, no answer: late
    let old = escalation("Gone Inc", at(19, 0));

    let rows = supplier_rows(&levels(), &[a, b, c, d, e, old], now);
    let names: Vec<_> = rows.iter().map(|r| r.supplier.as_str()).collect();
    assert_eq!(names, ["Fibre Co", "Idle Ltd", "Gone Inc"]);
    let fibre = &rows[0];
    assert_eq!(fibre.escalations, 5);
    assert_eq!(fibre.open, 4);
    let r = &fibre.response;
    assert_eq!(r.target_secs, Some(4 * 3600));
    assert_eq!(r.done, 3);
    assert_eq!(r.median_secs, Some(3 * 3600));
    assert_eq!(r.worst_secs, Some(9 * 3600));
    assert_eq!((r.within_target, r.late), (2, 2));
    assert_eq!(r.within_target_percent, Some(50.0));
    let s = &fibre.resolution;
    assert_eq!((s.done, s.within_target, s.late), (1, 1, 3));
    assert_eq!(s.median_secs, Some(10 * 3600));

    let idle = &rows[1];
    assert_eq!(idle.escalations, 0);
    assert_eq!(idle.response.within_target_percent, None);
    assert_eq!(rows[2].response.target_secs, None, "no contract any more");
    assert_eq!(rows[2].response.late, 0);
}

#[test]
fn median_of_even_and_odd_counts() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[5]), Some(5));
    assert_eq!(median(&[1, 3]), Some(2));
    assert_eq!(median(&[1, 2, 10]), Some(2));
}

/// The queries, on an in-memory SQLite database (PostgreSQL: the e2e tests).
#[tokio::test]
async fn figures_from_the_database() {
    let store = Store::connect("sqlite::memory:", 1)
        .await
        .expect("in-memory SQLite");
    store.migrate().await.expect("migrations");
    let db = store.conn();
    let now = at(25, 12);
    contact::Entity::insert(contact::ActiveModel {
        id: Set(1),
        email: Set("jo@example.test".into()),
        name: Set("Jo".into()),
        created_at: Set(at(1, 0)),
        ack_window_start: Set(None),
        ack_count: Set(0),
    })
    .exec(db)
    .await
    .expect("contact");
    let tickets = [
        // (created, status, resolved, response due, responded)
        (at(24, 9), "open", None, Some(at(24, 10)), Some(at(24, 9))),
        (at(24, 11), "new", None, Some(at(24, 12)), None),
        (at(25, 8), "resolved", Some(at(25, 9)), None, None),
        (at(10, 8), "pending", None, None, None),
        (at(20, 8), "open", None, None, None),
        (at(1, 8), "closed", None, None, None),
    ];
    for (i, (created, status, resolved, due, responded)) in tickets.into_iter().enumerate() {
        ticket::Entity::insert(ticket::ActiveModel {
            id: Set(i as i64 + 1),
            number: Set(format!("INC-{:06}", i + 1)),
            kind: Set("incident".into()),
            subject: Set("s".into()),
            status: Set(status.into()),
            priority: Set("normal".into()),
            customer_id: Set(1),
            mailbox: Set("support".into()),
            created_at: Set(created),
            updated_at: Set(created),
            assignee: Set(None),
            team: Set(None),
            fields: Set("{}".into()),
            resolved_at: Set(resolved),
            root_message_id: Set(None),
            last_public_message_id: Set(None),
            service: Set(Some("Email".into())),
            response_due_at: Set(due),
            resolution_due_at: Set(None),
            responded_at: Set(responded),
            sla_next_at: Set(None),
        })
        .exec(db)
        .await
        .expect("ticket");
    }
    supplier_escalation::Entity::insert(supplier_escalation::ActiveModel {
        ticket_id: Set(1),
        supplier: Set("Fibre Co".into()),
        note: Set(String::new()),
        escalated_at: Set(at(24, 10)),
        responded_at: Set(Some(at(24, 12))),
        resolved_at: Set(None),
        ..Default::default()
    })
    .exec(db)
    .await
    .expect("escalation");

    let f = figures(
        &store,
        &levels(),
        &Default::default(),
        at(24, 0),
        at(26, 0),
        now,
    )
    .await
    .expect("figures");
    let days: Vec<_> = f.volume.iter().map(|d| (d.created, d.resolved)).collect();
    assert_eq!(days, [(2, 0), (1, 1)]);
    assert_eq!(f.sla.len(), 1);
    let r = &f.sla[0].response;
    assert_eq!((r.met, r.breached, r.no_target), (1, 1, 1), "{r:?}");
    let backlog: Vec<_> = f.backlog.iter().map(|b| b.tickets).collect();
    assert_eq!(backlog, [0, 2, 1, 1, 0]);
    assert_eq!(f.suppliers[0].escalations, 1);
    assert_eq!(f.suppliers[0].response.median_secs, Some(2 * 3600));
    assert_eq!(f.suppliers[0].open, 1);
}
