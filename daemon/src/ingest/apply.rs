//! The ingest transaction: one database transaction per batch of mails
//! stores every message, its ticket change, the acknowledgements (in the
//! outbox) and the mailbox watermark, or none of them.
//!
//! The batch is read with a handful of `IN (…)` queries, threaded in memory
//! with the pure rules of `domain::threading` (mails earlier in the same batch
//! count as known), and written with multi-row inserts: the commit, not the
//! statement count, is what a batch pays for.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};
use tracing::{debug, info};

use super::parse::{Parsed, ParsedMail};
use crate::domain::ack::{Desk, Outgoing, acknowledgement};
use crate::domain::classify::classify;
use crate::domain::mail::{Address, Inbound};
use crate::domain::threading::{self, Decision, Known, TicketRef};
use crate::domain::ticket::{Kind, Priority, Status, TicketNumber};
use crate::error::Result;
use crate::outbox::render;
use crate::store::Store;
use crate::store::entity::{
    attachment, contact, counter, mailbox_state, message, outbox, participant, quarantine, ticket,
    ticket_link,
};

/// Rows per multi-row INSERT: under SQLite's and PostgreSQL's parameter limits.
const INSERT_CHUNK: usize = 200;
/// Values per `IN (…)` list.
const IN_CHUNK: usize = 1000;

/// A mail read from a mailbox (or an import), parsed, not yet stored.
#[derive(Debug)]
pub struct Incoming {
    pub mailbox: String,
    pub uid: Option<u32>,
    pub raw: Vec<u8>,
    pub parsed: ParsedMail,
}

/// The mailbox position a batch brings the desk to.
#[derive(Debug, Clone)]
pub struct Watermark {
    pub mailbox: String,
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// What became of one mail of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        ticket: String,
        new_ticket: bool,
        acknowledged: bool,
        rule: &'static str,
    },
    Duplicate,
    Quarantined(String),
}

