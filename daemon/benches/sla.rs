//! The SLA job benchmark: a database of N open tickets with an SLA, of which
//! D have come to their warning threshold, and one run of
//! `helpdeskd::service_level::check`, timed.
//!
//! ```text
//! cargo bench -p helpdeskd --bench sla                       # 1,000,000 and 100,000 tickets, 10,000 due, both backends and layouts
//! cargo bench -p helpdeskd --bench sla -- --tickets 200000 --due 2000 --backend sqlite
//! ```
//!
//! Options (or environment): `--tickets N[/N…]` (`SLA_BENCH_TICKETS`),
//! `--due D` (`SLA_BENCH_DUE`; default 10,000: 1 % of a million, the same
//! number for every size), `--backend sqlite|postgres|both`
//! (`SLA_BENCH_BACKEND`), `--layout clustered|spread|both`
//! (`SLA_BENCH_LAYOUT`, see below), `--no-events` (no plugin is installed:
//! no `sla.warning` hook events are written), `--race` (two daemons: two
//! `check`s on two connection pools at once; the run is verified to tell
//! each alert once), `--log-level L` (the daemon's `[log] level`, default
//! `info`: each alert logs a line, formatted into a sink), `--keep` (leave
//! the databases and print where they are). Without `--bench` (`cargo test
//! --benches`, or by hand) the default is a smoke run: 20,000 tickets, 200
//! due, clustered.
//!
//! The desk: two staff (the tickets' assignees, alternating), one service
//! `email` whose policy runs on an office calendar (Europe/Berlin, Mon–Fri
//! 08:00–18:00) with a 4 h response and 3 d resolution target for normal
//! priority and warnings at 80 %, and an escalation contact. The clock is
//! Wednesday 2026-11-25 12:00 UTC. The D due tickets were opened that morning
//! between 09:00 and 09:48 Berlin time and not answered: 3 h 12 min of
//! business time have run, so each has exactly one alert due (the response
//! warning) and its `sla_next_at` is its warning instant. Most others were
//! opened over the last 30 days, answered, and have an `sla_next_at` in the
//! coming week; D/10 were opened after the due ones and await their warning.
//! Layouts: `clustered` (the default; with `--bench` both run): ids in the
//! order the tickets were opened, as the desk numbers them, so the due
//! tickets are one run of ids; `spread`: every (N/D)-th ticket is due, a page
//! of the table (or more) each, the worst case for the database's caches.
//! The database is seeded with set-based SQL in one
//! transaction (a recursive CTE on SQLite, `generate_series` on PostgreSQL),
//! then `ANALYZE`d; seeding is timed and printed but is not the figure.
//!
//! Timed: one `check` (run 1: reads the due tickets, records 10,000 warnings,
//! writes a note and a rendered mail to the assignee for each, the hook
//! events, moves `sla_next_at` on), then a second `check` right after
//! (nothing is due: it shows the job reads only due tickets). Peak RSS is the
//! process's `VmHWM`, reset (`/proc/self/clear_refs`) before each run. The
//! run is verified (one warning event, note and queued mail per due ticket,
//! no ticket left due); a wrong run fails the bench.
//!
//! PostgreSQL: a fresh database on `HELPDESK_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`'s server), dropped at the end;
//! the job connects over the server's Unix socket when it has one (as the
//! ingest bench does), over TCP with `HELPDESK_BENCH_PG_TCP=1`.
//!
//! Output on stdout, one figure a line, `sla.BACKEND.LAYOUT.TICKETS.NAME VALUE`:
//! open_tickets, due_tickets, seed_seconds, loadavg_before (anything else
//! running skews the figures on a small machine), run_seconds, cpu_seconds
//! (this process's, during the run), postgres_cpu_seconds (the bench
//! database's backends), tickets_checked, warnings, breaches, mails, events,
//! peak_rss_mb, second_run_seconds, second_run_tickets (and with `--race`
//! the rival's tickets_checked, warnings and mails). A summary with the
//! issue's target goes to stderr.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use chrono::{DateTime, Utc};
use helpdeskd::config::Config;
use helpdeskd::domain::conversation::Settings;
use helpdeskd::store::Store;
use sea_orm::{ConnectionTrait, Statement};

#[path = "common/flags.rs"]
mod flags;

