//! `--stored N`: the desk already holds N messages when the timed run
//! starts, so the run shows what a large database costs each mail (deeper
//! indexes, a page cache that no longer holds them, larger files).
//!
//! The database is migrated by the daemon (`helpdeskd migrate`), then filled
//! in a few statements: N messages of 1 KB raw mail each, two to a ticket
//! (closed, so no job looks at them), from N / 20 contacts, each with its own
//! Message-ID and dedup key in the same unique indexes the run's mails go
//! into. The counters are set past them, as the daemon would have left them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use helpdeskd::store::Store;
use sea_orm::{ConnectionTrait, DbBackend};

/// Rows per statement: one statement of a million rows would hold its
/// transaction (and, on SQLite, its journal) for the whole fill.
const PER_STATEMENT: usize = 50_000;
const RAW_BYTES: usize = 1024;

/// Migrates and fills the database of `config` with `messages` messages;
/// returns the seconds it took.
pub fn fill(daemon: &str, config: &Path, url: &str, messages: usize) -> Result<f64> {
    let started = Instant::now();
    super::run_checked(
        Command::new(daemon)
            .arg("--config")
            .arg(config)
            .arg("migrate"),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    rt.block_on(async {
        let store = Store::connect(url, 1).await.context("connect")?;
        let db = store.conn();
        let backend = db.get_database_backend();
        let tickets = messages.div_ceil(2);
        let contacts = messages.div_ceil(20).max(1);
        for (table, rows) in [
            ("contacts", contacts),
            ("tickets", tickets),
            ("messages", messages),
        ] {
            for first in (1..=rows).step_by(PER_STATEMENT) {
                let last = (first + PER_STATEMENT - 1).min(rows);
                let sql = insert(backend, table, first, last, contacts);
                db.execute_unprepared(&sql)
                    .await
                    .with_context(|| format!("fill {table} {first}..={last}"))?;
            }
        }
        for (name, value) in [
            ("contact", contacts),
            ("ticket", tickets),
            ("message", messages),
        ] {
            db.execute_unprepared(&format!(
                "UPDATE counters SET value = {value} WHERE name = '{name}'"
            ))
            .await
            .context("counters")?;
        }
        if backend == DbBackend::Postgres {
            db.execute_unprepared("ANALYZE").await.context("analyze")?;
        } else {
            db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
                .context("checkpoint")?;
        }
        anyhow::Ok(())
    })?;
    super::run_checked(&mut Command::new("sync"))?;
    Ok(started.elapsed().as_secs_f64())
}

/// One `INSERT … SELECT` of rows `first..=last` of `table`.
fn insert(backend: DbBackend, table: &str, first: usize, last: usize, contacts: usize) -> String {
    let pg = backend == DbBackend::Postgres;
    let (series, pad, raw) = if pg {
        (
            format!("generate_series({first}, {last}) AS s(i)"),
            "lpad(i::text, 7, '0')",
            // Hex digits of a hash: lz4 cannot shrink them much.
            format!(
                "convert_to(repeat(md5(i::text), {}), 'UTF8')",
                RAW_BYTES / 32
            ),
        )
    } else {
        (
            "s".to_string(),
            "printf('%07d', i)",
            format!("randomblob({RAW_BYTES})"),
        )
    };
    let with = if pg {
        String::new()
    } else {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s WHERE i < {last}) "
        )
    };
    let at = "'2026-01-05T09:00:00+00:00'";
    let at = if pg {
        format!("{at}::timestamptz")
    } else {
        at.to_string()
    };
    let columns_values = match table {
        "contacts" => format!(
            "(id, email, name, created_at, ack_count) SELECT i, 'stored' || {pad} || '@customers.example', \
             'Stored Customer ' || i, {at}, 0"
        ),
        "tickets" => format!(
            "(id, number, kind, subject, status, priority, customer_id, mailbox, created_at, \
             updated_at, fields) SELECT i, 'INC-' || {pad}, 'incident', 'Stored request ' || i, \
             'closed', 'normal', 1 + i % {contacts}, 'support', {at}, {at}, '{{}}'"
        ),
        _ => format!(
            "(id, ticket_id, direction, message_id, dedup_key, in_reply_to, \"references\", \
             from_addr, to_addrs, cc_addrs, subject, body_text, visibility, class, threaded_by, \
             mailbox, warnings, created_at, author, raw) SELECT i, (i + 1) / 2, 'in', \
             'stored' || i || '@customers.example', 'mid:stored' || i || '@customers.example', '', '', \
             'stored' || {pad} || '@customers.example', 'support@desk.example', '', \
             'Stored request ' || i, 'The stored body of message ' || i, 'public', 'customer', \
             'new', 'support', '', {at}, 'customer', {raw}"
        ),
    };
    format!("{with}INSERT INTO {table} {columns_values} FROM {series}")
}
