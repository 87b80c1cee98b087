//! The end-to-end harness: a real Dovecot and OpenSMTPD on loopback (started
//! once per test process by `tests/mailstack/mailstack.sh`), a fresh SQLite
//! file or PostgreSQL database per test, users named per test so that tests
//! run in parallel, and the real `helpdeskd` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use helpdeskd::config::{MailboxConfig, Processed, ServerConfig, TlsMode};
use helpdeskd::poller::{self, ImapSession};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

pub const SMTP_PORT: u16 = 12525;
pub const IMAP_PORT: u16 = 11143;
pub const IMAPS_PORT: u16 = 11993;
pub const PASSWORD: &str = "secret";
pub const DOMAIN: &str = "example.test";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn script() -> PathBuf {
    repo_root().join("tests/mailstack/mailstack.sh")
}

pub struct Stack {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
}

/// Runs `mailstack.sh ARGS`, asserting success; returns stdout.
pub fn mailstack(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mailstack.sh");
    assert!(
        out.status.success(),
        "mailstack.sh {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installs (when missing) and starts the shared mail stack, once per process.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        mailstack(&["install"]);
        mailstack(&["start"]);
        let env = mailstack(&["env"]);
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches(['"', '\'']).to_string())
                .unwrap_or_else(|| panic!("mailstack.sh env prints no {k}:\n{env}"))
        };
        Stack {
            dir: PathBuf::from(get("HELPDESK_MAILSTACK_DIR")),
            ca_file: PathBuf::from(get("HELPDESK_MAILSTACK_CA")),
        }
    })
}

/// A user name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Adds a mail user and returns its address.
pub fn add_user(name: &str) -> String {
    stack();
    mailstack(&["adduser", name, PASSWORD]);
    format!("{name}@{DOMAIN}")
}

