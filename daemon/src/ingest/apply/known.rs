//! What a batch reads before deciding its mails: which mails the desk has,
//! the tickets their references, tokens and tags name (with their state and
//! participants), the contacts involved and the desk mails bounces report.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::Incoming;
use super::outages::Outages;
use super::problems::Problems;
use super::releases::Releases;
use super::states::States;
use crate::domain::commands::{self, Command};
use crate::domain::conversation::{Lookup, Settings};
use crate::domain::mail::Inbound;
use crate::domain::threading::{self, Known, TicketRef};
use crate::domain::ticket::{TicketId, TicketNumber};
use crate::domain::token::Token;
use crate::error::Result;
use crate::ingest::parse::{self, Parsed};
use crate::store::entity::{message, outbox, quarantine, ticket, ticket_key};
use crate::store::rows::in_chunks;
use crate::tickets::{Contacts, Counter, Reservation};

/// Everything a batch is decided against.
pub(super) struct Lookups {
    /// Dedup keys of mails stored or quarantined before.
    pub seen: HashSet<String>,
    pub known: BatchKnown,
    pub contacts: Contacts,
    pub states: States,
    pub problems: Problems,
    pub releases: Releases,
    pub outages: Outages,
    /// Desk mails that bounce reports name: Message-ID → (outbox id, recipients).
    pub bounce_targets: HashMap<String, (i64, String)>,
    /// The heads of mails too large to take, by their place in the batch.
    pub heads: HashMap<usize, Box<Inbound>>,
    /// Senders told in the last day that a mail was too large.
    pub told_too_large: HashSet<String>,
    /// Rating requests and ratings (`relationship.rs`).
    pub relation: super::relationship::Relationship,
}

impl Lookups {
    /// Reads what `batch` refers to with a handful of `IN (…)` queries;
    /// `tokens` are the verified tokens of each mail.
    pub async fn load(
        txn: &DatabaseTransaction,
        settings: &Settings,
        batch: &[Incoming],
        tokens: &[Vec<Token>],
        reserved: Option<&Reservation>,
        now: DateTime<Utc>,
    ) -> Result<Lookups> {
        let seen = seen(txn, batch).await?;
        let refs = References::of(settings, batch, tokens);
        let mut known = BatchKnown::default();
        let ids: Vec<String> = refs.ids.iter().map(|s| s.to_string()).collect();
        known.load_references(txn, refs.ids).await?;
        known.load_tags(txn, refs.numbers).await?;
        let emails = refs.emails.iter().map(String::as_str).collect();
        let seq = Counter::of(txn, "contact", reserved.map(|r| r.contact.clone())).await?;
        let mut contacts = Contacts::load_with(txn, emails, seq).await?;
        let mut states = States::load(txn, &known, &mut contacts).await?;
        for st in states.by_id.values() {
            for p in &st.participants {
                known.participants.insert((st.id, p.address.email.clone()));
            }
        }
        let problems = Problems::load(txn, &mut states, &mut contacts, &mut known).await?;
        let releases = Releases::load(txn, &mut states, &mut contacts, &mut known).await?;
        let outages = if refs.outages {
            Outages::load(txn, &states).await?
        } else {
            Outages::default()
        };
        let (heads, told_too_large) = too_large(txn, batch, now).await?;
        let tickets: Vec<i64> = states.by_id.keys().map(|t| t.0).collect();
        let by_token = token_only(batch, tokens, &known);
        let relation =
            super::relationship::Relationship::load(txn, settings, &ids, &tickets, &by_token)
                .await?;
        Ok(Lookups {
            relation,
            seen,
            known,
            contacts,
            states,
            problems,
            releases,
            outages,
            bounce_targets: load_bounce_targets(txn, batch).await?,
            heads,
            told_too_large,
        })
    }
}

/// The heads of the batch's mails that were too large to fetch, parsed, and
/// which of their senders were told so in the last day.
async fn too_large(
    txn: &DatabaseTransaction,
    batch: &[Incoming],
    now: DateTime<Utc>,
) -> Result<(HashMap<usize, Box<Inbound>>, HashSet<String>)> {
    let mut heads = HashMap::new();
    let mut told = HashSet::new();
    for (i, m) in batch.iter().enumerate() {
        if m.oversize.is_none() {
            continue;
        }
        let Parsed::Mail(head) = parse::parse_guarded(&m.raw, usize::MAX).parsed else {
            continue;
        };
        if let Some(from) = &head.from {
            let recent = outbox::Entity::find()
                .filter(outbox::Column::Kind.eq(TOO_LARGE_KIND))
                .filter(outbox::Column::Recipients.eq(from.email.as_str()))
                .filter(outbox::Column::CreatedAt.gt(now - chrono::Duration::days(1)))
                .count(txn)
                .await?;
            if recent > 0 {
                told.insert(from.email.clone());
            }
        }
        heads.insert(i, head);
    }
    Ok((heads, told))
}

