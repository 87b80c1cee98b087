//! The plugin system: the C ABI proven by a plugin written in C, the loader's
//! refusals, the plugin host surviving plugins that panic, abort, segfault
//! and hang, and end to end on the mail stack: a customer mail becomes a
//! ticket that keyword-router routes, the assignee is told, and misbehaving
//! plugins stop nothing.
//!
//! The plugins are built here (`cargo build -p …` into
//! `target/plugin-tests`, once per test process), the C plugin with `cc`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use helpdeskd::plugins::loader;
use helpdeskd::plugins::protocol::{Call, Outcome};
use helpdeskd::plugins::runner::{CallResult, HostProcess, InProcess, Runner};
use serde_json::{Value, json};

use crate::both_backends;
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// The Rust plugins of the workspace, by package name.
const PACKAGES: &[&str] = &[
    "keyword-router",
    "supplier-scorecard",
    "release-gate",
    "plugin-noop",
    "plugin-panic",
    "plugin-abort",
    "plugin-segfault",
    "plugin-hang",
];

/// Builds the workspace's plugins once per test process; returns the folder
/// holding `lib<name>.so`.
pub fn built_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = repo_root().join("target/plugin-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.arg("build").current_dir(repo_root());
        for p in PACKAGES {
            c.args(["-p", p]);
        }
        // A nested cargo must not inherit the outer build's jobserver.
        for var in ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", "CARGO_TARGET_DIR"] {
            c.env_remove(var);
        }
        let out = c
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo build for the plugins");
        assert!(
            out.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug")
    })
}

/// The library file of a Rust plugin package.
pub fn library(package: &str) -> PathBuf {
    built_plugins().join(format!("lib{}.so", package.replace('-', "_")))
}

