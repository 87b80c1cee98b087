//! Several daemons on one PostgreSQL, one of them killed with SIGKILL and
//! started again every few seconds while mail flows: every mail is stored
//! once on the right ticket, every mail the desk sends arrives (a second
//! copy only for a kill between the server's 250 and its record), every
//! plugin event is handled once, each report slot is mailed once, and no
//! daemon exits on its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};

use crate::harness::*;
use crate::plugins::{install, plugin_dir};

const CUSTOMERS: usize = 20;
const REQUESTS: usize = 400;
const REPLIES: usize = 200;
/// Every fourth request names the VPN, which keyword-router routes to Ada.
const VPN_EVERY: usize = 4;
const KILL_EVERY: Duration = Duration::from_secs(10);
/// The outbox claims 2 rows per mail in flight, one mail at a time by
/// default: a kill can leave at most that many sent but unrecorded.
const UNRECORDED_PER_KILL: usize = 2;

async fn sql_rows(url: &str, sql: &str) -> Vec<sea_orm::QueryResult> {
    let db = sea_orm::Database::connect(url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = db.close().await;
    rows
}

async fn sql_count(url: &str, sql: &str) -> i64 {
    let rows = sql_rows(url, sql).await;
    rows.first()
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or_else(|| panic!("{sql}: no n"))
}

/// Message-ID → copies, over the INBOXes of `users`.
async fn delivered(users: &[String]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for u in users {
        for m in messages(u, "INBOX").await {
            if let Some(id) = header(&m, "Message-ID") {
                *seen.entry(id.trim().to_string()).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn sigterm(d: &Daemon) {
    let _ = Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_with_one_killed_every_ten_seconds_lose_and_repeat_nothing() {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let boss = unique("boss");
    let boss_addr = add_user(&boss);
    let customers: Vec<(String, String)> = (0..CUSTOMERS)
        .map(|i| {
            let u = unique(&format!("c{i}x"));
            let a = add_user(&u);
            (u, a)
        })
        .collect();
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"
groups = ["network"]

[tickets]
ack_limit_per_hour = 10000

[report]
recipients = ["{boss_addr}"]
schedule = "* * * * *"
period_days = 1

[plugins]
dir = "plugins"
timeout_secs = 5
retries = 2

[plugins.config.keyword-router]
[[plugins.config.keyword-router.rule]]
name = "network"
keywords = ["vpn"]
kind = "incident"
priority = "high"
assignee = "{ada_addr}"
"#
    );
    let desk = Desk::with(
        Backend::Postgres,
        DeskOptions {
            extra_config: extra,
            batch_size: 40,
            poll_interval_secs: 1,
            ..DeskOptions::default()
        },
    )
    .await;
    install(&plugin_dir(desk.dir.path()), &["keyword-router"]);
    let url = desk.db.url.clone();
    // The schema exists before the first query below, however slowly the
    // daemons start.
    desk.cli(&["migrate"]);

    let request = |i: usize| {
        let (_, from) = &customers[i % CUSTOMERS];
        let text = if i.is_multiple_of(VPN_EVERY) {
            "The VPN drops every five minutes."
        } else {
            "Please help with my account."
        };
        mail(
            from,
            &desk.address,
            &format!("Request {i}"),
            &format!("req{i}.{}@example.test", desk.user),
            "",
            text,
        )
    };
    let reply = |i: usize| {
        let (_, from) = &customers[i % CUSTOMERS];
        let id = format!("req{i}.{}@example.test", desk.user);
        mail(
            from,
            &desk.address,
            &format!("Re: Request {i}"),
            &format!("re{i}.{}@example.test", desk.user),
            &format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"),
            "Any news?",
        )
    };
    // Six waves of 100 mails: the requests first, then replies to half of them.
    let waves: Vec<Vec<String>> = (0..6)
        .map(|w| {
            (w * 100..(w + 1) * 100)
                .map(|k| {
                    if k < REQUESTS {
                        request(k)
                    } else {
                        reply(k - REQUESTS)
                    }
                })
                .collect()
        })
        .collect();

    let mut daemons: Vec<Daemon> = (0..3).map(|_| desk.spawn()).collect();
    let start = Instant::now();
    let mut next_kill = start + KILL_EVERY;
    let mut next_wave = start;
    let mut waves = waves.into_iter();
    let mut kills = 0usize;
    let mut settled_since: Option<Instant> = None;
    let mut report_slots_at_settle = 0;
    loop {
        for (i, d) in daemons.iter_mut().enumerate() {
            if let Ok(Some(status)) = d.try_wait() {
                panic!(
                    "daemon {i} exited by itself ({status}) after {:?}:\n{}",
                    start.elapsed(),
                    desk.daemon_log()
                );
            }
        }
        let now = Instant::now();
        if now >= next_wave
            && let Some(wave) = waves.next()
        {
            append_all(&desk.user, "INBOX", &wave).await;
            next_wave = now + Duration::from_secs(4);
        }
        if now >= next_kill {
            let k = kills % daemons.len();
            let _ = daemons[k].kill();
            let _ = daemons[k].wait();
            daemons[k] = desk.spawn();
            kills += 1;
            next_kill = now + KILL_EVERY;
        }
        // Settled: every mail stored, no mail waiting to be sent, no event
        // pending; then one more report slot so a slot is run while the
        // daemons are being killed.
        let stored = sql_count(
            &url,
            "SELECT COUNT(*) AS n FROM messages WHERE direction = 'in'",
        )
        .await;
        let unsent = sql_count(
            &url,
            "SELECT COUNT(*) AS n FROM outbox WHERE status <> 'sent'",
        )
        .await;
        let unhandled = sql_count(
            &url,
            "SELECT COUNT(*) AS n FROM events WHERE status <> 'done'",
        )
        .await;
        let slots = sql_count(
            &url,
            "SELECT COUNT(*) AS n FROM job_runs WHERE job = 'report' AND status = 'ok'",
        )
        .await;
        let settled = stored as usize == REQUESTS + REPLIES && unsent == 0 && unhandled == 0;
        match (settled, settled_since) {
            (true, None) => {
                settled_since = Some(Instant::now());
                report_slots_at_settle = slots;
            }
            (true, Some(_)) if slots > report_slots_at_settle && kills >= 4 => break,
            (false, _) => settled_since = None,
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "not settled after 300 s: {stored} stored, {unsent} unsent, {unhandled} events pending, \
             {slots} report slots\n{}",
            desk.daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for d in &daemons {
        sigterm(d);
    }
    for (i, d) in daemons.iter_mut().enumerate() {
        let status = d.wait().expect("wait");
        assert!(
            status.success(),
            "daemon {i} did not stop cleanly: {status}"
        );
    }
    eprintln!("{kills} kills in {:?}", start.elapsed());

    // Every mail stored once, on its own ticket.
    assert_eq!(
        sql_count(
            &url,
            "SELECT COUNT(DISTINCT dedup_key) AS n FROM messages WHERE direction = 'in'"
        )
        .await as usize,
        REQUESTS + REPLIES
    );
    assert_eq!(desk.tickets().len(), REQUESTS, "one ticket per request");
    assert_eq!(
        sql_count(
            &url,
            "SELECT COUNT(*) AS n FROM messages m JOIN tickets t ON m.ticket_id = t.id \
             WHERE m.direction = 'in' AND m.subject <> t.subject AND m.subject <> 'Re: ' || t.subject"
        )
        .await,
        0,
        "every reply on its request's ticket"
    );
    assert_eq!(
        sql_count(&url, "SELECT COUNT(*) AS n FROM quarantine").await,
        0,
        "nothing quarantined"
    );

    // No mail twice in Processed, none left behind.
    let processed = messages(&desk.user, "Processed").await;
    let ids: Vec<String> = processed
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), REQUESTS + REPLIES, "Processed holds each mail");
    assert_eq!(distinct.len(), ids.len(), "no mail twice in Processed");
    assert!(messages(&desk.user, "INBOX").await.is_empty());

    // Every plugin event handled once: one routing note per VPN ticket.
    let vpn = REQUESTS.div_ceil(VPN_EVERY) as i64;
    let notes = sql_rows(
        &url,
        "SELECT ticket_id, COUNT(*) AS n FROM messages \
         WHERE visibility = 'internal' AND body_text LIKE '%keyword-router: network matched%' \
         GROUP BY ticket_id",
    )
    .await;
    assert_eq!(notes.len() as i64, vpn, "each VPN ticket routed");
    for r in &notes {
        let n: i64 = r.try_get("", "n").expect("n");
        assert_eq!(n, 1, "a routing note twice: the event was handled twice");
    }

    // Every mail the desk sent arrived; a second copy only for a kill.
    let outbox = sql_rows(&url, "SELECT message_id, kind FROM outbox").await;
    let mut users: Vec<String> = customers.iter().map(|(u, _)| u.clone()).collect();
    users.push(ada.clone());
    users.push(boss.clone());
    let mut copies = delivered(&users).await;
    for _ in 0..40 {
        let missing = outbox
            .iter()
            .filter(|r| {
                let id: String = r.try_get("", "message_id").unwrap_or_default();
                !copies.contains_key(&format!("<{}>", id.trim_matches(['<', '>'])))
            })
            .count();
        if missing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        copies = delivered(&users).await;
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut repeated = 0;
    for r in &outbox {
        let id: String = r.try_get("", "message_id").expect("message_id");
        let kind: String = r.try_get("", "kind").expect("kind");
        let n = copies
            .get(&format!("<{}>", id.trim_matches(['<', '>'])))
            .copied()
            .unwrap_or(0);
        assert!(n >= 1, "{kind} {id} never arrived");
        repeated += n - 1;
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!("sent {kinds:?}; {repeated} second copies after {kills} kills");
    assert!(
        repeated <= kills * UNRECORDED_PER_KILL,
        "{repeated} second copies for {kills} kills"
    );
    assert_eq!(
        kinds.get("acknowledgement").copied().unwrap_or(0),
        REQUESTS,
        "one acknowledgement per request: {kinds:?}"
    );

    // Each report slot ran once and was mailed once.
    let runs = sql_rows(
        &url,
        "SELECT slot, status FROM job_runs WHERE job = 'report' ORDER BY slot",
    )
    .await;
    let ok = runs
        .iter()
        .filter(|r| r.try_get::<String>("", "status").is_ok_and(|s| s == "ok"))
        .count();
    assert!(ok >= 1, "a report slot came and ran");
    let report_ids: Vec<String> = outbox
        .iter()
        .filter(|r| r.try_get::<String>("", "kind").is_ok_and(|k| k == "report"))
        .filter_map(|r| r.try_get::<String>("", "message_id").ok())
        .collect();
    let slots: HashSet<&str> = report_ids
        .iter()
        .filter_map(|id| id.trim_matches('<').split('.').nth(1))
        .collect();
    assert_eq!(
        slots.len(),
        report_ids.len(),
        "one report per slot: {report_ids:?}"
    );
    // A run killed before it recorded itself may have queued its report.
    assert!(
        ok <= report_ids.len() && report_ids.len() <= runs.len(),
        "{ok} runs recorded, {} in all, {} reports queued",
        runs.len(),
        report_ids.len()
    );
    desk.finish().await;
}

/// `helpdeskd --config CONFIG ARGS`.
fn helpdeskd(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_helpdeskd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run helpdeskd")
}

/// A second host of the desk: the same configuration with its own data
/// folder, so its own token secret.
fn second_host(desk: &Desk, data: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&desk.config).expect("config");
    let text = text.replace("data_dir = \"data\"", &format!("data_dir = \"{data}\""));
    assert!(text.contains(data), "the harness's data_dir line changed");
    let path = desk.dir.path().join(format!("{data}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn a_daemon_with_another_token_secret_is_refused_until_it_has_the_desks() {
    let desk = Desk::new(Backend::Postgres).await;
    desk.run_once();
    let other = second_host(&desk, "data2");
    let out = helpdeskd(&other, &["run", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with another secret");
    assert!(
        err.contains("desk.token_secret_file")
            && err.contains("data2/token.key")
            && err.contains("differs from the one the desk's other daemons")
            && err.contains("data/token.key"),
        "{err}"
    );
    let check = helpdeskd(&other, &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("token secret") && l.contains("differs")),
        "{text}"
    );

    // With a copy of the desk's file it starts.
    std::fs::copy(
        desk.dir.path().join("data/token.key"),
        desk.dir.path().join("data2/token.key"),
    )
    .expect("copy the secret");
    let out = helpdeskd(&other, &["run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = helpdeskd(&other, &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("ok")
            && l.contains("token secret")
            && l.contains("is the desk's")),
        "{text}"
    );

    // A deliberate change: one host adopts a new secret, the others are
    // refused until they copy it.
    let third = second_host(&desk, "data3");
    let out = helpdeskd(&third, &["token-secret", "adopt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(helpdeskd(&third, &["run", "--once"]).status.success());
    let out = desk.cli_output(&["run", "--once"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("data3/token.key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    desk.finish().await;
}

/// Three daemons started together on three mailboxes take one each, so the
/// backlog is shared; the same mail sent to two of the desk's addresses and
/// a new customer writing to all three (rows two daemons write at once) are
/// stored once, with no failed batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_take_a_mailbox_each_and_share_what_they_meet() {
    let second = unique("desk2");
    let third = unique("desk3");
    let (second_addr, third_addr) = (add_user(&second), add_user(&third));
    let mailbox = |name: &str, user: &str| {
        format!(
            r#"
[[mailbox]]
name = "{name}"
folder = "INBOX"
processed = "move"
poll_interval_secs = 2

[mailbox.imap]
host = "127.0.0.1"
port = {IMAP_PORT}
tls = "none"
user = "{user}"
password_file = "imap-password"
timeout_secs = 10
"#
        )
    };
    let desk = Desk::with(
        Backend::Postgres,
        DeskOptions {
            batch_size: 20,
            extra_config: format!(
                "[tickets]\nack_limit_per_hour = 10000\n{}{}",
                mailbox("second", &second),
                mailbox("third", &third)
            ),
            ..DeskOptions::default()
        },
    )
    .await;
    desk.cli(&["migrate"]);
    let users = [desk.user.clone(), second.clone(), third.clone()];
    let addrs = [desk.address.clone(), second_addr, third_addr];
    for (k, (user, addr)) in users.iter().zip(&addrs).enumerate() {
        let mut mails: Vec<String> = (0..100)
            .map(|i| {
                mail(
                    &format!("c{}.{k}@example.test", i % 10),
                    addr,
                    &format!("Mailbox {k} request {i}"),
                    &format!("m{k}r{i}.{}@example.test", desk.user),
                    "",
                    "help",
                )
            })
            .collect();
        // One mail sent to all three desk addresses, and a new customer
        // writing to each mailbox.
        mails.insert(
            50,
            mail(
                "everywhere@example.test",
                &addrs.join(", "),
                "To every desk address",
                &format!("everywhere.{}@example.test", desk.user),
                "",
                "help",
            ),
        );
        mails.insert(
            10,
            mail(
                "newcomer@example.test",
                addr,
                &format!("Newcomer to mailbox {k}"),
                &format!("new{k}.{}@example.test", desk.user),
                "",
                "hello",
            ),
        );
        append_all(user, "INBOX", &mails).await;
    }
    let children: Vec<_> = (0..3)
        .map(|_| {
            desk.command()
                .args(["run", "--once", "--no-send", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn helpdeskd run --once")
        })
        .collect();
    let mut each = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "a daemon failed: {err}");
        assert!(!err.contains("batch not stored"), "a batch failed: {err}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("run --once --json");
        each.push((
            report["stored"].as_u64().unwrap_or(0) + report["duplicates"].as_u64().unwrap_or(0),
            err,
        ));
    }
    for (fetched, err) in &each {
        assert_eq!(
            *fetched, 102,
            "each daemon took one mailbox: {each:?}\n{err}"
        );
    }
    let again: usize = each
        .iter()
        .map(|(_, e)| e.matches("deciding the batch again").count())
        .sum();
    eprintln!("{again} batch(es) decided again after meeting another daemon's rows");
    let tickets = desk.tickets();
    assert_eq!(tickets.len(), 3 * 101 + 1, "one ticket per request");
    assert_eq!(
        sql_count(
            &desk.db.url,
            "SELECT COUNT(*) AS n FROM contacts WHERE email = 'newcomer@example.test'"
        )
        .await,
        1
    );
    assert_eq!(
        sql_count(&desk.db.url, "SELECT COUNT(*) AS n FROM quarantine").await,
        0
    );
    desk.finish().await;
}

/// Two daemons storing the same mails at the same moment (the same mail in
/// two mailboxes, fetched by two daemons at once): the second meets the
/// first's unique keys, decides its batch again, and finds the mails
/// stored: duplicates, not a failed batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_stored_by_two_daemons_at_once_is_stored_once() {
    use helpdeskd::ingest::apply::{Outcome, apply_batch};
    let desk = Desk::new(Backend::Postgres).await;
    desk.cli(&["migrate"]);
    let config = helpdeskd::config::Config::load(&desk.config).expect("config");
    let settings = helpdeskd::app::settings(&config).expect("settings");
    let (a, b) = (
        helpdeskd::store::Store::connect(&desk.db.url, 2)
            .await
            .expect("a"),
        helpdeskd::store::Store::connect(&desk.db.url, 2)
            .await
            .expect("b"),
    );
    for round in 0..5 {
        let raws: Vec<(Option<u32>, Vec<u8>)> = (0..20)
            .map(|i| {
                let m = mail(
                    &format!("round{round}.c{i}@example.test"),
                    &desk.address,
                    &format!("Round {round} request {i}"),
                    &format!("r{round}i{i}.{}@example.test", desk.user),
                    "",
                    "help",
                );
                (None, m.into_bytes())
            })
            .collect();
        let batch = || helpdeskd::ingest::parse_batch("support".into(), raws.clone(), 1 << 24);
        let (one, two) = (batch().await.expect("parse"), batch().await.expect("parse"));
        let now = helpdeskd::clock::Clock::now(&helpdeskd::clock::SystemClock);
        let (x, y) = tokio::join!(
            apply_batch(&a, &settings, one, None, now),
            apply_batch(&b, &settings, two, None, now)
        );
        let (x, y) = (x.expect("first daemon"), y.expect("second daemon"));
        let stored = |o: &[Outcome]| {
            o.iter()
                .filter(|o| matches!(o, Outcome::Stored { .. }))
                .count()
        };
        let duplicates = |o: &[Outcome]| o.iter().filter(|o| **o == Outcome::Duplicate).count();
        assert_eq!(stored(&x) + stored(&y), 20, "round {round}: {x:?} {y:?}");
        assert_eq!(duplicates(&x) + duplicates(&y), 20, "round {round}");
    }
    assert_eq!(desk.tickets().len(), 100);
    desk.finish().await;
}

/// A SIGTERM while the daemon is still starting (here: waiting for another
/// daemon's migration, whose lock this test holds) stops it cleanly, exit
/// 0, instead of killing it by the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_while_it_starts_exits_cleanly() {
    let desk = Desk::new(Backend::Postgres).await;
    let lock = sea_orm::Database::connect(&desk.db.url).await.expect("db");
    lock.execute_unprepared(&format!(
        "SELECT pg_advisory_lock({})",
        helpdeskd::store::MIGRATION_LOCK
    ))
    .await
    .expect("take the migration lock");
    let mut d = desk.spawn();
    // It is waiting for the lock, not running: no poller has started.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        d.try_wait().expect("try_wait").is_none(),
        "{}",
        desk.daemon_log()
    );
    assert!(
        !desk.daemon_log().contains("helpdeskd running"),
        "{}",
        desk.daemon_log()
    );
    sigterm(&d);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = d.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM:\n{}",
            desk.daemon_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}:\n{}", desk.daemon_log());
    assert!(
        desk.daemon_log().contains("stopped while starting"),
        "{}",
        desk.daemon_log()
    );
    let _ = lock.close().await;
    desk.finish().await;
}

/// On PostgreSQL a batch takes its ids from ranges reserved before its
/// transaction (so batches of several daemons do not queue on the counter
/// rows). One daemon still leaves no gap: what a batch did not use goes
/// back. A mail that needs more ids than the first guess (a customer with
/// thirty colleagues in Cc) has its batch decided again with more, and the
/// counters end at the highest id each table holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_ids_leave_no_gap_and_a_batch_that_needs_more_gets_them() {
    use helpdeskd::ingest::apply::{Outcome, apply_batch};
    let desk = Desk::new(Backend::Postgres).await;
    desk.cli(&["migrate"]);
    let config = helpdeskd::config::Config::load(&desk.config).expect("config");
    let settings = helpdeskd::app::settings(&config).expect("settings");
    let store = helpdeskd::store::Store::connect(&desk.db.url, 2)
        .await
        .expect("store");
    let cc: Vec<String> = (0..30)
        .map(|i| format!("colleague{i}@example.test"))
        .collect();
    let batches: Vec<Vec<String>> = vec![
        (0..3)
            .map(|i| {
                mail(
                    &format!("first{i}@example.test"),
                    &desk.address,
                    &format!("First batch {i}"),
                    &format!("first{i}@example.test"),
                    "",
                    "help",
                )
            })
            .collect(),
        vec![mail(
            "team.lead@example.test",
            &desk.address,
            "The whole team cannot print",
            "team@example.test",
            &format!("Cc: {}\r\n", cc.join(", ")),
            "none of us can print",
        )],
        (0..2)
            .map(|i| {
                mail(
                    &format!("last{i}@example.test"),
                    &desk.address,
                    &format!("Last batch {i}"),
                    &format!("last{i}@example.test"),
                    "",
                    "help",
                )
            })
            .collect(),
    ];
    for mails in batches {
        let raws = mails.into_iter().map(|m| (None, m.into_bytes())).collect();
        let batch = helpdeskd::ingest::parse_batch("support".into(), raws, 1 << 24)
            .await
            .expect("parse");
        let now = helpdeskd::clock::Clock::now(&helpdeskd::clock::SystemClock);
        let n = batch.len();
        let outcomes = apply_batch(&store, &settings, batch, None, now)
            .await
            .expect("batch");
        let stored = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Outcome::Stored {
                        new_ticket: true,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(stored, n, "{outcomes:?}");
    }
    let url = &desk.db.url;
    let ids: Vec<i64> = sql_rows(url, "SELECT id FROM tickets ORDER BY id")
        .await
        .iter()
        .map(|r| r.try_get::<i64>("", "id").expect("id"))
        .collect();
    assert_eq!(
        ids,
        (1..=6).collect::<Vec<i64>>(),
        "ticket ids without a gap"
    );
    assert_eq!(
        sql_count(
            url,
            "SELECT count(*) AS n FROM contacts WHERE email LIKE 'colleague%'"
        )
        .await,
        30
    );
    for (counter, table) in [
        ("ticket", "tickets"),
        ("message", "messages"),
        ("contact", "contacts"),
    ] {
        let at = sql_count(
            url,
            &format!("SELECT value AS n FROM counters WHERE name = '{counter}'"),
        )
        .await;
        let max = sql_count(url, &format!("SELECT max(id) AS n FROM {table}")).await;
        let rows = sql_count(url, &format!("SELECT count(*) AS n FROM {table}")).await;
        assert_eq!(
            at, max,
            "counter {counter} ends at the highest id of {table}"
        );
        assert_eq!(rows, max, "{table}: ids without a gap");
    }
    desk.finish().await;
}
