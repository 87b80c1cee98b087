//! Business relationship management by mail: a resolved ticket's customer
//! is asked once to rate it, answers from a mail client with the quote
//! below, and the rating is kept without reopening the ticket; a low one
//! tells the service's manager; the figure is in `helpdeskd report`; an
//! ordinary reply still reopens; a complaints mailbox opens CMP tickets
//! and tells the complaints group.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

/// Mails in `user`'s INBOX whose subject contains `needle`.
async fn with_subject(user: &str, needle: &str) -> Vec<String> {
    messages(user, "INBOX")
        .await
        .into_iter()
        .filter(|m| header(m, "Subject").unwrap_or_default().contains(needle))
        .collect()
}

/// Waits for a mail whose subject contains `needle`.
async fn wait_subject(user: &str, needle: &str) -> String {
    let mut found = None;
    let ok = eventually(WAIT, async || {
        found = with_subject(user, needle).await.into_iter().next();
        found.is_some()
    })
    .await;
    assert!(ok, "{user} got no mail with {needle:?}");
    found.unwrap_or_default()
}

/// Sends `raw` and processes it.
async fn deliver(desk: &Desk, from: &str, to: &str, raw: &str, inbox: &str) -> Value {
    send(from, to, raw).await;
    wait_for_messages(inbox, "INBOX", 1, WAIT).await;
    desk.run_once()
}

