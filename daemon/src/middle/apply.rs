//! Ingest: a mail goes in through `App::import`, the rows of its ticket
//! come out.

use chrono::Duration;

use super::{Desk, Mail, Table, assert_snapshot};

/// Jo's first mail, with Ann in Cc.
fn printer() -> Mail {
    Mail::new(
        "Jo Customer <jo@cust.test>",
        "Printer on fire",
        "m1@cust.test",
    )
    .header("Cc", "Ann <ann@cust.test>")
    .body("The printer on floor 2 is on fire.\nPlease send help.\n")
}

/// A desk with Jo's ticket INC-000001 in it.
async fn with_ticket() -> Desk {
    let desk = Desk::new().await;
    desk.send(&printer()).await;
    desk
}

const ALL: &[Table] = &[
    Table::Tickets,
    Table::Messages,
    Table::Outbox,
    Table::Events,
    Table::Contacts,
    Table::Participants,
    Table::Links,
    Table::Quarantine,
    Table::SlaPauses,
];

#[tokio::test]
async fn a_new_customer_mail_opens_a_ticket_and_is_acknowledged() {
    let desk = Desk::new().await;
    let stats = desk.send(&printer()).await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 1, new_tickets: 1, acknowledged: 1, duplicates: 0, quarantined: 0, bytes: 243 }
        "##,
    );
    assert_snapshot(
        &desk.snapshot(ALL).await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0 response_due=T0+1h resolution_due=T0+8h next_check=T0+48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        [contacts]
        id=1 email=jo@cust.test name="Jo Customer" acks=1 ack_since=T0 created=T0
        id=2 email=ann@cust.test name=Ann acks=0 created=T0
        id=3 email=ada@acme.test name="Ada Lovelace" acks=0 created=T0
        [participants]
        ticket=INC-000001 email=jo@cust.test role=customer
        ticket=INC-000001 email=ann@cust.test role=cc
        [ticket_links]
        [quarantine]
        [sla_pauses]
        "##,
    );
}

/// The acknowledgement as the SMTP server will get it: the desk's From,
/// the customer's own reply token in Reply-To and Message-ID, the thread.
#[tokio::test]
async fn the_acknowledgement_is_rendered_with_the_customers_token() {
    let desk = with_ticket().await;
    let raw = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE kind = 'acknowledgement'")
        .await;
    assert_snapshot(
        &raw.replace("\r\n", "\n"),
        r##"
        Message-ID: <INC-000001.1.7dcf0663c4631225.a00.90552c44e0cd8bb6@acme.test>
        From: "ACME Service Desk" <support@acme.test>
        Subject: [ACME INC-000001] Re: Printer on fire
        Date: Mon, 02 Mar 2026 09:00:00 +0000
        To: "Jo Customer" <jo@cust.test>
        Reply-To: "ACME Service Desk" <support+INC-000001.1.7dcf0663c4631225@acme.test>
        In-Reply-To: <m1@cust.test>
        References: <m1@cust.test>
        Thread-Topic: Printer on fire
        Thread-Index: AdXANmkFeOiMtAlXXMsSn6O0HknEw43T2RSe
        Auto-Submitted: auto-replied
        X-Auto-Response-Suppress: All
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: quoted-printable
        Hello Jo Customer,
        Thank you for contacting ACME Service Desk. We have received your message a=
        nd opened ticket INC-000001 for it.
        Please keep "[ACME INC-000001]" in the subject when you write about this re=
        quest; replying to this mail does that for you.
        Your message:
        > Printer on fire
        --=20
        ACME Service Desk
        "##,
    );
}

/// What plugins receive for a new ticket: the whole event.
#[tokio::test]
async fn the_ticket_created_event_carries_the_ticket_and_the_mail() {
    let desk = with_ticket().await;
    let payload = desk
        .value("SELECT payload FROM events WHERE hook = 'ticket.created'")
        .await;
    let pretty: serde_json::Value = serde_json::from_str(&payload).expect("JSON payload");
    assert_snapshot(
        &serde_json::to_string_pretty(&pretty).expect("pretty"),
        r##"
        {
        "changes": [],
        "hook": "ticket.created",
        "message": {
        "from": "jo@cust.test",
        "message_id": "m1@cust.test",
        "subject": "Printer on fire",
        "text": "The printer on floor 2 is on fire.\nPlease send help.\n",
        "visibility": "public"
        },
        "ticket": {
        "assignee": null,
        "customer": "jo@cust.test",
        "fields": {},
        "group": "network",
        "kind": "incident",
        "mailbox": "import",
        "number": "INC-000001",
        "priority": "normal",
        "status": "new",
        "subject": "Printer on fire"
        }
        }
        "##,
    );
}