/// Compiles `tests/plugins/c/hello.c` with `defines` into `out`.
fn compile_c(out: &Path, defines: &[&str]) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
        .arg("-I")
        .arg(repo_root().join("plugin-api/include"))
        .args(defines)
        .arg(repo_root().join("tests/plugins/c/hello.c"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// A plugin folder as an admin makes it: mode 0755, files 0755.
pub fn plugin_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("plugins");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Installs the built `packages` into `dir` as `NAME.so` (mode 0755).
pub fn install(dir: &Path, packages: &[&str]) {
    for p in packages {
        let to = dir.join(format!("{}.so", p.trim_start_matches("plugin-")));
        std::fs::copy(library(p), &to).expect("copy plugin");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

fn host(dir: &Path, config: BTreeMap<String, Value>, timeout: Duration) -> Runner {
    let scan = loader::scan(dir).expect("scan");
    Runner::Process(Box::new(HostProcess::new(
        PathBuf::from(env!("CARGO_BIN_EXE_helpdeskd")),
        scan.files,
        config,
        timeout,
    )))
}

fn event(id: i64, subject: &str) -> Value {
    json!({
        "id": id, "hook": "ticket.created",
        "ticket": {"number": format!("INC-{id:06}"), "kind": "incident", "status": "new",
                   "priority": "normal", "subject": subject, "assignee": null, "group": null,
                   "customer": "jo@customer.example", "mailbox": "support", "fields": {}},
        "message": {"message_id": format!("m{id}@customer.example"), "from": "jo@customer.example",
                    "subject": subject, "text": "hello", "visibility": "public"},
        "changes": [],
    })
}

fn call(id: i64, plugins: &[&str]) -> Call {
    Call {
        event: event(id, "Printer jam"),
        plugins: plugins.iter().map(|p| p.to_string()).collect(),
    }
}

fn outcome<'a>(results: &'a [CallResult], id: i64, plugin: &str) -> Option<&'a Outcome> {
    results
        .iter()
        .find(|r| r.event == id && r.plugin == plugin)
        .map(|r| &r.outcome)
}

// ---- the ABI and the loader, without a mail stack ----------------------------

#[tokio::test]
async fn a_plugin_written_in_c_loads_and_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    compile_c(&dir.join("hello_c.so"), &[]);
    let want = vec![
        json!({"type": "set_field", "name": "greeting", "value": "hello from C"}),
        json!({"type": "add_note", "text": "hello from C, event 41"}),
    ];

    let mut runner = host(&dir, BTreeMap::new(), Duration::from_secs(5));
    let reports = runner.load().await.expect("host starts");
    assert_eq!(reports.len(), 1);
    let meta = reports[0].result.as_ref().expect("C plugin loads");
    assert_eq!(
        (meta.name.as_str(), meta.hooks.clone()),
        ("hello-c", vec!["ticket.created".to_string()])
    );
    let results = runner
        .dispatch(vec![call(41, &["hello-c"])])
        .await
        .expect("dispatch");
    assert_eq!(
        outcome(&results, 41, "hello-c"),
        Some(&Outcome::Actions(want.clone()))
    );
    runner.shutdown().await;

    // The same library in-process.
    let scan = loader::scan(&dir).expect("scan");
    let mut inproc = Runner::InProcess(InProcess::new(
        scan.files,
        BTreeMap::new(),
        Duration::from_secs(5),
    ));
    assert!(inproc.load().await.expect("loads")[0].result.is_ok());
    let results = inproc
        .dispatch(vec![call(41, &["hello-c"])])
        .await
        .expect("dispatch");
    assert_eq!(
        outcome(&results, 41, "hello-c"),
        Some(&Outcome::Actions(want))
    );
}

#[tokio::test]
async fn bad_plugins_are_refused_with_the_reason_and_the_rest_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    install(&dir, &["plugin-noop"]);
    compile_c(&dir.join("wrong_abi.so"), &["-DHD_TEST_ABI=2"]);
    compile_c(&dir.join("no_entry.so"), &["-DHD_TEST_NO_ENTRY"]);
    std::fs::write(dir.join("junk.so"), b"not a library").expect("write");
    std::fs::set_permissions(dir.join("junk.so"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    compile_c(&dir.join("writable.so"), &[]);
    std::fs::set_permissions(
        dir.join("writable.so"),
        std::fs::Permissions::from_mode(0o775),
    )
    .expect("chmod");

    let cfg = helpdeskd::config::PluginsConfig {
        enabled: true,
        dir: dir.clone(),
        isolation: helpdeskd::config::Isolation::Process,
        timeout: Duration::from_secs(5),
        retries: 1,
        config: BTreeMap::new(),
    };
    let mut loaded =
        helpdeskd::plugins::load(&cfg, Path::new(env!("CARGO_BIN_EXE_helpdeskd"))).await;
    loaded.runner.shutdown().await;
    let by_file = |name: &str| {
        loaded
            .statuses
            .iter()
            .find(|s| s.file.file_name().is_some_and(|f| f == name))
            .unwrap_or_else(|| panic!("no status for {name}: {:?}", loaded.statuses))
            .result
            .clone()
    };
    assert_eq!(by_file("noop.so").expect("noop loads").name, "noop");
    let err = |name: &str| by_file(name).expect_err("refused");
    assert!(
        err("wrong_abi.so").contains("ABI version 2"),
        "{}",
        err("wrong_abi.so")
    );
    assert!(
        err("no_entry.so").contains("does not export `helpdeskd_plugin_v1`"),
        "{}",
        err("no_entry.so")
    );
    assert!(
        err("junk.so").starts_with("cannot load"),
        "{}",
        err("junk.so")
    );
    assert!(
        err("writable.so").contains("writable by its group"),
        "{}",
        err("writable.so")
    );
    let (ok, line) = loaded.summary(&cfg);
    assert!(
        !ok && line.starts_with("1 loaded (plugin host): noop"),
        "{line}"
    );
    assert!(line.contains("4 refused"), "{line}");

    // A folder others can write to loads nothing, and says why.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let loaded = helpdeskd::plugins::load(&cfg, Path::new(env!("CARGO_BIN_EXE_helpdeskd"))).await;
    assert!(loaded.statuses.is_empty());
    assert!(
        loaded
            .error
            .as_deref()
            .is_some_and(|e| e.contains("plugin folder refused") && e.contains("writable")),
        "{:?}",
        loaded.error
    );
}

#[tokio::test]
async fn plugins_that_panic_abort_segfault_or_hang_cost_only_the_host() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    install(
        &dir,
        &[
            "plugin-noop",
            "plugin-panic",
            "plugin-abort",
            "plugin-segfault",
            "plugin-hang",
        ],
    );
    let mut runner = host(&dir, BTreeMap::new(), Duration::from_secs(1));
    let reports = runner.load().await.expect("host starts");
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");

    // A panic is an error result; the host lives on.
    let r = runner
        .dispatch(vec![call(1, &["panic", "noop"])])
        .await
        .expect("dispatch");
    assert!(
        matches!(outcome(&r, 1, "panic"), Some(Outcome::Error(e)) if e.contains("panicked: the panic plugin panics on event 1")),
        "{r:?}"
    );
    assert_eq!(outcome(&r, 1, "noop"), Some(&Outcome::Actions(vec![])));

    // A crash or a hang is charged to the call in progress; the calls after
    // it were not made; the next batch gets a fresh host.
    for (plugin, want) in [
        ("abort", "SIGABRT"),
        ("segfault", "SIGSEGV"),
        ("hang", "did not answer within 1s"),
    ] {
        let r = runner
            .dispatch(vec![call(2, &["noop", plugin]), call(3, &["noop"])])
            .await
            .expect("dispatch");
        assert_eq!(outcome(&r, 2, "noop"), Some(&Outcome::Actions(vec![])));
        assert!(
            matches!(outcome(&r, 2, plugin), Some(Outcome::Error(e)) if e.contains(want)),
            "{plugin}: {r:?}"
        );
        assert_eq!(
            outcome(&r, 3, "noop"),
            None,
            "{plugin}: the call after the crash"
        );
        let r = runner
            .dispatch(vec![call(3, &["noop"])])
            .await
            .expect("the host is restarted");
        assert_eq!(outcome(&r, 3, "noop"), Some(&Outcome::Actions(vec![])));
    }
    if let Runner::Process(h) = &runner {
        assert_eq!(h.starts, 4, "one start, three restarts");
    }
    runner.shutdown().await;
}

#[tokio::test]
async fn in_process_a_panic_is_an_error_and_a_hang_disables_the_plugin() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    install(&dir, &["plugin-noop", "plugin-panic", "plugin-hang"]);
    let scan = loader::scan(&dir).expect("scan");
    let mut runner = Runner::InProcess(InProcess::new(
        scan.files,
        BTreeMap::new(),
        Duration::from_secs(1),
    ));
    let reports = runner.load().await.expect("loads");
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");
    let r = runner
        .dispatch(vec![call(1, &["panic", "noop"])])
        .await
        .expect("dispatch");
    assert!(
        matches!(outcome(&r, 1, "panic"), Some(Outcome::Error(e)) if e.starts_with("panicked:")),
        "{r:?}"
    );
    assert_eq!(outcome(&r, 1, "noop"), Some(&Outcome::Actions(vec![])));
    let r = runner
        .dispatch(vec![call(2, &["hang", "noop"]), call(3, &["noop"])])
        .await
        .expect("dispatch");
    assert!(
        matches!(outcome(&r, 2, "hang"), Some(Outcome::Error(e)) if e.contains("did not answer within 1s")),
        "{r:?}"
    );
    assert_eq!(outcome(&r, 2, "noop"), None, "not called after the hang");
    let r = runner
        .dispatch(vec![call(4, &["hang", "noop"])])
        .await
        .expect("dispatch");
    assert!(
        matches!(outcome(&r, 4, "hang"), Some(Outcome::Error(e)) if e.contains("disabled until helpdeskd restarts")),
        "{r:?}"
    );
    assert_eq!(outcome(&r, 4, "noop"), Some(&Outcome::Actions(vec![])));
}

