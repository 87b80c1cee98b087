//! A customer's mail becomes a ticket with a threaded acknowledgement;
//! replies thread by In-Reply-To or by the subject tag (from participants
//! only); duplicates are stored once; robots are never answered.

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

async fn new_mail_becomes_ticket_with_threaded_ack(backend: Backend) {
    let desk = Desk::new(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let mid = format!("{cust}.1@example.test");
    desk.send_from(&cust_addr, "Printer on fire", &mid, "", "It is burning.")
        .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;

    let r = desk.run_once();
    assert_eq!(r["stored"], 1, "{r}");
    assert_eq!(r["new_tickets"], 1, "{r}");
    assert_eq!(r["outbox"]["sent"], 1, "{r}");

    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 1);
    let number = tickets[0]["number"].as_str().expect("number").to_string();
    assert_eq!(number, "INC-000001");
    assert_eq!(tickets[0]["status"], "new");
    assert_eq!(tickets[0]["customer"], cust_addr.as_str());
    assert_eq!(tickets[0]["subject"], "Printer on fire");

    // The acknowledgement reaches the customer, threaded under their mail.
    let inbox = wait_for_messages(&cust, "INBOX", 1, WAIT).await;
    assert_eq!(inbox.len(), 1, "customer should get exactly one ack");
    let ack = &inbox[0];
    assert_eq!(
        header(ack, "In-Reply-To").as_deref(),
        Some(format!("<{mid}>").as_str())
    );
    assert!(header(ack, "References").unwrap_or_default().contains(&mid));
    assert_eq!(
        header(ack, "Subject").as_deref(),
        Some("[ACME INC-000001] Re: Printer on fire")
    );
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(
        header(ack, "From")
            .unwrap_or_default()
            .contains(&desk.address)
    );
    assert!(
        header(ack, "Message-ID")
            .unwrap_or_default()
            .contains("INC-000001")
    );

    // The processed mail was moved out of the desk's INBOX.
    assert!(messages(&desk.user, "INBOX").await.is_empty());
    assert_eq!(messages(&desk.user, "Processed").await.len(), 1);

    // ticket show has the message, its body and the sent ack.
    let t = desk.ticket(&number);
    let msgs = t["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 2, "{t}");
    assert_eq!(msgs[0]["direction"], "in");
    assert!(
        msgs[0]["body"]
            .as_str()
            .unwrap_or("")
            .contains("It is burning.")
    );
    assert_eq!(msgs[1]["direction"], "out");
    assert_eq!(t["outbox"][0]["status"], "sent");

    // A second cycle finds nothing new and sends nothing again.
    let r = desk.run_once();
    assert_eq!(r["mails"], 0, "{r}");
    assert_eq!(messages(&cust, "INBOX").await.len(), 1);
    desk.finish().await;
}
both_backends!(
    new_mail_becomes_ticket_with_threaded_ack,
    super::new_mail_becomes_ticket_with_threaded_ack
);

async fn replies_thread_by_reference_and_tag(backend: Backend) {
    let desk = Desk::new(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let stranger = unique("stranger");
    let stranger_addr = add_user(&stranger);
    let first = format!("{cust}.1@example.test");
    desk.send_from(&cust_addr, "VPN down", &first, "", "No VPN.")
        .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let ack = wait_for_messages(&cust, "INBOX", 1, WAIT).await;
    let ack_id = header(&ack[0], "Message-ID").expect("ack Message-ID");

    // 1. A reply to the acknowledgement (In-Reply-To) joins the ticket, no new ack.
    let reply = format!("{cust}.2@example.test");
    let headers = format!("In-Reply-To: {ack_id}\r\nReferences: <{first}> {ack_id}\r\n");
    desk.send_from(
        &cust_addr,
        "Re: [ACME INC-000001] Re: VPN down",
        &reply,
        &headers,
        "Still down.",
    )
    .await;
    // 2. A fresh mail with only the subject tag, from the customer: same ticket.
    let tagged = format!("{cust}.3@example.test");
    desk.send_from(
        &cust_addr,
        "[ACME INC-000001] one more thing",
        &tagged,
        "",
        "Also the printer.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 2, "{r}");
    assert_eq!(r["new_tickets"], 0, "{r}");
    assert_eq!(r["acknowledged"], 0, "{r}");

    // 3. The same tag from a stranger opens a new ticket linked to the first.
    let foreign = format!("{stranger}.1@example.test");
    desk.send_from(
        &stranger_addr,
        "[ACME INC-000001] let me in",
        &foreign,
        "",
        "Injected?",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");

    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    let t1 = desk.ticket("INC-000001");
    let inbound: Vec<_> = t1["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["direction"] == "in")
        .collect();
    assert_eq!(inbound.len(), 3, "{t1}");
    assert_eq!(inbound[1]["threaded_by"], "reference");
    assert_eq!(inbound[2]["threaded_by"], "subject_tag");
    assert!(!t1.to_string().contains("Injected?"));
    let t2 = desk.ticket("INC-000002");
    assert_eq!(t2["customer"], stranger_addr.as_str());
    assert_eq!(t2["linked"][0]["number"], "INC-000001", "{t2}");
    assert_eq!(t2["messages"][0]["threaded_by"], "new_linked");

    // The customer got one ack only; the stranger got an ack for their own ticket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages(&cust, "INBOX").await.len(), 1);
    let s = wait_for_messages(&stranger, "INBOX", 1, WAIT).await;
    assert_eq!(
        header(&s[0], "Subject").as_deref(),
        Some("[ACME INC-000002] Re: [ACME INC-000001] let me in")
    );
    desk.finish().await;
}
both_backends!(
    replies_thread_by_reference_and_tag,
    super::replies_thread_by_reference_and_tag
);

async fn duplicate_delivery_is_stored_once(backend: Backend) {
    let desk = Desk::new(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let raw = mail(
        &cust_addr,
        &desk.address,
        "Twice",
        &format!("{cust}.dup@example.test"),
        "",
        "Same mail.",
    );
    send(&cust_addr, &desk.address, &raw).await;
    send(&cust_addr, &desk.address, &raw).await;
    // Without a Message-ID, the content hash deduplicates.
    let no_id = format!(
        "From: {cust_addr}\r\nTo: {}\r\nSubject: no id\r\n\r\nbody\r\n",
        desk.address
    );
    append_all(&desk.user, "INBOX", &[no_id.clone(), no_id]).await;
    wait_for_messages(&desk.user, "INBOX", 4, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["mails"], 4, "{r}");
    assert_eq!(r["stored"], 2, "{r}");
    assert_eq!(r["duplicates"], 2, "{r}");
    assert_eq!(desk.tickets().len(), 2);
    // The duplicates were marked processed too: nothing is left to read.
    assert!(messages(&desk.user, "INBOX").await.is_empty());
    assert_eq!(wait_for_messages(&cust, "INBOX", 2, WAIT).await.len(), 2);
    desk.finish().await;
}
both_backends!(
    duplicate_delivery_is_stored_once,
    super::duplicate_delivery_is_stored_once
);

async fn robots_are_stored_but_never_answered(backend: Backend) {
    let desk = Desk::new(backend).await;
    let robot = unique("robot");
    let robot_addr = add_user(&robot);
    let raws = vec![
        mail(
            &robot_addr,
            &desk.address,
            "Out of office",
            &format!("{robot}.1@x.test"),
            "Auto-Submitted: auto-replied\r\n",
            "Away.",
        ),
        mail(
            &robot_addr,
            &desk.address,
            "Newsletter",
            &format!("{robot}.2@x.test"),
            "Precedence: bulk\r\n",
            "News.",
        ),
        mail(
            &robot_addr,
            &desk.address,
            "Bounce",
            &format!("{robot}.3@x.test"),
            "Return-Path: <>\r\n",
            "Undeliverable.",
        ),
        mail(
            &robot_addr,
            &desk.address,
            "Human",
            &format!("{robot}.4@x.test"),
            "Auto-Submitted: no\r\n",
            "Hello.",
        ),
    ];
    append_all(&desk.user, "INBOX", &raws).await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 4, "{r}");
    assert_eq!(r["acknowledged"], 1, "{r}");
    let inbox = wait_for_messages(&robot, "INBOX", 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let inbox_after = messages(&robot, "INBOX").await;
    assert_eq!(inbox_after.len(), 1, "only the human mail is answered");
    assert!(
        header(&inbox[0], "Subject")
            .unwrap_or_default()
            .contains("Human")
    );
    let t = desk.ticket("INC-000001");
    assert_eq!(t["messages"][0]["class"], "auto_reply");
    let t3 = desk.ticket("INC-000003");
    assert_eq!(t3["messages"][0]["class"], "bounce");
    desk.finish().await;
}
both_backends!(
    robots_are_stored_but_never_answered,
    super::robots_are_stored_but_never_answered
);

/// With IDLE, new mail is picked up at once, not at the next poll (the
/// interval here is a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_picks_up_new_mail_at_once() {
    let desk = Desk::with(
        Backend::Sqlite,
        DeskOptions {
            poll_interval_secs: 60,
            ..Default::default()
        },
    )
    .await;
    desk.cli(&["migrate"]);
    let mut daemon = desk.spawn();
    let up = eventually(WAIT, async || desk.daemon_log().contains("idle=true")).await;
    assert!(up, "daemon did not start with IDLE:\n{}", desk.daemon_log());
    // Let the first (empty) sync finish and IDLE begin.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "while idling",
        &format!("{cust}@idle"),
        "",
        "hi",
    )
    .await;
    let acks = wait_for_messages(&cust, "INBOX", 1, Duration::from_secs(15)).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(
        acks.len(),
        1,
        "no acknowledgement within 15 s:\n{}",
        desk.daemon_log()
    );
    desk.finish().await;
}

/// A mail that arrives after a sync asked the server for new UIDs and
/// before IDLE begins is picked up at once, not at the IDLE timeout (two
/// minutes here). The daemon's test knob holds its first sync in that
/// window while the test delivers the mail; a mail already waiting makes
/// that sync go on to fetch and move, whose answers announce the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sees_mail_that_arrives_before_idle_begins() {
    const PAUSE: Duration = Duration::from_secs(5);
    let desk = Desk::with(
        Backend::Sqlite,
        DeskOptions {
            poll_interval_secs: 120,
            ..Default::default()
        },
    )
    .await;
    desk.cli(&["migrate"]);
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "waiting at the start", &format!("{cust}@first"))
        .await;
    let pause_ms = PAUSE.as_millis().to_string();
    let mut daemon = desk.spawn_with_env(&[
        ("HELPDESK_TEST_PAUSE_BEFORE_IDLE_MS", &pause_ms),
        (
            "RUST_LOG",
            "info,sea_orm_migration=warn,sqlx=warn,sea_orm=warn,helpdeskd::poller=debug",
        ),
    ]);
    let paused = eventually(WAIT, async || {
        desk.daemon_log().contains("test pause before IDLE")
    })
    .await;
    assert!(paused, "the daemon did not pause:\n{}", desk.daemon_log());
    desk.send_from(
        &cust_addr,
        "in the window",
        &format!("{cust}@window"),
        "",
        "hi",
    )
    .await;
    let delivered = wait_for_messages(&desk.user, "INBOX", 2, PAUSE).await;
    let log = desk.daemon_log();
    assert!(
        delivered.len() >= 2 && !log.contains("test pause before IDLE over"),
        "the mail did not arrive within the pause (a slow machine?): {} in INBOX\n{log}",
        delivered.len()
    );
    let resumed = eventually(WAIT, async || {
        desk.daemon_log().contains("test pause before IDLE over")
    })
    .await;
    assert!(resumed, "the pause did not end:\n{}", desk.daemon_log());
    let start = Instant::now();
    let both = eventually(Duration::from_secs(10), async || desk.tickets().len() >= 2).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        both,
        "the mail of the window was not stored within 10 s of the pause (IDLE timeout 120 s):\n{}",
        desk.daemon_log()
    );
    eprintln!(
        "mail of the window stored {:.1} s after the pause",
        start.elapsed().as_secs_f64()
    );
    desk.finish().await;
}

/// `--log-format json`: every line about a mail carries mailbox, UID,
/// Message-ID and ticket number as fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_mail_fields() {
    let desk = Desk::new(Backend::Sqlite).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "logged", &format!("{cust}@log"))
        .await;
    let out = desk.cli_output(&["--log-format", "json", "run", "--once"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stored: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "stored")
        .collect();
    assert_eq!(stored.len(), 1, "{stderr}");
    let f = &stored[0]["fields"];
    assert_eq!(f["mailbox"], "support");
    assert_eq!(f["uid"], 1);
    assert_eq!(f["message_id"], format!("{cust}@log").as_str());
    assert_eq!(f["ticket"], "INC-000001");
    desk.finish().await;
}
