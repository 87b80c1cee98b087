//! Row builders every writer shares (ingest, the plugin dispatcher, the SLA
//! and review jobs, the report): a mail the desk sends is a message on its
//! ticket plus an outbox row; a note is a message with no mail.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Value,
};

use super::entity::{message, message_raw_piece, outbox, ticket};
use crate::domain::ack::Outgoing;
use crate::domain::conversation::TicketState;
use crate::domain::mail::Address;
use crate::domain::sla::Due;
use crate::domain::ticket::{ContactId, Visibility};
use crate::error::{Error, Result};

/// Values per `IN (…)` list.
pub const IN_CHUNK: usize = 1024;

/// Rows per multi-row INSERT: under SQLite's and PostgreSQL's parameter limits.
pub const INSERT_CHUNK: usize = 200;

/// `Name <a@b>, c@d`, as stored.
pub fn join_addresses(list: &[Address]) -> String {
    list.iter()
        .map(Address::display)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per INSERT of rows that carry whole mails: the statement and the
/// driver each hold a copy of its values, so a small statement keeps a batch
/// of large mails from being in memory several times over.
pub const RAW_INSERT_CHUNK: usize = 16;

/// Inserts rows in multi-row statements of [`INSERT_CHUNK`], moving them
/// into each statement.
pub async fn insert_chunks<A, F>(txn: &DatabaseTransaction, rows: Vec<A>, insert: F) -> Result<()>
where
    A: sea_orm::ActiveModelTrait,
    F: Fn(Vec<A>) -> sea_orm::InsertMany<A>,
{
    insert_in(txn, rows, INSERT_CHUNK, insert).await
}

/// [`insert_chunks`] with `per_statement` rows a statement.
pub async fn insert_in<A, F>(
    txn: &DatabaseTransaction,
    mut rows: Vec<A>,
    per_statement: usize,
    insert: F,
) -> Result<()>
where
    A: sea_orm::ActiveModelTrait,
    F: Fn(Vec<A>) -> sea_orm::InsertMany<A>,
{
    let backend = txn.get_database_backend();
    for size in piece_sizes(backend, rows.len(), per_statement) {
        let rest = rows.split_off(size);
        insert(rows).exec_without_returning(txn).await?;
        rows = rest;
    }
    Ok(())
}

/// How many rows each statement of an insert of `n` rows takes: full
/// statements of `per_statement` rows, and on SQLite the rest in powers of
/// two. The driver keeps each connection's statements prepared by their
/// text, so the few texts that come back batch after batch are parsed once,
/// where a text for every count was parsed anew each time. (PostgreSQL
/// keeps one statement for the rest: each more is a round trip.)
fn piece_sizes(backend: DbBackend, mut n: usize, per_statement: usize) -> Vec<usize> {
    let per = per_statement.max(1);
    let mut sizes = Vec::with_capacity(n / per + usize::BITS as usize);
    while n >= per {
        sizes.push(per);
        n -= per;
    }
    if backend != DbBackend::Sqlite {
        if n > 0 {
            sizes.push(n);
        }
        return sizes;
    }
    let mut bit = per.next_power_of_two();
    while n > 0 {
        if n >= bit {
            sizes.push(bit);
            n -= bit;
        }
        bit /= 2;
    }
    sizes
}

/// `items` in chunks for `IN (…)` lists, each padded to a power of two (at
/// least 8, at most [`IN_CHUNK`]) by repeating its last item: a repeated
/// value changes nothing in an `IN` list, and the lookups of a batch then
/// have the same few texts batch after batch, which the driver keeps
/// prepared (on PostgreSQL each new text is also a round trip to prepare).
pub fn in_chunks<T>(items: &[T]) -> impl Iterator<Item = InChunk<'_, T>> {
    items.chunks(IN_CHUNK).map(|c| InChunk {
        items: c,
        len: c.len().next_power_of_two().clamp(8, IN_CHUNK),
    })
}

/// One chunk of [`in_chunks`].
pub struct InChunk<'a, T> {
    items: &'a [T],
    len: usize,
}

impl<'a, T> InChunk<'a, T> {
    /// The chunk's own items, unpadded.
    pub fn items(&self) -> &'a [T] {
        self.items
    }

    /// The chunk's items, its last repeated up to the padded length.
    pub fn iter(&self) -> impl Iterator<Item = &'a T> + Clone + use<'a, T> {
        let items = self.items;
        let pad = self.len.saturating_sub(items.len());
        items.iter().chain(
            items
                .last()
                .into_iter()
                .flat_map(move |l| std::iter::repeat_n(l, pad)),
        )
    }
}