#[tokio::test]
async fn a_customer_reply_threads_into_its_ticket_with_its_new_text_only() {
    let desk = with_ticket().await;
    let ack = desk.sent_id("acknowledgement", "jo@cust.test").await;
    desk.advance(Duration::minutes(10));
    let stats = desk
        .send(
            &Mail::new(
                "Jo Customer <jo@cust.test>",
                "Re: [ACME INC-000001] Re: Printer on fire",
                "m2@cust.test",
            )
            .replying_to(&ack)
            .body(
                "It is out now, but it smells.\n\n\
                 On Mon, 2 Mar 2026, ACME Service Desk wrote:\n\
                 > Thank you for contacting ACME Service Desk.\n",
            ),
        )
        .await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 1, new_tickets: 0, acknowledged: 0, duplicates: 0, quarantined: 0, bytes: 465 }
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
            .await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0+10m response_due=T0+1h resolution_due=T0+8h next_check=T0+48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        id=4 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=reference from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Re: Printer on fire" text="It is out now, but it smells." raw_bytes=465 at=T0+10m
        id=5 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="The customer replied. …" raw_bytes=1037 at=T0+10m
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1037 at=T0+10m next=T0+10m
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0+10m
        "##,
    );
}

/// Ada answers from the notification she got (its Message-ID carries her
/// token, which proves her): the commands change the ticket, the text goes
/// to the customer and the Cc from the desk address, the ticket's clocks
/// move.
#[tokio::test]
async fn a_staff_reply_runs_its_commands_and_answers_the_customer() {
    let desk = with_ticket().await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.advance(Duration::minutes(20));
    let stats = desk
        .send(
            &Mail::new(
                "Ada Lovelace <ada@acme.test>",
                "Re: [ACME INC-000001] Printer on fire",
                "a1@acme.test",
            )
            .replying_to(&note)
            .body("/priority high\n/assign bob\n\nThe fire brigade is on its way.\n"),
        )
        .await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 1, new_tickets: 0, acknowledged: 0, duplicates: 0, quarantined: 0, bytes: 401 }
        "##,
    );
    assert_snapshot(
        &desk
            .snapshot(&[
                Table::Tickets,
                Table::Messages,
                Table::Outbox,
                Table::Events,
                Table::Participants,
            ])
            .await,
        r##"
        [tickets]
        number=INC-000001 status=open priority=high kind=incident team=network assignee=bob@acme.test service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0+20m responded=T0+20m response_due=T0+30m resolution_due=T0+4h next_check=T0+3h12m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        id=4 ticket=INC-000001 dir=in author=staff class=normal vis=public rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Printer on fire" text="The fire brigade is on its way." raw_bytes=401 at=T0+20m
        id=5 ticket=INC-000001 dir=out author=desk class=answer vis=public rule=desk from="Ada Lovelace via ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="The fire brigade is on its way. …" raw_bytes=631 at=T0+20m
        id=6 ticket=INC-000001 dir=out author=desk class=answer vis=public rule=desk from="Ada Lovelace via ACME Service Desk <support@acme.test>" to="Ann <ann@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="The fire brigade is on its way. …" raw_bytes=622 at=T0+20m
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000001 kind=answer to=jo@cust.test status=pending attempts=0 raw_bytes=631 at=T0+20m next=T0+20m
        id=4 ticket=INC-000001 kind=answer to=ann@cust.test status=pending attempts=0 raw_bytes=622 at=T0+20m next=T0+20m
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=message.received status=pending t_status=open t_assignee=bob@acme.test t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=public at=T0+20m
        id=4 ticket=INC-000001 hook=ticket.updated status=pending t_status=open t_assignee=bob@acme.test t_customer=jo@cust.test changes="[{\"field\":\"priority\",\"from\":\"normal\",\"to\":\"high\"},{\"field\":\"assignee\",\"from\":null,\"to\":\"bob@acme.test\"},{\"field\":\"status\",\"from\":\"new\",\"to\":\"open\"}]" at=T0+20m
        [participants]
        ticket=INC-000001 email=jo@cust.test role=customer
        ticket=INC-000001 email=ann@cust.test role=cc
        ticket=INC-000001 email=ada@acme.test role=staff
        "##,
    );
}

