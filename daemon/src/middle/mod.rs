//! The middle tier of tests: the daemon's writers against a real SQLite
//! database (a temp file), without mail servers.
//!
//! Below the end-to-end tests (real IMAP and SMTP servers, slow, and they
//! see only what leaves the desk) and above the unit tests of the pure
//! core (no database), this tier feeds one mail or one job run in through
//! the same public entry points the daemon uses (`App::import` for mail,
//! `service_level::check`, `supplier::review`, `jobs::run_due`, the plugin
//! dispatcher's `select` and `settle` around the plugins' answers) and compares
//! the rows that come out — tickets, messages, outbox, hook events, SLA
//! alerts, escalations, job runs — with a snapshot written in the test as
//! text. The clock and the reply-token key are fixed, so every row is
//! deterministic; raw bytes are shown by their length.
//!
//! `Desk` is the fixture; a snapshot is a list of [`Table`]s, each one
//! SQL query printed one row per line (`column=value`, NULLs left out,
//! timestamps relative to [`T0`]).

mod apply;
mod dispatch;
mod jobs;
mod problems;
mod releases;
mod sla;
mod supplier;
mod threading;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use crate::app::App;
use crate::clock::Clock;
use crate::config::Config;
use crate::import::Source;
use crate::ingest::Stats;

/// The instant every test starts at: Monday 2 March 2026, 09:00 UTC.
pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .expect("T0 is a valid instant")
        .with_timezone(&Utc)
}

/// A clock the test sets and moves.
pub(crate) struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// The desk every test of this tier runs: one mailbox (named `import`, as
/// `helpdeskd import` names its mails, so its group and service apply to
/// imported mail), two staff, an SLA policy around the clock, a service
/// with an escalation contact, a supplier with a monthly review.
const CONFIG: &str = r#"
data_dir = "data"

[database]
url = "sqlite://{DIR}/helpdesk.db?mode=rwc"
max_connections = 4

[desk]
name = "ACME Service Desk"
address = "support@acme.test"
tag = "ACME"
token_secret_file = "token.key"

[[mailbox]]
name = "import"
processed = "flag"
group = "network"
service = "email"
[mailbox.imap]
host = "127.0.0.1"
tls = "none"
user = "support"
password_file = "imap-password"

[smtp]
host = "127.0.0.1"
tls = "none"

[[staff]]
name = "Ada Lovelace"
email = "ada@acme.test"
groups = ["network"]

[[staff]]
name = "Bob Page"
email = "bob@acme.test"

[tickets]
reopen_window_days = 7
ack_limit_per_hour = 5

[[sla_policy]]
name = "standard"
warn_percent = 80
response = { urgent = "15m", high = "30m", normal = "1h", low = "4h" }
resolution = { urgent = "2h", high = "4h", normal = "8h", low = "3d" }

[[service]]
name = "email"
sla_policy = "standard"
escalation = "manager@acme.test"

[[supplier]]
name = "NetCo"
contacts = ["noc@netco.test"]
services = ["email"]
response_target = "2h"
resolution_target = "8h"
contract_end = "2026-05-01"
review = "0 8 1 * *"
manager = "ada@acme.test"

[jobs]
sla = "* * * * *"
lease_secs = 600

[plugins]
enabled = false
dir = "plugins"
"#;

/// A fixed reply-token secret: the same tokens, Message-IDs and rendered
/// mails every run.
const TOKEN_KEY: &str = "6d6964646c652d746965722d746573742d6b65792d303132333435363738396162";

/// A desk on a fresh SQLite file, at [`t0`].
pub(crate) struct Desk {
    pub app: App,
    clock: Arc<TestClock>,
    dir: tempfile::TempDir,
    deliveries: Mutex<usize>,
}

