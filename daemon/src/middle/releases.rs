//! Release management: a release opened from a change, deployed through
//! its gate: the plugins' veto recorded and mailed to the release manager,
//! then, mended, deployed with its notes mailed and `release.deployed`
//! raised. The plugins' answers are written into the gate event as the
//! dispatcher writes them, so this tier needs no plugin host.

use chrono::Duration;

use super::{Desk, Mail, assert_snapshot};
use crate::domain::mail::Address;

async fn settle(desk: &Desk) -> usize {
    crate::releases::settle(&desk.app.store, &desk.app.settings, desk.now())
        .await
        .expect("settle")
}

#[tokio::test]
async fn a_release_vetoed_then_deployed() {
    let mut desk = Desk::new().await;
    let mut settings = (*desk.app.settings).clone();
    settings.release_subscribers = vec![Address::new("", "cab@acme.test")];
    desk.app.settings = std::sync::Arc::new(settings);

    desk.send(
        &Mail::new(
            "Jo <jo@cust.test>",
            "Upgrade the VPN gateway",
            "m1@cust.test",
        )
        .body("Please plan it.\n"),
    )
    .await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.advance(Duration::minutes(5));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] Upgrade",
            "a1@acme.test",
        )
        .replying_to(&note)
        .body("/kind change\n/release new March rollout\n"),
    )
    .await;
    let rel_note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 2 AND kind = 'notification'")
        .await;
    assert_snapshot(
        &desk
            .rows("SELECT number, kind, status, assignee FROM tickets ORDER BY id")
            .await,
        r##"
        number=INC-000001 kind=change status=new
        number=REL-000002 kind=release status=open assignee=ada@acme.test
        "##,
    );

    // Bob's mail proves nothing and changes nothing (that a proven staff
    // member who is not the manager is refused is `domain::release`'s
    // test); Ada deploys without a window.
    desk.advance(Duration::minutes(5));
    let bob = Mail::new(
        "Bob Page <bob@acme.test>",
        "Re: [ACME REL-000002] March rollout",
        "b1@acme.test",
    )
    .body("/deploy\n");
    let ada = Mail::new(
        "Ada Lovelace <ada@acme.test>",
        "Re: [ACME REL-000002] March rollout",
        "a2@acme.test",
    )
    .replying_to(&rel_note)
    .body("/deploy\n");
    desk.deliver(&[&bob.raw(), &ada.raw()]).await;
    assert_eq!(desk.value("SELECT state FROM releases").await, "deploying");
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM events WHERE hook = 'release.before_deploy'")
            .await,
        "1",
        "only Ada's /deploy asked the gate"
    );
    let bobs = desk
        .value("SELECT flag FROM messages WHERE message_id = 'b1@acme.test'")
        .await;
    assert!(bobs.starts_with("refused staff claim"), "{bobs}");
    let payload = desk
        .value("SELECT payload FROM events WHERE hook = 'release.before_deploy'")
        .await;
    let v: serde_json::Value = serde_json::from_str(&payload).expect("json");
    assert_eq!(v["release"]["number"], "REL-000002");
    assert_eq!(v["release"]["changes"][0]["number"], "INC-000001");
    assert_eq!(v["release"]["changes"][0]["state"], "draft");
    assert!(v["release"]["window"].is_null());
    assert_eq!(settle(&desk).await, 0, "the plugins have not answered");

    // The gate vetoes (as the dispatcher records a veto).
    desk.rows(
        "UPDATE events SET status = 'done', vetoes = '[{\"plugin\":\"release-gate\",\"reason\":\"REL-000002 has no planned window\"}]' \
         WHERE hook = 'release.before_deploy'",
    )
    .await;
    assert_eq!(settle(&desk).await, 1);
    assert_eq!(settle(&desk).await, 0, "settled once");
    assert_snapshot(
        &desk
            .rows("SELECT state, vetoes, deployed_at FROM releases")
            .await,
        r##"
        state=vetoed vetoes="release-gate: REL-000002 has no planned window"
        "##,
    );
    let veto = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE ticket_id = 2 AND kind = 'notification' ORDER BY id DESC LIMIT 1")
        .await;
    assert!(veto.contains("was NOT deployed"), "{veto}");
    assert!(
        veto.contains("To: \"Ada Lovelace\" <ada@acme.test>"),
        "{veto}"
    );

    // Mended: a window, and deploy again; this time the gate passes.
    desk.advance(Duration::minutes(5));
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME REL-000002] March rollout",
            "a3@acme.test",
        )
        .replying_to(&rel_note)
        .body("/window 2026-03-02 08:00 2026-03-02 12:00 UTC\n/deploy\n"),
    )
    .await;
    desk.rows(
        "UPDATE events SET status = 'done' WHERE hook = 'release.before_deploy' AND status = 'pending'",
    )
    .await;
    assert_eq!(
        settle(&desk).await,
        2,
        "notes to the subscriber and the manager"
    );
    assert_snapshot(
        &desk
            .rows("SELECT state, vetoes, window_start, window_end, window_zone, deployed_at FROM releases")
            .await,
        r##"
        state=deployed vetoes="" window_start=T0-1h window_end=T0+3h window_zone=UTC deployed_at=T0+15m
        "##,
    );
    let notes = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE kind = 'release-notes' AND recipients = 'cab@acme.test'")
        .await;
    assert!(
        notes.contains("Release notes: [ACME REL-000002] March rollout"),
        "{notes}"
    );
    assert!(
        notes.contains("INC-000001 Upgrade the VPN gateway"),
        "{notes}"
    );
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM events WHERE hook = 'release.deployed'")
            .await,
        "1"
    );
    assert_snapshot(
        &desk
            .rows("SELECT ticket_id, other_id, reason FROM ticket_links")
            .await,
        r##"
        ticket_id=1 other_id=2 reason=release
        "##,
    );
}

