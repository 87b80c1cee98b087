//! Supplier management: escalation by a staff command, the supplier's
//! answer, resolution, and the review job's ticket.

use chrono::{DateTime, Duration, Utc};

use super::{Desk, Mail, Table, assert_snapshot, t0};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// Ada's reply to the latest notification she got on `ticket`, as a mail.
async fn ada_mail(desk: &Desk, ticket: &str, id: &str, body: &str) -> String {
    let note = desk
        .value(&format!(
            "SELECT o.message_id FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             WHERE t.number = '{ticket}' AND o.kind = 'notification' \
             AND o.recipients = 'ada@acme.test' ORDER BY o.id DESC LIMIT 1"
        ))
        .await;
    Mail::new(
        "Ada Lovelace <ada@acme.test>",
        &format!("Re: [ACME {ticket}] escalation"),
        id,
    )
    .replying_to(&note)
    .body(body)
    .raw()
}

/// Ada's reply to the latest notification she got on `ticket`.
async fn ada(desk: &Desk, ticket: &str, id: &str, body: &str) {
    let mail = ada_mail(desk, ticket, id, body).await;
    desk.deliver(&[&mail]).await;
}

/// Two tickets escalated to NetCo at T0+1h5m: INC-000001 (Jo's, since
/// T0), answered by NetCo at T0+2h and resolved at T0+3h; INC-000002
/// (Bo's, since T0+1h) never answered. Both escalations come in one batch.
async fn escalated() -> Desk {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    desk.set(t0() + Duration::hours(1));
    desk.send(
        &Mail::new("Bo Customer <bo@cust.test>", "Line dead", "b1@cust.test").body("No line.\n"),
    )
    .await;
    desk.set(t0() + Duration::minutes(65));
    let first = ada_mail(
        &desk,
        "INC-000001",
        "a1@acme.test",
        "/supplier NetCo the router in room 4 is dead\n",
    )
    .await;
    let second = ada_mail(&desk, "INC-000002", "a2@acme.test", "/supplier netco\n").await;
    desk.deliver(&[&first, &second]).await;
    desk.set(t0() + Duration::hours(2));
    let escalation = desk
        .value("SELECT message_id FROM outbox WHERE kind = 'supplier-escalation' AND ticket_id = 1")
        .await;
    desk.send(
        &Mail::new(
            "NetCo NOC <noc@netco.test>",
            "Re: [ACME INC-000001] VPN down",
            "n1@netco.test",
        )
        .replying_to(&escalation)
        .body("Technician dispatched.\n"),
    )
    .await;
    desk.set(t0() + Duration::hours(3));
    ada(&desk, "INC-000001", "a3@acme.test", "/resolve\n").await;
    desk
}

/// The second ticket escalated to a supplier, in a later batch than the
/// first, is stored: the supplier's contact is looked up with the batch's
/// other addresses. (It was not: the escalation mail got a second contact
/// row for the address, the batch failed on `contacts.email`'s unique
/// index, and the daemon quarantined Ada's reply.)
#[tokio::test]
async fn a_second_escalation_to_a_supplier_in_a_later_batch_is_stored() {
    let desk = Desk::new().await;
    for (who, id) in [("jo", "v1"), ("bo", "b1")] {
        desk.send(
            &Mail::new(
                &format!("{who}@cust.test"),
                "VPN down",
                &format!("{id}@cust.test"),
            )
            .body("The VPN is down.\n"),
        )
        .await;
    }
    ada(&desk, "INC-000001", "a1@acme.test", "/supplier NetCo\n").await;
    desk.advance(Duration::minutes(1));
    let second = ada_mail(&desk, "INC-000002", "a2@acme.test", "/supplier NetCo\n").await;
    let stats = desk.try_deliver(&[&second]).await;
    assert!(stats.is_ok(), "the batch is stored: {stats:?}");
    assert_snapshot(
        &desk
            .rows(
                "SELECT t.number, supplier FROM supplier_escalations s \
                 JOIN tickets t ON t.id = s.ticket_id ORDER BY s.id",
            )
            .await,
        "
        number=INC-000001 supplier=NetCo
        number=INC-000002 supplier=NetCo
        ",
    );
}

