//! Service reporting as an admin and a manager meet it: `helpdeskd report`
//! prints the figures of tickets that came by mail (JSON, CSV, tables, HTML)
//! with clear errors for bad dates; `report send` queues the HTML report to
//! `[report] recipients` (what the scheduler does on its slot) and
//! `run --once` delivers it with its charts.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);
/// The desk's clock (`--now`): the tickets arrive at 10:00 on 25 November.
const T0: &str = "2026-11-25T10:00:00Z";
const NOON: &str = "2026-11-25T12:00:00Z";
const NOON_AND_A_MINUTE: &str = "2026-11-25T12:01:00Z";

fn json_of(desk: &Desk, args: &[&str]) -> Value {
    let out = desk.cli(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

async fn report_figures_and_mail(backend: Backend) {
    let ada_addr = add_user(&unique("ada"));
    let boss = unique("boss");
    let boss_addr = add_user(&boss);
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"

[[sla_policy]]
name = "standard"
response = {{ normal = "1h" }}
resolution = {{ normal = "8h" }}

[[service]]
name = "email"
sla_policy = "standard"

[[supplier]]
name = "NetCo <Fibre>"
contacts = ["noc@netco.example"]
response_target = "2h"
resolution_target = "1d"
manager = "{ada_addr}"

[report]
recipients = ["{boss_addr}"]
period_days = 7
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
    // New tickets of the support mailbox are about the "email" service.
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    let cfg = cfg.replacen(
        "poll_interval_secs = 2\n",
        "poll_interval_secs = 2\nservice = \"email\"\n",
        1,
    );
    std::fs::write(&desk.config, cfg).expect("config");

    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    for i in 0..3 {
        let mid = format!("{cust}.{i}@example.test");
        desk.send_from(&cust_addr, &format!("Problem {i}"), &mid, "", "help")
            .await;
    }
    wait_for_messages(&desk.user, "INBOX", 3, WAIT).await;
    let r = json_of(&desk, &["--now", T0, "run", "--once", "--json"]);
    assert_eq!(r["new_tickets"], 3, "{r}");

    // Volumes: one row per day of [from, to), as JSON and CSV.
    let v = json_of(
        &desk,
        &[
            "--now",
            NOON,
            "report",
            "volume",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-26",
            "--format",
            "json",
        ],
    );
    assert_eq!(v["from"], "2026-11-24T00:00:00Z", "{v}");
    assert_eq!(v["to"], "2026-11-26T00:00:00Z", "{v}");
    let days = v["volume"].as_array().expect("volume rows");
    assert_eq!(days.len(), 2, "{v}");
    assert_eq!(days[0]["date"], "2026-11-24");
    assert_eq!(days[0]["created"], 0);
    assert_eq!(days[1]["date"], "2026-11-25");
    assert_eq!(days[1]["created"], 3, "{v}");
    assert_eq!(days[1]["resolved"], 0);
    // Without dates: the 30 days up to and including today.
    let csv = desk.cli(&["--now", NOON, "report", "volume", "--format", "csv"]);
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], "date,created,resolved", "{csv}");
    assert_eq!(lines.len(), 31, "{csv}");
    assert_eq!(lines[1], "2026-10-27,0,0", "{csv}");
    assert_eq!(lines[30], "2026-11-25,3,0", "{csv}");

    // SLA: the three tickets of "email" had 1 h to get an answer; at noon
    // none got one, so all three responses are breached; resolution (8 h) is open.
    let s = json_of(&desk, &["--now", NOON, "report", "sla", "--format", "json"]);
    let rows = s["sla"].as_array().expect("sla rows");
    assert_eq!(rows.len(), 1, "{s}");
    assert_eq!(rows[0]["service"], "email", "{s}");
    assert_eq!(rows[0]["priority"], "normal", "{s}");
    assert_eq!(rows[0]["tickets"], 3, "{s}");
    assert_eq!(rows[0]["response"]["breached"], 3, "{s}");
    assert_eq!(rows[0]["response"]["met_percent"], 0.0, "{s}");
    assert_eq!(rows[0]["resolution"]["open"], 3, "{s}");
    let table = desk.cli(&["--now", NOON, "report", "sla"]);
    assert!(table.starts_with("service  priority  tickets"), "{table}");

    // Backlog at noon: three tickets younger than a day.
    let b = json_of(
        &desk,
        &["--now", NOON, "report", "backlog", "--format", "json"],
    );
    assert_eq!(b["backlog"][0]["age"], "<1d", "{b}");
    assert_eq!(b["backlog"][0]["tickets"], 3, "{b}");

    // Suppliers: configured ones are listed even without escalations.
    let sup = desk.cli(&["--now", NOON, "report", "suppliers", "--format", "csv"]);
    assert!(sup.starts_with("supplier,escalations,"), "{sup}");
    assert!(sup.contains("\nNetCo <Fibre>,0,0,,,7200,"), "{sup}");
    let html = desk.cli(&["report", "suppliers", "--format", "html"]);
    assert!(html.contains(">Supplier performance</h2>") && html.contains("<svg"));
    assert!(html.contains("NetCo &lt;Fibre&gt;") && !html.contains("<Fibre>"));

    // Bad dates are refused with the expected form.
    let out = desk.cli_output(&["report", "volume", "--from", "2026-13-01"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--from") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
    let out = desk.cli_output(&[
        "report",
        "volume",
        "--from",
        "2026-12-01",
        "--to",
        "2026-11-01",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be before --to"), "{err}");

    // The report mail, as the scheduler queues it: HTML with the four
    // charts and sections, a plain-text summary beside it.
    let sent = desk.cli(&["--now", NOON, "report", "send"]);
    assert!(sent.starts_with("queued 1 report mail"), "{sent}");
    // `--now` sets where a process's clock starts, and it runs on: the flush
    // runs a minute later, so it never sees the mail as queued in its future.
    let r = json_of(
        &desk,
        &["--now", NOON_AND_A_MINUTE, "run", "--once", "--json"],
    );
    assert!(r["outbox"]["sent"].as_u64().unwrap_or(0) >= 1, "{r}");
    let mail = wait_for_messages(&boss, "INBOX", 1, WAIT).await;
    assert_eq!(
        mail.len(),
        1,
        "the recipient gets the report and nothing else"
    );
    let raw = &mail[0];
    assert_eq!(
        header(raw, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        header(raw, "From")
            .unwrap_or_default()
            .contains(&desk.address)
    );
    assert!(
        header(raw, "Content-Type")
            .unwrap_or_default()
            .starts_with("multipart/alternative"),
        "{raw}"
    );
    let msg = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parsable report");
    assert_eq!(
        msg.subject(),
        Some("[ACME] Service report 2026-11-18 12:00 – 2026-11-25 12:00 UTC"),
    );
    let html = msg.body_html(0).expect("an HTML part").into_owned();
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    for title in [
        "SLA compliance",
        "Ticket volumes",
        "Backlog by age",
        "Supplier performance",
    ] {
        assert!(html.contains(&format!(">{title}</h2>")), "{title}");
    }
    assert!(!html.contains("<script"));
    let text = msg.body_text(0).expect("a text part").into_owned();
    assert!(
        text.contains("Service report of ACME Service Desk"),
        "{text}"
    );
    assert!(text.contains("3 ticket(s) created"), "{text}");

    desk.finish().await;
}

both_backends!(figures_and_mail, super::report_figures_and_mail);
