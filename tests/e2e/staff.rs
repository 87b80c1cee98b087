//! Staff work from their own mail client: notified of new tickets and
//! customer replies, they answer by replying (relayed from the desk address,
//! quote and signature stripped), steer tickets with commands, and only a
//! mail that proves its sender (a token of theirs, a trusted DKIM pass) counts.

use std::time::Duration;

use mail_parser::MimeHeaders;
use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

struct Team {
    desk: Desk,
    ada: String,
    ada_addr: String,
    bob: String,
}

async fn team(backend: Backend) -> Team {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let bob = unique("bob");
    let bob_addr = add_user(&bob);
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"
groups = ["network"]

[[staff]]
name = "Bob Builder"
email = "{bob_addr}"
groups = ["desktop"]

[trust]
authserv_ids = ["mx.example.test"]

[tickets]
ack_limit_per_hour = 3
"#
    );
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: extra,
            ..DeskOptions::default()
        },
    )
    .await;
    Team {
        desk,
        ada,
        ada_addr,
        bob,
    }
}

fn messages_of(t: &Value) -> Vec<Value> {
    t["messages"].as_array().cloned().unwrap_or_default()
}

/// The latest mail in `user`'s INBOX, after waiting for `n` of them.
async fn nth_mail(user: &str, n: usize) -> String {
    let inbox = wait_for_messages(user, "INBOX", n, WAIT).await;
    assert!(
        inbox.len() >= n,
        "{user} has {} mails, expected {n}",
        inbox.len()
    );
    inbox[n - 1].clone()
}

const OUTLOOK_QUOTE: &str = "\r\n\r\nBest regards\r\nAda\r\n\r\n\
________________________________\r\n\
From: ACME Service Desk <support@example.test>\r\n\
Sent: Wednesday, November 25, 2026 10:00 AM\r\n\
To: Ada Lovelace\r\n\
Subject: [ACME INC-000001] VPN down\r\n\r\n\
New ticket.\r\nTicket: INC-000001\r\nThe VPN is down since this morning.\r\n";

