//! Problem management in the ingest writer: the records of the batch's
//! problem tickets and their linked tickets, the known errors new incidents
//! are matched against, and what crosses tickets (a problem opened from an
//! incident, a solved problem telling its incidents' customers). The
//! decisions are `domain::problem`'s; this file loads and keeps the books,
//! in the batch's transaction like everything else a mail does.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use tracing::{info, warn};

use super::known::BatchKnown;
use super::states::States;
use crate::domain::change::{self, Fields};
use crate::domain::conversation::{Lookup, TicketState};
use crate::domain::problem::{KnownError, Record};
use crate::domain::ticket::{Kind, Status, TicketId, TicketNumber};
use crate::error::Result;
use crate::store::entity::{problem, ticket, ticket_link};
use crate::store::rows::{IN_CHUNK, insert_chunks};
use crate::tickets::Contacts;

/// The problem side of a batch.
#[derive(Default)]
pub(super) struct Problems {
    records: HashMap<TicketId, Record>,
    dirty: HashSet<TicketId>,
    /// Problem → the tickets linked to it, either way (loaded, and added by
    /// this batch).
    links: HashMap<TicketId, Vec<TicketId>>,
    /// Known errors of problems not solved yet, newest last.
    pub known_errors: Vec<KnownError>,
}

impl Problems {
    /// Reads the records and links of the batch's problem tickets (loading
    /// the linked tickets into `states`) and the known errors.
    pub async fn load(
        txn: &DatabaseTransaction,
        states: &mut States,
        contacts: &mut Contacts,
        known: &mut BatchKnown,
    ) -> Result<Problems> {
        let mut p = Problems {
            known_errors: load_known_errors(txn).await?,
            ..Problems::default()
        };
        let ids: Vec<i64> = states
            .by_id
            .values()
            .filter(|t| t.kind == Kind::Problem)
            .map(|t| t.id.0)
            .collect();
        let mut linked = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            for r in problem::Entity::find()
                .filter(problem::Column::TicketId.is_in(chunk.iter().copied()))
                .all(txn)
                .await?
            {
                p.records.insert(TicketId(r.ticket_id), record_of(r));
            }
            let rows: Vec<(i64, i64)> = ticket_link::Entity::find()
                .select_only()
                .column(ticket_link::Column::TicketId)
                .column(ticket_link::Column::OtherId)
                .filter(
                    Condition::any()
                        .add(ticket_link::Column::TicketId.is_in(chunk.iter().copied()))
                        .add(ticket_link::Column::OtherId.is_in(chunk.iter().copied())),
                )
                .into_tuple()
                .all(txn)
                .await?;
            for (a, b) in rows {
                let (problem, other) = if chunk.contains(&a) { (a, b) } else { (b, a) };
                p.link(TicketId(problem), TicketId(other));
                linked.push(other);
            }
        }
        if !linked.is_empty() {
            states.load_more(txn, &linked, contacts).await?;
            for id in linked {
                if let Some(st) = states.by_id.get(&TicketId(id)) {
                    for person in &st.participants {
                        known
                            .participants
                            .insert((st.id, person.address.email.clone()));
                    }
                }
            }
        }
        Ok(p)
    }

    pub fn link(&mut self, problem: TicketId, other: TicketId) {
        let list = self.links.entry(problem).or_default();
        if !list.contains(&other) {
            list.push(other);
        }
    }

    pub fn linked(&self, problem: TicketId) -> &[TicketId] {
        self.links.get(&problem).map_or(&[], Vec::as_slice)
    }

    pub fn record(&self, id: TicketId) -> Record {
        self.records.get(&id).cloned().unwrap_or_default()
    }

    /// Applies a staff edit to a problem's record (checked by the
    /// conversation rules before).
    pub fn edit(&mut self, t: &TicketState, edit: &crate::domain::problem::Edit) {
        match edit.apply_to(&self.record(t.id)) {
            Ok(next) => {
                // A known error made or withdrawn in this batch matches the
                // batch's later mails too.
                self.known_errors.retain(|k| k.id != t.id);
                if next.known_error
                    && let (Some(w), Ok(keywords)) = (&next.workaround, next.keywords.parse())
                {
                    self.known_errors.push(KnownError {
                        id: t.id,
                        number: t.number,
                        subject: t.subject.clone(),
                        workaround: w.clone(),
                        keywords,
                    });
                }
                self.records.insert(t.id, next);
                self.dirty.insert(t.id);
            }
            Err(e) => warn!(ticket = %t.number, error = e, "problem record not changed"),
        }
    }

    /// A problem no longer offers its known error once it is solved.
    pub fn solved(&mut self, id: TicketId) {
        self.known_errors.retain(|k| k.id != id);
    }

    /// Writes the records the batch changed.
    pub async fn save(&self, txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
        let rows: Vec<problem::ActiveModel> = self
            .dirty
            .iter()
            .filter_map(|id| {
                let r = self.records.get(id)?;
                Some(problem::ActiveModel {
                    ticket_id: Set(id.0),
                    root_cause: Set(r.root_cause.clone()),
                    workaround: Set(r.workaround.clone()),
                    known_error: Set(r.known_error),
                    keywords: Set(r.keywords.clone()),
                    updated_at: Set(now),
                })
            })
            .collect();
        insert_chunks(txn, rows, |c| {
            problem::Entity::insert_many(c).on_conflict(
                OnConflict::column(problem::Column::TicketId)
                    .update_columns([
                        problem::Column::RootCause,
                        problem::Column::Workaround,
                        problem::Column::KnownError,
                        problem::Column::Keywords,
                        problem::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
        })
        .await
    }
}

fn record_of(r: problem::Model) -> Record {
    Record {
        root_cause: r.root_cause,
        workaround: r.workaround,
        known_error: r.known_error,
        keywords: r.keywords,
    }
}

/// Known errors of problems neither resolved nor closed.
async fn load_known_errors(txn: &DatabaseTransaction) -> Result<Vec<KnownError>> {
    let records = problem::Entity::find()
        .filter(problem::Column::KnownError.eq(true))
        .all(txn)
        .await?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for chunk in records.chunks(IN_CHUNK) {
        let tickets: Vec<(i64, String, String)> = ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .column(ticket::Column::Number)
            .column(ticket::Column::Subject)
            .filter(ticket::Column::Id.is_in(chunk.iter().map(|r| r.ticket_id)))
            .filter(
                ticket::Column::Status
                    .is_not_in([Status::Resolved.as_str(), Status::Closed.as_str()]),
            )
            .into_tuple()
            .all(txn)
            .await?;
        for (id, number, subject) in tickets {
            let Some(r) = chunk.iter().find(|r| r.ticket_id == id) else {
                continue;
            };
            let (Ok(number), Some(workaround)) = (number.parse::<TicketNumber>(), &r.workaround)
            else {
                continue;
            };
            match r.keywords.parse() {
                Ok(keywords) => out.push(KnownError {
                    id: TicketId(id),
                    number,
                    subject,
                    workaround: workaround.clone(),
                    keywords,
                }),
                Err(e) => {
                    warn!(ticket = %number, error = e, "known error keywords unreadable; not matched")
                }
            }
        }
    }
    out.sort_by_key(|k| k.id);
    Ok(out)
}

/// What the conversation rules look up: tickets by number, problem records.
pub(super) struct View<'a> {
    pub known: &'a BatchKnown,
    pub problems: &'a Problems,
    pub releases: &'a super::releases::Releases,
    pub outages: &'a super::outages::Outages,
}

impl Lookup for View<'_> {
    fn ticket_id(&self, number: TicketNumber) -> Option<TicketId> {
        self.known.ticket_id(number)
    }
    fn problem(&self, id: TicketId) -> Option<Record> {
        self.problems.records.get(&id).cloned()
    }
    fn release(&self, id: TicketId) -> Option<crate::domain::release::Record> {
        self.releases.record(id)
    }
    fn open_outages(&self, id: TicketId) -> Vec<String> {
        self.outages.open(id)
    }
    fn planned_changes(&self) -> Vec<crate::domain::changes::Planned> {
        self.known.planned_changes()
    }
}

/// Moves an incident of a solved problem to resolved; the field changes,
/// for its events.
pub(super) fn resolve_incident(
    t: &mut TicketState,
    now: DateTime<Utc>,
) -> Vec<crate::domain::conversation::Change> {
    let mut f = Fields::of(t);
    match change::apply(&mut f, &change::Change::Status(Status::Resolved), now) {
        Ok(moved) => {
            f.put(t);
            moved
        }
        Err(e) => {
            info!(ticket = %t.number, error = e, "incident of a solved problem left as it is");
            Vec::new()
        }
    }
}

/// Whether a status change solves a problem: to resolved, or to closed
/// without passing resolved.
pub(super) fn solves(changes: &[crate::domain::conversation::Change]) -> bool {
    changes.iter().any(|c| {
        c.field == "status"
            && (c.to == Status::Resolved.as_str()
                || (c.to == Status::Closed.as_str() && c.from != Status::Resolved.as_str()))
    })
}
