//! The SLA job (the due times are kept current by `tickets::sla` whenever
//! a ticket changes). It reads only the tickets whose `sla_next_at` has come (an indexed range
//! scan: its cost grows with the tickets due, not with all open tickets),
//! sends each warning and breach once, and moves `sla_next_at` on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement,
};
use serde_json::json;
use tracing::{error, info, warn};

use crate::domain::conversation::{Draft, DraftKind, Settings};
use crate::domain::mail::Address;
use crate::domain::sla::clock::Pause;
use crate::domain::sla::{self, Alert, Clocks, Due, Target};
use crate::domain::threading::{TicketRef, tagged_subject};
use crate::domain::ticket::{Priority, Status, TicketId, TicketNumber};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{contact, event, message, outbox, sla_event, ticket};
use crate::store::rows::{Note, note_row};
use crate::tickets::sla::{alerts_sent, pauses, policy, stopped};
use crate::tickets::{Contacts, Counter, Queue, events, queue_drafts};

/// Due tickets handled per transaction by the SLA job.
const JOB_CHUNK: u64 = 1000;
/// Alerts per multi-row insert into `sla_events` (5 values a row): well
/// under the bind-parameter limits of SQLite (32,766) and PostgreSQL (65,535).
const ROWS_PER_STATEMENT: usize = 1000;
/// Tickets per `UPDATE … FROM (VALUES …)`. Small enough that PostgreSQL
/// looks each ticket up by its key: with 1,000 rows against 100,000 tickets
/// its planner prefers hashing a scan of the whole table, several times
/// slower.
const UPDATES_PER_STATEMENT: usize = 250;

/// What one SLA job run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CheckStats {
    pub tickets: u64,
    pub warnings: u64,
    pub breaches: u64,
    pub mails: u64,
}

/// The SLA job: every ticket whose `sla_next_at` has come is read, its new
/// warnings and breaches recorded (once per ticket, target and kind), told
/// to its assignee (or group) and, on a breach, to the service's escalation
/// contact, noted on the ticket, and handed to plugins as `sla.warning` /
/// `sla.breached`; then `sla_next_at` moves to the next threshold.
pub async fn check(store: &Store, settings: &Settings, now: DateTime<Utc>) -> Result<CheckStats> {
    let mut stats = CheckStats::default();
    // Shared with the chunks' worker threads; cloned once a run has work.
    let mut shared: Option<Arc<Settings>> = None;
    loop {
        let txn = store.begin().await?;
        let due: Vec<ticket::Model> = ticket::Entity::find()
            .filter(ticket::Column::SlaNextAt.lte(now))
            .order_by_asc(ticket::Column::SlaNextAt)
            .order_by_asc(ticket::Column::Id)
            .limit(JOB_CHUNK)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.commit().await?;
            return Ok(stats);
        }
        let settings = shared.get_or_insert_with(|| Arc::new(settings.clone()));
        let before = stats;
        let n = check_chunk(&txn, settings, due, now, &mut stats).await?;
        txn.commit().await?;
        crate::metrics::get().sla_alerts(
            stats.warnings - before.warnings,
            stats.breaches - before.breaches,
        );
        if n < JOB_CHUNK as usize {
            return Ok(stats);
        }
    }
}

/// What a chunk's worker thread hands the job, in this order: the
/// decisions for all its tickets, a few at a time, then the inserts that
/// tell the alerts recorded.
enum Step {
    Decided(Vec<Decision>),
    Insert(Statement),
}

