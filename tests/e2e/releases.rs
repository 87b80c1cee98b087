//! Release management by mail with the shipped `release-gate` plugin: a
//! release opened from a change, its deploy vetoed (the change is not
//! approved, the release has no window) and the reasons mailed to its
//! manager; mended (the change approved by its approver by mail, a window
//! planned), deployed, and its notes mailed to the subscribers.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;
use crate::plugins::{install, plugin_dir};

const WAIT: Duration = Duration::from_secs(30);

/// Every run at this instant (`--now`): inside the window planned below.
const NOW: &str = "2026-12-10T22:30:00+00:00";

fn once(desk: &Desk) -> Value {
    let out = desk.cli(&["--now", NOW, "run", "--once", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

/// The newest mail in `user`'s INBOX whose subject contains `needle`, once
/// `user` has `n` mails.
async fn mail_about(user: &str, n: usize, needle: &str) -> String {
    let inbox = wait_for_messages(user, "INBOX", n, WAIT).await;
    assert!(
        inbox.len() >= n,
        "{user} has {} mails, expected {n}",
        inbox.len()
    );
    inbox
        .into_iter()
        .rev()
        .find(|m| header(m, "Subject").unwrap_or_default().contains(needle))
        .unwrap_or_else(|| panic!("{user} has no mail about {needle}"))
}

async fn reply(desk: &Desk, to_mail: &str, from: &str, text: &str) -> Value {
    let (to, raw) = reply_to(to_mail, from, "Re:", "", text);
    send(from, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once(desk)
}

async fn vetoed_mended_deployed(backend: Backend) {
    let [ada, ann, sub, cust] = ["ada", "ann", "sub", "cust"].map(unique);
    let [ada_addr, ann_addr, sub_addr, cust_addr] = [&ada, &ann, &sub, &cust].map(|u| add_user(u));
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

[[cab]]
name = "infrastructure"
approvers = ["{ann_addr}"]
quorum = "any"
deadline_hours = 48

[releases]
subscribers = ["{sub_addr}"]

[plugins]
dir = "plugins"
timeout_secs = 5

[plugins.config.release-gate]
[[plugins.config.release-gate.freeze]]
name = "year end"
start = "2026-12-24T00:00:00Z"
end = "2027-01-02T00:00:00Z"
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
    install(&plugin_dir(desk.dir.path()), &["release-gate"]);

    // A request; Ada makes it a change of db1 and opens a release with it.
    desk.send_from(
        &cust_addr,
        "Upgrade the mail database",
        &format!("{cust}.1@example.test"),
        "",
        "db1 needs 17.2.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once(&desk);
    let note = mail_about(&ada, 1, "000001").await;
    reply(
        &desk,
        &note,
        &ada_addr,
        "/kind change\n/ci db1\n/release new December rollout\n",
    )
    .await;
    let opened = mail_about(&ada, 2, "000002").await;
    assert!(
        body(&opened).contains("release manager"),
        "{}",
        body(&opened)
    );

    // Deploying now: release-gate vetoes; Ada is told why; nothing is sent
    // to the subscribers.
    reply(&desk, &opened, &ada_addr, "/deploy\n").await;
    let veto = mail_about(&ada, 3, "000002").await;
    let why = body(&veto);
    assert!(why.contains("was NOT deployed"), "{why}");
    assert!(why.contains("release-gate:"), "{why}");
    assert!(why.contains("000001 is draft, not approved"), "{why}");
    assert!(why.contains("no planned window"), "{why}");
    assert!(messages(&sub, "INBOX").await.is_empty());

    // Mended: the change gets a risk and a window and is submitted; Ann
    // approves by mail; the release gets its window; Ada deploys again.
    reply(
        &desk,
        &note,
        &ada_addr,
        "/risk low\n/impact none\n/window 2026-12-10 22:00 2026-12-11 02:00 UTC\n/submit\n",
    )
    .await;
    let request = mail_about(&ann, 1, "000001").await;
    reply(&desk, &request, &ann_addr, "approve\n").await;
    reply(
        &desk,
        &opened,
        &ada_addr,
        "/window 2026-12-10 22:00 2026-12-11 02:00 UTC\n/deploy\n",
    )
    .await;

    // Deployed: the notes go to the subscriber (and to Ada) with the
    // changes and the services their items touch.
    let notes = mail_about(&sub, 1, "Release notes").await;
    let text = body(&notes);
    for want in [
        "was deployed at 2026-12-10 22:30 UTC",
        "000001 Upgrade the mail database (items: db1)",
        "Services: mail",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(!notes.contains(&cust_addr), "{notes}");
    let status = desk.cli(&["ticket", "show", "REL-000002", "--json"]);
    let events = desk.cli(&["plugins", "failed", "--json"]);
    assert!(!events.contains("release"), "{events}\n{status}");
    // Once: another run sends nothing more.
    once(&desk);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(messages(&sub, "INBOX").await.len(), 1);
    desk.finish().await;
}

both_backends!(
    a_release_vetoed_mended_deployed,
    super::vetoed_mended_deployed
);
