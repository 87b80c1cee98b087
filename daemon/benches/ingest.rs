//! The ingest benchmark: a backlog of N generated customer mails in the desk's
//! Dovecot INBOX, one `helpdeskd run --once --no-send --json`, and the figures.
//!
//! ```text
//! cargo bench --bench ingest                                   # 10,000 mails, SQLite and PostgreSQL
//! cargo bench --bench ingest -- --backend sqlite --mails 100000   # the 100k backlog (same as --backlog 100000)
//! ```
//!
//! `--several` measures several daemons on one PostgreSQL instead (see
//! `ingest/several.rs`): `cargo bench --bench ingest -- --several`.
//!
//! Options: `--mails N` (or `--backlog N`), `--backend sqlite|postgres|both`,
//! `--seed S`, `--batch-size N` (`[ingest] batch_size`, default 500),
//! `--log-level L` (the daemon's `[log] level`, default `warn`), `--keep` (leave
//! the mail user and the database in place and print where they are),
//! `--prepare-only` (load and index the mailbox, write the configuration, print
//! the daemon command line and stop: for running the daemon under a profiler),
//! `--stored N` (the database holds N messages before the run, see
//! `ingest/prefill.rs`: compare its figures with a run without).
//! Without `--bench` (that is, not started by `cargo bench`: `cargo test
//! --benches` or by hand) the default is a 300-mail smoke run.
//!
//! The mix (deterministic for a seed): 90 % text bodies of 2–20 KB (half
//! text/plain, a quarter text/html quoted-printable, a quarter
//! multipart/alternative), 10 % multipart/mixed with a base64 attachment of up
//! to 200 KB, and 30 % replies (In-Reply-To and References naming the
//! Message-ID of an earlier mail of the run, "Re: " subject), from 500 customers
//! at example.test to the desk address.
//!
//! The mails are written straight into `Maildir/new` (LF line ends, Dovecot's
//! `,S=` and `,W=` sizes in the name, as Dovecot's own delivery does), and
//! Dovecot indexes them (`doveadm index`) before the daemon starts, so
//! neither counts. The timed part is the daemon's own `ingest_seconds` (from
//! the IMAP login to the last batch marked processed; migrations excluded).
//! Peak RSS is the daemon's `VmHWM`, polled from `/proc/PID/status` while it
//! runs. The run is verified (every mail stored, one ticket per non-reply,
//! every new ticket acknowledged, the INBOX empty and every mail in
//! `Processed`); a broken run fails the bench.
//!
//! Output on stdout, one figure a line, `ingest.BACKEND.NAME VALUE`: mails,
//! replies, attachments, new_tickets, bytes (as fetched over IMAP),
//! ingest_seconds, mails_per_sec, mb_per_sec, peak_rss_mb, peak_rss_kb,
//! wall_seconds (the whole process, migrations included), cpu_seconds and
//! cpu_user_seconds and cpu_us_per_mail (the daemon's), dovecot_cpu_seconds
//! (the desk user's `imap` processes), postgres_cpu_seconds (the bench
//! database's backends), loadavg_before (anything else running skews the
//! figures on a small machine), load_seconds and index_seconds (preparation,
//! not timed; index_seconds includes a `sync` of the written mails),
//! yardstick_mails_per_sec and yardstick_6k7_mails_per_sec (the database
//! alone writing the issue's three rows per mail, after the run: see
//! `ingest/yardstick.rs`; for the run's first 10,000 mails, and for them cut
//! to 6.7 KB) and of_yardstick (mails_per_sec over the first).
//! Units: MB = 10^6 bytes (throughput and RSS alike), seconds.
//! A summary with the issue's targets goes to stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::os::unix::fs::{OpenOptionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

#[path = "common/flags.rs"]
mod flags;
#[path = "ingest/prefill.rs"]
mod prefill;
#[path = "ingest/several.rs"]
mod several;
#[path = "ingest/yardstick.rs"]
mod yardstick;

use flags::Flags;

const DOMAIN: &str = "example.test";
const PASSWORD: &str = "secret";
const MAIL_UID: u32 = 8;
const MAIL_GID: u32 = 8;
const CUSTOMERS: u64 = 500;
const REPLY_PERCENT: u64 = 30;
const ATTACHMENT_PERCENT: u64 = 10;
const BODY_MIN: usize = 2 * 1024;
const BODY_MAX: usize = 20 * 1024;
const ATTACHMENT_MAX: usize = 200 * 1024;
const ATTACHMENT_MIN: usize = 2 * 1024;
/// Replies pick their parent among the last this-many mails half of the time
/// (often the same batch), otherwise anywhere earlier in the run.
const RECENT_WINDOW: u64 = 500;
/// The issue's targets, shown beside the figures.
const TARGET_SQLITE_MPS: f64 = 10_000.0;
const FLOOR_SQLITE_MPS: f64 = 5_000.0;
const TARGET_POSTGRES_MPS: f64 = 3_000.0;
const TARGET_RSS_MB: f64 = 100.0;
/// The issue's fact for the database yardstick with SQLite (see `yardstick`).
const ISSUE_SQLITE_YARDSTICK_MPS: f64 = 20_000.0;

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

#[derive(Debug)]
struct Options {
    mails: usize,
    backends: Vec<Backend>,
    seed: u64,
    batch_size: usize,
    log_level: String,
    keep: bool,
    prepare_only: bool,
    several: bool,
    /// Messages the database holds before the run (`--stored N`).
    stored: usize,
}

