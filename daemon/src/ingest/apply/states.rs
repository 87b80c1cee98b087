//! The tickets a batch touches, loaded as the conversation rules see them
//! and written back once every mail is decided.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use super::known::BatchKnown;
use super::rows::{insert_participants, participant_row};
use crate::domain::conversation::{Participant, Settings, TicketState};
use crate::domain::mail::Address;
use crate::domain::ticket::{ContactId, Kind, Priority, Role, Status, TicketId, TicketNumber};
use crate::error::{Error, Result};
use crate::store::entity::{contact, participant, ticket};
use crate::store::rows::{in_chunks, insert_chunks, ticket_row};
use crate::tickets::Contacts;

/// The tickets a batch touches, as the conversation rules see them.
#[derive(Default)]
pub(super) struct States {
    pub by_id: HashMap<TicketId, TicketState>,
    /// Tickets created by this batch.
    created: Vec<TicketId>,
    touched: HashSet<TicketId>,
    /// The status each loaded ticket had before the batch.
    initial: HashMap<TicketId, Status>,
    /// Each ticket's customer contact id.
    customers: HashMap<TicketId, ContactId>,
}

impl States {
    /// Loads every ticket the batch's references, tokens and tags name.
    pub async fn load(
        txn: &DatabaseTransaction,
        known: &BatchKnown,
        contacts: &mut Contacts,
    ) -> Result<States> {
        let ids: HashSet<i64> = known
            .by_mid
            .values()
            .chain(known.by_number.values())
            .map(|t| t.id.0)
            .collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut states = States::default();
        states.load_more(txn, &ids, contacts).await?;
        Ok(states)
    }

    /// Loads the tickets of `ids` not loaded yet, linked to the batch's
    /// (a problem's incidents, a release's changes), and makes their
    /// participants known.
    pub async fn load_linked(
        &mut self,
        txn: &DatabaseTransaction,
        ids: &[i64],
        contacts: &mut Contacts,
        known: &mut BatchKnown,
    ) -> Result<()> {
        self.load_more(txn, ids, contacts).await?;
        for id in ids {
            if let Some(st) = self.by_id.get(&TicketId(*id)) {
                for p in &st.participants {
                    known.participants.insert((st.id, p.address.email.clone()));
                }
            }
        }
        Ok(())
    }

