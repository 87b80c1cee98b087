//! Problem management in one batch: a known error made by one mail answers
//! a new incident later in the same batch, and a problem solved after it
//! tells every linked incident, that one included; with `on_resolve =
//! "notify"` the incidents stay open and their watchers are told.

use chrono::Duration;

use super::{Desk, Mail, assert_snapshot};
use crate::domain::problem::OnResolve;

fn customer(from: &str, subject: &str, id: &str, body: &str) -> Mail {
    Mail::new(from, subject, id).body(body)
}

#[tokio::test]
async fn a_problem_solved_in_the_batch_that_made_its_known_error() {
    let mut desk = Desk::new().await;
    let mut settings = (*desk.app.settings).clone();
    settings.problem_on_resolve = OnResolve::Notify;
    desk.app.settings = std::sync::Arc::new(settings);

    desk.deliver(&[
        &customer(
            "Jo <jo@cust.test>",
            "Printer on fire",
            "m1@cust.test",
            "Flames!\n",
        )
        .raw(),
        &customer(
            "Kim <kim@cust.test>",
            "Smoke",
            "m2@cust.test",
            "The printer smokes.\n",
        )
        .raw(),
    ])
    .await;
    let note1 = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 1 AND kind = 'notification'")
        .await;
    let note2 = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 2 AND kind = 'notification'")
        .await;
    desk.advance(Duration::minutes(10));
    let opened = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME INC-000001] Printer on fire",
        "a1@acme.test",
    )
    .replying_to(&note1)
    .body("/problem Printers overheat\n");
    desk.send(&opened).await;
    let prb_note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 3 AND kind = 'notification'")
        .await;

    desk.advance(Duration::minutes(10));
    let link = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME INC-000002] Smoke",
        "a2@acme.test",
    )
    .replying_to(&note2)
    .body("/link PRB-000003\n");
    let known = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME PRB-000003] Printers overheat",
        "a3@acme.test",
    )
    .replying_to(&prb_note)
    .body(
        "/workaround Switch the printer off at the wall.\n/knownerror printer, fire|smoke|smokes\n",
    );
    let lee = customer(
        "Lee <lee@cust.test>",
        "Printer caught fire",
        "m3@cust.test",
        "Help\n",
    );
    let solve = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME PRB-000003] Printers overheat",
        "a4@acme.test",
    )
    .replying_to(&prb_note)
    .body("/resolve\n\nThe fans are replaced.\n");
    desk.deliver(&[&link.raw(), &known.raw(), &lee.raw(), &solve.raw()])
        .await;

    assert_snapshot(
        &desk
            .rows("SELECT number, status, kind, assignee, service FROM tickets ORDER BY id")
            .await,
        r##"
        number=INC-000001 status=new kind=incident service=email
        number=INC-000002 status=new kind=incident service=email
        number=PRB-000003 status=resolved kind=problem assignee=ada@acme.test
        number=INC-000004 status=new kind=incident service=email
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT ticket_id, other_id, reason FROM ticket_links ORDER BY ticket_id")
            .await,
        r##"
        ticket_id=1 other_id=3 reason=problem
        ticket_id=2 other_id=3 reason="linked by staff"
        ticket_id=4 other_id=3 reason="known error"
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT root_cause, workaround, known_error, keywords FROM problems")
            .await,
        r##"
        workaround="Switch the printer off at the wall." known_error=1 keywords="printer, fire|smoke|smokes"
        "##,
    );
    // Each incident: its customer told once, its watchers (group network:
    // Ada) told it is theirs to finish; Lee's acknowledgement carried the
    // workaround.
    assert_snapshot(
        &desk
            .rows(
                "SELECT ticket_id, kind, recipients FROM outbox WHERE id > 4 ORDER BY ticket_id, id",
            )
            .await,
        r##"
        ticket_id=1 kind=problem-resolved recipients=jo@cust.test
        ticket_id=1 kind=notification recipients=ada@acme.test
        ticket_id=2 kind=problem-resolved recipients=kim@cust.test
        ticket_id=2 kind=notification recipients=ada@acme.test
        ticket_id=3 kind=notification recipients=ada@acme.test
        ticket_id=4 kind=acknowledgement recipients=lee@cust.test
        ticket_id=4 kind=notification recipients=ada@acme.test
        ticket_id=4 kind=problem-resolved recipients=lee@cust.test
        ticket_id=4 kind=notification recipients=ada@acme.test
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT ticket_id, hook FROM events WHERE ticket_id = 3 ORDER BY id")
            .await,
        r##"
        ticket_id=3 hook=ticket.created
        ticket_id=3 hook=message.received
        ticket_id=3 hook=message.received
        ticket_id=3 hook=ticket.updated
        ticket_id=3 hook=ticket.resolved
        "##,
    );
    let ack = desk
        .value(
            "SELECT CAST(raw AS TEXT) FROM outbox WHERE ticket_id = 4 AND kind = 'acknowledgement'",
        )
        .await;
    assert!(ack.contains("Switch the printer off at the wall."), "{ack}");
    let told = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE ticket_id = 2 AND kind = 'problem-resolved'")
        .await;
    assert!(told.contains("The fans are replaced."), "{told}");
    assert!(told.contains("In-Reply-To: <m2@cust.test>"), "{told}");
}

/// Resolved through its problem, an incident is resolved as by staff: its
/// customer gets the solution and, when the desk asks for ratings, the
/// rating question, recorded so the answer finds it.
#[tokio::test]
async fn a_solved_problem_resolves_its_incidents_and_asks_for_a_rating() {
    let mut desk = Desk::new().await;
    let mut settings = (*desk.app.settings).clone();
    settings.relationship.enabled = true;
    desk.app.settings = std::sync::Arc::new(settings);
    desk.send(&customer(
        "Jo <jo@cust.test>",
        "VPN drops",
        "m1@cust.test",
        "Again.\n",
    ))
    .await;
    let note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 1 AND kind = 'notification'")
        .await;
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] VPN",
            "a1@acme.test",
        )
        .replying_to(&note)
        .body("/problem VPN drops\n"),
    )
    .await;
    let prb_note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 2 AND kind = 'notification'")
        .await;
    desk.advance(Duration::hours(1));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME PRB-000002] VPN",
            "a2@acme.test",
        )
        .replying_to(&prb_note)
        .body("/rootcause A full lease pool.\n/resolve\n"),
    )
    .await;
    assert_snapshot(
        &desk
            .rows("SELECT number, status, resolved_at FROM tickets ORDER BY id")
            .await,
        r##"
        number=INC-000001 status=resolved resolved_at=T0+1h
        number=PRB-000002 status=resolved resolved_at=T0+1h
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT ticket_id, kind, recipients FROM outbox WHERE id > 3 ORDER BY id")
            .await,
        r##"
        ticket_id=1 kind=problem-resolved recipients=jo@cust.test
        ticket_id=1 kind=satisfaction-request recipients=jo@cust.test
        "##,
    );
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM satisfaction_requests WHERE ticket_id = 1")
            .await,
        "1"
    );
    let told = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE kind = 'problem-resolved'")
        .await;
    assert!(told.contains("The cause: A full lease pool."), "{told}");
    assert!(told.contains("Your ticket is now resolved."), "{told}");
    // Its events, as for a resolve by staff.
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM events WHERE ticket_id = 1 AND hook = 'ticket.resolved'")
            .await,
        "1"
    );
}