/// The command records an escalation and mails the supplier (internal on
/// the ticket, never to the customer); the supplier's answer is recorded
/// as its response and told to staff; resolving the ticket ends its
/// escalation, the other stays open.
#[tokio::test]
async fn a_command_escalates_and_the_answer_and_resolution_are_recorded() {
    let desk = escalated().await;
    assert_snapshot(
        &desk
            .snapshot(&[
                Table::Escalations,
                Table::Tickets,
                Table::Messages,
                Table::Outbox,
                Table::Events,
            ])
            .await,
        r##"
        [supplier_escalations]
        id=1 ticket=INC-000001 supplier=NetCo note="the router in room 4 is dead" escalated=T0+1h5m responded=T0+2h resolved=T0+3h
        id=2 ticket=INC-000002 supplier=NetCo note="" escalated=T0+1h5m
        [tickets]
        number=INC-000001 status=resolved priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="VPN down" created=T0 updated=T0+3h resolved=T0+3h response_due=T0+1h resolution_due=T0+8h
        number=INC-000002 status=new priority=normal kind=incident team=network service=email customer=3 mailbox=import subject="Line dead" created=T0+1h updated=T0+1h5m response_due=T0+2h resolution_due=T0+9h next_check=T0+1h48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="VPN down" text="The VPN is down.\n" raw_bytes=176 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: VPN down" text="Hello Jo Customer, …" raw_bytes=923 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] VPN down" text="New ticket. …" raw_bytes=993 at=T0
        id=4 ticket=INC-000002 dir=in author=customer class=normal vis=public rule=new from="Bo Customer <bo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="Line dead" text="No line.\n" raw_bytes=169 at=T0+1h
        id=5 ticket=INC-000002 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Bo Customer <bo@cust.test>" subject="[ACME INC-000002] Re: Line dead" text="Hello Bo Customer, …" raw_bytes=926 at=T0+1h
        id=6 ticket=INC-000002 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000002] Line dead" text="New ticket. …" raw_bytes=988 at=T0+1h
        id=7 ticket=INC-000001 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] escalation" text="" raw_bytes=381 at=T0+1h5m
        id=8 ticket=INC-000001 dir=out author=desk class=supplier-escalation vis=internal rule=desk from="Ada Lovelace via ACME Service Desk <support@acme.test>" to=noc@netco.test subject="[ACME INC-000001] VPN down" text="ACME Service Desk escalates ticket INC-000001 to NetCo. …" raw_bytes=846 at=T0+1h5m
        id=9 ticket=INC-000002 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000002] escalation" text="" raw_bytes=352 at=T0+1h5m
        id=10 ticket=INC-000002 dir=out author=desk class=supplier-escalation vis=internal rule=desk from="Ada Lovelace via ACME Service Desk <support@acme.test>" to=noc@netco.test subject="[ACME INC-000002] Line dead" text="ACME Service Desk escalates ticket INC-000002 to NetCo. …" raw_bytes=830 at=T0+1h5m
        id=11 ticket=INC-000001 dir=in author=supplier class=normal vis=internal rule=reference from="NetCo NOC <noc@netco.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] VPN down" text="Technician dispatched." raw_bytes=356 at=T0+2h
        id=12 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] VPN down" text="Supplier NetCo replied (internal; not sent to the customer). …" raw_bytes=1048 at=T0+2h
        id=13 ticket=INC-000001 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] escalation" text="" raw_bytes=345 at=T0+3h
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=923 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=993 at=T0 next=T0
        id=3 ticket=INC-000002 kind=acknowledgement to=bo@cust.test status=pending attempts=0 raw_bytes=926 at=T0+1h next=T0+1h
        id=4 ticket=INC-000002 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=988 at=T0+1h next=T0+1h
        id=5 ticket=INC-000001 kind=supplier-escalation to=noc@netco.test status=pending attempts=0 raw_bytes=846 at=T0+1h5m next=T0+1h5m
        id=6 ticket=INC-000002 kind=supplier-escalation to=noc@netco.test status=pending attempts=0 raw_bytes=830 at=T0+1h5m next=T0+1h5m
        id=7 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1048 at=T0+2h next=T0+2h
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000002 hook=ticket.created status=pending t_status=new t_customer=bo@cust.test msg_from=bo@cust.test msg_vis=public at=T0+1h
        id=4 ticket=INC-000002 hook=message.received status=pending t_status=new t_customer=bo@cust.test msg_from=bo@cust.test msg_vis=public at=T0+1h
        id=5 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=internal at=T0+1h5m
        id=6 ticket=INC-000001 hook=supplier.escalated status=pending t_status=new t_customer=jo@cust.test data="{\"name\":\"NetCo\",\"note\":\"the router in room 4 is dead\"}" at=T0+1h5m
        id=7 ticket=INC-000002 hook=message.received status=pending t_status=new t_customer=bo@cust.test msg_from=ada@acme.test msg_vis=internal at=T0+1h5m
        id=8 ticket=INC-000002 hook=supplier.escalated status=pending t_status=new t_customer=bo@cust.test data="{\"name\":\"NetCo\",\"note\":\"\"}" at=T0+1h5m
        id=9 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=noc@netco.test msg_vis=internal at=T0+2h
        id=10 ticket=INC-000001 hook=message.received status=pending t_status=resolved t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=internal at=T0+3h
        id=11 ticket=INC-000001 hook=ticket.updated status=pending t_status=resolved t_customer=jo@cust.test changes="[{\"field\":\"status\",\"from\":\"new\",\"to\":\"resolved\"}]" at=T0+3h
        id=12 ticket=INC-000001 hook=ticket.resolved status=pending t_status=resolved t_customer=jo@cust.test changes="[{\"field\":\"status\",\"from\":\"new\",\"to\":\"resolved\"}]" at=T0+3h
        "##,
    );
}

