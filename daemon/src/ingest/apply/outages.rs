//! Outages in the ingest writer: the open outages of the batch's tickets
//! (so `/outage` is checked against them) and the starts and ends staff
//! record, written in the order they came.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};

use super::states::States;
use crate::domain::outage::Command;
use crate::domain::ticket::TicketId;
use crate::error::Result;
use crate::store::entity::outage;
use crate::store::rows::in_chunks;

enum Op {
    Start(outage::ActiveModel),
    End { ticket: TicketId, by: String },
}

#[derive(Default)]
pub(super) struct Outages {
    open: HashMap<TicketId, Vec<String>>,
    ops: Vec<Op>,
}

impl Outages {
    pub async fn load(txn: &DatabaseTransaction, states: &States) -> Result<Outages> {
        let ids: Vec<i64> = states.by_id.keys().map(|t| t.0).collect();
        let mut o = Outages::default();
        for chunk in in_chunks(&ids) {
            let rows: Vec<(i64, String)> = outage::Entity::find()
                .select_only()
                .column(outage::Column::TicketId)
                .column(outage::Column::Item)
                .filter(outage::Column::TicketId.is_in(chunk.iter().copied()))
                .filter(outage::Column::EndedAt.is_null())
                .into_tuple()
                .all(txn)
                .await?;
            for (t, item) in rows {
                o.open.entry(TicketId(t)).or_default().push(item);
            }
        }
        Ok(o)
    }

    pub fn open(&self, id: TicketId) -> Vec<String> {
        self.open.get(&id).cloned().unwrap_or_default()
    }

    /// Records a checked `/outage` command of `by` on ticket `t`.
    pub fn apply(&mut self, t: TicketId, c: &Command, by: &str, now: DateTime<Utc>) {
        match c {
            Command::Start(item) => {
                self.open.entry(t).or_default().push(item.clone());
                self.ops.push(Op::Start(outage::ActiveModel {
                    ticket_id: Set(t.0),
                    item: Set(item.clone()),
                    started_at: Set(now),
                    ended_at: Set(None),
                    started_by: Set(by.to_string()),
                    ended_by: Set(None),
                    ..Default::default()
                }));
            }
            Command::End => {
                self.open.remove(&t);
                self.ops.push(Op::End {
                    ticket: t,
                    by: by.to_string(),
                });
            }
        }
    }

    pub async fn save(&mut self, txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
        for op in std::mem::take(&mut self.ops) {
            match op {
                Op::Start(row) => {
                    outage::Entity::insert(row)
                        .exec_without_returning(txn)
                        .await?;
                }
                Op::End { ticket, by } => {
                    outage::Entity::update_many()
                        .col_expr(outage::Column::EndedAt, Expr::value(now))
                        .col_expr(outage::Column::EndedBy, Expr::value(by))
                        .filter(outage::Column::TicketId.eq(ticket.0))
                        .filter(outage::Column::EndedAt.is_null())
                        .exec(txn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