use flags::Flags;

/// The issue's target for one run.
const TARGET_SECONDS: f64 = 1.0;
/// The clock: a Wednesday, 13:00 in Berlin.
const NOW: &str = "2026-11-25T12:00:00Z";
/// The due tickets were opened from 09:00:30 Berlin time (08:00:30 UTC)
/// over 47 minutes.
const DUE_FIRST_CREATED: &str = "2026-11-25T08:00:30Z";
const DUE_SPREAD_SECS: i64 = 47 * 60;
/// 80 % of the 4 h response target.
const WARN_AFTER_SECS: i64 = 3 * 3600 + 12 * 60;
const CUSTOMERS: i64 = 1000;
const ADA: &str = "ada@example.test";
const BOB: &str = "bob@example.test";
const LEAD: &str = "lead@example.test";

// ---------------------------------------------------------------- options

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the due tickets lie among the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Ids in the order tickets were opened, as the desk numbers them: the
    /// tickets due together were opened together, one run of ids.
    Clustered,
    /// Every (N/D)-th ticket: the due tickets spread over the whole table,
    /// a page (or more) each. The worst case for the database's caches.
    Spread,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Clustered => "clustered",
            Layout::Spread => "spread",
        }
    }
}

fn layouts(s: &str) -> Result<Vec<Layout>> {
    Ok(match s {
        "clustered" => vec![Layout::Clustered],
        "spread" => vec![Layout::Spread],
        "both" => vec![Layout::Clustered, Layout::Spread],
        other => bail!("layout clustered|spread|both, not {other}"),
    })
}

#[derive(Debug)]
struct Options {
    tickets: Vec<i64>,
    due: i64,
    backends: Vec<Backend>,
    layouts: Vec<Layout>,
    events: bool,
    race: bool,
    log_level: String,
    keep: bool,
}

fn number(s: &str, what: &str) -> Result<i64> {
    s.trim()
        .replace(['_', ','], "")
        .parse()
        .with_context(|| format!("{what}: not a number: {s:?}"))
}

fn backends(s: &str) -> Result<Vec<Backend>> {
    Ok(match s {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" | "postgresql" | "pg" => vec![Backend::Postgres],
        "both" => vec![Backend::Sqlite, Backend::Postgres],
        other => bail!("backend sqlite|postgres|both, not {other}"),
    })
}

fn options() -> Result<Options> {
    let mut flags = Flags::from_env("sla");
    let full = flags.from_cargo_bench;
    let mut o = Options {
        tickets: if full {
            vec![1_000_000, 100_000]
        } else {
            vec![20_000]
        },
        due: if full { 10_000 } else { 200 },
        backends: vec![Backend::Sqlite, Backend::Postgres],
        layouts: if full {
            vec![Layout::Clustered, Layout::Spread]
        } else {
            vec![Layout::Clustered]
        },
        events: true,
        race: false,
        log_level: "info".into(),
        keep: false,
    };
    if let Ok(v) = std::env::var("SLA_BENCH_TICKETS") {
        o.tickets = v
            .split(['/', ';', ' '])
            .filter(|s| !s.is_empty())
            .map(|n| number(n, "SLA_BENCH_TICKETS"))
            .collect::<Result<_>>()?;
    }
    if let Ok(v) = std::env::var("SLA_BENCH_DUE") {
        o.due = number(&v, "SLA_BENCH_DUE")?;
    }
    if let Ok(v) = std::env::var("SLA_BENCH_BACKEND") {
        o.backends = backends(&v)?;
    }
    if let Ok(v) = std::env::var("SLA_BENCH_LAYOUT") {
        o.layouts = layouts(&v)?;
    }
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--tickets" => {
                // Several sizes: "--tickets 1000000/100000" (a comma is a
                // thousands separator).
                o.tickets = flags
                    .value(&flag)?
                    .split(['/', ';', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|n| number(n, "--tickets"))
                    .collect::<Result<_>>()?;
            }
            "--due" => o.due = number(&flags.value(&flag)?, "--due")?,
            "--backend" => o.backends = backends(&flags.value(&flag)?)?,
            "--layout" => o.layouts = layouts(&flags.value(&flag)?)?,
            "--no-events" => o.events = false,
            "--race" => o.race = true,
            "--log-level" => o.log_level = flags.value(&flag)?,
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                eprintln!(
                    "cargo bench -p helpdeskd --bench sla -- [--tickets N[/N…]] [--due D] \
                     [--backend sqlite|postgres|both] [--layout clustered|spread|both] \
                     [--no-events] [--race] [--log-level L] [--keep]"
                );
                std::process::exit(0);
            }
            f => bail!("unknown option {f} (try --help)"),
        }
    }
    ensure!(!o.tickets.is_empty(), "--tickets: at least one size");
    ensure!(o.due >= 1, "--due must be at least 1");
    for &n in &o.tickets {
        ensure!(n >= o.due, "--tickets {n} is fewer than --due {}", o.due);
    }
    Ok(o)
}