fn options() -> Result<Options> {
    let mut flags = Flags::from_env("ingest");
    let mut o = Options {
        mails: if flags.from_cargo_bench { 10_000 } else { 300 },
        backends: vec![Backend::Sqlite, Backend::Postgres],
        seed: 42,
        batch_size: 500,
        log_level: "warn".into(),
        keep: false,
        prepare_only: false,
        stored: 0,
        several: false,
    };
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--mails" | "--backlog" => {
                o.mails = flags
                    .value(&flag)?
                    .replace('_', "")
                    .parse()
                    .context("--mails N")?;
            }
            "--backend" => {
                o.backends = match flags.value(&flag)?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" | "postgresql" | "pg" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    other => bail!("--backend sqlite|postgres|both, not {other}"),
                }
            }
            "--seed" => o.seed = flags.value(&flag)?.parse().context("--seed N")?,
            "--batch-size" => {
                o.batch_size = flags.value(&flag)?.parse().context("--batch-size N")?
            }
            "--log-level" => o.log_level = flags.value(&flag)?,
            "--keep" => o.keep = true,
            "--several" => o.several = true,
            "--stored" => o.stored = flags.value(&flag)?.parse().context("--stored N")?,
            "--prepare-only" => {
                o.prepare_only = true;
                o.keep = true;
            }
            "-h" | "--help" => {
                eprintln!(
                    "cargo bench --bench ingest -- [--mails N | --backlog N] [--backend sqlite|postgres|both] \
                     [--seed S] [--batch-size N] [--log-level L] [--keep] [--prepare-only] [--several] \
                     [--stored N]"
                );
                std::process::exit(0);
            }
            f => bail!("unknown option {f} (try --help)"),
        }
    }
    ensure!(o.mails >= 1, "--mails must be at least 1");
    ensure!(o.batch_size >= 1, "--batch-size must be at least 1");
    Ok(o)
}

// ---------------------------------------------------------------- main

