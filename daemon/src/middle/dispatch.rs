//! The plugin dispatcher's round without a plugin host: `select` picks the
//! due events, the plugins' answers are given as the host would return
//! them, and `settle` writes the round. What a real plugin answers is the
//! end-to-end tests' business (`tests/e2e/plugins.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Desk, Mail, Table, assert_snapshot};
use crate::plugins::DispatchStats;
use crate::plugins::dispatch::Dispatcher;
use crate::plugins::protocol::Outcome;
use crate::plugins::runner::{InProcess, Runner};

/// A dispatcher over the desk's store, with `router` and `scorer`
/// subscribed to `ticket.created` and `router` to `message.received`;
/// a failed call is tried once more.
fn dispatcher(desk: &Desk) -> Dispatcher {
    let config = &desk.app.config;
    let subscriptions: BTreeMap<String, Vec<String>> = [
        (
            "ticket.created".to_string(),
            vec!["router".into(), "scorer".into()],
        ),
        ("message.received".to_string(), vec!["router".into()]),
    ]
    .into();
    Dispatcher::new(
        desk.app.store.clone(),
        Runner::InProcess(InProcess::new(
            Vec::new(),
            BTreeMap::new(),
            Duration::from_secs(5),
        )),
        subscriptions,
        config.desk.clone(),
        config.staff.clone(),
        1,
        desk.app.clock.clone(),
    )
    .with_services(vec!["email".into()])
    .with_token_key(Some(desk.app.settings.key.clone()))
}

/// One round: the events due, answered by `answer(hook, plugin)`.
async fn round(
    desk: &Desk,
    d: &Dispatcher,
    answer: impl Fn(&str, &str) -> Outcome,
) -> (Vec<String>, DispatchStats) {
    let now = desk.now();
    let work = d.select(now).await.expect("select");
    let mut picked = Vec::new();
    let mut outcomes = HashMap::new();
    for w in &work {
        picked.push(format!(
            "{} {} -> {}",
            w.row.id,
            w.row.hook,
            w.targets.join(",")
        ));
        for p in &w.targets {
            outcomes.insert((w.row.id, p.clone()), answer(&w.row.hook, p));
        }
    }
    let stats = d.settle(work, outcomes, now).await.expect("settle");
    (picked, stats)
}

fn actions(a: Vec<Value>) -> Outcome {
    Outcome::Actions(a)
}

const EVENTS: &str = "SELECT id, ticket_id AS ticket, hook, status, attempts, origin, \
     last_error, delivery, vetoes FROM events ORDER BY id";
const ERRORS: &str = "SELECT plugin, event_id AS event, error FROM plugin_errors ORDER BY id";