async fn scalar<T: sea_orm::TryGetable>(store: &helpdeskd::store::Store, sql: &str) -> T {
    use sea_orm::ConnectionTrait;
    let db = store.conn();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index::<T>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// A dispatcher on `store` with the plugins installed in `dir`; the noop
/// plugin answers each hook with the actions `script` lists for it.
async fn scripted_dispatcher(
    store: &helpdeskd::store::Store,
    dir: &std::path::Path,
    script: Value,
) -> helpdeskd::plugins::Dispatcher {
    use helpdeskd::domain::ack::Desk as DeskId;
    use helpdeskd::domain::mail::Address;
    use helpdeskd::domain::staff::{Directory, StaffMember};

    let cfg = helpdeskd::config::PluginsConfig {
        enabled: true,
        dir: dir.to_path_buf(),
        isolation: helpdeskd::config::Isolation::Process,
        timeout: Duration::from_secs(5),
        retries: 1,
        config: BTreeMap::from([("noop".to_string(), script)]),
    };
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_helpdeskd"));
    let loaded = helpdeskd::plugins::load(&cfg, &exe).await;
    assert!(
        loaded.statuses.iter().all(|s| s.result.is_ok()),
        "{:?}",
        loaded.statuses
    );
    let subs = loaded.subscriptions();
    helpdeskd::plugins::Dispatcher::new(
        store.clone(),
        loaded.runner,
        subs,
        DeskId {
            name: "Test Desk".into(),
            address: Address::new("Test Desk", "support@example.test"),
            tag: "TEST".into(),
        },
        Directory::new(vec![StaffMember {
            name: "Ada".into(),
            email: "ada@example.test".into(),
            groups: vec![],
        }]),
        cfg.retries,
        std::sync::Arc::new(helpdeskd::clock::SystemClock),
    )
    .with_services(vec!["email".into()])
}

/// A plugin's status moves keep the SLA and supplier books as a staff
/// member's would: into pending opens a pause, out of it closes the pause,
/// and resolving ends the ticket's open supplier escalations.
#[tokio::test]
async fn status_moves_by_a_plugin_pause_the_sla_and_close_escalations() {
    use sea_orm::ConnectionTrait;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    install(&dir, &["plugin-noop"]);
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("d.db").display());
    let store = helpdeskd::store::Store::connect(&url, 2).await.expect("db");
    store.migrate().await.expect("migrate");
    let at = "'2026-11-25T10:00:00Z'";
    let sql = vec![
        format!(
            "INSERT INTO contacts (id, email, name, created_at) VALUES (1, 'jo@customer.example', 'Jo', {at})"
        ),
        format!(
            "INSERT INTO tickets (id, number, kind, subject, status, priority, customer_id, mailbox, created_at, updated_at) \
             VALUES (1, 'INC-000001', 'incident', 'Switch dead', 'open', 'normal', 1, 'support', {at}, {at})"
        ),
        format!(
            "INSERT INTO supplier_escalations (ticket_id, supplier, note, escalated_at) VALUES (1, 'NetCo', 'port 4', {at})"
        ),
    ];
    for q in sql {
        store.conn().execute_unprepared(&q).await.expect("seed");
    }
    // One event of ticket 1 at a time, answered by the plugin setting
    // `status`; returns the ticket's status afterwards.
    let plugin_sets = async |hook: &str, status: &str| {
        let mut e = event(1, "Switch dead");
        e["hook"] = json!(hook);
        e.as_object_mut().expect("object").remove("id");
        let q = format!(
            "INSERT INTO events (ticket_id, hook, payload, status, attempts, created_at, next_attempt_at) \
             VALUES (1, '{hook}', '{}', 'pending', 0, {at}, {at})",
            e.to_string().replace('\'', "''")
        );
        store.conn().execute_unprepared(&q).await.expect("event");
        let mut on = serde_json::Map::new();
        on.insert(
            hook.to_string(),
            json!([{"type": "set_status", "status": status}]),
        );
        let mut d = scripted_dispatcher(&store, &dir, json!({ "on": on })).await;
        d.drain().await.expect("drain");
        d.shutdown().await;
        scalar::<String>(&store, "SELECT status FROM tickets WHERE id = 1").await
    };
    let count = async |sql: &str| scalar::<i64>(&store, sql).await;

    // First the ticket waits for the customer: one open pause.
    assert_eq!(plugin_sets("ticket.created", "pending").await, "pending");
    assert_eq!(
        count("SELECT COUNT(*) FROM sla_pauses WHERE ticket_id = 1 AND ended_at IS NULL").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM supplier_escalations WHERE resolved_at IS NULL").await,
        1
    );

    // Then a plugin resolves it: the pause ends, and so does the escalation.
    assert_eq!(
        plugin_sets("message.received", "resolved").await,
        "resolved"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM sla_pauses WHERE ticket_id = 1").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM sla_pauses WHERE ticket_id = 1 AND ended_at IS NOT NULL").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM supplier_escalations WHERE resolved_at IS NOT NULL").await,
        1
    );
}

