//! The event dispatcher: drains the event outbox into the plugins and
//! applies what they answer.
//!
//! Each round takes pending events in id order, at most one per ticket (an
//! event waits while an earlier event of its ticket is pending), claims them
//! (several daemons on one database: each event goes to one), sends each
//! to the plugins subscribed to its hook that have not handled it yet, and
//! writes the whole round in ONE transaction: every valid action, the
//! refused ones as plugin errors, the new events the changes cause, and each
//! event's new state. A plugin that fails (error, panic, crash, timeout) is
//! called again for that event in the next round, up to `retries` times
//! more; after that the event is marked failed with the reason, while the
//! plugins that succeeded keep their result. Delivery is therefore at least
//! once per plugin, in order per ticket.
//!
//! Loop rule: changes made by a plugin's actions raise `ticket.updated` (and
//! `ticket.resolved`) events with the plugin as their origin; such an event
//! is not sent to its origin plugin, and the actions it causes raise no
//! further events. Plugins can react to each other once, never in a loop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use plugin_api::{Action, hooks};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::protocol::{Call, Outcome};
use super::runner::{HostDown, Runner};
use crate::clock::Clock;
use crate::domain::ack::{Desk, Outgoing};
use crate::domain::change;
use crate::domain::mail::Address;
use crate::domain::render::render;
use crate::domain::staff::{Assignee, Directory};
use crate::domain::threading::tagged_subject;
use crate::domain::ticket::{ContactId, Status, TicketNumber, Visibility};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{counter, event, message, outbox, plugin_error, ticket};
use crate::store::rows::{Note, Shown, insert_chunks, note_row, outbound_row, outbox_row};
use crate::tickets::sla::on_status_move;

/// Pending rows looked at per round.
const SCAN: u64 = 2000;
/// Events sent per round (one frame to the host).
const BATCH: usize = 500;

/// What the dispatcher did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    /// Events finished (every subscribed plugin handled them).
    pub done: u64,
    /// Events marked failed.
    pub failed: u64,
    /// Plugin calls made.
    pub calls: u64,
    /// Calls that failed (error, panic, crash, timeout).
    pub call_errors: u64,
    /// Actions applied.
    pub applied: u64,
    /// Actions refused.
    pub refused: u64,
    /// Mails queued in the outbox.
    pub mails: u64,
}

impl DispatchStats {
    fn merge(&mut self, o: DispatchStats) {
        self.done += o.done;
        self.failed += o.failed;
        self.calls += o.calls;
        self.call_errors += o.call_errors;
        self.applied += o.applied;
        self.refused += o.refused;
        self.mails += o.mails;
    }
}

/// Which plugins are done with an event and how often each failed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(default)]
    pub done: Vec<String>,
    #[serde(default)]
    pub failures: BTreeMap<String, u32>,
}

/// One veto of a gate event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Veto {
    pub plugin: String,
    pub reason: String,
}

pub struct Dispatcher {
    store: Store,
    runner: Runner,
    /// hook → plugin names, sorted.
    subscriptions: BTreeMap<String, Vec<String>>,
    desk: Desk,
    staff: Directory,
    retries: u32,
    clock: Arc<dyn Clock>,
    /// Signs the reply token of assignment notices, so a staff reply to one
    /// proves its sender like a reply to any other desk notification.
    key: Option<crate::domain::token::TokenKey>,
    /// The configured services, for `set_service`.
    services: Vec<String>,
    /// The rating question when a plugin resolves a ticket.
    relationship: crate::domain::satisfaction::Policy,
}

enum Round {
    Idle,
    Ran(DispatchStats),
    HostDown(String),
}

