//! The database adapter: connecting (SQLite with WAL and full sync, or
//! PostgreSQL), migrating, and the queries the CLI and the outbox need. The
//! ingest transaction lives in `ingest::apply`, which writes whole batches.

pub mod entity;
mod facts;
mod problems;
pub use problems::ProblemRow;
pub mod rows;

pub use facts::Fact;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use tokio::sync::Notify;
use tracing::debug;

use crate::error::{Error, Result};
use entity::{
    attachment, contact, counter, mailbox_state, message, outbox, participant, quarantine, ticket,
    ticket_link,
};

impl From<crate::domain::ticket::TicketId> for sea_orm::Value {
    fn from(id: crate::domain::ticket::TicketId) -> sea_orm::Value {
        id.0.into()
    }
}

impl From<crate::domain::ticket::ContactId> for sea_orm::Value {
    fn from(id: crate::domain::ticket::ContactId) -> sea_orm::Value {
        id.0.into()
    }
}

/// A daemon's claim on a mailbox (see [`Store::claim_mailbox`]); given up
/// by [`MailboxClaim::release`], or when the process ends.
#[derive(Debug)]
pub struct MailboxClaim {
    conn: Option<DatabaseConnection>,
    _held: Held,
}

impl MailboxClaim {
    pub async fn release(self) {
        if let Some(conn) = self.conn {
            let _ = conn.close().await;
        }
    }

    /// Returns when the claim's connection is gone (the database restarted,
    /// the network dropped it): the lock went with it, and another daemon
    /// may poll the mailbox now. Never returns for SQLite.
    pub async fn lost(&self) {
        let Some(conn) = &self.conn else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(CLAIM_CHECK).await;
            let alive = tokio::time::timeout(CLAIM_CHECK, conn.ping()).await;
            if !matches!(alive, Ok(Ok(()))) {
                return;
            }
        }
    }
}

/// How often a held mailbox claim checks that its connection lives.
const CLAIM_CHECK: Duration = Duration::from_secs(10);

/// Counts this process's mailbox claims while they are held.
#[derive(Debug)]
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Options for a connection of its own, whose end lets go of the session
/// locks taken on it.
fn single(url: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    opts
}

/// The advisory lock key of a mailbox: from its name, apart from the
/// migration lock's.
fn mailbox_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("helpdeskd mailbox {name}").as_bytes());
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// The URL, for a SQLite database (see [`Store::spawn_checkpointer`]).
    sqlite_url: Option<String>,
    /// The URL, for a PostgreSQL database (see [`Store::migrate`]).
    postgres_url: Option<String>,
    /// Mailbox claims this process holds (see [`Store::claims_held`]).
    claims: Arc<AtomicUsize>,
    /// Mailbox claims this process took, let go or not.
    taken: Arc<AtomicUsize>,
    /// The connection holding this daemon's presence (see [`Store::announce`]).
    presence: Arc<std::sync::Mutex<Option<DatabaseConnection>>>,
}

/// The PostgreSQL advisory lock every polling daemon holds shared while it
/// runs, so that each can count the daemons of its desk.
const PRESENCE_LOCK: i64 = 0x68_656c_7064_0001;

/// The PostgreSQL advisory lock daemons take around their migrations
/// ("helpdesk" in ASCII), so several starting together on one database
/// migrate one after the other instead of racing to create the same tables.
pub const MIGRATION_LOCK: i64 = 0x68_656c_7064_6573;

/// Changed pages an ingest batch keeps in SQLite's page cache until its
/// commit (16 MiB at 16 KiB a page); see [`Store::begin_batch`].
pub const BATCH_CACHE_SPILL: u32 = 1024;

impl Store {
    /// Connects; for SQLite, creates the file's folder and turns on WAL with
    /// `synchronous = FULL`, so a committed mail survives a power cut.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        if let Some(path) = sqlite_path(url)
            && let Some(dir) = std::path::Path::new(&path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut opts = ConnectOptions::new(url.to_string());
        opts.max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // 16 KiB pages suit rows that carry whole mails (takes effect
                // when the file is created); checkpoints every ~64 MB of WAL
                // instead of every 4 MB keep them off most commits. The
                // statement journals of multi-row inserts inside a batch's
                // transaction stay in memory (a few pages each) rather than
                // in temporary files: half a gigabyte less written per
                // 10,000 mails.
                o.page_size(16384)
                    .pragma("wal_autocheckpoint", "4096")
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("temp_store", "memory")
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        let db = Database::connect(opts).await?;
        let postgres_url =
            (db.get_database_backend() == sea_orm::DbBackend::Postgres).then(|| url.to_string());
        Ok(Store {
            db,
            sqlite_url: sqlite_path(url).map(|_| url.to_string()),
            postgres_url,
            claims: Arc::new(AtomicUsize::new(0)),
            taken: Arc::new(AtomicUsize::new(0)),
            presence: Arc::default(),
        })
    }