fn main() {
    if let Err(e) = real_main() {
        eprintln!("ingest bench FAILED: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let o = options()?;
    let stack = Stack::start()?;
    eprintln!(
        "ingest bench: {} mails, backends {:?}, seed {}, batch_size {}",
        o.mails,
        o.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        o.seed,
        o.batch_size
    );
    if o.several {
        return several::bench(&o, &stack);
    }
    let mut summary = Vec::new();
    for &backend in &o.backends {
        let r = bench_one(&o, &stack, backend)
            .with_context(|| format!("{} backend", backend.name()))?;
        if let Some(r) = r {
            summary.push(r);
        }
    }
    for r in &summary {
        let target = match r.backend {
            Backend::Sqlite => TARGET_SQLITE_MPS,
            Backend::Postgres => TARGET_POSTGRES_MPS,
        };
        let speed = if r.mails_per_sec >= target {
            format!("meets the {target:.0}/s target")
        } else if r.backend == Backend::Sqlite && r.mails_per_sec < FLOOR_SQLITE_MPS {
            format!(
                "MISSES the {target:.0}/s target and is BELOW the {FLOOR_SQLITE_MPS:.0}/s floor"
            )
        } else {
            format!("MISSES the {target:.0}/s target")
        };
        eprintln!(
            "ingest bench: {}: {} mails in {:.2}s = {:.0} mails/s ({speed}), \
             {:.1} MB/s, peak RSS {:.1} MB{}",
            r.backend.name(),
            r.mails,
            r.ingest_seconds,
            r.mails_per_sec,
            r.mb_per_sec,
            r.peak_rss_mb,
            if r.mails >= 100_000 {
                if r.peak_rss_mb < TARGET_RSS_MB {
                    " (meets the < 100 MB backlog target)"
                } else {
                    " (MISSES the < 100 MB backlog target)"
                }
            } else {
                ""
            }
        );
        eprintln!(
            "ingest bench: {}: the database alone (the issue's yardstick: a ticket, a message \
             with its raw bytes and an outbox row per mail, {} mails a commit, nothing parsed \
             or decided) takes {:.0} mails/s for these mails, so the daemon runs at {:.0}% of \
             it, and {:.0} mails/s for 6.7 KB mails{}",
            r.backend.name(),
            yardstick::MAILS_PER_COMMIT,
            r.yardstick,
            100.0 * r.mails_per_sec / r.yardstick,
            r.yardstick_6k7,
            match r.backend {
                Backend::Sqlite => format!(
                    " (the issue measured about {ISSUE_SQLITE_YARDSTICK_MPS:.0} on its machine)"
                ),
                Backend::Postgres => String::new(),
            }
        );
    }
    Ok(())
}

struct Summary {
    backend: Backend,
    mails: usize,
    ingest_seconds: f64,
    mails_per_sec: f64,
    mb_per_sec: f64,
    peak_rss_mb: f64,
    yardstick: f64,
    yardstick_6k7: f64,
}

/// Prints `ingest.BACKEND.NAME VALUE` at once (so a failed run still shows
/// what it measured up to then).
struct Figures {
    prefix: String,
}

impl Figures {
    fn put(&self, name: &str, value: impl std::fmt::Display) {
        println!("{}.{name} {value}", self.prefix);
        let _ = std::io::stdout().flush();
    }
}

fn bench_one(o: &Options, stack: &Stack, backend: Backend) -> Result<Option<Summary>> {
    let fig = Figures {
        prefix: format!("ingest.{}", backend.name()),
    };
    // Unique per run: the pid, and a per-process random number (std's hash seed).
    let nonce = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 1_000_000
    };
    let user = format!("bench{}{}x{nonce}", backend.name(), std::process::id());
    let address = format!("{user}@{DOMAIN}");
    let work = tempfile::Builder::new()
        .prefix("helpdeskd-bench-")
        .tempdir()
        .context("temp dir")?;
    let mut cleanup = Cleanup {
        home: stack.dir.join("mail").join(&user),
        work: Some(work),
        pg: None,
        keep: o.keep,
    };
    let work = cleanup
        .work
        .as_ref()
        .map(|w| w.path().to_path_buf())
        .unwrap_or_default();

    let estimate = o.mails as u64 * 26 * 1024;
    // The maildir holds every mail once, the database once more (raw bytes),
    // and the yardstick's databases up to 10,000 mails again.
    let yardstick_estimate = estimate.min(yardstick::MAX_MAILS as u64 * 26 * 1024) * 3 / 2;
    check_space(&stack.dir, estimate * 3 / 2)?;
    let stored_estimate = o.stored as u64 * 3 * 1024;
    check_space(
        &work,
        estimate * 3 / 2 + yardstick_estimate + stored_estimate,
    )?;

    stack.adduser(&user)?;
    let maildir = cleanup.home.join("Maildir");
    for sub in ["", "cur", "new", "tmp"] {
        let d = maildir.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        chown(&d, Some(MAIL_UID), Some(MAIL_GID))
            .with_context(|| format!("chown {}", d.display()))?;
    }

    // Load.
    let started = Instant::now();
    let load = generate(o.mails, o.seed, &address, &maildir.join("new"))?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "ingest bench: {}: wrote {} mails ({:.1} MB, {} replies, {} with attachment) in {load_seconds:.1}s",
        backend.name(),
        o.mails,
        load.bytes as f64 / 1e6,
        load.replies,
        load.attachments
    );

    // Index (UIDs, dovecot.index and its cache), so that the daemon's run does
    // not pay for Dovecot's first look. The files stay in new/, as after a
    // delivery: the daemon's SELECT moves them to cur/ (a few ms per 1,000).
    let started = Instant::now();
    stack.index(&user, "INBOX")?;
    let status = stack.mailbox_status(&user, &["INBOX"])?;
    // The mails just written are still dirty in the page cache: flushed now,
    // they do not compete with the timed run for the disk and the CPU.
    run_checked(&mut Command::new("sync"))?;
    let index_seconds = started.elapsed().as_secs_f64();
    ensure!(
        status.get("INBOX") == Some(&(o.mails as u64)),
        "Dovecot sees {status:?} after indexing, expected INBOX = {}",
        o.mails
    );

    // Database and configuration.
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", work.join("helpdesk.db").display()),
        Backend::Postgres => {
            let name = format!("hd_bench_{user}");
            let url = postgres_create(&name)?;
            cleanup.pg = Some(name);
            url
        }
    };
    std::fs::write(work.join("imap-password"), PASSWORD)?;
    let config = work.join("helpdesk.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "data"

[database]
url = "{db_url}"

[desk]
name = "ACME Service Desk"
address = "{address}"
tag = "ACME"

[ingest]
batch_size = {batch}

[[mailbox]]
name = "support"
processed = "move"

[mailbox.imap]
host = "127.0.0.1"
port = {imap_port}
tls = "none"
user = "{user}"
password_file = "imap-password"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"

[log]
level = "{level}"

# 500 customers write the backlog; every new ticket is acknowledged, as in
# the figures before the per-sender limit existed.
[tickets]
ack_limit_per_hour = 10000
"#,
            batch = o.batch_size,
            imap_port = stack.imap_port,
            smtp_port = stack.smtp_port,
            level = o.log_level,
        ),
    )?;
    let daemon = env!("CARGO_BIN_EXE_helpdeskd");
    let args = ["run", "--once", "--no-send", "--json"];
    if o.stored > 0 {
        let seconds = prefill::fill(daemon, &config, &db_url, o.stored)?;
        eprintln!(
            "ingest bench: {}: the database holds {} messages before the run (filled in {seconds:.0}s)",
            backend.name(),
            o.stored
        );
        fig.put("stored_before", o.stored);
        fig.put("fill_seconds", format!("{seconds:.1}"));
    }

    if o.prepare_only {
        eprintln!(
            "ingest bench: prepared {} mails for {user} ({} replies): run\n  {daemon} --config {} {}\n\
             and clean up with\n  rm -rf {} {}{}",
            o.mails,
            load.replies,
            config.display(),
            args.join(" "),
            cleanup.home.display(),
            work.display(),
            cleanup
                .pg
                .as_ref()
                .map(|n| format!(
                    "; psql -h 127.0.0.1 -U postgres -d test -c 'DROP DATABASE {n} WITH (FORCE)'"
                ))
                .unwrap_or_default()
        );
        println!("{}.config {}", fig.prefix, config.display());
        println!("{}.replies {}", fig.prefix, load.replies);
        return Ok(None);
    }

    // The timed run. The load average tells whether something else competed.
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let run = run_daemon(daemon, &config, &args, &cleanup.home, cleanup.pg.as_deref())?;
    let json: Value = serde_json::from_str(run.stdout.trim()).with_context(|| {
        format!(
            "helpdeskd printed no JSON (exit {}):\nstdout: {}\nstderr: {}",
            run.status,
            run.stdout,
            tail(&run.stderr, 4000)
        )
    })?;
    let num = |k: &str| -> Result<u64> {
        json.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("no {k} in {json}"))
    };
    let mails = num("mails")?;
    let stored = num("stored")?;
    let new_tickets = num("new_tickets")?;
    let acknowledged = num("acknowledged")?;
    let duplicates = num("duplicates")?;
    let quarantined = num("quarantined")?;
    let bytes = num("bytes")?;
    let ingest_seconds = json
        .get("ingest_seconds")
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("no ingest_seconds in {json}"))?;
    let errors = json
        .get("mailbox_errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let n = o.mails as u64;
    let mut problems = Vec::new();
    if !run.status.success() {
        problems.push(format!("helpdeskd exited with {}", run.status));
    }
    if !errors.is_empty() {
        problems.push(format!("mailbox_errors: {}", Value::Array(errors)));
    }
    for (what, got, want) in [
        ("mails", mails, n),
        ("stored", stored, n),
        ("new_tickets", new_tickets, n - load.replies),
        ("acknowledged", acknowledged, n - load.replies),
        ("duplicates", duplicates, 0),
        ("quarantined", quarantined, 0),
    ] {
        if got != want {
            problems.push(format!("{what} = {got}, expected {want}"));
        }
    }
    if problems.is_empty() {
        let after = stack.mailbox_status(&user, &["INBOX", "Processed"])?;
        if after.get("INBOX") != Some(&0) || after.get("Processed") != Some(&n) {
            problems.push(format!(
                "after the run Dovecot has {after:?}, expected INBOX = 0, Processed = {n}"
            ));
        }
    }
    ensure!(
        problems.is_empty(),
        "the run is broken, its figures would mean nothing:\n  {}\nJSON: {json}\nstderr (tail): {}",
        problems.join("\n  "),
        tail(&run.stderr, 4000)
    );
    ensure!(ingest_seconds > 0.0, "ingest_seconds is {ingest_seconds}");

    let mails_per_sec = mails as f64 / ingest_seconds;
    let mb_per_sec = bytes as f64 / 1e6 / ingest_seconds;
    let peak_rss_mb = run.peak_rss_kb as f64 * 1024.0 / 1e6;
    fig.put("mails", mails);
    fig.put("replies", load.replies);
    fig.put("attachments", load.attachments);
    fig.put("new_tickets", new_tickets);
    fig.put("bytes", bytes);
    fig.put("ingest_seconds", format!("{ingest_seconds:.3}"));
    fig.put("mails_per_sec", format!("{mails_per_sec:.1}"));
    fig.put("mb_per_sec", format!("{mb_per_sec:.1}"));
    fig.put("peak_rss_mb", format!("{peak_rss_mb:.1}"));
    fig.put("peak_rss_kb", run.peak_rss_kb);
    fig.put("wall_seconds", format!("{:.3}", run.wall.as_secs_f64()));
    fig.put("cpu_seconds", format!("{:.2}", run.cpu_seconds));
    fig.put("cpu_user_seconds", format!("{:.2}", run.cpu_user_seconds));
    fig.put(
        "cpu_us_per_mail",
        format!("{:.0}", run.cpu_seconds * 1e6 / mails as f64),
    );
    fig.put(
        "dovecot_cpu_seconds",
        format!("{:.2}", run.dovecot_cpu_seconds),
    );
    if backend == Backend::Postgres {
        fig.put(
            "postgres_cpu_seconds",
            format!("{:.2}", run.postgres_cpu_seconds),
        );
    }
    fig.put("loadavg_before", &loadavg);
    fig.put("load_seconds", format!("{load_seconds:.2}"));
    fig.put("index_seconds", format!("{index_seconds:.2}"));

    // The database yardstick, after the timed run so that it cannot disturb it.
    let files = mail_files(&cleanup.home.join("Maildir").join(".Processed"))?;
    let yardstick_url = |name: &str| match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", work.join(name).display()),
        Backend::Postgres => db_url.clone(),
    };
    let yardstick = yardstick::measure(
        &yardstick_url("yardstick.db"),
        &yardstick::Mails {
            files: files.clone(),
            size: None,
        },
    )
    .context("database yardstick")?;
    let yardstick_6k7 = yardstick::measure(
        &yardstick_url("yardstick-6k7.db"),
        &yardstick::Mails {
            files,
            size: Some(yardstick::ISSUE_MAIL_BYTES),
        },
    )
    .context("database yardstick, 6.7 KB mails")?;
    fig.put("yardstick_mails_per_sec", format!("{yardstick:.1}"));
    fig.put("yardstick_6k7_mails_per_sec", format!("{yardstick_6k7:.1}"));
    fig.put("of_yardstick", format!("{:.2}", mails_per_sec / yardstick));
    if o.keep {
        eprintln!(
            "ingest bench: kept user {user} ({}), work dir {}{}",
            cleanup.home.display(),
            work.display(),
            cleanup
                .pg
                .as_ref()
                .map(|n| format!(", database {n}"))
                .unwrap_or_default()
        );
    }
    drop(cleanup);
    Ok(Some(Summary {
        backend,
        mails: o.mails,
        ingest_seconds,
        mails_per_sec,
        mb_per_sec,
        peak_rss_mb,
        yardstick,
        yardstick_6k7,
    }))
}