/// One chunk of due tickets, in one transaction, as a pipeline: a worker
/// thread decides what is due (the business-calendar arithmetic, most of the
/// CPU) while the job records those alerts and stores the tickets' new due
/// times; then the worker composes the notes, mails and hook events of the
/// alerts this run won while the job inserts them.
async fn check_chunk(
    txn: &DatabaseTransaction,
    settings: &Arc<Settings>,
    due: Vec<ticket::Model>,
    now: DateTime<Utc>,
    stats: &mut CheckStats,
) -> Result<usize> {
    let n = due.len();
    let ids: Vec<i64> = due.iter().map(|t| t.id).collect();
    let pauses = pauses(txn, &ids).await?;
    let sent = alerts_sent(txn, &ids).await?;
    let customers = if settings.emit_events {
        customers_of(txn, &due).await?
    } else {
        HashMap::new()
    };
    // The counters are locked before any ticket, as ingest does.
    let mut emails: Vec<&str> = settings
        .staff
        .members()
        .iter()
        .map(|m| m.email.as_str())
        .collect();
    emails.extend(
        settings
            .service_escalation
            .values()
            .map(|a| a.email.as_str()),
    );
    let contacts = Contacts::load(txn, emails).await?;
    let messages_seq = Counter::load(txn, "message").await?;

    let (steps_tx, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let (won_tx, won_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_blocking({
        let settings = Arc::clone(settings);
        let backend = txn.get_database_backend();
        let span = tracing::Span::current();
        move || {
            let _entered = span.enter();
            let chunk = Chunk {
                settings: &settings,
                due: &due,
                pauses: &pauses,
                sent: &sent,
                customers: &customers,
                now,
                backend,
                steps: &steps_tx,
            };
            let found = chunk.decide_all()?;
            let won: HashSet<(i64, Target, Alert)> = won_rx
                .blocking_recv()
                .map_err(|_| Error::Invalid("the SLA job stopped".into()))?;
            chunk.tell(found, &won, contacts, messages_seq)
        }
    });

    // Record each batch of alerts as it is decided (the unique index on
    // sla_events decides which this run tells: one another daemon recorded
    // first is not told again) and store the tickets' due times.
    let mut won = HashSet::new();
    let mut decided = 0;
    while decided < n {
        let Some(Step::Decided(batch)) = steps.recv().await else {
            drop(won_tx);
            return Err(worker_failed(worker).await);
        };
        let mut found = Vec::new();
        let mut updates = Vec::with_capacity(batch.len());
        for d in batch {
            decided += 1;
            stats.tickets += 1;
            for &(target, alert, due_at) in &d.alerts {
                match alert {
                    Alert::Warning => stats.warnings += 1,
                    Alert::Breach => stats.breaches += 1,
                }
                if let Some(number) = d.number {
                    info!(ticket = %number, target = target.as_str(), alert = alert.as_str(), due = %due_at, "SLA");
                }
                found.push((d.id, target, alert, due_at));
            }
            updates.push((d.id, d.due));
        }
        won.extend(record_alerts(txn, &found, now).await?);
        save_due(txn, &updates).await?;
    }
    if won_tx.send(won).is_err() {
        return Err(worker_failed(worker).await);
    }
    while let Some(step) = steps.recv().await {
        let Step::Insert(insert) = step else {
            return Err(Error::Invalid(
                "SLA job: a decision after the inserts".into(),
            ));
        };
        txn.execute_raw(insert).await?;
    }
    let mut told = worker.await.map_err(joined)??;
    told.contacts.save(txn).await?;
    told.messages_seq.save(txn).await?;
    stats.mails += told.mails;
    Ok(n)
}

fn joined(e: tokio::task::JoinError) -> Error {
    Error::Invalid(format!("the SLA job's worker failed: {e}"))
}

/// The worker's own error, when it stopped handing over steps early.
async fn worker_failed(worker: tokio::task::JoinHandle<Result<Told>>) -> Error {
    match worker.await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => Error::Invalid("the SLA job's worker stopped early".into()),
        Err(e) => joined(e),
    }
}

/// What the SLA rules say of one due ticket.
struct Decision {
    id: i64,
    /// `None`: an unreadable number; nothing is told, nothing watched.
    number: Option<TicketNumber>,
    /// The alerts due now that were not sent before.
    alerts: Vec<(Target, Alert, DateTime<Utc>)>,
    /// Its due times once those are told, and the next check (after now).
    due: Due,
}

/// An alert to tell.
struct Found {
    /// The ticket's place in the chunk.
    ticket: usize,
    number: TicketNumber,
    target: Target,
    alert: Alert,
    due_at: DateTime<Utc>,
}

/// Decisions handed over at a time: one `UPDATE` of tickets each.
const DECIDED_PER_STEP: usize = UPDATES_PER_STATEMENT;
/// From this many due tickets a chunk is decided on two threads.
const PARALLEL_FROM: usize = 2 * DECIDED_PER_STEP;

/// A chunk as its worker thread sees it.
struct Chunk<'a> {
    settings: &'a Settings,
    due: &'a [ticket::Model],
    pauses: &'a HashMap<i64, Vec<Pause>>,
    sent: &'a HashMap<i64, Vec<(Target, Alert)>>,
    /// Contact id → address, for the hook events (when plugins are on).
    customers: &'a HashMap<i64, String>,
    now: DateTime<Utc>,
    backend: DbBackend,
    steps: &'a tokio::sync::mpsc::UnboundedSender<Step>,
}