async fn whole_conversation(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        bob,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let kim = unique("kim");
    let kim_addr = add_user(&kim);

    // 1. The customer writes, with a colleague in Cc.
    let first = format!("{cust}.1@example.test");
    desk.send_from(
        &cust_addr,
        "VPN down",
        &first,
        &format!("Cc: Kim <{kim_addr}>\r\n"),
        "The VPN is down since this morning.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");

    // 2. The customer gets the acknowledgement; staff (nobody assigned, no
    //    group: everybody) get a notification with the facts and the text.
    let ack = nth_mail(&cust, 1).await;
    assert!(
        header(&ack, "Subject")
            .unwrap_or_default()
            .contains("[ACME INC-000001]")
    );
    let note = nth_mail(&ada, 1).await;
    let note_body = body(&note);
    for want in [
        "INC-000001",
        "Status:   new",
        "Priority: normal",
        &cust_addr,
        "The VPN is down since this morning.",
    ] {
        assert!(
            note_body.contains(want),
            "notification lacks {want:?}:\n{note_body}"
        );
    }
    assert_eq!(
        header(&note, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let reply_addr = header(&note, "Reply-To").unwrap_or_default();
    assert!(
        reply_addr.contains("+INC-000001."),
        "tokenised Reply-To: {reply_addr}"
    );
    nth_mail(&bob, 1).await;

    // 3. Ada answers from Outlook: commands on top, her text, signature and
    //    the quoted notification below.
    let text = format!(
        "/priority high\r\n/assign me\r\n\r\nHi Jo,\r\n\r\nplease reconnect, the gateway was restarted.{OUTLOOK_QUOTE}"
    );
    let (to, raw) = reply_to(&note, &ada_addr, "RE:", "", &text);
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();

    let t = desk.ticket("INC-000001");
    assert_eq!(t["priority"], "high", "{t}");
    assert_eq!(t["assignee"], ada_addr.as_str(), "{t}");
    assert_eq!(t["status"], "open", "{t}");

    // 4. The customer and Kim receive the answer from the desk address,
    //    stripped, threaded under the customer's mail; Ada's address is nowhere.
    for (user, addr) in [(&cust, &cust_addr), (&kim, &kim_addr)] {
        let n = if user == &cust { 2 } else { 1 };
        let answer = nth_mail(user, n).await;
        let (name, from) = decoded_from(&answer);
        assert_eq!(from, desk.address, "answer to {addr} comes from the desk");
        assert_eq!(name, "Ada Lovelace via ACME Service Desk");
        assert!(
            !answer.contains(&ada_addr),
            "staff address leaked to {addr}:\n{answer}"
        );
        let b = body(&answer);
        assert!(
            b.contains("please reconnect, the gateway was restarted."),
            "{b}"
        );
        for gone in [
            "/priority",
            "/assign",
            "Original",
            "Sent: Wednesday",
            "New ticket.",
        ] {
            assert!(!b.contains(gone), "{gone:?} should be stripped:\n{b}");
        }
        assert_eq!(
            header(&answer, "In-Reply-To").as_deref(),
            Some(format!("<{first}>").as_str())
        );
        assert!(
            header(&answer, "References")
                .unwrap_or_default()
                .contains(&first)
        );
        assert!(
            header(&answer, "Auto-Submitted").is_none(),
            "a person wrote it"
        );
        assert!(
            header(&answer, "Subject")
                .unwrap_or_default()
                .contains("[ACME INC-000001]")
        );
    }
    let answer = nth_mail(&cust, 2).await;

    // 5. The customer answers from Gmail, quoting; only Ada (now assignee)
    //    is told, with the new text only.
    let gmail = "Works now, thanks!\r\n\r\nOn Wed, Nov 25, 2026 at 10:05 AM Ada Lovelace via ACME \
                 Service Desk <support@example.test> wrote:\r\n> Hi Jo,\r\n>\r\n> please reconnect, \
                 the gateway was restarted.\r\n";
    let (to, raw) = reply_to(&answer, &cust_addr, "Re:", "", gmail);
    send(&cust_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let news = nth_mail(&ada, 2).await;
    let news_body = body(&news);
    assert!(news_body.contains("Works now, thanks!"), "{news_body}");
    assert!(
        !news_body.contains("> Hi Jo"),
        "quote stripped:\n{news_body}"
    );
    assert_eq!(
        messages(&bob, "INBOX").await.len(),
        1,
        "Bob is not the assignee"
    );
    let t = desk.ticket("INC-000001");
    let shown: Vec<String> = messages_of(&t)
        .iter()
        .map(|m| m["body"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        shown.iter().any(|b| b.trim() == "Works now, thanks!"),
        "{shown:?}"
    );

    // 6. Ada resolves with a reply made only of a command: nothing goes out.
    let (to, raw) = reply_to(
        &news,
        &ada_addr,
        "Re:",
        "",
        "/resolve\r\n\r\nOn Wed, Nov 25, 2026 at 10:06 AM ACME Service Desk \
         <support@example.test> wrote:\r\n> The customer replied.\r\n",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "resolved", "{t}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        messages(&cust, "INBOX").await.len(),
        2,
        "no mail for a command-only reply"
    );
    assert_eq!(messages(&kim, "INBOX").await.len(), 1);

    // 7. The customer writes again within the reopen window: reopened.
    let (to, raw) = reply_to(&answer, &cust_addr, "Re:", "", "It broke again.");
    send(&cust_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "open", "{t}");
    desk.finish().await;
}

both_backends!(whole_conversation_by_mail, super::whole_conversation);

/// A forged staff mail: right From, but no token of that staff member for
/// this ticket (none, the customer's, one for another ticket).
async fn forged_staff_commands_are_refused(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        bob,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Printer",
        &format!("{cust}.1@example.test"),
        "",
        "jammed",
    )
    .await;
    desk.send_from(
        &cust_addr,
        "Scanner",
        &format!("{cust}.2@example.test"),
        "",
        "dead",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    desk.run_once();
    let acks = wait_for_messages(&cust, "INBOX", 2, WAIT).await;
    let ack1 = acks
        .iter()
        .find(|m| {
            header(m, "Subject")
                .unwrap_or_default()
                .contains("INC-000001")
        })
        .expect("ack of ticket 1")
        .clone();
    let notes = wait_for_messages(&ada, "INBOX", 2, WAIT).await;
    let ada_note_2 = notes
        .iter()
        .find(|m| {
            header(m, "Subject")
                .unwrap_or_default()
                .contains("INC-000002")
        })
        .expect("notification of ticket 2")
        .clone();
    let bob_before = messages(&bob, "INBOX").await.len();

    // a) From Ada, replying to the customer's acknowledgement: no token of Ada's.
    let (_, a) = reply_to(&ack1, &ada_addr, "Re:", "", "/close\r\nClosing this.");
    // b) From Ada, to the customer's own tokenised Reply-To, without headers.
    let cust_reply_to = header(&ack1, "Reply-To").expect("Reply-To");
    let cust_token_addr = cust_reply_to
        .rsplit_once('<')
        .map(|(_, x)| x.trim_end_matches('>').to_string())
        .unwrap_or(cust_reply_to);
    let b = mail(
        &ada_addr,
        &cust_token_addr,
        "Re: Printer",
        &unique("forged-b"),
        "",
        "/status closed",
    );
    // c) Ada's real token, but of ticket 2, on a mail threaded to ticket 1.
    let (_, c) = reply_to(&ada_note_2, &ada_addr, "Re:", "", "/priority urgent");
    let ack1_id = header(&ack1, "Message-ID").expect("ack id");
    let c = c.replacen(
        "In-Reply-To: ",
        &format!("In-Reply-To: {ack1_id}\r\nX-Was: "),
        1,
    );
    // d) A DKIM pass, but recorded by a server nobody trusts.
    let (_, d) = reply_to(
        &ack1,
        &ada_addr,
        "Re:",
        "Authentication-Results: evil.test; dkim=pass header.d=example.test\r\n",
        "/assign bob",
    );
    for raw in [a, b, c, d] {
        send(&ada_addr, &desk.address, &raw).await;
    }
    wait_for_messages(&desk.user, "INBOX", 4, WAIT).await;
    desk.run_once();

    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "new", "{t}");
    assert_eq!(t["priority"], "normal", "{t}");
    assert!(t["assignee"].is_null(), "{t}");
    let flagged: Vec<Value> = messages_of(&t)
        .into_iter()
        .filter(|m| {
            m["flag"]
                .as_str()
                .is_some_and(|f| f.contains("refused staff claim"))
        })
        .collect();
    assert_eq!(
        flagged.len(),
        4,
        "every forged mail is visible on the ticket: {t}"
    );
    assert!(flagged.iter().all(|m| m["author"] == "customer"));
    let t2 = desk.ticket("INC-000002");
    assert_eq!(t2["priority"], "normal", "{t2}");
    // The refusal is visible to staff: a warning notification per forged mail.
    let bob_mails = wait_for_messages(&bob, "INBOX", bob_before + 4, WAIT).await;
    let warnings = bob_mails
        .iter()
        .filter(|m| body(m).contains("WARNING: this mail claims to come from"))
        .count();
    assert_eq!(warnings, 4);
    // Nothing reached the customer beyond the two acknowledgements.
    assert_eq!(messages(&cust, "INBOX").await.len(), 2);

    // A trusted server's DKIM pass does prove Ada, without a token.
    let (_, good) = reply_to(
        &ack1,
        &ada_addr,
        "Re:",
        "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n",
        "/priority low",
    );
    send(&ada_addr, &desk.address, &good).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    assert_eq!(desk.ticket("INC-000001")["priority"], "low");
    desk.finish().await;
}

both_backends!(forged_staff, super::forged_staff_commands_are_refused);

/// A bad command changes nothing, sends nothing to the customer and answers
/// the staff member with the reason; a note stays internal.
async fn bad_commands_and_notes(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        bob,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Mail slow",
        &format!("{cust}.1@example.test"),
        "",
        "slow",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let note = nth_mail(&ada, 1).await;

    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/stauts closed\r\n/assign nobody-here\r\nHello Jo",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let err = nth_mail(&ada, 2).await;
    assert!(
        header(&err, "Subject")
            .unwrap_or_default()
            .starts_with("Not applied")
    );
    let b = body(&err);
    assert!(b.contains("unknown command /stauts"), "{b}");
    assert!(b.contains("/assign nobody-here"), "{b}");
    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "new");
    assert!(t["assignee"].is_null());
    assert_eq!(messages(&cust, "INBOX").await.len(), 1, "only the ack");

    // An internal note goes to the other staff, never to the customer.
    let bob_before = messages(&bob, "INBOX").await.len();
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/note the mail server queue is long",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let bob_mails = wait_for_messages(&bob, "INBOX", bob_before + 1, WAIT).await;
    assert!(body(&bob_mails[bob_before]).contains("the mail server queue is long"));
    let t = desk.ticket("INC-000001");
    assert!(
        messages_of(&t)
            .iter()
            .any(|m| m["visibility"] == "internal" && m["body"] == "the mail server queue is long"),
        "{t}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(messages(&cust, "INBOX").await.len(), 1);
    desk.finish().await;
}

both_backends!(
    bad_commands_and_notes_by_mail,
    super::bad_commands_and_notes
);

/// A reply to a closed ticket opens a new ticket linked to it.
async fn closed_tickets_stay_closed(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Laptop",
        &format!("{cust}.1@example.test"),
        "",
        "broken",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let note = nth_mail(&ada, 1).await;
    let (to, raw) = reply_to(&note, &ada_addr, "Re:", "", "/close");
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    assert_eq!(desk.ticket("INC-000001")["status"], "closed");

    let ack = nth_mail(&cust, 1).await;
    let (to, raw) = reply_to(&ack, &cust_addr, "Re:", "", "Still broken!");
    send(&cust_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 1, "{r}");
    let t2 = desk.ticket("INC-000002");
    assert_eq!(t2["status"], "new");
    assert!(
        t2["linked"].to_string().contains("INC-000001"),
        "new ticket links to the closed one: {t2}"
    );
    assert_eq!(desk.ticket("INC-000001")["status"], "closed");
    desk.finish().await;
}

both_backends!(
    closed_ticket_reply_opens_a_linked_ticket,
    super::closed_tickets_stay_closed
);

/// A desk mail that bounces: the delivery is marked failed on the ticket and
/// the assignee is told; the bounce itself is never answered.
async fn bounces_mark_the_delivery_failed(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Badge",
        &format!("{cust}.1@example.test"),
        "",
        "lost it",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let note = nth_mail(&ada, 1).await;
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/assign me\r\nA new badge is ready.",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let answer = nth_mail(&cust, 2).await;
    let answer_id = header(&answer, "Message-ID").expect("answer id");

    // The customer's server rejects the answer later and reports it (RFC 3464).
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.cust.test>\r\n\
To: {desk_addr}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <{id}@mx.cust.test>\r\n\
Date: Wed, 25 Nov 2026 10:10:00 +0000\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.cust.test\r\n\r\n\
Final-Recipient: rfc822; {cust_addr}\r\nAction: failed\r\nStatus: 5.2.2\r\n\
Diagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: ACME Service Desk <{desk_addr}>\r\nTo: {cust_addr}\r\nMessage-ID: {answer_id}\r\n\
Subject: Re: Badge\r\n\
--B--\r\n",
        desk_addr = desk.address,
        id = unique("dsn"),
    );
    let envelope = lettre::address::Envelope::new(None, vec![desk.address.parse().expect("addr")])
        .expect("envelope");
    use lettre::AsyncTransport;
    transport(SMTP_PORT)
        .send_raw(&envelope, dsn.as_bytes())
        .await
        .expect("send DSN");
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    let r = desk.run_once();
    assert_eq!(
        r["new_tickets"], 0,
        "the bounce threads into the ticket: {r}"
    );

    let t = desk.ticket("INC-000001");
    let answer_row = t["outbox"]
        .as_array()
        .expect("outbox")
        .iter()
        .find(|o| o["kind"] == "answer")
        .cloned()
        .expect("answer in outbox");
    assert_eq!(answer_row["status"], "bounced", "{t}");
    assert!(
        answer_row["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("5.2.2")
    );
    let bounce = messages_of(&t)
        .into_iter()
        .find(|m| m["class"] == "bounce")
        .expect("bounce stored on the ticket");
    assert!(
        bounce["flag"].as_str().unwrap_or("").contains(&cust_addr),
        "{bounce}"
    );
    // The assignee is told; nobody answers the robot.
    let notice = nth_mail(&ada, 2).await;
    let b = body(&notice);
    assert!(
        b.contains("could not be delivered") && b.contains(&cust_addr),
        "{b}"
    );
    assert_eq!(messages(&cust, "INBOX").await.len(), 2);
    desk.finish().await;
}

both_backends!(
    bounce_of_a_desk_mail,
    super::bounces_mark_the_delivery_failed
);

/// The desk against a real autoresponder (a mailbox that answers every mail,
/// here without any robot header, the worst kind): the exchange stops.
async fn autoresponder_loop_stops(backend: Backend) {
    let Team { desk, .. } = team(backend).await;
    let bot = unique("bot");
    let bot_addr = add_user(&bot);
    // The bot writes first, then answers whatever arrives, each answer a
    // fresh mail (new subject, no In-Reply-To), so every one opens a ticket.
    desk.send_from(
        &bot_addr,
        "Hello",
        &format!("{bot}.0@example.test"),
        "",
        "ping",
    )
    .await;
    let mut answered = 0;
    for round in 0..8 {
        wait_for_messages(&desk.user, "INBOX", 1, Duration::from_secs(3)).await;
        desk.run_once();
        let inbox = wait_for_messages(&bot, "INBOX", answered + 1, Duration::from_secs(3)).await;
        for (n, _) in inbox[answered..].iter().enumerate() {
            let raw = crate::harness::mail(
                &bot_addr,
                &desk.address,
                &format!("Automatic answer {round}.{n}"),
                &unique("bot-answer"),
                "",
                "I answer everything.",
            );
            send(&bot_addr, &desk.address, &raw).await;
        }
        answered = inbox.len();
    }
    // ack_limit_per_hour = 3: three acknowledgements, then silence.
    let inbox = messages(&bot, "INBOX").await;
    assert_eq!(inbox.len(), 3, "the desk stops answering the bot");
    assert!(
        inbox
            .iter()
            .all(|m| header(m, "Auto-Submitted").as_deref() == Some("auto-replied"))
    );
    assert!(
        inbox
            .iter()
            .all(|m| header(m, "X-Auto-Response-Suppress").as_deref() == Some("All"))
    );
    // A responder that marks itself (Auto-Submitted) is never answered at all.
    let marked = unique("marked");
    let marked_addr = add_user(&marked);
    desk.send_from(
        &marked_addr,
        "Out of Office: Re: your ticket",
        &format!("{marked}.1@example.test"),
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(messages(&marked, "INBOX").await.is_empty());
    desk.finish().await;
}

both_backends!(autoresponder, super::autoresponder_loop_stops);

/// An HTML-only Outlook reply with an attachment: the customer gets the new
/// text (the quoted notification cut at Outlook's divRplyFwdMsg) and the file.
async fn html_reply_with_attachment_is_relayed(backend: Backend) {
    let Team {
        desk,
        ada,
        ada_addr,
        ..
    } = team(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Invoice copy",
        &format!("{cust}.1@example.test"),
        "",
        "Please send it.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let note = nth_mail(&ada, 1).await;
    let body = "--MIX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><div>Hi Jo,<br>here is the copy you asked for.<br>Ada</div>\
<div id=\"divRplyFwdMsg\"><hr><b>From:</b> ACME Service Desk<br><b>Sent:</b> Wednesday\
<br><b>Subject:</b> [ACME INC-000001] Invoice copy</div><div>New ticket. Please send it.</div>\
</body></html>\r\n\
--MIX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice-42.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKdGVzdAo=\r\n--MIX--";
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "RE:",
        "X-Mailer: Microsoft Outlook 16.0\r\nContent-Type: multipart/mixed; boundary=\"MIX\"\r\n",
        body,
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let answer = nth_mail(&cust, 2).await;
    let text = crate::harness::body(&answer);
    assert!(text.contains("here is the copy you asked for."), "{text}");
    assert!(
        !text.contains("New ticket") && !text.contains("Sent:"),
        "quote cut:\n{text}"
    );
    let msg = mail_parser::MessageParser::default()
        .parse(answer.as_bytes())
        .expect("answer parses");
    let att = msg.attachments().next().expect("the attachment went along");
    assert_eq!(att.attachment_name(), Some("invoice-42.pdf"));
    assert_eq!(att.contents(), b"%PDF-1.4\n%\xc7\xec\x8f\xa2\ntest\n");
    desk.finish().await;
}

both_backends!(
    html_reply_with_attachment,
    super::html_reply_with_attachment_is_relayed
);