/// A reply whose From is staff but that proves nothing changes nothing;
/// a proven reply with a bad command is refused whole and explained to its
/// writer, and nothing reaches the customer.
#[tokio::test]
async fn staff_commands_are_refused_whole_without_proof_or_with_an_error() {
    let desk = with_ticket().await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.advance(Duration::minutes(5));
    let forged = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME INC-000001] Printer on fire",
        "forged@evil.test",
    )
    .body("/close\n\nNothing to see here.\n");
    let bad = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME INC-000001] Printer on fire",
        "a2@acme.test",
    )
    .replying_to(&note)
    .body("/priority high\n/status sideways\n\nOn it.\n");
    let stats = desk
        .deliver(&[forged.raw().as_str(), bad.raw().as_str()])
        .await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 2, new_tickets: 0, acknowledged: 0, duplicates: 0, quarantined: 0, bytes: 604 }
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
            .await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0+5m response_due=T0+1h resolution_due=T0+8h next_check=T0+48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        id=4 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=subject_tag from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Printer on fire" text="/close\n\nNothing to see here." flag="refused staff claim: From is ada@acme.test but the mail proves nothing (no reply token sent to them for this ticket, no trusted DKIM/SPF pass); stored as a customer message, nothing changed" raw_bytes=223 at=T0+5m
        id=5 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="WARNING: this mail claims to come from ada@acme.test but proves nothing; it was stored as a customer message and changed nothing. If it was you, reply to a notification of this ticket instead. …" raw_bytes=1217 at=T0+5m
        id=6 ticket=INC-000001 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Printer on fire" text="/priority high\n/status sideways\n\nOn it." flag="commands refused: /status sideways: unknown status \"sideways\" (new, open, pending, resolved, closed)" raw_bytes=381 at=T0+5m
        id=7 ticket=INC-000001 dir=out author=desk class=command-error vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="Not applied: [ACME INC-000001] Printer on fire" text="Your reply to INC-000001 was not applied: …" raw_bytes=1239 at=T0+5m
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1217 at=T0+5m next=T0+5m
        id=4 ticket=INC-000001 kind=command-error to=ada@acme.test status=pending attempts=0 raw_bytes=1239 at=T0+5m next=T0+5m
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=public at=T0+5m
        id=4 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=internal at=T0+5m
        "##,
    );
}

/// The same mail twice in a batch and once more later is stored once.
#[tokio::test]
async fn a_duplicate_mail_is_stored_once() {
    let desk = Desk::new().await;
    let raw = printer().raw();
    let first = desk.deliver(&[raw.as_str(), raw.as_str()]).await;
    desk.advance(Duration::hours(1));
    let again = desk.deliver(&[raw.as_str()]).await;
    assert_snapshot(
        &format!("{first:?}\n{again:?}"),
        r##"
        Stats { stored: 1, new_tickets: 1, acknowledged: 1, duplicates: 1, quarantined: 0, bytes: 486 }
        Stats { stored: 0, new_tickets: 0, acknowledged: 0, duplicates: 1, quarantined: 0, bytes: 243 }
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
            .await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0 response_due=T0+1h resolution_due=T0+8h next_check=T0+48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        "##,
    );
}