/// The dispatcher on SQLite, without mail: a scripted plugin's valid actions
/// are applied once, invalid ones refused and recorded, a panicking neighbour
/// retried then failed without repeating the others, events of one ticket in
/// order, and a plugin's own changes never come back to it.
#[tokio::test]
async fn the_dispatcher_validates_applies_retries_and_does_not_loop() {
    use sea_orm::ConnectionTrait;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = plugin_dir(tmp.path());
    install(&dir, &["plugin-noop", "plugin-panic"]);
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("d.db").display());
    let store = helpdeskd::store::Store::connect(&url, 2).await.expect("db");
    store.migrate().await.expect("migrate");
    let at = "'2026-11-25T10:00:00Z'";
    let mut sql = vec![format!(
        "INSERT INTO contacts (id, email, name, created_at) VALUES (1, 'jo@customer.example', 'Jo', {at})"
    )];
    for t in [1, 2] {
        sql.push(format!(
            "INSERT INTO tickets (id, number, kind, subject, status, priority, customer_id, mailbox, created_at, updated_at) \
             VALUES ({t}, 'INC-{t:06}', 'incident', 'Printer jam', 'new', 'normal', 1, 'support', {at}, {at})"
        ));
    }
    for (t, hook) in [
        (1, "ticket.created"),
        (1, "message.received"),
        (2, "ticket.created"),
    ] {
        let mut e = event(t, "Printer jam");
        e["hook"] = json!(hook);
        e.as_object_mut().expect("object").remove("id");
        sql.push(format!(
            "INSERT INTO events (ticket_id, hook, payload, status, attempts, created_at, next_attempt_at) \
             VALUES ({t}, '{hook}', '{}', 'pending', 0, {at}, {at})",
            e.to_string().replace('\'', "''")
        ));
    }
    for q in sql {
        store.conn().execute_unprepared(&q).await.expect("seed");
    }

    let script = json!({"on": {
        "ticket.created": [
            {"type": "set_priority", "priority": "high"},
            {"type": "set_status", "status": "open"},
            {"type": "set_status", "status": "new"},
            {"type": "set_priority", "priority": "asap"},
            {"type": "veto", "reason": "no"},
            {"type": "set_assignee", "assignee": "ghost@example.test"},
            {"type": "set_field", "name": "site", "value": "Berlin"},
            {"type": "set_service", "service": "email"},
            {"type": "set_service", "service": "nope"},
            {"type": "add_note", "text": "scripted note"},
            {"type": "send_mail", "to": ["boss@example.test"], "subject": "Heads up", "body": "b"}
        ],
        "message.received": [{"type": "set_field", "name": "seen", "value": "yes"}],
        "ticket.updated": [{"type": "add_note", "text": "loop!"}]
    }});
    let dispatcher = || scripted_dispatcher(&store, &dir, script.clone());
    let mut d = dispatcher().await;
    let stats = d.drain().await.expect("drain");
    d.shutdown().await;
    assert_eq!(stats.failed, 2, "{stats:?}");

    let count = async |sql: &str| scalar::<i64>(&store, sql).await;
    assert_eq!(
        scalar::<String>(
            &store,
            "SELECT priority || ' ' || status || ' ' || fields FROM tickets WHERE id = 1"
        )
        .await,
        r#"high open {"seen":"yes","site":"Berlin"}"#
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM tickets WHERE id = 1 AND assignee IS NULL").await,
        1
    );
    // A service set by a plugin arms the SLA job to compute the due times.
    assert_eq!(
        count("SELECT COUNT(*) FROM tickets WHERE id = 1 AND service = 'email' AND sla_next_at IS NOT NULL").await,
        1
    );
    // Applied once per ticket although the panic plugin made the events run again.
    assert_eq!(count("SELECT COUNT(*) FROM messages WHERE body_text = 'scripted note' AND visibility = 'internal'").await, 2);
    assert_eq!(count("SELECT COUNT(*) FROM outbox WHERE recipients = 'boss@example.test' AND kind = 'plugin-mail'").await, 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE subject = '[TEST INC-000001] Heads up'").await,
        1
    );
    // The plugin's own changes raised events for others, never for itself.
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE body_text = 'loop!'").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE hook = 'ticket.updated' AND origin = 'noop' AND status = 'done'").await,
        3,
        "one per event whose actions changed the ticket"
    );
    // Five refusals per ticket.created, each with its reason.
    let errors: Vec<String> = {
        let db = store.conn();
        db.query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT error FROM plugin_errors WHERE plugin = 'noop' AND event_id = 1".to_string(),
        ))
        .await
        .expect("errors")
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect()
    };
    assert_eq!(errors.len(), 5, "{errors:?}");
    for want in [
        "set_service refused: unknown service \"nope\"",
        "set_status refused: a ticket cannot go back to new",
        "set_priority refused: unknown priority \"asap\"",
        "veto refused: ticket.created is not a gate hook",
        "set_assignee refused: unknown assignee \"ghost@example.test\"",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want}: {errors:?}"
        );
    }
    // The panic plugin failed each ticket.created twice (1 + 1 retry).
    assert_eq!(
        scalar::<String>(
            &store,
            "SELECT status || ' ' || last_error FROM events WHERE id = 1"
        )
        .await,
        "failed panic: panicked: the panic plugin panics on event 1"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM plugin_errors WHERE plugin = 'panic'").await,
        4
    );
    // Per-ticket order: the message event of ticket 1 waited for its
    // ticket.created to finish.
    assert_eq!(
        count("SELECT COUNT(*) FROM events a, events b WHERE a.id = 1 AND b.id = 2 AND b.done_at >= a.done_at AND b.status = 'done'").await,
        1
    );

    // A retry calls only the plugin that failed.
    assert_eq!(
        helpdeskd::plugins::dispatch::retry(
            store.conn(),
            Some(1),
            helpdeskd::clock::Clock::now(&helpdeskd::clock::SystemClock)
        )
        .await
        .expect("retry"),
        1
    );
    let mut d = dispatcher().await;
    let stats = d.drain().await.expect("drain");
    d.shutdown().await;
    assert_eq!((stats.failed, stats.applied), (1, 0), "{stats:?}");
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE body_text = 'scripted note'").await,
        2
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM plugin_errors WHERE plugin = 'panic'").await,
        6
    );
}

