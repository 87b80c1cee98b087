//! The rows of configuration items and change management in the ingest
//! writer: each batch loads the change records of the tickets it touches
//! (and the planned changes, for the overlap check) and writes back what
//! its mails did (`domain::changes` decides).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde_json::json;
use tracing::info;

use super::known::Lookups;
use crate::domain::changes::{Answer, Planned, Quorum, Record, State, Window};
use crate::domain::conversation::{Effects, TicketState};
use crate::domain::ticket::Kind;
use crate::error::{Error, Result};
use crate::store::entity::{change, change_history, ticket_item};
use crate::store::rows::{in_chunks, insert_chunks};
use crate::tickets::events::{self, Pending};

/// How the history shows an answer without words.
const NO_WORDS: &str = crate::domain::changes::apply::NO_WORDS;

/// Fills in the change records and items of the batch's tickets, and the
/// planned changes.
pub(super) async fn load(txn: &DatabaseTransaction, look: &mut Lookups) -> Result<()> {
    let ids: Vec<i64> = look.states.by_id.keys().map(|t| t.0).collect();
    for chunk in in_chunks(&ids) {
        let rows = change::Entity::find()
            .filter(change::Column::TicketId.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        let items = ticket_item::Entity::find()
            .filter(ticket_item::Column::TicketId.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        let history = change_history::Entity::find()
            .filter(change_history::Column::TicketId.is_in(chunk.iter().copied()))
            .filter(change_history::Column::Action.is_in(["approve", "reject"]))
            .all(txn)
            .await?;
        let mut by_id: HashMap<i64, change::Model> =
            rows.into_iter().map(|r| (r.ticket_id, r)).collect();
        let mut items_of: HashMap<i64, Vec<String>> = HashMap::new();
        for i in items {
            items_of.entry(i.ticket_id).or_default().push(i.item);
        }
        for st in look.states.by_id.values_mut() {
            let row = by_id.remove(&st.id.0);
            let items = items_of.remove(&st.id.0).unwrap_or_default();
            if row.is_none() && items.is_empty() && st.kind != Kind::Change {
                continue;
            }
            let mut rec = match row {
                Some(r) => record_of(&r)?,
                None => Record::default(),
            };
            rec.items = items;
            rec.answers = history
                .iter()
                .filter(|h| h.ticket_id == st.id.0 && h.round as u32 == rec.round)
                .map(|h| Answer {
                    approver: h.actor.clone(),
                    approve: h.action == "approve",
                    reason: if h.detail == NO_WORDS {
                        String::new()
                    } else {
                        h.detail.clone()
                    },
                })
                .collect();
            st.change = Some(Box::new(rec));
        }
    }
    // Only a batch with a change in it can submit one (the overlap check).
    if look.states.by_id.values().any(|st| st.kind == Kind::Change) {
        look.known.planned = planned(txn).await?;
    }
    Ok(())
}

/// A stored change row as a record (items and answers are added after).
pub fn record_of(r: &change::Model) -> Result<Record> {
    let bad = |what: &str, v: &str| {
        Error::Invalid(format!(
            "change of ticket {} has an unknown stored {what} {v:?}",
            r.ticket_id
        ))
    };
    let state: State = r.state.parse().map_err(|_| bad("state", &r.state))?;
    let risk = match &r.risk {
        Some(x) => Some(x.parse().map_err(|_| bad("risk", x))?),
        None => None,
    };
    let quorum: Quorum = r.quorum.parse().map_err(|_| bad("quorum", &r.quorum))?;
    let window = match (r.window_start, r.window_end) {
        (Some(start), Some(end)) => Some(Window {
            start,
            end,
            zone: r.window_zone.clone().unwrap_or_else(|| "UTC".into()),
        }),
        _ => None,
    };
    let lines = |s: &str| -> Vec<String> {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(Record {
        state,
        risk,
        impact: r.impact.clone(),
        window,
        items: Vec::new(),
        round: r.round.max(0) as u32,
        board: r.board.clone(),
        approvers: lines(&r.approvers),
        quorum,
        submitted_at: r.submitted_at,
        submitted_by: r.submitted_by.clone(),
        deadline: r.deadline_at,
        flags: lines(&r.flags),
        answers: Vec::new(),
    })
}

/// Changes still planned (not rejected or closed) with a window, and their items.
async fn planned(txn: &DatabaseTransaction) -> Result<Vec<Planned>> {
    let rows = change::Entity::find()
        .filter(change::Column::State.is_not_in(["rejected", "closed"]))
        .filter(change::Column::WindowStart.is_not_null())
        .all(txn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.ticket_id).collect();
    let mut items_of: HashMap<i64, Vec<String>> = HashMap::new();
    for chunk in in_chunks(&ids) {
        for i in ticket_item::Entity::find()
            .filter(ticket_item::Column::TicketId.is_in(chunk.iter().copied()))
            .all(txn)
            .await?
        {
            items_of.entry(i.ticket_id).or_default().push(i.item);
        }
    }
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(Planned {
                ticket_seq: r.ticket_id,
                state: r.state.parse().ok()?,
                start: r.window_start?,
                end: r.window_end?,
                items: items_of.remove(&r.ticket_id).unwrap_or_default(),
            })
        })
        .collect())
}

