//! Release management in the ingest writer: the records of the batch's
//! release tickets and their changes, a release opened from a change
//! (`/release new`), a change put in a release (`/release REL-…`), and
//! `/deploy`: the gate event `release.before_deploy` for the plugins (the
//! deploy is settled by `crate::releases` once they answered), or, with no
//! plugin installed, the deploy itself.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use tracing::info;

use super::Incoming;
use super::known::BatchKnown;
use super::mail::{Decider, Opening, link_row, vanished};
use super::states::States;
use crate::domain::conversation::{Author, Effects};
use crate::domain::release::{self, ChangeView, Record, State};
use crate::domain::threading::TicketRef;
use crate::domain::ticket::{Kind, TicketId};
use crate::error::Result;
use crate::store::entity::{change, release as release_row, ticket_item, ticket_link};
use crate::store::rows::{in_chunks, insert_chunks};
use crate::tickets::{Contacts, events, release_record};

/// The link reason that makes a change part of a release.
pub(crate) const RELEASE_LINK: &str = "release";

/// The release side of a batch.
#[derive(Default)]
pub(super) struct Releases {
    records: HashMap<TicketId, Record>,
    dirty: HashSet<TicketId>,
    /// Release → its changes (loaded, and added by this batch).
    changes: HashMap<TicketId, Vec<TicketId>>,
    /// Change → its state and items, from change management.
    facts: HashMap<TicketId, (String, Vec<String>)>,
}

impl Releases {
    /// Reads the records of the batch's releases and their changes (loading
    /// the changes into `states`).
    pub async fn load(
        txn: &DatabaseTransaction,
        states: &mut States,
        contacts: &mut Contacts,
        known: &mut BatchKnown,
    ) -> Result<Releases> {
        let mut r = Releases::default();
        let ids: Vec<i64> = states
            .by_id
            .values()
            .filter(|t| t.kind == Kind::Release)
            .map(|t| t.id.0)
            .collect();
        let mut members = Vec::new();
        for chunk in in_chunks(&ids) {
            for row in release_row::Entity::find()
                .filter(release_row::Column::TicketId.is_in(chunk.iter().copied()))
                .all(txn)
                .await?
            {
                r.records
                    .insert(TicketId(row.ticket_id), release_record(&row)?);
            }
            let links: Vec<(i64, i64)> = ticket_link::Entity::find()
                .select_only()
                .column(ticket_link::Column::TicketId)
                .column(ticket_link::Column::OtherId)
                .filter(ticket_link::Column::OtherId.is_in(chunk.iter().copied()))
                .filter(ticket_link::Column::Reason.eq(RELEASE_LINK))
                .into_tuple()
                .all(txn)
                .await?;
            for (change, rel) in links {
                r.add_change(TicketId(rel), TicketId(change));
                members.push(change);
            }
        }
        if !members.is_empty() {
            states.load_linked(txn, &members, contacts, known).await?;
            r.facts = change_facts(txn, &members).await?;
        }
        Ok(r)
    }

    pub fn record(&self, id: TicketId) -> Option<Record> {
        self.records.get(&id).cloned()
    }

    fn put(&mut self, id: TicketId, record: Record) {
        self.records.insert(id, record);
        self.dirty.insert(id);
    }

    fn add_change(&mut self, release: TicketId, change: TicketId) {
        let list = self.changes.entry(release).or_default();
        if !list.contains(&change) {
            list.push(change);
        }
    }