/// Stores a batch in one transaction; the outcomes are in the batch's order.
pub async fn apply_batch(
    store: &Store,
    desk: &Desk,
    batch: Vec<Incoming>,
    watermark: Option<Watermark>,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>> {
    let txn = store.begin().await?;
    let outcomes = write(&txn, desk, batch, watermark, now).await?;
    txn.commit().await?;
    Ok(outcomes)
}

async fn write(
    txn: &DatabaseTransaction,
    desk: &Desk,
    batch: Vec<Incoming>,
    watermark: Option<Watermark>,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>> {
    let mut known = BatchKnown::default();
    let mut outcomes = vec![Outcome::Duplicate; batch.len()];

    // Which mails the desk already has.
    let keys: Vec<String> = batch.iter().map(|m| m.parsed.dedup_key.clone()).collect();
    let mut seen: HashSet<String> = HashSet::new();
    for chunk in keys.chunks(IN_CHUNK) {
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

    // What the mails refer to: Message-IDs, subject tags, senders.
    let mut ref_ids: HashSet<&str> = HashSet::new();
    let mut tags: HashSet<TicketNumber> = HashSet::new();
    let mut emails: HashSet<&str> = HashSet::new();
    for m in &batch {
        if let Parsed::Mail(mail) = &m.parsed.parsed {
            ref_ids.extend(mail.in_reply_to.iter().map(String::as_str));
            ref_ids.extend(mail.references.iter().map(String::as_str));
            tags.extend(threading::subject_tag(&mail.subject, &desk.tag));
            emails.extend(mail.from.as_ref().map(|a| a.email.as_str()));
        }
    }
    known
        .load_references(txn, ref_ids.into_iter().collect())
        .await?;
    known.load_tags(txn, tags.into_iter().collect()).await?;
    let mut contacts = Contacts::load(txn, emails.into_iter().collect()).await?;

    let mut tickets_seq = Counter::load(txn, "ticket").await?;
    let mut messages_seq = Counter::load(txn, "message").await?;

    let mut new_tickets = Vec::new();
    let mut new_participants = Vec::new();
    let mut new_links = Vec::new();
    let mut new_messages = Vec::new();
    let mut new_attachments = Vec::new();
    let mut new_outbox = Vec::new();
    let mut new_quarantine = Vec::new();
    let mut touched: HashSet<i64> = HashSet::new();

    for (i, m) in batch.into_iter().enumerate() {
        let Incoming {
            mailbox,
            uid,
            raw,
            parsed: ParsedMail {
                dedup_key, parsed, ..
            },
        } = m;
        if !seen.insert(dedup_key.clone()) {
            debug!(mailbox, uid, dedup_key, "duplicate: already stored");
            continue;
        }
        let mail = match parsed {
            Parsed::Mail(mail) => mail,
            Parsed::Quarantine(reason) => {
                outcomes[i] = Outcome::Quarantined(reason.clone());
                new_quarantine.push(quarantine_row(dedup_key, mailbox, uid, raw, reason, now));
                continue;
            }
        };
        // parse() quarantines mail without a sender; should one slip through,
        // it is quarantined here too, never dropped.
        let Some(sender) = mail.from.clone() else {
            let reason = "no sender address".to_string();
            outcomes[i] = Outcome::Quarantined(reason.clone());
            new_quarantine.push(quarantine_row(dedup_key, mailbox, uid, raw, reason, now));
            continue;
        };
        let class = classify(&mail);
        let decision = threading::thread(
            &threading::Keys {
                in_reply_to: &mail.in_reply_to,
                references: &mail.references,
                subject: &mail.subject,
                sender: Some(&sender.email),
            },
            &desk.tag,
            &known,
        );
        let contact_id = contacts.id_for(&sender, now);
        let (t, new_ticket) = match decision.ticket() {
            Some(t) => {
                touched.insert(t.id);
                if !known.is_participant(t.id, &sender.email) {
                    new_participants.push(participant_row(t.id, contact_id, "participant"));
                    known.participants.insert((t.id, sender.email.clone()));
                }
                (t, false)
            }
            None => {
                let id = tickets_seq.take();
                let t = TicketRef {
                    id,
                    number: TicketNumber {
                        kind: Kind::Incident,
                        seq: id,
                    },
                };
                new_tickets.push(ticket::ActiveModel {
                    id: Set(id),
                    number: Set(t.number.to_string()),
                    kind: Set(Kind::Incident.as_str().into()),
                    subject: Set(mail.subject.clone()),
                    status: Set(Status::New.as_str().into()),
                    priority: Set(Priority::Normal.as_str().into()),
                    customer_id: Set(contact_id),
                    mailbox: Set(mailbox.clone()),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
                new_participants.push(participant_row(id, contact_id, "customer"));
                known.participants.insert((id, sender.email.clone()));
                known.by_number.insert(t.number, t);
                if let Decision::New {
                    linked_to: Some(other),
                } = decision
                {
                    new_links.push(ticket_link::ActiveModel {
                        ticket_id: Set(id),
                        other_id: Set(other.id),
                        reason: Set("subject tag of another ticket from a non-participant".into()),
                    });
                }
                (t, true)
            }
        };
        if let Some(mid) = &mail.message_id {
            known.by_mid.insert(mid.clone(), t);
        }

        let message_row_id = messages_seq.take();
        for a in &mail.attachments {
            new_attachments.push(attachment::ActiveModel {
                message_id: Set(message_row_id),
                part: Set(a.part as i32),
                filename: Set(a.filename.clone()),
                content_type: Set(a.content_type.clone()),
                size: Set(a.size as i64),
                sha256: Set(a.sha256.clone()),
                ..Default::default()
            });
        }

        let is_desk = sender.email == desk.address.email;
        let acknowledged = new_ticket && class.may_answer() && !is_desk;
        info!(
            mailbox,
            uid,
            message_id = mail.message_id.as_deref().unwrap_or(""),
            ticket = %t.number,
            rule = decision.rule(),
            class = class.as_str(),
            acknowledged,
            "stored"
        );
        let token = dedup_token(&dedup_key);
        new_messages.push(inbound_row(
            message_row_id,
            t.id,
            &mail,
            &class,
            decision.rule(),
            dedup_key,
            Some(mailbox),
            uid,
            raw,
            now,
        ));
        if acknowledged {
            let ack = acknowledgement(desk, t.number, &mail, &sender, &token);
            let raw_ack = render(&ack, now)?;
            new_messages.push(outbound_row(messages_seq.take(), t.id, &ack, &raw_ack, now));
            known.by_mid.insert(ack.message_id.clone(), t);
            new_outbox.push(outbox_row(
                Some(t.id),
                "acknowledgement",
                &ack,
                raw_ack,
                now,
            ));
        }
        outcomes[i] = Outcome::Stored {
            ticket: t.number.to_string(),
            new_ticket,
            acknowledged,
            rule: decision.rule(),
        };
    }

    contacts.insert_new(txn).await?;
    insert_chunks(txn, new_tickets, ticket::Entity::insert_many).await?;
    insert_chunks(txn, new_participants, |c| {
        participant::Entity::insert_many(c).on_conflict(
            OnConflict::columns([
                participant::Column::TicketId,
                participant::Column::ContactId,
            ])
            .do_nothing()
            .to_owned(),
        )
    })
    .await?;
    insert_chunks(txn, new_links, ticket_link::Entity::insert_many).await?;
    insert_chunks(txn, new_messages, message::Entity::insert_many).await?;
    insert_chunks(txn, new_attachments, attachment::Entity::insert_many).await?;
    insert_chunks(txn, new_outbox, outbox::Entity::insert_many).await?;
    insert_chunks(txn, new_quarantine, quarantine::Entity::insert_many).await?;
    let touched: Vec<i64> = touched.into_iter().collect();
    for chunk in touched.chunks(IN_CHUNK) {
        ticket::Entity::update_many()
            .col_expr(ticket::Column::UpdatedAt, Expr::value(now))
            .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    tickets_seq.save(txn).await?;
    messages_seq.save(txn).await?;
    contacts.seq.save(txn).await?;
    if let Some(w) = watermark {
        save_watermark(txn, &w, now).await?;
    }
    Ok(outcomes)
}

/// A short, stable token for desk Message-IDs derived from a mail's dedup key.
fn dedup_token(key: &str) -> String {
    super::parse::sha256_hex(key.as_bytes())[..16].to_string()
}

async fn insert_chunks<A, F>(txn: &DatabaseTransaction, mut rows: Vec<A>, insert: F) -> Result<()>
where
    A: sea_orm::ActiveModelTrait,
    F: Fn(Vec<A>) -> sea_orm::InsertMany<A>,
{
    // Moves rows into each statement: the raw mails are not copied again.
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(INSERT_CHUNK));
        insert(rows).exec_without_returning(txn).await?;
        rows = rest;
    }
    Ok(())
}

pub async fn save_watermark<C: ConnectionTrait>(
    txn: &C,
    w: &Watermark,
    now: DateTime<Utc>,
) -> Result<()> {
    mailbox_state::Entity::insert(mailbox_state::ActiveModel {
        mailbox: Set(w.mailbox.clone()),
        uid_validity: Set(i64::from(w.uid_validity)),
        last_uid: Set(i64::from(w.last_uid)),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(mailbox_state::Column::Mailbox)
            .update_columns([
                mailbox_state::Column::UidValidity,
                mailbox_state::Column::LastUid,
                mailbox_state::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn quarantine_row(
    dedup_key: String,
    mailbox: String,
    uid: Option<u32>,
    raw: Vec<u8>,
    reason: String,
    now: DateTime<Utc>,
) -> quarantine::ActiveModel {
    info!(mailbox, uid, dedup_key, reason, "quarantined");
    quarantine::ActiveModel {
        dedup_key: Set(dedup_key),
        mailbox: Set(mailbox),
        uid: Set(uid.map(i64::from)),
        size: Set(raw.len() as i64),
        reason: Set(reason),
        created_at: Set(now),
        raw: Set(raw),
        ..Default::default()
    }
}

fn participant_row(ticket_id: i64, contact_id: i64, role: &str) -> participant::ActiveModel {
    participant::ActiveModel {
        ticket_id: Set(ticket_id),
        contact_id: Set(contact_id),
        role: Set(role.into()),
    }
}

fn join_addresses(list: &[Address]) -> String {
    list.iter()
        .map(Address::display)
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::too_many_arguments)]
fn inbound_row(
    id: i64,
    ticket_id: i64,
    mail: &Inbound,
    class: &crate::domain::classify::Class,
    rule: &str,
    dedup_key: String,
    mailbox: Option<String>,
    uid: Option<u32>,
    raw: Vec<u8>,
    now: DateTime<Utc>,
) -> message::ActiveModel {
    let mut warnings = mail.warnings.clone();
    if !class.reason().is_empty() {
        warnings.push(format!("{}: {}", class.as_str(), class.reason()));
    }
    message::ActiveModel {
        id: Set(id),
        ticket_id: Set(ticket_id),
        direction: Set("in".into()),
        message_id: Set(mail.message_id.clone()),
        dedup_key: Set(dedup_key),
        in_reply_to: Set(mail.in_reply_to.join(" ")),
        references: Set(mail.references.join(" ")),
        from_addr: Set(mail.from.as_ref().map(Address::display).unwrap_or_default()),
        to_addrs: Set(join_addresses(&mail.to)),
        cc_addrs: Set(join_addresses(&mail.cc)),
        subject: Set(mail.subject.clone()),
        body_text: Set(mail.text.clone()),
        visibility: Set("public".into()),
        class: Set(class.as_str().into()),
        threaded_by: Set(rule.into()),
        mailbox: Set(mailbox),
        uid: Set(uid.map(i64::from)),
        warnings: Set(warnings.join("\n")),
        created_at: Set(now),
        raw: Set(raw),
    }
}

fn outbound_row(
    id: i64,
    ticket_id: i64,
    out: &Outgoing,
    raw: &[u8],
    now: DateTime<Utc>,
) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(id),
        ticket_id: Set(ticket_id),
        direction: Set("out".into()),
        message_id: Set(Some(out.message_id.clone())),
        dedup_key: Set(format!("mid:{}", out.message_id)),
        in_reply_to: Set(out.in_reply_to.clone().unwrap_or_default()),
        references: Set(out.references.join(" ")),
        from_addr: Set(out.from.display()),
        to_addrs: Set(join_addresses(&out.to)),
        cc_addrs: Set(String::new()),
        subject: Set(out.subject.clone()),
        body_text: Set(out.body.clone()),
        visibility: Set("public".into()),
        class: Set("acknowledgement".into()),
        threaded_by: Set("desk".into()),
        mailbox: Set(None),
        uid: Set(None),
        warnings: Set(String::new()),
        created_at: Set(now),
        raw: Set(raw.to_vec()),
    }
}

fn outbox_row(
    ticket_id: Option<i64>,
    kind: &str,
    out: &Outgoing,
    raw: Vec<u8>,
    now: DateTime<Utc>,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        ticket_id: Set(ticket_id),
        message_id: Set(out.message_id.clone()),
        kind: Set(kind.into()),
        envelope_from: Set(out.from.email.clone()),
        recipients: Set(out
            .to
            .iter()
            .map(|a| a.email.as_str())
            .collect::<Vec<_>>()
            .join(",")),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
        raw: Set(raw),
        ..Default::default()
    }
}

/// The threading facts of the database, plus what this batch adds.
#[derive(Default)]
struct BatchKnown {
    by_mid: HashMap<String, TicketRef>,
    by_number: HashMap<TicketNumber, TicketRef>,
    participants: HashSet<(i64, String)>,
}

impl Known for BatchKnown {
    fn ticket_by_message_id(&self, message_id: &str) -> Option<TicketRef> {
        self.by_mid.get(message_id).copied()
    }
    fn ticket_by_number(&self, number: TicketNumber) -> Option<TicketRef> {
        self.by_number.get(&number).copied()
    }
    fn is_participant(&self, ticket_id: i64, email: &str) -> bool {
        self.participants.contains(&(ticket_id, email.to_string()))
    }
}

impl BatchKnown {
    async fn load_references(&mut self, txn: &DatabaseTransaction, ids: Vec<&str>) -> Result<()> {
        let mut ticket_of: Vec<(String, i64)> = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
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
            if let Some(r) = refs.iter().find(|r| r.id == tid) {
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
        let refs = load_tickets(
            txn,
            ticket::Column::Number.is_in(numbers.iter().map(|n| n.to_string())),
        )
        .await?;
        let ids: Vec<i64> = refs.iter().map(|r| r.id).collect();
        for r in refs {
            self.by_number.insert(r.number, r);
        }
        let rows: Vec<(i64, String)> = participant::Entity::find()
            .select_only()
            .column(participant::Column::TicketId)
            .column(contact::Column::Email)
            .inner_join(contact::Entity)
            .filter(participant::Column::TicketId.is_in(ids))
            .into_tuple()
            .all(txn)
            .await?;
        self.participants.extend(rows);
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
        .filter_map(|(id, n)| n.parse().ok().map(|number| TicketRef { id, number }))
        .collect())
}

/// Contacts by address: those the database has, and those this batch adds.
struct Contacts {
    ids: HashMap<String, i64>,
    new: Vec<contact::ActiveModel>,
    seq: Counter,
}

impl Contacts {
    async fn load(txn: &DatabaseTransaction, emails: Vec<&str>) -> Result<Contacts> {
        let mut ids = HashMap::new();
        for chunk in emails.chunks(IN_CHUNK) {
            let rows: Vec<(i64, String)> = contact::Entity::find()
                .select_only()
                .column(contact::Column::Id)
                .column(contact::Column::Email)
                .filter(contact::Column::Email.is_in(chunk.iter().map(|s| s.to_string())))
                .into_tuple()
                .all(txn)
                .await?;
            ids.extend(rows.into_iter().map(|(id, e)| (e, id)));
        }
        Ok(Contacts {
            ids,
            new: Vec::new(),
            seq: Counter::load(txn, "contact").await?,
        })
    }

    fn id_for(&mut self, a: &Address, now: DateTime<Utc>) -> i64 {
        if let Some(id) = self.ids.get(&a.email) {
            return *id;
        }
        let id = self.seq.take();
        self.ids.insert(a.email.clone(), id);
        self.new.push(contact::ActiveModel {
            id: Set(id),
            email: Set(a.email.clone()),
            name: Set(a.name.clone()),
            created_at: Set(now),
        });
        id
    }

    async fn insert_new(&mut self, txn: &DatabaseTransaction) -> Result<()> {
        let rows = std::mem::take(&mut self.new);
        insert_chunks(txn, rows, contact::Entity::insert_many).await
    }
}

/// A named id sequence, read (and on PostgreSQL locked) once per batch and
/// written back once.
struct Counter {
    name: &'static str,
    start: i64,
    next: i64,
}

impl Counter {
    async fn load(txn: &DatabaseTransaction, name: &'static str) -> Result<Counter> {
        let first = Store::counter_next(txn, name).await?;
        Ok(Counter {
            name,
            start: first,
            next: first,
        })
    }

    fn take(&mut self) -> i64 {
        let id = self.next;
        self.next += 1;
        id
    }

    async fn save(&self, txn: &DatabaseTransaction) -> Result<()> {
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
