//! The SLA job: `service_level::check` over tickets whose next check has
//! come, with the clock moved past their due times.

use chrono::Duration;
use sea_orm::ConnectionTrait;

use super::{Desk, Mail, Table, assert_snapshot, relative};
use crate::service_level::{CheckStats, check};

const SLA: &[Table] = &[
    Table::Tickets,
    Table::SlaEvents,
    Table::Messages,
    Table::Outbox,
    Table::Events,
];

/// Jo's ticket, at T0, of service `email` (from the mailbox), normal
/// priority: response due T0+1h (warning at 80%: T0+48m), resolution T0+8h.
async fn with_ticket() -> Desk {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    desk
}

async fn run(desk: &Desk) -> CheckStats {
    check(&desk.app.store, &desk.app.settings, desk.now())
        .await
        .expect("the SLA check runs")
}

fn stats(s: CheckStats) -> String {
    format!(
        "tickets={} warnings={} breaches={} mails={}",
        s.tickets, s.warnings, s.breaches, s.mails
    )
}

/// Before its first threshold the ticket is not read; past it, the
/// warning is recorded, noted, mailed to the group and raised as an event,
/// once; past the due time, the breach also goes to the service's
/// escalation contact.
#[tokio::test]
async fn the_check_warns_and_breaches_once() {
    let desk = with_ticket().await;
    assert_eq!(
        desk.rows("SELECT sla_next_at AS next FROM tickets").await,
        "next=T0+48m",
        "ingest set the next check to the response warning"
    );
    let mut log = Vec::new();
    for at in [47, 50, 50, 90] {
        desk.set(super::t0() + Duration::minutes(at));
        log.push(format!(
            "{}: {}",
            relative(desk.now()),
            stats(run(&desk).await)
        ));
    }
    assert_snapshot(
        &log.join("\n"),
        r##"
        T0+47m: tickets=0 warnings=0 breaches=0 mails=0
        T0+50m: tickets=1 warnings=1 breaches=0 mails=1
        T0+50m: tickets=0 warnings=0 breaches=0 mails=0
        T0+1h30m: tickets=1 warnings=0 breaches=1 mails=2
        "##,
    );
    assert_snapshot(
        &desk.snapshot(SLA).await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="VPN down" created=T0 updated=T0 response_due=T0+1h resolution_due=T0+8h next_check=T0+6h24m
        [sla_events]
        id=1 ticket=INC-000001 target=response kind=warning due=T0+1h at=T0+50m
        id=2 ticket=INC-000001 target=response kind=breach due=T0+1h at=T0+1h30m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="VPN down" text="The VPN is down.\n" raw_bytes=176 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: VPN down" text="Hello Jo Customer, …" raw_bytes=923 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] VPN down" text="New ticket. …" raw_bytes=993 at=T0
        id=4 ticket=INC-000001 dir=note author=desk class=sla-warning vis=internal rule=desk from="" to="" subject="" text="SLA warning: ticket INC-000001 is close to its first-response target. …" at=T0+50m
        id=5 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="SLA warning (response): [ACME INC-000001] VPN down" text="SLA warning: ticket INC-000001 is close to its first-response target. …" raw_bytes=921 at=T0+50m
        id=6 ticket=INC-000001 dir=note author=desk class=sla-breach vis=internal rule=desk from="" to="" subject="" text="SLA breach: ticket INC-000001 has BREACHED its first-response target. …" at=T0+1h30m
        id=7 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="SLA BREACH (response): [ACME INC-000001] VPN down" text="SLA breach: ticket INC-000001 has BREACHED its first-response target. …" raw_bytes=918 at=T0+1h30m
        id=8 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to=manager@acme.test subject="SLA BREACH (response): [ACME INC-000001] VPN down" text="SLA breach: ticket INC-000001 has BREACHED its first-response target. …" raw_bytes=905 at=T0+1h30m
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=923 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=993 at=T0 next=T0
        id=3 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=921 at=T0+50m next=T0+50m
        id=4 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=918 at=T0+1h30m next=T0+1h30m
        id=5 ticket=INC-000001 kind=notification to=manager@acme.test status=pending attempts=0 raw_bytes=905 at=T0+1h30m next=T0+1h30m
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=sla.warning status=pending t_status=new t_customer=jo@cust.test data="{\"due\":\"2026-03-02T10:00:00+00:00\",\"service\":\"email\",\"target\":\"response\"}" at=T0+50m
        id=4 ticket=INC-000001 hook=sla.breached status=pending t_status=new t_customer=jo@cust.test data="{\"due\":\"2026-03-02T10:00:00+00:00\",\"service\":\"email\",\"target\":\"response\"}" at=T0+1h30m
        "##,
    );
}