impl Desk {
    pub async fn new() -> Desk {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token.key"), TOKEN_KEY).expect("token key");
        std::fs::write(dir.path().join("imap-password"), "not used\n").expect("password");
        let path = dir.path().join("helpdesk.toml");
        let text = CONFIG.replace("{DIR}", &dir.path().display().to_string());
        let config = Config::parse(&path, &text, &|_| None).expect("the test config is valid");
        let mut app = App::open(config).await.expect("open and migrate");
        let clock = Arc::new(TestClock(Mutex::new(t0())));
        app.clock = clock.clone() as Arc<dyn Clock>;
        // Hook events are written only while a plugin is installed; the
        // rows are what this tier checks, so they are always on here.
        let mut settings = (*app.settings).clone();
        settings.emit_events = true;
        app.settings = Arc::new(settings);
        Desk {
            app,
            clock,
            dir,
            deliveries: Mutex::new(0),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        *self.clock.0.lock().expect("clock lock") += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.clock.0.lock().expect("clock lock") = at;
    }

    /// Delivers mails as one batch through `helpdeskd import` (an mbox file).
    pub async fn deliver(&self, mails: &[&str]) -> Stats {
        self.try_deliver(mails).await.expect("import runs")
    }

    /// [`Desk::deliver`], with the import's error.
    pub async fn try_deliver(&self, mails: &[&str]) -> crate::Result<Stats> {
        let n = {
            let mut d = self.deliveries.lock().expect("lock");
            *d += 1;
            *d
        };
        let path = self.dir.path().join(format!("delivery-{n}.mbox"));
        std::fs::write(&path, mbox(mails)).expect("write mbox");
        self.app.import(&Source::Mbox(path)).await
    }

    /// Delivers one mail.
    pub async fn send(&self, mail: &Mail) -> Stats {
        self.deliver(&[&mail.raw()]).await
    }

    /// Rows of `sql`, one a line.
    pub async fn rows(&self, sql: &str) -> String {
        let rows = self
            .app
            .store
            .conn()
            .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .unwrap_or_else(|e| panic!("query {sql}: {e}"));
        rows.iter().map(line).collect::<Vec<_>>().join("\n")
    }

    /// One value (the first column of the first row) as text.
    pub async fn value(&self, sql: &str) -> String {
        let rows = self
            .app
            .store
            .conn()
            .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .unwrap_or_else(|e| panic!("query {sql}: {e}"));
        let row = rows.first().unwrap_or_else(|| panic!("no row for {sql}"));
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
            .unwrap_or_else(|e| panic!("value of {sql}: {e}"))
    }

    /// The tables, each under its name.
    pub async fn snapshot(&self, tables: &[Table]) -> String {
        let mut out = String::new();
        for t in tables {
            out.push_str(&format!("[{}]\n", t.name()));
            let rows = self.rows(t.sql()).await;
            if !rows.is_empty() {
                out.push_str(&rows);
                out.push('\n');
            }
        }
        out
    }

    /// The Message-ID of the desk mail of `kind` last queued to `to`: what
    /// a reply puts in In-Reply-To (it carries the recipient's token).
    pub async fn sent_id(&self, kind: &str, to: &str) -> String {
        self.value(&format!(
            "SELECT message_id FROM outbox WHERE kind = '{kind}' AND recipients = '{to}' \
             ORDER BY id DESC LIMIT 1"
        ))
        .await
    }
}

/// What a snapshot shows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Table {
    Tickets,
    Messages,
    Outbox,
    Events,
    Contacts,
    Participants,
    Links,
    Quarantine,
    SlaEvents,
    SlaPauses,
    Escalations,
    JobRuns,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Tickets => "tickets",
            Table::Messages => "messages",
            Table::Outbox => "outbox",
            Table::Events => "events",
            Table::Contacts => "contacts",
            Table::Participants => "participants",
            Table::Links => "ticket_links",
            Table::Quarantine => "quarantine",
            Table::SlaEvents => "sla_events",
            Table::SlaPauses => "sla_pauses",
            Table::Escalations => "supplier_escalations",
            Table::JobRuns => "job_runs",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Table::Tickets => {
                "SELECT number, status, priority, kind, team, assignee, service, \
                 customer_id AS customer, mailbox, subject, NULLIF(fields, '{}') AS fields, \
                 created_at AS created, updated_at AS updated, resolved_at AS resolved, \
                 responded_at AS responded, response_due_at AS response_due, \
                 resolution_due_at AS resolution_due, sla_next_at AS next_check \
                 FROM tickets ORDER BY id"
            }
            // Inbound mails with their text; desk mails (long, rendered)
            // with the first line of theirs.
            Table::Messages => {
                "SELECT m.id, t.number AS ticket, direction AS dir, author, class, \
                 visibility AS vis, threaded_by AS rule, from_addr AS from_, \
                 to_addrs AS to_, NULLIF(cc_addrs, '') AS cc, m.subject, \
                 CASE WHEN direction = 'in' THEN body_text \
                 ELSE substr(body_text, 1, instr(body_text || char(10), char(10)) - 1) || ' …' \
                 END AS text, NULLIF(warnings, '') AS warnings, flag, \
                 NULLIF(length(raw), 0) AS raw_bytes, m.created_at AS at \
                 FROM messages m JOIN tickets t ON t.id = m.ticket_id ORDER BY m.id"
            }
            Table::Outbox => {
                "SELECT o.id, t.number AS ticket, o.kind, recipients AS to_, o.status, \
                 attempts, last_error AS error, length(raw) AS raw_bytes, \
                 o.created_at AS at, next_attempt_at AS next \
                 FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id ORDER BY o.id"
            }
            Table::Events => {
                "SELECT e.id, t.number AS ticket, hook, e.status, \
                 json_extract(payload, '$.ticket.status') AS t_status, \
                 json_extract(payload, '$.ticket.assignee') AS t_assignee, \
                 json_extract(payload, '$.ticket.customer') AS t_customer, \
                 json_extract(payload, '$.message.from') AS msg_from, \
                 json_extract(payload, '$.message.visibility') AS msg_vis, \
                 NULLIF(json_extract(payload, '$.changes'), '[]') AS changes, \
                 COALESCE(json_extract(payload, '$.sla'), json_extract(payload, '$.supplier')) AS data, \
                 e.created_at AS at FROM events e LEFT JOIN tickets t ON t.id = e.ticket_id \
                 ORDER BY e.id"
            }
            Table::Contacts => {
                "SELECT id, email, NULLIF(name, '') AS name, ack_count AS acks, \
                 ack_window_start AS ack_since, created_at AS created FROM contacts ORDER BY id"
            }
            Table::Participants => {
                "SELECT t.number AS ticket, c.email, p.role FROM participants p \
                 JOIN tickets t ON t.id = p.ticket_id JOIN contacts c ON c.id = p.contact_id \
                 ORDER BY p.ticket_id, p.contact_id"
            }
            Table::Links => {
                "SELECT a.number AS ticket, b.number AS other, reason FROM ticket_links l \
                 JOIN tickets a ON a.id = l.ticket_id JOIN tickets b ON b.id = l.other_id \
                 ORDER BY l.ticket_id, l.other_id"
            }
            Table::Quarantine => {
                "SELECT id, dedup_key, mailbox, uid, reason, size, length(raw) AS raw_bytes, \
                 created_at AS at FROM quarantine ORDER BY id"
            }
            Table::SlaEvents => {
                "SELECT s.id, t.number AS ticket, target, s.kind, due_at AS due, \
                 s.created_at AS at FROM sla_events s JOIN tickets t ON t.id = s.ticket_id \
                 ORDER BY s.id"
            }
            Table::SlaPauses => {
                "SELECT p.id, t.number AS ticket, started_at AS from_, ended_at AS until \
                 FROM sla_pauses p JOIN tickets t ON t.id = p.ticket_id ORDER BY p.id"
            }
            Table::Escalations => {
                "SELECT s.id, t.number AS ticket, supplier, note, escalated_at AS escalated, \
                 s.responded_at AS responded, s.resolved_at AS resolved \
                 FROM supplier_escalations s JOIN tickets t ON t.id = s.ticket_id ORDER BY s.id"
            }
            // The owner (host and process id) is checked apart.
            Table::JobRuns => {
                "SELECT id, job, slot, status, lease_until AS lease, started_at AS started, \
                 finished_at AS finished, outcome FROM job_runs ORDER BY id"
            }
        }
    }
}