/// A delivery report for the acknowledgement marks its outbox row bounced,
/// is stored on the ticket as a robot's internal message and tells staff;
/// nobody answers the robot.
#[tokio::test]
async fn a_bounce_marks_the_outbox_row_bounced() {
    let desk = with_ticket().await;
    let ack = desk.sent_id("acknowledgement", "jo@cust.test").await;
    desk.advance(Duration::minutes(3));
    let dsn = format!(
        "Return-Path: <>\n\
         From: Mail Delivery System <MAILER-DAEMON@mx.cust.test>\n\
         To: support@acme.test\n\
         Subject: Undelivered Mail Returned to Sender\n\
         Message-ID: <bounce-1@mx.cust.test>\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\
         \n\
         --b\n\
         Content-Type: text/plain\n\
         \n\
         <jo@cust.test>: host mx.cust.test said: 550 5.1.1 unknown user\n\
         --b\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; mx.cust.test\n\
         \n\
         Final-Recipient: rfc822; jo@cust.test\n\
         Action: failed\n\
         Status: 5.1.1\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\n\
         \n\
         --b\n\
         Content-Type: text/rfc822-headers\n\
         \n\
         From: ACME Service Desk <support@acme.test>\n\
         To: jo@cust.test\n\
         Subject: [ACME INC-000001] Re: Printer on fire\n\
         Message-ID: <{ack}>\n\
         \n\
         --b--\n"
    );
    let stats = desk.deliver(&[dsn.as_str()]).await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 1, new_tickets: 0, acknowledged: 0, duplicates: 0, quarantined: 0, bytes: 763 }
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
            .await,
        r##"
        [tickets]
        number=INC-000001 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0+3m response_due=T0+1h resolution_due=T0+8h next_check=T0+48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        id=4 ticket=INC-000001 dir=in author=robot class=bounce vis=internal rule=reference from="Mail Delivery System <mailer-daemon@mx.cust.test>" to=support@acme.test subject="Undelivered Mail Returned to Sender" text="<jo@cust.test>: host mx.cust.test said: 550 5.1.1 unknown user" warnings="bounce: delivery status notification" flag="delivery failed: jo@cust.test (5.1.1 550 5.1.1 User unknown)" raw_bytes=763 at=T0+3m
        id=5 ticket=INC-000001 dir=out author=desk class=bounce-notice vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="A mail the desk sent on INC-000001 could not be delivered: jo@cust.test (5.1.1 550 5.1.1 User unknown). …" raw_bytes=779 at=T0+3m
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=bounced attempts=0 error="bounced: jo@cust.test (5.1.1 550 5.1.1 User unknown)" raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000001 kind=bounce-notice to=ada@acme.test status=pending attempts=0 raw_bytes=779 at=T0+3m next=T0+3m
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=mailer-daemon@mx.cust.test msg_vis=internal at=T0+3m
        "##,
    );
}

/// Ada closes the ticket; Jo's later reply to the acknowledgement opens a
/// new ticket linked to the closed one, acknowledged again.
#[tokio::test]
async fn a_reply_to_a_closed_ticket_opens_a_new_linked_ticket() {
    let desk = with_ticket().await;
    let ack = desk.sent_id("acknowledgement", "jo@cust.test").await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.advance(Duration::hours(1));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] Printer on fire",
            "a3@acme.test",
        )
        .replying_to(&note)
        .body("/close\n"),
    )
    .await;
    desk.advance(Duration::hours(1));
    let stats = desk
        .send(
            &Mail::new(
                "Jo Customer <jo@cust.test>",
                "Re: [ACME INC-000001] Re: Printer on fire",
                "m3@cust.test",
            )
            .replying_to(&ack)
            .body("It is burning again.\n"),
        )
        .await;
    assert_snapshot(
        &format!("{stats:?}"),
        r##"
        Stats { stored: 1, new_tickets: 1, acknowledged: 1, duplicates: 0, quarantined: 0, bytes: 364 }
        "##,
    );
    assert_snapshot(
        &desk
            .snapshot(&[
                Table::Tickets,
                Table::Messages,
                Table::Outbox,
                Table::Events,
                Table::Participants,
                Table::Links,
            ])
            .await,
        r##"
        [tickets]
        number=INC-000001 status=closed priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Printer on fire" created=T0 updated=T0+1h resolved=T0+1h response_due=T0+1h resolution_due=T0+8h
        number=INC-000002 status=new priority=normal kind=incident team=network service=email customer=1 mailbox=import subject="Re: [ACME INC-000001] Re: Printer on fire" created=T0+2h updated=T0+2h response_due=T0+3h resolution_due=T0+10h next_check=T0+2h48m
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" cc="Ann <ann@cust.test>" subject="Printer on fire" text="The printer on floor 2 is on fire.\nPlease send help.\n" raw_bytes=243 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=944 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] Printer on fire" text="New ticket. …" raw_bytes=1051 at=T0
        id=4 ticket=INC-000001 dir=in author=staff class=normal vis=internal rule=reference from="Ada Lovelace <ada@acme.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Printer on fire" text="" raw_bytes=348 at=T0+1h
        id=5 ticket=INC-000002 dir=in author=customer class=normal vis=public rule=new_after_finished from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="Re: [ACME INC-000001] Re: Printer on fire" text="It is burning again.\n" raw_bytes=364 at=T0+2h
        id=6 ticket=INC-000002 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000002] Re: [ACME INC-000001] Re: Printer on fire" text="Hello Jo Customer, …" raw_bytes=1079 at=T0+2h
        id=7 ticket=INC-000002 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000002] Re: [ACME INC-000001] Re: Printer on fire" text="New ticket. …" raw_bytes=1092 at=T0+2h
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000002 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=1079 at=T0+2h next=T0+2h
        id=4 ticket=INC-000002 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1092 at=T0+2h next=T0+2h
        [events]
        id=1 ticket=INC-000001 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=2 ticket=INC-000001 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0
        id=3 ticket=INC-000001 hook=message.received status=pending t_status=closed t_customer=jo@cust.test msg_from=ada@acme.test msg_vis=internal at=T0+1h
        id=4 ticket=INC-000001 hook=ticket.updated status=pending t_status=closed t_customer=jo@cust.test changes="[{\"field\":\"status\",\"from\":\"new\",\"to\":\"closed\"}]" at=T0+1h
        id=5 ticket=INC-000002 hook=ticket.created status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0+2h
        id=6 ticket=INC-000002 hook=message.received status=pending t_status=new t_customer=jo@cust.test msg_from=jo@cust.test msg_vis=public at=T0+2h
        [participants]
        ticket=INC-000001 email=jo@cust.test role=customer
        ticket=INC-000001 email=ann@cust.test role=cc
        ticket=INC-000001 email=ada@acme.test role=staff
        ticket=INC-000002 email=jo@cust.test role=customer
        [ticket_links]
        ticket=INC-000002 other=INC-000001 reason="reply to a finished ticket"
        "##,
    );
}

