//! Service levels against the database: keeping each ticket's SLA due times
//! and `sla_next_at` current when ingest changes it, and the SLA job, which
//! reads only the tickets whose `sla_next_at` has come (an indexed range
//! scan: its cost grows with the tickets due, not with all open tickets),
//! sends each warning and breach once, and moves `sla_next_at` on.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::json;
use tracing::{info, warn};

use crate::domain::conversation::{Draft, DraftKind, Settings, TicketState};
use crate::domain::mail::Address;
use crate::domain::sla::clock::Pause;
use crate::domain::sla::{self, Alert, Clocks, Due, Policy, Target};
use crate::domain::threading::{TicketRef, tagged_subject};
use crate::domain::ticket::{Priority, Status, TicketNumber};
use crate::error::{Error, Result};
use crate::ingest::apply::{Contacts, Counter, insert_chunks, queue_drafts};
use crate::store::Store;
use crate::store::entity::{message, outbox, sla_event, sla_pause, supplier_escalation, ticket};

const IN_CHUNK: usize = 1000;
/// Due tickets handled per transaction by the SLA job.
const JOB_CHUNK: u64 = 1000;
/// Rows per multi-row statement of the SLA job (5 values a row for
/// `sla_events`, 4 for tickets): well under the bind-parameter limits of
/// SQLite (32,766) and PostgreSQL (65,535).
const ROWS_PER_STATEMENT: usize = 1000;

/// The SLA of a ticket of this service and priority.
pub fn policy(settings: &Settings, service: Option<&str>, priority: Priority) -> Option<Policy> {
    service
        .and_then(|s| settings.services.get(s))
        .map(|p| p.for_priority(priority))
}

pub async fn pauses(txn: &DatabaseTransaction, ids: &[i64]) -> Result<HashMap<i64, Vec<Pause>>> {
    let mut out: HashMap<i64, Vec<Pause>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows = sla_pause::Entity::find()
            .filter(sla_pause::Column::TicketId.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        for p in rows {
            out.entry(p.ticket_id).or_default().push(Pause {
                from: p.started_at,
                until: p.ended_at,
            });
        }
    }
    Ok(out)
}

