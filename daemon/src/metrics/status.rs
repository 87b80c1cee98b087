//! What `helpdeskd status` shows and the scrape reads from the database:
//! each mailbox's poller (the `mailbox_status` table, written by the
//! poller that holds the mailbox), the outbox, failed plugin events and the
//! jobs' last success. `status` may run on another machine than the
//! daemons: everything it shows comes from the database.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::error::Result;
use crate::store::Store;
use crate::store::entity::{event, job_run, mailbox_status, outbox};

/// The outbox as the database has it, all daemons together.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxFacts {
    pub pending: u64,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// The earliest `next_attempt_at` of a pending mail that is due now:
    /// how long the sender has left a due mail unsent (mails in flight are
    /// claimed into the future, mails waiting for a retry are not due).
    #[serde(skip)]
    pub oldest_due_at: Option<DateTime<Utc>>,
    pub failed: u64,
    pub bounced: u64,
}

/// The figures about queues, read at each scrape.
#[derive(Debug, Default, Clone)]
pub struct Queues {
    pub outbox: OutboxFacts,
    pub failed_events: u64,
    /// Each job's last run that finished well.
    pub job_successes: Vec<(String, DateTime<Utc>)>,
}

pub async fn outbox(store: &Store, now: DateTime<Utc>) -> Result<OutboxFacts> {
    let db = store.conn();
    // Sent mail is most of the table and never counted: the index on
    // status keeps a scrape off it.
    let counts: Vec<(String, i64)> = outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Status)
        .column_as(outbox::Column::Id.count(), "n")
        .filter(outbox::Column::Status.is_in(["pending", "failed", "bounced"]))
        .group_by(outbox::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let count = |s: &str| {
        counts
            .iter()
            .find(|(status, _)| status == s)
            .map_or(0, |(_, n)| (*n).max(0) as u64)
    };
    let oldest_pending_at: Option<DateTime<Utc>> = outbox::Entity::find()
        .select_only()
        .column_as(outbox::Column::CreatedAt.min(), "t")
        .filter(outbox::Column::Status.eq("pending"))
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    let oldest_due_at: Option<DateTime<Utc>> = outbox::Entity::find()
        .select_only()
        .column_as(outbox::Column::NextAttemptAt.min(), "t")
        .filter(outbox::Column::Status.eq("pending"))
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    Ok(OutboxFacts {
        pending: count("pending"),
        oldest_pending_at,
        oldest_due_at,
        failed: count("failed"),
        bounced: count("bounced"),
    })
}

/// The figures about queues; `jobs`: the configured jobs' names.
pub async fn queues(store: &Store, now: DateTime<Utc>, jobs: &[String]) -> Result<Queues> {
    let db = store.conn();
    let failed_events = event::Entity::find()
        .filter(event::Column::Status.eq("failed"))
        .count(db)
        .await?;
    Ok(Queues {
        outbox: outbox(store, now).await?,
        failed_events,
        job_successes: job_successes(store, jobs).await?,
    })
}

/// When each of `jobs` last finished well: its latest good run, found
/// from the newest slot down (the index on job and slot), not by reading
/// the month of runs kept.
pub async fn job_successes(store: &Store, jobs: &[String]) -> Result<Vec<(String, DateTime<Utc>)>> {
    let mut out = Vec::new();
    for job in jobs {
        let at: Option<Option<DateTime<Utc>>> = job_run::Entity::find()
            .select_only()
            .column(job_run::Column::FinishedAt)
            .filter(job_run::Column::Job.eq(job))
            .filter(job_run::Column::Status.eq("ok"))
            .order_by_desc(job_run::Column::Slot)
            .into_tuple()
            .one(store.conn())
            .await?;
        if let Some(at) = at.flatten() {
            out.push((job.clone(), at));
        }
    }
    Ok(out)
}

// ---- the pollers' rows -------------------------------------------------------

/// How often a connected poller refreshes its row.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// A row that says connected but was not refreshed for this long belongs
/// to a daemon that died without closing (SIGKILL, a lost host) or that
/// cannot reach the database: three heartbeats missed.
pub const SILENT_AFTER: chrono::Duration = chrono::Duration::seconds(180);

/// What a poller reports about its mailbox.
#[derive(Debug, Clone)]
pub enum Report<'a> {
    Connected,
    /// Still connected: the poller's heartbeat, every [`HEARTBEAT`].
    Alive,
    Mail,
    Error(&'a str),
    Closed,
}