async fn rated_and_reported(backend: Backend) {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let boss = unique("boss");
    let boss_addr = add_user(&boss);
    let care = unique("care");
    let care_addr = add_user(&care);
    let cmp = unique("cmp");
    let cmp_addr = add_user(&cmp);
    let stack = stack();
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"
groups = ["network"]

[[sla_policy]]
name = "standard"
response = {{ normal = "8h" }}

[[service]]
name = "email"
sla_policy = "standard"
manager = "{boss_addr}"

[satisfaction]
enabled = true

[complaints]
notify = ["{care_addr}"]

[[mailbox]]
name = "complaints"
kind = "complaint"
poll_interval_secs = 2

[mailbox.imap]
host = "127.0.0.1"
port = {IMAP_PORT}
tls = "none"
ca_file = "{ca}"
user = "{cmp}"
password_file = "imap-password"
timeout_secs = 10
"#,
        ca = stack.ca_file.display(),
    );
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: extra,
            mailbox_extra: "service = \"email\"".into(),
            ..DeskOptions::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);

    // 1. The customer writes; Ada is told.
    let first = format!("{cust}.1@example.test");
    desk.send_from(
        &cust_addr,
        "Mail is slow",
        &first,
        "",
        "Sending takes minutes.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let note = wait_subject(&ada, "INC-000001").await;

    // 2. Ada answers and resolves: the customer gets the answer and one
    //    rating request, threaded below the conversation.
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/assign me\r\n/resolve\r\n\r\nWe moved your mailbox to a faster server.\r\n\r\n\
         On Fri, Dec 4, 2026 at 10:00 AM ACME Service Desk <support@example.test> wrote:\r\n\
         > New ticket.\r\n",
    );
    deliver(&desk, &ada_addr, &to, &raw, &desk.user).await;
    assert_eq!(desk.ticket("INC-000001")["status"], "resolved");
    let question = wait_subject(&cust, "How did we do?").await;
    let answer = messages(&cust, "INBOX")
        .await
        .into_iter()
        .find(|m| body(m).contains("faster server"))
        .expect("the answer");
    let q = body(&question);
    assert!(q.contains("from 1 (very dissatisfied) to 5"), "{q}");
    assert!(q.contains("INC-000001"), "{q}");
    assert_eq!(
        header(&question, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        header(&question, "References")
            .unwrap_or_default()
            .contains(&first)
    );
    assert_eq!(with_subject(&cust, "How did we do?").await.len(), 1);

    // 3. The customer rates 2 from Gmail, the question quoted below: it is
    //    recorded, the ticket stays resolved, the manager gets one mail,
    //    Ada none.
    let ada_before = messages(&ada, "INBOX").await.len();
    let gmail = "2 slow to answer\r\n\r\nOn Fri, Dec 4, 2026 at 10:05 AM ACME Service Desk \
                 <support@example.test> wrote:\r\n> Hello,\r\n> your ticket INC-000001 has been \
                 resolved.\r\n> Please reply with a number from 1 to 5\r\n";
    let (to, raw) = reply_to(&question, &cust_addr, "Re:", "", gmail);
    deliver(&desk, &cust_addr, &to, &raw, &desk.user).await;
    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "resolved", "a rating never reopens: {t}");
    assert_eq!(t["ratings"][0]["score"], 2, "{t}");
    assert_eq!(t["ratings"][0]["comment"], "slow to answer", "{t}");
    assert_eq!(t["ratings"][0]["service"], "email", "{t}");
    let low = wait_subject(&boss, "Low rating 2/5").await;
    let b = body(&low);
    assert!(b.contains("slow to answer") && b.contains(&ada_addr), "{b}");
    assert!(!b.contains("> Hello"), "the quote is not the comment: {b}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(messages(&boss, "INBOX").await.len(), 1, "one mail");
    assert_eq!(
        messages(&ada, "INBOX").await.len(),
        ada_before,
        "a rating is no customer reply for staff"
    );

    // 4. The report shows it, per service and per staff member.
    let json: Value =
        serde_json::from_str(&desk.cli(&["report", "satisfaction", "--format", "json"]))
            .expect("JSON");
    let s = &json["satisfaction"];
    assert_eq!(s["asked"], 1, "{json}");
    assert_eq!(s["overall"]["ratings"], 1, "{json}");
    assert_eq!(s["overall"]["average"], 2.0, "{json}");
    assert_eq!(s["overall"]["satisfied"], 0, "{json}");
    assert_eq!(s["services"][0][0], "email", "{json}");
    assert_eq!(s["staff"][0][0], ada_addr.as_str(), "{json}");
    let table = desk.cli(&["report", "satisfaction"]);
    assert!(table.contains("(all)") && table.contains("2.00"), "{table}");
    let html = desk.cli(&["report", "satisfaction", "--format", "html"]);
    assert!(
        html.contains(">Customer satisfaction</h2>") && html.contains("avg 2.00"),
        "{html}"
    );

    // 5. An ordinary reply to the answer still reopens, and asks nothing.
    let (to, raw) = reply_to(
        &answer,
        &cust_addr,
        "Re:",
        "",
        "it is broken again\r\n\r\n> We moved your mailbox\r\n",
    );
    deliver(&desk, &cust_addr, &to, &raw, &desk.user).await;
    assert_eq!(desk.ticket("INC-000001")["status"], "open");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(with_subject(&cust, "How did we do?").await.len(), 1);

    // 6. Resolved again: a second question (a new resolution); closed
    //    after that: no third. The customer then answers the first question
    //    again, "5": recorded on the closed ticket, no new ticket, and the
    //    figures count the latest answer to that question.
    let (to, raw) = reply_to(&note, &ada_addr, "Re:", "", "/resolve\r\n");
    deliver(&desk, &ada_addr, &to, &raw, &desk.user).await;
    let ok = eventually(WAIT, async || {
        with_subject(&cust, "How did we do?").await.len() == 2
    })
    .await;
    assert!(ok, "a second resolution asks again");
    let (to, raw) = reply_to(&note, &ada_addr, "Re:", "", "/close\r\n");
    deliver(&desk, &ada_addr, &to, &raw, &desk.user).await;
    assert_eq!(desk.ticket("INC-000001")["status"], "closed");
    let (to, raw) = reply_to(
        &question,
        &cust_addr,
        "Re:",
        "",
        "5 after all, thanks\r\n\r\n> How did we do?\r\n",
    );
    deliver(&desk, &cust_addr, &to, &raw, &desk.user).await;
    assert_eq!(desk.ticket("INC-000001")["status"], "closed");
    assert_eq!(desk.tickets().len(), 1, "a rating never opens a ticket");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(with_subject(&cust, "How did we do?").await.len(), 2);
    let json: Value =
        serde_json::from_str(&desk.cli(&["report", "satisfaction", "--format", "json"]))
            .expect("JSON");
    let s = &json["satisfaction"];
    assert_eq!(s["asked"], 2, "{json}");
    assert_eq!(s["overall"]["ratings"], 1, "{json}");
    assert_eq!(s["overall"]["average"], 5.0, "{json}");
    assert_eq!(messages(&boss, "INBOX").await.len(), 1, "a 5 tells nobody");

    // 7. A mail to the complaints mailbox opens a complaint; the group hears.
    let complaint = mail(
        &cust_addr,
        &cmp_addr,
        "Nobody called back",
        &format!("{cust}.2@example.test"),
        "",
        "I waited three days for a call.",
    );
    send(&cust_addr, &cmp_addr, &complaint).await;
    wait_for_messages(&cmp, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let c = desk.ticket("CMP-000002");
    assert_eq!(c["kind"], "complaint", "{c}");
    let notice = wait_subject(&care, "CMP-000002").await;
    let b = body(&notice);
    assert!(b.starts_with("New complaint."), "{b}");
    assert!(b.contains("I waited three days"), "{b}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(messages(&care, "INBOX").await.len(), 1, "one notice");

    desk.finish().await;
}

both_backends!(rated_and_reported, super::rated_and_reported);
