//! Contacts by address for one transaction: ids for new addresses, and each
//! sender's acknowledgement budget.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::Counter;
use crate::domain::intake::AckBudget;
use crate::domain::mail::Address;
use crate::domain::ticket::ContactId;
use crate::error::Result;
use crate::store::entity::contact;
use crate::store::rows::{in_chunks, insert_chunks};

/// Contacts by address: those the database has, and those this batch adds,
/// with each sender's acknowledgement budget.
pub(crate) struct Contacts {
    pub(crate) ids: HashMap<String, ContactId>,
    acks: HashMap<i64, AckBudget>,
    acks_changed: HashSet<i64>,
    /// The rows read by address, which changed budgets are written back over.
    loaded: HashMap<i64, contact::Model>,
    new: Vec<contact::ActiveModel>,
    seq: Counter,
}

impl Contacts {
    pub(crate) async fn load(txn: &DatabaseTransaction, emails: Vec<&str>) -> Result<Contacts> {
        let seq = Counter::load(txn, "contact").await?;
        Contacts::load_with(txn, emails, seq).await
    }

    /// [`Contacts::load`] with new contacts' ids from `seq`.
    pub(crate) async fn load_with(
        txn: &DatabaseTransaction,
        emails: Vec<&str>,
        seq: Counter,
    ) -> Result<Contacts> {
        let mut ids = HashMap::new();
        let mut acks = HashMap::new();
        let mut loaded = HashMap::new();
        for chunk in in_chunks(&emails) {
            let rows = contact::Entity::find()
                .filter(contact::Column::Email.is_in(chunk.iter().map(|s| s.to_string())))
                .all(txn)
                .await?;
            for row in rows {
                ids.insert(row.email.clone(), ContactId(row.id));
                acks.insert(
                    row.id,
                    AckBudget {
                        window_start: row.ack_window_start,
                        sent: row.ack_count,
                    },
                );
                loaded.insert(row.id, row);
            }
        }
        Ok(Contacts {
            ids,
            acks,
            loaded,
            acks_changed: HashSet::new(),
            new: Vec::new(),
            seq,
        })
    }

    pub(crate) fn id_for(&mut self, a: &Address, now: DateTime<Utc>) -> ContactId {
        if let Some(id) = self.ids.get(&a.email) {
            return *id;
        }
        let id = ContactId(self.seq.take());
        self.ids.insert(a.email.clone(), id);
        self.new.push(contact::ActiveModel {
            id: Set(id.0),
            email: Set(a.email.clone()),
            name: Set(a.name.clone()),
            created_at: Set(now),
            ack_window_start: Set(None),
            ack_count: Set(0),
        });
        id
    }

    /// Takes one acknowledgement from the sender's hourly budget, if any is left.
    /// The counter new contacts take their ids from.
    pub(crate) fn seq(&self) -> &Counter {
        &self.seq
    }

    pub(crate) fn ack_allowed(&mut self, id: ContactId, now: DateTime<Utc>, per_hour: u32) -> bool {
        let id = id.0;
        let budget = self.acks.entry(id).or_default();
        let before = *budget;
        let taken = budget.take(now, per_hour);
        if *budget != before {
            self.acks_changed.insert(id);
        }
        taken
    }

    pub(crate) async fn save(&mut self, txn: &DatabaseTransaction) -> Result<()> {
        // New contacts in address order and changed budgets in id order, as
        // every batch writes them: batches of two daemons that meet on the
        // same contacts wait for each other (and the later one is decided
        // again), never deadlock.
        let mut rows = std::mem::take(&mut self.new);
        rows.sort_by(|a, b| match (&a.email, &b.email) {
            (Set(a), Set(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        });
        let mut inserted = HashSet::new();
        for row in &mut rows {
            if let Set(id) = row.id
                && let Some(budget) = self.acks.get(&id)
            {
                row.ack_window_start = Set(budget.window_start);
                row.ack_count = Set(budget.sent);
                inserted.insert(id);
            }
        }
        insert_chunks(txn, rows, contact::Entity::insert_many).await?;
        self.seq.save(txn).await?;
        // Changed budgets go back in one upsert per chunk of rows: a
        // statement per sender would cost a round trip each. A budget is only
        // taken for a sender, and a sender is either new (inserted above) or
        // was read by address in `load`.
        let mut changed_ids: Vec<i64> = self.acks_changed.iter().copied().collect();
        changed_ids.sort_unstable();
        let changed: Vec<contact::ActiveModel> = changed_ids
            .iter()
            .filter(|id| !inserted.contains(id))
            .filter_map(|id| {
                let row = self.loaded.get(id)?;
                let budget = self.acks.get(id)?;
                Some(contact::ActiveModel {
                    id: Set(row.id),
                    email: Set(row.email.clone()),
                    name: Set(row.name.clone()),
                    created_at: Set(row.created_at),
                    ack_window_start: Set(budget.window_start),
                    ack_count: Set(budget.sent),
                })
            })
            .collect();
        insert_chunks(txn, changed, |c| {
            contact::Entity::insert_many(c).on_conflict(
                OnConflict::column(contact::Column::Id)
                    .update_columns([contact::Column::AckWindowStart, contact::Column::AckCount])
                    .to_owned(),
            )
        })
        .await?;
        Ok(())
    }
}