/// The change rows a batch writes.
#[derive(Default)]
pub(super) struct ChangeRows {
    items: Vec<ticket_item::ActiveModel>,
    history: Vec<change_history::ActiveModel>,
    /// The newest state of each change a mail moved.
    records: HashMap<i64, change::ActiveModel>,
}

impl ChangeRows {
    /// Keeps what one mail did; `by` is its sender.
    pub fn collect(
        &mut self,
        t: &TicketState,
        fx: &Effects,
        (by, message_id): (&str, &str),
        now: DateTime<Utc>,
    ) {
        let p = &fx.process;
        for item in &p.items {
            self.items.push(ticket_item::ActiveModel {
                ticket_id: Set(t.id.0),
                item: Set(item.clone()),
                added_by: Set(by.to_string()),
                added_at: Set(now),
            });
        }
        for e in &p.history {
            info!(
                ticket = %t.number,
                message_id,
                round = e.round,
                actor = e.actor,
                action = e.action,
                detail = e.detail,
                "change"
            );
            self.history.push(change_history::ActiveModel {
                ticket_id: Set(t.id.0),
                round: Set(e.round as i32),
                at: Set(now),
                actor: Set(e.actor.clone()),
                action: Set(e.action.clone()),
                detail: Set(e.detail.clone()),
                proof: Set(e.proof.clone()),
                ..Default::default()
            });
        }
        if p.touched
            && t.kind == Kind::Change
            && let Some(rec) = t.change.as_deref()
        {
            self.records.insert(t.id.0, row_of(t.id.0, rec, now));
        }
    }

