//! Change management by mail: a change with items and a window is
//! submitted, its three approvers get a request each with their own token,
//! two approve by mail and the change is approved (its owner and the change
//! manager told); a forged approval (the From of an approver, without a
//! token or with another approver's) and an approval after the deadline are
//! refused and visible in `change show`; a malformed `/window` and a
//! `/submit` on a ticket that is no change get a command-error mail and
//! change nothing. The window ends in a freeze: flagged in the requests and
//! to the change manager.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
/// The daemon's clock for every run (`--now`), but the late one.
const T0: &str = "2026-12-04T09:00:00+00:00";

fn once_at(desk: &Desk, hours: i64) -> Value {
    let at = chrono::DateTime::parse_from_rfc3339(T0).expect("T0") + chrono::Duration::hours(hours);
    let out = desk.cli(&["--now", &at.to_rfc3339(), "run", "--once", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

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

/// The first mail in `user`'s INBOX whose subject contains `subject` and
/// whose body contains `text`, after waiting for it.
async fn mail_with(user: &str, subject: &str, text: &str) -> String {
    let mut found = None;
    let ok = eventually(WAIT, async || {
        found = messages(user, "INBOX").await.into_iter().find(|m| {
            header(m, "Subject").unwrap_or_default().contains(subject) && body(m).contains(text)
        });
        found.is_some()
    })
    .await;
    assert!(ok, "{user} got no mail {subject:?} with {text:?}");
    found.unwrap_or_default()
}

fn show(desk: &Desk, number: &str) -> Value {
    let out = desk.cli(&["change", "show", number, "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

async fn approved_by_two_forgeries_and_late_answers_refused(backend: Backend) {
    let [ada, ann, ben, cat, max, cust] = ["ada", "ann", "ben", "cat", "max", "cust"].map(unique);
    let [ada_addr, ann_addr, ben_addr, cat_addr, max_addr, cust_addr] =
        [&ada, &ann, &ben, &cat, &max, &cust].map(|u| add_user(u));
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"

[[item]]
name = "mail"
kind = "service"
depends_on = ["db1"]

[[item]]
name = "db1"
kind = "system"
depends_on = ["disk7"]

[[item]]
name = "disk7"
kind = "component"

[[cab]]
name = "infrastructure"
approvers = ["{ann_addr}", "{ben_addr}", "{cat_addr}"]
quorum = 2
deadline_hours = 48

[[freeze]]
name = "year end"
start = "2026-12-11 00:00"
end = "2027-01-02 00:00"

[changes]
manager = "{max_addr}"
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

    // The desk's INBOX holds only the mails not yet processed (they are
    // moved away by each run), so each wait counts the new ones.

    // 1. A request comes in; Ada makes it a change with an item, a risk,
    //    an impact and a window, and submits it, in one reply.
    let first = format!("{cust}.1@example.test");
    desk.send_from(
        &cust_addr,
        "Upgrade the mail database",
        &first,
        "",
        "db1 needs 17.2.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 0);
    let note = nth_mail(&ada, 1).await;
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/kind change\n/ci db1\n/risk high\n/impact mail is down for up to 10 minutes\n\
         /window 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin\n/submit\n",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 0);
    let s = show(&desk, "CHG-000001");
    assert_eq!(s["state"], "submitted", "{s}");
    assert_eq!(s["items"], serde_json::json!(["db1"]));
    assert_eq!(s["services"], serde_json::json!(["mail"]));
    assert_eq!(s["approvers"].as_array().map(Vec::len), Some(3));

    // 2. Each approver gets a request of their own, with the facts.
    let mut requests = Vec::new();
    for user in [&ann, &ben, &cat] {
        let req = nth_mail(user, 1).await;
        let text = body(&req);
        for want in [
            "CHG-000001",
            "Risk:      high",
            "mail is down for up to 10 minutes",
            "2026-12-10 22:00 – 2026-12-11 02:00 Europe/Berlin",
            "Items:     db1",
            "Services:  mail",
            "approval by 2 of 3",
            "2026-12-06 09:00",
            "reject <your reason>",
            "WARNING:",
            "window falls in the change freeze \"year end\"",
        ] {
            assert!(
                text.contains(want),
                "{user}'s request lacks {want:?}:\n{text}"
            );
        }
        assert!(
            header(&req, "Subject")
                .unwrap_or_default()
                .contains("Approval requested"),
            "{req}"
        );
        requests.push(req);
    }
    let reply_addrs: Vec<String> = requests
        .iter()
        .map(|r| header(r, "Reply-To").unwrap_or_default())
        .collect();
    assert_ne!(
        reply_addrs[0], reply_addrs[1],
        "each approver has a token of their own"
    );

    // The window ends in a freeze: the change manager is told at once.
    let flagged = nth_mail(&max, 1).await;
    assert!(
        header(&flagged, "Subject")
            .unwrap_or_default()
            .contains("Change flagged"),
        "{flagged}"
    );
    assert!(body(&flagged).contains("year end"), "{}", body(&flagged));

    // 3. Forgeries: Cat answers through Ann's request (a foreign token);
    //    "Ann" writes without any token, threaded by the customer's mail.
    let (to, raw) = reply_to(&requests[0], &cat_addr, "Re:", "", "approve\n");
    send(&cat_addr, &to, &raw).await;
    desk.send_from(
        &ann_addr,
        "Re: Upgrade the mail database",
        &format!("{ann}.forged@example.test"),
        &format!("In-Reply-To: <{first}>\r\nReferences: <{first}>\r\n"),
        "approve\n",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    once_at(&desk, 1);
    let s = show(&desk, "CHG-000001");
    assert_eq!(s["state"], "submitted", "{s}");
    assert_eq!(s["approvals"], 0, "{s}");
    assert_eq!(s["refused"], 2, "{s}");

    // 4. Cat answers with her own token, but after the deadline (48 h).
    let (to, raw) = reply_to(
        &requests[2],
        &cat_addr,
        "Re:",
        "",
        "approve\n\n> the request\n",
    );
    send(&cat_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 72);
    let s = show(&desk, "CHG-000001");
    assert_eq!(s["state"], "submitted", "{s}");
    assert_eq!(s["approvals"], 0, "{s}");
    assert_eq!(s["refused"], 3, "{s}");

    // 5. Ann and Ben approve in time: approved; Ada (owner) and Max told.
    for (i, (user, addr)) in [(&ann, &ann_addr), (&ben, &ben_addr)]
        .into_iter()
        .enumerate()
    {
        let _ = user;
        let (to, raw) = reply_to(
            &requests[i],
            addr,
            "Re:",
            "",
            "Approve\n\nOn Friday the desk wrote:\n> approve or reject\n",
        );
        send(addr, &to, &raw).await;
    }
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    once_at(&desk, 2);
    let s = show(&desk, "CHG-000001");
    assert_eq!(
        s["state"],
        "approved",
        "{s}\n{}\n{}",
        desk.cli(&["quarantine", "list"]),
        desk.cli(&["ticket", "show", "INC-000001"])
    );
    assert_eq!(s["approvals"], 2, "{s}");
    assert_eq!(s["refused"], 3, "{s}");
    // Each sender of a refused answer got the reason (a forged From: its owner).
    mail_with(&cat, "Not counted", "foreign approval token").await;
    mail_with(&ann, "Not counted", "no approval token").await;
    mail_with(&cat, "Not counted", "after the deadline").await;
    for user in [&ada, &max] {
        mail_with(user, "Change approved", "Change CHG-000001 is approved").await;
        // Each refused answer was told to the owner and the manager.
        for reason in [
            "foreign approval token",
            "no approval token",
            "after the deadline",
        ] {
            mail_with(user, "Approval answer refused", reason).await;
        }
    }
    // The refusals are visible, with their reasons, in change show.
    let reasons: Vec<String> = s["refusals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        reasons[0].contains("foreign approval token") && reasons[0].contains(&ann_addr),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("no approval token"), "{reasons:?}");
    assert!(reasons[2].contains("after the deadline"), "{reasons:?}");
    let text = desk.cli(&["change", "show", "CHG-000001"]);
    assert!(text.contains("refused answers (all rounds): 3"), "{text}");
    assert!(text.contains("after the deadline"), "{text}");
    // And on the ticket, as internal notes with the reason.
    let t = desk.ticket("INC-000001");
    let flags: Vec<String> = t["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["flag"].as_str().map(String::from))
        .filter(|f| f.starts_with("refused approval answer"))
        .collect();
    assert_eq!(flags.len(), 3, "{t}");
    let list = desk.cli(&["change", "list", "--state", "approved"]);
    assert!(list.contains("CHG-000001"), "{list}");

    // 6. A malformed /window gets a command-error mail and changes nothing.
    let before = show(&desk, "CHG-000001");
    let (to, raw) = reply_to(
        &note,
        &ada_addr,
        "Re:",
        "",
        "/window 2026-12-11 02:00 2026-12-10 22:00\n",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 3);
    mail_with(
        &ada,
        "Not applied",
        "ends (2026-12-10 22:00) before it starts",
    )
    .await;
    let after = show(&desk, "CHG-000001");
    assert_eq!(after["window"], before["window"]);
    assert_eq!(
        after["history"].as_array().map(Vec::len),
        before["history"].as_array().map(Vec::len)
    );

    // 7. /submit on an incident gets a command-error mail and changes nothing.
    let second = format!("{cust}.2@example.test");
    desk.send_from(&cust_addr, "Printer jammed", &second, "", "Tray 2.")
        .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 4);
    let note2 = mail_with(&ada, "INC-000002", "New ticket.").await;
    let (to, raw) = reply_to(&note2, &ada_addr, "Re:", "", "/submit\n");
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 4);
    mail_with(&ada, "Not applied: [ACME INC-000002]", "not a change").await;
    let t = desk.ticket("INC-000002");
    assert_eq!(t["kind"], "incident", "{t}");
    let list = desk.cli(&["change", "list"]);
    assert!(!list.contains("CHG-000002"), "{list}");
    desk.finish().await;
}

both_backends!(
    approval_by_mail,
    super::approved_by_two_forgeries_and_late_answers_refused
);