/// Mail that cannot be a ticket message is held with its reason and its
/// raw bytes, stores nothing else, and is held once.
#[tokio::test]
async fn a_broken_mail_is_quarantined_with_its_reason() {
    let desk = Desk::new().await;
    let no_sender =
        "To: support@acme.test\nSubject: who am I\nMessage-ID: <anon@nowhere.test>\n\nhello\n";
    let no_header = "this is not a mail at all\njust some text\n";
    let stats = desk.deliver(&[no_sender, no_header]).await;
    desk.advance(Duration::minutes(1));
    let again = desk.deliver(&[no_sender]).await;
    assert_snapshot(
        &format!("{stats:?}\n{again:?}"),
        r##"
        Stats { stored: 0, new_tickets: 0, acknowledged: 0, duplicates: 0, quarantined: 2, bytes: 120 }
        Stats { stored: 0, new_tickets: 0, acknowledged: 0, duplicates: 1, quarantined: 0, bytes: 79 }
        "##,
    );
    assert_snapshot(
        &desk.snapshot(ALL).await,
        r##"
        [tickets]
        [messages]
        [outbox]
        [events]
        [contacts]
        [participants]
        [ticket_links]
        [quarantine]
        id=1 dedup_key=mid:anon@nowhere.test mailbox=import reason="no sender: neither From, Sender nor Return-Path holds an address" size=0 raw_bytes=79 at=T0
        id=2 dedup_key=sha256:cf2bcae00e353b569d05f7b746d3f81ba2cede9075530d01d4dd41a6e4def5de mailbox=import reason="not an RFC 5322 message: no header could be read" size=0 raw_bytes=41 at=T0
        [sla_pauses]
        "##,
    );
}

