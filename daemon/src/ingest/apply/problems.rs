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
use super::mail::{Decider, Opening, link_row, vanished};
use super::states::States;
use super::{Incoming, dedup_token};
use crate::domain::change::{self, Fields};
use crate::domain::conversation::{Author, DraftKind, Effects, TicketState};
use crate::domain::mail::Inbound;
use crate::domain::problem::{self as problem_rules, KnownError, OnResolve, Record};
use crate::domain::satisfaction;
use crate::domain::staff::StaffMember;
use crate::domain::threading::TicketRef;
use crate::domain::ticket::{Kind, Status, TicketId, TicketNumber};
use crate::error::Result;
use crate::store::entity::{problem, ticket, ticket_link};
use crate::store::rows::{in_chunks, insert_chunks};
use crate::tickets::{Contacts, events};

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
        for chunk in in_chunks(&ids) {
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
                let (problem, other) = if chunk.items().contains(&a) {
                    (a, b)
                } else {
                    (b, a)
                };
                p.link(TicketId(problem), TicketId(other));
                linked.push(other);
            }
        }
        if !linked.is_empty() {
            states.load_linked(txn, &linked, contacts, known).await?;
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

    /// The record of problem `id`, if one was written.
    pub fn find(&self, id: TicketId) -> Option<Record> {
        self.records.get(&id).cloned()
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
    for chunk in in_chunks(&records) {
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

impl Decider<'_> {
    /// The known error a new incident's subject and text match, if any.
    pub(super) fn known_error(
        &self,
        t: TicketRef,
        new_ticket: bool,
        author: &Author,
        mail: &Inbound,
    ) -> Option<problem_rules::KnownError> {
        if !new_ticket || !matches!(author, Author::Customer) {
            return None;
        }
        let kind = self.look.states.by_id.get(&t.id)?.kind;
        if !matches!(kind, Kind::Incident | Kind::Request) {
            return None;
        }
        problem_rules::best_match(&self.look.problems.known_errors, &mail.subject, &mail.text)
            .cloned()
    }

    /// What a mail does beyond its own ticket in problem management: the
    /// link to a matched known error, a problem record's changes, a problem
    /// opened from the ticket, the incidents of a solved problem.
    pub(super) fn problem_effects(
        &mut self,
        m: &Incoming,
        t: TicketRef,
        fx: &Effects,
        author: &Author,
    ) -> Result<()> {
        if let Some(n) = fx.known_error
            && let Some(problem) = self
                .look
                .problems
                .known_errors
                .iter()
                .find(|k| k.number.seq == n.seq)
                .map(|k| k.id)
        {
            self.rows.links.push(link_row(t.id, problem, "known error"));
            self.look.problems.link(problem, t.id);
        }
        // Links staff made in this mail count for a problem solved later in
        // the batch, whichever side the problem is on.
        for n in &fx.links {
            let Some(other) = self.look.known.by_number.get(&n.seq).copied() else {
                continue;
            };
            let kind = |id: TicketId| self.look.states.by_id.get(&id).map(|s| s.kind);
            if kind(other.id) == Some(Kind::Problem) {
                self.look.problems.link(other.id, t.id);
            }
            if kind(t.id) == Some(Kind::Problem) {
                self.look.problems.link(t.id, other.id);
            }
        }
        if !fx.problem_edit.is_empty() {
            let state = self
                .look
                .states
                .by_id
                .get(&t.id)
                .ok_or_else(|| vanished(t))?;
            self.look.problems.edit(state, &fx.problem_edit);
        }
        let unique = dedup_token(&m.parsed.dedup_key);
        if let (Some(title), Author::Staff(member)) = (&fx.new_problem, author) {
            self.open_problem(t, title, member, &m.mailbox, &unique)?;
        }
        let is_problem = self
            .look
            .states
            .by_id
            .get(&t.id)
            .is_some_and(|s| s.kind == Kind::Problem);
        if is_problem && solves(&fx.changes) {
            self.look.problems.solved(t.id);
            self.tell_incidents(t, &fx.shown_text, &unique)?;
        }
        Ok(())
    }

    /// Opens a problem from `incident` (`/problem TITLE`), assigned to the
    /// staff member, linked, and tells them with a mail they can reply to.
    fn open_problem(
        &mut self,
        incident: TicketRef,
        title: &str,
        member: &StaffMember,
        mailbox: &str,
        unique: &str,
    ) -> Result<()> {
        let p = self.open_for_staff(
            Opening {
                kind: Kind::Problem,
                title,
                member,
                mailbox,
                from: incident,
                reason: "problem",
                unique,
            },
            problem_rules::opened_notice,
        )?;
        self.look.problems.link(p.id, incident.id);
        Ok(())
    }

    /// A solved problem: each open linked incident's customers get one
    /// mail, and the incident is resolved or its assignees told
    /// (`[problems] on_resolve`).
    fn tell_incidents(&mut self, p: TicketRef, text: &str, unique: &str) -> Result<()> {
        let (settings, now) = (self.settings, self.now);
        let problem = self
            .look
            .states
            .by_id
            .get(&p.id)
            .ok_or_else(|| vanished(p))?
            .clone();
        let record = self.look.problems.record(p.id);
        let resolve = settings.problem_on_resolve == OnResolve::Resolve;
        let unique = format!("{unique}.{}", p.number.seq);
        for id in self.look.problems.linked(p.id).to_vec() {
            let Some(incident) = self.look.states.by_id.get_mut(&id) else {
                continue;
            };
            if matches!(incident.kind, Kind::Problem | Kind::Change)
                || matches!(incident.status, Status::Resolved | Status::Closed)
            {
                continue;
            }
            let before = incident.status;
            let changes = if resolve {
                resolve_incident(incident, now)
            } else {
                Vec::new()
            };
            let incident = incident.clone();
            let mut drafts = vec![problem_rules::resolution_notice(
                settings,
                &problem,
                &record,
                &incident,
                text,
                !changes.is_empty(),
            )];
            if !resolve {
                drafts.extend(problem_rules::incident_notice(
                    settings, &problem, &incident, text,
                ));
            }
            // Resolved through its problem, as by staff: its customer is
            // asked for a rating (when the desk asks, and a person wrote).
            if !changes.is_empty()
                && satisfaction::asks(
                    settings,
                    &incident,
                    before,
                    self.look.relation.persons.contains(&id),
                )
            {
                drafts.push(satisfaction::request(settings, &incident));
            }
            if settings.emit_events && !changes.is_empty() {
                for hook in ["ticket.updated", "ticket.resolved"] {
                    self.rows
                        .events
                        .push(events::for_ticket(&incident, hook, &changes));
                }
            }
            self.look.states.touch(id);
            let r = TicketRef {
                id,
                number: incident.number,
            };
            let queued = self.queue(r, &drafts, &unique);
            self.keep_requests(r, &queued);
            let told = queued
                .ids
                .iter()
                .filter(|(_, k)| *k == DraftKind::ProblemResolved)
                .count();
            if let Some((mid, _)) = queued
                .ids
                .iter()
                .rev()
                .find(|(_, k)| *k == DraftKind::ProblemResolved)
                && let Some(st) = self.look.states.by_id.get_mut(&id)
            {
                st.last_public_message_id = Some(mid.clone());
            }
            for (mid, _) in queued.ids {
                self.look.known.by_mid.insert(mid, r);
            }
            info!(ticket = %r.number, problem = %p.number, told, resolved = !changes.is_empty(), "problem solved: incident's customers told");
        }
        Ok(())
    }
}
