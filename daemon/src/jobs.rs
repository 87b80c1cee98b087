//! The scheduler: jobs on cron expressions from the configuration (the SLA
//! check, the service report, one review per supplier), in the daemon and in
//! `run --once`.
//!
//! Every run is a row in `job_runs`, unique per job and slot and claimed with
//! an insert that only one daemon can win, under a lease: a slot runs once
//! even with several daemons on one database, a run whose daemon died is
//! taken over when its lease ends, and a daemon that was down runs the
//! latest missed slot once, not once per missed slot. A failing job is
//! recorded with its error and tried again at its next slot. Runs older than
//! 30 days are deleted as new ones finish.

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tracing::{error, info};

use crate::config::Config;
use crate::domain::conversation::Settings;
use crate::domain::schedule::{CronSchedule, FirstRun};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::entity::{job_run, job_state};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    Sla,
    Report,
    SupplierReview(String),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub schedule: CronSchedule,
    pub kind: JobKind,
    /// A never-run job runs at once (checks), or waits for its first slot
    /// after the desk first saw it (reports and reviews: no report of a
    /// period the desk was not running).
    pub at_once: bool,
}

/// The configured jobs.
pub fn jobs(config: &Config) -> Vec<Job> {
    let levels = &config.levels;
    let mut out = Vec::new();
    if let Ok(s) = CronSchedule::parse(&levels.jobs.sla) {
        out.push(Job {
            name: "sla".into(),
            schedule: s,
            kind: JobKind::Sla,
            at_once: true,
        });
    }
    if let Some(s) = levels
        .report
        .schedule
        .as_deref()
        .and_then(|s| CronSchedule::parse(s).ok())
    {
        out.push(Job {
            name: "report".into(),
            schedule: s,
            kind: JobKind::Report,
            at_once: false,
        });
    }
    for su in &levels.suppliers {
        if let Some(s) = su
            .review
            .as_deref()
            .and_then(|s| CronSchedule::parse(s).ok())
        {
            out.push(Job {
                name: format!("supplier-review:{}", su.name),
                schedule: s,
                kind: JobKind::SupplierReview(su.name.clone()),
                at_once: false,
            });
        }
    }
    out
}

/// One job run, for `jobs list` and `run --once --json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRecord {
    pub job: String,
    pub slot: DateTime<Utc>,
    pub status: String,
    pub outcome: Option<String>,
}

/// Who runs jobs here, for the lease rows.
pub fn owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Runs every job whose slot has come (at most one slot per job).
pub async fn run_due(
    store: &Store,
    config: &Config,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<RunRecord>> {
    let owner = owner();
    let mut out = Vec::new();
    for job in jobs(config) {
        match due_slot(store, &job, now).await? {
            Some(slot) => {
                let claim = Claim {
                    job: &job,
                    slot,
                    owner: &owner,
                };
                if let Some(r) = claim_and_run(store, config, settings, claim, now).await? {
                    out.push(r);
                }
            }
            None => continue,
        }
    }
    Ok(out)
}

/// Runs the job named `name` now, whatever its schedule.
pub async fn run_now(
    store: &Store,
    config: &Config,
    settings: &Settings,
    name: &str,
    now: DateTime<Utc>,
) -> Result<RunRecord> {
    let job = jobs(config)
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| {
            let names: Vec<String> = jobs(config).into_iter().map(|j| j.name).collect();
            Error::NotFound(format!(
                "no job {name:?} (configured: {})",
                names.join(", ")
            ))
        })?;
    let slot = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
    let owner = owner();
    let claim = Claim {
        job: &job,
        slot,
        owner: &owner,
    };
    claim_and_run(store, config, settings, claim, now)
        .await?
        .ok_or_else(|| Error::Invalid(format!("{name} is already running for {slot}")))
}

/// The slot `job` should run at `now`: a run whose lease ran out is taken
/// over; else the latest slot after the last one recorded.
async fn due_slot(store: &Store, job: &Job, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let db = store.conn();
    let stale = job_run::Entity::find()
        .filter(job_run::Column::Job.eq(&job.name))
        .filter(job_run::Column::Status.eq("running"))
        .filter(job_run::Column::LeaseUntil.lt(now))
        .order_by_asc(job_run::Column::Slot)
        .one(db)
        .await?;
    if let Some(r) = stale {
        return Ok(Some(r.slot));
    }
    let last: Option<DateTime<Utc>> = job_run::Entity::find()
        .select_only()
        .column_as(job_run::Column::Slot.max(), "slot")
        .filter(job_run::Column::Job.eq(&job.name))
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    let first = if job.at_once {
        FirstRun::Immediately
    } else {
        FirstRun::NextSlotAfter(first_seen(store, &job.name, now).await?)
    };
    Ok(job.schedule.due_slot(last, now, first))
}