/// `/cc add` of an address the desk already knows (here Bo, the customer
/// of another ticket) keeps Bo's contact. (It got a second contact row, the
/// batch failed on `contacts.email`'s unique index, and the daemon
/// quarantined Ada's reply.)
#[tokio::test]
async fn a_cc_added_by_command_who_is_already_a_contact_is_stored() {
    let desk = with_ticket().await;
    desk.send(
        &Mail::new("Bo Customer <bo@cust.test>", "Line dead", "b1@cust.test").body("No line.\n"),
    )
    .await;
    let note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 1 AND kind = 'notification'")
        .await;
    let stats = desk
        .try_deliver(&[Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] Printer on fire",
            "a4@acme.test",
        )
        .replying_to(&note)
        .body("/cc add bo@cust.test\n\nBo, your printer is next.\n")
        .raw()
        .as_str()])
        .await;
    assert!(stats.is_ok(), "the batch is stored: {stats:?}");
    assert_snapshot(
        &desk.snapshot(&[Table::Participants, Table::Outbox]).await,
        r##"
        [participants]
        ticket=INC-000001 email=jo@cust.test role=customer
        ticket=INC-000001 email=ann@cust.test role=cc
        ticket=INC-000001 email=ada@acme.test role=staff
        ticket=INC-000001 email=bo@cust.test role=cc
        ticket=INC-000002 email=bo@cust.test role=customer
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=944 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=1051 at=T0 next=T0
        id=3 ticket=INC-000002 kind=acknowledgement to=bo@cust.test status=pending attempts=0 raw_bytes=926 at=T0 next=T0
        id=4 ticket=INC-000002 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=988 at=T0 next=T0
        id=5 ticket=INC-000001 kind=answer to=jo@cust.test status=pending attempts=0 raw_bytes=625 at=T0 next=T0
        id=6 ticket=INC-000001 kind=answer to=ann@cust.test status=pending attempts=0 raw_bytes=616 at=T0 next=T0
        id=7 ticket=INC-000001 kind=answer to=bo@cust.test status=pending attempts=0 raw_bytes=609 at=T0 next=T0
        "##,
    );
}

/// A mail too large to fetch (only its head reached the desk) is
/// quarantined, and its sender told once a day at most; a robot's is not
/// answered.
#[tokio::test]
async fn the_sender_of_a_mail_too_large_is_told_once_a_day() {
    use crate::ingest::apply::{Incoming, apply_batch};
    use crate::ingest::{Oversize, parse};
    let desk = Desk::new().await;
    let big = |id: &str, extra: &str| {
        let raw = Mail::new("Cy Sender <cy@cust.test>", "Crash logs", id)
            .header("Content-Type", "text/plain")
            .body(&format!("{extra}The first megabyte of a large mail.\n"))
            .raw()
            .into_bytes();
        Incoming {
            mailbox: "import".into(),
            uid: None,
            parsed: parse::too_large(&raw, 31_457_280, 26_214_400),
            raw,
            oversize: Some(Oversize {
                size: 31_457_280,
                limit: 26_214_400,
            }),
        }
    };
    let store = &desk.app.store;
    let settings = &desk.app.settings;
    apply_batch(
        store,
        settings,
        vec![big("big1@cust.test", "")],
        None,
        desk.now(),
    )
    .await
    .expect("first");
    desk.advance(chrono::Duration::hours(2));
    apply_batch(
        store,
        settings,
        vec![big("big2@cust.test", "again ")],
        None,
        desk.now(),
    )
    .await
    .expect("second, the same day");
    let mut robot = big("big3@cust.test", "auto ");
    robot.raw = String::from_utf8_lossy(&robot.raw)
        .replace("Subject:", "Auto-Submitted: auto-replied\nSubject:")
        .into_bytes();
    apply_batch(store, settings, vec![robot], None, desk.now())
        .await
        .expect("a robot's");
    desk.advance(chrono::Duration::hours(23));
    apply_batch(
        store,
        settings,
        vec![big("big4@cust.test", "next day ")],
        None,
        desk.now(),
    )
    .await
    .expect("the next day");
    assert_eq!(
        desk.rows(
            "SELECT kind, recipients AS to_, subject_of, created_at AS at FROM \
             (SELECT *, substr(CAST(raw AS TEXT), instr(CAST(raw AS TEXT), 'Subject: '), 23) AS subject_of FROM outbox) \
             ORDER BY id"
        )
        .await,
        [
            "kind=too-large to=cy@cust.test subject_of=\"Subject: Re: Crash logs\" at=T0",
            "kind=too-large to=cy@cust.test subject_of=\"Subject: Re: Crash logs\" at=T0+1d1h",
        ]
        .join("\n")
    );
    assert_eq!(desk.value("SELECT COUNT(*) FROM quarantine").await, "4");
    assert_eq!(desk.value("SELECT COUNT(*) FROM tickets").await, "0");
}
