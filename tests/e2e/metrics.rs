//! What an admin sees from outside: `/metrics` scraped over a plain TCP
//! connection after a known run, `/healthz`, `/readyz` (and why it fails),
//! and `helpdeskd status --json`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// A loopback port nobody listens on (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `request` and reads the whole answer: status code and body
/// (0 and nothing when nobody answers).
async fn http(port: u16, request: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    if s.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    if s.read_to_end(&mut raw).await.is_err() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

async fn get(port: u16, path: &str) -> (u16, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    )
    .await
}

/// The value of one series (`name{labels}` exactly as exposed).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

fn status(desk: &Desk) -> Value {
    let out = desk.cli(&["status", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

/// Three new requests, a reply, a duplicate and a mail without a sender
/// go through a running daemon; each counter then has the value the run
/// implies, the daemon is ready, and `status` shows the mailbox and the
/// outbox. A mailbox on a closed port makes `/readyz` fail naming it; on
/// PostgreSQL, so does a database that went away.
async fn metrics_after_a_known_run(backend: Backend) {
    let port = free_port();
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
            ..Default::default()
        },
    )
    .await;
    let daemon = desk.spawn();
    assert!(
        eventually(WAIT, async || get(port, "/readyz").await.0 == 200).await,
        "the daemon became ready: {:?}\n{}",
        get(port, "/readyz").await,
        desk.daemon_log()
    );
    assert_eq!(get(port, "/healthz").await, (200, "ok\n".to_string()));
    let (code, before) = get(port, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        value(
            &before,
            "helpdeskd_mails_fetched_total{mailbox=\"support\"}"
        ),
        Some(0.0),
        "{before}"
    );

    let run = unique("m");
    let customers: Vec<String> = (0..3)
        .map(|i| add_user(&unique(&format!("cust{i}"))))
        .collect();
    for (i, c) in customers.iter().enumerate() {
        desk.send_from(
            c,
            &format!("printer {i} is broken"),
            &format!("req{i}.{run}@cust.test"),
            "",
            "it prints nothing",
        )
        .await;
    }
    // The first request again (same Message-ID), and a reply to it.
    desk.send_from(
        &customers[0],
        "printer 0 is broken",
        &format!("req0.{run}@cust.test"),
        "",
        "it prints nothing",
    )
    .await;
    desk.send_from(
        &customers[0],
        "Re: printer 0 is broken",
        &format!("reply.{run}@cust.test"),
        &format!("In-Reply-To: <req0.{run}@cust.test>\r\n"),
        "it still prints nothing",
    )
    .await;
    // No sender at all: quarantined.
    append_all(
        &desk.user,
        "INBOX",
        &[format!(
            "To: {}\r\nSubject: nobody\r\nMessage-ID: <nobody.{run}@cust.test>\r\n\r\nwho am I\r\n",
            desk.address
        )],
    )
    .await;

    let settled = async || {
        let m = get(port, "/metrics").await.1;
        value(&m, "helpdeskd_mails_stored_total{mailbox=\"support\"}") == Some(4.0)
            && value(&m, "helpdeskd_mails_duplicates_total{mailbox=\"support\"}") == Some(1.0)
            && value(&m, "helpdeskd_mails_quarantined_total{mailbox=\"support\"}") == Some(1.0)
            && value(&m, "helpdeskd_outbox_sent_total") == Some(3.0)
    };
    assert!(
        eventually(WAIT, settled).await,
        "the run settled:\n{}\n{}",
        get(port, "/metrics").await.1,
        desk.daemon_log()
    );
    // Nothing more comes after a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, m) = get(port, "/metrics").await;
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 3, "{tickets:?}");
    let acks: usize = tickets
        .iter()
        .map(|t| {
            desk.ticket(t["number"].as_str().expect("a number"))["outbox"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(acks, 3, "one acknowledgement per new ticket, nothing else");
    for (series, want) in [
        ("helpdeskd_mails_fetched_total{mailbox=\"support\"}", 6.0),
        ("helpdeskd_mails_stored_total{mailbox=\"support\"}", 4.0),
        ("helpdeskd_mails_duplicates_total{mailbox=\"support\"}", 1.0),
        (
            "helpdeskd_mails_quarantined_total{mailbox=\"support\"}",
            1.0,
        ),
        ("helpdeskd_ingest_latency_seconds_count", 6.0),
        ("helpdeskd_imap_connections_total{mailbox=\"support\"}", 1.0),
        ("helpdeskd_imap_errors_total{mailbox=\"support\"}", 0.0),
        ("helpdeskd_mailbox_connected{mailbox=\"support\"}", 1.0),
        ("helpdeskd_outbox_sent_total", 3.0),
        ("helpdeskd_outbox_deferred_total", 0.0),
        ("helpdeskd_outbox_failed_total", 0.0),
        ("helpdeskd_outbox_pending", 0.0),
        ("helpdeskd_outbox_oldest_pending_age_seconds", 0.0),
        ("helpdeskd_outbox_failed_mails", 0.0),
        ("helpdeskd_outbox_bounced_mails", 0.0),
        ("helpdeskd_sla_warnings_total", 0.0),
        ("helpdeskd_sla_breaches_total", 0.0),
        ("helpdeskd_plugin_events_failed", 0.0),
        ("helpdeskd_plugin_host_restarts_total", 0.0),
        ("helpdeskd_database_up", 1.0),
    ] {
        assert_eq!(value(&m, series), Some(want), "{series} in:\n{m}");
    }
    // The SLA job runs at start; its success is read from the database.
    let sla = value(
        &m,
        "helpdeskd_job_last_success_timestamp_seconds{job=\"sla\"}",
    )
    .unwrap_or_else(|| panic!("the SLA job's last success:\n{m}"));
    assert!(sla > 1.7e9, "{sla}");
    assert!(m.trim_end().ends_with("# EOF"), "{m}");

    assert_eq!(get(port, "/readyz").await, (200, "ready\n".to_string()));
    // A client that connects and says nothing holds nobody up.
    let silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let started = std::time::Instant::now();
    assert_eq!(get(port, "/healthz").await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(silent);
    assert_eq!(get(port, "/nope").await.0, 404);
    assert_eq!(
        http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .await
            .0,
        405
    );
    assert_eq!(http(port, "nonsense\r\n\r\n").await.0, 400);

    let s = status(&desk);
    let support = &s["mailboxes"][0];
    assert_eq!(support["mailbox"], "support", "{s}");
    assert_eq!(support["connected"], true, "{s}");
    assert!(support["last_mail_at"].is_string(), "{s}");
    assert!(support["last_error"].is_null(), "{s}");
    assert_eq!(s["outbox"]["pending"], 0, "{s}");
    assert_eq!(s["outbox"]["failed"], 0, "{s}");
    assert_eq!(s["outbox"]["bounced"], 0, "{s}");
    assert_eq!(s["failed_plugin_events"], 0, "{s}");
    assert!(
        s["jobs"].as_array().is_some_and(|j| j
            .iter()
            .any(|j| j["job"] == "sla" && j["last_success_at"].is_string())),
        "{s}"
    );
    let text = desk.cli(&["status"]);
    assert!(
        text.contains("support") && text.contains("connected (by "),
        "{text}"
    );
    drop(daemon);

    // A second mailbox on a closed port: the daemon runs, but is not ready.
    let closed = free_port();
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    std::fs::write(
        &desk.config,
        format!(
            "{cfg}\n[[mailbox]]\nname = \"broken\"\n[mailbox.imap]\nhost = \"127.0.0.1\"\n\
             port = {closed}\ntls = \"none\"\nuser = \"nobody\"\npassword_file = \"imap-password\"\n\
             timeout_secs = 2\n"
        ),
    )
    .expect("config");
    let daemon = desk.spawn();
    // The other mailbox connects meanwhile and is not named.
    let failing = async || {
        let (code, body) = get(port, "/readyz").await;
        code == 503
            && body.contains("mailbox broken: cannot connect")
            && !body.contains("mailbox support")
    };
    assert!(
        eventually(WAIT, failing).await,
        "{:?}\n{}",
        get(port, "/readyz").await,
        desk.daemon_log()
    );
    let m = get(port, "/metrics").await.1;
    assert!(
        value(&m, "helpdeskd_imap_errors_total{mailbox=\"broken\"}").is_some_and(|n| n >= 1.0),
        "{m}"
    );
    let s = status(&desk);
    let broken = s["mailboxes"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mailbox"] == "broken"))
        .cloned()
        .unwrap_or_else(|| panic!("no broken mailbox in {s}"));
    assert_eq!(broken["connected"], false, "{s}");
    assert!(
        broken["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{closed}"))),
        "{s}"
    );

    if backend == Backend::Postgres {
        // The database goes away under the running daemon.
        let Desk { db, dir, .. } = desk;
        db.drop_db().await;
        let down = async || {
            let (code, body) = get(port, "/readyz").await;
            code == 503 && body.contains("\ndatabase: ")
        };
        assert!(
            eventually(WAIT, down).await,
            "{:?}",
            get(port, "/readyz").await
        );
        assert_eq!(get(port, "/healthz").await.0, 200, "the process lives");
        let m = get(port, "/metrics").await.1;
        assert_eq!(value(&m, "helpdeskd_database_up"), Some(0.0), "{m}");
        drop(daemon);
        drop(dir);
    } else {
        drop(daemon);
        desk.finish().await;
    }
}

both_backends!(metrics_after_a_known_run, super::metrics_after_a_known_run);

/// `helpdeskd --now AT run`, logging to the desk's daemon log.
fn spawn_at(desk: &Desk, at: &str) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(desk.dir.path().join("daemon.log"))
        .expect("daemon log");
    Daemon(
        desk.command()
            .args(["--now", at, "run"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn helpdeskd run"),
    )
}

/// Scrapes until `series` has `want` (or the wait ends); returns the last scrape.
async fn scrape_until(port: u16, series: &str, want: f64) -> String {
    let mut last = String::new();
    eventually(WAIT, async || {
        last = get(port, "/metrics").await.1;
        value(&last, series) == Some(want)
    })
    .await;
    last
}

/// A plugin that hangs costs a call and a timeout per try and the host a
/// restart, and its event fails; the SLA job's warning and breach are each
/// counted by the daemon that recorded it, once.
async fn plugin_calls_and_sla_alerts_are_counted(backend: Backend) {
    let port = free_port();
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: format!(
                r#"[[sla_policy]]
name = "standard"
warn_percent = 80
response = {{ normal = "1h" }}

[[service]]
name = "email"
sla_policy = "standard"

[plugins]
dir = "plugins"
timeout_secs = 1
retries = 1

[metrics]
listen = "127.0.0.1:{port}"
"#
            ),
            mailbox_extra: "service = \"email\"".into(),
            ..Default::default()
        },
    )
    .await;
    crate::plugins::install(
        &crate::plugins::plugin_dir(desk.dir.path()),
        &["plugin-hang"],
    );
    let t0 = "2026-11-25T10:00:00Z";
    let daemon = spawn_at(&desk, t0);
    let cust = add_user(&unique("cust"));
    desk.send_from(
        &cust,
        "mail is down",
        &format!("{}@cust.test", unique("sla")),
        "",
        "since 9",
    )
    .await;
    let m = scrape_until(port, "helpdeskd_plugin_events_failed", 1.0).await;
    for (series, want) in [
        ("helpdeskd_mails_stored_total{mailbox=\"support\"}", 1.0),
        ("helpdeskd_plugin_events_failed", 1.0),
        (
            "helpdeskd_plugin_calls_total{plugin=\"hang\",outcome=\"error\"}",
            2.0,
        ),
        ("helpdeskd_plugin_timeouts_total{plugin=\"hang\"}", 2.0),
        ("helpdeskd_plugin_host_restarts_total", 1.0),
        ("helpdeskd_sla_warnings_total", 0.0),
        ("helpdeskd_sla_breaches_total", 0.0),
    ] {
        assert_eq!(
            value(&m, series),
            Some(want),
            "{series} in:\n{m}\n{}",
            desk.daemon_log()
        );
    }
    let s = status(&desk);
    assert_eq!(s["failed_plugin_events"], 1, "{s}");
    drop(daemon);

    // 50 minutes on: the response target's warning (at 48), once.
    let daemon = spawn_at(&desk, "2026-11-25T10:50:00Z");
    let m = scrape_until(port, "helpdeskd_sla_warnings_total", 1.0).await;
    assert_eq!(value(&m, "helpdeskd_sla_warnings_total"), Some(1.0), "{m}");
    assert_eq!(value(&m, "helpdeskd_sla_breaches_total"), Some(0.0), "{m}");
    assert_eq!(
        value(&m, "helpdeskd_plugin_events_failed"),
        Some(1.0),
        "{m}"
    );
    drop(daemon);

    // 70 minutes on: the breach; the warning was told already.
    let daemon = spawn_at(&desk, "2026-11-25T11:10:00Z");
    let m = scrape_until(port, "helpdeskd_sla_breaches_total", 1.0).await;
    assert_eq!(value(&m, "helpdeskd_sla_breaches_total"), Some(1.0), "{m}");
    assert_eq!(value(&m, "helpdeskd_sla_warnings_total"), Some(0.0), "{m}");
    drop(daemon);
    desk.finish().await;
}

both_backends!(
    plugin_calls_and_sla_alerts_are_counted,
    super::plugin_calls_and_sla_alerts_are_counted
);
