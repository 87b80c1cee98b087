//! Plugins: shared libraries in `[plugins] dir` that receive hook events and
//! answer with actions (see the `plugin-api` crate for the contract).
//!
//! - `loader`: finding the files (ownership and mode checks) and loading a
//!   library (symbol, ABI version, metadata, init).
//! - `host`: `helpdeskd plugin-host`, the child process that loads and calls
//!   the plugins by default, so a crash or a hang costs only that process.
//! - `protocol`: the length-prefixed JSON frames on the host's pipes.
//! - `runner`: the supervisor of the host process (timeouts, restarts,
//!   crash attribution), or in-process calls for trusted plugins.
//! - `dispatch`: the event outbox drained into the plugins, actions
//!   validated and applied in one transaction, retries and failures.
//!
//! # Raising an event
//!
//! Whoever changes a ticket writes the event in the same transaction, with
//! [`event_row`] (ingest does this for `ticket.created`, `ticket.updated`,
//! `ticket.resolved` and `message.received`):
//!
//! ```ignore
//! let payload = json!({"hook": hook, "ticket": {...}, "message": {...}, "changes": [...]});
//! event::Entity::insert_many(vec![tickets::event_row(Some(ticket_id), hook, payload.to_string(), now)])
//!     .exec_without_returning(&txn).await?;
//! ```
//!
//! The payload is plugin-api's `Event` without `id` (the dispatcher fills
//! it in from the row). A new hook is a constant in `plugin_api::hooks` and
//! an `event_row` call where it happens; a gate hook is also listed in
//! `plugin_api::hooks::GATES`, and its raiser reads the verdict with
//! [`gate_outcome`].

pub mod dispatch;
pub mod host;
pub mod loader;
pub mod protocol;
pub mod runner;
mod satisfaction;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plugin_api::Metadata;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::clock::Clock;
use crate::config::{Config, Isolation, PluginsConfig};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{event, plugin_error, ticket};
pub use dispatch::{DispatchStats, Dispatcher, Veto};
use protocol::LoadReport;
use runner::{HostProcess, InProcess, Runner};

/// One plugin file as `helpdeskd plugins list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    pub file: PathBuf,
    /// Loaded: the metadata; refused: why.
    pub result: std::result::Result<Metadata, String>,
}

impl PluginStatus {
    /// The plugin's name, or its file's stem when it was refused.
    pub fn name(&self) -> String {
        match &self.result {
            Ok(m) => m.name.clone(),
            Err(_) => self
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().trim_start_matches("lib").to_string())
                .unwrap_or_default(),
        }
    }
}

/// The plugins of a configuration, loaded (in the host or in-process).
pub struct Loaded {
    pub statuses: Vec<PluginStatus>,
    /// The whole folder was refused, or the host could not start.
    pub error: Option<String>,
    pub runner: Runner,
}

impl Loaded {
    /// hook → names of the loaded plugins that want it.
    pub fn subscriptions(&self) -> BTreeMap<String, Vec<String>> {
        let mut subs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &self.statuses {
            if let Ok(m) = &s.result {
                for h in &m.hooks {
                    let names = subs.entry(h.clone()).or_default();
                    if !names.contains(&m.name) {
                        names.push(m.name.clone());
                    }
                }
            }
        }
        for names in subs.values_mut() {
            names.sort();
        }
        subs
    }

    /// The `helpdeskd check` line: ok when nothing was refused.
    pub fn summary(&self, cfg: &PluginsConfig) -> (bool, String) {
        if !cfg.enabled {
            return (true, "disabled ([plugins] enabled = false)".into());
        }
        let loaded: Vec<String> = self
            .statuses
            .iter()
            .filter_map(|s| s.result.as_ref().ok())
            .map(|m| format!("{} {}", m.name, m.version))
            .collect();
        let refused: Vec<String> = self
            .statuses
            .iter()
            .filter_map(|s| {
                s.result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", s.file.display()))
            })
            .collect();
        let mode = match cfg.isolation {
            Isolation::Process => "plugin host",
            Isolation::InProcess => "in-process",
        };
        let mut text = if loaded.is_empty() {
            format!("no plugins in {}", cfg.dir.display())
        } else {
            format!("{} loaded ({mode}): {}", loaded.len(), loaded.join(", "))
        };
        if let Some(e) = &self.error {
            text.push_str(&format!("; {e}"));
        }
        if !refused.is_empty() {
            text.push_str(&format!(
                "; {} refused: {}",
                refused.len(),
                refused.join("; ")
            ));
        }
        (self.error.is_none() && refused.is_empty(), text)
    }
}

/// Loads the plugins to see what loads, for `helpdeskd check` and
/// `plugins list`; stops the host again. Returns the check line.
pub async fn check(cfg: &PluginsConfig, exe: &Path) -> (bool, String) {
    let mut loaded = load(cfg, exe).await;
    loaded.runner.shutdown().await;
    loaded.summary(cfg)
}

/// The program to run as plugin host: this very binary.
pub fn host_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("helpdeskd"))
}