/// The mail files of a maildir folder, in name order.
fn mail_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            files.push(entry?.path());
        }
    }
    files.sort();
    Ok(files)
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Deletes the user's mail, the work directory and the PostgreSQL database,
/// also when the bench fails half-way (unless `--keep`).
struct Cleanup {
    home: PathBuf,
    work: Option<tempfile::TempDir>,
    pg: Option<String>,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            if let Some(w) = self.work.take() {
                let _ = w.keep();
            }
            return;
        }
        if let Some(name) = self.pg.take()
            && let Err(e) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        {
            eprintln!("ingest bench: could not drop database {name}: {e:#}");
        }
        if self.home.exists()
            && let Err(e) = std::fs::remove_dir_all(&self.home)
        {
            eprintln!(
                "ingest bench: could not remove {}: {e}",
                self.home.display()
            );
        }
        drop(self.work.take());
    }
}

fn check_space(path: &Path, need: u64) -> Result<()> {
    let out = Command::new("df")
        .args(["-Pk"])
        .arg(path)
        .output()
        .context("run df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let avail_kb: u64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("cannot read df output for {}: {text}", path.display()))?;
    ensure!(
        avail_kb * 1024 > need,
        "{} has {:.1} GB free, the bench needs about {:.1} GB",
        path.display(),
        avail_kb as f64 * 1024.0 / 1e9,
        need as f64 / 1e9
    );
    Ok(())
}

// ---------------------------------------------------------------- the mail stack

struct Stack {
    script: PathBuf,
    dir: PathBuf,
    dovecot_conf: PathBuf,
    imap_port: u16,
    smtp_port: u16,
}

impl Stack {
    fn start() -> Result<Stack> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/mailstack/mailstack.sh");
        // `start` installs the packages itself when they are missing.
        run_checked(Command::new("bash").arg(&script).arg("start"))?;
        let env = run_checked(Command::new("bash").arg(&script).arg("env"))?;
        let vars: BTreeMap<&str, &str> = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k, v.trim_matches(['"', '\''])))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| anyhow!("mailstack.sh env prints no {k}"))
        };
        Ok(Stack {
            script,
            dir: PathBuf::from(get("HELPDESK_MAILSTACK_DIR")?),
            dovecot_conf: PathBuf::from(get("HELPDESK_MAILSTACK_DOVECOT_CONF")?),
            imap_port: get("HELPDESK_MAILSTACK_IMAP_PORT")?.parse()?,
            smtp_port: get("HELPDESK_MAILSTACK_SMTP_PORT")?.parse()?,
        })
    }

    fn adduser(&self, name: &str) -> Result<()> {
        run_checked(
            Command::new("bash")
                .arg(&self.script)
                .args(["adduser", name, PASSWORD]),
        )?;
        Ok(())
    }

    fn index(&self, user: &str, folder: &str) -> Result<()> {
        run_checked(
            Command::new("doveadm")
                .arg("-c")
                .arg(&self.dovecot_conf)
                .args(["index", "-u", user, folder]),
        )?;
        Ok(())
    }

    /// `messages` of each folder, as Dovecot sees it (this syncs the maildir).
    fn mailbox_status(&self, user: &str, folders: &[&str]) -> Result<BTreeMap<String, u64>> {
        let out = run_checked(
            Command::new("doveadm")
                .arg("-c")
                .arg(&self.dovecot_conf)
                .args(["-f", "flow", "mailbox", "status", "-u", user, "messages"])
                .args(folders),
        )?;
        // Lines like `INBOX messages=10000` (or `mailbox=INBOX messages=10000`).
        let mut found = BTreeMap::new();
        for line in out.lines() {
            let mut mailbox = None;
            let mut messages = None;
            for field in line.split_whitespace() {
                match field.split_once('=') {
                    Some(("mailbox", v)) => mailbox = Some(v.to_string()),
                    Some(("messages", v)) => messages = v.parse().ok(),
                    None if mailbox.is_none() => mailbox = Some(field.to_string()),
                    _ => {}
                }
            }
            if let (Some(m), Some(n)) = (mailbox, messages) {
                found.insert(m, n);
            }
        }
        ensure!(
            found.len() == folders.len(),
            "cannot read doveadm output: {out}"
        );
        Ok(found)
    }
}