/// When the desk first saw this job (recorded once).
async fn first_seen(store: &Store, job: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let db = store.conn();
    job_state::Entity::insert(job_state::ActiveModel {
        job: Set(job.to_string()),
        first_seen: Set(now),
    })
    .on_conflict(
        OnConflict::column(job_state::Column::Job)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(job_state::Entity::find_by_id(job.to_string())
        .one(db)
        .await?
        .map(|s| s.first_seen)
        .unwrap_or(now))
}

/// A run of a job to claim: its slot, and the daemon claiming it.
#[derive(Clone, Copy)]
struct Claim<'a> {
    job: &'a Job,
    slot: DateTime<Utc>,
    owner: &'a str,
}

async fn claim_and_run(
    store: &Store,
    config: &Config,
    settings: &Settings,
    claim: Claim<'_>,
    now: DateTime<Utc>,
) -> Result<Option<RunRecord>> {
    let Claim { job, slot, owner } = claim;
    let db = store.conn();
    let lease_until = now + config.levels.jobs.lease;
    let inserted = job_run::Entity::insert(job_run::ActiveModel {
        job: Set(job.name.clone()),
        slot: Set(slot),
        status: Set("running".into()),
        owner: Set(owner.to_string()),
        lease_until: Set(lease_until),
        started_at: Set(now),
        finished_at: Set(None),
        outcome: Set(None),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([job_run::Column::Job, job_run::Column::Slot])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        // Somebody has this slot: take it over only if its lease ran out.
        let taken = job_run::Entity::update_many()
            .col_expr(job_run::Column::Owner, Expr::value(owner))
            .col_expr(job_run::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(job_run::Column::StartedAt, Expr::value(now))
            .filter(job_run::Column::Job.eq(&job.name))
            .filter(job_run::Column::Slot.eq(slot))
            .filter(job_run::Column::Status.eq("running"))
            .filter(job_run::Column::LeaseUntil.lt(now))
            .exec(db)
            .await?;
        if taken.rows_affected == 0 {
            return Ok(None);
        }
    }
    info!(job = job.name, slot = %slot, "job started");
    let result = execute(store, config, settings, job, slot, now).await;
    let (status, outcome) = match &result {
        Ok(o) => ("ok", o.clone()),
        Err(e) => {
            error!(job = job.name, slot = %slot, error = %e, "job failed; it runs again at its next slot");
            ("failed", e.to_string())
        }
    };
    job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value(status))
        .col_expr(job_run::Column::FinishedAt, Expr::value(now))
        .col_expr(job_run::Column::Outcome, Expr::value(outcome.clone()))
        .filter(job_run::Column::Job.eq(&job.name))
        .filter(job_run::Column::Slot.eq(slot))
        .exec(db)
        .await?;
    info!(job = job.name, slot = %slot, status, outcome, "job finished");
    // Runs are kept for 30 days: the SLA check alone records one a minute.
    job_run::Entity::delete_many()
        .filter(job_run::Column::Job.eq(&job.name))
        .filter(job_run::Column::Slot.lt(slot - Duration::days(30)))
        .filter(job_run::Column::Status.ne("running"))
        .exec(db)
        .await?;
    Ok(Some(RunRecord {
        job: job.name.clone(),
        slot,
        status: status.into(),
        outcome: Some(outcome),
    }))
}

async fn execute(
    store: &Store,
    config: &Config,
    settings: &Settings,
    job: &Job,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<String> {
    match &job.kind {
        JobKind::Sla => {
            let s = crate::service_level::check(store, settings, now).await?;
            Ok(serde_json::to_string(&s).unwrap_or_default())
        }
        JobKind::Report => {
            let n = crate::report::queue_scheduled(store, config, Some(slot), now).await?;
            Ok(format!("report queued for {n} recipient(s)"))
        }
        JobKind::SupplierReview(name) => {
            let since = job
                .schedule
                .latest_at_or_before(slot - Duration::seconds(1))
                .unwrap_or(slot - Duration::days(30));
            let number = crate::supplier::review(store, config, settings, name, since, now).await?;
            Ok(format!("review ticket {number}"))
        }
    }
}

/// A job as `jobs list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobView {
    pub job: String,
    pub schedule: String,
    pub last: Option<RunRecord>,
    pub next: Option<DateTime<Utc>>,
}

pub async fn list(store: &Store, config: &Config, now: DateTime<Utc>) -> Result<Vec<JobView>> {
    let mut out = Vec::new();
    for job in jobs(config) {
        let last = job_run::Entity::find()
            .filter(job_run::Column::Job.eq(&job.name))
            .order_by_desc(job_run::Column::Slot)
            .one(store.conn())
            .await?
            .map(|r| RunRecord {
                job: r.job,
                slot: r.slot,
                status: r.status,
                outcome: r.outcome,
            });
        out.push(JobView {
            next: job.schedule.next_after(now),
            schedule: job.schedule.source().to_string(),
            job: job.name,
            last,
        });
    }
    Ok(out)
}
