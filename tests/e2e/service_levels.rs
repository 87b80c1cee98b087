//! Service level management, supplier management and the scheduler, on the
//! real mail stack with the daemon's clock set by `--now` (nobody sleeps
//! through an SLA): a ticket breaches its response target and its assignee
//! gets the warning and the breach once each; a supplier escalation
//! round-trips; a supplier review creates its ticket, which the
//! supplier-scorecard plugin scores; the scheduled service report reaches its
//! recipient.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
const T0: &str = "2026-11-25T10:00:00Z";

struct Setup {
    desk: Desk,
    ada: String,
    ada_addr: String,
    lead: String,
    noc: String,
    noc_addr: String,
    boss: String,
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, "").await
}

/// The desk of `setup`, with `more` appended to its configuration.
async fn setup_with(backend: Backend, more: &str) -> Setup {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let bob_addr = add_user(&unique("bob"));
    let lead = unique("lead");
    let lead_addr = add_user(&lead);
    let noc = unique("noc");
    let noc_addr = add_user(&noc);
    let boss = unique("boss");
    let boss_addr = add_user(&boss);
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"

[[staff]]
name = "Bob Builder"
email = "{bob_addr}"

[[sla_policy]]
name = "standard"
warn_percent = 80
response = {{ normal = "1h", high = "30m" }}
resolution = {{ normal = "8h" }}

[[service]]
name = "email"
sla_policy = "standard"
escalation = "{lead_addr}"

[[supplier]]
name = "NetCo"
contacts = ["{noc_addr}"]
services = ["email"]
response_target = "2h"
resolution_target = "8h"
contract_end = "2027-01-10"
review = "0 8 * * *"
manager = "{ada_addr}"

[jobs]
sla = "* * * * *"

[report]
schedule = "0 7 * * *"
recipients = ["{boss_addr}"]
period_days = 7

{more}
"#
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
    Setup {
        desk,
        ada,
        ada_addr,
        lead,
        noc,
        noc_addr,
        boss,
    }
}