/// The router's actions are checked one by one: the valid ones change the
/// ticket (and raise `ticket.updated` with the router as origin, sent to
/// no one), note it, tell the new assignee and mail ops; the invalid one
/// is refused as a plugin error. The scorer fails, is tried once more and
/// then the event fails for good; the ticket's next event waits until then.
#[tokio::test]
async fn a_round_applies_valid_actions_refuses_the_rest_and_retries_failures() {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    let d = dispatcher(&desk);
    let first = round(&desk, &d, |_, plugin| match plugin {
        "router" => actions(vec![
            json!({"type": "set_priority", "priority": "high"}),
            json!({"type": "set_assignee", "assignee": "bob@acme.test"}),
            json!({"type": "add_note", "text": "Routed to Bob: VPN."}),
            json!({"type": "set_field", "name": "region", "value": "emea"}),
            json!({"type": "send_mail", "to": ["ops@acme.test"], "subject": "VPN", "body": "Look."}),
            json!({"type": "set_status", "status": "bogus"}),
        ]),
        _ => Outcome::Error("database away".into()),
    })
    .await;
    assert_eq!(
        first.0,
        vec!["1 ticket.created -> router,scorer"],
        "one event per ticket: message.received waits"
    );
    assert_eq!(
        first.1,
        DispatchStats {
            done: 0,
            failed: 0,
            calls: 0,
            call_errors: 1,
            applied: 5,
            refused: 1,
            mails: 2,
        }
    );
    let second = round(&desk, &d, |_, _| Outcome::Error("still away".into())).await;
    assert_eq!(
        second.0,
        vec!["1 ticket.created -> scorer"],
        "only the failed plugin again"
    );
    assert_eq!((second.1.failed, second.1.call_errors), (1, 1));
    let third = round(&desk, &d, |_, _| actions(Vec::new())).await;
    assert_eq!(third.0, vec!["2 message.received -> router"]);
    assert_eq!(third.1.done, 1);
    // The router's own event is owed to no one: retired without a call.
    let fourth = round(&desk, &d, |_, _| actions(Vec::new())).await;
    assert_eq!(fourth.0, vec!["3 ticket.updated -> "]);
    assert_eq!((fourth.1.done, fourth.1.calls), (1, 0));
    let fifth = round(&desk, &d, |_, _| actions(Vec::new())).await;
    assert!(fifth.0.is_empty(), "nothing left: {:?}", fifth.0);

    assert_snapshot(
        &format!(
            "{}[events]\n{}\n[plugin_errors]\n{}\n",
            desk.snapshot(&[Table::Tickets, Table::Messages, Table::Outbox])
                .await,
            desk.rows(EVENTS).await,
            desk.rows(ERRORS).await,
        ),
        r##"
        [tickets]
        number=INC-000001 status=new priority=high kind=incident team=network assignee=bob@acme.test service=email customer=1 mailbox=import subject="VPN down" fields="{\"region\":\"emea\"}" created=T0 updated=T0 response_due=T0+1h resolution_due=T0+8h next_check=T0
        [messages]
        id=1 ticket=INC-000001 dir=in author=customer class=normal vis=public rule=new from="Jo Customer <jo@cust.test>" to="ACME Service Desk <support@acme.test>" subject="VPN down" text="The VPN is down.\n" raw_bytes=176 at=T0
        id=2 ticket=INC-000001 dir=out author=desk class=acknowledgement vis=public rule=desk from="ACME Service Desk <support@acme.test>" to="Jo Customer <jo@cust.test>" subject="[ACME INC-000001] Re: VPN down" text="Hello Jo Customer, …" raw_bytes=923 at=T0
        id=3 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=desk from="ACME Service Desk <support@acme.test>" to="Ada Lovelace <ada@acme.test>" subject="[ACME INC-000001] VPN down" text="New ticket. …" raw_bytes=993 at=T0
        id=4 ticket=INC-000001 dir=note author=plugin class=note vis=internal rule=plugin:router from="router (plugin)" to="" subject="Note by plugin router" text="Routed to Bob: VPN. …" at=T0
        id=5 ticket=INC-000001 dir=out author=desk class=plugin-mail vis=internal rule=plugin:router from="ACME Service Desk <support@acme.test>" to=ops@acme.test subject="[ACME INC-000001] VPN" text="Look. …" raw_bytes=395 at=T0
        id=6 ticket=INC-000001 dir=out author=desk class=notification vis=internal rule=plugin:router from="ACME Service Desk <support@acme.test>" to="Bob Page <bob@acme.test>" subject="[ACME INC-000001] VPN down" text="INC-000001 was assigned to you by the plugin router. …" raw_bytes=675 at=T0
        [outbox]
        id=1 ticket=INC-000001 kind=acknowledgement to=jo@cust.test status=pending attempts=0 raw_bytes=923 at=T0 next=T0
        id=2 ticket=INC-000001 kind=notification to=ada@acme.test status=pending attempts=0 raw_bytes=993 at=T0 next=T0
        id=3 ticket=INC-000001 kind=plugin-mail to=ops@acme.test status=pending attempts=0 raw_bytes=395 at=T0 next=T0
        id=4 ticket=INC-000001 kind=notification to=bob@acme.test status=pending attempts=0 raw_bytes=675 at=T0 next=T0
        [events]
        id=1 ticket=1 hook=ticket.created status=failed attempts=2 last_error="scorer: still away" delivery="{\"done\":[\"router\"],\"failures\":{\"scorer\":2}}"
        id=2 ticket=1 hook=message.received status=done attempts=1
        id=3 ticket=1 hook=ticket.updated status=done attempts=0 origin=router delivery="{\"done\":[],\"failures\":{}}"
        [plugin_errors]
        plugin=router event=1 error="ticket.created event 1: set_status refused: unknown status \"bogus\" (new, open, pending, resolved, closed)"
        plugin=scorer event=1 error="ticket.created event 1: database away"
        plugin=scorer event=1 error="ticket.created event 1: still away"
        "##,
    );
}