/// Scans the folder and loads its plugins as configured; never fails: what
/// cannot load is reported and the desk runs on without it.
pub async fn load(cfg: &PluginsConfig, exe: &Path) -> Loaded {
    let (files, mut statuses, mut error) = if !cfg.enabled {
        (Vec::new(), Vec::new(), None)
    } else {
        match loader::scan(&cfg.dir) {
            Ok(scan) => (
                scan.files,
                scan.refused.into_iter().map(status).collect(),
                None,
            ),
            Err(e) => (Vec::new(), Vec::new(), Some(e)),
        }
    };
    let mut runner = match cfg.isolation {
        Isolation::Process => Runner::Process(Box::new(HostProcess::new(
            exe.to_path_buf(),
            files.clone(),
            cfg.config.clone(),
            cfg.timeout,
        ))),
        Isolation::InProcess => Runner::InProcess(InProcess::new(
            files.clone(),
            cfg.config.clone(),
            cfg.timeout,
        )),
    };
    if !files.is_empty() {
        match runner.load().await {
            Ok(reports) => statuses.extend(reports.into_iter().map(status)),
            Err(runner::HostDown(e)) => {
                error = Some(e.clone());
                statuses.extend(files.iter().map(|f| PluginStatus {
                    file: f.clone(),
                    result: Err(e.clone()),
                }));
            }
        }
    }
    for s in &statuses {
        match &s.result {
            Ok(m) => {
                tracing::info!(plugin = m.name, version = m.version, hooks = ?m.hooks, "plugin loaded")
            }
            Err(e) => tracing::warn!(file = %s.file.display(), error = e, "plugin refused"),
        }
    }
    if let Some(e) = &error {
        tracing::warn!(error = e, "plugins not loaded");
    }
    statuses.sort_by(|a, b| a.file.cmp(&b.file));
    Loaded {
        statuses,
        error,
        runner,
    }
}

fn status(r: LoadReport) -> PluginStatus {
    PluginStatus {
        file: r.file,
        result: r.result,
    }
}

/// Loads the plugins of `config` and builds the dispatcher over them.
pub async fn dispatcher(
    config: &Config,
    store: Store,
    clock: Arc<dyn Clock>,
    exe: &Path,
) -> (Dispatcher, Vec<PluginStatus>) {
    let loaded = load(&config.plugins, exe).await;
    let subscriptions = loaded.subscriptions();
    let statuses = loaded.statuses.clone();
    // Without the token secret, notices go out without a reply token.
    let key = crate::token_secret::token_key(&config.token_secret_file).ok();
    let d = Dispatcher::new(
        store,
        loaded.runner,
        subscriptions,
        config.desk.clone(),
        config.staff.clone(),
        config.plugins.retries,
        clock,
    )
    .with_token_key(key)
    .with_relationship(config.relationship.clone())
    .with_services(
        config
            .levels
            .services
            .iter()
            .map(|s| s.name.clone())
            .collect(),
    );
    (d, statuses)
}

/// The last error recorded for each plugin (calls and refused actions).
pub async fn last_errors<C: ConnectionTrait>(
    conn: &C,
) -> Result<BTreeMap<String, plugin_error::Model>> {
    let names: Vec<String> = plugin_error::Entity::find()
        .select_only()
        .column(plugin_error::Column::Plugin)
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(e) = plugin_error::Entity::find()
            .filter(plugin_error::Column::Plugin.eq(&name))
            .order_by_desc(plugin_error::Column::Id)
            .one(conn)
            .await?
        {
            out.insert(name, e);
        }
    }
    Ok(out)
}

/// A failed event as `helpdeskd plugins failed` lists it.
#[derive(Debug, Clone)]
pub struct FailedEvent {
    pub event: event::Model,
    pub ticket: Option<String>,
}

pub async fn failed_events<C: ConnectionTrait>(conn: &C) -> Result<Vec<FailedEvent>> {
    let rows = event::Entity::find()
        .filter(event::Column::Status.eq("failed"))
        .order_by_asc(event::Column::Id)
        .all(conn)
        .await?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.ticket_id).collect();
    let mut numbers = BTreeMap::new();
    for chunk in ids.chunks(1000) {
        let t: Vec<(i64, String)> = ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .column(ticket::Column::Number)
            .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        numbers.extend(t);
    }
    Ok(rows
        .into_iter()
        .map(|event| FailedEvent {
            ticket: event.ticket_id.and_then(|t| numbers.get(&t).cloned()),
            event,
        })
        .collect())
}

/// The verdict on a gate event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Not every plugin has answered yet.
    Pending,
    /// No plugin vetoed.
    Passed,
    /// At least one plugin vetoed, with its reason.
    Vetoed(Vec<Veto>),
    /// The event failed (a plugin kept failing); the raiser decides.
    Failed(String),
}

/// Reads the verdict on the gate event `id` (see `plugin_api::hooks::GATES`).
pub async fn gate_outcome<C: ConnectionTrait>(conn: &C, id: i64) -> Result<GateOutcome> {
    let row = event::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
    let vetoes: Vec<Veto> = row
        .vetoes
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    Ok(match row.status.as_str() {
        _ if !vetoes.is_empty() => GateOutcome::Vetoed(vetoes),
        "done" => GateOutcome::Passed,
        "failed" => GateOutcome::Failed(row.last_error.unwrap_or_default()),
        _ => GateOutcome::Pending,
    })
}
