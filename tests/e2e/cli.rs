//! The command line as an admin meets it: bad configuration, `check`,
//! `import`, `migrate`.

use crate::both_backends;
use crate::harness::*;

#[tokio::test]
async fn bad_config_names_file_line_and_key() {
    let desk = Desk::new(Backend::Sqlite).await;
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    let bad = cfg.replacen("port = 11143", "port = 70000", 1).replacen(
        "batch_size = 500",
        "batch_size = 0",
        1,
    );
    std::fs::write(&desk.config, &bad).expect("config");
    let out = desk.cli_output(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| {
        bad.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line")
    };
    let file = desk.config.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:{}: mailbox[0].imap.port: expected an integer 1-65535, got 70000",
            line_of("port = 70000")
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:{}: ingest.batch_size: expected an integer 1-10000, got 0",
            line_of("batch_size = 0")
        )),
        "{err}"
    );

    std::fs::write(
        &desk.config,
        cfg.replacen("tls = \"none\"", "tls = \"sometimes\"", 1),
    )
    .expect("config");
    let out = desk.cli_output(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mailbox[0].imap.tls") && err.contains("sometimes"),
        "{err}"
    );
}

#[tokio::test]
async fn check_reports_each_connection() {
    let desk = Desk::new(Backend::Sqlite).await;
    desk.cli(&["migrate"]);
    let out = desk.cli(&["check"]);
    for name in ["config", "database", "mailbox support", "smtp"] {
        assert!(
            out.lines().any(|l| l.starts_with("ok") && l.contains(name)),
            "{name} not ok:\n{out}"
        );
    }
    std::fs::write(desk.dir.path().join("imap-password"), "wrong").expect("password");
    let out = desk.cli_output(&["check"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("mailbox support") && l.contains("login")),
        "{text}"
    );
}

/// A refused login is not a lost connection: the daemon logs it once with
/// the server's answer and waits long before the next try, instead of
/// logging in again every few seconds; the mail waits in the mailbox.
#[tokio::test]
async fn a_refused_login_is_logged_once_and_retried_slowly() {
    let desk = Desk::new(Backend::Sqlite).await;
    desk.cli(&["migrate"]);
    std::fs::write(desk.dir.path().join("imap-password"), "wrong").expect("password");
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(
        &cust_addr,
        "waits for the password",
        &format!("{cust}@refused"),
    )
    .await;
    let mut daemon = desk.spawn();
    // The old backoff (1 s, doubling) tried five times in this while.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    daemon.kill().expect("kill");
    let _ = daemon.wait();
    let log = desk.daemon_log();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("login as")).collect();
    assert_eq!(refused.len(), 1, "one line for the refusal:\n{log}");
    assert!(
        refused[0].contains("ERROR") && refused[0].contains("retry_in=600s"),
        "{}",
        refused[0]
    );
    assert_eq!(desk.tickets().len(), 0);
    assert_eq!(
        messages(&desk.user, "INBOX").await.len(),
        1,
        "the mail waits"
    );
}

async fn import_mbox_uses_the_pipeline(backend: Backend) {
    let desk = Desk::new(backend).await;
    let a = mail(
        "old@example.test",
        &desk.address,
        "Old ticket",
        "old.1@example.test",
        "",
        ">From the archive\r\nbody",
    );
    let b = mail(
        "old@example.test",
        &desk.address,
        "Re: Old ticket",
        "old.2@example.test",
        "In-Reply-To: <old.1@example.test>\r\n",
        "reply",
    );
    let c = mail(
        "other@example.test",
        &desk.address,
        "Another",
        "old.3@example.test",
        "",
        "x",
    );
    let mbox = format!(
        "From old@example.test Mon Jan  1 00:00:00 2024\n{}\nFrom old@example.test Mon Jan  1 00:00:01 2024\n{}\nFrom other@example.test Mon Jan  1 00:00:02 2024\n{}\n",
        a.replace("\r\n", "\n").replace("\n>From", "\n>>From"),
        b.replace("\r\n", "\n"),
        c.replace("\r\n", "\n")
    );
    let path = desk.dir.path().join("old.mbox");
    std::fs::write(&path, mbox).expect("mbox");
    let out = desk.cli(&["import", "--mbox", path.to_str().expect("utf8 path")]);
    assert!(
        out.contains("imported 3 mail(s): 3 stored (2 new tickets)"),
        "{out}"
    );
    let out = desk.cli(&["import", "--mbox", path.to_str().expect("utf8 path")]);
    assert!(
        out.contains("3 duplicate(s)"),
        "re-import stores nothing twice: {out}"
    );
    let t = desk.ticket("INC-000001");
    assert_eq!(
        t["messages"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["direction"] == "in").count()),
        Some(2),
        "{t}"
    );
    assert!(
        t["messages"][0]["body"]
            .as_str()
            .unwrap_or("")
            .contains(">From the archive"),
        "{t}"
    );
    desk.finish().await;
}
both_backends!(
    import_mbox_uses_the_pipeline,
    super::import_mbox_uses_the_pipeline
);