/// Two daemons' dispatchers on one database: the events one claimed for its
/// round are not the other's; the ticket's next event waits for the round
/// to end, then goes to whichever asks first.
#[tokio::test]
async fn two_dispatchers_never_take_the_same_event() {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    let (a, b) = (dispatcher(&desk), dispatcher(&desk));
    let now = desk.now();
    let mine = a.select(now).await.expect("a selects");
    assert_eq!(mine.iter().map(|w| w.row.id).collect::<Vec<_>>(), vec![1]);
    let theirs = b.select(now).await.expect("b selects");
    assert!(
        theirs.is_empty(),
        "event 1 is a's, event 2 waits behind it: {:?}",
        theirs.iter().map(|w| w.row.id).collect::<Vec<_>>()
    );
    let outcomes = mine
        .iter()
        .flat_map(|w| {
            w.targets
                .iter()
                .map(|p| ((w.row.id, p.clone()), actions(Vec::new())))
                .collect::<Vec<_>>()
        })
        .collect();
    a.settle(mine, outcomes, now).await.expect("a settles");
    let next = b.select(now).await.expect("b selects again");
    assert_eq!(next.iter().map(|w| w.row.id).collect::<Vec<_>>(), vec![2]);
    assert!(a.select(now).await.expect("a again").is_empty(), "b has it");
    // A daemon that dies in its round leaves its events to the others
    // once the claim runs out.
    drop(next);
    let later = now + chrono::Duration::minutes(6);
    let taken_over = a.select(later).await.expect("a after the claim");
    assert_eq!(
        taken_over.iter().map(|w| w.row.id).collect::<Vec<_>>(),
        vec![2]
    );
}