    /// Loads the tickets of `ids` not loaded yet.
    async fn load_more(
        &mut self,
        txn: &DatabaseTransaction,
        ids: &[i64],
        contacts: &mut Contacts,
    ) -> Result<()> {
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !self.by_id.contains_key(&TicketId(*id)))
            .collect();
        let states = self;
        for chunk in in_chunks(&ids) {
            let tickets = ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
                .all(txn)
                .await?;
            let people: Vec<(i64, i64, String, String, String)> = participant::Entity::find()
                .select_only()
                .column(participant::Column::TicketId)
                .column(participant::Column::ContactId)
                .column(contact::Column::Email)
                .column(contact::Column::Name)
                .column(participant::Column::Role)
                .inner_join(contact::Entity)
                .filter(participant::Column::TicketId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
            let mut by_ticket: HashMap<i64, Vec<(Address, String)>> = HashMap::new();
            for (ticket_id, contact_id, email, name, role) in people {
                contacts
                    .ids
                    .entry(email.clone())
                    .or_insert(ContactId(contact_id));
                by_ticket
                    .entry(ticket_id)
                    .or_default()
                    .push((Address { name, email }, role));
            }
            for t in tickets {
                // A stored value this daemon does not know (a newer version's,
                // or a hand edit) fails the batch; mail by mail, the mails of
                // this ticket are then quarantined with this reason.
                let unknown = |what: &str, value: &str| {
                    Error::Invalid(format!(
                        "ticket {} (id {}) has an unknown stored {what} {value:?}",
                        t.number, t.id
                    ))
                };
                let number: TicketNumber =
                    t.number.parse().map_err(|_| unknown("number", &t.number))?;
                let participants = by_ticket
                    .remove(&t.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(address, role)| {
                        let role = role
                            .parse()
                            .map_err(|_| unknown("participant role", &role))?;
                        Ok(Participant { address, role })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let customer = participants
                    .iter()
                    .find(|p| p.role == Role::Customer)
                    .map(|p| p.address.clone())
                    .unwrap_or_default();
                let status: Status = t.status.parse().map_err(|_| unknown("status", &t.status))?;
                let priority: Priority = t
                    .priority
                    .parse()
                    .map_err(|_| unknown("priority", &t.priority))?;
                let kind: Kind = t.kind.parse().map_err(|_| unknown("kind", &t.kind))?;
                let id = TicketId(t.id);
                states.initial.insert(id, status);
                states.customers.insert(id, ContactId(t.customer_id));
                states.by_id.insert(
                    id,
                    TicketState {
                        id,
                        number,
                        subject: t.subject,
                        status,
                        priority,
                        kind,
                        assignee: t.assignee,
                        team: t.team,
                        customer,
                        resolved_at: t.resolved_at,
                        root_message_id: t.root_message_id,
                        last_public_message_id: t.last_public_message_id,
                        participants,
                        created_at: t.created_at,
                        service: t.service,
                        responded_at: t.responded_at,
                        mailbox: t.mailbox,
                        fields: t.fields,
                        change: None,
                    },
                );
            }
        }
        Ok(())
    }

    pub fn create(&mut self, state: TicketState, customer: ContactId) {
        self.created.push(state.id);
        self.customers.insert(state.id, customer);
        self.by_id.insert(state.id, state);
    }

    pub fn touch(&mut self, id: TicketId) {
        self.touched.insert(id);
    }

    /// Inserts the tickets the batch created (in their final state) and
    /// updates the ones it changed.
    pub async fn save(
        &mut self,
        txn: &DatabaseTransaction,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let created: HashSet<TicketId> = self.created.iter().copied().collect();
        // SLA clocks: pauses, due times and the next check of every ticket
        // the batch created or changed.
        let changed: Vec<(&TicketState, Option<Status>)> = self
            .created
            .iter()
            .copied()
            .chain(
                self.touched
                    .iter()
                    .copied()
                    .filter(|id| !created.contains(id)),
            )
            .filter_map(|id| {
                let t = self.by_id.get(&id)?;
                Some((t, self.initial.get(&id).copied()))
            })
            .collect();
        let dues = crate::tickets::sla::after_change(txn, settings, &changed, now).await?;
        let row = |t: &TicketState, customer: ContactId| {
            ticket_row(
                t,
                customer,
                dues.get(&t.id).copied().unwrap_or_default(),
                now,
            )
        };
        let mut rows = Vec::with_capacity(self.created.len());
        let mut participants = Vec::with_capacity(self.created.len());
        for id in &self.created {
            let (Some(t), Some(customer)) = (self.by_id.get(id), self.customers.get(id)) else {
                continue;
            };
            rows.push(row(t, *customer));
            participants.push(participant_row(t.id, *customer, Role::Customer));
        }
        insert_chunks(txn, rows, ticket::Entity::insert_many).await?;
        insert_participants(txn, participants).await?;
        // The changed tickets go back in one upsert per chunk of rows that
        // writes only what a mail can change: a statement per ticket would
        // cost a round trip each.
        // In id order, as every batch writes them: two daemons' batches that
        // change the same tickets then wait for each other, never deadlock.
        let mut touched: Vec<TicketId> = self
            .touched
            .iter()
            .copied()
            .filter(|id| !created.contains(id))
            .collect();
        touched.sort_unstable_by_key(|id| id.0);
        let changed: Vec<ticket::ActiveModel> = touched
            .iter()
            .filter_map(|id| Some(row(self.by_id.get(id)?, *self.customers.get(id)?)))
            .collect();
        insert_chunks(txn, changed, |c| {
            ticket::Entity::insert_many(c).on_conflict(
                OnConflict::column(ticket::Column::Id)
                    .update_columns([
                        ticket::Column::Kind,
                        ticket::Column::Status,
                        ticket::Column::Priority,
                        ticket::Column::Assignee,
                        ticket::Column::Team,
                        ticket::Column::ResolvedAt,
                        ticket::Column::RootMessageId,
                        ticket::Column::LastPublicMessageId,
                        ticket::Column::Service,
                        ticket::Column::RespondedAt,
                        ticket::Column::ResponseDueAt,
                        ticket::Column::ResolutionDueAt,
                        ticket::Column::SlaNextAt,
                        ticket::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
        })
        .await?;
        Ok(())
    }
}
