//! Problem management by mail: a problem opened from an incident, more
//! incidents linked to it, its root cause, workaround and known error set by
//! replies, a matching new incident answered with the workaround, and the
//! solved problem telling every linked incident's customer once.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

/// The `n`th mail (1-based) in `user`'s INBOX, after waiting for it.
async fn nth_mail(user: &str, n: usize) -> String {
    let inbox = wait_for_messages(user, "INBOX", n, WAIT).await;
    assert!(
        inbox.len() >= n,
        "{user} has {} mails, expected {n}",
        inbox.len()
    );
    inbox[n - 1].clone()
}

/// The mail in `user`'s INBOX whose subject names `number`, waiting for
/// `n` mails first.
async fn mail_about(user: &str, n: usize, number: &str) -> String {
    let inbox = wait_for_messages(user, "INBOX", n, WAIT).await;
    inbox
        .into_iter()
        .rev()
        .find(|m| header(m, "Subject").unwrap_or_default().contains(number))
        .unwrap_or_else(|| panic!("{user} has no mail about {number}"))
}

fn problems(desk: &Desk, known_only: bool) -> Vec<Value> {
    let mut args = vec!["problem", "list", "--json"];
    if known_only {
        args.push("--known-errors");
    }
    let out = desk.cli(&args);
    match serde_json::from_str(&out) {
        Ok(Value::Array(v)) => v,
        other => panic!("bad problem list: {other:?}: {out}"),
    }
}