impl Chunk<'_> {
    fn send(&self, step: Step) -> Result<()> {
        self.steps
            .send(step)
            .map_err(|_| Error::Invalid("the SLA job stopped".into()))
    }

    fn decide(&self, t: &ticket::Model) -> Decision {
        let nothing = Decision {
            id: t.id,
            number: None,
            alerts: Vec::new(),
            due: Due::default(),
        };
        // A stored value this daemon does not know: no clock is kept for the
        // ticket (its next check is cleared) and the error says which.
        let (Ok(status), Ok(priority)) =
            (t.status.parse::<Status>(), t.priority.parse::<Priority>())
        else {
            error!(
                ticket = t.number,
                status = t.status,
                priority = t.priority,
                "SLA: unknown stored status or priority; the ticket's clock is not kept"
            );
            return nothing;
        };
        let Some(p) = policy(self.settings, t.service.as_deref(), priority) else {
            return nothing;
        };
        let Ok(number) = t.number.parse::<TicketNumber>() else {
            return nothing;
        };
        let clocks = Clocks {
            created: t.created_at,
            pauses: self.pauses.get(&t.id).cloned().unwrap_or_default(),
            responded_at: t.responded_at,
            resolved_at: stopped(status, t.resolved_at, self.now),
        };
        let mut already = self.sent.get(&t.id).cloned().unwrap_or_default();
        let alerts = sla::alerts(&p, &clocks, self.now, &already);
        already.extend(alerts.iter().map(|&(target, alert, _)| (target, alert)));
        let mut due = sla::due(&p, &clocks, self.now, &already);
        // Every threshold at or before now is told now.
        due.next_check = due.next_check.filter(|at| *at > self.now);
        Decision {
            id: t.id,
            number: Some(number),
            alerts,
            due,
        }
    }

    /// Hands over the decisions for the tickets from `from` on, keeping the
    /// alerts found.
    fn hand_over(&self, found: &mut Vec<Found>, from: usize, batch: Vec<Decision>) -> Result<()> {
        for (i, d) in batch.iter().enumerate() {
            let Some(number) = d.number else { continue };
            found.extend(d.alerts.iter().map(|&(target, alert, due_at)| Found {
                ticket: from + i,
                number,
                target,
                alert,
                due_at,
            }));
        }
        self.send(Step::Decided(batch))
    }

    /// Decides every ticket, in order, handing the decisions over a few at
    /// a time; a large chunk's second half is decided meanwhile on a second
    /// thread. Returns the alerts found.
    fn decide_all(&self) -> Result<Vec<Found>> {
        let mut found = Vec::new();
        let split = if self.due.len() >= PARALLEL_FROM {
            self.due.len() / 2
        } else {
            self.due.len()
        };
        let (first, second) = self.due.split_at(split);
        std::thread::scope(|s| {
            let other = (!second.is_empty())
                .then(|| s.spawn(|| second.iter().map(|t| self.decide(t)).collect::<Vec<_>>()));
            for (k, part) in first.chunks(DECIDED_PER_STEP).enumerate() {
                let batch = part.iter().map(|t| self.decide(t)).collect();
                self.hand_over(&mut found, k * DECIDED_PER_STEP, batch)?;
            }
            if let Some(other) = other {
                let mut rest = match other.join() {
                    Ok(rest) => rest,
                    Err(panic) => std::panic::resume_unwind(panic),
                };
                let mut from = split;
                while !rest.is_empty() {
                    let tail = rest.split_off(rest.len().min(DECIDED_PER_STEP));
                    let len = rest.len();
                    self.hand_over(&mut found, from, rest)?;
                    from += len;
                    rest = tail;
                }
            }
            Ok(found)
        })
    }

    /// For each alert this run recorded: the hook event (when plugins are
    /// installed), an internal note on the ticket and a mail to the assignee
    /// (on a breach also to the service's escalation contact), rendered and
    /// handed over as multi-row inserts, the hook events first.
    fn tell(
        &self,
        mut found: Vec<Found>,
        won: &HashSet<(i64, Target, Alert)>,
        mut contacts: Contacts,
        mut messages_seq: Counter,
    ) -> Result<Told> {
        found.retain(|f| won.contains(&(self.due[f.ticket].id, f.target, f.alert)));
        let now = self.now;
        if self.settings.emit_events {
            for part in found.chunks(COMPOSED_ROWS_PER_STATEMENT) {
                let rows: Vec<_> = part
                    .iter()
                    .map(|f| {
                        let t = &self.due[f.ticket];
                        let customer = self
                            .customers
                            .get(&t.customer_id)
                            .map_or("", String::as_str);
                        hook_event(t, customer, f.target, f.alert, f.due_at, now)
                    })
                    .collect();
                self.send(Step::Insert(
                    event::Entity::insert_many(rows).build(self.backend),
                ))?;
            }
        }
        let mut messages = Vec::with_capacity(COMPOSED_ROWS_PER_STATEMENT + 4);
        let mut outbox_rows = Vec::with_capacity(COMPOSED_ROWS_PER_STATEMENT + 4);
        let mut mails = 0;
        for f in &found {
            let (t, number, target, alert) = (&self.due[f.ticket], f.number, f.target, f.alert);
            let text = alert_text(t, number, target, alert, f.due_at, now);
            messages.push(note_row(
                messages_seq.take(),
                Note {
                    ticket_id: t.id,
                    key: &format!("sla:{}:{}:{}", t.id, target.as_str(), alert.as_str()),
                    subject: "",
                    text: &text,
                    class: &format!("sla-{}", alert.as_str()),
                    author: "desk",
                },
                now,
            ));
            let drafts = alert_drafts(self.settings, t, number, target, alert, &text);
            let queued = queue_drafts(
                self.settings,
                TicketRef {
                    id: TicketId(t.id),
                    number,
                },
                &drafts,
                &[],
                &format!("{}{}{}", target.as_str(), alert.as_str(), t.id),
                Queue {
                    contacts: &mut contacts,
                    messages_seq: &mut messages_seq,
                    messages: &mut messages,
                    outbox: &mut outbox_rows,
                },
                now,
            );
            mails += queued.ids.len() as u64;
            if messages.len() >= COMPOSED_ROWS_PER_STATEMENT {
                let rows = std::mem::take(&mut messages);
                self.send(Step::Insert(
                    message::Entity::insert_many(rows).build(self.backend),
                ))?;
            }
            if outbox_rows.len() >= COMPOSED_ROWS_PER_STATEMENT {
                let rows = std::mem::take(&mut outbox_rows);
                self.send(Step::Insert(
                    outbox::Entity::insert_many(rows).build(self.backend),
                ))?;
            }
        }
        if !messages.is_empty() {
            self.send(Step::Insert(
                message::Entity::insert_many(messages).build(self.backend),
            ))?;
        }
        if !outbox_rows.is_empty() {
            self.send(Step::Insert(
                outbox::Entity::insert_many(outbox_rows).build(self.backend),
            ))?;
        }
        Ok(Told {
            contacts,
            messages_seq,
            mails,
        })
    }
}