/// `run --once --json` with the clock at `t0 + minutes`.
fn once_at(desk: &Desk, minutes: i64) -> Value {
    let at =
        chrono::DateTime::parse_from_rfc3339(T0).expect("T0") + chrono::Duration::minutes(minutes);
    let out = desk.cli(&["--now", &at.to_rfc3339(), "run", "--once", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

fn subjects(mails: &[String]) -> Vec<String> {
    mails
        .iter()
        .map(|m| header(m, "Subject").unwrap_or_default())
        .collect()
}

async fn response_target_breach_is_told_once(backend: Backend) {
    let Setup {
        desk,
        ada,
        ada_addr,
        lead,
        ..
    } = setup(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Mail is down",
        &format!("{cust}.1@example.test"),
        "",
        "No mail since 9.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 0);
    let t = desk.ticket("INC-000001");
    assert_eq!(t["service"], "email", "{t}");
    // The clock runs on from --now, so instants carry the run's fraction of a second.
    let at = |k: &str| {
        t[k].as_str()
            .unwrap_or("")
            .get(..19)
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(at("response_due_at"), "2026-11-25T11:00:00", "{t}");
    assert_eq!(at("resolution_due_at"), "2026-11-25T18:00:00", "{t}");

    // Ada takes it (a command-only reply is not a response).
    let note = wait_for_messages(&ada, "INBOX", 1, WAIT).await.remove(0);
    let (to, raw) = reply_to(&note, &ada_addr, "Re:", "", "/assign me");
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 5);
    assert_eq!(desk.ticket("INC-000001")["assignee"], ada_addr.as_str());

    let r = once_at(&desk, 30);
    assert_eq!(r["jobs"][0]["job"], "sla", "{r}");
    assert_eq!(r["jobs"][0]["status"], "ok", "{r}");
    once_at(&desk, 50); // 50 of 60 minutes: past the 80% warning
    once_at(&desk, 55);
    once_at(&desk, 61); // past the target
    once_at(&desk, 75);

    wait_for_messages(&ada, "INBOX", 3, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = messages(&ada, "INBOX")
        .await
        .into_iter()
        .skip(1)
        .collect::<Vec<_>>();
    let s = subjects(&mails);
    assert_eq!(s.len(), 2, "one warning, one breach: {s:?}");
    assert!(s[0].starts_with("SLA warning (response)"), "{s:?}");
    assert!(s[1].starts_with("SLA BREACH (response)"), "{s:?}");
    assert!(body(&mails[1]).contains("Due:      2026-11-25 11:00 UTC"));
    // The escalation contact hears of the breach only.
    let lead_mails = wait_for_messages(&lead, "INBOX", 1, WAIT).await;
    assert_eq!(subjects(&lead_mails).len(), 1);
    assert!(subjects(&lead_mails)[0].starts_with("SLA BREACH"));

    let t = desk.ticket("INC-000001");
    let notes: Vec<String> = t["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| {
            m["class"]
                .as_str()
                .filter(|c| c.starts_with("sla-"))
                .map(String::from)
        })
        .collect();
    assert_eq!(notes, ["sla-warning", "sla-breach"], "{t}");

    // An answer stops the response clock; pending pauses the resolution clock.
    let (to, raw) = reply_to(
        &mails[1],
        &ada_addr,
        "Re:",
        "",
        "/status pending\r\nCould you restart Outlook?",
    );
    send(&ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 120);
    let t = desk.ticket("INC-000001");
    assert_eq!(t["status"], "pending");
    assert!(t["responded_at"].is_string(), "{t}");
    assert!(t["resolution_due_at"].is_null(), "paused: no due time: {t}");
    let jobs = desk.cli(&["jobs", "list", "--json"]);
    assert!(jobs.contains("\"sla\""), "{jobs}");
    desk.finish().await;
}

both_backends!(sla_breach, super::response_target_breach_is_told_once);

/// A customer reports a dead switch at T0 (INC-000001), Ada escalates it to
/// NetCo from her notification at T0+10m with `/supplier NetCo WHAT`; returns
/// the customer's user and the escalation as NetCo's mailbox received it.
async fn escalate_dead_switch(
    desk: &Desk,
    ada: &str,
    ada_addr: &str,
    noc: &str,
    what: &str,
) -> (String, String) {
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Switch dead",
        &format!("{cust}.1@example.test"),
        "",
        "Port 4.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(desk, 0);
    let note = wait_for_messages(ada, "INBOX", 1, WAIT).await.remove(0);
    let (to, raw) = reply_to(
        &note,
        ada_addr,
        "Re:",
        "",
        &format!("/supplier NetCo {what}"),
    );
    send(ada_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(desk, 10);
    let escalation = wait_for_messages(noc, "INBOX", 1, WAIT).await.remove(0);
    (cust, escalation)
}

async fn supplier_escalation_round_trip_and_review(backend: Backend) {
    let Setup {
        desk,
        ada,
        ada_addr,
        noc,
        noc_addr,
        ..
    } = setup(backend).await;
    let (cust, esc) = escalate_dead_switch(
        &desk,
        &ada,
        &ada_addr,
        &noc,
        "port 4 on the core switch is dead",
    )
    .await;
    // The supplier gets the escalation with the ticket tag and a token.
    assert!(
        header(&esc, "Subject")
            .unwrap_or_default()
            .contains("[ACME INC-000001]")
    );
    assert!(
        header(&esc, "Reply-To")
            .unwrap_or_default()
            .contains("+INC-000001.")
    );
    assert!(body(&esc).contains("port 4 on the core switch is dead"));
    assert!(!esc.contains(&ada_addr), "staff address stays inside");

    // Its reply threads back as a supplier message; Ada hears of it.
    let (to, raw) = reply_to(&esc, &noc_addr, "Re:", "", "Replaced the switch module.");
    send(&noc_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 70);
    let t = desk.ticket("INC-000001");
    let supplier_msgs: Vec<&Value> = t["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["author"] == "supplier")
        .collect();
    assert_eq!(supplier_msgs.len(), 1, "{t}");
    assert_eq!(supplier_msgs[0]["visibility"], "internal");
    assert_eq!(supplier_msgs[0]["body"], "Replaced the switch module.");
    let ada_mails = wait_for_messages(&ada, "INBOX", 2, WAIT).await;
    assert!(
        ada_mails
            .iter()
            .any(|m| body(m).contains("Supplier NetCo replied")),
        "{:?}",
        ada_mails.iter().map(|m| body(m)).collect::<Vec<_>>()
    );
    assert_eq!(
        messages(&cust, "INBOX").await.len(),
        1,
        "the customer saw only the ack"
    );

    // The next day's 08:00 review slot creates the review ticket for Ada.
    let r = once_at(&desk, 22 * 60 + 1);
    let review = r["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["job"] == "supplier-review:NetCo")
        .cloned()
        .unwrap_or_else(|| panic!("review ran: {r}"));
    assert_eq!(review["status"], "ok", "{r}");
    let t = desk.ticket("REQ-000002");
    assert_eq!(t["assignee"], ada_addr.as_str(), "{t}");
    let figures = t["messages"][0]["body"].as_str().unwrap_or("").to_string();
    assert!(
        figures.contains("Tickets escalated:          1"),
        "{figures}"
    );
    assert!(
        figures.contains("1/1 (100%)"),
        "answered in 1 h of a 2 h target: {figures}"
    );
    assert!(figures.contains("contract ends in 45 days"), "{figures}");
    let ada_mails = wait_for_messages(&ada, "INBOX", 3, WAIT).await;
    assert!(
        ada_mails.iter().any(|m| header(m, "Subject")
            .unwrap_or_default()
            .contains("Supplier review: NetCo")),
        "{:?}",
        subjects(&ada_mails)
    );
    // The same slot does not run twice.
    let r = once_at(&desk, 22 * 60 + 2);
    assert!(
        !r["jobs"].to_string().contains("supplier-review"),
        "one review per slot: {r}"
    );
    desk.finish().await;
}

both_backends!(
    supplier_round_trip,
    super::supplier_escalation_round_trip_and_review
);

/// The supplier-scorecard plugin scores the review: one escalation answered
/// in time but still open past its resolution target at the review, so
/// 40 (responses) + 0 (resolutions) + 0 (no breach) - 5 (one open item) = 35;
/// with `escalate = 30` that is the escalation band, but the contract ends in
/// 45 days (notice 60), so the recommendation is "replace".
async fn supplier_review_gets_a_scorecard(backend: Backend) {
    let Setup {
        desk,
        ada,
        ada_addr,
        noc,
        noc_addr,
        ..
    } = setup_with(
        backend,
        r#"[plugins]
dir = "plugins"
timeout_secs = 5
retries = 1

[plugins.config.supplier-scorecard]
thresholds = { escalate = 30 }
"#,
    )
    .await;
    let dir = crate::plugins::plugin_dir(desk.dir.path());
    crate::plugins::install(&dir, &["supplier-scorecard"]);
    let list = desk.cli(&["plugins", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with("supplier-scorecard")
            && l.contains("supplier.review_due")
            && l.contains("loaded")),
        "{list}"
    );

    let (_, esc) = escalate_dead_switch(&desk, &ada, &ada_addr, &noc, "port 4 is dead").await;
    let (to, raw) = reply_to(&esc, &noc_addr, "Re:", "", "Looking into it.");
    send(&noc_addr, &to, &raw).await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    once_at(&desk, 70);

    // The review slot: the review ticket, then the plugin in the same cycle.
    let r = once_at(&desk, 22 * 60 + 1);
    assert!(
        r["jobs"].to_string().contains("supplier-review:NetCo"),
        "review ran: {r}"
    );
    assert_eq!(r["plugins"]["failed"], 0, "{r}");
    let t = desk.ticket("REQ-000002");
    assert_eq!(t["fields"]["supplier"], "NetCo", "{t}");
    assert_eq!(t["fields"]["supplier_score"], "35", "{t}");
    assert_eq!(t["fields"]["supplier_recommendation"], "replace", "{t}");
    let notes: Vec<&str> = t["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["visibility"] == "internal" && m["from"] == "supplier-scorecard (plugin)")
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(notes.len(), 1, "{t}");
    let text = notes[0];
    assert!(
        text.contains("supplier-scorecard: NetCo scores 35/100")
            && text.contains("Recommendation: replace")
            && text.contains("responses within target        1/1   100%")
            && text.contains("open items                     1")
            && text.contains("The contract ends in 45 days: no time to escalate"),
        "{text}"
    );
    desk.finish().await;
}

both_backends!(supplier_scorecard, super::supplier_review_gets_a_scorecard);

async fn scheduled_report_reaches_its_recipient(backend: Backend) {
    let Setup { desk, boss, .. } = setup(backend).await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "Printer",
        &format!("{cust}.1@example.test"),
        "",
        "jam",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 1, WAIT).await;
    // First start at 10:00: the report job is first seen, and waits for its
    // first slot (07:00 the next day) instead of reporting at once.
    let r = once_at(&desk, 0);
    assert!(!r["jobs"].to_string().contains("report"), "{r}");
    let r = once_at(&desk, 21 * 60 + 5);
    assert!(r["jobs"].to_string().contains("\"report\""), "{r}");
    let mail = wait_for_messages(&boss, "INBOX", 1, WAIT).await;
    assert_eq!(mail.len(), 1);
    let raw = &mail[0];
    assert!(
        header(raw, "Subject")
            .unwrap_or_default()
            .contains("Service report")
    );
    let html = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.body_html(0).map(|h| h.into_owned()))
        .unwrap_or_default();
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(!html.contains("<script"), "no scripts");
    desk.finish().await;
}

both_backends!(
    scheduled_report,
    super::scheduled_report_reaches_its_recipient
);

/// Two daemons on one database reach the same report slot at once: the
/// slot runs once, and one report goes out.
async fn a_slot_runs_once_across_daemons(backend: Backend) {
    let Setup { desk, boss, .. } = setup(backend).await;
    once_at(&desk, 0); // the report job is first seen at 10:00
    let at = (chrono::DateTime::parse_from_rfc3339(T0).expect("T0")
        + chrono::Duration::minutes(21 * 60 + 5))
    .to_rfc3339();
    let children: Vec<_> = (0..3)
        .map(|_| {
            desk.command()
                .args(["--now", &at, "run", "--once", "--json"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn helpdeskd")
        })
        .collect();
    let mut reports = 0;
    for c in children {
        let out = c.wait_with_output().expect("helpdeskd ran");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        reports += v["jobs"]
            .as_array()
            .map(|j| j.iter().filter(|r| r["job"] == "report").count())
            .unwrap_or(0);
    }
    assert_eq!(reports, 1, "exactly one daemon ran the 07:00 report slot");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(messages(&boss, "INBOX").await.len(), 1, "one report mail");
    let list = desk.cli(&["--now", &at, "jobs", "list"]);
    assert!(list.contains("report") && list.contains(" ok"), "{list}");
    desk.finish().await;
}

both_backends!(slot_runs_once, super::a_slot_runs_once_across_daemons);
