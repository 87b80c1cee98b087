//! Hook events, written to the event outbox in the transaction of the
//! change that caused them, so that a plugin sees every change at least
//! once and in order per ticket: those a mail causes (`ticket.created`,
//! `ticket.updated`, `ticket.resolved`, `message.received`) and the rows
//! every other writer inserts.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};

use std::collections::BTreeMap;

use plugin_api::{
    Change as HookChange, Event as HookEvent, Message as HookMessage, Ticket as HookTicket,
};

use crate::domain::conversation::{Change, Effects, TicketState};
use crate::domain::mail::Inbound;
use crate::error::Result;
use crate::store::entity::{event, ticket};

/// An event waiting for its row.
#[derive(Debug, Clone)]
pub struct Pending {
    pub ticket_id: i64,
    pub hook: &'static str,
    pub payload: Value,
}

/// The ticket as plugins see it, from the state a mail changes.
pub fn ticket_of_state(t: &TicketState) -> HookTicket {
    HookTicket {
        number: t.number.to_string(),
        kind: t.kind.as_str().into(),
        status: t.status.as_str().into(),
        priority: t.priority.as_str().into(),
        subject: t.subject.clone(),
        assignee: t.assignee.clone(),
        group: t.team.clone(),
        customer: t.customer.email.clone(),
        mailbox: t.mailbox.clone(),
        fields: fields_of(&t.fields),
    }
}

/// The ticket as plugins see it, from its row and its customer's address:
/// the same fields as [`ticket_of_state`], whichever writer raised the event.
pub fn ticket_of_model(t: &ticket::Model, customer: &str) -> HookTicket {
    HookTicket {
        number: t.number.clone(),
        kind: t.kind.clone(),
        status: t.status.clone(),
        priority: t.priority.clone(),
        subject: t.subject.clone(),
        assignee: t.assignee.clone(),
        group: t.team.clone(),
        customer: customer.to_string(),
        mailbox: t.mailbox.clone(),
        fields: fields_of(&t.fields),
    }
}

/// A ticket's custom fields (a JSON object of strings, written by plugins).
fn fields_of(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// A change as plugins see it: an empty value is `None`.
pub fn hook_change(c: &Change) -> HookChange {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    HookChange {
        field: c.field.to_string(),
        from: some(&c.from),
        to: some(&c.to),
    }
}

/// A hook event's payload: plugin-api's `Event` as it is serialized, without
/// its `id`, which the outbox row gives it. `data` holds the hook's own keys
/// (`sla`, `supplier`).
pub fn payload(
    hook: &str,
    ticket: HookTicket,
    message: Option<HookMessage>,
    changes: Vec<HookChange>,
    data: serde_json::Map<String, Value>,
) -> Value {
    let event = HookEvent {
        id: 0,
        hook: hook.to_string(),
        ticket: Some(ticket),
        message,
        changes,
        data,
    };
    let mut v = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("id");
    }
    v
}

/// An event about a ticket that no mail of its own changed (a problem
/// opened from an incident, an incident resolved with its problem).
pub fn for_ticket(t: &TicketState, hook: &'static str, changes: &[Change]) -> Pending {
    Pending {
        ticket_id: t.id.0,
        hook,
        payload: payload(
            hook,
            ticket_of_state(t),
            None,
            changes.iter().map(hook_change).collect(),
            serde_json::Map::new(),
        ),
    }
}

/// The events one stored mail causes, in the order plugins receive them.
pub fn for_mail(t: &TicketState, mail: &Inbound, fx: &Effects, new_ticket: bool) -> Vec<Pending> {
    let ticket = ticket_of_state(t);
    let changes: Vec<HookChange> = fx.changes.iter().map(hook_change).collect();
    let message = HookMessage {
        message_id: mail.message_id.clone().unwrap_or_default(),
        from: mail
            .from
            .as_ref()
            .map(|a| a.email.clone())
            .unwrap_or_default(),
        subject: mail.subject.clone(),
        text: fx.shown_text.clone(),
        visibility: fx.visibility.as_str().to_string(),
    };
    let event =
        |hook: &'static str, message: Option<&HookMessage>, changes: &[HookChange]| Pending {
            ticket_id: t.id.0,
            hook,
            payload: payload(
                hook,
                ticket.clone(),
                message.cloned(),
                changes.to_vec(),
                serde_json::Map::new(),
            ),
        };
    let mut out = Vec::new();
    if new_ticket {
        out.push(event("ticket.created", Some(&message), &[]));
    }
    out.push(event("message.received", Some(&message), &[]));
    for (supplier, note) in &fx.escalations {
        let mut data = serde_json::Map::new();
        data.insert("supplier".into(), json!({"name": supplier, "note": note}));
        out.push(Pending {
            ticket_id: t.id.0,
            hook: "supplier.escalated",
            payload: payload("supplier.escalated", ticket.clone(), None, Vec::new(), data),
        });
    }
    if !changes.is_empty() {
        out.push(event("ticket.updated", None, &changes));
        if fx
            .changes
            .iter()
            .any(|c| c.field == "status" && c.to == "resolved")
        {
            out.push(event("ticket.resolved", None, &changes));
        }
    }
    out
}

