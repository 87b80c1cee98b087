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
use tracing::{debug, error, info, warn};

use super::parse::{Parsed, ParsedMail};
use crate::domain::classify::{Class, classify};
use crate::domain::commands::{self, Command};
use crate::domain::conversation::{
    self, Author, DraftKind, Effects, Lookup, MailIn, Participant, Settings, TicketState,
};
use crate::domain::mail::{Address, BounceKind, Inbound};
use crate::domain::threading::{self, Decision, Known, TicketRef};
use crate::domain::ticket::{Kind, Priority, Status, TicketNumber};
use crate::domain::token::Token;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{
    attachment, contact, mailbox_state, message, outbox, participant, quarantine,
    supplier_escalation, ticket, ticket_link,
};
pub(crate) use crate::store::rows::insert_chunks;
use crate::store::rows::{
    IN_CHUNK, RAW_INSERT_CHUNK, RAW_PIECE, insert_raw, insert_raw_pieces, join_addresses,
};
use crate::tickets::events;
use crate::tickets::{Contacts, Counter, queue_drafts};

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
        /// Mails queued in the outbox because of this one.
        mails: usize,
        rule: &'static str,
    },
    Duplicate,
    Quarantined(String),
}

/// Stores a batch in one transaction; the outcomes are in the batch's order.
///
/// A mail whose processing fails (an error that is not the database's, or a
/// panic) is quarantined with the reason, and the batch is decided again
/// without it, so the rest commits: one mail never holds up the others.
pub async fn apply_batch(
    store: &Store,
    settings: &Settings,
    mut batch: Vec<Incoming>,
    watermark: Option<Watermark>,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>> {
    let mut excluded: HashMap<usize, String> = HashMap::new();
    loop {
        let txn = store.begin().await?;
        match write(
            &txn,
            settings,
            &mut batch,
            &excluded,
            watermark.as_ref(),
            now,
        )
        .await?
        {
            Ok(outcomes) => {
                txn.commit().await?;
                return Ok(outcomes);
            }
            Err(Poisoned { index, reason }) => {
                txn.rollback().await?;
                if let Some(m) = batch.get(index) {
                    let message_id = match &m.parsed.parsed {
                        Parsed::Mail(mail) => mail.message_id.as_deref().unwrap_or(""),
                        Parsed::Quarantine(_) => "",
                    };
                    error!(
                        mailbox = m.mailbox,
                        uid = m.uid,
                        message_id,
                        dedup_key = m.parsed.dedup_key,
                        reason,
                        "mail quarantined: its processing failed; the rest of the batch goes on"
                    );
                }
                excluded.insert(index, reason);
            }
        }
    }
}

/// A mail of the batch whose processing failed, and why.
struct Poisoned {
    index: usize,
    reason: String,
}

/// Stores one mail in quarantine with the reason, in its own transaction
/// (with the batch's watermark, when it is the batch's last mail).
pub async fn quarantine_one(
    store: &Store,
    m: Incoming,
    reason: String,
    watermark: Option<&Watermark>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let txn = store.begin().await?;
    let Incoming {
        mailbox,
        uid,
        raw,
        parsed,
    } = m;
    quarantine::Entity::insert(quarantine_row(
        parsed.dedup_key,
        mailbox,
        uid,
        raw,
        reason.clone(),
        now,
    ))
    .on_conflict(
        OnConflict::column(quarantine::Column::DedupKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if let Some(w) = watermark {
        save_watermark(&txn, w, now).await?;
    }
    txn.commit().await?;
    Ok(Outcome::Quarantined(reason))
}

/// Rows a batch writes, collected while its mails are decided.
#[derive(Default)]
struct Rows {
    participants: Vec<participant::ActiveModel>,
    removed: Vec<(i64, String)>,
    links: Vec<ticket_link::ActiveModel>,
    messages: Vec<message::ActiveModel>,
    attachments: Vec<attachment::ActiveModel>,
    outbox: Vec<outbox::ActiveModel>,
    quarantine: Vec<quarantine::ActiveModel>,
    bounced: Vec<(i64, String)>,
    escalations: Vec<supplier_escalation::ActiveModel>,
    supplier_replies: Vec<(i64, String)>,
    events: Vec<events::Pending>,
}

/// Decides and writes a batch. The outer error is the database's (the batch
/// is tried again); the inner one names a mail whose processing failed.
/// Raw mails are moved out of `batch` only once every mail is decided.
async fn write(
    txn: &DatabaseTransaction,
    settings: &Settings,
    batch: &mut [Incoming],
    excluded: &HashMap<usize, String>,
    watermark: Option<&Watermark>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Vec<Outcome>, Poisoned>> {
    let desk = &settings.desk;
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

    // What the mails refer to: Message-IDs, tokens, subject tags, senders,
    // and the tickets staff commands link to.
    let tokens: Vec<Vec<Token>> = batch
        .iter()
        .map(|m| match &m.parsed.parsed {
            Parsed::Mail(mail) => mail_tokens(settings, mail),
            Parsed::Quarantine(_) => Vec::new(),
        })
        .collect();
    let mut ref_ids: HashSet<&str> = HashSet::new();
    let mut numbers: HashSet<TicketNumber> = HashSet::new();
    let mut emails: HashSet<&str> = HashSet::new();
    for (m, toks) in batch.iter().zip(&tokens) {
        if let Parsed::Mail(mail) = &m.parsed.parsed {
            ref_ids.extend(mail.in_reply_to.iter().map(String::as_str));
            ref_ids.extend(mail.references.iter().map(String::as_str));
            ref_ids.extend(
                mail.bounce
                    .as_ref()
                    .and_then(|b| b.original_message_id.as_deref()),
            );
            numbers.extend(threading::subject_tag(&mail.subject, &desk.tag));
            numbers.extend(toks.iter().map(|t| t.number));
            emails.extend(mail.from.as_ref().map(|a| a.email.as_str()));
            emails.extend(mail.to.iter().chain(&mail.cc).map(|a| a.email.as_str()));
            if let Some(from) = &mail.from
                && settings.staff.by_email(&from.email).is_some()
            {
                numbers.extend(
                    commands::parse(mail.reply_text())
                        .commands
                        .iter()
                        .filter_map(|c| match c {
                            Command::Link(n) => Some(*n),
                            _ => None,
                        }),
                );
            }
        }
    }
    emails.extend(settings.staff.members().iter().map(|m| m.email.as_str()));
    known
        .load_references(txn, ref_ids.into_iter().collect())
        .await?;
    known.load_tags(txn, numbers.into_iter().collect()).await?;
    let mut contacts = Contacts::load(txn, emails.into_iter().collect()).await?;
    let mut states = States::load(txn, &known, &mut contacts).await?;
    for st in states.by_id.values() {
        for p in &st.participants {
            known.participants.insert((st.id, p.address.email.clone()));
        }
    }
    let bounce_targets = load_bounce_targets(txn, batch).await?;

    let mut tickets_seq = Counter::load(txn, "ticket").await?;
    let mut messages_seq = Counter::load(txn, "message").await?;
    let mut rows = Rows::default();

    // Which batch mail each message and quarantine row takes its raw bytes from.
    let mut message_raw: Vec<(usize, usize)> = Vec::new();
    let mut quarantine_raw: Vec<(usize, usize)> = Vec::new();
    for (i, toks) in tokens.into_iter().enumerate() {
        let m = &batch[i];
        let (mailbox, uid) = (m.mailbox.clone(), m.uid);
        let dedup_key = m.parsed.dedup_key.clone();
        if !seen.insert(dedup_key.clone()) {
            debug!(mailbox, uid, dedup_key, "duplicate: already stored");
            continue;
        }
        let held = match (excluded.get(&i), &m.parsed.parsed) {
            (Some(reason), _) => Some(reason.clone()),
            (None, Parsed::Quarantine(reason)) => Some(reason.clone()),
            // parse() quarantines mail without a sender; should one slip
            // through, it is quarantined here too, never dropped.
            (None, Parsed::Mail(mail)) if mail.from.is_none() => {
                Some("no sender address".to_string())
            }
            (None, Parsed::Mail(_)) => None,
        };
        if let Some(reason) = held {
            outcomes[i] = Outcome::Quarantined(reason.clone());
            quarantine_raw.push((rows.quarantine.len(), i));
            rows.quarantine.push(quarantine_row(
                dedup_key,
                mailbox,
                uid,
                Vec::new(),
                reason,
                now,
            ));
            continue;
        }
        let Parsed::Mail(inbound) = &m.parsed.parsed else {
            continue;
        };
        let raw: &[u8] = &m.raw;
        // Everything one mail does is caught at the mail: an error or a
        // panic while deciding it quarantines it, never the batch.
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<()> {
            let mut mail: std::borrow::Cow<'_, Inbound> = std::borrow::Cow::Borrowed(&**inbound);
            let Some(sender) = mail.from.clone() else {
                return Ok(());
            };
            let class = classify(&mail);
            let token_numbers: Vec<TicketNumber> = toks.iter().map(|t| t.number).collect();
            let mut in_reply_to = mail.in_reply_to.clone();
            if class.is_bounce()
                && let Some(id) = mail
                    .bounce
                    .as_ref()
                    .and_then(|b| b.original_message_id.clone())
            {
                in_reply_to.insert(0, id);
            }
            let decision = threading::thread(
                &threading::Keys {
                    in_reply_to: &in_reply_to,
                    references: &mail.references,
                    subject: &mail.subject,
                    sender: Some(&sender.email),
                    tokens: &token_numbers,
                    sender_is_staff: settings.staff.by_email(&sender.email).is_some(),
                },
                &desk.tag,
                &known,
            );
            let contact_id = contacts.id_for(&sender, now);
            let mut author = conversation::author(
                settings,
                &mail,
                &sender,
                &class,
                decision.ticket().map(|t| t.number),
                &toks,
                contact_id,
            );
            let mut rule = decision.rule();
            let mut link: Option<(i64, &str)> = match decision {
                Decision::New {
                    linked_to: Some(other),
                } => Some((
                    other.id,
                    "subject tag of another ticket from a non-participant",
                )),
                _ => None,
            };
            let mut existing = decision.ticket();
            // A customer writing to a closed ticket, or to a resolved one after
            // the reopen window, starts a new ticket linked to the old one.
            if let Some(t) = existing
                && matches!(author, Author::Customer | Author::ClaimedStaff(_))
                && states
                    .by_id
                    .get(&t.id)
                    .is_some_and(|st| st.is_finished(now, settings.reopen_window))
            {
                link = Some((t.id, "reply to a finished ticket"));
                existing = None;
                rule = "new_after_finished";
                author =
                    conversation::author(settings, &mail, &sender, &class, None, &toks, contact_id);
            }
            let new_ticket = existing.is_none();
            if !new_ticket && mail.new_text.is_none() {
                mail.to_mut().new_text = Some(super::parse::new_text_of(raw));
            }
            let t = match existing {
                Some(t) => t,
                None => {
                    let id = tickets_seq.take();
                    let number = TicketNumber {
                        kind: Kind::Incident,
                        seq: id,
                    };
                    states.create(
                        TicketState {
                            id,
                            number,
                            subject: mail.subject.clone(),
                            status: Status::New,
                            priority: Priority::Normal,
                            kind: Kind::Incident,
                            assignee: None,
                            team: settings.mailbox_groups.get(&mailbox).cloned(),
                            customer: sender.clone(),
                            resolved_at: None,
                            root_message_id: None,
                            last_public_message_id: None,
                            participants: vec![Participant {
                                address: sender.clone(),
                                role: "customer".into(),
                            }],
                            created_at: now,
                            service: settings.mailbox_services.get(&mailbox).cloned(),
                            responded_at: None,
                            mailbox: mailbox.clone(),
                            fields: "{}".into(),
                        },
                        contact_id,
                    );
                    let r = TicketRef { id, number };
                    known.participants.insert((id, sender.email.clone()));
                    known.by_number.insert(number.seq, r);
                    if let Some((other, reason)) = link {
                        rows.links.push(ticket_link::ActiveModel {
                            ticket_id: Set(id),
                            other_id: Set(other),
                            reason: Set(reason.into()),
                        });
                    }
                    r
                }
            };
            let Some(state) = states.by_id.get_mut(&t.id) else {
                return Err(crate::Error::Invalid(format!(
                    "ticket {} vanished during the batch",
                    t.number
                )));
            };
            if !new_ticket && !state.is_participant(&sender.email) {
                let role = if matches!(author, Author::Staff(_)) {
                    "staff"
                } else {
                    "participant"
                };
                state.participants.push(Participant {
                    address: sender.clone(),
                    role: role.into(),
                });
                rows.participants
                    .push(participant_row(t.id, contact_id, role));
                known.participants.insert((t.id, sender.email.clone()));
            }
            if let Some(mid) = &mail.message_id {
                known.by_mid.insert(mid.clone(), t);
            }

            let bounced = if class.is_bounce() {
                mail.bounce.as_ref().and_then(|b| {
                    // Delay notices and complaints report mail that was (or may
                    // still be) delivered: only a failure marks the delivery.
                    if b.kind != BounceKind::Failed {
                        return None;
                    }
                    let id = b.original_message_id.as_ref()?;
                    let (outbox_id, recipients) = bounce_targets.get(id)?;
                    let who = if b.recipients.is_empty() {
                        recipients.clone()
                    } else {
                        b.recipients.join(", ")
                    };
                    let why = [b.status.as_deref(), b.diagnostic.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let what = if why.is_empty() {
                        who
                    } else {
                        format!("{who} ({why})")
                    };
                    rows.bounced.push((*outbox_id, format!("bounced: {what}")));
                    Some(what)
                })
            } else {
                None
            };
            let may_acknowledge = new_ticket
                && matches!(author, Author::Customer)
                && contacts.ack_allowed(contact_id, now, settings.ack_limit_per_hour);
            let fx = conversation::apply(
                settings,
                state,
                &MailIn {
                    mail: &mail,
                    sender: &sender,
                    author: &author,
                    class: &class,
                    new_ticket,
                    may_acknowledge,
                    bounced,
                },
                &known,
                now,
            );
            states.touch(t.id);
            let state = states.by_id.get(&t.id).cloned().ok_or_else(|| {
                crate::Error::Invalid(format!("ticket {} vanished during the batch", t.number))
            })?;

            let message_row_id = messages_seq.take();
            for a in &mail.attachments {
                rows.attachments.push(attachment::ActiveModel {
                    message_id: Set(message_row_id),
                    part: Set(a.part as i32),
                    filename: Set(a.filename.clone()),
                    content_type: Set(a.content_type.clone()),
                    size: Set(a.size as i64),
                    sha256: Set(a.sha256.clone()),
                    ..Default::default()
                });
            }
            for p in &fx.added {
                let id = contacts.id_for(&p.address, now);
                rows.participants.push(participant_row(t.id, id, &p.role));
                known.participants.insert((t.id, p.address.email.clone()));
            }
            for e in &fx.removed {
                rows.removed.push((t.id, e.clone()));
                known.participants.remove(&(t.id, e.clone()));
            }
            for n in &fx.links {
                if let Some(other) = known.ticket_by_number(*n) {
                    rows.links.push(ticket_link::ActiveModel {
                        ticket_id: Set(t.id),
                        other_id: Set(other.id),
                        reason: Set("linked by staff".into()),
                    });
                }
            }

            let acknowledged = fx
                .drafts
                .iter()
                .any(|d| d.kind == DraftKind::Acknowledgement);
            info!(
                mailbox,
                uid,
                message_id = mail.message_id.as_deref().unwrap_or(""),
                ticket = %t.number,
                rule,
                class = class.as_str(),
                author = author.as_str(),
                acknowledged,
                mails = fx.drafts.len(),
                flag = fx.flag.as_deref().unwrap_or(""),
                "stored"
            );
            if let Some(flag) = &fx.flag {
                warn!(ticket = %t.number, message_id = mail.message_id.as_deref().unwrap_or(""), flag, "flagged");
            }
            for (supplier, note) in &fx.escalations {
                rows.escalations.push(supplier_escalation::ActiveModel {
                    ticket_id: Set(t.id),
                    supplier: Set(supplier.clone()),
                    note: Set(note.clone()),
                    escalated_at: Set(now),
                    responded_at: Set(None),
                    resolved_at: Set(None),
                    ..Default::default()
                });
            }
            if let Some(supplier) = &fx.supplier_reply {
                rows.supplier_replies.push((t.id, supplier.clone()));
            }
            if settings.emit_events {
                rows.events
                    .extend(events::for_mail(&state, &mail, &fx, new_ticket));
            }
            let unique = dedup_token(&dedup_key);
            let attachments =
                if fx.drafts.iter().any(|d| d.with_attachments) && !mail.attachments.is_empty() {
                    super::parse::attachments(raw)
                } else {
                    Vec::new()
                };
            let queued = queue_drafts(
                settings,
                t,
                &fx.drafts,
                &attachments,
                &unique,
                &mut contacts,
                &mut messages_seq,
                &mut rows.messages,
                &mut rows.outbox,
                now,
            );
            message_raw.push((rows.messages.len(), i));
            rows.messages.push(inbound_row(
                message_row_id,
                t.id,
                &mail,
                &class,
                &fx,
                author.as_str(),
                rule,
                dedup_key,
                Some(mailbox),
                uid,
                &queued.skipped,
                now,
            ));
            for (known_id, _) in &queued.ids {
                known.by_mid.insert(known_id.clone(), t);
            }
            let sent = queued.ids.len();
            if let Some(state) = states.by_id.get_mut(&t.id)
                && fx.drafts.iter().any(|d| d.kind == DraftKind::Answer)
                && let Some((id, _)) = queued
                    .ids
                    .iter()
                    .rev()
                    .find(|(_, kind)| *kind == DraftKind::Answer)
            {
                // Later answers reply to the newest mail the customer received.
                state.last_public_message_id = Some(id.clone());
            }
            outcomes[i] = Outcome::Stored {
                ticket: t.number.to_string(),
                new_ticket,
                acknowledged: acknowledged
                    && queued
                        .ids
                        .iter()
                        .any(|(_, k)| *k == DraftKind::Acknowledgement),
                mails: sent,
                rule,
            };
            Ok(())
        }));
        match step {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Ok(Err(Poisoned {
                    index: i,
                    reason: format!("processing failed: {e}"),
                }));
            }
            Err(panic) => {
                return Ok(Err(Poisoned {
                    index: i,
                    reason: format!("processing panicked: {}", crate::panic_message(&*panic)),
                }));
            }
        }
    }

    // Every mail is decided: now the raw bytes move into their rows, once;
    // a large mail's first piece goes into its row and the rest is written
    // piece by piece after it.
    let mut large: Vec<(i64, Vec<u8>)> = Vec::new();
    for (row, i) in message_raw {
        if let (Some(r), Some(m)) = (rows.messages.get_mut(row), batch.get_mut(i)) {
            if m.raw.len() > RAW_PIECE
                && let Set(id) = r.id
            {
                r.raw = Set(m.raw[..RAW_PIECE].to_vec());
                large.push((id, std::mem::take(&mut m.raw)));
            } else {
                r.raw = Set(std::mem::take(&mut m.raw));
            }
        }
    }
    for (row, i) in quarantine_raw {
        if let (Some(r), Some(m)) = (rows.quarantine.get_mut(row), batch.get_mut(i)) {
            r.raw = Set(std::mem::take(&mut m.raw));
        }
    }

    contacts.save(txn).await?;
    states.save(txn, settings, now).await?;
    let Rows {
        participants,
        removed,
        links,
        messages,
        attachments,
        outbox,
        quarantine: held,
        bounced,
        escalations,
        supplier_replies,
        events: pending_events,
    } = rows;
    insert_chunks(txn, escalations, supplier_escalation::Entity::insert_many).await?;
    for (ticket_id, supplier) in supplier_replies {
        supplier_escalation::Entity::update_many()
            .col_expr(supplier_escalation::Column::RespondedAt, Expr::value(now))
            .filter(supplier_escalation::Column::TicketId.eq(ticket_id))
            .filter(supplier_escalation::Column::Supplier.eq(supplier))
            .filter(supplier_escalation::Column::RespondedAt.is_null())
            .exec(txn)
            .await?;
    }
    insert_participants(txn, participants).await?;
    for (ticket_id, email) in removed {
        if let Some(contact) = contacts.ids.get(&email) {
            participant::Entity::delete_many()
                .filter(participant::Column::TicketId.eq(ticket_id))
                .filter(participant::Column::ContactId.eq(*contact))
                .exec(txn)
                .await?;
        }
    }
    insert_chunks(txn, links, |c| {
        ticket_link::Entity::insert_many(c).on_conflict(
            OnConflict::columns([ticket_link::Column::TicketId, ticket_link::Column::OtherId])
                .do_nothing()
                .to_owned(),
        )
    })
    .await?;
    insert_raw(
        txn,
        messages,
        RAW_INSERT_CHUNK,
        message::Column::Raw,
        message::Entity::insert_many,
    )
    .await?;
    for (id, raw) in large {
        insert_raw_pieces(txn, id, &raw).await?;
    }
    insert_chunks(txn, attachments, attachment::Entity::insert_many).await?;
    insert_raw(
        txn,
        outbox,
        RAW_INSERT_CHUNK,
        outbox::Column::Raw,
        outbox::Entity::insert_many,
    )
    .await?;
    insert_raw(
        txn,
        held,
        RAW_INSERT_CHUNK,
        quarantine::Column::Raw,
        quarantine::Entity::insert_many,
    )
    .await?;
    for (id, why) in bounced {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value("bounced"))
            .col_expr(outbox::Column::LastError, Expr::value(why))
            .filter(outbox::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    events::insert(txn, pending_events, now).await?;
    tickets_seq.save(txn).await?;
    messages_seq.save(txn).await?;
    if let Some(w) = watermark {
        save_watermark(txn, w, now).await?;
    }
    Ok(Ok(outcomes))
}

/// The verified tokens of a mail: in the addresses it was delivered to and
/// in the Message-IDs it references.
pub(crate) fn mail_tokens(settings: &Settings, mail: &Inbound) -> Vec<Token> {
    let clean = |s: &str| {
        s.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    };
    let recipients: Vec<String> = mail
        .to
        .iter()
        .chain(&mail.cc)
        .map(|a| a.email.clone())
        .chain(mail.delivered_to.iter().map(|d| clean(d)))
        .collect();
    settings.key.find(
        &settings.desk.address,
        recipients.iter().map(String::as_str),
        mail.in_reply_to
            .iter()
            .chain(&mail.references)
            .map(String::as_str),
    )
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
    for chunk in ids.chunks(IN_CHUNK) {
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

/// A short, stable token for desk Message-IDs derived from a mail's dedup key.
fn dedup_token(key: &str) -> String {
    super::parse::sha256_hex(key.as_bytes())[..16].to_string()
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

/// Participants are inserted once: a second mail naming the same person changes nothing.
async fn insert_participants(
    txn: &DatabaseTransaction,
    rows: Vec<participant::ActiveModel>,
) -> Result<()> {
    insert_chunks(txn, rows, |c| {
        participant::Entity::insert_many(c).on_conflict(
            OnConflict::columns([
                participant::Column::TicketId,
                participant::Column::ContactId,
            ])
            .do_nothing()
            .to_owned(),
        )
    })
    .await
}

fn participant_row(ticket_id: i64, contact_id: i64, role: &str) -> participant::ActiveModel {
    participant::ActiveModel {
        ticket_id: Set(ticket_id),
        contact_id: Set(contact_id),
        role: Set(role.into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn inbound_row(
    id: i64,
    ticket_id: i64,
    mail: &Inbound,
    class: &Class,
    fx: &Effects,
    author: &str,
    rule: &str,
    dedup_key: String,
    mailbox: Option<String>,
    uid: Option<u32>,
    skipped: &[String],
    now: DateTime<Utc>,
) -> message::ActiveModel {
    let mut warnings = mail.warnings.clone();
    warnings.extend(skipped.iter().cloned());
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
        // The ticket shows what the writer added; the raw mail keeps all.
        body_text: Set(fx.shown_text.clone()),
        visibility: Set(fx.visibility.into()),
        class: Set(class.as_str().into()),
        threaded_by: Set(rule.into()),
        mailbox: Set(mailbox),
        uid: Set(uid.map(i64::from)),
        warnings: Set(warnings.join("\n")),
        created_at: Set(now),
        // Filled from the batch once every mail is decided.
        raw: Set(Vec::new()),
        author: Set(author.into()),
        flag: Set(fx.flag.clone()),
    }
}

/// The threading facts of the database, plus what this batch adds.
#[derive(Default)]
struct BatchKnown {
    by_mid: HashMap<String, TicketRef>,
    /// By ticket sequence number.
    by_number: HashMap<i64, TicketRef>,
    participants: HashSet<(i64, String)>,
}

impl Known for BatchKnown {
    fn ticket_by_message_id(&self, message_id: &str) -> Option<TicketRef> {
        self.by_mid.get(message_id).copied()
    }
    fn ticket_by_number(&self, number: TicketNumber) -> Option<TicketRef> {
        self.by_number.get(&number.seq).copied()
    }
    fn is_participant(&self, ticket_id: i64, email: &str) -> bool {
        self.participants.contains(&(ticket_id, email.to_string()))
    }
}

impl Lookup for BatchKnown {
    fn ticket_id(&self, number: TicketNumber) -> Option<i64> {
        self.by_number.get(&number.seq).map(|t| t.id)
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
        // Ticket ids are their sequence numbers; the prefix of a number
        // stays as issued when the kind changes, so look up by sequence.
        for chunk in numbers.chunks(IN_CHUNK) {
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
        .filter_map(|(id, n)| n.parse().ok().map(|number| TicketRef { id, number }))
        .collect())
}

/// The tickets a batch touches, as the conversation rules see them.
#[derive(Default)]
struct States {
    by_id: HashMap<i64, TicketState>,
    /// Tickets created by this batch.
    created: Vec<i64>,
    touched: HashSet<i64>,
    /// The status each loaded ticket had before the batch.
    initial: HashMap<i64, Status>,
    /// Each ticket's customer contact id.
    customers: HashMap<i64, i64>,
}

impl States {
    /// Loads every ticket the batch's references, tokens and tags name.
    async fn load(
        txn: &DatabaseTransaction,
        known: &BatchKnown,
        contacts: &mut Contacts,
    ) -> Result<States> {
        let ids: HashSet<i64> = known
            .by_mid
            .values()
            .chain(known.by_number.values())
            .map(|t| t.id)
            .collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut states = States::default();
        for chunk in ids.chunks(IN_CHUNK) {
            let tickets = ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
                .all(txn)
                .await?;
            let people: Vec<(i64, i64, String, String, String)> = participant::Entity::find()
                .select_only()
                .column(participant::Column::TicketId)
                .column(participant::Column::ContactId)
                .column(contact::Column::Email)
                .column(contact::Column::Name)
                .column(participant::Column::Role)
                .inner_join(contact::Entity)
                .filter(participant::Column::TicketId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(txn)
                .await?;
            let mut by_ticket: HashMap<i64, Vec<Participant>> = HashMap::new();
            for (ticket_id, contact_id, email, name, role) in people {
                contacts.ids.entry(email.clone()).or_insert(contact_id);
                by_ticket.entry(ticket_id).or_default().push(Participant {
                    address: Address { name, email },
                    role,
                });
            }
            for t in tickets {
                let participants = by_ticket.remove(&t.id).unwrap_or_default();
                let customer = participants
                    .iter()
                    .find(|p| p.role == "customer")
                    .map(|p| p.address.clone())
                    .unwrap_or_default();
                let Ok(number) = t.number.parse::<TicketNumber>() else {
                    continue;
                };
                // A stored value this daemon does not know (a newer version's,
                // or a hand edit) fails the batch; mail by mail, the mails of
                // this ticket are then quarantined with this reason.
                let unknown = |what: &str, value: &str| {
                    Error::Invalid(format!(
                        "ticket {number} has an unknown stored {what} {value:?}"
                    ))
                };
                let status: Status = t.status.parse().map_err(|_| unknown("status", &t.status))?;
                let priority: Priority = t
                    .priority
                    .parse()
                    .map_err(|_| unknown("priority", &t.priority))?;
                let kind: Kind = t.kind.parse().map_err(|_| unknown("kind", &t.kind))?;
                states.initial.insert(t.id, status);
                states.customers.insert(t.id, t.customer_id);
                states.by_id.insert(
                    t.id,
                    TicketState {
                        id: t.id,
                        number,
                        subject: t.subject,
                        status,
                        priority,
                        kind,
                        assignee: t.assignee,
                        team: t.team,
                        customer,
                        resolved_at: t.resolved_at,
                        root_message_id: t.root_message_id,
                        last_public_message_id: t.last_public_message_id,
                        participants,
                        created_at: t.created_at,
                        service: t.service,
                        responded_at: t.responded_at,
                        mailbox: t.mailbox,
                        fields: t.fields,
                    },
                );
            }
        }
        Ok(states)
    }

    fn create(&mut self, state: TicketState, customer: i64) {
        self.created.push(state.id);
        self.customers.insert(state.id, customer);
        self.by_id.insert(state.id, state);
    }

    fn touch(&mut self, id: i64) {
        self.touched.insert(id);
    }

    /// Inserts the tickets the batch created (in their final state) and
    /// updates the ones it changed.
    async fn save(
        &mut self,
        txn: &DatabaseTransaction,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let created: HashSet<i64> = self.created.iter().copied().collect();
        // SLA clocks: pauses, due times and the next check of every ticket
        // the batch created or changed.
        let changed: Vec<(&TicketState, Option<Status>)> = self
            .created
            .iter()
            .copied()
            .chain(
                self.touched
                    .iter()
                    .copied()
                    .filter(|id| !created.contains(id)),
            )
            .filter_map(|id| {
                let t = self.by_id.get(&id)?;
                Some((t, self.initial.get(&id).copied()))
            })
            .collect();
        let dues = crate::service_level::after_change(txn, settings, &changed, now).await?;
        let row = |t: &TicketState, customer: i64| {
            let due = dues.get(&t.id).copied().unwrap_or_default();
            ticket::ActiveModel {
                id: Set(t.id),
                number: Set(t.number.to_string()),
                kind: Set(t.kind.as_str().into()),
                subject: Set(t.subject.clone()),
                status: Set(t.status.as_str().into()),
                priority: Set(t.priority.as_str().into()),
                customer_id: Set(customer),
                mailbox: Set(t.mailbox.clone()),
                created_at: Set(t.created_at),
                updated_at: Set(now),
                assignee: Set(t.assignee.clone()),
                team: Set(t.team.clone()),
                fields: Set(t.fields.clone()),
                resolved_at: Set(t.resolved_at),
                root_message_id: Set(t.root_message_id.clone()),
                last_public_message_id: Set(t.last_public_message_id.clone()),
                service: Set(t.service.clone()),
                response_due_at: Set(due.response),
                resolution_due_at: Set(due.resolution),
                responded_at: Set(t.responded_at),
                sla_next_at: Set(due.next_check),
            }
        };
        let mut rows = Vec::with_capacity(self.created.len());
        let mut participants = Vec::with_capacity(self.created.len());
        for id in &self.created {
            let (Some(t), Some(customer)) = (self.by_id.get(id), self.customers.get(id)) else {
                continue;
            };
            rows.push(row(t, *customer));
            participants.push(participant_row(t.id, *customer, "customer"));
        }
        insert_chunks(txn, rows, ticket::Entity::insert_many).await?;
        insert_participants(txn, participants).await?;
        // The changed tickets go back in one upsert per chunk of rows that
        // writes only what a mail can change: a statement per ticket would
        // cost a round trip each.
        let changed: Vec<ticket::ActiveModel> = self
            .touched
            .iter()
            .filter(|id| !created.contains(id))
            .filter_map(|id| Some(row(self.by_id.get(id)?, *self.customers.get(id)?)))
            .collect();
        insert_chunks(txn, changed, |c| {
            ticket::Entity::insert_many(c).on_conflict(
                OnConflict::column(ticket::Column::Id)
                    .update_columns([
                        ticket::Column::Kind,
                        ticket::Column::Status,
                        ticket::Column::Priority,
                        ticket::Column::Assignee,
                        ticket::Column::Team,
                        ticket::Column::ResolvedAt,
                        ticket::Column::RootMessageId,
                        ticket::Column::LastPublicMessageId,
                        ticket::Column::Service,
                        ticket::Column::RespondedAt,
                        ticket::Column::ResponseDueAt,
                        ticket::Column::ResolutionDueAt,
                        ticket::Column::SlaNextAt,
                        ticket::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
        })
        .await?;
        Ok(())
    }
}
