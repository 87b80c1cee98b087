//! The database yardstick: the issue's own measure of the database alone,
//! taken on this machine.
//!
//! The issue puts its targets beside a fact: SQLite (WAL) takes about 20,000
//! mails/s when 500 mails share a commit, each writing one ticket, one
//! message with its raw bytes and one outbox row. That is the database alone,
//! with nothing read, parsed or decided. Measured here it shows two things a
//! bare mails/s figure cannot: how fast this machine is beside the issue's
//! (with mails of 6.7 KB, the size of the issue's other fact), and how close
//! the daemon comes to the database's own limit with the mails of the run.
//!
//! The yardstick uses the daemon's connection settings (`Store::connect`: WAL,
//! `synchronous = FULL`, 16 KiB pages; the checkpointer on a connection of
//! its own; lz4 for raw columns on PostgreSQL, as the migrations set),
//! multi-row inserts as the daemon makes them, and three plain tables with a
//! primary key and a unique Message-ID each.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use helpdeskd::store::Store;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

pub const MAILS_PER_COMMIT: usize = 500;
/// At most this many mails of a run are written: enough for a steady rate.
pub const MAX_MAILS: usize = 10_000;
/// The mail size of the issue's facts.
pub const ISSUE_MAIL_BYTES: usize = 6_700;
const ROWS_PER_INSERT: usize = 16;
/// An acknowledgement's size, as the daemon renders it.
const ACK_BYTES: usize = 1_050;

const TABLES: [(&str, &str); 3] = [
    (
        "yardstick_tickets",
        "id {id}, number TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, \
         status TEXT NOT NULL, created_at TEXT NOT NULL",
    ),
    (
        "yardstick_messages",
        "id {id}, ticket_id BIGINT NOT NULL, message_id TEXT NOT NULL UNIQUE, \
         raw {blob} NOT NULL",
    ),
    (
        "yardstick_outbox",
        "id {id}, ticket_id BIGINT NOT NULL, message_id TEXT NOT NULL UNIQUE, \
         status TEXT NOT NULL, raw {blob} NOT NULL",
    ),
];

/// The mails the yardstick writes: the files of a run, optionally cut or repeated
/// to one size.
pub struct Mails {
    pub files: Vec<PathBuf>,
    pub size: Option<usize>,
}

impl Mails {
    fn read(&self, range: std::ops::Range<usize>) -> Result<Vec<Vec<u8>>> {
        self.files[range]
            .iter()
            .map(|f| {
                let raw = std::fs::read(f).with_context(|| format!("read {}", f.display()))?;
                Ok(match self.size {
                    Some(n) if !raw.is_empty() => raw.iter().copied().cycle().take(n).collect(),
                    _ => raw,
                })
            })
            .collect()
    }
}

/// Mails per second that the database at `url` (empty, or without the
/// yardstick's tables) takes for `mails`; only the database work is timed.
pub fn measure(url: &str, mails: &Mails) -> Result<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(measure_async(url, mails))
}

async fn measure_async(url: &str, mails: &Mails) -> Result<f64> {
    let store = Store::connect(url, 2).await.context("connect")?;
    let backend = store.conn().get_database_backend();
    // On PostgreSQL raw columns are compressed with lz4 where the server has
    // it, as the daemon's migrations set.
    let (id, blob) = match backend {
        DbBackend::Postgres => {
            let lz4 = store
                .conn()
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \
                     AND 'lz4' = ANY(enumvals)",
                ))
                .await?
                .is_some();
            let blob = if lz4 {
                "BYTEA COMPRESSION lz4"
            } else {
                "BYTEA"
            };
            ("BIGINT PRIMARY KEY", blob)
        }
        _ => ("INTEGER PRIMARY KEY", "BLOB"),
    };
    for (table, columns) in TABLES {
        let columns = columns.replace("{id}", id).replace("{blob}", blob);
        store
            .conn()
            .execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
        store
            .conn()
            .execute_unprepared(&format!("CREATE TABLE {table} ({columns})"))
            .await
            .with_context(|| format!("create {table}"))?;
    }
    let checkpoint = store.spawn_checkpointer().await?;
    let ack = vec![b'a'; ACK_BYTES];
    let total = mails.files.len().min(MAX_MAILS);
    let mut timed = Duration::ZERO;
    for start in (0..total).step_by(MAILS_PER_COMMIT) {
        let raws = mails.read(start..total.min(start + MAILS_PER_COMMIT))?;
        let started = Instant::now();
        let txn = store.begin().await?;
        let mut raws = raws.into_iter();
        let mut first = start as i64;
        loop {
            let chunk: Vec<Vec<u8>> = raws.by_ref().take(ROWS_PER_INSERT).collect();
            if chunk.is_empty() {
                break;
            }
            let ids = (first..).take(chunk.len());
            first += chunk.len() as i64;
            let tickets = ids.clone().flat_map(|id| {
                [
                    Value::from(id),
                    Value::from(format!("INC-{id:06}")),
                    Value::from("Printer on floor 3 is jammed"),
                    Value::from("new"),
                    Value::from("2026-11-26T08:00:00Z"),
                ]
            });
            insert(&txn, backend, "yardstick_tickets", 5, tickets.collect()).await?;
            let messages = ids.clone().zip(chunk).flat_map(|(id, raw)| {
                [
                    Value::from(id),
                    Value::from(id),
                    Value::from(format!("{id}@customer.example")),
                    Value::from(raw),
                ]
            });
            insert(&txn, backend, "yardstick_messages", 4, messages.collect()).await?;
            let outbox = ids.flat_map(|id| {
                [
                    Value::from(id),
                    Value::from(id),
                    Value::from(format!("{id}@desk.example")),
                    Value::from("pending"),
                    Value::from(ack.clone()),
                ]
            });
            insert(&txn, backend, "yardstick_outbox", 5, outbox.collect()).await?;
        }
        txn.commit().await?;
        if let Some(c) = &checkpoint {
            c.notify_one();
        }
        timed += started.elapsed();
    }
    Ok(total as f64 / timed.as_secs_f64())
}

/// One multi-row INSERT of `values`, `width` to a row.
async fn insert(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    table: &str,
    width: usize,
    values: Vec<Value>,
) -> Result<()> {
    let mut n = 0;
    let rows: Vec<String> = (0..values.len() / width)
        .map(|_| {
            let marks: Vec<String> = (0..width)
                .map(|_| {
                    n += 1;
                    match backend {
                        DbBackend::Postgres => format!("${n}"),
                        _ => "?".to_string(),
                    }
                })
                .collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO {table} VALUES {}", rows.join(", "));
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .with_context(|| format!("insert into {table}"))?;
    Ok(())
}