/// An alert recorded once is never told again, even when the ticket is
/// read again (another daemon, a next check put back by hand): the unique
/// row in `sla_events` decides.
#[tokio::test]
async fn a_ticket_checked_again_is_not_alerted_again() {
    let desk = with_ticket().await;
    desk.set(super::t0() + Duration::minutes(50));
    let first = run(&desk).await;
    let before = desk.snapshot(SLA).await;
    desk.app
        .store
        .conn()
        .execute_unprepared("UPDATE tickets SET sla_next_at = '2026-03-02T09:00:00+00:00'")
        .await
        .map(|_| ())
        .expect("put the next check back");
    let second = run(&desk).await;
    assert_snapshot(
        &format!("{}\n{}", stats(first), stats(second)),
        r##"
        tickets=1 warnings=1 breaches=0 mails=1
        tickets=1 warnings=0 breaches=0 mails=0
        "##,
    );
    let after = desk.snapshot(SLA).await;
    assert_eq!(
        before
            .lines()
            .filter(|l| !l.starts_with("number="))
            .collect::<Vec<_>>(),
        after
            .lines()
            .filter(|l| !l.starts_with("number="))
            .collect::<Vec<_>>(),
        "the second run adds no row"
    );
    assert_snapshot(
        &desk.rows(super::Table::Tickets.sql()).await,
        r##"
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="VPN down" created=T0 updated=T0 response_due=T0+1h resolution_due=T0+8h next_check=T0+1h
        "##,
    );
}

/// `/status pending` stops the clocks; the customer's answer restarts them
/// and the due times move by the time spent pending; an answer from staff
/// stops the response clock for good.
#[tokio::test]
async fn a_pending_ticket_stops_its_clock_and_an_answer_ends_the_response_target() {
    let desk = with_ticket().await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.set(super::t0() + Duration::minutes(10));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] VPN down",
            "a1@acme.test",
        )
        .replying_to(&note)
        .body("/status pending\n/note\nWaiting for Jo's logs.\n"),
    )
    .await;
    desk.set(super::t0() + Duration::hours(3));
    let paused = run(&desk).await;
    let ack = desk.sent_id("acknowledgement", "jo@cust.test").await;
    desk.send(
        &Mail::new(
            "Jo Customer <jo@cust.test>",
            "Re: [ACME INC-000001] VPN down",
            "v2@cust.test",
        )
        .replying_to(&ack)
        .body("Here are the logs.\n"),
    )
    .await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.set(super::t0() + Duration::hours(3) + Duration::minutes(5));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] VPN down",
            "a2@acme.test",
        )
        .replying_to(&note)
        .body("Thanks, looking at them.\n"),
    )
    .await;
    desk.set(super::t0() + Duration::hours(12));
    let late = run(&desk).await;
    assert_snapshot(
        &format!("{}\n{}", stats(paused), stats(late)),
        r##"
        tickets=0 warnings=0 breaches=0 mails=0
        tickets=1 warnings=0 breaches=1 mails=2
        "##,
    );
    assert_snapshot(
        &desk
            .snapshot(&[Table::Tickets, Table::SlaPauses, Table::SlaEvents])
            .await,
        r##"
        [tickets]
        number=INC-000001 status=open priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="VPN down" created=T0 updated=T0+3h5m responded=T0+3h5m response_due=T0+3h50m resolution_due=T0+10h50m
        [sla_pauses]
        id=1 ticket=INC-000001 from=T0+10m until=T0+3h
        [sla_events]
        id=1 ticket=INC-000001 target=resolution kind=breach due=T0+10h50m at=T0+12h
        "##,
    );
}