    /// For SQLite, starts a task that copies committed pages from the WAL
    /// into the database file (a passive checkpoint, which never blocks a
    /// writer) on a connection of its own, each time it is woken. Woken
    /// after every ingest commit, it does on another core the copy that the
    /// committing connection would otherwise make inside its commit; the
    /// connections' own `wal_autocheckpoint` stays as the backstop. `None`
    /// for PostgreSQL.
    pub async fn spawn_checkpointer(&self) -> Result<Option<Arc<Notify>>> {
        let Some(url) = &self.sqlite_url else {
            return Ok(None);
        };
        let own = Store::connect(url, 1).await?;
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        tokio::spawn(async move {
            loop {
                woken.notified().await;
                if let Err(e) = own
                    .db
                    .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                    .await
                {
                    debug!(error = %e, "checkpoint failed; a later one or the autocheckpoint makes up for it");
                }
            }
        });
        Ok(Some(wake))
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies pending migrations and names them. On PostgreSQL they run
    /// (and are looked up) under an advisory lock held on a connection of
    /// their own: a daemon that finds another migrating waits for it, then
    /// finds nothing left to do.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        let Some(url) = &self.postgres_url else {
            let pending = self.pending_migrations().await?;
            Migrator::up(&self.db, None).await?;
            return Ok(pending);
        };
        let lock = Database::connect(single(url)).await?;
        lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await?;
        let migrated = async {
            let pending = self.pending_migrations().await?;
            Migrator::up(&self.db, None).await?;
            Ok::<_, Error>(pending)
        }
        .await;
        let unlocked = lock
            .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .await;
        let _ = lock.close().await;
        let pending = migrated?;
        unlocked?;
        Ok(pending)
    }

    /// Claims mailbox `name` for this daemon, so that of several daemons on
    /// one database one polls it at a time: on PostgreSQL a session advisory
    /// lock on a connection of its own, which the database lets go the
    /// moment that connection ends (the daemon stops or dies). `None` when
    /// another daemon holds it. SQLite has one daemon: always granted.
    pub async fn claim_mailbox(&self, name: &str) -> Result<Option<MailboxClaim>> {
        let Some(url) = &self.postgres_url else {
            return Ok(Some(MailboxClaim {
                conn: None,
                _held: self.hold(),
            }));
        };
        let conn = Database::connect(single(url)).await?;
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT pg_try_advisory_lock({}) AS got", mailbox_key(name)),
            ))
            .await?;
        let got = row
            .map(|r| r.try_get::<bool>("", "got"))
            .transpose()?
            .unwrap_or(false);
        if got {
            Ok(Some(MailboxClaim {
                conn: Some(conn),
                _held: self.hold(),
            }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    fn hold(&self) -> Held {
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.claims.fetch_add(1, Ordering::SeqCst);
        Held(self.claims.clone())
    }

    /// How many mailboxes this process polls now: a daemon that holds its
    /// share (`poller::at_share`, by [`Store::daemons_present`]) lets the
    /// others claim first, so the mailboxes spread over the daemons.
    pub fn claims_held(&self) -> usize {
        self.claims.load(Ordering::SeqCst)
    }

    /// How many mailbox claims this process took since it started, the
    /// ones it let go included.
    pub fn claims_taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }

    /// Counts this process among the daemons that poll the desk's
    /// mailboxes (see [`Store::daemons_present`]), from now until it ends:
    /// a shared advisory lock on a connection of its own, taken before the
    /// migrations (which daemons take one after another), so that daemons
    /// started together see each other before any claims a mailbox.
    /// Nothing on SQLite.
    pub async fn announce(&self) -> Result<()> {
        let Some(url) = &self.postgres_url else {
            return Ok(());
        };
        let conn = Database::connect(single(url)).await?;
        conn.execute_unprepared(&format!("SELECT pg_advisory_lock_shared({PRESENCE_LOCK})"))
            .await?;
        if let Ok(mut p) = self.presence.lock() {
            *p = Some(conn);
        }
        Ok(())
    }

    /// How many daemons poll this database's mailboxes now (at least 1):
    /// those holding the presence lock, which the database lets go when a
    /// daemon's connection ends.
    pub async fn daemons_present(&self) -> Result<usize> {
        if self.postgres_url.is_none() {
            return Ok(1);
        }
        let [hi, lo] = [(PRESENCE_LOCK >> 32) as u32, PRESENCE_LOCK as u32];
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid = {hi} AND objid = {lo} AND objsubid = 1"
                ),
            ))
            .await?;
        let n = row.map(|r| r.try_get::<i64>("", "n")).transpose()?;
        Ok(usize::try_from(n.unwrap_or(1)).unwrap_or(1).max(1))
    }

    /// Whether daemons on other hosts may share this database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.postgres_url.is_some()
    }

    /// Names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        Ok(Migrator::get_pending_migrations(&self.db)
            .await?
            .iter()
            .map(|m| m.name().to_string())
            .collect())
    }

    pub async fn watermark(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        Ok(mailbox_state::Entity::find_by_id(mailbox.to_string())
            .one(&self.db)
            .await?
            .map(|m| (m.uid_validity as u32, m.last_uid as u32)))
    }

    // ---- outbox ----

    /// Claims up to `limit` due rows for this sender until `until`: their
    /// `next_attempt_at` moves to `until`, so no other daemon sending from
    /// the same database takes them meanwhile; a sender that dies before
    /// recording the result leaves them due again at `until`. `until` must be
    /// unique to this claim (the caller adds its own microseconds).
    pub async fn outbox_claim(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<outbox::Model>> {
        let ids: Vec<i64> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(outbox::Column::Status.eq("pending"))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(until))
            .filter(outbox::Column::Id.is_in(ids.clone()))
            .filter(outbox::Column::Status.eq("pending"))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Id.is_in(ids))
            .filter(outbox::Column::Status.eq("pending"))
            .filter(outbox::Column::NextAttemptAt.eq(until))
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn outbox_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value("sent"))
            .col_expr(outbox::Column::SentAt, Expr::value(now))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Marks sent the rows of `ids` that are still pending; returns how many.
    pub async fn outbox_sent_many(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64> {
        let mut marked = 0;
        for chunk in ids.chunks(1000) {
            marked += outbox::Entity::update_many()
                .col_expr(outbox::Column::Status, Expr::value("sent"))
                .col_expr(outbox::Column::SentAt, Expr::value(now))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
                .filter(outbox::Column::Status.eq("pending"))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(marked)
    }

    /// Extends a claim (rows whose `next_attempt_at` is still `until`) to `next`.
    pub async fn outbox_renew(
        &self,
        ids: &[i64],
        until: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(next))
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox::Column::Status.eq("pending"))
            .filter(outbox::Column::NextAttemptAt.eq(until))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next`, or failed for good when `next` is `None`.
    pub async fn outbox_attempt_failed(
        &self,
        id: i64,
        error: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut q = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .col_expr(outbox::Column::LastError, Expr::value(error.to_string()));
        q = match next {
            Some(at) => q.col_expr(outbox::Column::NextAttemptAt, Expr::value(at)),
            None => q.col_expr(outbox::Column::Status, Expr::value("failed")),
        };
        q.filter(outbox::Column::Id.eq(id)).exec(&self.db).await?;
        Ok(())
    }

    /// A row that could not be tried for a reason not its own (no OAuth2
    /// token for the server): due again at `next`, its attempts unchanged.
    pub async fn outbox_postpone(&self, id: i64, why: &str, next: DateTime<Utc>) -> Result<()> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::LastError, Expr::value(why.to_string()))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(next))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq("pending"))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    // ---- reading tickets ----

    pub async fn tickets(&self, status: Option<&str>) -> Result<Vec<TicketRow>> {
        let mut q = ticket::Entity::find().order_by_asc(ticket::Column::Id);
        if let Some(s) = status {
            q = q.filter(ticket::Column::Status.eq(s));
        }
        let tickets = q.all(&self.db).await?;
        let ids: Vec<i64> = tickets.iter().map(|t| t.customer_id).collect();
        let contacts = self.contacts_by_id(&ids).await?;
        Ok(tickets
            .into_iter()
            .map(|t| {
                let customer = contacts
                    .iter()
                    .find(|c| c.id == t.customer_id)
                    .map(|c| c.email.clone())
                    .unwrap_or_default();
                TicketRow {
                    ticket: t,
                    customer,
                }
            })
            .collect())
    }

    async fn contacts_by_id(&self, ids: &[i64]) -> Result<Vec<contact::Model>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            out.extend(
                contact::Entity::find()
                    .filter(contact::Column::Id.is_in(chunk.iter().copied()))
                    .all(&self.db)
                    .await?,
            );
        }
        Ok(out)
    }

    pub async fn ticket_detail(&self, number: &str) -> Result<TicketDetail> {
        let t = ticket::Entity::find()
            .filter(ticket::Column::Number.eq(number))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no ticket {number}")))?;
        let parts = participant::Entity::find()
            .filter(participant::Column::TicketId.eq(t.id))
            .all(&self.db)
            .await?;
        let mut contact_ids: Vec<i64> = parts.iter().map(|p| p.contact_id).collect();
        contact_ids.push(t.customer_id);
        let contacts = self.contacts_by_id(&contact_ids).await?;
        let email_of = |id: i64| {
            contacts
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.display())
                .unwrap_or_default()
        };
        let messages = message::Entity::find()
            .filter(message::Column::TicketId.eq(t.id))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        let message_ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
        let attachments = attachment::Entity::find()
            .filter(attachment::Column::MessageId.is_in(message_ids))
            .order_by_asc(attachment::Column::Id)
            .all(&self.db)
            .await?;
        let links = ticket_link::Entity::find()
            .filter(
                ticket_link::Column::TicketId
                    .eq(t.id)
                    .or(ticket_link::Column::OtherId.eq(t.id)),
            )
            .all(&self.db)
            .await?;
        let mut linked = Vec::new();
        for l in links {
            let other = if l.ticket_id == t.id {
                l.other_id
            } else {
                l.ticket_id
            };
            if let Some(o) = ticket::Entity::find_by_id(other).one(&self.db).await? {
                linked.push((o.number, l.reason));
            }
        }
        let outbox = outbox::Entity::find()
            .filter(outbox::Column::TicketId.eq(t.id))
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await?;
        Ok(TicketDetail {
            customer: contacts
                .iter()
                .find(|c| c.id == t.customer_id)
                .map(|c| c.email.clone())
                .unwrap_or_default(),
            participants: parts
                .iter()
                .map(|p| (email_of(p.contact_id), p.role.clone()))
                .collect(),
            ticket: t,
            messages: messages
                .into_iter()
                .map(|m| {
                    let atts = attachments
                        .iter()
                        .filter(|a| a.message_id == m.id)
                        .cloned()
                        .collect();
                    (m, atts)
                })
                .collect(),
            linked,
            outbox,
        })
    }

    pub async fn quarantined(&self) -> Result<Vec<quarantine::Model>> {
        Ok(quarantine::Entity::find()
            .order_by_asc(quarantine::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// A stored mail's raw bytes, its pieces put together.
    pub async fn message_raw(&self, message_id: i64) -> Result<Vec<u8>> {
        rows::message_raw(&self.db, message_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no message {message_id}")))
    }

    pub async fn quarantined_one(&self, id: i64) -> Result<quarantine::Model> {
        quarantine::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no quarantined mail {id}")))
    }

    /// A write transaction. On SQLite it takes the write lock at BEGIN
    /// (IMMEDIATE): a deferred transaction that reads first would fail with
    /// SQLITE_BUSY_SNAPSHOT when the outbox sender commits in between.
    pub async fn begin(&self) -> Result<sea_orm::DatabaseTransaction> {
        Ok(self
            .db
            .begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?)
    }

    /// [`Store::begin`] for an ingest batch. On SQLite the batch's changed
    /// pages (a batch holds up to 4 MB of raw mail) stay in the page cache
    /// until its commit, up to [`BATCH_CACHE_SPILL`] pages, instead of being
    /// written to the WAL whenever the 2 MB cache is full, each copied into
    /// the statement journal first, and written again at the commit with
    /// the WAL's checksums redone; above the cache size they are let go
    /// after the commit. A batch that carries a mail written in pieces
    /// (`holds_large`) spills as usual: holding its pages raised the peak
    /// memory of two 60 MB mails from 2.4 to 3.3 times a mail. The setting
    /// stays with the connection for the transactions after it, which
    /// write little.
    pub async fn begin_batch(&self, holds_large: bool) -> Result<sea_orm::DatabaseTransaction> {
        let txn = self.begin().await?;
        if self.sqlite_url.is_some() {
            // 1 is SQLite's own setting: spill once the cache is full.
            let pages = if holds_large { 1 } else { BATCH_CACHE_SPILL };
            txn.execute_unprepared(&format!("PRAGMA cache_spill = {pages}"))
                .await?;
        }
        Ok(txn)
    }

    /// The next value of a named counter, read under a row lock inside the
    /// caller's transaction; the caller writes the counter back.
    pub async fn counter_next<C: sea_orm::ConnectionTrait>(txn: &C, name: &str) -> Result<i64> {
        let current = counter::Entity::find_by_id(name.to_string())
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or_else(|| {
                Error::Invalid(format!("counter {name} missing: run `helpdeskd migrate`"))
            })?;
        Ok(current.value + 1)
    }
}

impl contact::Model {
    pub fn display(&self) -> String {
        if self.name.is_empty() {
            self.email.clone()
        } else {
            format!("{} <{}>", self.name, self.email)
        }
    }
}

#[derive(Debug, Clone)]
pub struct TicketRow {
    pub ticket: ticket::Model,
    pub customer: String,
}

#[derive(Debug, Clone)]
pub struct TicketDetail {
    pub ticket: ticket::Model,
    pub customer: String,
    pub participants: Vec<(String, String)>,
    pub messages: Vec<(message::Model, Vec<attachment::Model>)>,
    pub linked: Vec<(String, String)>,
    pub outbox: Vec<outbox::Model>,
}

/// The file path of a SQLite URL (`sqlite://path?opts`, `sqlite:path`).
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a fresh SQLite file in `dir` with a `filler` table of
    /// blobs; the file's path.
    async fn filler_store(dir: &tempfile::TempDir) -> (Store, std::path::PathBuf) {
        let path = dir.path().join("desk.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url, 1).await.expect("connect");
        store
            .conn()
            .execute_unprepared("CREATE TABLE filler (b BLOB)")
            .await
            .expect("create");
        (store, path)
    }

    /// A batch's pages reach the WAL at its commit, not before; one that
    /// holds a large mail spills them on the way, as SQLite does by default.
    #[tokio::test]
    async fn a_batch_keeps_its_pages_until_its_commit_unless_it_holds_a_large_mail() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = filler_store(&dir).await;
        let wal = dir.path().join("desk.db-wal");
        for (holds_large, spills) in [(false, false), (true, true), (false, false)] {
            store
                .conn()
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
                .expect("checkpoint");
            let txn = store.begin_batch(holds_large).await.expect("begin");
            // 6 MB: three times the 2 MB cache, under a batch's 16 MiB.
            for _ in 0..6 {
                txn.execute_unprepared("INSERT INTO filler VALUES (zeroblob(1000000))")
                    .await
                    .expect("insert");
            }
            let before_commit = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            txn.commit().await.expect("commit");
            assert_eq!(
                before_commit > 1_000_000,
                spills,
                "holds_large {holds_large}: {before_commit} bytes in the WAL before the commit"
            );
        }
    }

    /// A commit below the autocheckpoint threshold stays in the WAL until
    /// the checkpointer, woken, copies it into the database file.
    #[tokio::test]
    async fn the_checkpointer_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, path) = filler_store(&dir).await;
        let db = store.conn();
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        db.execute_unprepared("INSERT INTO filler VALUES (zeroblob(2000000))")
            .await
            .expect("insert");
        assert_eq!(size(), before, "the commit is only in the WAL");

        let wake = store
            .spawn_checkpointer()
            .await
            .expect("checkpoint connection")
            .expect("SQLite has a checkpointer");
        wake.notify_one();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < before + 1_900_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file did not grow: {} bytes",
                size()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn in_memory_databases_have_no_checkpointer() {
        let store = Store::connect("sqlite::memory:", 1).await.expect("connect");
        assert!(
            store
                .spawn_checkpointer()
                .await
                .expect("no error")
                .is_none()
        );
    }
}
