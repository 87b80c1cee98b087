//! The satisfaction books of a batch: the rating requests its mails answer
//! (by the Message-IDs they refer to), which of its tickets a person wrote
//! to as their customer (only they are asked to rate), and the requests
//! and ratings it adds. The decisions are `domain::satisfaction`'s.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};

use crate::domain::conversation::{Settings, TicketState};
use crate::domain::satisfaction::{Asked, Rating};
use crate::domain::ticket::{ContactId, TicketId};
use crate::error::Result;
use crate::store::entity::{message, rating, satisfaction_request};
use crate::store::rows::{in_chunks, insert_chunks};

/// A rating request as a reply to it is checked against.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub ticket: TicketId,
    /// The customer asked: only their answer is a rating.
    pub contact: ContactId,
    pub asked: Asked,
}

/// A reply that is a rating of a request.
#[derive(Clone, Debug)]
pub(super) struct Answer {
    pub request: String,
    pub ticket: TicketId,
    pub asked: Asked,
    pub rating: Rating,
}

#[derive(Default)]
pub(super) struct Relationship {
    /// Requests by Message-ID: those the batch's mails refer to, and those
    /// the batch sends.
    pub asked: HashMap<String, Request>,
    /// Tickets with a mail from a person as their customer.
    pub persons: HashSet<TicketId>,
    /// The latest request per ticket and customer, for the tickets named by
    /// the tokens of mails that name no Message-ID (a client that drops
    /// In-Reply-To and References but keeps the reply address).
    latest: HashMap<(TicketId, ContactId), (String, DateTime<Utc>)>,
    requests: Vec<satisfaction_request::ActiveModel>,
    ratings: Vec<rating::ActiveModel>,
}

impl Relationship {
    /// Reads the requests `ids` name and, when the desk asks for ratings,
    /// which of `tickets` a person wrote to as their customer.
    pub async fn load(
        txn: &DatabaseTransaction,
        settings: &Settings,
        ids: &[String],
        tickets: &[i64],
        by_token: &[i64],
    ) -> Result<Relationship> {
        let mut out = Relationship::default();
        for chunk in in_chunks(by_token) {
            let rows = satisfaction_request::Entity::find()
                .filter(satisfaction_request::Column::TicketId.is_in(chunk.iter().copied()))
                .all(txn)
                .await?;
            for r in rows {
                out.note_latest(
                    &r.message_id,
                    TicketId(r.ticket_id),
                    ContactId(r.contact_id),
                    r.asked_at,
                );
                out.asked.insert(
                    r.message_id,
                    Request {
                        ticket: TicketId(r.ticket_id),
                        contact: ContactId(r.contact_id),
                        asked: Asked {
                            assignee: r.assignee,
                            service: r.service,
                        },
                    },
                );
            }
        }
        for chunk in in_chunks(ids) {
            let rows = satisfaction_request::Entity::find()
                .filter(satisfaction_request::Column::MessageId.is_in(chunk.iter().cloned()))
                .all(txn)
                .await?;
            for r in rows {
                out.asked.insert(
                    r.message_id,
                    Request {
                        ticket: TicketId(r.ticket_id),
                        contact: ContactId(r.contact_id),
                        asked: Asked {
                            assignee: r.assignee,
                            service: r.service,
                        },
                    },
                );
            }
        }
        if !settings.relationship.enabled {
            return Ok(out);
        }
        for chunk in in_chunks(tickets) {
            let ids: Vec<i64> = message::Entity::find()
                .select_only()
                .column(message::Column::TicketId)
                .distinct()
                .filter(message::Column::TicketId.is_in(chunk.iter().copied()))
                .filter(message::Column::Direction.eq("in"))
                .filter(message::Column::Author.eq("customer"))
                .into_tuple()
                .all(txn)
                .await?;
            out.persons.extend(ids.into_iter().map(TicketId));
        }
        Ok(out)
    }

    /// The request a mail replying to `in_reply_to` / `references` (newest
    /// first) answers, if `contact` is the customer it asked.
    pub fn request_for(
        &self,
        in_reply_to: &[String],
        references: &[String],
        contact: ContactId,
    ) -> Option<(&str, &Request)> {
        in_reply_to
            .iter()
            .chain(references.iter().rev())
            .find_map(|id| self.asked.get_key_value(id.as_str()))
            .filter(|(_, r)| r.contact == contact)
            .map(|(k, r)| (k.as_str(), r))
    }

    fn note_latest(&mut self, id: &str, t: TicketId, c: ContactId, at: DateTime<Utc>) {
        let e = self
            .latest
            .entry((t, c))
            .or_insert_with(|| (id.to_string(), at));
        if at > e.1 {
            *e = (id.to_string(), at);
        }
    }

    /// The latest request to `contact` on ticket `t`, if it was asked at or
    /// after the ticket's resolution (`resolved_at`): what a rating that
    /// names no Message-ID but carries the customer's token answers.
    pub fn latest_for(
        &self,
        t: TicketId,
        contact: ContactId,
        resolved_at: Option<DateTime<Utc>>,
    ) -> Option<(&str, &Request)> {
        let (id, at) = self.latest.get(&(t, contact))?;
        if resolved_at.is_some_and(|r| *at < r) {
            return None;
        }
        self.asked
            .get_key_value(id.as_str())
            .map(|(k, r)| (k.as_str(), r))
    }

    /// Records a request the batch sends to `contact` for `t`.
    pub fn asked(
        &mut self,
        message_id: String,
        t: &TicketState,
        contact: ContactId,
        now: DateTime<Utc>,
    ) {
        let asked = Asked {
            assignee: t.assignee.clone(),
            service: t.service.clone(),
        };
        self.note_latest(&message_id, t.id, contact, now);
        self.requests.push(satisfaction_request::ActiveModel {
            message_id: Set(message_id.clone()),
            ticket_id: Set(t.id.0),
            contact_id: Set(contact.0),
            asked_at: Set(now),
            assignee: Set(asked.assignee.clone()),
            service: Set(asked.service.clone()),
        });
        self.asked.insert(
            message_id,
            Request {
                ticket: t.id,
                contact,
                asked,
            },
        );
    }

    /// Records a rating; every answer is kept, the figures count the latest.
    pub fn rated(&mut self, a: &Answer, contact: ContactId, now: DateTime<Utc>) {
        self.ratings.push(rating::ActiveModel {
            ticket_id: Set(a.ticket.0),
            contact_id: Set(contact.0),
            request_message_id: Set(a.request.clone()),
            score: Set(i16::from(a.rating.score)),
            comment: Set(a.rating.comment.clone()),
            rated_at: Set(now),
            assignee: Set(a.asked.assignee.clone()),
            service: Set(a.asked.service.clone()),
            ..Default::default()
        });
    }

    pub async fn save(self, txn: &DatabaseTransaction) -> Result<()> {
        insert_chunks(txn, self.requests, |c| {
            satisfaction_request::Entity::insert_many(c).on_conflict(
                sea_orm::sea_query::OnConflict::column(satisfaction_request::Column::MessageId)
                    .do_nothing()
                    .to_owned(),
            )
        })
        .await?;
        insert_chunks(txn, self.ratings, rating::Entity::insert_many).await
    }
}
