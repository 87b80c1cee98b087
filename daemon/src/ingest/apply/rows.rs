//! The rows a batch writes, collected while its mails are decided and
//! written with multi-row inserts once all are: the commit, not the
//! statement count, is what a batch pays for.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use tracing::info;

use super::Incoming;
use crate::domain::classify::Class;
use crate::domain::conversation::Effects;
use crate::domain::mail::{Address, Inbound};
use crate::domain::ticket::{ContactId, Role, TicketId};
use crate::error::Result;
use crate::store::entity::{
    attachment, message, outbox, participant, quarantine, supplier_escalation, ticket_key,
    ticket_link,
};
use crate::store::rows::{
    RAW_INSERT_CHUNK, RAW_PIECE, insert_chunks, insert_raw, insert_raw_pieces, join_addresses,
};
use crate::tickets::{Contacts, events};

/// Rows a batch writes.
#[derive(Default)]
pub(super) struct Rows {
    pub participants: Vec<participant::ActiveModel>,
    pub removed: Vec<(TicketId, String)>,
    pub links: Vec<ticket_link::ActiveModel>,
    /// Message-IDs the batch's mails named without the desk storing them.
    pub keys: Vec<ticket_key::ActiveModel>,
    pub messages: Vec<message::ActiveModel>,
    pub attachments: Vec<attachment::ActiveModel>,
    pub outbox: Vec<outbox::ActiveModel>,
    pub quarantine: Vec<quarantine::ActiveModel>,
    /// Outbox rows a bounce reports: (id, why).
    pub bounced: Vec<(i64, String)>,
    pub escalations: Vec<supplier_escalation::ActiveModel>,
    /// Suppliers that answered: (ticket id, supplier).
    pub supplier_replies: Vec<(TicketId, String)>,
    pub events: Vec<events::Pending>,
    /// Which batch mail each message row takes its raw bytes from.
    pub message_raw: Vec<(usize, usize)>,
    /// Which batch mail each quarantine row takes its raw bytes from.
    pub quarantine_raw: Vec<(usize, usize)>,
    /// Raw mails above one piece: (message id, bytes), written in pieces.
    large: Vec<(i64, Vec<u8>)>,
    /// Items on tickets, change records and their history.
    pub changes: super::changes::ChangeRows,
}

impl Rows {
    /// Moves the raw bytes of the batch into their rows, once; a large
    /// mail's first piece goes into its row and the rest is written piece by
    /// piece after it.
    pub fn take_raw(&mut self, batch: &mut [Incoming]) {
        for (row, i) in std::mem::take(&mut self.message_raw) {
            if let (Some(r), Some(m)) = (self.messages.get_mut(row), batch.get_mut(i)) {
                if m.raw.len() > RAW_PIECE
                    && let Set(id) = r.id
                {
                    r.raw = Set(m.raw[..RAW_PIECE].to_vec());
                    self.large.push((id, std::mem::take(&mut m.raw)));
                } else {
                    r.raw = Set(std::mem::take(&mut m.raw));
                }
            }
        }
        for (row, i) in std::mem::take(&mut self.quarantine_raw) {
            if let (Some(r), Some(m)) = (self.quarantine.get_mut(row), batch.get_mut(i)) {
                r.raw = Set(std::mem::take(&mut m.raw));
            }
        }
    }

