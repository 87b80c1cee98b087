//! Id sequences kept in the `counters` table: one type, so every writer
//! takes them the same way and in the same order.
//!
//! A writer either locks a counter's row for its transaction
//! ([`Counter::load`]) or, for ingest on PostgreSQL, uses a range reserved in
//! a short transaction before its own ([`Reservation`]): batches of several
//! daemons then do not queue on the counter rows from their first id to their
//! commit. A reserved range a batch did not use goes back when nobody reserved
//! after it, so one daemon leaves no gaps; with several, ticket numbers may
//! skip (they already skip between kinds, which share one sequence).

use std::ops::Range;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    Statement,
};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::counter;

/// A named id sequence, read (and on PostgreSQL locked) once per batch and
/// written back once, or a range reserved before the batch.
pub(crate) struct Counter {
    name: &'static str,
    start: i64,
    next: i64,
    /// The end of a reserved range; `None` when the transaction holds the row.
    reserved_end: Option<i64>,
}

impl Counter {
    pub(crate) async fn load(txn: &DatabaseTransaction, name: &'static str) -> Result<Counter> {
        let first = Store::counter_next(txn, name).await?;
        Ok(Counter {
            name,
            start: first,
            next: first,
            reserved_end: None,
        })
    }

    /// The counter `name` of a batch: the range reserved for it, if any,
    /// else the row locked by the transaction.
    pub(crate) async fn of(
        txn: &DatabaseTransaction,
        name: &'static str,
        reserved: Option<Range<i64>>,
    ) -> Result<Counter> {
        match reserved {
            Some(range) => Ok(Counter::reserved(name, range)),
            None => Counter::load(txn, name).await,
        }
    }

    /// A counter that hands out `range`, reserved outside the transaction.
    pub(crate) fn reserved(name: &'static str, range: Range<i64>) -> Counter {
        Counter {
            name,
            start: range.start,
            next: range.start,
            reserved_end: Some(range.end),
        }
    }

    /// The next id. A reserved counter hands out ids past its range rather
    /// than fail a decision half-way; [`Counter::short`] tells, and the
    /// batch is decided again with a larger range before anything is written.
    pub(crate) fn take(&mut self) -> i64 {
        let id = self.next;
        self.next += 1;
        id
    }

    /// Ids taken so far.
    pub(crate) fn used(&self) -> i64 {
        self.next - self.start
    }

    /// Whether more ids were taken than the reserved range holds.
    pub(crate) fn short(&self) -> bool {
        self.reserved_end.is_some_and(|end| self.next > end)
    }

    pub(crate) async fn save(&self, txn: &DatabaseTransaction) -> Result<()> {
        if self.reserved_end.is_none() && self.next != self.start {
            counter::Entity::update_many()
                .col_expr(counter::Column::Value, Expr::value(self.next - 1))
                .filter(counter::Column::Name.eq(self.name))
                .exec(txn)
                .await?;
        }
        Ok(())
    }
}

/// Ids reserved for one ingest batch on PostgreSQL, in a short transaction
/// of their own before the batch's (taking the rows in the lock order of the
/// writers that lock them: contact, ticket, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reservation {
    pub(crate) contact: Range<i64>,
    pub(crate) ticket: Range<i64>,
    pub(crate) message: Range<i64>,
}

/// How many ids of each counter a batch asks for or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IdCounts {
    pub(crate) contact: i64,
    pub(crate) ticket: i64,
    pub(crate) message: i64,
}

impl IdCounts {
    /// A first guess for `mails` mails: most batches stay inside it, and
    /// one that does not is decided again with what it used, doubled.
    pub(crate) fn for_batch(mails: usize) -> IdCounts {
        let n = mails as i64;
        IdCounts {
            contact: 2 * n + 8,
            ticket: n + 8,
            message: 4 * n + 16,
        }
    }

    pub(crate) fn doubled(self) -> IdCounts {
        IdCounts {
            contact: 2 * self.contact.max(1),
            ticket: 2 * self.ticket.max(1),
            message: 2 * self.message.max(1),
        }
    }
}

impl Reservation {
    /// Reserves `counts` on PostgreSQL; `None` on SQLite, whose one writer
    /// at a time locks nothing another could wait for.
    pub(crate) async fn take(store: &Store, counts: IdCounts) -> Result<Option<Reservation>> {
        if store.conn().get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let txn = unflushed(store).await?;
        let reserved = Reservation {
            contact: reserve(&txn, "contact", counts.contact).await?,
            ticket: reserve(&txn, "ticket", counts.ticket).await?,
            message: reserve(&txn, "message", counts.message).await?,
        };
        txn.commit().await?;
        Ok(Some(reserved))
    }

    /// Gives back what a batch did not use (all of it for a batch rolled
    /// back), where no one reserved after it.
    pub(crate) async fn give_back(&self, store: &Store, used: IdCounts) -> Result<()> {
        let txn = unflushed(store).await?;
        for (name, range, used) in [
            ("contact", &self.contact, used.contact),
            ("ticket", &self.ticket, used.ticket),
            ("message", &self.message, used.message),
        ] {
            let last_used = range.start + used.min(range.end - range.start) - 1;
            if last_used + 1 == range.end {
                continue;
            }
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE counters SET value = $1 WHERE name = $2 AND value = $3",
                [last_used.into(), name.into(), (range.end - 1).into()],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

/// A short transaction whose commit does not wait for the disk: a
/// reservation is only worth keeping if a batch that used it commits, and
/// that batch's own commit flushes the log up to and past it. Waiting for
/// the disk three times more per batch cost a single daemon 8%.
async fn unflushed(store: &Store) -> Result<DatabaseTransaction> {
    let txn = store.begin().await?;
    txn.execute_unprepared("SET LOCAL synchronous_commit TO OFF")
        .await?;
    Ok(txn)
}

async fn reserve(txn: &DatabaseTransaction, name: &'static str, n: i64) -> Result<Range<i64>> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE counters SET value = value + $1 WHERE name = $2 RETURNING value",
            [n.into(), name.into()],
        ))
        .await?
        .ok_or_else(|| {
            Error::Invalid(format!("counter {name} missing: run `helpdeskd migrate`"))
        })?;
    let last: i64 = row.try_get("", "value")?;
    Ok(last - n + 1..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_counter_tells_when_its_range_ran_short() {
        let mut c = Counter::reserved("ticket", 10..12);
        assert_eq!((c.take(), c.take()), (10, 11));
        assert!(!c.short());
        assert_eq!(c.take(), 12, "it goes on past the range rather than fail");
        assert!(c.short());
        assert_eq!(c.used(), 3);
    }

    #[test]
    fn a_second_guess_is_twice_what_the_batch_used() {
        let used = IdCounts {
            contact: 31,
            ticket: 1,
            message: 0,
        };
        assert_eq!(
            used.doubled(),
            IdCounts {
                contact: 62,
                ticket: 2,
                message: 2
            }
        );
        let first = IdCounts::for_batch(500);
        assert!(first.ticket > 500 && first.message > 2 * 500 && first.contact > 500);
    }
}
