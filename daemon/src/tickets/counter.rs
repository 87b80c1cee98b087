//! Id sequences kept in the `counters` table: one type, so every writer
//! takes them the same way and in the same order.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use crate::error::Result;
use crate::store::Store;
use crate::store::entity::counter;

/// A named id sequence, read (and on PostgreSQL locked) once per batch and
/// written back once.
pub(crate) struct Counter {
    name: &'static str,
    start: i64,
    next: i64,
}

impl Counter {
    pub(crate) async fn load(txn: &DatabaseTransaction, name: &'static str) -> Result<Counter> {
        let first = Store::counter_next(txn, name).await?;
        Ok(Counter {
            name,
            start: first,
            next: first,
        })
    }

    pub(crate) fn take(&mut self) -> i64 {
        let id = self.next;
        self.next += 1;
        id
    }

    pub(crate) async fn save(&self, txn: &DatabaseTransaction) -> Result<()> {
        if self.next != self.start {
            counter::Entity::update_many()
                .col_expr(counter::Column::Value, Expr::value(self.next - 1))
                .filter(counter::Column::Name.eq(self.name))
                .exec(txn)
                .await?;
        }
        Ok(())
    }
}