    /// Writes every row; `contacts` resolves the participants to remove.
    pub async fn save(
        self,
        txn: &DatabaseTransaction,
        contacts: &Contacts,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.changes.save(txn).await?;
        insert_chunks(
            txn,
            self.escalations,
            supplier_escalation::Entity::insert_many,
        )
        .await?;
        for (ticket_id, supplier) in self.supplier_replies {
            supplier_escalation::Entity::update_many()
                .col_expr(supplier_escalation::Column::RespondedAt, Expr::value(now))
                .filter(supplier_escalation::Column::TicketId.eq(ticket_id))
                .filter(supplier_escalation::Column::Supplier.eq(supplier))
                .filter(supplier_escalation::Column::RespondedAt.is_null())
                .exec(txn)
                .await?;
        }
        insert_participants(txn, self.participants).await?;
        for (ticket_id, email) in self.removed {
            if let Some(contact) = contacts.ids.get(&email) {
                participant::Entity::delete_many()
                    .filter(participant::Column::TicketId.eq(ticket_id))
                    .filter(participant::Column::ContactId.eq(*contact))
                    .exec(txn)
                    .await?;
            }
        }
        insert_chunks(txn, self.links, |c| {
            ticket_link::Entity::insert_many(c).on_conflict(
                OnConflict::columns([ticket_link::Column::TicketId, ticket_link::Column::OtherId])
                    .do_nothing()
                    .to_owned(),
            )
        })
        .await?;
        // The first ticket to name an ID keeps it.
        insert_chunks(txn, self.keys, |c| {
            ticket_key::Entity::insert_many(c).on_conflict(
                OnConflict::column(ticket_key::Column::MessageId)
                    .do_nothing()
                    .to_owned(),
            )
        })
        .await?;
        insert_raw(
            txn,
            self.messages,
            RAW_INSERT_CHUNK,
            message::Column::Raw,
            message::Entity::insert_many,
        )
        .await?;
        for (id, raw) in self.large {
            insert_raw_pieces(txn, id, &raw).await?;
        }
        insert_chunks(txn, self.attachments, attachment::Entity::insert_many).await?;
        insert_raw(
            txn,
            self.outbox,
            RAW_INSERT_CHUNK,
            outbox::Column::Raw,
            outbox::Entity::insert_many,
        )
        .await?;
        insert_raw(
            txn,
            self.quarantine,
            RAW_INSERT_CHUNK,
            quarantine::Column::Raw,
            quarantine::Entity::insert_many,
        )
        .await?;
        for (id, why) in self.bounced {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Status, Expr::value("bounced"))
                .col_expr(outbox::Column::LastError, Expr::value(why))
                .filter(outbox::Column::Id.eq(id))
                .exec(txn)
                .await?;
        }
        events::insert(txn, self.events, now).await
    }
}

pub(super) fn quarantine_row(
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
pub(super) async fn insert_participants(
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

pub(super) fn participant_row(
    ticket_id: TicketId,
    contact_id: ContactId,
    role: Role,
) -> participant::ActiveModel {
    participant::ActiveModel {
        ticket_id: Set(ticket_id.0),
        contact_id: Set(contact_id.0),
        role: Set(role.as_str().into()),
    }
}

/// The message row of an inbound mail; its raw bytes are filled in once
/// every mail of the batch is decided.
pub(super) struct InboundRow<'a> {
    pub id: i64,
    pub ticket_id: TicketId,
    pub mail: &'a Inbound,
    pub class: &'a Class,
    pub fx: &'a Effects,
    pub author: &'a str,
    pub rule: &'a str,
    pub dedup_key: String,
    pub mailbox: String,
    pub uid: Option<u32>,
    /// Why recipients of the desk's answers were skipped.
    pub skipped: &'a [String],
    pub now: DateTime<Utc>,
}

impl InboundRow<'_> {
    pub fn build(self) -> message::ActiveModel {
        let InboundRow {
            id,
            ticket_id,
            mail,
            class,
            fx,
            author,
            rule,
            dedup_key,
            mailbox,
            uid,
            skipped,
            now,
        } = self;
        let mut warnings = mail.warnings.clone();
        warnings.extend(skipped.iter().cloned());
        if !class.reason().is_empty() {
            warnings.push(format!("{}: {}", class.as_str(), class.reason()));
        }
        message::ActiveModel {
            id: Set(id),
            ticket_id: Set(ticket_id.0),
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
            visibility: Set(fx.visibility.as_str().into()),
            class: Set(class.as_str().into()),
            threaded_by: Set(rule.into()),
            mailbox: Set(Some(mailbox)),
            uid: Set(uid.map(i64::from)),
            warnings: Set(warnings.join("\n")),
            created_at: Set(now),
            // Filled from the batch once every mail is decided.
            raw: Set(Vec::new()),
            author: Set(author.into()),
            flag: Set(fx.flag.clone()),
        }
    }
}
