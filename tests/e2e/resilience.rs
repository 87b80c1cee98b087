//! The desk survives its surroundings: TLS in both forms, an IMAP server
//! restarted mid-backlog, an SMTP server that is down, and SIGKILL at random
//! moments during a 2,000-mail backlog.

use std::net::TcpListener as StdListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use helpdeskd::config::TlsMode;
use sea_orm::{ConnectionTrait, Statement};

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn tls_modes(mode: TlsMode, port: u16) {
    let desk = Desk::with(
        Backend::Sqlite,
        DeskOptions {
            tls: mode,
            imap_port: port,
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "over TLS", &format!("{cust}@tls"))
        .await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 1, "{mode:?}: {r}");
    assert_eq!(r["mailbox_errors"].as_array().map(Vec::len), Some(0), "{r}");
    desk.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaps_with_a_trusted_self_signed_certificate() {
    tls_modes(TlsMode::Implicit, IMAPS_PORT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_starttls_with_a_trusted_self_signed_certificate() {
    tls_modes(TlsMode::Starttls, IMAP_PORT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_clearly() {
    let desk = Desk::with(
        Backend::Sqlite,
        DeskOptions {
            tls: TlsMode::Implicit,
            imap_port: IMAPS_PORT,
            ..Default::default()
        },
    )
    .await;
    // Point ca_file at a valid PEM certificate that did not sign the server's.
    let other = desk.dir.path().join("other-ca.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(desk.dir.path().join("other.key"))
        .arg("-out")
        .arg(&other)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    let ca = stack().ca_file.display().to_string();
    std::fs::write(&desk.config, cfg.replace(&ca, &other.display().to_string())).expect("config");
    let out = desk.cli_output(&["run", "--once", "--json"]);
    assert!(
        !out.status.success(),
        "an untrusted server must not be used"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("support") && text.to_lowercase().contains("certificate"),
        "{text}"
    );
    desk.finish().await;
}

/// A TLS front for the mail stack's SMTP server, which cannot do TLS here
/// (README of tests/mailstack): it ends TLS, implicit or after STARTTLS,
/// and relays the session to OpenSMTPD, so the mail really arrives.
async fn tls_smtp_front(mode: TlsMode) -> u16 {
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio_rustls::rustls;

    let ca = &stack().ca_file;
    let certs = helpdeskd::tls::read_pem_certs(ca).expect("cert");
    let key_path = ca.with_file_name("key.pem");
    let key = rustls_pemfile::private_key(&mut std::fs::read(&key_path).expect("key").as_slice())
        .expect("key pem")
        .expect("a key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if mode == TlsMode::Starttls {
                    let (r, mut w) = tcp.split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 front ESMTP\r\n").await?;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        let verb = line.trim().to_ascii_uppercase();
                        if verb.starts_with("EHLO") {
                            w.write_all(b"250-front\r\n250 STARTTLS\r\n").await?;
                        } else if verb == "STARTTLS" {
                            w.write_all(b"220 go ahead\r\n").await?;
                            break;
                        } else {
                            w.write_all(b"530 STARTTLS first\r\n").await?;
                        }
                    }
                }
                let mut tls = acceptor.accept(tcp).await?;
                let mut upstream = tokio::net::TcpStream::connect(("127.0.0.1", SMTP_PORT)).await?;
                if mode == TlsMode::Starttls {
                    // The client greets again after STARTTLS and expects no
                    // second 220: the server's goes no further.
                    let mut greeting = String::new();
                    BufReader::new(&mut upstream)
                        .read_line(&mut greeting)
                        .await?;
                }
                tokio::io::copy_bidirectional(&mut tls, &mut upstream).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    port
}

async fn smtp_over_tls(mode: TlsMode) {
    let port = tls_smtp_front(mode).await;
    let desk = Desk::with(
        Backend::Sqlite,
        DeskOptions {
            smtp_port: port,
            smtp_tls: mode,
            ..Default::default()
        },
    )
    .await;
    let out = desk.cli(&["check"]);
    assert!(out.contains("accepts connections"), "{mode:?}: {out}");
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "answer me over TLS", &format!("{cust}@smtptls"))
        .await;
    let r = desk.run_once();
    assert_eq!(r["outbox"]["sent"], 1, "{mode:?}: {r}");
    let got = wait_for_messages(&cust, "INBOX", 1, WAIT).await;
    assert!(
        got[0].contains("answer me over TLS"),
        "{mode:?}: the acknowledgement arrived: {}",
        got[0]
    );
    desk.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_with_a_trusted_self_signed_certificate() {
    smtp_over_tls(TlsMode::Implicit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_starttls_with_a_trusted_self_signed_certificate() {
    smtp_over_tls(TlsMode::Starttls).await;
}

struct PrivateDovecot {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateDovecot {
    fn start() -> PrivateDovecot {
        stack();
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let dovecot = PrivateDovecot { dir, port };
        dovecot.up();
        dovecot
    }

    fn up(&self) {
        let dir = self.dir.path().display().to_string();
        let imaps = free_port().to_string();
        mailstack(&["dovecot-start", &dir, &self.port.to_string(), &imaps]);
    }

    fn down(&self) {
        mailstack(&["dovecot-stop", &self.dir.path().display().to_string()]);
    }
}

impl Drop for PrivateDovecot {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["dovecot-stop", &self.dir.path().display().to_string()])
            .stdin(Stdio::null())
            .output();
    }
}

async fn count_inbound(url: &str) -> (i64, i64) {
    let db = sea_orm::Database::connect(url).await.expect("db");
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n, COUNT(DISTINCT dedup_key) AS d FROM messages WHERE direction = 'in'",
        ))
        .await
        .expect("count")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("n");
    let d: i64 = row.try_get("", "d").expect("d");
    let _ = db.close().await;
    (n, d)
}

/// (status, count, one last_error) of the outbox.
async fn outbox_status(url: &str) -> Vec<(String, i64, String)> {
    let db = sea_orm::Database::connect(url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT status, COUNT(*) AS n, MAX(last_error) AS e FROM outbox GROUP BY status",
        ))
        .await
        .expect("outbox status");
    let _ = db.close().await;
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "status").unwrap_or_default(),
                r.try_get("", "n").unwrap_or_default(),
                r.try_get::<Option<String>>("", "e")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn imap_restart_mid_backlog(backend: Backend) {
    let dovecot = PrivateDovecot::start();
    let desk = Desk::with(
        backend,
        DeskOptions {
            imap_port: dovecot.port,
            batch_size: 10,
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    const N: usize = 3000;
    let raws: Vec<String> = (0..N)
        .map(|i| {
            mail(
                &cust_addr,
                &desk.address,
                &format!("backlog {i}"),
                &format!("{cust}.{i}@bl"),
                "",
                "body",
            )
        })
        .collect();
    append_all(&desk.user, "INBOX", &raws).await;
    desk.cli(&["migrate"]);

    let mut daemon = desk.spawn();
    let start = Instant::now();
    while count_inbound(&desk.db.url).await.0 == 0 && start.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = count_inbound(&desk.db.url).await.0 > 0;
    assert!(
        started,
        "daemon never started storing:\n{}",
        desk.daemon_log()
    );
    dovecot.down();
    let at_restart = count_inbound(&desk.db.url).await.0;
    tokio::time::sleep(Duration::from_secs(2)).await;
    dovecot.up();
    let done = eventually(Duration::from_secs(120), async || {
        count_inbound(&desk.db.url).await.0 >= N as i64
    })
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    let log = desk.daemon_log();
    assert!(done, "not everything ingested after the restart:\n{log}");
    assert!(
        (at_restart as usize) < N,
        "the restart came after the whole backlog ({at_restart} stored); nothing was tested"
    );
    assert!(
        log.contains("mailbox connection failed"),
        "the daemon never saw the server go away:\n{log}"
    );
    assert_eq!(count_inbound(&desk.db.url).await, (N as i64, N as i64));
    eprintln!("imap restart: {at_restart} of {N} stored when the server went away");
    desk.finish().await;
}
both_backends!(imap_restart_mid_backlog, super::imap_restart_mid_backlog);

/// A TCP relay from `port` to the real SMTP server, standing in for "the
/// SMTP server is back": the mail still goes to OpenSMTPD.
async fn relay(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind relay");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", SMTP_PORT)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    })
}

async fn smtp_down_then_back(backend: Backend) {
    let port = free_port();
    let desk = Desk::with(
        backend,
        DeskOptions {
            smtp_port: port,
            retry_initial_secs: 1,
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.append_from(&cust_addr, "while SMTP is down", &format!("{cust}@down"))
        .await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 1, "{r}");
    assert_eq!(r["outbox"]["sent"], 0, "{r}");
    assert_eq!(r["outbox"]["deferred"], 1, "{r}");
    let t = desk.ticket("INC-000001");
    assert_eq!(t["outbox"][0]["status"], "pending", "{t}");
    assert!(
        t["outbox"][0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{t}"
    );

    let mut daemon = desk.spawn();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(messages(&cust, "INBOX").await.is_empty());
    let relay = relay(port).await;
    let inbox = wait_for_messages(&cust, "INBOX", 1, WAIT).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    relay.abort();
    assert_eq!(
        inbox.len(),
        1,
        "the acknowledgement never went out:\n{}",
        desk.daemon_log()
    );
    let t = desk.ticket("INC-000001");
    assert_eq!(t["outbox"][0]["status"], "sent", "{t}");
    desk.finish().await;
}
both_backends!(smtp_down_then_back, super::smtp_down_then_back);

/// A mail the SMTP server refuses for good (550: the test relay delivers
/// only to its own domain) is marked failed at once with the server's
/// words, and a later flush leaves it alone; the ticket is stored all the
/// same.
async fn smtp_refuses_for_good(backend: Backend) {
    let desk = Desk::new(backend).await;
    // Outside the relay's domain: OpenSMTPD refuses it at RCPT TO.
    let nobody = format!("{}@example.com", unique("nobody"));
    desk.append_from(&nobody, "from an unknown user", &format!("{nobody}.1"))
        .await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 1, "{r}");
    assert_eq!(r["new_tickets"], 1, "{r}");
    assert_eq!(r["outbox"]["sent"], 0, "{r}");
    assert_eq!(r["outbox"]["deferred"], 0, "{r}");
    assert_eq!(r["outbox"]["failed"], 1, "{r}");
    let t = desk.ticket("INC-000001");
    assert_eq!(t["outbox"][0]["status"], "failed", "{t}");
    assert_eq!(t["outbox"][0]["attempts"], 1, "{t}");
    assert!(
        t["outbox"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("550")),
        "the server's reply is kept: {t}"
    );

    let again = desk.run_once();
    assert_eq!(again["outbox"]["failed"], 0, "not tried again: {again}");
    assert_eq!(again["outbox"]["sent"], 0, "{again}");
    assert_eq!(desk.ticket("INC-000001")["outbox"][0]["attempts"], 1);
    desk.finish().await;
}
both_backends!(smtp_refuses_for_good, super::smtp_refuses_for_good);

/// xorshift: reproducible random delays, seed printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

async fn sigkill_during_backlog(backend: Backend) {
    let desk = Desk::with(
        backend,
        DeskOptions {
            batch_size: 10,
            retry_initial_secs: 1,
            // One customer writes all N mails; every one must be acknowledged.
            extra_config: "[tickets]\nack_limit_per_hour = 10000\n".into(),
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    const N: usize = 2000;
    let raws: Vec<String> = (0..N)
        .map(|i| {
            mail(
                &cust_addr,
                &desk.address,
                &format!("crash {i}"),
                &format!("{cust}.{i}@crash"),
                "",
                "body",
            )
        })
        .collect();
    append_all(&desk.user, "INBOX", &raws).await;
    desk.cli(&["migrate"]);

    let seed = u64::from(std::process::id()) * 2_654_435_761
        + Instant::now().elapsed().as_nanos() as u64
        + 1;
    let mut rng = Rng(seed);
    let mut kills = 0;
    let mut mid_ingest = 0;
    let mut window = 40;
    let mut progress: Vec<i64> = Vec::new();
    while count_inbound(&desk.db.url).await.0 < N as i64 && kills < 80 {
        // Kill at a random moment after the daemon is up and reading mail.
        let connected = desk.daemon_log().matches("connected").count();
        let mut daemon = desk.spawn();
        let start = Instant::now();
        while desk.daemon_log().matches("connected").count() <= connected && start.elapsed() < WAIT
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.next(1, window))).await;
        daemon.kill().expect("SIGKILL");
        let _ = daemon.wait();
        kills += 1;
        let stored = count_inbound(&desk.db.url).await.0;
        // Keep the kills inside the ingest: widen the window while a life
        // stores nothing, narrow it while one stores a tenth of the backlog.
        let before = progress.last().copied().unwrap_or(0);
        if stored == before {
            window = (window * 2).min(2000);
        } else if stored - before > N as i64 / 10 {
            window = (window / 2).max(5);
        }
        mid_ingest += usize::from(stored < N as i64);
        progress.push(stored);
    }
    assert!(
        mid_ingest >= 10,
        "seed {seed}: only {mid_ingest} SIGKILLs landed while the backlog was being ingested: {progress:?}"
    );
    // Finish whatever is left (deferred acknowledgements become due after a
    // second), then check the invariants.
    let flushed = eventually(Duration::from_secs(60), async || {
        desk.run_once();
        outbox_status(&desk.db.url)
            .await
            .iter()
            .all(|(s, _, _)| s == "sent")
    })
    .await;
    assert!(
        flushed,
        "outbox not drained: {:?}",
        outbox_status(&desk.db.url).await
    );
    let (n, distinct) = count_inbound(&desk.db.url).await;
    assert_eq!(
        (n, distinct),
        (N as i64, N as i64),
        "seed {seed}: every mail stored exactly once; progress {progress:?}\n{}",
        desk.daemon_log()
    );
    assert_eq!(desk.tickets().len(), N);
    assert!(
        messages(&desk.user, "INBOX").await.is_empty(),
        "every mail marked processed"
    );

    let acks = wait_for_messages(&cust, "INBOX", N, Duration::from_secs(180)).await;
    let mut answered: Vec<String> = acks
        .iter()
        .filter_map(|a| header(a, "In-Reply-To"))
        .collect();
    answered.sort();
    answered.dedup();
    assert_eq!(
        answered.len(),
        N,
        "seed {seed}: every mail acknowledged at least once"
    );
    eprintln!(
        "crash safety ({backend:?}): {kills} SIGKILLs, stored after each {progress:?}; {} acknowledgements for {N} mails ({} duplicates)",
        acks.len(),
        acks.len() - N
    );
    desk.finish().await;
}
both_backends!(sigkill_during_backlog, super::sigkill_during_backlog);

/// Flag mode leaves mail in place; a folder recreated under a new
/// UIDVALIDITY is read again from the start without storing anything twice.
async fn uidvalidity_change_rereads_without_duplicates(backend: Backend) {
    let desk = Desk::with(
        backend,
        DeskOptions {
            folder: "Support",
            processed: helpdeskd::config::Processed::Flag,
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    let m = |i: usize| {
        mail(
            &cust_addr,
            &desk.address,
            &format!("uv {i}"),
            &format!("{cust}.{i}@uv"),
            "",
            "body",
        )
    };
    append_all(&desk.user, "Support", &[m(1), m(2)]).await;
    let r = desk.run_once();
    assert_eq!(r["stored"], 2, "{r}");
    let r = desk.run_once();
    assert_eq!(r["mails"], 0, "flagged mail is not read twice: {r}");
    let kept = messages(&desk.user, "Support").await;
    assert_eq!(kept.len(), 2, "flag mode leaves mail in the folder");

    let mut s = imap(&desk.user).await;
    s.delete("Support").await.expect("delete folder");
    let _ = s.logout().await;
    append_all(&desk.user, "Support", &[m(2), m(3), m(4)]).await;
    let out = desk.cli_output(&["run", "--once", "--json"]);
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            r["mails"].as_u64(),
            r["stored"].as_u64(),
            r["duplicates"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{r}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("UIDVALIDITY changed"));
    assert_eq!(desk.tickets().len(), 4);
    desk.finish().await;
}
both_backends!(
    uidvalidity_change_rereads_without_duplicates,
    super::uidvalidity_change_rereads_without_duplicates
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_gracefully() {
    let desk = Desk::new(Backend::Sqlite).await;
    desk.cli(&["migrate"]);
    let mut daemon = desk.spawn();
    let up = eventually(WAIT, async || desk.daemon_log().contains("connected")).await;
    assert!(up, "daemon never connected:\n{}", desk.daemon_log());
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = daemon.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = daemon.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        exit.is_some_and(|s| s.success()),
        "no clean exit after SIGTERM: {exit:?}\n{}",
        desk.daemon_log()
    );
    assert!(desk.daemon_log().contains("helpdeskd stopped"));
    desk.finish().await;
}

/// SIGKILL while the outbox is being sent: every mail arrives, and a mail
/// the server accepted just before the kill is not sent again (the sent
/// journal); a copy that does go twice keeps its Message-ID.
async fn sigkill_during_sending(backend: Backend) {
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: "[tickets]\nack_limit_per_hour = 10000\n".into(),
            ..Default::default()
        },
    )
    .await;
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    const N: usize = 1000;
    let raws: Vec<String> = (0..N)
        .map(|i| {
            mail(
                &cust_addr,
                &desk.address,
                &format!("send {i}"),
                &format!("{cust}.{i}@send"),
                "",
                "body",
            )
        })
        .collect();
    append_all(&desk.user, "INBOX", &raws).await;
    // Queue every acknowledgement first; only the sending is killed.
    desk.cli(&["run", "--once", "--no-send"]);

    let seed = u64::from(std::process::id()) * 2_654_435_761 + 7;
    let mut rng = Rng(seed);
    let mut kills = 0u32;
    let mut progress = Vec::new();
    let sent = async || {
        outbox_status(&desk.db.url)
            .await
            .iter()
            .filter(|(s, _, _)| s == "sent")
            .map(|(_, n, _)| *n as usize)
            .sum::<usize>()
    };
    let mut lives = 0;
    let mut window = 300;
    while sent().await < N && kills < 20 && lives < 60 {
        lives += 1;
        let before = sent().await;
        let mut daemon = desk.spawn();
        tokio::time::sleep(Duration::from_millis(rng.next(window / 2, window))).await;
        daemon.kill().expect("SIGKILL");
        let _ = daemon.wait();
        let after = sent().await;
        // Only kills that landed while mail was going out count.
        if after > before && after < N {
            kills += 1;
        }
        // Keep the kills inside the sending: a life that sent nothing was
        // too short, one that sent a tenth of the mails too long.
        if after == before {
            window = (window * 2).min(4000);
        } else if after - before > N / 10 {
            window = (window * 2 / 3).max(100);
        }
        progress.push(after);
    }
    let drained = eventually(Duration::from_secs(60), async || {
        desk.run_once();
        sent().await == N
    })
    .await;
    assert!(
        drained,
        "outbox drained: {progress:?}\n{:?}\n{}",
        outbox_status(&desk.db.url)
            .await
            .iter()
            .take(5)
            .collect::<Vec<_>>(),
        desk.daemon_log()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        kills >= 5,
        "seed {seed}: only {kills} kills landed while sending: {progress:?}"
    );
    let got = wait_for_messages(&cust, "INBOX", N, Duration::from_secs(120)).await;
    // Let any late copy arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if got.len() >= N {
        messages(&cust, "INBOX").await
    } else {
        got
    };
    let mut ids: Vec<String> = got.iter().filter_map(|m| header(m, "Message-ID")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        N,
        "every mail arrived, copies under one Message-ID"
    );
    let duplicates = got.len() - N;
    let per_kill = duplicates as f64 / f64::from(kills);
    eprintln!(
        "sending under SIGKILL ({backend:?}): {kills} kills while sending, {duplicates} duplicates, {per_kill:.3} per kill; progress {progress:?}"
    );
    // The target is 0.1 per kill (measured 0-0.1 with one mail in flight,
    // README "Running it for real"). A copy needs the kill to land between
    // the server's commit and the journal write, so the count is random;
    // 0.25 per kill keeps the check from flaking (about 1 in 1,500 runs at
    // the measured rate) and still fails the old transport, whose delayed
    // final `.` gave 0.75-1.0 per kill.
    assert!(
        duplicates * 4 <= kills as usize,
        "seed {seed}: {duplicates} duplicates over {kills} kills, more than 0.25 per kill"
    );
    desk.finish().await;
}
both_backends!(sigkill_during_sending, super::sigkill_during_sending);