/// An unknown supplier is a refused command: no escalation, no mail to
/// anybody but Ada.
#[tokio::test]
async fn an_unknown_supplier_is_refused() {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    ada(
        &desk,
        "INC-000001",
        "a1@acme.test",
        "/supplier WireCo help\n",
    )
    .await;
    assert_snapshot(
        &desk
            .snapshot(&[Table::Escalations, Table::Messages, Table::Outbox])
            .await,
        r##"
        [supplier_escalations]
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="VPN down" text="The VPN is down.\n" raw_bytes=176 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: VPN down" text="Hello Jo Customer, …" raw_bytes=923 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] VPN down" text="New ticket. …" raw_bytes=993 at=T0
        id=4 ticket=INC-000001 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] escalation" text="/supplier WireCo help" flag="commands refused: /supplier WireCo: no such supplier (known: NetCo)" raw_bytes=358 at=T0
        id=5 ticket=INC-000001 dir=out author=desk class=command-error vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="Not applied: [ACME INC-000001] VPN down" text="Your reply to INC-000001 was not applied: …" raw_bytes=1189 at=T0
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=923 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=993 at=T0 next=T0
        id=3 ticket=INC-000001 kind=command-error to=ada@acme.test status=pending attempts=0 raw_bytes=1189 at=T0 next=T0
        "##,
    );
}