pub async fn insert(
    txn: &DatabaseTransaction,
    events: Vec<Pending>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rows: Vec<_> = events
        .into_iter()
        .map(|e| crate::tickets::event_row(Some(e.ticket_id), e.hook, e.payload.to_string(), now))
        .collect();
    use sea_orm::EntityTrait;
    crate::store::rows::insert_chunks(txn, rows, crate::store::entity::event::Entity::insert_many)
        .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::tests::{mail, ticket};

    fn row_of(t: &TicketState) -> ticket::Model {
        ticket::Model {
            id: t.id.0,
            number: t.number.to_string(),
            kind: t.kind.as_str().into(),
            subject: t.subject.clone(),
            status: t.status.as_str().into(),
            priority: t.priority.as_str().into(),
            customer_id: 7,
            mailbox: t.mailbox.clone(),
            created_at: t.created_at,
            updated_at: t.created_at,
            assignee: Some("ada@example.test".into()),
            team: Some("network".into()),
            fields: r#"{"site":"Berlin"}"#.into(),
            resolved_at: None,
            root_message_id: None,
            last_public_message_id: None,
            service: None,
            response_due_at: None,
            resolution_due_at: None,
            responded_at: None,
            sla_next_at: None,
        }
    }

    /// Ingest builds events from the ticket state, the SLA job and the
    /// plugin dispatcher from the row: plugins see the same ticket.
    #[test]
    fn a_ticket_looks_the_same_whichever_writer_raised_the_event() {
        let mut state = ticket();
        state.assignee = Some("ada@example.test".into());
        state.team = Some("network".into());
        state.fields = r#"{"site":"Berlin"}"#.into();
        let row = row_of(&state);
        let from_state = ticket_of_state(&state);
        assert_eq!(from_state, ticket_of_model(&row, &state.customer.email));
        assert_eq!(from_state.customer, "jo@cust.test");
        assert_eq!(
            from_state.fields.get("site").map(String::as_str),
            Some("Berlin")
        );
    }

    /// Every payload is plugin-api's `Event` less its id: the same keys for
    /// every hook, the hook's own data beside them.
    #[test]
    fn every_payload_reads_back_as_the_typed_event() {
        let state = ticket();
        let fx = Effects {
            changes: vec![Change {
                field: "status",
                from: "open".into(),
                to: "resolved".into(),
            }],
            escalations: vec![("NetCo".into(), "please look".into())],
            ..Default::default()
        };
        let mut payloads: Vec<Value> = for_mail(&state, &mail("jo@cust.test", "hello"), &fx, true)
            .into_iter()
            .map(|p| p.payload)
            .collect();
        let mut sla = serde_json::Map::new();
        sla.insert("sla".into(), json!({"target": "response"}));
        payloads.push(payload(
            "sla.warning",
            ticket_of_model(&row_of(&state), "jo@cust.test"),
            None,
            Vec::new(),
            sla,
        ));
        let hooks: Vec<&str> = payloads.iter().filter_map(|p| p["hook"].as_str()).collect();
        assert_eq!(
            hooks,
            [
                "ticket.created",
                "message.received",
                "supplier.escalated",
                "ticket.updated",
                "ticket.resolved",
                "sla.warning"
            ]
        );
        let keys = |v: &Value| -> Vec<String> {
            v["ticket"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        let first = keys(&payloads[0]);
        assert_eq!(first.len(), 10, "{first:?}");
        for p in &payloads {
            assert_eq!(keys(p), first, "{p}");
            assert!(p.get("id").is_none(), "the row gives the id: {p}");
            let mut with_id = p.clone();
            with_id["id"] = json!(1);
            let e: HookEvent = serde_json::from_value(with_id).expect("a plugin-api event");
            assert_eq!(
                e.ticket.map(|t| t.customer).as_deref(),
                Some("jo@cust.test")
            );
        }
        let updated: HookEvent = serde_json::from_value({
            let mut v = payloads[3].clone();
            v["id"] = json!(1);
            v
        })
        .expect("event");
        assert_eq!(
            updated.changes,
            [HookChange {
                field: "status".into(),
                from: Some("open".into()),
                to: Some("resolved".into())
            }]
        );
    }
}