impl Dispatcher {
    pub fn new(
        store: Store,
        runner: Runner,
        subscriptions: BTreeMap<String, Vec<String>>,
        desk: Desk,
        staff: Directory,
        retries: u32,
        clock: Arc<dyn Clock>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            runner,
            subscriptions,
            desk,
            staff,
            retries,
            clock,
            key: None,
            services: Vec::new(),
            relationship: Default::default(),
        }
    }

    pub fn with_relationship(mut self, p: crate::domain::satisfaction::Policy) -> Dispatcher {
        self.relationship = p;
        self
    }

    pub fn with_services(mut self, services: Vec<String>) -> Dispatcher {
        self.services = services;
        self
    }

    pub fn with_token_key(mut self, key: Option<crate::domain::token::TokenKey>) -> Dispatcher {
        self.key = key;
        self
    }

    /// Dispatches until no event is due (or the plugin host cannot start).
    pub async fn drain(&mut self) -> Result<DispatchStats> {
        let mut total = DispatchStats::default();
        loop {
            match self.round().await? {
                Round::Idle => return Ok(total),
                Round::Ran(s) => total.merge(s),
                Round::HostDown(e) => {
                    warn!(error = e, "plugin host unavailable; events stay pending");
                    return Ok(total);
                }
            }
        }
    }

    /// The dispatcher task of the daemon: drains every second until shutdown;
    /// wakes the outbox sender when plugins queued mail.
    pub async fn run(
        mut self,
        outbox_wake: Arc<tokio::sync::Notify>,
        mut shutdown: crate::shutdown::Shutdown,
    ) {
        loop {
            match self.drain().await {
                Ok(s) if s.mails > 0 => outbox_wake.notify_one(),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "plugin dispatch failed; retrying"),
            }
            if shutdown.sleep(std::time::Duration::from_secs(1)).await {
                break;
            }
        }
        self.runner.shutdown().await;
    }

    /// Stops the plugin host.
    pub async fn shutdown(&mut self) {
        self.runner.shutdown().await;
    }

    /// The plugins still owed this event: subscribed, not its origin, not
    /// done with it.
    fn owed(&self, row: &event::Model, delivery: &Delivery) -> Vec<String> {
        self.subscriptions
            .get(&row.hook)
            .into_iter()
            .flatten()
            .filter(|p| Some(p.as_str()) != row.origin.as_deref())
            .filter(|p| !delivery.done.contains(p))
            .cloned()
            .collect()
    }

    /// The plugins to call now: those owed the event that have retries left;
    /// plugins that failed it before go last, so they cannot keep the
    /// others from it.
    fn targets(&self, owed: &[String], delivery: &Delivery) -> Vec<String> {
        let failures = |p: &String| delivery.failures.get(p).copied().unwrap_or(0);
        let mut t: Vec<String> = owed
            .iter()
            .filter(|p| failures(p) <= self.retries)
            .cloned()
            .collect();
        t.sort_by_key(|p| (failures(p), p.clone()));
        t
    }

    async fn round(&mut self) -> Result<Round> {
        let now = self.clock.now();
        let work = self.select(now).await?;
        if work.is_empty() {
            return Ok(Round::Idle);
        }
        let calls: Vec<Call> = work
            .iter()
            .filter(|w| !w.targets.is_empty())
            .filter_map(|w| {
                Some(Call {
                    event: w.event.as_ref().ok()?.clone(),
                    plugins: w.targets.clone(),
                })
            })
            .collect();
        let ids: Vec<i64> = work.iter().map(|w| w.row.id).collect();
        let results = if calls.is_empty() {
            Vec::new()
        } else {
            let (store, clock) = (&self.store, &self.clock);
            let renewing = async {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(e) = renew(store.conn(), &ids, clock.now()).await {
                        warn!(error = %e, "plugin events: claim not renewed");
                    }
                }
            };
            let dispatched = tokio::select! {
                r = self.runner.dispatch(calls) => r,
                () = renewing => unreachable!("the renewal loop never ends"),
            };
            match dispatched {
                Ok(r) => r,
                Err(HostDown(e)) => {
                    release(self.store.conn(), &ids, now).await?;
                    return Ok(Round::HostDown(e));
                }
            }
        };
        let mut outcomes: HashMap<(i64, String), Outcome> = HashMap::new();
        let calls = results.len() as u64;
        let called: Vec<(String, bool)> = results
            .iter()
            .map(|r| (r.plugin.clone(), matches!(r.outcome, Outcome::Actions(_))))
            .collect();
        for r in results {
            outcomes.insert((r.event, r.plugin), r.outcome);
        }
        let mut stats = self.settle(work, outcomes, now).await?;
        for (plugin, ok) in called {
            crate::metrics::get().plugin_call(&plugin, ok);
        }
        stats.calls = calls;
        if stats.applied + stats.refused + stats.failed > 0 {
            info!(
                done = stats.done,
                failed = stats.failed,
                applied = stats.applied,
                refused = stats.refused,
                "plugin events dispatched"
            );
        }
        Ok(Round::Ran(stats))
    }

    /// The events due now, at most one per ticket (the earliest pending),
    /// each with the plugins owed it and those to call now, claimed for
    /// this daemon (see [`claim`]).
    pub(crate) async fn select(&self, now: DateTime<Utc>) -> Result<Vec<Work>> {
        let mut work = self.due(now).await?;
        let ids: Vec<i64> = work.iter().map(|w| w.row.id).collect();
        let claimed = claim(self.store.conn(), &ids, now).await?;
        work.retain(|w| claimed.contains(&w.row.id));
        Ok(work)
    }

    /// The events due now, before the claim.
    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Work>> {
        let rows = event::Entity::find()
            .filter(event::Column::Status.eq("pending"))
            .order_by_asc(event::Column::Id)
            .limit(SCAN)
            .all(self.store.conn())
            .await?;
        let mut busy: HashSet<i64> = HashSet::new();
        let mut work = Vec::new();
        for row in rows {
            if let Some(t) = row.ticket_id
                && !busy.insert(t)
            {
                continue;
            }
            if row.next_attempt_at > now {
                continue;
            }
            let delivery: Delivery = row
                .delivery
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            let event = match serde_json::from_str::<Value>(&row.payload) {
                Ok(Value::Object(mut map)) => {
                    map.insert("id".into(), json!(row.id));
                    map.entry("hook").or_insert_with(|| json!(row.hook));
                    Ok(Value::Object(map))
                }
                Ok(_) => Err("the payload is not a JSON object".to_string()),
                Err(e) => Err(format!("the payload is not JSON: {e}")),
            };
            let owed = self.owed(&row, &delivery);
            let targets = self.targets(&owed, &delivery);
            work.push(Work {
                row,
                event,
                delivery,
                owed,
                targets,
            });
            if work.len() >= BATCH {
                break;
            }
        }
        Ok(work)
    }

    /// Writes a round in one transaction: the plugins' answers (`outcomes`,
    /// by event and plugin) applied, and each event's new state.
    pub(crate) async fn settle(
        &self,
        work: Vec<Work>,
        mut outcomes: HashMap<(i64, String), Outcome>,
        now: DateTime<Utc>,
    ) -> Result<DispatchStats> {
        let mut stats = DispatchStats::default();
        // Lock order as in ingest: the message counter (when this round may
        // write messages), then the tickets; so the two writers never deadlock
        // on PostgreSQL, and a ticket cannot change under the round.
        let writes_messages = outcomes.values().any(|o| match o {
            Outcome::Actions(a) => a.iter().any(|a| {
                matches!(
                    a.get("type").and_then(Value::as_str),
                    Some("add_note" | "send_mail" | "set_assignee")
                )
            }),
            Outcome::Error(_) => false,
        });
        let txn = self.store.begin().await?;
        let first_message = if writes_messages {
            Some(Store::counter_next(&txn, "message").await?)
        } else {
            None
        };
        let mut ctx = Apply::load(&txn, &work, now, first_message).await?;
        let mut finished: Vec<i64> = Vec::new();
        for w in work {
            let id = w.row.id;
            match self.settle_one(&mut ctx, w, &mut outcomes, &mut stats)? {
                Settled::Done => finished.push(id),
                Settled::State(state) => state.write(&txn, id, now).await?,
            }
        }
        stats.mails = ctx.mails.len() as u64;
        ctx.write(&txn, self, now).await?;
        for chunk in finished.chunks(1000) {
            event::Entity::update_many()
                .col_expr(event::Column::Status, Expr::value("done"))
                .col_expr(
                    event::Column::Attempts,
                    Expr::col(event::Column::Attempts).add(1),
                )
                .col_expr(event::Column::DoneAt, Expr::value(now))
                .filter(event::Column::Id.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(stats)
    }

    /// Applies the answers to one event and says what becomes of it.
    fn settle_one(
        &self,
        ctx: &mut Apply,
        w: Work,
        outcomes: &mut HashMap<(i64, String), Outcome>,
        stats: &mut DispatchStats,
    ) -> Result<Settled> {
        let Work {
            row,
            event,
            mut delivery,
            owed,
            targets,
        } = w;
        let event = match event {
            Ok(e) => e,
            Err(reason) => {
                stats.failed += 1;
                return Ok(Settled::State(EventState {
                    status: "failed",
                    attempts: row.attempts,
                    last_error: Some(reason),
                    delivery: None,
                    vetoes: None,
                }));
            }
        };
        let mut ran = false;
        let mut last_error = row.last_error.clone();
        let mut vetoes: Vec<Veto> = row
            .vetoes
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        for plugin in &targets {
            match outcomes.remove(&(row.id, plugin.clone())) {
                None => {}
                Some(Outcome::Actions(actions)) => {
                    ran = true;
                    let s = ctx.apply(self, &row, &event, plugin, actions, &mut vetoes)?;
                    stats.applied += s.0;
                    stats.refused += s.1;
                    delivery.done.push(plugin.clone());
                }
                Some(Outcome::Error(e)) => {
                    ran = true;
                    stats.call_errors += 1;
                    let n = delivery.failures.entry(plugin.clone()).or_insert(0);
                    *n += 1;
                    warn!(
                        event = row.id,
                        ticket = row.ticket_id,
                        plugin,
                        error = e,
                        attempt = *n,
                        "plugin call failed"
                    );
                    ctx.error(plugin, &row, format!("{} event {}: {e}", row.hook, row.id));
                    last_error = Some(format!("{plugin}: {e}"));
                }
            }
        }
        ctx.notify_assignments(self, &row, &event)?;
        let status = event_status(&owed, &delivery, self.retries);
        match status {
            "done" => stats.done += 1,
            "failed" => {
                stats.failed += 1;
                warn!(
                    event = row.id,
                    ticket = row.ticket_id,
                    hook = row.hook,
                    error = last_error.as_deref().unwrap_or(""),
                    "event failed for good"
                );
            }
            _ => {}
        }
        let attempts = row.attempts + i32::from(ran);
        let simple = status == "done"
            && delivery.failures.is_empty()
            && vetoes.is_empty()
            && row.delivery.is_none()
            && attempts == row.attempts + 1;
        if simple {
            return Ok(Settled::Done);
        }
        Ok(Settled::State(EventState {
            status,
            attempts,
            last_error,
            delivery: serde_json::to_string(&delivery).ok(),
            vetoes: (!vetoes.is_empty())
                .then(|| serde_json::to_string(&vetoes).ok())
                .flatten(),
        }))
    }
}

/// How long a daemon's claim on the events of its round holds: a daemon that
/// dies in a round leaves them to the others after this. While the plugins
/// work on them the claim is renewed, so a long round keeps its events.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Extends this daemon's claim on the events `ids` still pending.
async fn renew<C: ConnectionTrait>(conn: &C, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
    for chunk in ids.chunks(1000) {
        event::Entity::update_many()
            .col_expr(event::Column::NextAttemptAt, Expr::value(now + CLAIM))
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .filter(event::Column::Status.eq("pending"))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Claims the events `ids` that are still pending and due for this daemon:
/// their next attempt moves past the claim, in one statement, so of several
/// daemons that picked the same events each event goes to one. Returns the
/// ids claimed. The round's end writes the events' state (and a next
/// attempt of now for those still pending).
async fn claim<C: ConnectionTrait>(
    conn: &C,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<HashSet<i64>> {
    let mut claimed = HashSet::new();
    for chunk in ids.chunks(1000) {
        let rows = event::Entity::update_many()
            .col_expr(event::Column::NextAttemptAt, Expr::value(now + CLAIM))
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .filter(event::Column::Status.eq("pending"))
            .filter(event::Column::NextAttemptAt.lte(now))
            .exec_with_returning(conn)
            .await?;
        claimed.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(claimed)
}

/// Gives claimed events back (the plugin host could not start).
async fn release<C: ConnectionTrait>(conn: &C, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
    for chunk in ids.chunks(1000) {
        event::Entity::update_many()
            .col_expr(event::Column::NextAttemptAt, Expr::value(now))
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .filter(event::Column::Status.eq("pending"))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// An event's state after a round: `done` when every plugin owed it is done
/// with it, `failed` when those left have no retries left, else `pending`.
fn event_status(owed: &[String], delivery: &Delivery, retries: u32) -> &'static str {
    let remaining: Vec<&String> = owed.iter().filter(|p| !delivery.done.contains(p)).collect();
    if remaining.is_empty() {
        "done"
    } else if remaining
        .iter()
        .all(|p| delivery.failures.get(*p).copied().unwrap_or(0) > retries)
    {
        "failed"
    } else {
        "pending"
    }
}

/// What a round makes of one event.
enum Settled {
    /// Done on the first try with nothing to remember: marked with the
    /// round's other such events in one statement.
    Done,
    State(EventState),
}

/// The columns of an event row a round writes.
struct EventState {
    status: &'static str,
    attempts: i32,
    last_error: Option<String>,
    delivery: Option<String>,
    vetoes: Option<String>,
}

impl EventState {
    async fn write(self, txn: &DatabaseTransaction, id: i64, now: DateTime<Utc>) -> Result<()> {
        let mut q = event::Entity::update_many()
            .col_expr(event::Column::Status, Expr::value(self.status))
            .col_expr(event::Column::Attempts, Expr::value(self.attempts))
            .col_expr(event::Column::LastError, Expr::value(self.last_error))
            .col_expr(event::Column::Delivery, Expr::value(self.delivery))
            .col_expr(event::Column::NextAttemptAt, Expr::value(now));
        if self.vetoes.is_some() {
            q = q.col_expr(event::Column::Vetoes, Expr::value(self.vetoes));
        }
        if self.status != "pending" {
            q = q.col_expr(event::Column::DoneAt, Expr::value(now));
        }
        q.filter(event::Column::Id.eq(id)).exec(txn).await?;
        Ok(())
    }
}

/// An event picked for a round: the plugins owed it, and those to call now.
pub(crate) struct Work {
    pub(crate) row: event::Model,
    event: std::result::Result<Value, String>,
    delivery: Delivery,
    owed: Vec<String>,
    pub(crate) targets: Vec<String>,
}

/// One plugin's answer to one event: whose actions are being applied.
#[derive(Clone, Copy)]
struct Answer<'a> {
    d: &'a Dispatcher,
    row: &'a event::Model,
    plugin: &'a str,
}

/// The writes of one round, collected in memory and written at its end.
struct Apply {
    tickets: HashMap<i64, ticket::Model>,
    dirty: HashSet<i64>,
    /// The status of each ticket whose status a plugin set, before the round.
    status_before: HashMap<i64, Status>,
    notes: Vec<message::ActiveModel>,
    mails: Vec<(Option<i64>, &'static str, Outgoing, String)>,
    events: Vec<event::ActiveModel>,
    errors: Vec<plugin_error::ActiveModel>,
    /// (ticket, staff address, plugin) assigned during the current event.
    assigned: Vec<(i64, String, String)>,
    /// The next message id, when the round took the counter.
    first_message: Option<i64>,
    now: DateTime<Utc>,
}

/// The field change a plugin action asks for, checked against the
/// configuration: a plugin has no "me", an assignee must be a configured
/// staff member or group, a service must be configured. `None` for the
/// actions that are no field change.
pub fn plugin_change(
    action: &Action,
    staff: &Directory,
    services: &[String],
) -> std::result::Result<Option<change::Change>, String> {
    Ok(Some(match action {
        Action::SetStatus { status } => change::Change::Status(status.parse()?),
        Action::SetPriority { priority } => change::Change::Priority(priority.parse()?),
        Action::SetKind { kind } => change::Change::Kind(kind.parse()?),
        Action::SetAssignee { assignee } => {
            let target = match assignee.as_deref().map(str::trim) {
                None | Some("") => Assignee::Nobody,
                Some(w) if w.eq_ignore_ascii_case("me") => {
                    return Err("a plugin has no \"me\"; name a staff member".into());
                }
                Some(w) => staff
                    .resolve(w, "")
                    .map_err(|e| format!("unknown assignee {w:?}: {e}"))?,
            };
            if let Assignee::Person(email) = &target
                && staff.by_email(email).is_none()
            {
                return Err(format!(
                    "unknown assignee {email:?}: not a configured [[staff]] member"
                ));
            }
            change::Change::Assign(target)
        }
        Action::SetService { service } => {
            let service = service.trim().to_string();
            if !services.contains(&service) {
                return Err(format!(
                    "unknown service {service:?} (configured: {})",
                    services.join(", ")
                ));
            }
            change::Change::Service(service)
        }
        _ => return Ok(None),
    }))
}

/// The changeable fields of a stored ticket; a stored value this daemon
/// does not know is refused, never read as a default.
fn model_fields(t: &ticket::Model) -> std::result::Result<change::Fields, String> {
    let unknown =
        |what: &str, v: &str| format!("ticket {} has an unknown stored {what} {v:?}", t.number);
    Ok(change::Fields {
        status: t.status.parse().map_err(|_| unknown("status", &t.status))?,
        priority: t
            .priority
            .parse()
            .map_err(|_| unknown("priority", &t.priority))?,
        kind: t.kind.parse().map_err(|_| unknown("kind", &t.kind))?,
        assignee: t.assignee.clone(),
        group: t.team.clone(),
        service: t.service.clone(),
        resolved_at: t.resolved_at,
    })
}

fn put_model_fields(t: &mut ticket::Model, f: change::Fields) {
    t.status = f.status.as_str().into();
    t.priority = f.priority.as_str().into();
    t.kind = f.kind.as_str().into();
    t.assignee = f.assignee;
    t.team = f.group;
    t.service = f.service;
    t.resolved_at = f.resolved_at;
}

/// A change of one attribute, as in plugin-api's `Change`.
fn change(field: &str, from: Option<String>, to: Option<String>) -> plugin_api::Change {
    plugin_api::Change {
        field: field.to_string(),
        from,
        to,
    }
}

impl Apply {
    async fn load(
        txn: &DatabaseTransaction,
        work: &[Work],
        now: DateTime<Utc>,
        first_message: Option<i64>,
    ) -> Result<Apply> {
        let ids: HashSet<i64> = work.iter().filter_map(|w| w.row.ticket_id).collect();
        let mut tickets = HashMap::new();
        let ids: Vec<i64> = ids.into_iter().collect();
        for chunk in ids.chunks(1000) {
            for t in ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
                .lock_exclusive()
                .all(txn)
                .await?
            {
                tickets.insert(t.id, t);
            }
        }
        Ok(Apply {
            tickets,
            dirty: HashSet::new(),
            status_before: HashMap::new(),
            notes: Vec::new(),
            mails: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
            assigned: Vec::new(),
            first_message,
            now,
        })
    }

    fn error(&mut self, plugin: &str, row: &event::Model, text: String) {
        self.errors.push(plugin_error::ActiveModel {
            plugin: Set(plugin.to_string()),
            event_id: Set(Some(row.id)),
            ticket_id: Set(row.ticket_id),
            error: Set(text),
            created_at: Set(self.now),
            ..Default::default()
        });
    }

    /// Validates and applies one plugin's answer to one event; returns
    /// (applied, refused).
    fn apply(
        &mut self,
        d: &Dispatcher,
        row: &event::Model,
        event: &Value,
        plugin: &str,
        actions: Vec<Value>,
        vetoes: &mut Vec<Veto>,
    ) -> Result<(u64, u64)> {
        let (mut applied, mut refused) = (0, 0);
        let mut changes: Vec<plugin_api::Change> = Vec::new();
        let by = Answer { d, row, plugin };
        for (i, raw) in actions.into_iter().enumerate() {
            let kind = raw
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("(no type)")
                .to_string();
            let result = match serde_json::from_value::<Action>(raw) {
                Ok(a) => self.one(&by, i, a, vetoes, &mut changes),
                Err(e) => Err(format!("not an action this helpdeskd knows: {e}")),
            };
            match result {
                Ok(()) => applied += 1,
                Err(reason) => {
                    refused += 1;
                    warn!(
                        event = row.id,
                        ticket = row.ticket_id,
                        plugin,
                        action = kind,
                        reason,
                        "plugin action refused"
                    );
                    self.error(
                        plugin,
                        row,
                        format!("{} event {}: {kind} refused: {reason}", row.hook, row.id),
                    );
                }
            }
        }
        // Changes raise events, unless this event itself came from a plugin.
        if let (false, None, Some(tid)) = (changes.is_empty(), &row.origin, row.ticket_id)
            && let Some(t) = self.tickets.get(&tid)
        {
            // The customer is the one of the event the plugin answered.
            let customer = event
                .pointer("/ticket/customer")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let snapshot = crate::tickets::events::ticket_of_model(t, customer);
            let resolved = changes
                .iter()
                .any(|c| c.field == "status" && c.to.as_deref() == Some("resolved"));
            let mut hooks_raised = vec![hooks::TICKET_UPDATED];
            if resolved {
                hooks_raised.push(hooks::TICKET_RESOLVED);
            }
            for hook in hooks_raised {
                let payload = crate::tickets::events::payload(
                    hook,
                    snapshot.clone(),
                    None,
                    changes.clone(),
                    serde_json::Map::new(),
                );
                let mut e =
                    crate::tickets::event_row(Some(tid), hook, payload.to_string(), self.now);
                e.origin = Set(Some(plugin.to_string()));
                self.events.push(e);
            }
        }
        Ok((applied, refused))
    }

    fn one(
        &mut self,
        by: &Answer<'_>,
        index: usize,
        action: Action,
        vetoes: &mut Vec<Veto>,
        changes: &mut Vec<plugin_api::Change>,
    ) -> std::result::Result<(), String> {
        let Answer { d, row, plugin } = *by;
        if let Action::Veto { reason } = &action {
            if !hooks::is_gate(&row.hook) {
                return Err(format!(
                    "{} is not a gate hook; only gates can be vetoed",
                    row.hook
                ));
            }
            vetoes.push(Veto {
                plugin: plugin.to_string(),
                reason: reason.clone(),
            });
            return Ok(());
        }
        if let Action::SendMail { to, subject, body } = action {
            return self.send_mail(by, index, to, subject, body);
        }
        let tid = row.ticket_id.ok_or("the event has no ticket")?;
        let t = self
            .tickets
            .get_mut(&tid)
            .ok_or_else(|| format!("ticket {tid} no longer exists"))?;
        let now = self.now;
        match action {
            Action::AddNote { text } => {
                if text.trim().is_empty() {
                    return Err("the note is empty".into());
                }
                if text.len() > 64 * 1024 {
                    return Err("the note is longer than 64 KiB".into());
                }
                // The id is given out when the round's rows are written.
                let mut note = note_row(
                    0,
                    Note {
                        ticket_id: tid,
                        key: &format!("plugin:{}:{plugin}:{index}", row.id),
                        subject: &format!("Note by plugin {plugin}"),
                        text: &text,
                        class: "note",
                        author: "plugin",
                    },
                    now,
                );
                note.from_addr = Set(format!("{plugin} (plugin)"));
                note.threaded_by = Set(format!("plugin:{plugin}"));
                self.notes.push(note);
            }
            Action::SetStatus { .. }
            | Action::SetPriority { .. }
            | Action::SetKind { .. }
            | Action::SetAssignee { .. }
            | Action::SetService { .. } => {
                let c = plugin_change(&action, &d.staff, &d.services)?
                    .ok_or_else(|| "not a change of fields".to_string())?;
                let mut f = model_fields(t)?;
                let before = f.clone();
                let moved = change::apply(&mut f, &c, now)?;
                if f.status != before.status {
                    self.status_before.entry(tid).or_insert(before.status);
                }
                if let change::Change::Assign(Assignee::Person(email)) = &c
                    && f.assignee != before.assignee
                {
                    self.assigned.push((tid, email.clone(), plugin.to_string()));
                }
                put_model_fields(t, f);
                let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
                changes.extend(
                    moved
                        .iter()
                        .map(|m| change(m.field, some(&m.from), some(&m.to))),
                );
            }
            Action::SetField { name, value } => {
                let name = name.trim().to_string();
                if name.is_empty()
                    || name.chars().count() > 64
                    || name.chars().any(char::is_control)
                {
                    return Err(format!(
                        "field name {name:?} must be 1-64 printable characters"
                    ));
                }
                if value.len() > 4096 {
                    return Err("the value is longer than 4096 bytes".into());
                }
                let mut fields: serde_json::Map<String, Value> =
                    serde_json::from_str(&t.fields).unwrap_or_default();
                let old = fields
                    .get(&name)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if old.as_deref() != Some(value.as_str()) {
                    changes.push(change(&format!("field:{name}"), old, Some(value.clone())));
                    fields.insert(name, Value::String(value));
                    t.fields = Value::Object(fields).to_string();
                }
            }
            Action::Veto { .. } | Action::SendMail { .. } => {}
        }
        self.dirty.insert(tid);
        Ok(())
    }

    fn send_mail(
        &mut self,
        by: &Answer<'_>,
        index: usize,
        to: Vec<String>,
        subject: String,
        body: String,
    ) -> std::result::Result<(), String> {
        let Answer { d, row, plugin } = *by;
        if to.is_empty() || to.len() > 50 {
            return Err("give 1-50 recipients".into());
        }
        let mut recipients = Vec::new();
        for a in &to {
            let a = a.trim();
            let ok = a.split_once('@').is_some_and(|(l, dom)| {
                !l.is_empty() && dom.contains('.') && !a.contains(char::is_whitespace)
            });
            if !ok {
                return Err(format!("{a:?} is not a mail address"));
            }
            recipients.push(Address::new("", a));
        }
        if subject.contains(['\r', '\n']) {
            return Err("the subject has a line break".into());
        }
        let number = row
            .ticket_id
            .and_then(|id| self.tickets.get(&id))
            .and_then(|t| t.number.parse::<TicketNumber>().ok());
        let subject = match number {
            Some(n) => tagged_subject(&subject, &d.desk.tag, n),
            None => subject,
        };
        let out = Outgoing {
            message_id: format!("plugin.{}.{plugin}.{index}@{}", row.id, d.desk.id_domain()),
            from: d.desk.address.clone(),
            reply_to: None,
            to: recipients,
            subject,
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: Some("auto-generated"),
            body,
            html: None,
            attachments: Vec::new(),
            thread: number.map(|n| n.to_string()),
        };
        self.mails
            .push((row.ticket_id, "plugin-mail", out, plugin.to_string()));
        Ok(())
    }

    /// Tells each staff member a plugin assigned a ticket to during this
    /// event, with the ticket as it stands after all the event's actions.
    fn notify_assignments(
        &mut self,
        d: &Dispatcher,
        row: &event::Model,
        event: &Value,
    ) -> Result<()> {
        for (tid, email, plugin) in std::mem::take(&mut self.assigned) {
            let Some(t) = self.tickets.get(&tid) else {
                continue;
            };
            if t.assignee.as_deref() != Some(email.as_str()) {
                continue;
            }
            let Some(member) = d.staff.by_email(&email) else {
                continue;
            };
            let Ok(number) = t.number.parse::<TicketNumber>() else {
                continue;
            };
            let customer = event
                .pointer("/ticket/customer")
                .and_then(Value::as_str)
                .unwrap_or("");
            let text = event
                .pointer("/message/text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let body = format!(
                "{number} was assigned to you by the plugin {plugin}.\n\n\
                 Ticket:   {number} ({kind})\n\
                 Subject:  {subject}\n\
                 Status:   {status}\n\
                 Priority: {priority}\n\
                 Assignee: {email}\n\
                 Customer: {customer}\n\n\
                 {text}\n",
                kind = t.kind,
                subject = t.subject,
                status = t.status,
                priority = t.priority,
                text = if text.is_empty() { "(no text)" } else { text },
            );
            let domain = d.desk.id_domain();
            let out = Outgoing {
                message_id: format!("{number}.assigned.{}.{plugin}@{domain}", row.id),
                from: d.desk.address.clone(),
                reply_to: None,
                to: vec![member.address()],
                subject: tagged_subject(&t.subject, &d.desk.tag, number),
                in_reply_to: None,
                references: vec![format!("{number}.staff@{domain}")],
                auto_submitted: Some("auto-generated"),
                body,
                html: None,
                attachments: Vec::new(),
                thread: Some(number.to_string()),
            };
            self.mails.push((Some(tid), "notification", out, plugin));
        }
        Ok(())
    }

    async fn write(
        mut self,
        txn: &DatabaseTransaction,
        d: &Dispatcher,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.sign_notices(txn, d).await?;
        for (id, before) in &self.status_before {
            if let Some(t) = self.tickets.get(id) {
                let after: Status = t.status.parse().map_err(Error::Invalid)?;
                on_status_move(txn, *id, *before, after, now).await?;
            }
        }
        let moved: Vec<(Status, &ticket::Model)> = self
            .status_before
            .iter()
            .filter_map(|(id, before)| Some((*before, self.tickets.get(id)?)))
            .collect();
        let asker = super::satisfaction::Asker {
            policy: &d.relationship,
            desk: &d.desk,
            staff: &d.staff,
            key: d.key.as_ref(),
        };
        let questions = asker.questions(txn, &moved, now).await?;
        for (tid, out) in questions {
            self.mails.push((
                Some(tid),
                "satisfaction-request",
                out,
                "satisfaction".to_string(),
            ));
        }
        for id in &self.dirty {
            let Some(t) = self.tickets.get(id) else {
                continue;
            };
            ticket::Entity::update_many()
                .col_expr(ticket::Column::Status, Expr::value(t.status.clone()))
                .col_expr(ticket::Column::Priority, Expr::value(t.priority.clone()))
                .col_expr(ticket::Column::Kind, Expr::value(t.kind.clone()))
                .col_expr(ticket::Column::Assignee, Expr::value(t.assignee.clone()))
                .col_expr(ticket::Column::Team, Expr::value(t.team.clone()))
                .col_expr(ticket::Column::Fields, Expr::value(t.fields.clone()))
                .col_expr(ticket::Column::Service, Expr::value(t.service.clone()))
                // The SLA job recomputes the due times (priority, service
                // and status may have changed) at its next run.
                .col_expr(
                    ticket::Column::SlaNextAt,
                    Expr::value(t.service.as_ref().map(|_| now)),
                )
                .col_expr(ticket::Column::ResolvedAt, Expr::value(t.resolved_at))
                .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
                .filter(ticket::Column::Id.eq(*id))
                .exec(txn)
                .await?;
        }
        let needed = self.notes.len() + self.mails.len();
        let mut messages = Vec::with_capacity(needed);
        let mut outbox_rows = Vec::with_capacity(self.mails.len());
        if needed > 0 {
            let mut next = match self.first_message {
                Some(n) => n,
                None => Store::counter_next(txn, "message").await?,
            };
            for mut note in std::mem::take(&mut self.notes) {
                note.id = Set(next);
                next += 1;
                messages.push(note);
            }
            for (ticket_id, kind, out, plugin) in std::mem::take(&mut self.mails) {
                let raw = render(&out, now)?;
                if let Some(tid) = ticket_id {
                    let shown = Shown {
                        class: kind,
                        visibility: Visibility::Internal,
                        threaded_by: &format!("plugin:{plugin}"),
                    };
                    messages.push(outbound_row(next, tid, &out, &raw, shown, now));
                    next += 1;
                }
                outbox_rows.push(outbox_row(ticket_id, kind, &out, raw, now));
            }
            counter::Entity::update_many()
                .col_expr(counter::Column::Value, Expr::value(next - 1))
                .filter(counter::Column::Name.eq("message"))
                .exec(txn)
                .await?;
        }
        insert_chunks(txn, messages, message::Entity::insert_many).await?;
        insert_chunks(txn, outbox_rows, outbox::Entity::insert_many).await?;
        insert_chunks(
            txn,
            std::mem::take(&mut self.events),
            event::Entity::insert_many,
        )
        .await?;
        insert_chunks(
            txn,
            std::mem::take(&mut self.errors),
            plugin_error::Entity::insert_many,
        )
        .await?;
        Ok(())
    }
}

impl Apply {
    /// Gives each staff notice (an assignment) its recipient's reply token in
    /// the Message-ID and Reply-To, as every other desk notification has.
    async fn sign_notices(&mut self, txn: &DatabaseTransaction, d: &Dispatcher) -> Result<()> {
        let Some(key) = &d.key else {
            return Ok(());
        };
        let notices: Vec<usize> = self
            .mails
            .iter()
            .enumerate()
            .filter(|(_, (_, kind, out, _))| {
                *kind == "notification"
                    && out.to.len() == 1
                    && d.staff.by_email(&out.to[0].email).is_some()
            })
            .map(|(i, _)| i)
            .collect();
        if notices.is_empty() {
            return Ok(());
        }
        let emails: Vec<String> = notices
            .iter()
            .map(|&i| self.mails[i].2.to[0].email.clone())
            .collect();
        // Existing contacts only: taking the contact counter here would lock
        // it after the message counter, against ingest's order (a deadlock on
        // PostgreSQL). Staff have a contact from their first notification.
        let ids: std::collections::HashMap<String, ContactId> =
            crate::store::entity::contact::Entity::find()
                .filter(crate::store::entity::contact::Column::Email.is_in(emails))
                .all(txn)
                .await?
                .into_iter()
                .map(|c| (c.email, ContactId(c.id)))
                .collect();
        for i in notices {
            let out = &mut self.mails[i].2;
            let Some(number) = crate::domain::threading::subject_tag(&out.subject, &d.desk.tag)
            else {
                continue;
            };
            let Some(&contact) = ids.get(&out.to[0].email) else {
                continue;
            };
            let token = crate::domain::token::Token { number, contact };

            let unique = out
                .message_id
                .split('@')
                .next()
                .unwrap_or_default()
                .replace('.', "-");
            let mut reply_to = key.reply_to(&d.desk.address, token);
            reply_to.name = d.desk.name.clone();
            out.reply_to = Some(reply_to);
            out.message_id = key.message_id(token, &unique, d.desk.id_domain());
        }
        Ok(())
    }
}

/// Makes failed events (one, or all) pending again; plugins that already
/// handled them are not called again. Returns how many.
pub async fn retry<C: ConnectionTrait>(
    conn: &C,
    id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut q = event::Entity::find().filter(event::Column::Status.eq("failed"));
    if let Some(id) = id {
        q = q.filter(event::Column::Id.eq(id));
    }
    let rows = q.all(conn).await?;
    for row in &rows {
        let mut delivery: Delivery = row
            .delivery
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        delivery.failures.clear();
        event::Entity::update_many()
            .col_expr(event::Column::Status, Expr::value("pending"))
            .col_expr(
                event::Column::Delivery,
                Expr::value(serde_json::to_string(&delivery).ok()),
            )
            .col_expr(event::Column::NextAttemptAt, Expr::value(now))
            .col_expr(
                event::Column::DoneAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(event::Column::Id.eq(row.id))
            .exec(conn)
            .await?;
    }
    Ok(rows.len() as u64)
}

/// Events waiting for dispatch.
pub async fn pending_count<C: ConnectionTrait>(conn: &C) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(event::Entity::find()
        .filter(event::Column::Status.eq("pending"))
        .count(conn)
        .await?)
}

#[cfg(test)]
mod same_change_tests {
    use super::*;
    use crate::domain::change::Fields;
    use crate::domain::commands;
    use crate::domain::conversation::{self, tests::settings};

    /// One table drives a staff command and a plugin action asking for the
    /// same change: both must leave the same fields and report the same
    /// moves, or both be refused.
    #[test]
    fn staff_commands_and_plugin_actions_make_the_same_change() {
        let s = settings();
        let member = s.staff.by_email("ada@example.test").cloned().expect("ada");
        let services = vec!["email".to_string()];
        let start = Fields {
            status: Status::Open,
            priority: crate::domain::ticket::Priority::Normal,
            kind: crate::domain::ticket::Kind::Incident,
            assignee: Some("ada@example.test".into()),
            group: Some("network".into()),
            service: None,
            resolved_at: None,
        };
        let closed = Fields {
            status: Status::Closed,
            ..start.clone()
        };
        let cases: Vec<(&Fields, &str, Value)> = vec![
            (
                &start,
                "/status resolved",
                json!({"type": "set_status", "status": "resolved"}),
            ),
            (
                &start,
                "/status pending",
                json!({"type": "set_status", "status": "pending"}),
            ),
            (
                &start,
                "/status new",
                json!({"type": "set_status", "status": "new"}),
            ),
            (
                &closed,
                "/status open",
                json!({"type": "set_status", "status": "open"}),
            ),
            (
                &closed,
                "/status closed",
                json!({"type": "set_status", "status": "closed"}),
            ),
            (
                &start,
                "/assign bob",
                json!({"type": "set_assignee", "assignee": "bob"}),
            ),
            (
                &start,
                "/assign group:desktop",
                json!({"type": "set_assignee", "assignee": "group:desktop"}),
            ),
            (
                &start,
                "/assign nobody",
                json!({"type": "set_assignee", "assignee": null}),
            ),
            (
                &start,
                "/assign nosuchperson",
                json!({"type": "set_assignee", "assignee": "nosuchperson"}),
            ),
            (
                &start,
                "/priority urgent",
                json!({"type": "set_priority", "priority": "urgent"}),
            ),
            (
                &start,
                "/kind problem",
                json!({"type": "set_kind", "kind": "problem"}),
            ),
            (
                &start,
                "/service email",
                json!({"type": "set_service", "service": "email"}),
            ),
            (
                &start,
                "/service nosuch",
                json!({"type": "set_service", "service": "nosuch"}),
            ),
        ];
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let run = |from: &Fields, c: std::result::Result<Option<change::Change>, String>| {
            let c = c?.ok_or("no change")?;
            let mut f = from.clone();
            let moved = change::apply(&mut f, &c, now)?;
            Ok::<_, String>((f, moved))
        };
        for (from, line, action) in cases {
            let reply = commands::parse(line);
            let [command] = reply.commands.as_slice() else {
                panic!("{line}: {:?}", reply.errors);
            };
            let by_staff = run(from, conversation::staff_change(&s, &member, command));
            let action: Action = serde_json::from_value(action.clone()).expect("an action");
            let by_plugin = run(from, plugin_change(&action, &s.staff, &services));
            match (&by_staff, &by_plugin) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{line}: staff {by_staff:?}, plugin {by_plugin:?}"),
            }
        }
    }
}