fn run_checked(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------- PostgreSQL

fn postgres_admin_url() -> String {
    std::env::var("HELPDESK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn psql(sql: &str) -> Result<()> {
    run_checked(Command::new("psql").arg(postgres_admin_url()).args([
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        "-c",
        sql,
    ]))?;
    Ok(())
}

/// PostgreSQL's local socket, when the server has one.
const PG_SOCKET_DIR: &str = "/var/run/postgresql";

/// Creates a database and returns the daemon's URL for it: over the local
/// Unix socket when there is one (sqlx 0.9.0 does not set TCP_NODELAY, which
/// costs about 40 ms per large statement over TCP: launchbadge/sqlx#4335),
/// over TCP with `HELPDESK_BENCH_PG_TCP=1` or without a socket.
fn postgres_create(name: &str) -> Result<String> {
    psql(&format!("CREATE DATABASE {name}"))?;
    let socket = Path::new(PG_SOCKET_DIR).join(".s.PGSQL.5432");
    if std::env::var_os("HELPDESK_BENCH_PG_TCP").is_none() && socket.exists() {
        eprintln!("postgres: daemon connects over the Unix socket in {PG_SOCKET_DIR}");
        return Ok(format!(
            "postgres://postgres@localhost/{name}?host={PG_SOCKET_DIR}"
        ));
    }
    eprintln!("postgres: daemon connects over TCP");
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Ok(format!("{base}/{name}"))
}

// ---------------------------------------------------------------- running the daemon

struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    peak_rss_kb: u64,
    cpu_seconds: f64,
    cpu_user_seconds: f64,
    /// CPU of the Dovecot `imap` processes serving the desk user.
    dovecot_cpu_seconds: f64,
    /// CPU of the PostgreSQL backends connected to the bench database.
    postgres_cpu_seconds: f64,
    wall: Duration,
}

/// What else works for the run: Dovecot's `imap` processes of the desk user
/// (their working directory is the user's home) and the PostgreSQL backends
/// of the bench database (their process title names it).
struct Helpers {
    home: PathBuf,
    pg_db: Option<String>,
    /// pid → (is Dovecot, utime + stime in ticks).
    pids: BTreeMap<u32, (bool, u64)>,
}

impl Helpers {
    fn rescan(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if self.pids.contains_key(&pid) {
                continue;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let comm = comm.trim();
            let dovecot = comm == "imap"
                && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|d| d == self.home);
            let postgres = comm == "postgres"
                && self.pg_db.as_ref().is_some_and(|db| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&format!(" {db} ")))
                        .unwrap_or(false)
                });
            if dovecot || postgres {
                self.pids.insert(pid, (dovecot, 0));
            }
        }
    }

    fn sample(&mut self) {
        for (pid, (_, ticks)) in self.pids.iter_mut() {
            if let Some((u, s)) = cpu_ticks(*pid) {
                *ticks = (*ticks).max(u + s);
            }
        }
    }

    fn seconds(&self, dovecot: bool, per_sec: f64) -> f64 {
        self.pids
            .values()
            .filter(|(d, _)| *d == dovecot)
            .map(|(_, t)| *t as f64)
            .sum::<f64>()
            / per_sec
    }
}

