//! The rating question when a plugin action resolves or closes a ticket:
//! the same question, with the same rules (`domain::satisfaction`), as when
//! staff resolve it by mail. Written in the dispatcher's transaction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
};
use tracing::info;

use crate::domain::ack::{Desk, Outgoing};
use crate::domain::mail::Address;
use crate::domain::satisfaction::{Asking, Policy, question, should_ask};
use crate::domain::staff::Directory;
use crate::domain::ticket::{ContactId, Kind, Status, TicketNumber};
use crate::domain::token::{Token, TokenKey};
use crate::error::Result;
use crate::store::entity::{contact, message, satisfaction_request, ticket};

/// What the dispatcher needs to ask.
pub(super) struct Asker<'a> {
    pub policy: &'a Policy,
    pub desk: &'a Desk,
    pub staff: &'a Directory,
    pub key: Option<&'a TokenKey>,
}

impl Asker<'_> {
    /// The questions for tickets a plugin moved (`before`, the ticket as it
    /// is now), each with its request row written; `(ticket id, mail)`.
    pub async fn questions(
        &self,
        txn: &DatabaseTransaction,
        moved: &[(Status, &ticket::Model)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, Outgoing)>> {
        let mut out = Vec::new();
        let Some(key) = self.key else {
            return Ok(out);
        };
        for (before, t) in moved {
            let (Ok(kind), Ok(after), Ok(number)) = (
                t.kind.parse::<Kind>(),
                t.status.parse::<Status>(),
                t.number.parse::<TicketNumber>(),
            ) else {
                continue;
            };
            if !should_ask(self.policy, kind, (*before, after), true) {
                continue;
            }
            let Some(c) = contact::Entity::find_by_id(t.customer_id).one(txn).await? else {
                continue;
            };
            if self.is_desk(&c.email) || self.staff.by_email(&c.email).is_some() {
                continue;
            }
            let person = message::Entity::find()
                .filter(message::Column::TicketId.eq(t.id))
                .filter(message::Column::Direction.eq("in"))
                .filter(message::Column::Author.eq("customer"))
                .count(txn)
                .await?
                > 0;
            if !person {
                continue;
            }
            let customer = Address {
                name: c.name.clone(),
                email: c.email.clone(),
            };
            let draft = question(
                self.desk,
                self.policy,
                &Asking {
                    number,
                    subject: &t.subject,
                    customer: &customer,
                    root: t.root_message_id.as_deref(),
                    last: t.last_public_message_id.as_deref(),
                },
            );
            let token = Token {
                number,
                contact: ContactId(c.id),
            };
            let unique = format!("q{}.{}", t.id, now.timestamp_millis());
            let mut from = self.desk.address.clone();
            from.name = self.desk.name.clone();
            let mut reply_to = key.reply_to(&self.desk.address, token);
            reply_to.name = self.desk.name.clone();
            let mail = Outgoing {
                message_id: key.message_id(token, &unique, self.desk.id_domain()),
                from,
                reply_to: Some(reply_to),
                to: vec![customer],
                subject: draft.subject,
                in_reply_to: draft.in_reply_to,
                references: draft.references,
                auto_submitted: Some("auto-generated"),
                body: draft.body,
                html: None,
                attachments: Vec::new(),
                thread: Some(number.to_string()),
            };
            satisfaction_request::Entity::insert(satisfaction_request::ActiveModel {
                message_id: Set(mail.message_id.clone()),
                ticket_id: Set(t.id),
                contact_id: Set(c.id),
                asked_at: Set(now),
                assignee: Set(t.assignee.clone()),
                service: Set(t.service.clone()),
            })
            .on_conflict(
                OnConflict::column(satisfaction_request::Column::MessageId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            info!(ticket = %number, message_id = mail.message_id, "rating requested after a plugin's resolve");
            out.push((t.id, mail));
        }
        Ok(out)
    }

    /// The desk address or a plus-addressed variant of it.
    fn is_desk(&self, email: &str) -> bool {
        let desk = &self.desk.address;
        let Some((local, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let base = local.split_once('+').map_or(local, |(b, _)| b);
        domain.eq_ignore_ascii_case(desk.domain()) && base.eq_ignore_ascii_case(desk.local_part())
    }
}