/// Writes a poller's report into `mailbox_status` (one row per mailbox,
/// the daemon that polls it as `daemon`).
pub async fn record(
    store: &Store,
    mailbox: &str,
    daemon: &str,
    report: Report<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    use mailbox_status::Column as C;
    let mut row = mailbox_status::ActiveModel {
        mailbox: Set(mailbox.to_string()),
        daemon: Set(daemon.to_string()),
        connected: Set(true),
        connected_at: NotSet,
        last_mail_at: NotSet,
        last_error: NotSet,
        last_error_at: NotSet,
        updated_at: Set(now),
    };
    let mut update = vec![C::Daemon, C::Connected, C::UpdatedAt];
    match report {
        Report::Connected => {
            row.connected_at = Set(Some(now));
            update.push(C::ConnectedAt);
        }
        Report::Alive => {}
        Report::Mail => {
            row.last_mail_at = Set(Some(now));
            update.push(C::LastMailAt);
        }
        Report::Error(e) => {
            row.connected = Set(false);
            row.last_error = Set(Some(e.to_string()));
            row.last_error_at = Set(Some(now));
            update.extend([C::LastError, C::LastErrorAt]);
        }
        Report::Closed => row.connected = Set(false),
    }
    mailbox_status::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::Mailbox)
                .update_columns(update)
                .to_owned(),
        )
        .exec_without_returning(store.conn())
        .await?;
    Ok(())
}

pub async fn mailbox_rows(store: &Store) -> Result<Vec<mailbox_status::Model>> {
    Ok(mailbox_status::Entity::find()
        .order_by_asc(mailbox_status::Column::Mailbox)
        .all(store.conn())
        .await?)
}