/// A plugin that resolves a ticket asks its customer for a rating, as a
/// staff resolve does; the answer to that question is recorded on the
/// ticket and does not reopen it (`domain::satisfaction`).
#[tokio::test]
async fn a_plugin_resolve_asks_for_a_rating_and_the_answer_is_kept() {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    let policy = crate::domain::satisfaction::Policy {
        enabled: true,
        ..Default::default()
    };
    let d = dispatcher(&desk).with_relationship(policy);
    round(&desk, &d, |_, plugin| match plugin {
        "router" => actions(vec![
            json!({"type": "set_assignee", "assignee": "bob@acme.test"}),
            json!({"type": "set_status", "status": "resolved"}),
        ]),
        _ => actions(Vec::new()),
    })
    .await;
    assert_eq!(desk.value("SELECT status FROM tickets").await, "resolved");
    let asked = desk.sent_id("satisfaction-request", "jo@cust.test").await;
    assert_eq!(
        desk.rows("SELECT ticket_id, contact_id, assignee, service FROM satisfaction_requests")
            .await,
        "ticket_id=1 contact_id=1 assignee=bob@acme.test service=email"
    );
    // Only once: a later round with nothing to do asks nothing more.
    round(&desk, &d, |_, _| actions(Vec::new())).await;
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM outbox WHERE kind = 'satisfaction-request'")
            .await,
        "1"
    );
    let updated = desk.value("SELECT updated_at FROM tickets").await;
    desk.advance(chrono::Duration::minutes(10));
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "Re: VPN down", "r1@cust.test")
            .replying_to(&asked)
            .body("5 thanks!\n\n> How satisfied are you\n"),
    )
    .await;
    assert_eq!(
        desk.value("SELECT updated_at FROM tickets").await,
        updated,
        "a rating leaves the ticket's row alone"
    );
    assert_eq!(
        desk.rows("SELECT ticket_id, score, comment, assignee, service FROM ratings")
            .await,
        "ticket_id=1 score=5 comment=thanks! assignee=bob@acme.test service=email"
    );
    assert_eq!(
        desk.value("SELECT status FROM tickets").await,
        "resolved",
        "a rating never reopens"
    );
    assert_eq!(desk.value("SELECT COUNT(*) FROM tickets").await, "1");
    // Closed (no second question: the same resolution), a second answer
    // still lands on the ticket, not on a new one, and is kept beside the
    // first (the figures count the latest).
    for _ in 0..4 {
        round(&desk, &d, |hook, plugin| match (hook, plugin) {
            ("message.received", "router") => {
                actions(vec![json!({"type": "set_status", "status": "closed"})])
            }
            _ => actions(Vec::new()),
        })
        .await;
    }
    assert_eq!(desk.value("SELECT status FROM tickets").await, "closed");
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "Re: VPN down", "r2@cust.test")
            .replying_to(&asked)
            .body("2 it broke again later\n"),
    )
    .await;
    assert_eq!(desk.value("SELECT COUNT(*) FROM tickets").await, "1");
    assert_eq!(desk.value("SELECT status FROM tickets").await, "closed");
    assert_eq!(
        desk.rows("SELECT ticket_id, score FROM ratings ORDER BY id")
            .await,
        "ticket_id=1 score=5\nticket_id=1 score=2"
    );
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM outbox WHERE kind = 'satisfaction-request'")
            .await,
        "1"
    );
    // A client that drops In-Reply-To and References but writes to the
    // question's reply address (the customer's token): the latest question.
    let token = crate::domain::token::Token {
        number: "INC-000001".parse().expect("number"),
        contact: crate::domain::ticket::ContactId(1),
    };
    let settings = &desk.app.settings;
    let to = settings.key.reply_to(&settings.desk.address, token);
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "Rating", "r3@cust.test")
            .header("To", &to.email)
            .body("4 via the reply address\n"),
    )
    .await;
    assert_eq!(desk.value("SELECT COUNT(*) FROM tickets").await, "1");
    assert_eq!(
        desk.rows("SELECT score, comment FROM ratings WHERE id = 3")
            .await,
        "score=4 comment=\"via the reply address\""
    );
    // Without the token, the same words from the same customer are a new
    // mail about a closed ticket's subject: a new ticket, no rating.
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "Rating", "r4@cust.test")
            .body("4 via the plain address\n"),
    )
    .await;
    assert_eq!(desk.value("SELECT COUNT(*) FROM ratings").await, "3");
    assert_eq!(
        desk.rows("SELECT recipients FROM outbox WHERE kind = 'low-rating'")
            .await,
        "recipients=manager@acme.test",
        "the 2 goes to the service's escalation address (it has no manager)"
    );
}

/// A reply to the rating question that is not a rating is an ordinary
/// customer reply: within the reopen window it reopens the ticket.
#[tokio::test]
async fn a_reply_to_the_question_without_a_score_reopens() {
    let desk = Desk::new().await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "VPN down", "v1@cust.test")
            .body("The VPN is down.\n"),
    )
    .await;
    let policy = crate::domain::satisfaction::Policy {
        enabled: true,
        ..Default::default()
    };
    let d = dispatcher(&desk).with_relationship(policy);
    round(&desk, &d, |_, plugin| match plugin {
        "router" => actions(vec![json!({"type": "set_status", "status": "resolved"})]),
        _ => actions(Vec::new()),
    })
    .await;
    let asked = desk.sent_id("satisfaction-request", "jo@cust.test").await;
    desk.send(
        &Mail::new("Jo Customer <jo@cust.test>", "Re: VPN down", "r1@cust.test")
            .replying_to(&asked)
            .body("Sorry, it is broken again.\n\n> 1 (very dissatisfied) to 5\n"),
    )
    .await;
    assert_eq!(desk.value("SELECT status FROM tickets").await, "open");
    assert_eq!(desk.value("SELECT COUNT(*) FROM ratings").await, "0");
    assert_eq!(desk.value("SELECT COUNT(*) FROM tickets").await, "1");
}