// ---- databases ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in the test's folder, or a
/// PostgreSQL database created for it (dropped at the end of the test).
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("HELPDESK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDb {
    pub async fn new(backend: Backend, dir: &Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}?mode=rwc", dir.join("helpdesk.db").display()),
                pg_name: None,
            },
            Backend::Postgres => {
                let name = unique("hd_test_");
                admin_sql(&format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn drop_db(self) {
        if let Some(name) = self.pg_name {
            admin_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

async fn admin_sql(sql: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(postgres_admin_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", postgres_admin_url()));
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = db.close().await;
}

// ---- a desk under test ----

pub struct DeskOptions {
    pub tls: TlsMode,
    pub imap_port: u16,
    pub smtp_port: u16,
    pub smtp_tls: TlsMode,
    pub processed: Processed,
    pub batch_size: usize,
    pub retry_initial_secs: u64,
    pub poll_interval_secs: u64,
    pub folder: &'static str,
    /// Appended to the configuration file: `[[staff]]`, `[trust]`, `[tickets]`…
    pub extra_config: String,
    /// Extra keys of the `[[mailbox]]` table, e.g. `service = "email"`.
    pub mailbox_extra: String,
}

impl Default for DeskOptions {
    fn default() -> Self {
        DeskOptions {
            tls: TlsMode::None,
            imap_port: IMAP_PORT,
            smtp_port: SMTP_PORT,
            smtp_tls: TlsMode::None,
            processed: Processed::Move,
            batch_size: 500,
            retry_initial_secs: 30,
            poll_interval_secs: 2,
            folder: "INBOX",
            extra_config: String::new(),
            mailbox_extra: String::new(),
        }
    }
}

/// A desk: its support mailbox user, database and configuration file.
pub struct Desk {
    pub dir: tempfile::TempDir,
    pub user: String,
    pub address: String,
    pub config: PathBuf,
    pub db: TestDb,
    pub backend: Backend,
}

pub const TAG: &str = "ACME";

impl Desk {
    pub async fn new(backend: Backend) -> Desk {
        Desk::with(backend, DeskOptions::default()).await
    }

    pub async fn with(backend: Backend, o: DeskOptions) -> Desk {
        let s = stack();
        let dir = tempfile::tempdir().expect("temp dir");
        let user = unique("desk");
        let address = add_user(&user);
        let db = TestDb::new(backend, dir.path()).await;
        std::fs::write(dir.path().join("imap-password"), PASSWORD).expect("write password");
        let tls_name = |t: &TlsMode| match t {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
        };
        let (tls, smtp_tls) = (tls_name(&o.tls), tls_name(&o.smtp_tls));
        let processed = match o.processed {
            Processed::Move => "move",
            Processed::Flag => "flag",
        };
        let config = format!(
            r#"data_dir = "data"

[database]
url = "{url}"
max_connections = 4

[desk]
name = "ACME Service Desk"
address = "{address}"
tag = "{TAG}"

[ingest]
batch_size = {batch}

[[mailbox]]
name = "support"
folder = "{folder}"
processed = "{processed}"
poll_interval_secs = {poll}
{mailbox_extra}

[mailbox.imap]
host = "127.0.0.1"
port = {imap_port}
tls = "{tls}"
ca_file = "{ca}"
user = "{user}"
password_file = "imap-password"
timeout_secs = 10

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "{smtp_tls}"
ca_file = "{ca}"
timeout_secs = 10

[outbox]
retry_initial_secs = {retry}
retry_max_secs = 60
flush_interval_secs = 1

[log]
level = "info"

{extra}
"#,
            extra = o.extra_config,
            mailbox_extra = o.mailbox_extra,
            url = db.url,
            batch = o.batch_size,
            poll = o.poll_interval_secs,
            imap_port = o.imap_port,
            ca = s.ca_file.display(),
            smtp_port = o.smtp_port,
            retry = o.retry_initial_secs,
            folder = o.folder,
        );
        let path = dir.path().join("helpdesk.toml");
        std::fs::write(&path, config).expect("write config");
        Desk {
            dir,
            user,
            address,
            config: path,
            db,
            backend,
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_helpdeskd"));
        c.arg("--config").arg(&self.config).stdin(Stdio::null());
        c
    }

    /// Runs `helpdeskd ARGS`, asserting success; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run helpdeskd");
        assert!(
            out.status.success(),
            "helpdeskd {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn cli_output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run helpdeskd")
    }

    /// `run --once --json`, parsed.
    pub fn run_once(&self) -> Value {
        let out = self.cli(&["run", "--once", "--json"]);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
    }

    /// Starts `helpdeskd run`; the daemon is killed when the guard drops,
    /// so a failing test leaves no daemon behind.
    pub fn spawn(&self) -> Daemon {
        self.spawn_with_env(&[])
    }

    /// `spawn` with extra environment variables (test knobs, `RUST_LOG`).
    pub fn spawn_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("daemon log");
        Daemon(
            self.command()
                .arg("run")
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn helpdeskd run"),
        )
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn tickets(&self) -> Vec<Value> {
        let out = self.cli(&["ticket", "list", "--json"]);
        match serde_json::from_str(&out) {
            Ok(Value::Array(v)) => v,
            other => panic!("bad ticket list: {other:?}: {out}"),
        }
    }

    pub fn ticket(&self, number: &str) -> Value {
        let out = self.cli(&["ticket", "show", number, "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
    }

    /// Sends a customer mail to the desk through SMTP.
    pub async fn send_from(
        &self,
        from: &str,
        subject: &str,
        message_id: &str,
        headers: &str,
        body: &str,
    ) {
        send(
            from,
            &self.address,
            &mail(from, &self.address, subject, message_id, headers, body),
        )
        .await;
    }

    /// Puts one customer mail straight into the desk's INBOX (IMAP APPEND).
    pub async fn append_from(&self, from: &str, subject: &str, message_id: &str) {
        let raw = mail(from, &self.address, subject, message_id, "", "hello");
        append_all(&self.user, "INBOX", &[raw]).await;
    }

    pub async fn finish(self) {
        self.db.drop_db().await;
    }
}

pub struct Daemon(pub Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- mail clients ----

pub fn transport(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

/// Sends raw RFC 5322 bytes through OpenSMTPD, as a customer's server would.
pub async fn send(from: &str, to: &str, raw: &str) {
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().expect("from address")),
        vec![to.parse().expect("to address")],
    )
    .expect("envelope");
    transport(SMTP_PORT)
        .send_raw(&envelope, raw.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("SMTP send {from} -> {to}: {e}"));
}

/// A plain customer mail.
pub fn mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    format!(
        "From: Customer <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}\r\n"
    )
}

pub fn imap_config(user: &str, port: u16, tls: TlsMode) -> MailboxConfig {
    MailboxConfig {
        group: None,
        service: None,
        kind: helpdeskd::domain::ticket::Kind::Incident,
        name: user.into(),
        folder: "INBOX".into(),
        processed: Processed::Flag,
        processed_folder: "Processed".into(),
        poll_interval: Duration::from_secs(5),
        idle: false,
        imap: ServerConfig {
            host: "127.0.0.1".into(),
            port,
            tls,
            ca_file: Some(stack().ca_file.clone()),
            user: Some(user.into()),
            password: Some(helpdeskd::config::Secret::new(PASSWORD)),
            timeout: Duration::from_secs(10),
            oauth2: None,
        },
    }
}

pub async fn imap(user: &str) -> ImapSession {
    poller::connect(
        &imap_config(user, IMAP_PORT, TlsMode::None),
        &helpdeskd::oauth2::Tokens::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("IMAP login {user}: {e}"))
}

/// Every message in `folder` of `user`, oldest first (missing folder: none).
pub async fn messages(user: &str, folder: &str) -> Vec<String> {
    let mut s = imap(user).await;
    let Ok(sel) = s.select(folder).await else {
        return Vec::new();
    };
    if sel.exists == 0 {
        let _ = s.logout().await;
        return Vec::new();
    }
    let fetches: Vec<_> = s
        .uid_fetch("1:*", "(UID BODY.PEEK[])")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch stream");
    let mut out: Vec<(u32, String)> = fetches
        .iter()
        .filter_map(|f| Some((f.uid?, String::from_utf8_lossy(f.body()?).to_string())))
        .collect();
    out.sort_by_key(|(u, _)| *u);
    let _ = s.logout().await;
    out.into_iter().map(|(_, m)| m).collect()
}

/// Waits until `folder` of `user` holds at least `n` messages.
pub async fn wait_for_messages(
    user: &str,
    folder: &str,
    n: usize,
    timeout: Duration,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        let m = messages(user, folder).await;
        if m.len() >= n || start.elapsed() > timeout {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Loads raw messages into a mailbox with IMAP APPEND (fast backlogs).
pub async fn append_all(user: &str, folder: &str, raws: &[String]) {
    let mut s = imap(user).await;
    let _ = s.create(folder).await;
    for raw in raws {
        s.append(folder, None, None, raw.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("APPEND to {user}/{folder}: {e}"));
    }
    let _ = s.logout().await;
}

/// A header's value in a raw message (first occurrence, unfolded).
pub fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            return value;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

/// The decoded text body of a raw message (the plain part, else the HTML
/// part as text).
pub fn body(raw: &str) -> String {
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// A decoded header (RFC 2047 words decoded), e.g. a From display name.
pub fn decoded_from(raw: &str) -> (String, String) {
    let msg = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parsable mail");
    let a = msg.from().and_then(|a| a.first()).expect("From address");
    (
        a.name().unwrap_or("").to_string(),
        a.address().unwrap_or("").to_string(),
    )
}

/// A reply to `original` as a mail client composes it: to its Reply-To (or
/// From), In-Reply-To its Message-ID, References extended, `prefix` on the
/// subject; `body` is the whole text the client writes, quote included.
pub fn reply_to(
    original: &str,
    from: &str,
    prefix: &str,
    headers: &str,
    body: &str,
) -> (String, String) {
    let to = header(original, "Reply-To")
        .or_else(|| header(original, "From"))
        .expect("an address to reply to");
    let to = to
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>').to_string())
        .unwrap_or(to);
    let mid = header(original, "Message-ID").expect("Message-ID");
    let refs = header(original, "References").unwrap_or_default();
    let subject = header(original, "Subject").unwrap_or_default();
    let subject = subject.trim_start_matches("Re: ").to_string();
    let own_id = format!("<{}@client.test>", unique("reply"));
    let raw = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {prefix} {subject}\r\nMessage-ID: {own_id}\r\n\
In-Reply-To: {mid}\r\nReferences: {refs} {mid}\r\nDate: Wed, 25 Nov 2026 10:05:00 +0000\r\n\
MIME-Version: 1.0\r\n{headers}{ct}\r\n{body}\r\n",
        ct = if headers.contains("Content-Type") {
            ""
        } else {
            "Content-Type: text/plain; charset=utf-8\r\n"
        },
    );
    (to, raw)
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Declares a test that runs once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::harness::Backend::Postgres).await
            }
        }
    };
}