/// One row as `column=value` pairs; NULLs are left out.
fn line(row: &QueryResult) -> String {
    row.column_names()
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let name = name.trim_end_matches('_');
            value_at(row, i).map(|v| format!("{name}={v}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn value_at(row: &QueryResult, i: usize) -> Option<String> {
    if let Ok(v) = row.try_get_by_index::<Option<i64>>(i) {
        return v.map(|v| v.to_string());
    }
    if let Ok(v) = row.try_get_by_index::<Option<String>>(i) {
        return v.map(|s| text(&s));
    }
    if let Ok(v) = row.try_get_by_index::<Option<Vec<u8>>>(i) {
        return v.map(|b| format!("<{} bytes>", b.len()));
    }
    Some("<unreadable>".into())
}

/// A stored text: an instant as its distance from [`t0`], a bare word as
/// it is, anything else quoted.
fn text(s: &str) -> String {
    if let Some(at) = instant(s) {
        return relative(at);
    }
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if bare {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    if s.len() < 19 || !s.starts_with("20") {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f %:z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// `T0`, `T0+48m`, `T0+1d2h`, `T0-5m`.
pub(crate) fn relative(at: DateTime<Utc>) -> String {
    let d = at - t0();
    if d.is_zero() {
        return "T0".into();
    }
    let sign = if d < Duration::zero() { '-' } else { '+' };
    let mut s = d.num_seconds().abs();
    let mut out = format!("T0{sign}");
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= secs {
            out.push_str(&format!("{}{unit}", s / secs));
            s %= secs;
        }
    }
    let sub = d.num_milliseconds().abs() % 1000;
    if sub != 0 {
        out.push_str(&format!(".{sub:03}"));
    }
    out
}

/// Fails with the whole actual text when it differs from `expected`
/// (both compared line by line with the indentation trimmed), so a changed
/// snapshot can be read, judged and pasted. With `MIDDLE_SNAPSHOTS=print`
/// in the environment it prints the differing snapshots instead of failing,
/// for writing a new test.
#[track_caller]
pub(crate) fn assert_snapshot(actual: &str, expected: &str) {
    let norm = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a, e) = (norm(actual), norm(expected));
    if a != e && std::env::var_os("MIDDLE_SNAPSHOTS").is_some_and(|v| v == "print") {
        // Writing a new test: print instead of failing, to read and paste.
        let at = std::panic::Location::caller();
        println!(
            "=== snapshot {}:{} ===\n{a}\n=== end ===",
            at.file(),
            at.line()
        );
        return;
    }
    if a != e {
        let first = a
            .lines()
            .zip(e.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(e.lines().count()));
        panic!(
            "snapshot differs from line {}:\n  expected: {}\n  actual:   {}\n\
             ---- actual snapshot ----\n{a}\n-------------------------",
            first + 1,
            e.lines().nth(first).unwrap_or("<end>"),
            a.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// An mbox file of `mails`, each with `\n` line ends; body lines starting
/// with `From ` are quoted.
fn mbox(mails: &[&str]) -> String {
    let mut out = String::new();
    for m in mails {
        out.push_str("From sender@mbox.test Mon Mar  2 09:00:00 2026\n");
        for l in m.lines() {
            if l.starts_with("From ") || l.starts_with(">From ") {
                out.push('>');
            }
            out.push_str(l);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// A mail to the desk: the headers, a blank line, the body.
pub(crate) struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    pub fn new(from: &str, subject: &str, message_id: &str) -> Mail {
        Mail {
            headers: vec![
                ("From".into(), from.into()),
                ("To".into(), "ACME Service Desk <support@acme.test>".into()),
                ("Subject".into(), subject.into()),
                ("Message-ID".into(), format!("<{message_id}>")),
                ("Date".into(), "Mon, 02 Mar 2026 09:00:00 +0000".into()),
            ],
            body: String::new(),
        }
    }

    /// Sets a header (replacing one of the same name), or adds it.
    pub fn header(mut self, name: &str, value: &str) -> Mail {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(h) => h.1 = value.into(),
            None => self.headers.push((name.into(), value.into())),
        }
        self
    }

    /// A reply to the desk mail with this Message-ID.
    pub fn replying_to(self, id: &str) -> Mail {
        self.header("In-Reply-To", &format!("<{id}>"))
            .header("References", &format!("<{id}>"))
    }

    pub fn body(mut self, body: &str) -> Mail {
        self.body = body.into();
        self
    }

    pub fn raw(&self) -> String {
        let mut out = String::new();
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&self.body);
        if !self.body.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

#[test]
fn relative_times_read_as_distances_from_t0() {
    assert_eq!(relative(t0()), "T0");
    assert_eq!(relative(t0() + Duration::minutes(48)), "T0+48m");
    assert_eq!(
        relative(t0() + Duration::days(1) + Duration::hours(2) + Duration::seconds(5)),
        "T0+1d2h5s"
    );
    assert_eq!(relative(t0() - Duration::minutes(5)), "T0-5m");
    assert_eq!(text("2026-03-02 10:00:00+00:00"), "T0+1h");
    assert_eq!(text("2026-03-02T09:00:00Z"), "T0");
    assert_eq!(text("a b"), "\"a b\"");
    assert_eq!(text("word"), "word");
}
