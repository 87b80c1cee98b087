//! The ingest transaction: one database transaction per batch of mails
//! stores every message, its ticket change, the acknowledgements (in the
//! outbox) and the mailbox watermark, or none of them.
//!
//! A batch is read with a handful of `IN (…)` queries (`known`), each mail
//! decided in memory with the domain's rules, mails earlier in the batch
//! counting as known (`mail`), and the rows written at the end (`rows`,
//! `states`).

mod changes;
pub use changes::record_of as change_record;
mod known;
mod mail;
mod outages;
mod problems;
mod relationship;
mod releases;
mod rows;
mod states;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseTransaction, EntityTrait};
use tracing::{debug, error, info, warn};

use super::parse::{Parsed, ParsedMail};
use crate::domain::conversation::Settings;
use crate::domain::mail::Inbound;
use crate::domain::token::Token;
use crate::error::Result;
use crate::store::Store;
use crate::store::entity::{mailbox_state, quarantine};
use crate::store::rows::RAW_PIECE;
use crate::tickets::{Counter, IdCounts, Reservation};
use known::Lookups;
use mail::Decider;
use rows::{Rows, quarantine_row};

/// A mail read from a mailbox (or an import), parsed, not yet stored.
#[derive(Debug)]
pub struct Incoming {
    pub mailbox: String,
    pub uid: Option<u32>,
    pub raw: Vec<u8>,
    pub parsed: ParsedMail,
    /// Set when the server said the mail is larger than the limit: `raw`
    /// is only its head, and its sender is told (`intake::too_large`).
    pub oversize: Option<Oversize>,
}

/// A mail's size as its server gave it, above `ingest.max_message_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    pub size: u64,
    pub limit: usize,
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
    let mut conflicts = 0;
    let mut ask = IdCounts::for_batch(batch.len());
    let holds_large = batch.iter().any(|m| m.raw.len() > RAW_PIECE);
    loop {
        let reserved = Reservation::take(store, ask).await?;
        let txn = store.begin_batch(holds_large).await?;
        let written = write(
            &txn,
            settings,
            &mut batch,
            &excluded,
            watermark.as_ref(),
            reserved.as_ref(),
            now,
        )
        .await;
        // A database error rolls back at once, so the batch's row locks
        // (the counters every writer needs) go with it.
        let failed = match written {
            Ok(Ok((outcomes, used))) => match txn.commit().await {
                Ok(()) => {
                    log_stored(&batch, &outcomes);
                    give_back(store, reserved.as_ref(), used).await;
                    return Ok(outcomes);
                }
                // The commit may have gone through all the same (a lost
                // connection): its ids are not given back.
                Err(e) => crate::Error::from(e),
            },
            Err(e) => {
                let _ = txn.rollback().await;
                give_back(store, reserved.as_ref(), IdCounts::default()).await;
                e
            }
            Ok(Err(Stop::Short(used))) => {
                txn.rollback().await?;
                give_back(store, reserved.as_ref(), IdCounts::default()).await;
                ask = used.doubled();
                continue;
            }
            Ok(Err(Stop::Poisoned { index, reason })) => {
                txn.rollback().await?;
                give_back(store, reserved.as_ref(), IdCounts::default()).await;
                if let Some(m) = batch.get(index) {
                    let message_id = message_id(m);
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
                continue;
            }
        };
        if another_daemon(&failed) && conflicts < MAX_CONFLICTS {
            conflicts += 1;
            warn!(error = %failed, conflicts, "another daemon wrote the same rows first; deciding the batch again");
            tokio::time::sleep(conflict_pause(conflicts)).await;
            continue;
        }
        return Err(failed);
    }
}

/// One line per stored mail, written after the commit: a batch decided
/// again (a poisoned mail, another daemon's rows) logs each mail once.
fn log_stored(batch: &[Incoming], outcomes: &[Outcome]) {
    for (m, o) in batch.iter().zip(outcomes) {
        let Outcome::Stored {
            ticket,
            new_ticket,
            mails,
            rule,
            ..
        } = o
        else {
            continue;
        };
        let message_id = message_id(m);
        info!(
            mailbox = m.mailbox,
            uid = m.uid,
            message_id,
            ticket = ticket.as_str(),
            new_ticket,
            rule,
            mails,
            "stored"
        );
    }
}

/// A mail's Message-ID for the log ("" when it has none or is quarantined).
fn message_id(m: &Incoming) -> &str {
    match &m.parsed.parsed {
        Parsed::Mail(mail) => mail.message_id.as_deref().unwrap_or(""),
        Parsed::Quarantine(_) => "",
    }
}