// ---------------------------------------------------------------- main

fn main() {
    if let Err(e) = real_main() {
        eprintln!("sla bench FAILED: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let o = options()?;
    // The daemon logs each alert at info; formatted, into a sink.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&o.log_level))
        .with_writer(std::io::sink)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    eprintln!(
        "sla bench: tickets {:?}, {} due, backends {:?}, hook events {}",
        o.tickets,
        o.due,
        o.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        if o.events { "on" } else { "off" },
    );
    let mut summary = Vec::new();
    for &backend in &o.backends {
        for &layout in &o.layouts {
            for &n in &o.tickets {
                let s = rt
                    .block_on(bench_one(&o, backend, layout, n))
                    .with_context(|| {
                        format!("{} {} with {n} tickets", backend.name(), layout.name())
                    })?;
                summary.push(s);
            }
        }
    }
    for s in &summary {
        eprintln!(
            "sla bench: {:<8} {:<9} {:>9} open, {:>6} due: run {:.3} s ({}), {} alerts, \
             {} mails, peak RSS {:.0} MB; second run {:.4} s; seeding {:.1} s",
            s.backend.name(),
            s.layout.name(),
            s.tickets,
            s.due,
            s.run_seconds,
            if s.run_seconds < TARGET_SECONDS {
                "meets the < 1 s target"
            } else {
                "MISSES the < 1 s target"
            },
            s.alerts,
            s.mails,
            s.peak_rss_mb,
            s.second_seconds,
            s.seed_seconds,
        );
    }
    Ok(())
}

struct Summary {
    backend: Backend,
    layout: Layout,
    tickets: i64,
    due: i64,
    seed_seconds: f64,
    run_seconds: f64,
    alerts: u64,
    mails: u64,
    peak_rss_mb: f64,
    second_seconds: f64,
}

/// Prints `sla.BACKEND.LAYOUT.TICKETS.NAME VALUE` at once.
struct Figures {
    prefix: String,
}

impl Figures {
    fn put(&self, name: &str, value: impl std::fmt::Display) {
        println!("{}.{name} {value}", self.prefix);
        let _ = std::io::stdout().flush();
    }
}

async fn bench_one(o: &Options, backend: Backend, layout: Layout, n: i64) -> Result<Summary> {
    let fig = Figures {
        prefix: format!("sla.{}.{}.{n}", backend.name(), layout.name()),
    };
    let work = tempfile::Builder::new()
        .prefix("helpdeskd-sla-bench")
        .tempdir()
        .context("temp dir")?;
    let mut db = BenchDb::create(backend, work.path()).await?;
    let result = measure(o, &fig, backend, layout, &db, work.path(), n).await;
    if o.keep {
        eprintln!("sla bench: kept {} ({})", db.url, work.path().display());
        db.pg = None;
        let _ = work.keep();
    } else {
        db.drop_db().await;
    }
    result
}

async fn measure(
    o: &Options,
    fig: &Figures,
    backend: Backend,
    layout: Layout,
    db: &BenchDb,
    dir: &Path,
    n: i64,
) -> Result<Summary> {
    let url = db.url.as_str();
    let pg_name = db.pg.clone();
    let store = Store::connect(url, 4).await.context("connect")?;
    store.migrate().await.context("migrate")?;
    let mut settings = settings(dir, url)?;
    settings.emit_events = o.events;
    let now: DateTime<Utc> = NOW.parse()?;

    let started = Instant::now();
    seed(&store, backend, layout, n, o.due, now)
        .await
        .context("seed")?;
    let seed_seconds = started.elapsed().as_secs_f64();
    fig.put("open_tickets", n);
    fig.put("due_tickets", o.due);
    fig.put("seed_seconds", format!("{seed_seconds:.2}"));
    ensure!(
        count(
            &store,
            &format!(
                "SELECT COUNT(*) FROM tickets WHERE sla_next_at <= {}",
                ts(backend, now)
            )
        )
        .await?
            == o.due,
        "the seeded database does not have {} due tickets",
        o.due
    );

    let ticks = clock_ticks();
    let load = loadavg();
    reset_peak_rss();
    let cpu_before = cpu_ticks("self").unwrap_or(0);
    let pg_before = pg_name.as_deref().map_or(0, postgres_ticks);
    let started = Instant::now();
    let (stats, rival) = if o.race {
        // Two daemons on one database: each alert must still be told once.
        let other = Store::connect(url, 4).await.context("connect")?;
        let (a, b) = tokio::join!(
            helpdeskd::service_level::check(&store, &settings, now),
            helpdeskd::service_level::check(&other, &settings, now),
        );
        other.conn().clone().close().await.ok();
        (
            a.context("first SLA run")?,
            Some(b.context("rival SLA run")?),
        )
    } else {
        let a = helpdeskd::service_level::check(&store, &settings, now)
            .await
            .context("first SLA run")?;
        (a, None)
    };
    let run_seconds = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks("self").unwrap_or(0) - cpu_before) as f64 / ticks;
    let pg_cpu = pg_name
        .as_deref()
        .map(|db| (postgres_ticks(db) - pg_before) as f64 / ticks);
    let peak_rss_kb = peak_rss_kb();
    fig.put("loadavg_before", load);
    fig.put("run_seconds", format!("{run_seconds:.3}"));
    fig.put("cpu_seconds", format!("{cpu:.2}"));
    if let Some(c) = pg_cpu {
        fig.put("postgres_cpu_seconds", format!("{c:.2}"));
    }
    fig.put("tickets_checked", stats.tickets);
    fig.put("warnings", stats.warnings);
    fig.put("breaches", stats.breaches);
    fig.put("mails", stats.mails);
    if let Some(r) = rival {
        fig.put("rival_tickets_checked", r.tickets);
        fig.put("rival_warnings", r.warnings);
        fig.put("rival_mails", r.mails);
    }
    let events = count(
        &store,
        "SELECT COUNT(*) FROM events WHERE hook = 'sla.warning'",
    )
    .await?;
    fig.put("events", events);
    fig.put("peak_rss_mb", format!("{:.1}", peak_rss_kb as f64 / 1000.0));

    reset_peak_rss();
    let started = Instant::now();
    let second = helpdeskd::service_level::check(&store, &settings, now)
        .await
        .context("second SLA run")?;
    let second_seconds = started.elapsed().as_secs_f64();
    fig.put("second_run_seconds", format!("{second_seconds:.4}"));
    fig.put("second_run_tickets", second.tickets);

    // The run did what the job must do, once per due ticket (with a rival
    // daemon, both may find an alert; one tells it).
    let d = o.due as u64;
    let r = rival.unwrap_or_default();
    ensure!(
        stats.tickets + r.tickets >= d && (rival.is_some() || stats.tickets == d),
        "checked {} (+ {}) tickets, {d} were due",
        stats.tickets,
        r.tickets
    );
    ensure!(
        stats.warnings + r.warnings >= d && stats.breaches + r.breaches == 0,
        "{} (+ {}) warnings and {} breaches; expected {d} warnings",
        stats.warnings,
        r.warnings,
        stats.breaches
    );
    ensure!(
        stats.mails + r.mails == d,
        "{} (+ {}) mails; expected one per warning",
        stats.mails,
        r.mails
    );
    let checks = [
        (
            "SELECT COUNT(*) FROM sla_events WHERE kind = 'warning' AND target = 'response'",
            o.due,
        ),
        (
            "SELECT COUNT(*) FROM messages WHERE class = 'sla-warning'",
            o.due,
        ),
        (
            "SELECT COUNT(*) FROM messages WHERE direction = 'out'",
            o.due,
        ),
        (
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending'",
            o.due,
        ),
        ("SELECT COUNT(DISTINCT ticket_id) FROM outbox", o.due),
        (
            "SELECT COUNT(*) FROM events",
            if o.events { o.due } else { 0 },
        ),
    ];
    for (sql, want) in checks {
        let got = count(&store, sql).await?;
        ensure!(got == want, "{sql}: {got}, expected {want}");
    }
    let left = count(
        &store,
        &format!(
            "SELECT COUNT(*) FROM tickets WHERE sla_next_at <= {} OR response_due_at IS NULL",
            ts(backend, now)
        ),
    )
    .await?;
    ensure!(left == 0, "{left} tickets still due after the run");
    ensure!(
        second.tickets == 0,
        "the second run found {} due tickets",
        second.tickets
    );
    store.conn().clone().close().await.ok();
    Ok(Summary {
        backend,
        layout,
        tickets: n,
        due: o.due,
        seed_seconds,
        run_seconds,
        alerts: stats.warnings + stats.breaches,
        mails: stats.mails,
        peak_rss_mb: peak_rss_kb as f64 / 1000.0,
        second_seconds,
    })
}

async fn count(store: &Store, sql: &str) -> Result<i64> {
    let conn = store.conn();
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow!("{sql}: no row"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// A timestamp literal as the backend stores it.
fn ts(backend: Backend, t: DateTime<Utc>) -> String {
    match backend {
        // sqlx writes RFC 3339 text; whole seconds carry no fraction.
        Backend::Sqlite => format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S+00:00")),
        Backend::Postgres => format!("'{}'::timestamptz", t.to_rfc3339()),
    }
}

/// The desk's `Settings`, built from a configuration as `app` builds them.
fn settings(dir: &Path, url: &str) -> Result<Settings> {
    let secret = dir.join("token.key");
    std::fs::write(&secret, "5c1a-bench-secret-0123456789abcdef")?;
    let text = format!(
        r#"data_dir = "data"

[database]
url = "{url}"

[desk]
name = "ACME Service Desk"
address = "support@example.test"
tag = "ACME"
token_secret_file = "{secret}"

[[mailbox]]
name = "support"
service = "email"

[mailbox.imap]
host = "127.0.0.1"
tls = "none"
user = "support"
password_env = "PW"

[smtp]
host = "127.0.0.1"
tls = "none"

[[staff]]
name = "Ada Lovelace"
email = "{ADA}"

[[staff]]
name = "Bob Builder"
email = "{BOB}"

[[calendar]]
name = "office"
zone = "Europe/Berlin"
hours = ["mon-fri 08:00-18:00"]
holidays = ["2026-12-24..2026-12-26", "2027-01-01"]

[[sla_policy]]
name = "standard"
calendar = "office"
warn_percent = 80
response = {{ urgent = "30m", high = "1h", normal = "4h", low = "8h" }}
resolution = {{ urgent = "4h", high = "8h", normal = "3d", low = "5d" }}

[[service]]
name = "email"
sla_policy = "standard"
escalation = "{LEAD}"
"#,
        secret = secret.display(),
    );
    let path = dir.join("helpdesk.toml");
    let config = Config::parse(&path, &text, &|name| (name == "PW").then(|| "x".into()))
        .map_err(|e| anyhow!("bench configuration: {e}"))?;
    Ok(helpdeskd::app::settings(&config)?)
}

// ---------------------------------------------------------------- seeding

/// N open tickets of service `email`, D of them at their response warning;
/// customers, staff contacts and the counters past the seeded ids. One
/// transaction of set-based statements.
async fn seed(
    store: &Store,
    backend: Backend,
    layout: Layout,
    n: i64,
    due: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let now_s = now.timestamp();
    let first: DateTime<Utc> = DUE_FIRST_CREATED.parse()?;
    let first_s = first.timestamp();
    let spread = DUE_SPREAD_SECS;
    let warn = WARN_AFTER_SECS;
    // Three kinds of ticket: the due ones (opened this morning from
    // 09:00:30 Berlin time over 47 minutes), recent ones (opened since, up
    // to 12:48:30: their warning is still to come) and older ones (opened
    // over the last 30 days, answered, next looked at within the week).
    let (is_due, k, is_recent, r, recent, old_created) = match layout {
        Layout::Clustered => {
            // Ids in the order the tickets were opened, as the desk numbers
            // them: the due tickets are one run of ids near the end.
            let recent = (due / 10).min(n - due);
            let old = n - due - recent;
            (
                format!("(i > {old} AND i <= {})", old + due),
                format!("(i - {old} - 1)"),
                format!("(i > {})", old + due),
                format!("(i - {} - 1)", old + due),
                recent,
                format!(
                    "({now_s} - 2592000 + (i - 1) * {} / {})",
                    2592000 - 4 * 3600,
                    old.max(1)
                ),
            )
        }
        // Ticket i is due when i·D/N steps: exactly D tickets, spread evenly
        // over the ids (and so over the table's pages).
        Layout::Spread => (
            format!("((i * {due}) / {n} <> ((i - 1) * {due}) / {n})"),
            format!("((i * {due}) / {n} - 1)"),
            "FALSE".to_string(),
            "0".to_string(),
            1,
            format!("({now_s} - 3600 - (i * 7919) % 2592000)"),
        ),
    };
    let due_created = format!("({first_s} + {k} * {spread} / {due})");
    let recent_created = format!("({first_s} + 2880 + {r} * 10800 / {recent})");
    let old_next = format!("({now_s} + 60 + (i * 104729) % 604800)");
    let created = format!(
        "CASE WHEN {is_due} THEN {due_created} WHEN {is_recent} THEN {recent_created} \
         ELSE {old_created} END"
    );
    let next = format!(
        "CASE WHEN {is_due} THEN {due_created} + {warn} \
         WHEN {is_recent} THEN {recent_created} + {warn} ELSE {old_next} END"
    );
    let responded =
        format!("CASE WHEN {is_due} OR {is_recent} THEN NULL ELSE {old_created} + 600 END");
    let response_due = format!("{created} + 14400");
    let resolution_due = format!("{created} + 864000");
    // Seconds since the epoch → the column's value as sqlx writes it.
    let time: fn(&str) -> String = match backend {
        Backend::Sqlite => |e| format!("strftime('%Y-%m-%dT%H:%M:%S+00:00', {e}, 'unixepoch')"),
        Backend::Postgres => |e| format!("to_timestamp({e})"),
    };
    let series = match backend {
        Backend::Sqlite => {
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
            )
        }
        Backend::Postgres => String::new(),
    };
    let from = match backend {
        Backend::Sqlite => "FROM s".to_string(),
        Backend::Postgres => format!("FROM generate_series(1::bigint, {n}::bigint) AS i"),
    };
    let number = match backend {
        Backend::Sqlite => "printf('INC-%06d', i)",
        Backend::Postgres => {
            "'INC-' || CASE WHEN i < 1000000 THEN lpad(i::text, 6, '0') ELSE i::text END"
        }
    };
    let customers = match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {CUSTOMERS}) \
             INSERT INTO contacts (id, email, name, created_at, ack_window_start, ack_count) \
             SELECT i, 'customer' || i || '@example.org', 'Customer ' || i, {}, NULL, 0 FROM s",
            time(&format!("{now_s} - 3000000"))
        ),
        Backend::Postgres => format!(
            "INSERT INTO contacts (id, email, name, created_at, ack_window_start, ack_count) \
             SELECT i, 'customer' || i || '@example.org', 'Customer ' || i, {}, NULL, 0 \
             FROM generate_series(1::bigint, {CUSTOMERS}::bigint) AS i",
            time(&format!("{now_s} - 3000000"))
        ),
    };
    let staff = format!(
        "INSERT INTO contacts (id, email, name, created_at, ack_window_start, ack_count) VALUES \
         ({a}, '{ADA}', 'Ada Lovelace', {t}, NULL, 0), \
         ({b}, '{BOB}', 'Bob Builder', {t}, NULL, 0), \
         ({l}, '{LEAD}', '', {t}, NULL, 0)",
        a = CUSTOMERS + 1,
        b = CUSTOMERS + 2,
        l = CUSTOMERS + 3,
        t = time(&format!("{now_s} - 3000000")),
    );
    let tickets = format!(
        "{series}INSERT INTO tickets (id, number, kind, subject, status, priority, customer_id, \
         mailbox, created_at, updated_at, assignee, team, fields, resolved_at, root_message_id, \
         last_public_message_id, service, response_due_at, resolution_due_at, responded_at, \
         sla_next_at) \
         SELECT i, {number}, 'incident', 'Printer ' || (i % 997) || ' on floor ' || (i % 7) || ' prints nothing', \
         'open', 'normal', 1 + i % {CUSTOMERS}, 'support', {c}, {c}, \
         CASE WHEN i % 2 = 0 THEN '{ADA}' ELSE '{BOB}' END, NULL, '{{}}', NULL, \
         'c' || i || '@example.org', 'c' || i || '@example.org', 'email', {rd}, {sd}, \
         {r}, {nx} {from}",
        c = time(&created),
        rd = time(&response_due),
        sd = time(&resolution_due),
        r = time(&responded),
        nx = time(&next),
    );
    let counters = [
        format!("UPDATE counters SET value = {n} WHERE name = 'ticket'"),
        format!("UPDATE counters SET value = {n} WHERE name = 'message'"),
        format!(
            "UPDATE counters SET value = {} WHERE name = 'contact'",
            CUSTOMERS + 3
        ),
    ];
    let txn = store.begin().await?;
    for sql in [customers, staff, tickets].iter().chain(&counters) {
        txn.execute_unprepared(sql)
            .await
            .with_context(|| sql.chars().take(300).collect::<String>())?;
    }
    txn.commit().await?;
    store.conn().execute_unprepared("ANALYZE").await?;
    Ok(())
}