// ---- end to end on the mail stack -------------------------------------------

struct RoutedDesk {
    desk: Desk,
    ada: String,
    ada_addr: String,
}

/// A desk with one staff member (Ada, network) and keyword-router sending
/// VPN tickets to her at high priority; `more` plugins installed besides.
async fn routed_desk(backend: Backend, more: &[&str]) -> RoutedDesk {
    let ada = unique("ada");
    let ada_addr = add_user(&ada);
    let extra = format!(
        r#"[[staff]]
name = "Ada Lovelace"
email = "{ada_addr}"
groups = ["network"]

[plugins]
dir = "plugins"
timeout_secs = 1
retries = 1

[plugins.config.keyword-router]
[[plugins.config.keyword-router.rule]]
name = "network"
keywords = ["vpn", "wifi"]
kind = "incident"
priority = "high"
assignee = "{ada_addr}"

[[plugins.config.keyword-router.rule]]
name = "printers"
keywords = ["printer"]
priority = "low"
assignee = "ghost@example.test"
"#
    );
    let desk = Desk::with(
        backend,
        DeskOptions {
            extra_config: extra,
            ..DeskOptions::default()
        },
    )
    .await;
    let dir = plugin_dir(desk.dir.path());
    let mut packages = vec!["keyword-router"];
    packages.extend_from_slice(more);
    install(&dir, &packages);
    RoutedDesk {
        desk,
        ada,
        ada_addr,
    }
}

