//! The plugin benchmark: events per second through the isolated plugin host
//! and in-process, for a no-op plugin and for keyword-router.
//!
//! ```text
//! cargo bench --bench plugins                    # 20,000 events per run
//! cargo bench --bench plugins -- --events 100000
//! ```
//!
//! Each run gets a fresh SQLite database with N tickets and one pending
//! `ticket.created` event per ticket (half of them mention "VPN", which
//! keyword-router routes: priority, kind, assignee and a note, which raise a
//! `ticket.updated` event each). Two figures per run:
//!
//! - `dispatch_events_per_sec`: the whole dispatcher (`Dispatcher::drain`:
//!   pick events, call the plugins, validate and apply the actions, write
//!   every event's state; one transaction per batch of 500) until no event
//!   is pending; the events raised by keyword-router's changes count too;
//! - `host_events_per_sec`: the plugin calls alone (`Runner::dispatch` of the
//!   same events in batches of 500), no database.
//!
//! The run is verified (every event done, none failed; every VPN ticket
//! routed). Output: `plugins.MODE.PLUGIN.NAME VALUE` lines. The plugins are
//! built in release mode into `target/plugin-tests` first. Without `--bench`
//! (`cargo test --benches`) it is a 500-event smoke run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use helpdeskd::clock::SystemClock;
use helpdeskd::config::{Isolation, PluginsConfig};
use helpdeskd::domain::ack::Desk;
use helpdeskd::domain::mail::Address;
use helpdeskd::domain::staff::{Directory, StaffMember};
use helpdeskd::plugins::protocol::Call;
use helpdeskd::plugins::{self, Dispatcher};
use helpdeskd::store::Store;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const STAFF: &str = "net@example.test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the two plugins in release mode; returns the folder of the libraries.
fn build_plugins() -> Result<PathBuf> {
    let target = repo_root().join("target/plugin-tests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "plugin-noop",
            "-p",
            "keyword-router",
        ])
        .current_dir(repo_root())
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("run cargo build")?;
    ensure!(status.success(), "building the plugins failed");
    Ok(target.join("release"))
}

fn plugin_dir(parent: &Path, lib: &Path, name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent.join("plugins");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let to = dir.join(format!("{name}.so"));
    std::fs::copy(lib, &to)?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn payload(i: i64) -> Value {
    let subject = if i % 2 == 0 {
        format!("VPN drops every few minutes ({i})")
    } else {
        format!("Printer on floor {} is jammed", i % 7)
    };
    json!({
        "hook": "ticket.created",
        "ticket": {"number": format!("INC-{i:06}"), "kind": "incident", "status": "new",
                   "priority": "normal", "subject": subject, "assignee": null, "group": null,
                   "customer": format!("user{}@customer.example", i % 500), "mailbox": "support",
                   "fields": {}},
        "message": {"message_id": format!("m{i}@customer.example"),
                    "from": format!("user{}@customer.example", i % 500), "subject": subject,
                    "text": "Hello, since this morning nothing works. Please help, it is urgent for the team.",
                    "visibility": "public"},
        "changes": [],
    })
}

/// A database with `n` tickets and one pending event each.
async fn seed(dir: &Path, n: i64) -> Result<Store> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let store = Store::connect(&url, 4).await?;
    store.migrate().await?;
    let db = store.conn();
    db.execute_unprepared(
        "INSERT INTO contacts (id, email, name, created_at) VALUES (1, 'c@customer.example', '', '2026-11-25T10:00:00Z')",
    )
    .await?;
    let mut i = 1;
    while i <= n {
        let end = (i + 199).min(n);
        let mut tickets = String::from(
            "INSERT INTO tickets (id, number, kind, subject, status, priority, customer_id, mailbox, created_at, updated_at) VALUES ",
        );
        let mut events = String::from(
            "INSERT INTO events (ticket_id, hook, payload, status, attempts, created_at, next_attempt_at) VALUES ",
        );
        for k in i..=end {
            let sep = if k == i { "" } else { "," };
            let p = payload(k);
            let subject = p["ticket"]["subject"]
                .as_str()
                .unwrap_or("")
                .replace('\'', "''");
            tickets.push_str(&format!(
                "{sep}({k}, 'INC-{k:06}', 'incident', '{subject}', 'new', 'normal', 1, 'support', '2026-11-25T10:00:00Z', '2026-11-25T10:00:00Z')"
            ));
            events.push_str(&format!(
                "{sep}({k}, 'ticket.created', '{}', 'pending', 0, '2026-11-25T10:00:00Z', '2026-11-25T10:00:00Z')",
                p.to_string().replace('\'', "''")
            ));
        }
        db.execute_unprepared(&tickets).await?;
        db.execute_unprepared(&events).await?;
        i = end + 1;
    }
    Ok(store)
}

fn config(dir: PathBuf, isolation: Isolation) -> PluginsConfig {
    let mut config = BTreeMap::new();
    config.insert(
        "keyword-router".to_string(),
        json!({"rule": [{"name": "network", "keywords": ["vpn", "wifi"], "kind": "incident",
                         "priority": "high", "assignee": STAFF}]}),
    );
    PluginsConfig {
        enabled: true,
        dir,
        isolation,
        timeout: Duration::from_secs(10),
        retries: 1,
        config,
    }
}