    /// Writes the records the batch changed.
    pub async fn save(&self, txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<()> {
        let rows: Vec<release_row::ActiveModel> = self
            .dirty
            .iter()
            .filter_map(|id| Some(row_of(*id, self.records.get(id)?, now)))
            .collect();
        insert_chunks(txn, rows, |c| {
            release_row::Entity::insert_many(c).on_conflict(
                OnConflict::column(release_row::Column::TicketId)
                    .update_columns([
                        release_row::Column::State,
                        release_row::Column::WindowStart,
                        release_row::Column::WindowEnd,
                        release_row::Column::WindowZone,
                        release_row::Column::Vetoes,
                        release_row::Column::DeployedAt,
                        release_row::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
        })
        .await
    }
}

fn row_of(id: TicketId, r: &Record, now: DateTime<Utc>) -> release_row::ActiveModel {
    release_row::ActiveModel {
        ticket_id: Set(id.0),
        state: Set(r.state.as_str().to_string()),
        window_start: Set(r.window.as_ref().map(|w| w.start)),
        window_end: Set(r.window.as_ref().map(|w| w.end)),
        window_zone: Set(r.window.as_ref().map(|w| w.zone.clone())),
        vetoes: Set(r.vetoes.clone()),
        deployed_at: Set(r.deployed_at),
        updated_at: Set(now),
    }
}

/// The state and items of change tickets, from change management; a
/// change without a record is a draft.
async fn change_facts(
    txn: &DatabaseTransaction,
    ids: &[i64],
) -> Result<HashMap<TicketId, (String, Vec<String>)>> {
    let mut out: HashMap<TicketId, (String, Vec<String>)> = ids
        .iter()
        .map(|id| (TicketId(*id), ("draft".to_string(), Vec::new())))
        .collect();
    for chunk in in_chunks(ids) {
        let states: Vec<(i64, String)> = change::Entity::find()
            .select_only()
            .column(change::Column::TicketId)
            .column(change::Column::State)
            .filter(change::Column::TicketId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        for (id, state) in states {
            out.entry(TicketId(id)).or_default().0 = state;
        }
        let items: Vec<(i64, String)> = ticket_item::Entity::find()
            .select_only()
            .column(ticket_item::Column::TicketId)
            .column(ticket_item::Column::Item)
            .filter(ticket_item::Column::TicketId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        for (id, item) in items {
            out.entry(TicketId(id)).or_default().1.push(item);
        }
    }
    for (_, items) in out.values_mut() {
        items.sort();
    }
    Ok(out)
}

impl Decider<'_> {
    /// What a mail does in release management beyond its own ticket.
    pub(super) fn release_effects(
        &mut self,
        m: &Incoming,
        t: TicketRef,
        fx: &Effects,
        author: &Author,
    ) -> Result<()> {
        let Author::Staff(member) = author else {
            return Ok(());
        };
        let unique = super::dedup_token(&m.parsed.dedup_key);
        if let Some(title) = &fx.new_release {
            let r = self.open_for_staff(
                Opening {
                    kind: Kind::Release,
                    title,
                    member,
                    mailbox: &m.mailbox,
                    from: t,
                    reason: RELEASE_LINK,
                    unique: &unique,
                },
                release::opened_notice,
            )?;
            self.look.releases.put(r.id, Record::default());
            self.look.releases.add_change(r.id, t.id);
        }
        if let Some(n) = fx.join_release
            && let Some(r) = self.look.known.by_number.get(&n.seq).copied()
        {
            self.rows.links.push(link_row(t.id, r.id, RELEASE_LINK));
            let record = self.look.releases.record(r.id).unwrap_or_default();
            self.look.releases.put(r.id, record);
            self.look.releases.add_change(r.id, t.id);
            info!(ticket = %t.number, release = %r.number, "change put in a release");
        }
        if let Some(w) = &fx.release_window {
            let mut record = self.look.releases.record(t.id).unwrap_or_default();
            record.window = Some(w.clone());
            self.look.releases.put(t.id, record);
        }
        if fx.deploy {
            self.deploy(t, &unique)?;
        }
        Ok(())
    }

    /// `/deploy`: the gate event for the plugins, or with none installed,
    /// the deploy and its notes.
    fn deploy(&mut self, t: TicketRef, unique: &str) -> Result<()> {
        let (settings, now) = (self.settings, self.now);
        let state = self
            .look
            .states
            .by_id
            .get(&t.id)
            .ok_or_else(|| vanished(t))?
            .clone();
        let mut record = self.look.releases.record(t.id).unwrap_or_default();
        let changes = self.change_views(t.id);
        if settings.emit_events {
            record.state = State::Deploying;
            record.vetoes.clear();
            let mut data = serde_json::Map::new();
            data.insert(
                "release".into(),
                release::event_data(&state, &record, &changes, now),
            );
            self.rows.events.push(events::Pending {
                ticket_id: t.id.0,
                hook: plugin_api::hooks::RELEASE_BEFORE_DEPLOY,
                payload: events::payload(
                    plugin_api::hooks::RELEASE_BEFORE_DEPLOY,
                    events::ticket_of_state(&state),
                    None,
                    Vec::new(),
                    data,
                ),
            });
            info!(ticket = %t.number, changes = changes.len(), "deploy asked: the gate decides");
        } else {
            record.state = State::Deployed;
            record.vetoes.clear();
            record.deployed_at = Some(now);
            let notes = release::release_notes(
                settings,
                &release::Info::from(&state),
                &record,
                &changes,
                &settings.release_subscribers,
                now,
            );
            self.queue(t, &notes.into_iter().collect::<Vec<_>>(), unique);
            info!(ticket = %t.number, changes = changes.len(), "deployed (no plugin gate installed)");
        }
        self.look.releases.put(t.id, record);
        Ok(())
    }

    /// The release's changes as the gate and the notes show them.
    fn change_views(&self, release: TicketId) -> Vec<ChangeView> {
        let look = &self.look;
        look.releases
            .changes
            .get(&release)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let c = look.states.by_id.get(id)?;
                let (state, items) = look
                    .releases
                    .facts
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| ("draft".into(), Vec::new()));
                // The ticket's own service, then those its items affect.
                let mut services: Vec<String> = c.service.iter().cloned().collect();
                for s in self.settings.changes.catalog.services_of(&items) {
                    if !services.contains(&s) {
                        services.push(s);
                    }
                }
                Some(ChangeView {
                    number: c.number.to_string(),
                    subject: c.subject.clone(),
                    state,
                    items,
                    services,
                })
            })
            .collect()
    }
}