/// What is left to save once a chunk's inserts ran.
struct Told {
    contacts: Contacts,
    messages_seq: Counter,
    mails: u64,
}

/// Rows of one multi-row insert of notes, mails, outbox entries or hook
/// events, as ingest writes them: under the databases' bind-parameter limits.
const COMPOSED_ROWS_PER_STATEMENT: usize = 200;

/// The `sla.warning` / `sla.breached` hook event of an alert.
fn hook_event(
    t: &ticket::Model,
    customer: &str,
    target: Target,
    alert: Alert,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> event::ActiveModel {
    let hook = match alert {
        Alert::Warning => "sla.warning",
        Alert::Breach => "sla.breached",
    };
    let mut data = serde_json::Map::new();
    data.insert(
        "sla".into(),
        json!({"target": target.as_str(), "due": due_at.to_rfc3339(), "service": t.service}),
    );
    let payload = events::payload(
        hook,
        events::ticket_of_model(t, customer),
        None,
        Vec::new(),
        data,
    );
    crate::tickets::event_row(Some(t.id), hook, payload.to_string(), now)
}

/// The customers' addresses of `due`, by contact id.
async fn customers_of(
    txn: &DatabaseTransaction,
    due: &[ticket::Model],
) -> Result<HashMap<i64, String>> {
    let ids: HashSet<i64> = due.iter().map(|t| t.customer_id).collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut out = HashMap::new();
    for chunk in crate::store::rows::in_chunks(&ids) {
        let rows: Vec<(i64, String)> = contact::Entity::find()
            .select_only()
            .column(contact::Column::Id)
            .column(contact::Column::Email)
            .filter(contact::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Inserts alerts into `sla_events` (one multi-row `INSERT … ON CONFLICT DO
/// NOTHING RETURNING`) and returns the ones this transaction inserted.
/// Daemons insert in the same order (the due tickets' order), so two that
/// meet wait for each other instead of deadlocking.
async fn record_alerts(
    txn: &DatabaseTransaction,
    found: &[(i64, Target, Alert, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<HashSet<(i64, Target, Alert)>> {
    let mut won = HashSet::with_capacity(found.len());
    for chunk in found.chunks(ROWS_PER_STATEMENT) {
        let mut q = Query::insert();
        q.into_table(sla_event::Entity).columns([
            sla_event::Column::TicketId,
            sla_event::Column::Target,
            sla_event::Column::Kind,
            sla_event::Column::DueAt,
            sla_event::Column::CreatedAt,
        ]);
        for &(id, target, alert, due_at) in chunk {
            q.values([
                id.into(),
                target.as_str().into(),
                alert.as_str().into(),
                due_at.into(),
                now.into(),
            ])
            .map_err(|e| Error::Invalid(format!("sla_events row: {e}")))?;
        }
        q.on_conflict(
            OnConflict::columns([
                sla_event::Column::TicketId,
                sla_event::Column::Target,
                sla_event::Column::Kind,
            ])
            .do_nothing()
            .to_owned(),
        )
        .returning(Query::returning().columns([
            sla_event::Column::TicketId,
            sla_event::Column::Target,
            sla_event::Column::Kind,
        ]));
        for row in txn.query_all(&q).await? {
            let id: i64 = row.try_get("", "ticket_id")?;
            let target: String = row.try_get("", "target")?;
            let kind: String = row.try_get("", "kind")?;
            won.insert((id, target_of(&target), alert_of(&kind)));
        }
    }
    Ok(won)
}

fn target_of(s: &str) -> Target {
    if s == "response" {
        Target::Response
    } else {
        Target::Resolution
    }
}

fn alert_of(s: &str) -> Alert {
    if s == "breach" {
        Alert::Breach
    } else {
        Alert::Warning
    }
}

/// Stores the tickets' new due times and next checks: one `UPDATE … FROM`
/// a `VALUES` list per statement (SQLite and PostgreSQL both have it), rows
/// in the due tickets' order.
async fn save_due(txn: &DatabaseTransaction, updates: &[(i64, Due)]) -> Result<()> {
    use std::fmt::Write as _;
    let backend = txn.get_database_backend();
    for chunk in updates.chunks(UPDATES_PER_STATEMENT) {
        let mut sql = String::with_capacity(160 + chunk.len() * 28);
        sql.push_str("WITH v (id, response, resolution, next_at) AS (VALUES ");
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 4);
        for (i, (id, d)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            if backend == DbBackend::Postgres {
                let k = 4 * i;
                let _ = write!(sql, "(${}, ${}, ${}, ${})", k + 1, k + 2, k + 3, k + 4);
            } else {
                sql.push_str("(?, ?, ?, ?)");
            }
            values.extend([
                (*id).into(),
                d.response.into(),
                d.resolution.into(),
                d.next_check.into(),
            ]);
        }
        sql.push_str(
            ") UPDATE tickets SET response_due_at = v.response, \
             resolution_due_at = v.resolution, sla_next_at = v.next_at \
             FROM v WHERE tickets.id = v.id",
        );
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

fn alert_text(
    t: &ticket::Model,
    number: TicketNumber,
    target: Target,
    alert: Alert,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let what = match (target, alert) {
        (Target::Response, Alert::Warning) => "is close to its first-response target",
        (Target::Response, Alert::Breach) => "has BREACHED its first-response target",
        (Target::Resolution, Alert::Warning) => "is close to its resolution target",
        (Target::Resolution, Alert::Breach) => "has BREACHED its resolution target",
    };
    format!(
        "SLA {kind}: ticket {number} {what}.\n\n\
         Service:  {service}\n\
         Priority: {priority}\n\
         Status:   {status}\n\
         Assignee: {assignee}\n\
         Due:      {due}\n\
         Now:      {now}\n\
         Subject:  {subject}\n",
        kind = alert.as_str(),
        service = t.service.as_deref().unwrap_or("-"),
        priority = t.priority,
        status = t.status,
        assignee = t
            .assignee
            .clone()
            .or_else(|| t.team.as_ref().map(|g| format!("group {g}")))
            .unwrap_or_else(|| "nobody".into()),
        due = due.format("%Y-%m-%d %H:%M UTC"),
        now = now.format("%Y-%m-%d %H:%M UTC"),
        subject = t.subject,
    )
}

fn alert_drafts(
    settings: &Settings,
    t: &ticket::Model,
    number: TicketNumber,
    target: Target,
    alert: Alert,
    text: &str,
) -> Vec<Draft> {
    let mut to: Vec<Address> = settings
        .staff
        .watchers(t.assignee.as_deref(), t.team.as_deref())
        .into_iter()
        .map(|m| m.address())
        .collect();
    if alert == Alert::Breach
        && let Some(e) = t
            .service
            .as_deref()
            .and_then(|s| settings.service_escalation.get(s))
        && !to.iter().any(|a| a.email == e.email)
    {
        to.push(e.clone());
    }
    if to.is_empty() {
        warn!(ticket = %number, "SLA alert with nobody to tell: no staff configured");
        return Vec::new();
    }
    let label = match alert {
        Alert::Warning => "SLA warning",
        Alert::Breach => "SLA BREACH",
    };
    vec![Draft {
        kind: DraftKind::Notification,
        to,
        from_name: settings.desk.name.clone(),
        subject: format!(
            "{label} ({}): {}",
            target.as_str(),
            tagged_subject(&t.subject, &settings.desk.tag, number)
        ),
        body: format!("{text}\n-- \nReply to this mail to answer the customer or send commands.\n"),
        in_reply_to: None,
        references: vec![format!("{number}.staff@{}", settings.desk.id_domain())],
        with_attachments: false,
    }]
}