/// Without a plugin installed there is no gate to ask: `/deploy` deploys.
#[tokio::test]
async fn without_plugins_a_deploy_is_done_at_once() {
    let mut desk = Desk::new().await;
    let mut settings = (*desk.app.settings).clone();
    settings.emit_events = false;
    settings.release_subscribers = vec![Address::new("", "cab@acme.test")];
    desk.app.settings = std::sync::Arc::new(settings);
    desk.send(&Mail::new("Jo <jo@cust.test>", "New mail relay", "m1@cust.test").body("Plan it.\n"))
        .await;
    let note = desk.sent_id("notification", "ada@acme.test").await;
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME INC-000001] relay",
            "a1@acme.test",
        )
        .replying_to(&note)
        .body("/kind change\n/release new Relay\n"),
    )
    .await;
    let rel_note = desk
        .value("SELECT message_id FROM outbox WHERE ticket_id = 2 AND kind = 'notification'")
        .await;
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME REL-000002] Relay",
            "a2@acme.test",
        )
        .replying_to(&rel_note)
        .body("/deploy\n"),
    )
    .await;
    assert_snapshot(
        &desk.rows("SELECT state, deployed_at FROM releases").await,
        r##"
        state=deployed deployed_at=T0
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT kind, recipients FROM outbox WHERE kind = 'release-notes' ORDER BY id")
            .await,
        r##"
        kind=release-notes recipients=cab@acme.test
        kind=release-notes recipients=ada@acme.test
        "##,
    );
    assert_eq!(settle(&desk).await, 0);
    // Deployed is final for /deploy.
    desk.send(
        &Mail::new(
            "Ada Lovelace <ada@acme.test>",
            "Re: [ACME REL-000002] Relay",
            "a3@acme.test",
        )
        .replying_to(&rel_note)
        .body("/deploy\n"),
    )
    .await;
    let err = desk
        .value("SELECT CAST(raw AS TEXT) FROM outbox WHERE kind = 'command-error'")
        .await;
    assert!(err.contains("deployed already"), "{err}");
}

/// A deploy that cannot be settled (here its ticket's number is unreadable)
/// is left deploying and tried again; it stops neither `settle` nor the
/// other deploys.
#[tokio::test]
async fn a_deploy_that_cannot_be_settled_waits_and_stops_nothing() {
    let desk = Desk::new().await;
    for (i, customer) in ["jo", "kim"].iter().enumerate() {
        desk.send(
            &Mail::new(
                &format!("{customer} <{customer}@cust.test>"),
                "Upgrade",
                &format!("m{i}@cust.test"),
            )
            .body("Plan it.\n"),
        )
        .await;
    }
    // INC-1 and INC-2; each made a change with a release (REL-3, REL-4), deployed.
    for (change, release) in [(1, 3), (2, 4)] {
        let note = desk
            .value(&format!(
                "SELECT message_id FROM outbox WHERE ticket_id = {change} AND kind = 'notification'"
            ))
            .await;
        desk.send(
            &Mail::new(
                "Ada Lovelace <ada@acme.test>",
                "Re: Upgrade",
                &format!("k{change}@acme.test"),
            )
            .replying_to(&note)
            .body("/kind change\n/release new R\n"),
        )
        .await;
        let rel_note = desk
            .value(&format!(
                "SELECT message_id FROM outbox WHERE ticket_id = {release} AND kind = 'notification'"
            ))
            .await;
        desk.send(
            &Mail::new(
                "Ada Lovelace <ada@acme.test>",
                "Re: R",
                &format!("d{release}@acme.test"),
            )
            .replying_to(&rel_note)
            .body("/deploy\n"),
        )
        .await;
    }
    desk.rows("UPDATE events SET status = 'done' WHERE hook = 'release.before_deploy'")
        .await;
    desk.rows("UPDATE tickets SET number = 'garbage' WHERE id = 3")
        .await;
    assert_eq!(settle(&desk).await, 1, "REL-4's notes to its manager");
    assert_snapshot(
        &desk
            .rows("SELECT ticket_id, state FROM releases ORDER BY ticket_id")
            .await,
        r##"
        ticket_id=3 state=deploying
        ticket_id=4 state=deployed
        "##,
    );
    desk.rows("UPDATE tickets SET number = 'REL-000003' WHERE id = 3")
        .await;
    assert_eq!(settle(&desk).await, 1, "tried again");
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM releases WHERE state = 'deployed'")
            .await,
        "2"
    );
}