/// The mails in `user`'s INBOX whose body contains `needle`.
async fn mails_with(user: &str, needle: &str) -> Vec<String> {
    messages(user, "INBOX")
        .await
        .into_iter()
        .filter(|m| body(m).contains(needle) || m.contains(needle))
        .collect()
}

/// A customer mail → a ticket → keyword-router sets priority and assignee →
/// the assignee's notification shows them.
async fn keyword_router_routes_a_new_ticket(backend: Backend) {
    let RoutedDesk {
        desk,
        ada,
        ada_addr,
    } = routed_desk(backend, &[]).await;
    let out = desk.cli(&["plugins", "list"]);
    assert!(
        out.lines().any(|l| l.starts_with("keyword-router")
            && l.contains("ticket.created")
            && l.contains("loaded")),
        "{out}"
    );
    let check = desk.cli_output(&["check"]);
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("plugins") && l.contains("keyword-router")),
        "{check}"
    );

    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    desk.send_from(
        &cust_addr,
        "VPN keeps dropping",
        &format!("{cust}.1@example.test"),
        "",
        "Since this morning the VPN drops every five minutes.",
    )
    .await;
    desk.send_from(
        &cust_addr,
        "Printer",
        &format!("{cust}.2@example.test"),
        "",
        "The printer is out of paper.",
    )
    .await;
    wait_for_messages(&desk.user, "INBOX", 2, WAIT).await;
    let r = desk.run_once();
    assert_eq!(r["new_tickets"], 2, "{r}");
    assert_eq!(r["plugins"]["failed"], 0, "{r}");

    let tickets = desk.tickets();
    let find = |subject: &str| {
        tickets
            .iter()
            .find(|t| t["subject"] == subject)
            .and_then(|t| t["number"].as_str())
            .unwrap_or_else(|| panic!("no ticket {subject}: {tickets:?}"))
            .to_string()
    };
    let vpn = desk.ticket(&find("VPN keeps dropping"));
    assert_eq!(vpn["priority"], "high", "{vpn}");
    assert_eq!(vpn["assignee"], ada_addr.as_str(), "{vpn}");
    let notes: Vec<&Value> = vpn["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["visibility"] == "internal"
                && m["from"].as_str().is_some_and(|f| f.contains("plugin"))
        })
        .collect();
    assert!(
        notes.iter().any(|m| m["body"]
            .as_str()
            .is_some_and(|b| b.contains("keyword-router: network matched (keyword \"vpn\")"))),
        "{vpn}"
    );
    // An assignee who is not staff is refused and recorded; the rest of the
    // rule applies.
    let printer = desk.ticket(&find("Printer"));
    assert_eq!(printer["priority"], "low", "{printer}");
    assert!(printer["assignee"].is_null(), "{printer}");
    let list = desk.cli(&["plugins", "list"]);
    assert!(
        list.contains("last error:")
            && list.contains("set_assignee refused: unknown assignee \"ghost@example.test\""),
        "{list}"
    );

    // The assignee's notification, sent in the same cycle, shows the routing.
    let number = vpn["number"].as_str().expect("number").to_string();
    let mut found = Vec::new();
    for _ in 0..80 {
        found = mails_with(&ada, "assigned to you").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mail = found
        .first()
        .unwrap_or_else(|| panic!("{ada} got no assignment mail"));
    let text = body(mail);
    assert!(
        text.contains(&format!(
            "{number} was assigned to you by the plugin keyword-router"
        )),
        "{text}"
    );
    assert!(text.contains("Priority: high"), "{text}");
    assert!(text.contains(&format!("Assignee: {ada_addr}")), "{text}");
    assert!(
        header(mail, "Subject").is_some_and(|s| s.contains(&number)),
        "{mail}"
    );
    // Like every staff notification, it carries Ada's reply token, so her
    // reply to it is proof enough to act on the ticket.
    assert!(
        header(mail, "Reply-To").is_some_and(|r| r.contains(&format!("+{number}."))),
        "{mail}"
    );
    desk.finish().await;
}
both_backends!(keyword_router, super::keyword_router_routes_a_new_ticket);