/// The review of March: a request ticket for the supplier manager with
/// the figures as a note, a mail to her and a `supplier.review_due` event
/// with the figures for plugins.
#[tokio::test]
async fn the_review_reports_the_period_on_a_ticket_for_the_manager() {
    let desk = escalated().await;
    let now = at("2026-04-01T08:00:00Z");
    desk.set(now);
    let number = crate::supplier::review(
        &desk.app.store,
        &desk.app.config,
        &desk.app.settings,
        "NetCo",
        at("2026-03-01T08:00:00Z"),
        now,
    )
    .await
    .expect("the review runs");
    assert_eq!(number, "REQ-000003");
    let note = desk
        .value("SELECT body_text FROM messages WHERE class = 'supplier-review'")
        .await;
    assert_snapshot(
        &note,
        r##"
        Supplier review: NetCo
        Period: 2026-03-01 to 2026-04-01
        Tickets escalated:          2
        Responses within 2h00m:      1/2 (50%)
        Median / worst response:    0h55m / 0h55m
        Resolutions within 8h00m:    1/2 (50%)
        Escalations missing a target: 1
        Open items:                 INC-000002
        The contract ends in 30 days: decide on renewal.
        "##,
    );
    assert_snapshot(
        &desk
            .snapshot(&[
                Table::Tickets,
                Table::Messages,
                Table::Outbox,
                Table::Events,
            ])
            .await
            .lines()
            .filter(|l| !l.starts_with('[') && l.contains("REQ-000003"))
            .collect::<Vec<_>>()
            .join("\n"),
        r##"
        number=REQ-000003 status=new priority=normal kind=request assignee=ada@acme.test customer=2 mailbox="" subject="Supplier review: NetCo (2026-03-01 to 2026-04-01)" fields="{\"supplier\":\"NetCo\"}" created=T0+29d23h updated=T0+29d23h
        id=14 ticket=REQ-000003 dir=note author=desk class=supplier-review vis=internal rule=desk from="" to="" subject="Supplier review: NetCo (2026-03-01 to 2026-04-01)" text="Supplier review: NetCo …" at=T0+29d23h
        id=15 ticket=REQ-000003 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME REQ-000003] Supplier review: NetCo (2026-03-01 to 2026-04-01)" text="A supplier review is due; ticket REQ-000003 is assigned to you. …" raw_bytes=1170 at=T0+29d23h
        id=8 ticket=REQ-000003 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1170 at=T0+29d23h next=T0+29d23h
        id=13 ticket=REQ-000003 hook=supplier.review_due status=pending t_status=new t_assignee=ada@acme.test t_customer=ada@acme.test data="{\"figures\":{\"breaches\":1,\"contract_ends_in_days\":30,\"escalated\":2,\"median_response_minutes\":55,\"open_items\":[\"INC-000002\"],\"resolved\":1,\"resolved_in_target\":1,\"responded\":1,\"responded_in_target\":1,\"worst_response_minutes\":55},\"from\":\"2026-03-01T08:00:00+00:00\",\"name\":\"NetCo\",\"resolution_target_minutes\":480,\"response_target_minutes\":120,\"to\":\"2026-04-01T08:00:00+00:00\"}" at=T0+29d23h
        "##,
    );
    let data = desk
        .value("SELECT json_extract(payload, '$.supplier') FROM events WHERE hook = 'supplier.review_due'")
        .await;
    assert_snapshot(
        &data,
        r##"
        {"figures":{"breaches":1,"contract_ends_in_days":30,"escalated":2,"median_response_minutes":55,"open_items":["INC-000002"],"resolved":1,"resolved_in_target":1,"responded":1,"responded_in_target":1,"worst_response_minutes":55},"from":"2026-03-01T08:00:00+00:00","name":"NetCo","resolution_target_minutes":480,"response_target_minutes":120,"to":"2026-04-01T08:00:00+00:00"}
        "##,
    );
}

/// A review of a period without escalations says so; it still makes its
/// ticket (the manager decides on the contract).
#[tokio::test]
async fn a_review_of_a_quiet_period_counts_only_open_items() {
    let desk = escalated().await;
    let now = at("2026-05-01T08:00:00Z");
    desk.set(now);
    crate::supplier::review(
        &desk.app.store,
        &desk.app.config,
        &desk.app.settings,
        "NetCo",
        at("2026-04-01T08:00:00Z"),
        now,
    )
    .await
    .expect("the review runs");
    let note = desk
        .value("SELECT body_text FROM messages WHERE class = 'supplier-review'")
        .await;
    assert_snapshot(
        &note,
        r##"
        Supplier review: NetCo
        Period: 2026-04-01 to 2026-05-01
        Tickets escalated:          0
        Responses within 2h00m:      -
        Median / worst response:    - / -
        Resolutions within 8h00m:    -
        Escalations missing a target: 0
        Open items:                 INC-000002
        The contract ends in 0 days: decide on renewal.
        "##,
    );
}
