//! One mail never stops the desk: hostile senders, recipients and bodies
//! delivered through the real mail stack, each followed by normal mail that
//! must become tickets in the same cycle, while the hostile one is stored
//! with a warning (or quarantined with the reason).

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

/// A mail whose headers are written verbatim (`From`, `Cc` … included).
fn raw_mail(headers: &str, subject: &str, message_id: &str, to: &str, body: &str) -> String {
    format!(
        "{headers}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn message_warnings(ticket: &Value) -> Vec<String> {
    ticket["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["warnings"].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// Every poison sender of the issue, then normal mail, through SMTP.
async fn poison_senders_do_not_stop_the_desk(backend: Backend) {
    let desk = Desk::new(backend).await;
    let cust_user = unique("cust");
    let cust = add_user(&cust_user);
    let run = unique("poison");
    let poison: Vec<(&str, String)> = vec![
        // A display name that decodes to a line break.
        (
            "lf-name",
            "From: =?utf-8?b?QQpC?= <lf@example.test>".to_string(),
        ),
        // A line break and a NUL in encoded words of the comment and the name.
        (
            "lf-comment",
            "From: cmt@example.test (=?utf-8?q?A=0AB?=)".to_string(),
        ),
        (
            "nul-name",
            "From: =?utf-8?q?A=00B?= <nul@example.test>".to_string(),
        ),
        (
            "crlf-name",
            "From: =?utf-8?b?QQ0KQmNjOiB4QHkudGVzdA==?= <crlf@example.test>".to_string(),
        ),
        // A domain literal and a quoted local part: valid RFC 5322.
        ("literal", "From: x@[127.0.0.1]".to_string()),
        ("quoted", "From: \"a b\"@example.test".to_string()),
        // A Cc whose display name decodes to a line break.
        (
            "lf-cc",
            format!("From: Customer <{cust}>\r\nCc: =?utf-8?b?QQpC?= <cc-lf@example.test>"),
        ),
    ];
    for (what, headers) in &poison {
        let raw = raw_mail(
            headers,
            &format!("poison {what}"),
            &format!("{what}.{run}@poison"),
            &desk.address,
            "hostile",
        );
        send(&cust, &desk.address, &raw).await;
    }
    for i in 0..3 {
        desk.send_from(
            &cust,
            &format!("normal {i}"),
            &format!("normal{i}.{run}@ok"),
            "",
            "my printer is broken",
        )
        .await;
    }
    let total = poison.len() + 3;
    let arrived = wait_for_messages(&desk.user, "INBOX", total, WAIT).await;
    assert_eq!(arrived.len(), total, "every mail reached the desk's INBOX");

    let report = desk.run_once();
    assert!(
        report["mailbox_errors"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "no mailbox failed: {report}"
    );
    let tickets = desk.tickets();
    let subjects: Vec<&str> = tickets
        .iter()
        .filter_map(|t| t["subject"].as_str())
        .collect();
    for i in 0..3 {
        assert!(
            subjects.contains(&format!("normal {i}").as_str()),
            "normal mail {i} became a ticket in the same cycle: {subjects:?}"
        );
    }
    let quarantined = desk.cli(&["quarantine", "list", "--json"]);
    let quarantined: Vec<Value> = serde_json::from_str(&quarantined).expect("quarantine JSON");
    for (what, _) in &poison {
        let stored = subjects.contains(&format!("poison {what}").as_str());
        let key = format!("mid:{what}.{run}@poison");
        let held = quarantined.iter().any(|q| {
            q.to_string().contains(&key) && q["reason"].as_str().is_some_and(|r| !r.is_empty())
        });
        assert!(
            stored || held,
            "{what}: stored as a ticket or quarantined with a reason; tickets {subjects:?}, quarantine {quarantined:?}"
        );
    }
    assert!(
        messages(&desk.user, "INBOX").await.is_empty(),
        "every mail marked processed"
    );

    // Names are written back on one line; the ones the desk cannot answer
    // say so on the message and get no acknowledgement.
    let by_subject = |s: &str| {
        tickets
            .iter()
            .find(|t| t["subject"] == s)
            .and_then(|t| t["number"].as_str())
            .map(|n| desk.ticket(n))
            .unwrap_or_else(|| panic!("no ticket {s:?}: {subjects:?}"))
    };
    let literal = by_subject("poison literal");
    assert!(
        message_warnings(&literal)
            .iter()
            .any(|w| w.contains("cannot be answered") && w.contains("x@[127.0.0.1]")),
        "the domain literal is flagged: {literal}"
    );
    assert!(
        literal["outbox"].as_array().is_none_or(Vec::is_empty),
        "nothing is sent to a domain literal: {literal}"
    );
    let lf = by_subject("poison lf-name");
    assert_eq!(lf["outbox"].as_array().map(Vec::len), Some(1), "{lf}");
    for (what, _) in &poison {
        let t = by_subject(&format!("poison {what}"));
        let shown = t.to_string();
        assert!(
            !shown.contains("A\\nB"),
            "{what}: no line break kept: {shown}"
        );
    }

    // The acknowledgements went out, each header on one line.
    let acks = wait_for_messages(&cust_user, "INBOX", 4, WAIT).await;
    assert_eq!(acks.len(), 4, "the customer's four mails are acknowledged");
    for ack in &acks {
        let head = ack.split("\r\n\r\n").next().unwrap_or("");
        assert!(
            !head.contains("\nBcc:") && !head.contains("\nBcc :"),
            "no header injected: {head}"
        );
    }
    desk.finish().await;
}
both_backends!(
    poison_senders_do_not_stop_the_desk,
    super::poison_senders_do_not_stop_the_desk
);

/// A staff answer on a ticket with more participants than
/// `tickets.max_recipients` goes to the customer and the first of them, a
/// participant whose name holds a line break included, and the staff member
/// is told who was left out.
async fn fan_out_is_capped(backend: Backend) {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: format!(
                "[[staff]]\nname = \"Ada\"\nemail = \"{ada_addr}\"\n\n[tickets]\nmax_recipients = 5\n"
            ),
            ..Default::default()
        },
    )
    .await;
    let cust = add_user(&unique("cust"));
    let run = unique("fan");
    let cc: Vec<String> = std::iter::once("=?utf-8?b?QQpC?= <cc-lf@elsewhere.test>".to_string())
        .chain((0..12).map(|i| format!("cc{i}@elsewhere.test")))
        .collect();
    let raw = raw_mail(
        &format!("From: Customer <{cust}>\r\nCc: {}", cc.join(",\r\n ")),
        "many people",
        &format!("first.{run}@cust"),
        &desk.address,
        "please help",
    );
    send(&cust, &desk.address, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let notification = wait_for_messages(&ada, "INBOX", 1, WAIT).await;
    assert_eq!(notification.len(), 1, "Ada is notified");
    let (to, reply) = reply_to(&notification[0], &ada_addr, "Re:", "", "We are on it.\r\n");
    send(&ada_addr, &to, &reply).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let after = desk.cli(&["run", "--once", "--no-send", "--json"]);
    assert!(after.contains("\"stored\""), "{after}");

    let number = desk.tickets()[0]["number"]
        .as_str()
        .expect("number")
        .to_string();
    let t = desk.ticket(&number);
    let outbox = t["outbox"].as_array().cloned().unwrap_or_default();
    let answers: Vec<&str> = outbox
        .iter()
        .filter(|o| o["kind"] == "answer")
        .filter_map(|o| o["to"].as_str())
        .collect();
    assert_eq!(answers.len(), 5, "capped at max_recipients: {answers:?}");
    assert_eq!(answers[0], cust, "the customer first: {answers:?}");
    assert!(
        answers.contains(&"cc-lf@elsewhere.test"),
        "the participant with a line break in the name is answered: {answers:?}"
    );
    let told = outbox
        .iter()
        .find(|o| o["kind"] == "command-error" && o["to"] == ada_addr.as_str());
    assert!(told.is_some(), "Ada is told of the cap: {outbox:?}");
    desk.finish().await;
}
both_backends!(fan_out_is_capped, super::fan_out_is_capped);