pub async fn alerts_sent(
    txn: &DatabaseTransaction,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<(Target, Alert)>>> {
    let mut out: HashMap<i64, Vec<(Target, Alert)>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows: Vec<(i64, String, String)> = sla_event::Entity::find()
            .select_only()
            .column(sla_event::Column::TicketId)
            .column(sla_event::Column::Target)
            .column(sla_event::Column::Kind)
            .filter(sla_event::Column::TicketId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        for (id, target, kind) in rows {
            let target = if target == "response" {
                Target::Response
            } else {
                Target::Resolution
            };
            let alert = if kind == "breach" {
                Alert::Breach
            } else {
                Alert::Warning
            };
            out.entry(id).or_default().push((target, alert));
        }
    }
    Ok(out)
}

/// The resolution instant the SLA clocks use: resolved or closed tickets stopped.
fn stopped(
    status: Status,
    resolved_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    matches!(status, Status::Resolved | Status::Closed).then(|| resolved_at.unwrap_or(now))
}

/// After ingest changed tickets: opens or closes their pauses (status
/// `pending` stops the clocks), closes supplier escalations of resolved
/// tickets, and returns the new due times of tickets with an SLA.
pub async fn after_change(
    txn: &DatabaseTransaction,
    settings: &Settings,
    changed: &[(&TicketState, Option<Status>)],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, Due>> {
    let mut out = HashMap::new();
    let with_sla: Vec<i64> = changed
        .iter()
        .filter(|(t, before)| {
            before.is_some() && policy(settings, t.service.as_deref(), t.priority).is_some()
        })
        .map(|(t, _)| t.id)
        .collect();
    let mut all_pauses = pauses(txn, &with_sla).await?;
    let sent = alerts_sent(txn, &with_sla).await?;
    let mut opened = Vec::new();
    for (t, before) in changed {
        let was_pending = *before == Some(Status::Pending);
        let is_pending = t.status == Status::Pending;
        let list = all_pauses.entry(t.id).or_default();
        if is_pending && !was_pending {
            opened.push(sla_pause::ActiveModel {
                ticket_id: Set(t.id),
                started_at: Set(now),
                ended_at: Set(None),
                ..Default::default()
            });
            list.push(Pause {
                from: now,
                until: None,
            });
        } else if was_pending && !is_pending {
            sla_pause::Entity::update_many()
                .col_expr(sla_pause::Column::EndedAt, Expr::value(now))
                .filter(sla_pause::Column::TicketId.eq(t.id))
                .filter(sla_pause::Column::EndedAt.is_null())
                .exec(txn)
                .await?;
            for p in list.iter_mut().filter(|p| p.until.is_none()) {
                p.until = Some(now);
            }
        }
        if matches!(t.status, Status::Resolved | Status::Closed)
            && !matches!(before, Some(Status::Resolved | Status::Closed))
        {
            supplier_escalation::Entity::update_many()
                .col_expr(supplier_escalation::Column::ResolvedAt, Expr::value(now))
                .filter(supplier_escalation::Column::TicketId.eq(t.id))
                .filter(supplier_escalation::Column::ResolvedAt.is_null())
                .exec(txn)
                .await?;
        }
        let Some(p) = policy(settings, t.service.as_deref(), t.priority) else {
            continue;
        };
        let clocks = Clocks {
            created: t.created_at,
            pauses: list.clone(),
            responded_at: t.responded_at,
            resolved_at: stopped(t.status, t.resolved_at, now),
        };
        let already = sent.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
        out.insert(t.id, sla::due(&p, &clocks, now, already));
    }
    insert_chunks(txn, opened, sla_pause::Entity::insert_many).await?;
    Ok(out)
}

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
    loop {
        let __t = std::time::Instant::now();
        let txn = store.begin().await?;
        let due: Vec<ticket::Model> = ticket::Entity::find()
            .filter(ticket::Column::SlaNextAt.lte(now))
            .order_by_asc(ticket::Column::SlaNextAt)
            .limit(JOB_CHUNK)
            .all(&txn)
            .await?;
        eprintln!("PHASE select {:?}", __t.elapsed());
        if due.is_empty() {
            txn.commit().await?;
            return Ok(stats);
        }
        let n = check_chunk(&txn, settings, due, now, &mut stats).await?;
        let __t = std::time::Instant::now();
        txn.commit().await?;
        eprintln!("PHASE commit {:?}", __t.elapsed());
        if n < JOB_CHUNK as usize {
            return Ok(stats);
        }
    }
}

/// An alert the job found due on one ticket.
struct Found<'a> {
    ticket: &'a ticket::Model,
    number: TicketNumber,
    target: Target,
    alert: Alert,
    due_at: DateTime<Utc>,
}