/// Inserts rows that carry whole mails in `raw` (a blob column),
/// `per_statement` rows a statement, moving each blob into the statement's
/// values: through sea-orm's insert the bytes would be held by the insert
/// statement and again by the values built from it, besides the driver's
/// and the database's own copies.
pub async fn insert_raw<A, F>(
    txn: &DatabaseTransaction,
    mut rows: Vec<A>,
    per_statement: usize,
    raw: <A::Entity as EntityTrait>::Column,
    insert: F,
) -> Result<()>
where
    A: sea_orm::ActiveModelTrait,
    F: Fn(Vec<A>) -> sea_orm::InsertMany<A>,
{
    let backend = txn.get_database_backend();
    for size in piece_sizes(backend, rows.len(), per_statement) {
        let rest = rows.split_off(size);
        // Each row's blob is taken out and an empty one put in its place;
        // the statement lists the rows in order, so its empty blobs are
        // these places, in order.
        let mut blobs: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        for row in &mut rows {
            match row.take(raw) {
                ActiveValue::Set(Value::Bytes(Some(bytes))) => {
                    blobs.push(bytes);
                    row.set(raw, Value::Bytes(Some(Vec::new())));
                }
                ActiveValue::Set(v) | ActiveValue::Unchanged(v) => row.set(raw, v),
                ActiveValue::NotSet => {}
            }
        }
        let mut stmt = insert(rows).build(backend);
        let mut blobs = blobs.into_iter();
        let mut placed = 0usize;
        for value in stmt.values.iter_mut().flat_map(|v| v.0.iter_mut()) {
            if let Value::Bytes(Some(place)) = value
                && place.is_empty()
                && let Some(bytes) = blobs.next()
            {
                *place = bytes;
                placed += 1;
            }
        }
        if blobs.next().is_some() {
            return Err(Error::Invalid(format!(
                "insert of raw mails: {placed} places in the statement for more blobs"
            )));
        }
        txn.execute_raw(stmt).await?;
        rows = rest;
    }
    Ok(())
}

/// A stored raw mail larger than this keeps its first piece in
/// `messages.raw` and the rest in `message_raw_pieces`, one statement a
/// piece: a bound value is copied by the driver and again by the database
/// as it builds the row, so a mail written whole was held four times.
pub const RAW_PIECE: usize = 1024 * 1024;

/// Writes `raw[RAW_PIECE..]` as the pieces of message `message_id`.
pub async fn insert_raw_pieces(
    txn: &DatabaseTransaction,
    message_id: i64,
    raw: &[u8],
) -> Result<()> {
    for (i, piece) in raw.chunks(RAW_PIECE).enumerate().skip(1) {
        let seq = i32::try_from(i)
            .map_err(|_| Error::Invalid(format!("message {message_id}: too many raw pieces")))?;
        insert_raw(
            txn,
            vec![message_raw_piece::ActiveModel {
                message_id: ActiveValue::Set(message_id),
                seq: ActiveValue::Set(seq),
                bytes: ActiveValue::Set(piece.to_vec()),
            }],
            1,
            message_raw_piece::Column::Bytes,
            message_raw_piece::Entity::insert_many,
        )
        .await?;
    }
    Ok(())
}

/// A stored mail's raw bytes, its pieces put together.
pub async fn message_raw(db: &impl ConnectionTrait, message_id: i64) -> Result<Option<Vec<u8>>> {
    let Some(first) = message::Entity::find_by_id(message_id)
        .select_only()
        .column(message::Column::Raw)
        .into_tuple::<Vec<u8>>()
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let mut raw = first;
    let pieces: Vec<Vec<u8>> = message_raw_piece::Entity::find()
        .select_only()
        .column(message_raw_piece::Column::Bytes)
        .filter(message_raw_piece::Column::MessageId.eq(message_id))
        .order_by_asc(message_raw_piece::Column::Seq)
        .into_tuple()
        .all(db)
        .await?;
    for p in pieces {
        raw.extend_from_slice(&p);
    }
    Ok(Some(raw))
}

/// How a sent mail shows on its ticket.
pub struct Shown<'a> {
    /// The mail's kind: acknowledgement, notification, answer, plugin-mail…
    pub class: &'a str,
    /// public (the customer side saw it) or internal.
    pub visibility: Visibility,
    /// Who made the desk send it: `desk`, or `plugin:NAME`.
    pub threaded_by: &'a str,
}