/// utime and stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

fn run_daemon(
    daemon: &str,
    config: &Path,
    args: &[&str],
    home: &Path,
    pg_db: Option<&str>,
) -> Result<Run> {
    let ticks = clock_ticks();
    let mut helpers = Helpers {
        home: home.to_path_buf(),
        pg_db: pg_db.map(str::to_string),
        pids: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut child = Command::new(daemon)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {daemon}"))?;
    let pid = child.id();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().context("child stdout")?));
    let err = reader(Box::new(child.stderr.take().context("child stderr")?));
    let status_path = format!("/proc/{pid}/status");
    let mut peak_rss_kb = 0;
    let (mut utime, mut stime) = (0u64, 0u64);
    let mut last_scan: Option<Instant> = None;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_rss_kb = peak_rss_kb.max(kb);
        }
        if let Some((u, s)) = cpu_ticks(pid) {
            (utime, stime) = (u, s);
        }
        // A /proc scan costs more than the samples: a few times a second.
        if last_scan.is_none_or(|t| t.elapsed() > Duration::from_millis(250)) {
            helpers.rescan();
            last_scan = Some(Instant::now());
        }
        helpers.sample();
        if let Some(status) = child.try_wait().context("wait for helpdeskd")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    // The IMAP and PostgreSQL sessions end with the daemon: their last figures.
    helpers.rescan();
    helpers.sample();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Run {
        status,
        stdout,
        stderr,
        peak_rss_kb,
        cpu_seconds: (utime + stime) as f64 / ticks,
        cpu_user_seconds: utime as f64 / ticks,
        dovecot_cpu_seconds: helpers.seconds(true, ticks),
        postgres_cpu_seconds: helpers.seconds(false, ticks),
        wall,
    })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------- the mails

/// SplitMix64: small, fast and good enough for a deterministic mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elif", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Karin",
    "Liam", "Maja", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tara", "Umut", "Vera", "Wim", "Yusuf",
    "Zoë",
];
const LAST: &[&str] = &[
    "Müller",
    "Smith",
    "García",
    "Nowak",
    "Rossi",
    "Dubois",
    "Jansen",
    "Öztürk",
    "Novák",
    "Andersen",
    "Kowalski",
    "Brown",
    "Schäfer",
    "Lindqvist",
    "Moreau",
    "Costa",
];
const TOPICS: &[&str] = &[
    "Printer on the 3rd floor jams on every job",
    "Cannot log in to the VPN since this morning",
    "Outlook keeps asking for my password",
    "New laptop for the onboarding of a colleague",
    "Shared drive S: is not mapped any more",
    "Request: access to the finance SharePoint site",
    "Monitor flickers after the docking station update",
    "Teams calls drop after about five minutes",
    "Password reset for the ERP account",
    "Wi-Fi in meeting room Zürich is very slow",
    "Software request: Visio licence",
    "Phone extension does not ring",
    "Backup job failed on the file server",
    "Mail to external partners bounces",
    "Keyboard missing keys – Büro 2.14",
];
const WORDS: &[&str] = &[
    "the",
    "printer",
    "laptop",
    "screen",
    "since",
    "yesterday",
    "please",
    "could",
    "you",
    "check",
    "again",
    "error",
    "message",
    "shows",
    "when",
    "I",
    "try",
    "to",
    "open",
    "file",
    "network",
    "drive",
    "account",
    "locked",
    "after",
    "update",
    "restart",
    "did",
    "not",
    "help",
    "our",
    "team",
    "needs",
    "access",
    "before",
    "Friday",
    "meeting",
    "room",
    "café",
    "Grüße",
    "naïve",
    "approach",
    "the",
    "server",
    "was",
    "slow",
    "all",
    "morning",
    "and",
    "colleagues",
    "report",
    "same",
    "problem",
    "with",
    "their",
    "machines",
    "we",
    "already",
    "tried",
    "reinstalling",
    "driver",
    "version",
    "attached",
    "screenshot",
    "shows",
    "details",
    "thanks",
    "in",
    "advance",
    "for",
    "quick",
    "response",
    "ticket",
    "urgent",
    "deadline",
    "is",
    "tomorrow",
    "invoice",
    "€",
    "budget",
    "approved",
    "by",
    "manager",
    "Zürich",
    "office",
    "Köln",
    "branch",
    "VPN",
    "client",
    "certificate",
    "expired",
    "a",
    "of",
    "on",
    "it",
    "this",
    "that",
    "from",
    "some",
    "users",
    "cannot",
    "print",
    "any",
    "more",
    "works",
];
const ATTACHMENTS: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("application/zip", "zip"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
];
const AGENTS: &[&str] = &[
    "Mozilla Thunderbird 128.5.0",
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3776)",
    "Roundcube Webmail/1.6.9",
];

/// Text and base64 lines the mails are cut from: generated once, so the loop
/// that writes a 100,000-mail backlog only copies.
struct Pool {
    text: Vec<String>,
    base64: Vec<String>,
}

