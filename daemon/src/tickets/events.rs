//! Hook events, written to the event outbox in the transaction of the
//! change that caused them, so that a plugin sees every change at least
//! once and in order per ticket: those a mail causes (`ticket.created`,
//! `ticket.updated`, `ticket.resolved`, `message.received`) and the rows
//! every other writer inserts.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};

use crate::domain::conversation::{Effects, TicketState};
use crate::domain::mail::Inbound;
use crate::error::Result;
use crate::store::entity::event;

/// An event waiting for its row.
#[derive(Debug, Clone)]
pub struct Pending {
    pub ticket_id: i64,
    pub hook: &'static str,
    pub payload: Value,
}

/// The ticket as plugins see it (plugin-api's `Ticket`).
pub fn ticket_json(t: &TicketState) -> Value {
    json!({
        "number": t.number.to_string(),
        "kind": t.kind.as_str(),
        "status": t.status.as_str(),
        "priority": t.priority.as_str(),
        "subject": t.subject,
        "assignee": t.assignee,
        "group": t.team,
        "customer": t.customer.email,
        "mailbox": t.mailbox,
        "fields": serde_json::from_str::<Value>(&t.fields).unwrap_or_else(|_| json!({})),
    })
}

/// The events one stored mail causes, in the order plugins receive them.
pub fn for_mail(t: &TicketState, mail: &Inbound, fx: &Effects, new_ticket: bool) -> Vec<Pending> {
    let ticket = ticket_json(t);
    let changes: Vec<Value> = fx
        .changes
        .iter()
        .map(|c| json!({"field": c.field, "from": c.from, "to": c.to}))
        .collect();
    let message = json!({
        "message_id": mail.message_id,
        "from": mail.from.as_ref().map(|a| a.email.clone()),
        "subject": mail.subject,
        "text": fx.shown_text,
        "visibility": fx.visibility,
    });
    let event = |hook: &'static str, message: &Value, changes: &[Value]| Pending {
        ticket_id: t.id,
        hook,
        payload: json!({
            "hook": hook,
            "ticket": ticket,
            "message": message,
            "changes": changes,
        }),
    };
    let mut out = Vec::new();
    if new_ticket {
        out.push(event("ticket.created", &message, &[]));
    }
    out.push(event("message.received", &message, &[]));
    for (supplier, note) in &fx.escalations {
        out.push(Pending {
            ticket_id: t.id,
            hook: "supplier.escalated",
            payload: json!({
                "hook": "supplier.escalated",
                "ticket": ticket,
                "message": Value::Null,
                "changes": [],
                "supplier": {"name": supplier, "note": note},
            }),
        });
    }
    if !changes.is_empty() {
        out.push(event("ticket.updated", &Value::Null, &changes));
        if fx
            .changes
            .iter()
            .any(|c| c.field == "status" && c.to == "resolved")
        {
            out.push(event("ticket.resolved", &Value::Null, &changes));
        }
    }
    out
}

pub async fn insert(
    txn: &DatabaseTransaction,
    events: Vec<Pending>,
    now: DateTime<Utc>,
) -> Result<()> {
    use sea_orm::EntityTrait;
    let mut rows: Vec<_> = events
        .into_iter()
        .map(|e| crate::tickets::event_row(Some(e.ticket_id), e.hook, e.payload.to_string(), now))
        .collect();
    // Chunks stay under the databases' bind-parameter limits.
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(200));
        crate::store::entity::event::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
        rows = rest;
    }
    Ok(())
}

/// A new row of the event outbox, `pending`, for the caller to insert in the
/// transaction of the change that caused it. `payload_json` is the event as
/// plugin-api's `Event` serializes it, without `id`.
pub fn event_row(
    ticket_id: Option<i64>,
    hook: &str,
    payload_json: String,
    now: DateTime<Utc>,
) -> event::ActiveModel {
    event::ActiveModel {
        ticket_id: Set(ticket_id),
        hook: Set(hook.to_string()),
        payload: Set(payload_json),
        status: Set("pending".into()),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        next_attempt_at: Set(now),
        done_at: Set(None),
        origin: Set(None),
        delivery: Set(None),
        vetoes: Set(None),
        ..Default::default()
    }
}