    pub async fn save(self, txn: &DatabaseTransaction) -> Result<()> {
        insert_chunks(txn, self.items, |c| {
            ticket_item::Entity::insert_many(c).on_conflict(
                OnConflict::columns([ticket_item::Column::TicketId, ticket_item::Column::Item])
                    .do_nothing()
                    .to_owned(),
            )
        })
        .await?;
        let records: Vec<change::ActiveModel> = self.records.into_values().collect();
        insert_chunks(txn, records, |c| {
            change::Entity::insert_many(c).on_conflict(
                OnConflict::column(change::Column::TicketId)
                    .update_columns([
                        change::Column::State,
                        change::Column::Risk,
                        change::Column::Impact,
                        change::Column::WindowStart,
                        change::Column::WindowEnd,
                        change::Column::WindowZone,
                        change::Column::Round,
                        change::Column::Board,
                        change::Column::Approvers,
                        change::Column::Quorum,
                        change::Column::SubmittedAt,
                        change::Column::SubmittedBy,
                        change::Column::DeadlineAt,
                        change::Column::Flags,
                        change::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
        })
        .await?;
        insert_chunks(txn, self.history, change_history::Entity::insert_many).await?;
        Ok(())
    }
}

fn row_of(id: i64, rec: &Record, now: DateTime<Utc>) -> change::ActiveModel {
    change::ActiveModel {
        ticket_id: Set(id),
        state: Set(rec.state.as_str().into()),
        risk: Set(rec.risk.map(|r| r.as_str().to_string())),
        impact: Set(rec.impact.clone()),
        window_start: Set(rec.window.as_ref().map(|w| w.start)),
        window_end: Set(rec.window.as_ref().map(|w| w.end)),
        window_zone: Set(rec.window.as_ref().map(|w| w.zone.clone())),
        round: Set(rec.round as i32),
        board: Set(rec.board.clone()),
        approvers: Set(rec.approvers.join("\n")),
        quorum: Set(rec.quorum.to_string()),
        submitted_at: Set(rec.submitted_at),
        submitted_by: Set(rec.submitted_by.clone()),
        deadline_at: Set(rec.deadline),
        flags: Set(rec.flags.join("\n")),
        updated_at: Set(now),
    }
}

/// The `change.*` hook events of one mail: the ticket, and `change` with
/// the record's facts.
pub(super) fn events(t: &TicketState, fx: &Effects) -> Vec<Pending> {
    let Some(rec) = t.change.as_deref() else {
        return Vec::new();
    };
    fx.process
        .hooks
        .iter()
        .map(|hook| {
            let mut data = serde_json::Map::new();
            data.insert(
                "change".into(),
                json!({
                    "number": crate::domain::changes::apply::chg(t).to_string(),
                    "state": rec.state.as_str(),
                    "risk": rec.risk.map(|r| r.as_str()),
                    "impact": rec.impact,
                    "window_start": rec.window.as_ref().map(|w| w.start.to_rfc3339()),
                    "window_end": rec.window.as_ref().map(|w| w.end.to_rfc3339()),
                    "items": rec.items,
                    "round": rec.round,
                    "board": rec.board,
                    "approvers": rec.approvers,
                    "flags": rec.flags,
                }),
            );
            Pending {
                ticket_id: t.id.0,
                hook,
                payload: events::payload(hook, events::ticket_of_state(t), None, Vec::new(), data),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::changes::{Risk, State};
    use crate::domain::conversation::tests::ticket;

    #[test]
    fn a_change_hook_carries_the_change() {
        let mut t = ticket();
        t.kind = Kind::Change;
        t.change = Some(Box::new(Record {
            state: State::Approved,
            risk: Some(Risk::High),
            items: vec!["db1".into()],
            round: 2,
            approvers: vec!["ann@example.test".into()],
            ..Record::default()
        }));
        let mut fx = Effects::default();
        fx.process.hooks = vec!["change.approved"];
        let ev = events(&t, &fx);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].hook, "change.approved");
        let p = &ev[0].payload;
        assert_eq!(p["hook"], "change.approved");
        assert_eq!(p["change"]["number"], "CHG-000001");
        assert_eq!(p["change"]["state"], "approved");
        assert_eq!(p["change"]["risk"], "high");
        assert_eq!(p["change"]["items"][0], "db1");
        assert_eq!(p["change"]["round"], 2);
        assert_eq!(p["ticket"]["number"], "INC-000001");
        // No hooks, no events; no record, no events.
        assert!(events(&t, &Effects::default()).is_empty());
        t.change = None;
        assert!(events(&t, &fx).is_empty());
    }

    #[test]
    fn a_record_survives_its_row() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 4, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let rec = Record {
            state: State::Submitted,
            risk: Some(Risk::Medium),
            impact: Some("ten minutes".into()),
            window: Some(Window {
                start: at,
                end: at + chrono::Duration::hours(2),
                zone: "Europe/Berlin".into(),
            }),
            round: 3,
            board: Some("infra".into()),
            approvers: vec!["ann@example.test".into(), "ben@example.test".into()],
            quorum: Quorum::Any,
            submitted_at: Some(at),
            submitted_by: Some("ada@example.test".into()),
            deadline: Some(at + chrono::Duration::hours(48)),
            flags: vec!["window falls in the change freeze \"x\"".into()],
            ..Record::default()
        };
        let row = row_of(7, &rec, at);
        let model = change::Model {
            ticket_id: 7,
            state: row.state.unwrap(),
            risk: row.risk.unwrap(),
            impact: row.impact.unwrap(),
            window_start: row.window_start.unwrap(),
            window_end: row.window_end.unwrap(),
            window_zone: row.window_zone.unwrap(),
            round: row.round.unwrap(),
            board: row.board.unwrap(),
            approvers: row.approvers.unwrap(),
            quorum: row.quorum.unwrap(),
            submitted_at: row.submitted_at.unwrap(),
            submitted_by: row.submitted_by.unwrap(),
            deadline_at: row.deadline_at.unwrap(),
            flags: row.flags.unwrap(),
            updated_at: at,
        };
        assert_eq!(record_of(&model).ok(), Some(rec));
        let bad = change::Model {
            state: "pondering".into(),
            ..model
        };
        assert!(record_of(&bad).is_err());
    }
}