impl Pool {
    fn new(rng: &mut Rng) -> Pool {
        let mut text = Vec::with_capacity(8192);
        while text.len() < 8192 {
            if rng.percent(12) {
                text.push(String::new());
                continue;
            }
            let width = rng.range(50, 72);
            let mut line = String::new();
            loop {
                let w = WORDS[rng.below(WORDS.len() as u64) as usize];
                if !line.is_empty() && line.len() + 1 + w.len() > width {
                    break;
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(w);
            }
            text.push(line);
        }
        let mut base64 = Vec::with_capacity(4096);
        let mut raw = [0u8; 57];
        for _ in 0..4096 {
            for chunk in raw.chunks_mut(8) {
                let v = rng.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            base64.push(base64_encode(&raw));
        }
        Pool { text, base64 }
    }

    /// Lines from a random place until about `bytes`, each with `prefix`.
    fn text_into(&self, rng: &mut Rng, bytes: usize, prefix: &str, out: &mut String) {
        let mut at = rng.below(self.text.len() as u64) as usize;
        let end = out.len() + bytes;
        while out.len() < end {
            out.push_str(prefix);
            out.push_str(&self.text[at]);
            out.push('\n');
            at = (at + 1) % self.text.len();
        }
    }

    fn base64_into(&self, rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
        let mut at = rng.below(self.base64.len() as u64) as usize;
        for _ in 0..(bytes / 77).max(1) {
            out.extend_from_slice(self.base64[at].as_bytes());
            out.push(b'\n');
            at = (at + 1) % self.base64.len();
        }
    }
}

fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Quoted-printable with soft breaks at 76 columns (LF line ends).
fn quoted_printable(text: &str, out: &mut Vec<u8>) {
    for line in text.split_inclusive('\n') {
        let (line, nl) = match line.strip_suffix('\n') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let encode = b == b'=' || b >= 0x7f || (b < 0x20 && b != b'\t') || (last && b == b' ');
            let len = if encode { 3 } else { 1 };
            if col + len > 75 {
                out.extend_from_slice(b"=\n");
                col = 0;
            }
            if encode {
                let _ = write!(ByteWriter(out), "={b:02X}");
            } else {
                out.push(b);
            }
            col += len;
        }
        if nl {
            out.push(b'\n');
        }
    }
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

struct Load {
    bytes: u64,
    replies: u64,
    attachments: u64,
}

fn message_id(seed: u64, i: usize) -> String {
    format!("hdbench.{seed}.{i}@mail.{DOMAIN}")
}

fn customer_of(seed: u64, root: usize) -> u64 {
    mix(seed ^ (root as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)) % CUSTOMERS
}

fn subject_of(seed: u64, root: usize) -> String {
    let topic = TOPICS[(mix(seed.wrapping_add(root as u64)) % TOPICS.len() as u64) as usize];
    format!("{topic} (ref {root:06})")
}

fn customer(k: u64) -> (String, String) {
    let first = FIRST[(k % FIRST.len() as u64) as usize];
    let last = LAST[(k / FIRST.len() as u64 % LAST.len() as u64) as usize];
    (
        format!("{first} {last}"),
        format!("customer{k:03}@{DOMAIN}"),
    )
}

/// RFC 2047 for a display name that is not plain ASCII.
fn display_name(name: &str) -> String {
    if name.is_ascii() {
        format!("\"{name}\"")
    } else {
        let mut b = Vec::new();
        quoted_printable(name, &mut b);
        let q: String = String::from_utf8_lossy(&b).replace(' ', "_");
        format!("=?UTF-8?Q?{q}?=")
    }
}

/// Writes the run's mails into `new` (a maildir's `new/`), oldest first.
fn generate(n: usize, seed: u64, desk: &str, new: &Path) -> Result<Load> {
    let mut rng = Rng(seed);
    let pool = Pool::new(&mut rng);
    let mut roots: Vec<u32> = Vec::with_capacity(n);
    let mut load = Load {
        bytes: 0,
        replies: 0,
        attachments: 0,
    };
    let pid = std::process::id();
    // 2026-01-05 08:00:00 UTC, one mail every 13 s.
    let base_time: i64 = 1_767_600_000;
    let mut buf: Vec<u8> = Vec::with_capacity(512 * 1024);
    let mut text = String::with_capacity(64 * 1024);
    let mut name = String::with_capacity(128);
    for i in 0..n {
        buf.clear();
        let reply = i > 0 && rng.percent(REPLY_PERCENT);
        let parent = if !reply {
            i
        } else if rng.percent(50) {
            i - 1 - rng.below((i as u64).min(RECENT_WINDOW)) as usize
        } else {
            rng.below(i as u64) as usize
        };
        let root = if reply { roots[parent] as usize } else { i };
        roots.push(root as u32);
        let who = if !reply || rng.percent(80) {
            customer_of(seed, root)
        } else {
            rng.below(CUSTOMERS)
        };
        let (cname, cmail) = customer(who);
        let date = chrono::DateTime::from_timestamp(base_time + 13 * i as i64, 0)
            .context("date")?
            .to_rfc2822();
        let subject = if reply {
            format!("Re: {}", subject_of(seed, root))
        } else {
            subject_of(seed, root)
        };
        let from = if rng.percent(20) {
            cmail.clone()
        } else {
            format!("{} <{cmail}>", display_name(&cname))
        };
        let _ = write!(
            ByteWriter(&mut buf),
            "Return-Path: <{cmail}>\n\
             Delivered-To: {desk}\n\
             Received: from mail.{DOMAIN} (mail.{DOMAIN} [192.0.2.{ip}])\n\
             \tby mx.{DOMAIN} (Postfix) with ESMTPS id {qid:010X}\n\
             \tfor <{desk}>; {date}\n\
             Date: {date}\n\
             From: {from}\n\
             To: ACME Service Desk <{desk}>\n\
             Subject: {subject}\n\
             Message-ID: <{mid}>\n",
            ip = 1 + who % 250,
            qid = rng.next() >> 24,
            mid = message_id(seed, i),
        );
        if reply {
            let _ = write!(
                ByteWriter(&mut buf),
                "In-Reply-To: <{}>\nReferences: ",
                message_id(seed, parent)
            );
            if root != parent {
                let _ = write!(ByteWriter(&mut buf), "<{}>\n ", message_id(seed, root));
            }
            let _ = writeln!(ByteWriter(&mut buf), "<{}>", message_id(seed, parent));
        }
        let _ = write!(
            ByteWriter(&mut buf),
            "MIME-Version: 1.0\nUser-Agent: {}\n",
            AGENTS[(who % AGENTS.len() as u64) as usize]
        );

        let body_bytes = rng.range(BODY_MIN, BODY_MAX);
        text.clear();
        let (first, _) = cname.split_once(' ').unwrap_or((&cname, ""));
        let _ = write!(text, "Hello,\n\n");
        if reply {
            pool.text_into(&mut rng, body_bytes / 3, "", &mut text);
            name.clear();
            let _ = write!(name, "\nOn {date}, ACME Service Desk wrote:\n");
            text.push_str(&name);
            let rest = body_bytes.saturating_sub(text.len());
            pool.text_into(&mut rng, rest, "> ", &mut text);
        } else {
            let rest = body_bytes.saturating_sub(20);
            pool.text_into(&mut rng, rest, "", &mut text);
        }
        let _ = write!(text, "\nBest regards,\n{first}\n");

        if rng.percent(ATTACHMENT_PERCENT) {
            load.attachments += 1;
            let boundary = format!("----=_Part_{i}_{:08x}", rng.next() as u32);
            let (ctype, ext) = ATTACHMENTS[rng.below(ATTACHMENTS.len() as u64) as usize];
            let size = rng.range(ATTACHMENT_MIN, ATTACHMENT_MAX);
            let _ = write!(
                ByteWriter(&mut buf),
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n\
                 This is a multi-part message in MIME format.\n\
                 --{boundary}\n\
                 Content-Type: text/plain; charset=UTF-8\n\
                 Content-Transfer-Encoding: 8bit\n\n"
            );
            buf.extend_from_slice(text.as_bytes());
            let _ = write!(
                ByteWriter(&mut buf),
                "\n--{boundary}\n\
                 Content-Type: {ctype}; name=\"attachment-{i}.{ext}\"\n\
                 Content-Disposition: attachment; filename=\"attachment-{i}.{ext}\"\n\
                 Content-Transfer-Encoding: base64\n\n"
            );
            pool.base64_into(&mut rng, size, &mut buf);
            let _ = write!(ByteWriter(&mut buf), "\n--{boundary}--\n");
        } else {
            match rng.below(4) {
                0 | 1 => {
                    buf.extend_from_slice(
                        b"Content-Type: text/plain; charset=UTF-8; format=flowed\n\
                          Content-Transfer-Encoding: 8bit\n\n",
                    );
                    buf.extend_from_slice(text.as_bytes());
                }
                2 => {
                    buf.extend_from_slice(
                        b"Content-Type: text/html; charset=UTF-8\n\
                          Content-Transfer-Encoding: quoted-printable\n\n",
                    );
                    quoted_printable(&html(&text), &mut buf);
                }
                _ => {
                    let boundary = format!("b1_{i}_{:08x}", rng.next() as u32);
                    // Both parts carry the text: cut it so the mail stays in range.
                    let half = text.len() / 2;
                    let mut cut = half;
                    while !text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    let part = &text[..text[..cut].rfind('\n').map(|p| p + 1).unwrap_or(cut)];
                    let _ = write!(
                        ByteWriter(&mut buf),
                        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\n\n\
                         --{boundary}\n\
                         Content-Type: text/plain; charset=UTF-8\n\
                         Content-Transfer-Encoding: 8bit\n\n"
                    );
                    buf.extend_from_slice(part.as_bytes());
                    let _ = write!(
                        ByteWriter(&mut buf),
                        "\n--{boundary}\n\
                         Content-Type: text/html; charset=UTF-8\n\
                         Content-Transfer-Encoding: quoted-printable\n\n"
                    );
                    quoted_printable(&html(part), &mut buf);
                    let _ = write!(ByteWriter(&mut buf), "\n--{boundary}--\n");
                }
            }
        }
        if reply {
            load.replies += 1;
        }

        // Dovecot's maildir names: time.Musec P pid Q n .host, ,S= physical and
        // ,W= virtual (CRLF) size. One second per mail keeps Dovecot's
        // time-sorted UID assignment in generation order.
        let size = buf.len();
        let vsize = size + buf.iter().filter(|&&b| b == b'\n').count();
        let file = new.join(format!(
            "{}.M{}P{pid}Q{i}.helpdeskd-bench,S={size},W={vsize}",
            1_700_000_000 + i as u64,
            i % 1_000_000
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("create {}", file.display()))?;
        f.write_all(&buf)
            .with_context(|| format!("write {}", file.display()))?;
        drop(f);
        chown(&file, Some(MAIL_UID), Some(MAIL_GID))
            .with_context(|| format!("chown {}", file.display()))?;
        load.bytes += size as u64;
    }
    Ok(load)
}

fn html(text: &str) -> String {
    let mut h = String::with_capacity(text.len() + text.len() / 4 + 256);
    h.push_str(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">\n\
         </head>\n<body style=\"font-family: Calibri, sans-serif; font-size: 11pt\">\n<p>",
    );
    for line in text.lines() {
        if line.is_empty() {
            h.push_str("</p>\n<p>");
        } else if let Some(q) = line.strip_prefix("> ") {
            h.push_str("<span class=\"quote\">");
            h.push_str(q);
            h.push_str("</span><br>\n");
        } else {
            h.push_str(line);
            h.push_str("<br>\n");
        }
    }
    h.push_str("</p>\n</body>\n</html>\n");
    h
}