/// A mail the desk sends, as a message row on its ticket.
pub fn outbound_row(
    id: i64,
    ticket_id: i64,
    out: &Outgoing,
    raw: &[u8],
    shown: Shown<'_>,
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
        visibility: Set(shown.visibility.as_str().into()),
        class: Set(shown.class.into()),
        threaded_by: Set(shown.threaded_by.into()),
        mailbox: Set(None),
        uid: Set(None),
        warnings: Set(String::new()),
        created_at: Set(now),
        raw: Set(raw.to_vec()),
        author: Set("desk".into()),
        flag: Set(None),
    }
}

/// A mail the desk sends, queued for the sender.
pub fn outbox_row(
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

/// The row of a ticket in its state after a change, with its SLA due
/// times; `customer` is the customer's contact id.
pub fn ticket_row(
    t: &TicketState,
    customer: ContactId,
    due: Due,
    now: DateTime<Utc>,
) -> ticket::ActiveModel {
    ticket::ActiveModel {
        id: Set(t.id.0),
        number: Set(t.number.to_string()),
        kind: Set(t.kind.as_str().into()),
        subject: Set(t.subject.clone()),
        status: Set(t.status.as_str().into()),
        priority: Set(t.priority.as_str().into()),
        customer_id: Set(customer.0),
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
}

/// An internal note on a ticket.
pub struct Note<'a> {
    pub ticket_id: i64,
    /// Makes the note unique (and writing it idempotent).
    pub key: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// The message class, e.g. `sla-warning`.
    pub class: &'a str,
    pub author: &'a str,
}

/// The message row of a note.
pub fn note_row(id: i64, note: Note<'_>, now: DateTime<Utc>) -> message::ActiveModel {
    let Note {
        ticket_id,
        key,
        subject,
        text,
        class,
        author,
    } = note;
    message::ActiveModel {
        id: Set(id),
        ticket_id: Set(ticket_id),
        direction: Set("note".into()),
        message_id: Set(None),
        dedup_key: Set(format!("note:{key}")),
        in_reply_to: Set(String::new()),
        references: Set(String::new()),
        from_addr: Set(String::new()),
        to_addrs: Set(String::new()),
        cc_addrs: Set(String::new()),
        subject: Set(subject.into()),
        body_text: Set(text.to_string()),
        visibility: Set(Visibility::Internal.as_str().into()),
        class: Set(class.into()),
        threaded_by: Set(author.into()),
        mailbox: Set(None),
        uid: Set(None),
        warnings: Set(String::new()),
        created_at: Set(now),
        raw: Set(Vec::new()),
        author: Set(author.into()),
        flag: Set(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_inserts_full_statements_then_powers_of_two() {
        assert_eq!(piece_sizes(DbBackend::Sqlite, 0, 16), Vec::<usize>::new());
        assert_eq!(piece_sizes(DbBackend::Sqlite, 16, 16), vec![16]);
        assert_eq!(
            piece_sizes(DbBackend::Sqlite, 45, 16),
            vec![16, 16, 8, 4, 1]
        );
        assert_eq!(
            piece_sizes(DbBackend::Sqlite, 475, 200),
            vec![200, 200, 64, 8, 2, 1]
        );
        // Whatever the count, a batch uses a handful of statement texts.
        for n in 0..1000 {
            let sizes = piece_sizes(DbBackend::Sqlite, n, 200);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|&s| s == 200 || s.is_power_of_two()));
        }
    }

    #[test]
    fn postgres_inserts_the_rest_in_one_statement() {
        assert_eq!(
            piece_sizes(DbBackend::Postgres, 475, 200),
            vec![200, 200, 75]
        );
        assert_eq!(
            piece_sizes(DbBackend::Postgres, 0, 200),
            Vec::<usize>::new()
        );
        assert_eq!(piece_sizes(DbBackend::Postgres, 3, 0), vec![1, 1, 1]);
    }

    #[test]
    fn in_lists_are_padded_with_their_last_item() {
        let ids: Vec<i64> = (1..=3).collect();
        let chunks: Vec<Vec<i64>> = in_chunks(&ids)
            .map(|c| c.iter().copied().collect())
            .collect();
        assert_eq!(chunks, vec![vec![1, 2, 3, 3, 3, 3, 3, 3]]);

        let many: Vec<i64> = (0..2500).collect();
        let chunks: Vec<InChunk<'_, i64>> = in_chunks(&many).collect();
        let lens: Vec<usize> = chunks.iter().map(|c| c.iter().count()).collect();
        assert_eq!(lens, vec![1024, 1024, 512]);
        assert_eq!(chunks[2].items().len(), 2500 - 2048);
        let mut seen: Vec<i64> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        seen.dedup();
        assert_eq!(seen, many);

        assert_eq!(in_chunks(&Vec::<i64>::new()).count(), 0);
    }
}