/// The tickets named by the tokens of mails that name no Message-ID.
fn token_only(batch: &[Incoming], tokens: &[Vec<Token>], known: &BatchKnown) -> Vec<i64> {
    let mut out: Vec<i64> = batch
        .iter()
        .zip(tokens)
        .filter(|(m, _)| {
            matches!(&m.parsed.parsed, Parsed::Mail(mail)
                if mail.in_reply_to.is_empty() && mail.references.is_empty())
        })
        .flat_map(|(_, toks)| toks.iter())
        .filter_map(|t| known.by_number.get(&t.number.seq).map(|r| r.id.0))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The outbox kind of the notice to the sender of a mail too large to take.
pub(super) const TOO_LARGE_KIND: &str = "too-large";

async fn seen(txn: &DatabaseTransaction, batch: &[Incoming]) -> Result<HashSet<String>> {
    let keys: Vec<String> = batch.iter().map(|m| m.parsed.dedup_key.clone()).collect();
    let mut seen = HashSet::new();
    for chunk in in_chunks(&keys) {
        let stored: Vec<String> = message::Entity::find()
            .select_only()
            .column(message::Column::DedupKey)
            .filter(message::Column::DedupKey.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        seen.extend(stored);
        let held: Vec<String> = quarantine::Entity::find()
            .select_only()
            .column(quarantine::Column::DedupKey)
            .filter(quarantine::Column::DedupKey.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        seen.extend(held);
    }
    Ok(seen)
}

/// What the mails of a batch refer to: Message-IDs, ticket numbers (tokens,
/// subject tags, the tickets staff commands link to) and addresses (senders,
/// recipients, staff).
struct References<'a> {
    ids: Vec<&'a str>,
    numbers: Vec<TicketNumber>,
    emails: Vec<String>,
    /// Some staff mail says `/outage`: the open outages are read.
    outages: bool,
}

impl<'a> References<'a> {
    fn of(settings: &'a Settings, batch: &'a [Incoming], tokens: &[Vec<Token>]) -> References<'a> {
        let mut ids: HashSet<&str> = HashSet::new();
        let mut numbers: HashSet<TicketNumber> = HashSet::new();
        let mut emails: HashSet<&str> = HashSet::new();
        let mut added: Vec<String> = Vec::new();
        let mut outages = false;
        for (m, toks) in batch.iter().zip(tokens) {
            let Parsed::Mail(mail) = &m.parsed.parsed else {
                continue;
            };
            ids.extend(mail.message_id.as_deref());
            ids.extend(mail.in_reply_to.iter().map(String::as_str));
            ids.extend(mail.references.iter().map(String::as_str));
            ids.extend(
                mail.bounce
                    .as_ref()
                    .and_then(|b| b.original_message_id.as_deref()),
            );
            numbers.extend(threading::subject_tag(&mail.subject, &settings.desk.tag));
            numbers.extend(toks.iter().map(|t| t.number));
            emails.extend(mail.from.as_ref().map(|a| a.email.as_str()));
            emails.extend(mail.to.iter().chain(&mail.cc).map(|a| a.email.as_str()));
            if let Some(from) = &mail.from
                && settings.staff.by_email(&from.email).is_some()
            {
                for c in commands::parse(mail.reply_text()).commands {
                    match c {
                        Command::Link(n) | Command::Release(Ok(n)) => {
                            numbers.insert(n);
                        }
                        Command::CcAdd(a) => added.push(a.email),
                        Command::Outage(_) => outages = true,
                        _ => {}
                    }
                }
            }
        }
        // Everyone a desk mail of this batch may go to is looked up, so a
        // known address keeps its contact (a second row for it would fail
        // the batch on the unique address): staff, the suppliers' contacts
        // (`/supplier`), the addresses staff add (`/cc add`), the change
        // approvers and manager.
        emails.extend(settings.staff.members().iter().map(|m| m.email.as_str()));
        emails.extend(
            settings
                .suppliers
                .iter()
                .flat_map(|s| s.contacts.iter().map(|a| a.email.as_str())),
        );
        emails.extend(settings.changes.addresses());
        emails.extend(settings.relationship.addresses());
        let mut emails: Vec<String> = emails.into_iter().map(str::to_string).collect();
        emails.extend(added);
        emails.sort_unstable();
        emails.dedup();
        References {
            ids: ids.into_iter().collect(),
            numbers: numbers.into_iter().collect(),
            emails,
            outages,
        }
    }
}

/// Outbox rows of desk mails that bounce reports in this batch name:
/// Message-ID → (outbox id, recipients).
async fn load_bounce_targets(
    txn: &DatabaseTransaction,
    batch: &[Incoming],
) -> Result<HashMap<String, (i64, String)>> {
    let ids: Vec<String> = batch
        .iter()
        .filter_map(|m| match &m.parsed.parsed {
            Parsed::Mail(mail) => mail.bounce.as_ref()?.original_message_id.clone(),
            Parsed::Quarantine(_) => None,
        })
        .collect();
    let mut out = HashMap::new();
    for chunk in in_chunks(&ids) {
        let rows: Vec<(i64, String, String)> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .column(outbox::Column::MessageId)
            .column(outbox::Column::Recipients)
            .filter(outbox::Column::MessageId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        out.extend(rows.into_iter().map(|(id, mid, r)| (mid, (id, r))));
    }
    Ok(out)
}

/// The threading facts of the database, plus what this batch adds.
#[derive(Default)]
pub(super) struct BatchKnown {
    pub by_mid: HashMap<String, TicketRef>,
    /// By ticket sequence number.
    pub by_number: HashMap<i64, TicketRef>,
    pub participants: HashSet<(TicketId, String)>,
    /// Planned changes with a window (`ingest::apply::changes`).
    pub planned: Vec<crate::domain::changes::Planned>,
}

impl Known for BatchKnown {
    fn ticket_by_message_id(&self, message_id: &str) -> Option<TicketRef> {
        self.by_mid.get(message_id).copied()
    }
    fn ticket_by_number(&self, number: TicketNumber) -> Option<TicketRef> {
        self.by_number.get(&number.seq).copied()
    }
    fn is_participant(&self, ticket_id: TicketId, email: &str) -> bool {
        self.participants.contains(&(ticket_id, email.to_string()))
    }
}

impl Lookup for BatchKnown {
    fn ticket_id(&self, number: TicketNumber) -> Option<TicketId> {
        self.by_number.get(&number.seq).map(|t| t.id)
    }
    fn planned_changes(&self) -> Vec<crate::domain::changes::Planned> {
        self.planned.clone()
    }
}

impl BatchKnown {
    /// The tickets of the Message-IDs the batch names: stored messages,
    /// and the IDs tickets' mails referred to without the desk storing them
    /// (`ticket_keys`); a stored message wins.
    async fn load_references(&mut self, txn: &DatabaseTransaction, ids: Vec<&str>) -> Result<()> {
        let mut ticket_of: Vec<(String, i64)> = Vec::new();
        for chunk in in_chunks(&ids) {
            let keys: Vec<(String, i64)> = ticket_key::Entity::find()
                .select_only()
                .column(ticket_key::Column::MessageId)
                .column(ticket_key::Column::TicketId)
                .filter(ticket_key::Column::MessageId.is_in(chunk.iter().map(|s| s.to_string())))
                .into_tuple()
                .all(txn)
                .await?;
            ticket_of.extend(keys);
        }
        for chunk in in_chunks(&ids) {
            let rows: Vec<(Option<String>, i64)> = message::Entity::find()
                .select_only()
                .column(message::Column::MessageId)
                .column(message::Column::TicketId)
                .filter(message::Column::MessageId.is_in(chunk.iter().map(|s| s.to_string())))
                .into_tuple()
                .all(txn)
                .await?;
            ticket_of.extend(rows.into_iter().filter_map(|(m, t)| m.map(|m| (m, t))));
        }
        let ticket_ids: HashSet<i64> = ticket_of.iter().map(|(_, t)| *t).collect();
        let refs = load_tickets(txn, ticket::Column::Id.is_in(ticket_ids)).await?;
        for (mid, tid) in ticket_of {
            if let Some(r) = refs.iter().find(|r| r.id == TicketId(tid)) {
                self.by_mid.insert(mid, *r);
            }
        }
        Ok(())
    }

    async fn load_tags(
        &mut self,
        txn: &DatabaseTransaction,
        numbers: Vec<TicketNumber>,
    ) -> Result<()> {
        if numbers.is_empty() {
            return Ok(());
        }
        // Ticket ids are their sequence numbers; the prefix of a number
        // stays as issued when the kind changes, so look up by sequence.
        for chunk in in_chunks(&numbers) {
            let refs =
                load_tickets(txn, ticket::Column::Id.is_in(chunk.iter().map(|n| n.seq))).await?;
            for r in refs {
                self.by_number.insert(r.number.seq, r);
            }
        }
        Ok(())
    }
}

async fn load_tickets(
    txn: &DatabaseTransaction,
    cond: sea_orm::sea_query::SimpleExpr,
) -> Result<Vec<TicketRef>> {
    let rows: Vec<(i64, String)> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .column(ticket::Column::Number)
        .filter(cond)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, n)| {
            n.parse().ok().map(|number| TicketRef {
                id: TicketId(id),
                number,
            })
        })
        .collect())
}

/// What the conversation rules look up, from the parts of the batch's
/// lookups the decision of a mail does not change: tickets by number,
/// problem and release records, open outages, planned changes. (The ticket
/// states are borrowed apart, to be changed.)
pub(super) struct View<'a> {
    pub known: &'a BatchKnown,
    pub problems: &'a Problems,
    pub releases: &'a Releases,
    pub outages: &'a Outages,
}

impl Lookup for View<'_> {
    fn ticket_id(&self, number: TicketNumber) -> Option<TicketId> {
        self.known.ticket_id(number)
    }
    fn problem(&self, id: TicketId) -> Option<crate::domain::problem::Record> {
        self.problems.find(id)
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