/// Times a batch is decided again after meeting another daemon's rows.
const MAX_CONFLICTS: u32 = 8;

/// Whether `e` is another writer's doing, which a batch decided again (now
/// seeing that writer's committed rows) gets past: a unique key it wrote
/// first (the same mail in two mailboxes, a new customer writing to two of
/// them), a lock cycle, or a serialization failure.
fn another_daemon(e: &crate::Error) -> bool {
    let crate::Error::Db(db) = e else {
        return false;
    };
    if matches!(
        db.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return true;
    }
    use sea_orm::{DbErr, RuntimeErr};
    let (DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e))) = db
    else {
        return false;
    };
    // PostgreSQL's deadlock_detected and serialization_failure.
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// A short pause, longer each time, so two daemons that met do not meet
/// again at once.
fn conflict_pause(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(20 * u64::from(n) + u64::from(std::process::id() % 17))
}

/// Why a batch was not written.
enum Stop {
    /// A mail of the batch whose processing failed, and why.
    Poisoned { index: usize, reason: String },
    /// The ids reserved for the batch ran short: what it used.
    Short(IdCounts),
}

/// Returns a batch's unused ids; a failure costs only a gap in the numbers.
async fn give_back(store: &Store, reserved: Option<&Reservation>, used: IdCounts) {
    if let Some(r) = reserved
        && let Err(e) = r.give_back(store, used).await
    {
        debug!(error = %e, "unused ids not given back; the numbers skip them");
    }
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
        ..
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

/// Decides and writes a batch. The outer error is the database's (the batch
/// is tried again); the inner one names a mail whose processing failed.
/// Raw mails are moved out of `batch` only once every mail is decided.
async fn write(
    txn: &DatabaseTransaction,
    settings: &Settings,
    batch: &mut [Incoming],
    excluded: &HashMap<usize, String>,
    watermark: Option<&Watermark>,
    reserved: Option<&Reservation>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(Vec<Outcome>, IdCounts), Stop>> {
    let tokens: Vec<Vec<Token>> = batch
        .iter()
        .map(|m| match &m.parsed.parsed {
            Parsed::Mail(mail) => mail_tokens(settings, mail),
            Parsed::Quarantine(_) => Vec::new(),
        })
        .collect();
    let mut look = Lookups::load(txn, settings, batch, &tokens, reserved, now).await?;
    changes::load(txn, &mut look).await?;
    // Counters in the lock order of `tickets::Counter`: contact (taken by
    // the lookups), ticket, message.
    let mut decider = Decider {
        settings,
        now,
        look,
        tickets_seq: Counter::of(txn, "ticket", reserved.map(|r| r.ticket.clone())).await?,
        messages_seq: Counter::of(txn, "message", reserved.map(|r| r.message.clone())).await?,
        rows: Rows::default(),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, (m, toks)) in batch.iter().zip(&tokens).enumerate() {
        // Everything one mail does is caught at the mail: an error or a
        // panic while deciding it quarantines it, never the batch.
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decider.take(i, m, toks, excluded.get(&i))
        }));
        let reason = match step {
            Ok(Ok(outcome)) => {
                outcomes.push(outcome);
                continue;
            }
            Ok(Err(e)) => format!("processing failed: {e}"),
            Err(panic) => format!("processing panicked: {}", crate::panic_message(&*panic)),
        };
        return Ok(Err(Stop::Poisoned { index: i, reason }));
    }
    let Decider {
        mut look,
        tickets_seq,
        messages_seq,
        mut rows,
        ..
    } = decider;
    let used = IdCounts {
        contact: look.contacts.seq().used(),
        ticket: tickets_seq.used(),
        message: messages_seq.used(),
    };
    if look.contacts.seq().short() || tickets_seq.short() || messages_seq.short() {
        debug!(
            ?used,
            "the ids reserved for the batch ran short; deciding it again"
        );
        return Ok(Err(Stop::Short(used)));
    }
    rows.take_raw(batch);
    look.contacts.save(txn).await?;
    look.states.save(txn, settings, now).await?;
    look.problems.save(txn, now).await?;
    look.releases.save(txn, now).await?;
    look.outages.save(txn, now).await?;
    rows.save(txn, &look.contacts, now).await?;
    std::mem::take(&mut look.relation).save(txn).await?;
    tickets_seq.save(txn).await?;
    messages_seq.save(txn).await?;
    if let Some(w) = watermark {
        save_watermark(txn, w, now).await?;
    }
    Ok(Ok((outcomes, used)))
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