/// A list archive imported in three orders (as written, reversed, and
/// replies first), each in two imports, gives the same tickets: replies
/// that come before the mail they answer, and replies to a mail the desk
/// never got, end in one ticket; `In-Reply-To: yes` joins nothing.
async fn an_archive_gives_the_same_tickets_in_any_order(backend: Backend) {
    let to = "list@example.test";
    let m = |from: &str, subject: &str, id: &str, irt: &[&str], refs: &[&str]| {
        let mut extra = String::new();
        if !irt.is_empty() {
            let v: Vec<String> = irt.iter().map(|i| format!("<{i}>")).collect();
            extra.push_str(&format!("In-Reply-To: {}\r\n", v.join(" ")));
        }
        if !refs.is_empty() {
            let v: Vec<String> = refs.iter().map(|i| format!("<{i}>")).collect();
            extra.push_str(&format!("References: {}\r\n", v.join(" ")));
        }
        (
            id.to_string(),
            mail(from, to, subject, id, &extra, "words of my own"),
        )
    };
    let written = vec![
        m("ann@a.test", "VPN down", "a1@a.test", &[], &[]),
        m(
            "bob@a.test",
            "Re: VPN down",
            "a2@a.test",
            &["a1@a.test"],
            &["a1@a.test"],
        ),
        m(
            "ann@a.test",
            "Re: VPN down",
            "a3@a.test",
            &["a2@a.test"],
            &["a1@a.test", "a2@a.test"],
        ),
        m(
            "cy@b.test",
            "Re: unseen",
            "b1@b.test",
            &["b0@b.test"],
            &["b0@b.test"],
        ),
        m(
            "di@b.test",
            "Re: unseen",
            "b2@b.test",
            &["b0@b.test"],
            &["b0@b.test"],
        ),
        m("dev1@c.test", "[PATCH] one", "c1@c.test", &[], &[]),
        m("dev2@c.test", "[PATCH] two", "d1@c.test", &[], &[]),
    ];
    let mut with_yes = written.clone();
    for (id, raw) in with_yes.iter_mut() {
        if id.ends_with("@c.test") {
            *raw = raw.replace("MIME-Version", "In-Reply-To: yes\r\nMIME-Version");
        }
    }
    let reversed: Vec<_> = with_yes.iter().rev().cloned().collect();
    let replies_first: Vec<_> = [2, 1, 4, 3, 6, 0, 5]
        .iter()
        .map(|&i| with_yes[i].clone())
        .collect();
    let mut groupings = Vec::new();
    for (name, order) in [
        ("written", &with_yes),
        ("reversed", &reversed),
        ("replies first", &replies_first),
    ] {
        let desk = Desk::new(backend).await;
        let (first, second) = order.split_at(order.len() / 2);
        for (part, mails) in [first, second].iter().enumerate() {
            let mbox: String = mails
                .iter()
                .map(|(_, raw)| {
                    format!(
                        "From x@example.test Mon Jan  1 00:00:00 2024\n{}\n",
                        raw.replace("\r\n", "\n")
                    )
                })
                .collect();
            let path = desk.dir.path().join(format!("archive-{part}.mbox"));
            std::fs::write(&path, mbox).expect("mbox");
            desk.cli(&["import", "--mbox", path.to_str().expect("utf8 path")]);
        }
        let mut tickets: Vec<Vec<String>> = desk
            .tickets()
            .iter()
            .map(|t| {
                let number = t["number"].as_str().expect("number");
                let mut ids: Vec<String> = desk.ticket(number)["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .filter(|m| m["direction"] == "in")
                    .filter_map(|m| m["message_id"].as_str().map(str::to_string))
                    .collect();
                ids.sort();
                ids
            })
            .collect();
        tickets.sort();
        groupings.push((name, tickets));
        desk.finish().await;
    }
    let want: Vec<Vec<String>> = vec![
        vec!["a1@a.test", "a2@a.test", "a3@a.test"],
        vec!["b1@b.test", "b2@b.test"],
        vec!["c1@c.test"],
        vec!["d1@c.test"],
    ]
    .into_iter()
    .map(|t| t.into_iter().map(str::to_string).collect())
    .collect();
    for (name, tickets) in groupings {
        assert_eq!(tickets, want, "{name} order");
    }
}
both_backends!(
    an_archive_gives_the_same_tickets_in_any_order,
    super::an_archive_gives_the_same_tickets_in_any_order
);

/// Daemons started together on one empty PostgreSQL database all come up:
/// they migrate one after the other under a lock instead of racing to
/// create the same tables (without it, all but one exited 1).
#[tokio::test]
async fn daemons_started_together_on_postgres_all_migrate() {
    let desk = Desk::new(Backend::Postgres).await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            desk.command()
                .arg("migrate")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn helpdeskd migrate")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a daemon failed to migrate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let check = desk.cli_output(&["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("schema up to date")),
        "{text}"
    );
    desk.finish().await;
}

/// Three daemons on one PostgreSQL and one mailbox with a backlog: one
/// polls it, the others leave it to that one; every mail is stored once,
/// none is fetched by two, and no daemon fails (without the claim every
/// daemon fetched the same mails and threw away the others' as duplicates).
#[tokio::test]
async fn three_daemons_share_one_mailbox_on_postgres() {
    let desk = Desk::new(Backend::Postgres).await;
    desk.cli(&["migrate"]);
    let mails: Vec<String> = (0..600)
        .map(|i| {
            let who = format!("c{}@example.test", i % 20);
            mail(
                &who,
                &desk.address,
                &format!("Request {i}"),
                &format!("req{i}@example.test"),
                "",
                "help",
            )
        })
        .collect();
    append_all(&desk.user, "INBOX", &mails).await;
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
    let (mut stored, mut duplicates) = (0, 0);
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a daemon failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("run --once --json");
        stored += report["stored"].as_u64().unwrap_or(0);
        duplicates += report["duplicates"].as_u64().unwrap_or(0);
    }
    assert_eq!(duplicates, 0, "no daemon fetched what another was storing");
    // What one daemon left (it may have started before the mails were
    // indexed) a last pass picks up.
    let last: serde_json::Value =
        serde_json::from_str(desk.cli(&["run", "--once", "--no-send", "--json"]).trim())
            .expect("json");
    stored += last["stored"].as_u64().unwrap_or(0);
    assert_eq!(stored, 600, "each mail stored by one daemon");
    assert_eq!(desk.tickets().len(), 600);
    desk.finish().await;
}