async fn staff_reply(desk: &Desk, to_mail: &str, from: &str, text: &str) {
    let (to, raw) = reply_to(to_mail, from, "Re:", "", text);
    send(from, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
}

async fn a_problem_and_its_incidents(backend: Backend) {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: format!(
                "[[staff]]\nname = \"Ada Lovelace\"\nemail = \"{ada_addr}\"\ngroups = [\"network\"]\n"
            ),
            ..DeskOptions::default()
        },
    )
    .await;
    let customers: Vec<(String, String)> = (0..5)
        .map(|i| {
            let u = unique(&format!("cust{i}"));
            let a = add_user(&u);
            (u, a)
        })
        .collect();

    // Three customers report the same trouble in their own words.
    let reports = [
        ("VPN drops", "My VPN connection drops every hour."),
        (
            "Remote access",
            "Since Monday the VPN disconnects all the time.",
        ),
        ("vpn??", "vpn gone again, third time today"),
    ];
    for (i, (subject, text)) in reports.iter().enumerate() {
        let (u, a) = &customers[i];
        desk.send_from(a, subject, &format!("{u}.1@example.test"), "", text)
            .await;
    }
    wait_for_messages(&desk.user, "INBOX", 3, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 3, "{r}");

    // Ada opens the problem from the first incident's notification.
    let note1 = mail_about(&ada, 3, "INC-000001").await;
    staff_reply(
        &desk,
        &note1,
        &ada_addr,
        "/problem VPN drops every hour\r\n",
    )
    .await;
    let list = problems(&desk, false);
    assert_eq!(list.len(), 1, "{list:?}");
    let prb = list[0]["number"].as_str().expect("number").to_string();
    assert!(prb.starts_with("PRB-"), "{prb}");
    assert_eq!(list[0]["assignee"], ada_addr.as_str());
    assert_eq!(list[0]["linked"], 1);

    // Her mail about the new problem carries her token for it: she links
    // the two other incidents from theirs, and records what she found.
    let opened = mail_about(&ada, 4, &prb).await;
    assert!(body(&opened).contains("/rootcause"), "{}", body(&opened));
    for number in ["INC-000002", "INC-000003"] {
        let note = mail_about(&ada, 4, number).await;
        staff_reply(&desk, &note, &ada_addr, &format!("/link {prb}\r\n")).await;
    }
    staff_reply(
        &desk,
        &opened,
        &ada_addr,
        "/rootcause The DHCP lease pool of the VPN gateway was too small.\r\n\
         /workaround Reconnect with the web client at https://vpn.example.test.\r\n\
         /knownerror vpn|anyconnect, drops|disconnects|gone\r\n",
    )
    .await;
    let known = problems(&desk, true);
    assert_eq!(known.len(), 1, "{known:?}");
    assert_eq!(known[0]["linked"], 3, "{known:?}");
    assert_eq!(known[0]["linked_open"], 3);
    assert_eq!(
        known[0]["root_cause"],
        "The DHCP lease pool of the VPN gateway was too small."
    );
    assert_eq!(
        known[0]["keywords"],
        "vpn|anyconnect, drops|disconnects|gone"
    );

    // A fourth customer's new incident matches: the acknowledgement carries
    // the workaround and the ticket is linked. A fifth, about something
    // else, gets the plain acknowledgement.
    let (u3, a3) = &customers[3];
    desk.send_from(
        a3,
        "AnyConnect",
        &format!("{u3}.1@example.test"),
        "",
        "AnyConnect disconnects me every few minutes.",
    )
    .await;
    let (u4, a4) = &customers[4];
    desk.send_from(
        a4,
        "Printer",
        &format!("{u4}.1@example.test"),
        "",
        "The printer drops pages.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 2, "{r}");
    let ack = body(&nth_mail(u3, 1).await);
    assert!(ack.contains("Reconnect with the web client"), "{ack}");
    assert!(ack.contains(&prb), "{ack}");
    let plain = body(&nth_mail(u4, 1).await);
    assert!(!plain.contains("Reconnect with the web client"), "{plain}");
    assert_eq!(problems(&desk, true)[0]["linked"], 4);

    // A problem command on an incident is refused by mail and changes nothing.
    let note5 = mail_about(&ada, 6, "INC-000006").await;
    let before = desk.ticket("INC-000006");
    staff_reply(&desk, &note5, &ada_addr, "/rootcause paper\r\n").await;
    let refusal = mail_about(&ada, 7, "Not applied").await;
    assert!(
        body(&refusal).contains("not a problem"),
        "{}",
        body(&refusal)
    );
    assert_eq!(desk.ticket("INC-000006")["status"], before["status"]);
    assert_eq!(problems(&desk, false).len(), 1);

    // Ada solves the problem: each of the four customers gets one mail with
    // her words, from the desk, on their own ticket, which is resolved.
    staff_reply(
        &desk,
        &opened,
        &ada_addr,
        "/resolve\r\n\r\nWe enlarged the DHCP pool; the VPN holds now.\r\n",
    )
    .await;
    desk.run_once();
    for (i, number) in ["INC-000001", "INC-000002", "INC-000003", "INC-000005"]
        .iter()
        .enumerate()
    {
        let user = &customers[i.min(3)].0;
        let told = nth_mail(user, 2).await;
        assert!(
            header(&told, "Subject")
                .unwrap_or_default()
                .contains(number),
            "{number}: {}",
            header(&told, "Subject").unwrap_or_default()
        );
        let b = body(&told);
        assert!(b.contains("We enlarged the DHCP pool"), "{b}");
        assert!(!told.contains(&ada_addr), "staff address leaked:\n{told}");
        assert_eq!(decoded_from(&told).1, desk.address);
        assert_eq!(desk.ticket(number)["status"], "resolved", "{number}");
    }
    assert_eq!(desk.ticket(&prb)["status"], "resolved");
    assert_eq!(desk.ticket("INC-000006")["status"], "new");
    // Once each: nothing more arrives after another round.
    desk.run_once();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (user, _) in &customers[..4] {
        assert_eq!(messages(user, "INBOX").await.len(), 2, "{user}");
    }
    assert_eq!(messages(&customers[4].0, "INBOX").await.len(), 1);
    let solved = problems(&desk, false);
    assert_eq!(solved[0]["linked_open"], 0, "{solved:?}");
    assert!(
        problems(&desk, true)
            .iter()
            .all(|p| p["status"] == "resolved"),
        "a solved problem stays listed as a known error record"
    );

    // Its known error no longer answers new incidents.
    let (u0, a0) = &customers[0];
    desk.send_from(
        a0,
        "VPN again?",
        &format!("{u0}.9@example.test"),
        "",
        "The VPN drops once more.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    desk.run_once();
    let ack = body(&nth_mail(u0, 3).await);
    assert!(!ack.contains("Reconnect with the web client"), "{ack}");
    desk.finish().await;
}

both_backends!(
    a_problem_tells_its_incidents_once,
    super::a_problem_and_its_incidents
);