async fn count(store: &Store, sql: &str) -> Result<i64> {
    let row = store
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            store.conn().get_database_backend(),
            sql.to_string(),
        ))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn run(
    libs: &Path,
    package: &str,
    name: &str,
    isolation: Isolation,
    n: i64,
) -> Result<Vec<(String, f64)>> {
    let tmp = tempfile::tempdir()?;
    let lib = libs.join(format!("lib{}.so", package.replace('-', "_")));
    let dir = plugin_dir(tmp.path(), &lib, name)?;
    let cfg = config(dir, isolation);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_helpdeskd"));

    // The plugin calls alone.
    let mut loaded = plugins::load(&cfg, &exe).await;
    ensure!(
        loaded.statuses.iter().all(|s| s.result.is_ok()) && !loaded.statuses.is_empty(),
        "plugin did not load: {:?} {:?}",
        loaded.statuses,
        loaded.error
    );
    let plugin_name = loaded.statuses[0]
        .result
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let started = Instant::now();
    let mut i = 1;
    while i <= n {
        let end = (i + 499).min(n);
        let calls: Vec<Call> = (i..=end)
            .map(|k| {
                let mut e = payload(k);
                e["id"] = json!(k);
                Call {
                    event: e,
                    plugins: vec![plugin_name.clone()],
                }
            })
            .collect();
        let r = loaded
            .runner
            .dispatch(calls)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        ensure!(r.len() as i64 == end - i + 1, "missing results");
        i = end + 1;
    }
    let host_secs = started.elapsed().as_secs_f64();
    loaded.runner.shutdown().await;

    // The whole dispatcher over the database.
    let store = seed(tmp.path(), n).await?;
    let desk = Desk {
        name: "Bench Desk".into(),
        address: Address::new("Bench Desk", "support@example.test"),
        tag: "BENCH".into(),
    };
    let staff = Directory::new(vec![StaffMember {
        name: "Net Ops".into(),
        email: STAFF.into(),
        groups: vec!["network".into()],
    }]);
    let loaded = plugins::load(&cfg, &exe).await;
    let subscriptions = loaded.subscriptions();
    let mut d = Dispatcher::new(
        store.clone(),
        loaded.runner,
        subscriptions,
        desk,
        staff,
        cfg.retries,
        Arc::new(SystemClock),
    );
    let started = Instant::now();
    let stats = d.drain().await?;
    let secs = started.elapsed().as_secs_f64();
    d.shutdown().await;
    let events = count(&store, "SELECT COUNT(*) FROM events").await?;
    let done = count(&store, "SELECT COUNT(*) FROM events WHERE status = 'done'").await?;
    ensure!(
        done == events && stats.failed == 0,
        "{done} of {events} events done, {} failed",
        stats.failed
    );
    if package == "keyword-router" {
        let routed = count(
            &store,
            &format!(
                "SELECT COUNT(*) FROM tickets WHERE priority = 'high' AND assignee = '{STAFF}'"
            ),
        )
        .await?;
        ensure!(
            routed == (n / 2),
            "{routed} of {} VPN tickets routed",
            n / 2
        );
    }
    Ok(vec![
        ("events".into(), events as f64),
        ("dispatch_seconds".into(), secs),
        ("dispatch_events_per_sec".into(), events as f64 / secs),
        ("actions_applied".into(), stats.applied as f64),
        ("host_seconds".into(), host_secs),
        ("host_events_per_sec".into(), n as f64 / host_secs),
    ])
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n: i64 = if args.iter().any(|a| a == "--bench") {
        20_000
    } else {
        500
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--events" {
            n = it
                .next()
                .and_then(|v| v.parse().ok())
                .context("--events N")?;
        }
    }
    if n < 2 {
        bail!("--events must be at least 2");
    }
    let libs = build_plugins()?;
    let mut summary = Vec::new();
    for (isolation, mode) in [
        (Isolation::Process, "process"),
        (Isolation::InProcess, "in_process"),
    ] {
        for (package, name) in [
            ("plugin-noop", "noop"),
            ("keyword-router", "keyword_router"),
        ] {
            let figures = run(&libs, package, name, isolation, n)
                .await
                .with_context(|| format!("{mode} {name}"))?;
            for (k, v) in &figures {
                println!("plugins.{mode}.{name}.{k} {v:.3}");
            }
            let get = |k: &str| {
                figures
                    .iter()
                    .find(|(f, _)| f == k)
                    .map_or(0.0, |(_, v)| *v)
            };
            summary.push(format!(
                "{mode:<10} {name:<15} dispatcher {:>8.0} events/s   host calls {:>9.0} events/s",
                get("dispatch_events_per_sec"),
                get("host_events_per_sec")
            ));
        }
    }
    eprintln!("\n{n} events per run (target: 5,000 events/s isolated)");
    for s in summary {
        eprintln!("{s}");
    }
    Ok(())
}
