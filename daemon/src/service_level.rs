//! Service levels against the database: keeping each ticket's SLA due times
//! and `sla_next_at` current when ingest changes it, and the SLA job, which
//! reads only the tickets whose `sla_next_at` has come (an indexed range
//! scan: its cost grows with the tickets due, not with all open tickets),
//! sends each warning and breach once, and moves `sla_next_at` on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use tracing::{info, warn};

use crate::domain::conversation::{Draft, DraftKind, Settings, TicketState};
use crate::domain::mail::Address;
use crate::domain::sla::clock::Pause;
use crate::domain::sla::{self, Alert, Clocks, Due, Policy, Target};
use crate::domain::threading::{TicketRef, tagged_subject};
use crate::domain::ticket::{Priority, Status, TicketNumber};
use crate::error::Result;
use crate::ingest::apply::{Contacts, Counter, insert_chunks, queue_drafts};
use crate::store::Store;
use crate::store::entity::{message, outbox, sla_event, sla_pause, supplier_escalation, ticket};

const IN_CHUNK: usize = 1000;
/// Due tickets handled per transaction by the SLA job.
const JOB_CHUNK: u64 = 1000;

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
        let txn = store.begin().await?;
        let due: Vec<ticket::Model> = ticket::Entity::find()
            .filter(ticket::Column::SlaNextAt.lte(now))
            .order_by_asc(ticket::Column::SlaNextAt)
            .limit(JOB_CHUNK)
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.commit().await?;
            return Ok(stats);
        }
        let n = check_chunk(&txn, settings, due, now, &mut stats).await?;
        txn.commit().await?;
        if n < JOB_CHUNK as usize {
            return Ok(stats);
        }
    }
}

async fn check_chunk(
    txn: &DatabaseTransaction,
    settings: &Settings,
    due: Vec<ticket::Model>,
    now: DateTime<Utc>,
    stats: &mut CheckStats,
) -> Result<usize> {
    let n = due.len();
    let ids: Vec<i64> = due.iter().map(|t| t.id).collect();
    let all_pauses = pauses(txn, &ids).await?;
    let mut sent = alerts_sent(txn, &ids).await?;
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
    let mut events = Vec::new();
    let mut messages = Vec::new();
    let mut outbox_rows: Vec<outbox::ActiveModel> = Vec::new();
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
            let inserted = sla_event::Entity::insert(sla_event::ActiveModel {
                ticket_id: Set(t.id),
                target: Set(target.as_str().into()),
                kind: Set(alert.as_str().into()),
                due_at: Set(due_at),
                created_at: Set(now),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::columns([
                    sla_event::Column::TicketId,
                    sla_event::Column::Target,
                    sla_event::Column::Kind,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            if inserted == 0 {
                // Another daemon sent it first.
                continue;
            }
            let text = alert_text(t, number, target, alert, due_at, now);
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
                    "sla": {"target": target.as_str(), "due": due_at.to_rfc3339(), "service": t.service},
                }),
            });
        }
        let mut d = sla::due(&p, &clocks, now, already);
        // Every threshold at or before now was handled above.
        d.next_check = d.next_check.filter(|at| *at > now);
        updates.push((t.id, d));
    }
    contacts.save(txn).await?;
    insert_chunks(txn, messages, message::Entity::insert_many).await?;
    insert_chunks(txn, outbox_rows, outbox::Entity::insert_many).await?;
    crate::ingest::events::insert(txn, events, now).await?;
    messages_seq.save(txn).await?;
    for (id, d) in updates {
        ticket::Entity::update_many()
            .col_expr(ticket::Column::ResponseDueAt, Expr::value(d.response))
            .col_expr(ticket::Column::ResolutionDueAt, Expr::value(d.resolution))
            .col_expr(ticket::Column::SlaNextAt, Expr::value(d.next_check))
            .filter(ticket::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(n)
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
