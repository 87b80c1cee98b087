//! `--several`: several daemons on one PostgreSQL. The same backlog (the
//! standard mix, split evenly over the mailboxes) is ingested by one daemon
//! and by three, on one mailbox and on three, each scenario on a fresh
//! database and fresh mailboxes. The yardstick is the one-daemon run on the
//! same mailboxes in the same bench run; the figures are its shares.
//!
//! The timed part is the wall time from starting the first daemon to the
//! exit of the last (`run --once --no-send`; migrations are applied before).
//!
//! Output: `several.dD.mM.mails_per_sec`, `several.dD.mM.seconds`, and
//! `several.three_daemons_of_one.mM` (the three-daemon rate over the
//! one-daemon rate, on M mailboxes), and `several.dD.mM.conflicts` (batches
//! decided again after meeting another daemon's rows, from the logs).

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::{Cleanup, DOMAIN, Options, PASSWORD, Stack, generate, postgres_create, tail};

/// (daemons, mailboxes), each one-daemon run before its three-daemon run.
const SCENARIOS: [(usize, usize); 4] = [(1, 1), (3, 1), (1, 3), (3, 3)];

pub fn bench(o: &Options, stack: &Stack) -> Result<()> {
    let mut rates = std::collections::BTreeMap::new();
    for (daemons, mailboxes) in SCENARIOS {
        let (seconds, mails) = scenario(o, stack, daemons, mailboxes)
            .with_context(|| format!("{daemons} daemon(s) on {mailboxes} mailbox(es)"))?;
        let rate = mails as f64 / seconds;
        println!("several.d{daemons}.m{mailboxes}.seconds {seconds:.3}");
        println!("several.d{daemons}.m{mailboxes}.mails_per_sec {rate:.1}");
        eprintln!(
            "ingest bench: several: {daemons} daemon(s), {mailboxes} mailbox(es): {mails} mails in {seconds:.2}s = {rate:.0} mails/s"
        );
        rates.insert((daemons, mailboxes), rate);
    }
    for m in [1, 3] {
        let share = rates[&(3, m)] / rates[&(1, m)];
        println!("several.three_daemons_of_one.m{m} {share:.2}");
        eprintln!(
            "ingest bench: several: on {m} mailbox(es) three daemons run at {share:.2} of one daemon's rate ({:.0} vs {:.0} mails/s)",
            rates[&(3, m)],
            rates[&(1, m)]
        );
    }
    Ok(())
}

/// One scenario: (wall seconds, mails ingested).
fn scenario(o: &Options, stack: &Stack, daemons: usize, mailboxes: usize) -> Result<(f64, u64)> {
    let nonce = std::process::id();
    let work = tempfile::Builder::new()
        .prefix("helpdeskd-several-")
        .tempdir()
        .context("temp dir")?;
    let db = format!("hd_several_{nonce}_d{daemons}m{mailboxes}");
    let url = postgres_create(&db)?;
    // Dropped last: the database and work folder, then each user's mail.
    let mut cleanups = vec![Cleanup {
        home: work.path().join("no-home"),
        work: Some(work),
        pg: Some(db),
        keep: o.keep,
    }];
    let dir = cleanups[0]
        .work
        .as_ref()
        .map(|w| w.path().to_path_buf())
        .unwrap_or_default();
    std::fs::write(dir.join("imap-password"), PASSWORD)?;
    let per = o.mails.div_ceil(mailboxes);
    let mut sections = String::new();
    let mut total = 0u64;
    for k in 0..mailboxes {
        let user = format!("several{nonce}d{daemons}m{mailboxes}k{k}");
        stack.adduser(&user)?;
        let home = stack.dir.join("mail").join(&user);
        cleanups.push(Cleanup {
            home: home.clone(),
            work: None,
            pg: None,
            keep: o.keep,
        });
        let maildir = home.join("Maildir");
        for sub in ["", "cur", "new", "tmp"] {
            let d = maildir.join(sub);
            std::fs::create_dir_all(&d)?;
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            std::os::unix::fs::chown(&d, Some(super::MAIL_UID), Some(super::MAIL_GID))?;
        }
        let n = per.min(o.mails - k * per);
        let address = format!("{user}@{DOMAIN}");
        generate(n, o.seed + k as u64, &address, &maildir.join("new"))?;
        stack.index(&user, "INBOX")?;
        total += n as u64;
        sections.push_str(&format!(
            r#"
[[mailbox]]
name = "m{k}"
processed = "move"

[mailbox.imap]
host = "127.0.0.1"
port = {port}
tls = "none"
user = "{user}"
password_file = "imap-password"
"#,
            port = stack.imap_port
        ));
    }
    let config = dir.join("helpdesk.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "data"

[database]
url = "{url}"

[desk]
name = "ACME Service Desk"
address = "desk@{DOMAIN}"
tag = "ACME"

[ingest]
batch_size = {batch}

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"

[log]
level = "{level}"

[tickets]
ack_limit_per_hour = 10000
{sections}"#,
            batch = o.batch_size,
            smtp = stack.smtp_port,
            level = o.log_level,
        ),
    )?;
    let daemon = env!("CARGO_BIN_EXE_helpdeskd");
    super::run_checked(
        Command::new(daemon)
            .arg("--config")
            .arg(&config)
            .arg("migrate"),
    )?;
    super::run_checked(&mut Command::new("sync"))?;

    let started = Instant::now();
    let children = (0..daemons)
        .map(|_| {
            Command::new(daemon)
                .arg("--config")
                .arg(&config)
                .args(["run", "--once", "--no-send", "--json"])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("start helpdeskd")
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = children
        .into_iter()
        .map(|c| c.wait_with_output().context("wait for helpdeskd"))
        .collect::<Result<Vec<_>>>()?;
    let seconds = started.elapsed().as_secs_f64();
    let mut fetched = 0;
    let mut conflicts = 0;
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        conflicts += stderr
            .lines()
            .filter(|l| l.contains("another daemon wrote the same rows first"))
            .count();

        ensure!(
            out.status.success(),
            "a daemon failed ({}): {}",
            out.status,
            tail(&stderr, 4000)
        );
        let json: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("no JSON; stderr: {}", tail(&stderr, 4000)))?;
        let num = |k: &str| json.get(k).and_then(Value::as_u64).unwrap_or(0);
        ensure!(
            num("quarantined") == 0,
            "mails quarantined: {json}; stderr: {}",
            tail(&stderr, 4000)
        );
        fetched += num("stored") + num("duplicates");
    }
    ensure!(
        fetched == total,
        "{fetched} mails fetched by the daemons, {total} in the mailboxes"
    );
    println!("several.d{daemons}.m{mailboxes}.conflicts {conflicts}");
    drop(cleanups);
    Ok((seconds, total))
}
