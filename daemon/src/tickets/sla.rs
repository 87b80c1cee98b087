//! The SLA bookkeeping of a ticket change, whoever makes it: pauses while
//! a ticket is pending, the end of supplier escalations when it is
//! resolved, and the new due times. The SLA job (`service_level`) reads
//! the same pauses and alerts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};

use crate::domain::conversation::{Settings, TicketState};
use crate::domain::sla::clock::Pause;
use crate::domain::sla::{self, Alert, Clocks, Due, Policy, Target};
use crate::domain::ticket::{Priority, Status, TicketId};
use crate::error::Result;
use crate::store::entity::{sla_event, sla_pause, supplier_escalation};
use crate::store::rows::in_chunks;

/// The SLA of a ticket of this service and priority.
pub fn policy(settings: &Settings, service: Option<&str>, priority: Priority) -> Option<Policy> {
    service
        .and_then(|s| settings.services.get(s))
        .map(|p| p.for_priority(priority))
}

pub async fn pauses(txn: &DatabaseTransaction, ids: &[i64]) -> Result<HashMap<i64, Vec<Pause>>> {
    let mut out: HashMap<i64, Vec<Pause>> = HashMap::new();
    for chunk in in_chunks(ids) {
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
    for chunk in in_chunks(ids) {
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
pub(crate) fn stopped(
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
) -> Result<HashMap<TicketId, Due>> {
    let mut out = HashMap::new();
    let with_sla: Vec<i64> = changed
        .iter()
        .filter(|(t, before)| {
            before.is_some() && policy(settings, t.service.as_deref(), t.priority).is_some()
        })
        .map(|(t, _)| t.id.0)
        .collect();
    let mut all_pauses = pauses(txn, &with_sla).await?;
    let sent = alerts_sent(txn, &with_sla).await?;
    for (t, before) in changed {
        let was_pending = *before == Some(Status::Pending);
        let is_pending = t.status == Status::Pending;
        let list = all_pauses.entry(t.id.0).or_default();
        on_status_move(txn, t.id.0, before.unwrap_or(Status::New), t.status, now).await?;
        if is_pending && !was_pending {
            list.push(Pause {
                from: now,
                until: None,
            });
        } else if was_pending && !is_pending {
            for p in list.iter_mut().filter(|p| p.until.is_none()) {
                p.until = Some(now);
            }
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
        let already = sent.get(&t.id.0).map(Vec::as_slice).unwrap_or(&[]);
        out.insert(t.id, sla::due(&p, &clocks, now, already));
    }
    Ok(out)
}

/// The bookkeeping of one ticket's status move, whoever made it (ingest, a
/// staff command, a plugin): into `pending` opens an SLA pause, out of it
/// closes the open one, and into resolved or closed ends the ticket's open
/// supplier escalations.
pub async fn on_status_move<C: ConnectionTrait>(
    txn: &C,
    ticket_id: i64,
    before: Status,
    after: Status,
    now: DateTime<Utc>,
) -> Result<()> {
    let was_pending = before == Status::Pending;
    let is_pending = after == Status::Pending;
    if is_pending && !was_pending {
        sla_pause::Entity::insert(sla_pause::ActiveModel {
            ticket_id: Set(ticket_id),
            started_at: Set(now),
            ended_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(txn)
        .await?;
    } else if was_pending && !is_pending {
        sla_pause::Entity::update_many()
            .col_expr(sla_pause::Column::EndedAt, Expr::value(now))
            .filter(sla_pause::Column::TicketId.eq(ticket_id))
            .filter(sla_pause::Column::EndedAt.is_null())
            .exec(txn)
            .await?;
    }
    if matches!(after, Status::Resolved | Status::Closed)
        && !matches!(before, Status::Resolved | Status::Closed)
    {
        supplier_escalation::Entity::update_many()
            .col_expr(supplier_escalation::Column::ResolvedAt, Expr::value(now))
            .filter(supplier_escalation::Column::TicketId.eq(ticket_id))
            .filter(supplier_escalation::Column::ResolvedAt.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}