// ---------------------------------------------------------------- databases

fn postgres_admin_url() -> String {
    std::env::var("HELPDESK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// PostgreSQL's local socket, when the server has one.
const PG_SOCKET_DIR: &str = "/var/run/postgresql";

/// A SQLite file in the work folder, or a fresh PostgreSQL database.
struct BenchDb {
    url: String,
    pg: Option<String>,
}

impl BenchDb {
    async fn create(backend: Backend, dir: &Path) -> Result<BenchDb> {
        match backend {
            Backend::Sqlite => Ok(BenchDb {
                url: format!("sqlite://{}?mode=rwc", dir.join("helpdesk.db").display()),
                pg: None,
            }),
            Backend::Postgres => {
                // Unique per run: the pid, and a per-process random number
                // (std's hash seed) with a count for the runs of a process.
                static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let nonce = {
                    use std::hash::{BuildHasher, Hasher};
                    std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                        % 1_000_000
                };
                let name = format!(
                    "hd_sla_bench_{}_{nonce}_{}",
                    std::process::id(),
                    RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                admin_sql(&format!("CREATE DATABASE {name}")).await?;
                let socket = Path::new(PG_SOCKET_DIR).join(".s.PGSQL.5432");
                let admin = postgres_admin_url();
                let url = if std::env::var_os("HELPDESK_BENCH_PG_TCP").is_none()
                    && socket.exists()
                    && admin.contains("127.0.0.1:5432")
                {
                    eprintln!("postgres: the job connects over the Unix socket in {PG_SOCKET_DIR}");
                    format!("postgres://postgres@localhost/{name}?host={PG_SOCKET_DIR}")
                } else {
                    eprintln!("postgres: the job connects over TCP");
                    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                    format!("{base}/{name}")
                };
                Ok(BenchDb {
                    url,
                    pg: Some(name),
                })
            }
        }
    }

    async fn drop_db(&mut self) {
        if let Some(name) = self.pg.take()
            && let Err(e) = admin_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
        {
            eprintln!("sla bench: could not drop database {name}: {e:#}");
        }
    }
}

async fn admin_sql(sql: &str) -> Result<()> {
    let db = sea_orm::Database::connect(postgres_admin_url())
        .await
        .with_context(|| format!("PostgreSQL at {}", postgres_admin_url()))?;
    db.execute_unprepared(sql)
        .await
        .with_context(|| sql.to_string())?;
    let _ = db.close().await;
    Ok(())
}

// ---------------------------------------------------------------- memory and CPU

/// utime + stime of a process (`self` or a pid), in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU of the PostgreSQL backends serving database `db`, in clock ticks.
fn postgres_ticks(db: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd);
            (cmd.starts_with("postgres: ") && cmd.split_whitespace().any(|w| w == db))
                .then(|| cpu_ticks(&pid))?
        })
        .sum()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The one-minute load average: anything else running skews the figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