/// With plugins that panic, abort, segfault and hang installed next to
/// keyword-router, the daemon keeps reading and answering mail, routes every
/// ticket, and marks the misbehaving plugins' events failed with the reason;
/// `plugins retry` sends them again.
async fn misbehaving_plugins_stop_nothing(backend: Backend) {
    let RoutedDesk { desk, ada, .. } = routed_desk(
        backend,
        &[
            "plugin-panic",
            "plugin-abort",
            "plugin-segfault",
            "plugin-hang",
        ],
    )
    .await;
    let mut daemon = desk.spawn();
    let cust = unique("cust");
    let cust_addr = add_user(&cust);
    for i in 0..3 {
        desk.send_from(
            &cust_addr,
            &format!("wifi down {i}"),
            &format!("{cust}.{i}@example.test"),
            "",
            "No wifi on floor 3.",
        )
        .await;
    }
    // Every customer gets the acknowledgement: mail keeps flowing.
    let acks = wait_for_messages(&cust, "INBOX", 3, Duration::from_secs(90)).await;
    assert_eq!(acks.len(), 3, "acknowledgements: {}", desk.daemon_log());

    // Every ticket is routed and every bad plugin's event fails with its reason.
    let routed = eventually(Duration::from_secs(120), async || {
        let failed = desk.cli(&["plugins", "failed", "--json"]);
        let failed: Vec<Value> = serde_json::from_str(&failed).unwrap_or_default();
        let tickets = desk.tickets();
        tickets.len() == 3 && tickets.iter().all(|t| t["priority"] == "high") && failed.len() == 3
    })
    .await;
    assert!(
        routed,
        "tickets {:?}\nfailed {}\n{}",
        desk.tickets(),
        desk.cli(&["plugins", "failed"]),
        desk.daemon_log()
    );
    assert!(
        daemon.try_wait().expect("daemon status").is_none(),
        "the daemon died"
    );
    let failed: Vec<Value> =
        serde_json::from_str(&desk.cli(&["plugins", "failed", "--json"])).expect("json");
    for f in &failed {
        assert_eq!(f["hook"], "ticket.created", "{f}");
        let e = f["error"].as_str().unwrap_or("");
        assert!(
            ["panic:", "abort:", "segfault:", "hang:"]
                .iter()
                .any(|p| e.starts_with(p)),
            "{f}"
        );
    }
    for t in desk.tickets() {
        let t = desk.ticket(t["number"].as_str().expect("number"));
        assert!(t["assignee"].is_string(), "{t}");
    }
    let assigned = mails_with(&ada, "assigned to you").await;
    assert_eq!(assigned.len(), 3, "{}", desk.daemon_log());

    let list = desk.cli(&["plugins", "list"]);
    for (name, why) in [
        ("panic", "panicked"),
        ("abort", "SIGABRT"),
        ("segfault", "SIGSEGV"),
        ("hang", "did not answer within 1s"),
    ] {
        let mut lines = list.lines().skip_while(|l| !l.starts_with(name));
        assert!(lines.next().is_some_and(|l| l.contains("loaded")), "{list}");
        assert!(
            lines
                .next()
                .is_some_and(|l| l.contains("last error") && l.contains(why)),
            "{name}: {list}"
        );
    }

    // Retried events fail again (the plugins still misbehave), and nothing
    // that succeeded is applied twice.
    let before: BTreeMap<i64, i64> = failed
        .iter()
        .map(|f| {
            (
                f["id"].as_i64().unwrap_or(0),
                f["attempts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let out = desk.cli(&["plugins", "retry", "--all"]);
    assert!(out.starts_with("3 event(s) pending again"), "{out}");
    let again = eventually(Duration::from_secs(120), async || {
        let failed: Vec<Value> =
            serde_json::from_str(&desk.cli(&["plugins", "failed", "--json"])).unwrap_or_default();
        failed.len() == 3
            && failed.iter().all(|f| {
                let id = f["id"].as_i64().unwrap_or(0);
                f["attempts"].as_i64() > before.get(&id).copied()
            })
    })
    .await;
    assert!(again, "{}", desk.cli(&["plugins", "failed"]));
    assert_eq!(mails_with(&ada, "assigned to you").await.len(), 3);
    assert!(
        daemon.try_wait().expect("daemon status").is_none(),
        "the daemon died"
    );
    drop(daemon);
    desk.finish().await;
}
both_backends!(misbehaving_plugins, super::misbehaving_plugins_stop_nothing);
