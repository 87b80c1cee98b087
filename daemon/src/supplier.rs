//! The supplier review job: the period's escalations to one supplier,
//! measured against its contract (`domain::supplier`), become a review
//! ticket assigned to the supplier manager, with the figures as an internal
//! note, a mail to the manager, and a `supplier.review_due` hook event for
//! plugins such as `supplier-scorecard`.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tracing::info;

use crate::config::Config;
use crate::domain::conversation::{Draft, DraftKind, Settings};
use crate::domain::supplier::{self, Contract, Escalation};
use crate::domain::threading::{TicketRef, tagged_subject};
use crate::domain::ticket::{Kind, Priority, Role, Status, TicketNumber};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{message, outbox, participant, supplier_escalation, ticket};
use crate::store::rows::insert_chunks;
use crate::store::rows::{Note, note_row};
use crate::tickets::{Contacts, Counter, Queue, queue_drafts};

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
    let rows = supplier_escalation::Entity::find()
        .filter(supplier_escalation::Column::Supplier.eq(&su.name))
        .all(&txn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.ticket_id).collect();
    let numbers: std::collections::HashMap<i64, String> = ticket::Entity::find()
        .filter(ticket::Column::Id.is_in(ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.number))
        .collect();
    let all: Vec<Escalation> = rows
        .iter()
        .map(|r| Escalation {
            ticket: numbers.get(&r.ticket_id).cloned().unwrap_or_default(),
            escalated_at: r.escalated_at,
            responded_at: r.responded_at,
            resolved_at: r.resolved_at,
        })
        .collect();
    let in_period: Vec<Escalation> = all
        .iter()
        .filter(|e| e.escalated_at >= since && e.escalated_at < now)
        .cloned()
        .collect();
    let figures = supplier::review(&contract, &in_period, &all, now);
    let text = supplier::text(&su.name, since, now, &contract, &figures);

    let manager = settings.staff.by_email(&su.manager).ok_or_else(|| {
        Error::Invalid(format!(
            "supplier {name}: manager {} is not staff",
            su.manager
        ))
    })?;
    let mut contacts = Contacts::load(&txn, vec![manager.email.as_str()]).await?;
    let manager_contact = contacts.id_for(&manager.address(), now);
    let mut tickets_seq = Counter::load(&txn, "ticket").await?;
    let mut messages_seq = Counter::load(&txn, "message").await?;
    let id = tickets_seq.take();
    let number = TicketNumber {
        kind: Kind::Request,
        seq: id,
    };
    let subject = format!(
        "Supplier review: {} ({} to {})",
        su.name,
        since.format("%Y-%m-%d"),
        now.format("%Y-%m-%d")
    );
    contacts.save(&txn).await?;
    ticket::Entity::insert(ticket::ActiveModel {
        id: Set(id),
        number: Set(number.to_string()),
        kind: Set(Kind::Request.as_str().into()),
        subject: Set(subject.clone()),
        status: Set(Status::New.as_str().into()),
        priority: Set(Priority::Normal.as_str().into()),
        customer_id: Set(manager_contact),
        mailbox: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        assignee: Set(Some(manager.email.clone())),
        team: Set(None),
        fields: Set(json!({"supplier": su.name}).to_string()),
        resolved_at: Set(None),
        root_message_id: Set(None),
        last_public_message_id: Set(None),
        service: Set(None),
        response_due_at: Set(None),
        resolution_due_at: Set(None),
        responded_at: Set(None),
        sla_next_at: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    participant::Entity::insert(participant::ActiveModel {
        ticket_id: Set(id),
        contact_id: Set(manager_contact),
        role: Set(Role::Staff.as_str().into()),
    })
    .exec_without_returning(&txn)
    .await?;
    let mut messages = vec![note_row(
        messages_seq.take(),
        Note {
            ticket_id: id,
            key: &format!("supplier-review:{}:{}", su.name, now.timestamp()),
            subject: &subject,
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
        subject: tagged_subject(&subject, &settings.desk.tag, number),
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
        TicketRef { id, number },
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
        crate::tickets::events::insert(
            &txn,
            vec![crate::tickets::events::Pending {
                ticket_id: id,
                hook: "supplier.review_due",
                payload: crate::tickets::events::payload(
                    "supplier.review_due",
                    plugin_api::Ticket {
                        number: number.to_string(),
                        kind: "request".into(),
                        status: "new".into(),
                        priority: "normal".into(),
                        subject: subject.clone(),
                        assignee: Some(manager.email.clone()),
                        group: None,
                        customer: manager.email.clone(),
                        mailbox: String::new(),
                        fields: [("supplier".to_string(), su.name.clone())].into(),
                    },
                    None,
                    Vec::new(),
                    [(
                        "supplier".to_string(),
                        json!({
                            "name": su.name,
                            "from": since.to_rfc3339(),
                            "to": now.to_rfc3339(),
                            "response_target_minutes": su.response_target.num_minutes(),
                            "resolution_target_minutes": su.resolution_target.num_minutes(),
                            "figures": figures,
                        }),
                    )]
                    .into_iter()
                    .collect(),
                ),
            }],
            now,
        )
        .await?;
    }
    tickets_seq.save(&txn).await?;
    messages_seq.save(&txn).await?;
    txn.commit().await?;
    info!(ticket = %number, supplier = su.name, "supplier review ticket created");
    Ok(number.to_string())
}
