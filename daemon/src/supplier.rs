//! The supplier review job: the period's escalations to one supplier,
//! measured against its contract (`domain::supplier`), become a review
//! ticket assigned to the supplier manager, with the figures as an internal
//! note, a mail to the manager, and a `supplier.review_due` hook event for
//! plugins such as `supplier-scorecard`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use plugin_api::hooks;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::json;
use tracing::info;

use crate::config::Config;
use crate::domain::conversation::{Draft, DraftKind, Participant, Settings, TicketState};
use crate::domain::sla::Due;
use crate::domain::staff::StaffMember;
use crate::domain::supplier::{self, Contract, Escalation};
use crate::domain::threading::{TicketRef, tagged_subject};
use crate::domain::ticket::{Kind, Priority, Role, Status, TicketId, TicketNumber};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{message, outbox, participant, supplier_escalation, ticket};
use crate::store::rows::{Note, in_chunks, insert_chunks, note_row, ticket_row};
use crate::tickets::{Contacts, Counter, Queue, events, queue_drafts};

/// Creates the review ticket of `name` for escalations since `since`;
/// returns its number.
pub async fn review(
    store: &Store,
    config: &Config,
    settings: &Settings,
    name: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<String> {
    let su = config
        .levels
        .supplier(name)
        .ok_or_else(|| Error::NotFound(format!("no supplier {name}")))?;
    let manager = settings.staff.by_email(&su.manager).ok_or_else(|| {
        Error::Invalid(format!(
            "supplier {name}: manager {} is not staff",
            su.manager
        ))
    })?;
    let calendar = config
        .levels
        .calendar(su.calendar.as_deref())
        .unwrap_or_else(crate::domain::sla::always);
    let contract = Contract {
        calendar: &calendar,
        response: su.response_target,
        resolution: su.resolution_target,
        end: su.contract_end,
    };
    let txn = store.begin().await?;
    let all = escalations(&txn, &su.name).await?;
    let in_period: Vec<Escalation> = all
        .iter()
        .filter(|e| e.escalated_at >= since && e.escalated_at < now)
        .cloned()
        .collect();
    let figures = supplier::review(&contract, &in_period, &all, now);
    let text = supplier::text(&su.name, since, now, &contract, &figures);

    // Counters in the lock order of `tickets::Counter`.
    let mut contacts = Contacts::load(&txn, vec![manager.email.as_str()]).await?;
    let manager_contact = contacts.id_for(&manager.address(), now);
    let mut tickets_seq = Counter::load(&txn, "ticket").await?;
    let mut messages_seq = Counter::load(&txn, "message").await?;
    let subject = format!(
        "Supplier review: {} ({} to {})",
        su.name,
        since.format("%Y-%m-%d"),
        now.format("%Y-%m-%d")
    );
    let state = review_ticket(
        TicketId(tickets_seq.take()),
        subject,
        manager,
        &su.name,
        now,
    );
    let number = state.number;
    let t = TicketRef {
        id: state.id,
        number,
    };
    // The ticket's customer row comes first: the ticket refers to it.
    contacts.save(&txn).await?;
    ticket::Entity::insert(ticket_row(&state, manager_contact, Due::default(), now))
        .exec_without_returning(&txn)
        .await?;
    participant::Entity::insert(participant::ActiveModel {
        ticket_id: Set(t.id.0),
        contact_id: Set(manager_contact.0),
        role: Set(Role::Staff.as_str().into()),
    })
    .exec_without_returning(&txn)
    .await?;
    let mut messages = vec![note_row(
        messages_seq.take(),
        Note {
            ticket_id: t.id.0,
            key: &format!("supplier-review:{}:{}", su.name, now.timestamp()),
            subject: &state.subject,
            text: &text,
            class: "supplier-review",
            author: "desk",
        },
        now,
    )];
    let draft = Draft {
        kind: DraftKind::Notification,
        to: vec![manager.address()],
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(&state.subject, &settings.desk.tag, number),
        body: format!(
            "A supplier review is due; ticket {number} is assigned to you.\n\n{text}\n-- \n\
             Reply to this mail with commands (/note, /resolve …) to work on the review.\n"
        ),
        in_reply_to: None,
        references: vec![format!("{number}.staff@{}", settings.desk.id_domain())],
        with_attachments: false,
    };
    let mut outbox_rows: Vec<outbox::ActiveModel> = Vec::new();
    queue_drafts(
        settings,
        t,
        &[draft],
        &[],
        &format!("review{}", now.timestamp()),
        Queue {
            contacts: &mut contacts,
            messages_seq: &mut messages_seq,
            messages: &mut messages,
            outbox: &mut outbox_rows,
        },
        now,
    );
    contacts.save(&txn).await?;
    insert_chunks(&txn, messages, message::Entity::insert_many).await?;
    insert_chunks(&txn, outbox_rows, outbox::Entity::insert_many).await?;
    if settings.emit_events {
        let data = json!({
            "name": su.name,
            "from": since.to_rfc3339(),
            "to": now.to_rfc3339(),
            "response_target_minutes": su.response_target.num_minutes(),
            "resolution_target_minutes": su.resolution_target.num_minutes(),
            "figures": figures,
        });
        let payload = events::payload(
            hooks::SUPPLIER_REVIEW_DUE,
            events::ticket_of_state(&state),
            None,
            Vec::new(),
            [("supplier".to_string(), data)].into_iter().collect(),
        );
        let pending = events::Pending {
            ticket_id: t.id.0,
            hook: hooks::SUPPLIER_REVIEW_DUE,
            payload,
        };
        events::insert(&txn, vec![pending], now).await?;
    }
    tickets_seq.save(&txn).await?;
    messages_seq.save(&txn).await?;
    txn.commit().await?;
    info!(ticket = %number, supplier = su.name, "supplier review ticket created");
    Ok(number.to_string())
}

/// Every escalation to the supplier, with its ticket's number.
async fn escalations(txn: &DatabaseTransaction, supplier: &str) -> Result<Vec<Escalation>> {
    let rows = supplier_escalation::Entity::find()
        .filter(supplier_escalation::Column::Supplier.eq(supplier))
        .all(txn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.ticket_id).collect();
    let mut numbers: HashMap<i64, String> = HashMap::new();
    for chunk in in_chunks(&ids) {
        let found: Vec<(i64, String)> = ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .column(ticket::Column::Number)
            .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        numbers.extend(found);
    }
    Ok(rows
        .iter()
        .map(|r| Escalation {
            ticket: numbers.get(&r.ticket_id).cloned().unwrap_or_default(),
            escalated_at: r.escalated_at,
            responded_at: r.responded_at,
            resolved_at: r.resolved_at,
        })
        .collect())
}

/// The review ticket: a request assigned to the supplier manager, who is
/// its customer too, with the supplier in its fields.
fn review_ticket(
    id: TicketId,
    subject: String,
    manager: &StaffMember,
    supplier: &str,
    now: DateTime<Utc>,
) -> TicketState {
    TicketState {
        id,
        number: TicketNumber {
            kind: Kind::Request,
            seq: id.0,
        },
        subject,
        status: Status::New,
        priority: Priority::Normal,
        kind: Kind::Request,
        assignee: Some(manager.email.clone()),
        team: None,
        customer: manager.address(),
        resolved_at: None,
        root_message_id: None,
        last_public_message_id: None,
        participants: vec![Participant {
            address: manager.address(),
            role: Role::Staff,
        }],
        created_at: now,
        service: None,
        responded_at: None,
        mailbox: String::new(),
        fields: json!({ "supplier": supplier }).to_string(),
        change: None,
    }
}
