//! An outage recorded by mail on an incident (`/outage start ITEM`,
//! `/outage end`) counts in the availability of the services that depend
//! on the item; bad outage commands are answered and change nothing.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn once_at(desk: &Desk, at: &str) {
    desk.cli(&["--now", at, "run", "--once", "--json"]);
}

async fn reply_at(desk: &Desk, to_mail: &str, from: &str, text: &str, at: &str) {
    let (to, raw) = reply_to(to_mail, from, "Re:", "", text);
    send(from, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(desk, at);
}

async fn outage_counts_in_availability(backend: Backend) {
    let [ada, cust] = ["ada", "cust"].map(unique);
    let [ada_addr, cust_addr] = [&ada, &cust].map(|u| add_user(u));
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"

[[item]]
name = "mail"
kind = "service"
depends_on = ["db1"]

[[item]]
name = "crm"
kind = "service"

[[item]]
name = "db1"
kind = "system"
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
    desk.send_from(
        &cust_addr,
        "Mail is down",
        &format!("{cust}.1@example.test"),
        "",
        "No mail since 9.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, "2026-12-03T09:00:00Z");
    let inbox = wait_for_messages(&ada, "INBOX", 1, WAIT).await;
    let note = inbox[0].clone();

    // An unknown item and an end without a start are refused by mail.
    reply_at(
        &desk,
        &note,
        &ada_addr,
        "/outage start db9\n",
        "2026-12-03T09:05:00Z",
    )
    .await;
    reply_at(
        &desk,
        &note,
        &ada_addr,
        "/outage end\n",
        "2026-12-03T09:06:00Z",
    )
    .await;
    let inbox = wait_for_messages(&ada, "INBOX", 3, WAIT).await;
    let refusals: Vec<String> = inbox[1..].iter().map(|m| body(m)).collect();
    assert!(
        refusals[0].contains("no such configuration item (known: mail, crm, db1)"),
        "{}",
        refusals[0]
    );
    assert!(refusals[1].contains("no outage is open"), "{}", refusals[1]);

    // db1 down from 09:10 to 15:10: six hours of 2026-12-03 for mail,
    // which depends on it; crm does not.
    reply_at(
        &desk,
        &note,
        &ada_addr,
        "/outage start db1\n",
        "2026-12-03T09:10:00Z",
    )
    .await;
    reply_at(
        &desk,
        &note,
        &ada_addr,
        "/outage end\n",
        "2026-12-03T15:10:00Z",
    )
    .await;
    let out = desk.cli(&[
        "--now",
        "2026-12-05T00:00:00Z",
        "report",
        "availability",
        "--from",
        "2026-12-03",
        "--to",
        "2026-12-04",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let rows = v["availability"].as_array().cloned().unwrap_or_default();
    let get = |s: &str| {
        rows.iter()
            .find(|r| r["service"] == s)
            .cloned()
            .unwrap_or_else(|| panic!("no {s} in {out}"))
    };
    assert_eq!(get("mail")["outages"], 1, "{out}");
    // `--now` starts each run's clock; the runs themselves take a moment.
    let down = get("mail")["down_secs"].as_i64().unwrap_or_default();
    assert!((6 * 3600 - 10..=6 * 3600 + 10).contains(&down), "{out}");
    let percent = get("mail")["percent"].as_f64().unwrap_or_default();
    assert!((percent - 75.0).abs() < 0.02, "{out}");
    assert_eq!(get("crm")["percent"], 100.0, "{out}");
    assert_eq!(rows.len(), 2, "services only: {out}");
    desk.finish().await;
}

both_backends!(
    an_outage_counts_in_availability,
    super::outage_counts_in_availability
);