// ---- `helpdeskd status` ----------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub at: DateTime<Utc>,
    pub mailboxes: Vec<MailboxLine>,
    pub outbox: OutboxFacts,
    pub failed_plugin_events: u64,
    pub jobs: Vec<JobLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxLine {
    pub mailbox: String,
    /// The daemon that polls (or polled) it; `None`: never polled.
    pub daemon: Option<String>,
    pub connected: bool,
    /// The row says connected, but its daemon stopped refreshing it
    /// ([`SILENT_AFTER`]): it died or lost the database.
    pub silent: bool,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_mail_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl MailboxLine {
    /// The line of a configured mailbox from its row, if any, at `now`.
    pub fn new(
        mailbox: &str,
        row: Option<&mailbox_status::Model>,
        now: DateTime<Utc>,
    ) -> MailboxLine {
        let silent = row.is_some_and(|r| r.connected && now - r.updated_at > SILENT_AFTER);
        MailboxLine {
            mailbox: mailbox.to_string(),
            daemon: row.map(|r| r.daemon.clone()),
            connected: row.is_some_and(|r| r.connected) && !silent,
            silent,
            connected_at: row.and_then(|r| r.connected_at),
            last_mail_at: row.and_then(|r| r.last_mail_at),
            last_error: row.and_then(|r| r.last_error.clone()),
            last_error_at: row.and_then(|r| r.last_error_at),
            updated_at: row.map(|r| r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobLine {
    pub job: String,
    pub schedule: String,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub next_at: Option<DateTime<Utc>>,
}

fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "never".into(),
        Some(t) => format!("{} ({})", t.format("%Y-%m-%d %H:%M:%S"), ago(now - t)),
    }
}

/// `42s ago`, `5m ago`, `3h ago`, `2d ago`; `in 5m` for a time ahead.
fn ago(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    let (n, unit) = match s.abs() {
        n if n < 120 => (n, "s"),
        n if n < 2 * 3600 => (n / 60, "m"),
        n if n < 2 * 86_400 => (n / 3600, "h"),
        n => (n / 86_400, "d"),
    };
    if s < 0 {
        format!("in {n}{unit}")
    } else {
        format!("{n}{unit} ago")
    }
}

/// `helpdeskd status` as text.
pub fn render(s: &Status) -> String {
    let now = s.at;
    let mut out = String::from("mailboxes\n");
    if s.mailboxes.is_empty() {
        out.push_str("  none configured\n");
    }
    for m in &s.mailboxes {
        let state = match (&m.daemon, m.connected) {
            (None, _) => "never polled".to_string(),
            (Some(d), false) if m.silent => format!(
                "NOT connected: {d} said connected but has been silent since {} \
                 (the daemon died or cannot reach the database)",
                when(m.updated_at, now)
            ),
            (Some(d), true) => format!("connected (by {d}, since {})", when(m.connected_at, now)),
            (Some(d), false) => format!("NOT connected (last by {d})"),
        };
        out.push_str(&format!("  {:<16} {state}\n", m.mailbox));
        out.push_str(&format!(
            "  {:<16} last mail {}\n",
            "",
            when(m.last_mail_at, now)
        ));
        if let Some(e) = &m.last_error {
            out.push_str(&format!(
                "  {:<16} last error {}: {e}\n",
                "",
                when(m.last_error_at, now)
            ));
        }
    }
    let o = &s.outbox;
    out.push_str(&format!(
        "outbox: {} pending (oldest {}), {} failed, {} bounced\n",
        o.pending,
        when(o.oldest_pending_at, now),
        o.failed,
        o.bounced
    ));
    out.push_str(&format!(
        "plugins: {} failed event(s){}\n",
        s.failed_plugin_events,
        if s.failed_plugin_events > 0 {
            " (helpdeskd plugins failed)"
        } else {
            ""
        }
    ));
    out.push_str("jobs\n");
    if s.jobs.is_empty() {
        out.push_str("  none configured\n");
    }
    for j in &s.jobs {
        let last = match (&j.last_run_at, &j.last_status) {
            (Some(t), Some(st)) => format!("{st} {}", when(Some(*t), now)),
            _ => "never".into(),
        };
        out.push_str(&format!(
            "  {:<28} last run {last}; last success {}; next {}\n",
            j.job,
            when(j.last_success_at, now),
            j.next_at
                .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn status_text_shows_each_mailbox_the_outbox_plugins_and_jobs() {
        let now = at("2026-12-04T10:00:00Z");
        let row = mailbox_status::Model {
            mailbox: "support".into(),
            daemon: "desk1:42".into(),
            connected: true,
            connected_at: Some(at("2026-12-04T09:00:00Z")),
            last_mail_at: Some(at("2026-12-04T09:59:30Z")),
            last_error: Some("connection reset".into()),
            last_error_at: Some(at("2026-12-04T08:59:00Z")),
            updated_at: at("2026-12-04T09:59:30Z"),
        };
        let broken = mailbox_status::Model {
            mailbox: "changes".into(),
            connected: false,
            connected_at: None,
            last_mail_at: None,
            last_error: Some("127.0.0.1:1: connection refused".into()),
            last_error_at: Some(at("2026-12-04T09:58:00Z")),
            ..row.clone()
        };
        // Its daemon was killed: connected, and silent for four minutes.
        let killed = mailbox_status::Model {
            mailbox: "billing".into(),
            daemon: "desk2:7".into(),
            last_error: None,
            last_error_at: None,
            updated_at: at("2026-12-04T09:56:00Z"),
            ..row.clone()
        };
        let s = Status {
            at: now,
            mailboxes: vec![
                MailboxLine::new("support", Some(&row), now),
                MailboxLine::new("changes", Some(&broken), now),
                MailboxLine::new("sales", None, now),
                MailboxLine::new("billing", Some(&killed), now),
            ],
            outbox: OutboxFacts {
                pending: 2,
                oldest_pending_at: Some(at("2026-12-04T09:55:00Z")),
                oldest_due_at: None,
                failed: 1,
                bounced: 3,
            },
            failed_plugin_events: 4,
            jobs: vec![JobLine {
                job: "sla".into(),
                schedule: "* * * * *".into(),
                last_run_at: Some(at("2026-12-04T09:59:00Z")),
                last_status: Some("failed".into()),
                last_success_at: Some(at("2026-12-03T10:00:00Z")),
                next_at: Some(at("2026-12-04T10:01:00Z")),
            }],
        };
        assert_eq!(
            render(&s),
            "mailboxes
  support          connected (by desk1:42, since 2026-12-04 09:00:00 (60m ago))
                   last mail 2026-12-04 09:59:30 (30s ago)
                   last error 2026-12-04 08:59:00 (61m ago): connection reset
  changes          NOT connected (last by desk1:42)
                   last mail never
                   last error 2026-12-04 09:58:00 (2m ago): 127.0.0.1:1: connection refused
  sales            never polled
                   last mail never
  billing          NOT connected: desk2:7 said connected but has been silent since 2026-12-04 09:56:00 (4m ago) (the daemon died or cannot reach the database)
                   last mail 2026-12-04 09:59:30 (30s ago)
outbox: 2 pending (oldest 2026-12-04 09:55:00 (5m ago)), 1 failed, 3 bounced
plugins: 4 failed event(s) (helpdeskd plugins failed)
jobs
  sla                          last run failed 2026-12-04 09:59:00 (60s ago); last success 2026-12-03 10:00:00 (24h ago); next 2026-12-04 10:01:00
"
        );
    }

    async fn store() -> Store {
        let store = Store::connect("sqlite::memory:", 1).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    #[tokio::test]
    async fn the_outbox_figures_count_by_status_and_date_the_oldest_pending_and_due_mail() {
        let store = store().await;
        let t = |m: i64| at("2026-12-04T10:00:00Z") + chrono::Duration::minutes(m);
        for (status, created, next) in [
            ("pending", t(-30), t(20)),
            ("pending", t(-20), t(-5)),
            ("pending", t(-10), t(-10)),
            ("sent", t(-90), t(-90)),
            ("failed", t(-80), t(-80)),
            ("bounced", t(-70), t(-70)),
            ("bounced", t(-60), t(-60)),
        ] {
            outbox::Entity::insert(outbox::ActiveModel {
                ticket_id: Set(None),
                message_id: Set(format!("<{status}{}@desk.test>", created.timestamp())),
                kind: Set("notification".into()),
                envelope_from: Set("desk@desk.test".into()),
                recipients: Set("jo@cust.test".into()),
                status: Set(status.into()),
                attempts: Set(0),
                next_attempt_at: Set(next),
                last_error: Set(None),
                created_at: Set(created),
                sent_at: Set(None),
                raw: Set(b"x".to_vec()),
                ..Default::default()
            })
            .exec_without_returning(store.conn())
            .await
            .expect("insert");
        }
        assert_eq!(
            outbox(&store, t(0)).await.expect("figures"),
            OutboxFacts {
                pending: 3,
                oldest_pending_at: Some(t(-30)),
                oldest_due_at: Some(t(-10)),
                failed: 1,
                bounced: 2,
            }
        );
        assert_eq!(
            outbox(
                &Store::connect("sqlite::memory:", 1).await.expect("connect"),
                t(0)
            )
            .await
            .ok(),
            None,
            "no table, an error"
        );
    }

    #[tokio::test]
    async fn a_jobs_last_success_is_its_newest_good_run() {
        let store = store().await;
        let t = |m: i64| at("2026-12-04T10:00:00Z") + chrono::Duration::minutes(m);
        for (job, slot, status) in [
            ("sla", 0, "ok"),
            ("sla", 1, "ok"),
            ("sla", 2, "failed"),
            ("sla", 3, "running"),
            ("report", 0, "failed"),
        ] {
            job_run::Entity::insert(job_run::ActiveModel {
                job: Set(job.into()),
                slot: Set(t(slot)),
                status: Set(status.into()),
                owner: Set("desk1:42".into()),
                lease_until: Set(t(slot + 10)),
                started_at: Set(t(slot)),
                finished_at: Set(
                    (status != "running").then(|| t(slot) + chrono::Duration::seconds(5))
                ),
                outcome: Set(None),
                ..Default::default()
            })
            .exec_without_returning(store.conn())
            .await
            .expect("insert");
        }
        let jobs = [
            "sla".to_string(),
            "report".into(),
            "supplier-review:NetCo".into(),
        ];
        assert_eq!(
            job_successes(&store, &jobs).await.expect("read"),
            vec![("sla".to_string(), t(1) + chrono::Duration::seconds(5))]
        );
    }

    #[tokio::test]
    async fn a_mailbox_row_keeps_the_last_mail_and_error_across_reports() {
        let store = store().await;
        let t = |m: i64| at("2026-12-04T10:00:00Z") + chrono::Duration::minutes(m);
        let rec = async |r: Report<'_>, when| {
            record(&store, "support", "desk1:42", r, when)
                .await
                .expect("recorded")
        };
        rec(Report::Connected, t(0)).await;
        rec(Report::Mail, t(1)).await;
        rec(Report::Error("connection reset"), t(2)).await;
        let rows = mailbox_rows(&store).await.expect("rows");
        assert_eq!(
            rows,
            vec![mailbox_status::Model {
                mailbox: "support".into(),
                daemon: "desk1:42".into(),
                connected: false,
                connected_at: Some(t(0)),
                last_mail_at: Some(t(1)),
                last_error: Some("connection reset".into()),
                last_error_at: Some(t(2)),
                updated_at: t(2),
            }]
        );
        rec(Report::Connected, t(3)).await;
        rec(Report::Closed, t(4)).await;
        let row = &mailbox_rows(&store).await.expect("rows")[0];
        assert_eq!(
            (
                row.connected,
                row.connected_at,
                row.last_mail_at,
                row.updated_at
            ),
            (false, Some(t(3)), Some(t(1)), t(4))
        );
        assert_eq!(row.last_error.as_deref(), Some("connection reset"));
        // A heartbeat keeps the connection's start and says connected.
        rec(Report::Connected, t(5)).await;
        rec(Report::Alive, t(6)).await;
        let row = &mailbox_rows(&store).await.expect("rows")[0];
        assert_eq!(
            (row.connected, row.connected_at, row.updated_at),
            (true, Some(t(5)), t(6))
        );
        assert!(!MailboxLine::new("support", Some(row), t(8)).silent);
        let silent = MailboxLine::new("support", Some(row), t(10));
        assert!(silent.silent && !silent.connected);
    }

    #[test]
    fn ages_read_in_the_largest_sensible_unit() {
        let d = chrono::Duration::seconds;
        assert_eq!(ago(d(5)), "5s ago");
        assert_eq!(ago(d(119)), "119s ago");
        assert_eq!(ago(d(600)), "10m ago");
        assert_eq!(ago(d(3 * 3600)), "3h ago");
        assert_eq!(ago(d(3 * 86_400)), "3d ago");
        assert_eq!(ago(d(-300)), "in 5m");
    }
}