async fn check_chunk(
    txn: &DatabaseTransaction,
    settings: &Settings,
    due: Vec<ticket::Model>,
    now: DateTime<Utc>,
    stats: &mut CheckStats,
) -> Result<usize> {
    let n = due.len();
    let __t = std::time::Instant::now();
    let ids: Vec<i64> = due.iter().map(|t| t.id).collect();
    let all_pauses = pauses(txn, &ids).await?;
    let mut sent = alerts_sent(txn, &ids).await?;

    eprintln!("PHASE load {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    // What is due on each ticket, and its due times once that is told.
    let mut found: Vec<Found> = Vec::new();
    let mut updates: Vec<(i64, Due)> = Vec::with_capacity(n);
    for t in &due {
        stats.tickets += 1;
        let status: Status = t.status.parse().unwrap_or(Status::Open);
        let priority: Priority = t.priority.parse().unwrap_or(Priority::Normal);
        let Some(p) = policy(settings, t.service.as_deref(), priority) else {
            updates.push((t.id, Due::default()));
            continue;
        };
        let clocks = Clocks {
            created: t.created_at,
            pauses: all_pauses.get(&t.id).cloned().unwrap_or_default(),
            responded_at: t.responded_at,
            resolved_at: stopped(status, t.resolved_at, now),
        };
        let already = sent.entry(t.id).or_default();
        let fresh = sla::alerts(&p, &clocks, now, already);
        let Ok(number) = t.number.parse::<TicketNumber>() else {
            updates.push((t.id, Due::default()));
            continue;
        };
        for (target, alert, due_at) in fresh {
            already.push((target, alert));
            match alert {
                Alert::Warning => stats.warnings += 1,
                Alert::Breach => stats.breaches += 1,
            }
            info!(ticket = %number, target = target.as_str(), alert = alert.as_str(), due = %due_at, "SLA");
            found.push(Found {
                ticket: t,
                number,
                target,
                alert,
                due_at,
            });
        }
        let mut d = sla::due(&p, &clocks, now, already);
        // Every threshold at or before now was handled above.
        d.next_check = d.next_check.filter(|at| *at > now);
        updates.push((t.id, d));
    }

    // The unique index on sla_events decides which alerts this run tells:
    // one that another daemon recorded first is not sent again.
    eprintln!("PHASE decide {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    let won = record_alerts(txn, &found, now).await?;
    eprintln!("PHASE record {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    if !won.is_empty() {
        tell(txn, settings, &found, &won, now, stats).await?;
    }
    eprintln!("PHASE tell {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    save_due(txn, &mut updates).await?;
    eprintln!("PHASE save_due {:?}", __t.elapsed());
    Ok(n)
}

/// Inserts the found alerts into `sla_events` (a multi-row `INSERT … ON
/// CONFLICT DO NOTHING RETURNING`); returns the ones this transaction
/// inserted. Rows go in key order, so two daemons inserting the same alerts
/// wait for each other instead of deadlocking.
async fn record_alerts(
    txn: &DatabaseTransaction,
    found: &[Found<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<(i64, Target, Alert)>> {
    let mut rows: Vec<(i64, Target, Alert, DateTime<Utc>)> = found
        .iter()
        .map(|f| (f.ticket.id, f.target, f.alert, f.due_at))
        .collect();
    rows.sort_unstable_by_key(|r| (r.0, r.1, r.2));
    let mut won = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = Query::insert();
        q.into_table(sla_event::Entity).columns([
            sla_event::Column::TicketId,
            sla_event::Column::Target,
            sla_event::Column::Kind,
            sla_event::Column::DueAt,
            sla_event::Column::CreatedAt,
        ]);
        for (id, target, alert, due_at) in chunk {
            q.values([
                (*id).into(),
                target.as_str().into(),
                alert.as_str().into(),
                (*due_at).into(),
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
            let target = if target == "response" {
                Target::Response
            } else {
                Target::Resolution
            };
            let alert = if kind == "breach" {
                Alert::Breach
            } else {
                Alert::Warning
            };
            won.insert((id, target, alert));
        }
    }
    Ok(won)
}

/// For each alert this run recorded: an internal note, a mail to the
/// assignee (and on a breach the escalation contact), and the hook event.
async fn tell(
    txn: &DatabaseTransaction,
    settings: &Settings,
    found: &[Found<'_>],
    won: &HashSet<(i64, Target, Alert)>,
    now: DateTime<Utc>,
    stats: &mut CheckStats,
) -> Result<()> {
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
    let mut contacts = Contacts::load(txn, emails).await?;
    let mut messages_seq = Counter::load(txn, "message").await?;
    let __t = std::time::Instant::now();
    let mut events = Vec::new();
    let mut messages = Vec::new();
    let mut outbox_rows: Vec<outbox::ActiveModel> = Vec::new();
    for f in found {
        let (t, number, target, alert) = (f.ticket, f.number, f.target, f.alert);
        if !won.contains(&(t.id, target, alert)) {
            // Another daemon sent it first.
            continue;
        }
        let text = alert_text(t, number, target, alert, f.due_at, now);
        messages.push(note_row(
            messages_seq.take(),
            t.id,
            &format!("sla:{}:{}:{}", t.id, target.as_str(), alert.as_str()),
            &text,
            &format!("sla-{}", alert.as_str()),
            now,
        ));
        let drafts = alert_drafts(settings, t, number, target, alert, &text);
        let queued = queue_drafts(
            settings,
            TicketRef { id: t.id, number },
            &drafts,
            &[],
            &format!("{}{}{}", target.as_str(), alert.as_str(), t.id),
            &mut contacts,
            &mut messages_seq,
            &mut messages,
            &mut outbox_rows,
            now,
        )?;
        stats.mails += queued.len() as u64;
        let hook = match alert {
            Alert::Warning => "sla.warning",
            Alert::Breach => "sla.breached",
        };
        if !settings.emit_events {
            continue;
        }
        events.push(crate::ingest::events::Pending {
            ticket_id: t.id,
            hook,
            payload: json!({
                "hook": hook,
                "ticket": {
                    "number": t.number, "kind": t.kind, "status": t.status,
                    "priority": t.priority, "subject": t.subject,
                    "assignee": t.assignee, "group": t.team, "customer": Value::Null,
                    "mailbox": t.mailbox, "fields": {},
                },
                "message": Value::Null,
                "changes": [],
                "sla": {"target": target.as_str(), "due": f.due_at.to_rfc3339(), "service": t.service},
            }),
        });
    }
    eprintln!("PHASE   tell-build {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    contacts.save(txn).await?;
    insert_chunks(txn, messages, message::Entity::insert_many).await?;
    eprintln!("PHASE   tell-messages {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    insert_chunks(txn, outbox_rows, outbox::Entity::insert_many).await?;
    eprintln!("PHASE   tell-outbox {:?}", __t.elapsed());
    let __t = std::time::Instant::now();
    crate::ingest::events::insert(txn, events, now).await?;
    eprintln!("PHASE   tell-events {:?}", __t.elapsed());
    messages_seq.save(txn).await?;
    Ok(())
}

/// Stores the tickets' new due times and next checks: one `UPDATE … FROM`
/// a `VALUES` list per statement (SQLite and PostgreSQL both have it), in id
/// order, so concurrent runs lock rows in the same order.
async fn save_due(txn: &DatabaseTransaction, updates: &mut [(i64, Due)]) -> Result<()> {
    use std::fmt::Write as _;
    updates.sort_unstable_by_key(|(id, _)| *id);
    let backend = txn.get_database_backend();
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
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

use serde_json::Value;

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

/// An internal note the desk writes on a ticket.
fn note_row(
    id: i64,
    ticket_id: i64,
    key: &str,
    text: &str,
    class: &str,
    now: DateTime<Utc>,
) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(id),
        ticket_id: Set(ticket_id),
        direction: Set("note".into()),
        message_id: Set(None),
        dedup_key: Set(format!("note:{key}")),
        in_reply_to: Set(String::new()),
        references: Set(String::new()),
        from_addr: Set(String::new()),
        to_addrs: Set(String::new()),
        cc_addrs: Set(String::new()),
        subject: Set(String::new()),
        body_text: Set(text.to_string()),
        visibility: Set("internal".into()),
        class: Set(class.into()),
        threaded_by: Set("desk".into()),
        mailbox: Set(None),
        uid: Set(None),
        warnings: Set(String::new()),
        created_at: Set(now),
        raw: Set(Vec::new()),
        author: Set("desk".into()),
        flag: Set(None),
    }
}
