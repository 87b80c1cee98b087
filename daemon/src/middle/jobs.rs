//! The scheduler's claim: `jobs::run_due` runs a due slot once, whoever
//! calls it and however often.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;

use super::{Desk, Table, assert_snapshot, relative, t0};
use crate::jobs::{RunRecord, owner, run_due};

async fn due(desk: &Desk) -> Vec<RunRecord> {
    run_due(
        &desk.app.store,
        &desk.app.config,
        &desk.app.settings,
        desk.now(),
    )
    .await
    .expect("jobs run")
}

/// Runs as `at: job@slot status`, one a line.
fn runs(at: DateTime<Utc>, records: &[RunRecord]) -> String {
    if records.is_empty() {
        return format!("{}: nothing", relative(at));
    }
    records
        .iter()
        .map(|r| {
            format!(
                "{}: {}@{} {}",
                relative(at),
                r.job,
                relative(r.slot),
                r.status
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every run row belongs to this process.
async fn owned_here(desk: &Desk) {
    let owners = desk
        .rows("SELECT DISTINCT owner FROM job_runs ORDER BY owner")
        .await;
    assert_eq!(owners, format!("owner={}", owner()));
}

/// The SLA check runs at once and then once a minute; a second call in the
/// same slot runs nothing; the supplier review waits for its first slot
/// after the desk first saw it (recorded in `job_state`).
#[tokio::test]
async fn a_due_job_runs_once_per_slot() {
    let desk = Desk::new().await;
    let mut log = Vec::new();
    for offset in [0, 0, 30, 60, 61] {
        desk.set(t0() + Duration::seconds(offset));
        log.push(runs(desk.now(), &due(&desk).await));
    }
    assert_snapshot(
        &log.join("\n"),
        r##"
        T0: sla@T0 ok
        T0: nothing
        T0+30s: nothing
        T0+1m: sla@T0+1m ok
        T0+1m1s: nothing
        "##,
    );
    assert_snapshot(
        &desk.snapshot(&[Table::JobRuns]).await,
        r##"
        [job_runs]
        id=1 job=sla slot=T0 status=ok lease=T0+10m started=T0 finished=T0 outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        id=2 job=sla slot=T0+1m status=ok lease=T0+11m started=T0+1m finished=T0+1m outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        "##,
    );
    assert_snapshot(
        &desk
            .rows("SELECT job, first_seen FROM job_state ORDER BY job")
            .await,
        r##"
        job=supplier-review:NetCo first_seen=T0
        "##,
    );
    owned_here(&desk).await;
}

/// Two schedulers (two daemons on one database) at the same instant: the
/// slot is claimed by one insert, and the job runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_at_once_claim_a_slot_once() {
    let desk = Desk::new().await;
    let (a, b) = tokio::join!(due(&desk), due(&desk));
    let all: Vec<String> = a
        .iter()
        .chain(&b)
        .map(|r| format!("{}@{} {}", r.job, relative(r.slot), r.status))
        .collect();
    assert_eq!(
        all,
        ["sla@T0 ok"],
        "one of the two ran the job: {a:?} {b:?}"
    );
    assert_snapshot(
        &desk.snapshot(&[Table::JobRuns]).await,
        r##"
        [job_runs]
        id=1 job=sla slot=T0 status=ok lease=T0+10m started=T0 finished=T0 outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        "##,
    );
}

/// A run whose daemon died (still `running`, its lease over) is taken over
/// by the next scheduler and finished; a run whose lease still holds is
/// left alone.
#[tokio::test]
async fn a_run_whose_lease_ran_out_is_taken_over() {
    let desk = Desk::new().await;
    desk.app
        .store
        .conn()
        .execute_unprepared(
            "INSERT INTO job_runs (job, slot, status, owner, lease_until, started_at) VALUES \
             ('sla', '2026-03-02T09:00:00+00:00', 'running', 'dead-host:1', \
              '2026-03-02T09:10:00+00:00', '2026-03-02T09:00:00+00:00')",
        )
        .await
        .expect("a run of a dead daemon");
    let mut log = Vec::new();
    for minutes in [5, 11, 11] {
        desk.set(t0() + Duration::minutes(minutes));
        log.push(runs(desk.now(), &due(&desk).await));
    }
    assert_snapshot(
        &log.join("\n"),
        r##"
        T0+5m: sla@T0+5m ok
        T0+11m: sla@T0 ok
        T0+11m: sla@T0+11m ok
        "##,
    );
    assert_snapshot(
        &desk.snapshot(&[Table::JobRuns]).await,
        r##"
        [job_runs]
        id=1 job=sla slot=T0 status=ok lease=T0+21m started=T0+11m finished=T0+11m outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        id=2 job=sla slot=T0+5m status=ok lease=T0+15m started=T0+5m finished=T0+5m outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        id=4 job=sla slot=T0+11m status=ok lease=T0+21m started=T0+11m finished=T0+11m outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        "##,
    );
    owned_here(&desk).await;
}

/// The supplier review's first slot (08:00 on the 1st) after the desk saw
/// it: the review covers the month since the slot before, and runs once.
#[tokio::test]
async fn the_supplier_review_runs_at_its_slot_once() {
    let desk = Desk::new().await;
    let first = due(&desk).await;
    let april = DateTime::parse_from_rfc3339("2026-04-01T08:00:00Z")
        .expect("instant")
        .with_timezone(&Utc);
    desk.set(april);
    let at_slot = due(&desk).await;
    let again = due(&desk).await;
    assert_snapshot(
        &[
            runs(t0(), &first),
            runs(april, &at_slot),
            runs(april, &again),
        ]
        .join("\n"),
        r##"
        T0: sla@T0 ok
        T0+29d23h: sla@T0+29d23h ok
        T0+29d23h: supplier-review:NetCo@T0+29d23h ok
        T0+29d23h: nothing
        "##,
    );
    assert_snapshot(
        &desk.snapshot(&[Table::JobRuns, Table::Tickets]).await,
        r##"
        [job_runs]
        id=1 job=sla slot=T0 status=ok lease=T0+10m started=T0 finished=T0 outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        id=2 job=sla slot=T0+29d23h status=ok lease=T0+29d23h10m started=T0+29d23h finished=T0+29d23h outcome="{\"tickets\":0,\"warnings\":0,\"breaches\":0,\"mails\":0}"
        id=3 job=supplier-review:NetCo slot=T0+29d23h status=ok lease=T0+29d23h10m started=T0+29d23h finished=T0+29d23h outcome="review ticket REQ-000001"
        [tickets]
        number=REQ-000001 status=new priority=normal kind=request assignee=ada@acme.test customer=1 mailbox="" subject="Supplier review: NetCo (2026-03-01 to 2026-04-01)" fields="{\"supplier\":\"NetCo\"}" created=T0+29d23h updated=T0+29d23h
        "##,
    );
}

/// A report slot whose daemon died after queuing the report (another
/// daemon takes the slot over) is not mailed twice; `report send`, with no
/// slot, always queues.
#[tokio::test]
async fn a_slot_s_report_is_queued_once() {
    let desk = Desk::new().await;
    let mut config = desk.app.config.clone();
    config.levels.report.recipients =
        vec![crate::domain::mail::Address::new("Boss", "boss@acme.test")];
    let store = &desk.app.store;
    let slot = Some(desk.now());
    let queue = |slot| crate::report::queue_scheduled(store, &config, slot, desk.now());
    assert_eq!(queue(slot).await.expect("the slot's run"), 1);
    assert_eq!(queue(slot).await.expect("the slot taken over"), 0);
    assert_eq!(queue(None).await.expect("report send"), 1);
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM outbox WHERE kind = 'report'")
            .await,
        "2"
    );
}

/// Every daemon of a desk meets the same refused OAuth2 grant: the admin
/// is mailed about an account once a day, by whichever daemon comes first.
#[tokio::test]
async fn the_admin_is_told_of_a_refused_grant_once_a_day_for_the_whole_desk() {
    use crate::oauth2::{Alert, alert};
    use crate::store::Fact;
    let mut desk = Desk::new().await;
    desk.app.config.admin_address =
        Some(crate::domain::mail::Address::new("", "it-admin@acme.test"));
    let (store, config) = (&desk.app.store, &desk.app.config);
    let refused = |account: &str| Alert {
        account: account.into(),
        reason: "invalid_grant: consent revoked".into(),
    };
    let now = desk.now();
    assert!(
        alert::queue(store, config, &refused("m365"), now)
            .await
            .expect("queue")
    );
    assert!(
        !alert::queue(store, config, &refused("m365"), now + Duration::hours(3))
            .await
            .expect("queue"),
        "the same day: told already"
    );
    // Another daemon was first for the Google account today.
    store
        .record_fact_once(
            &format!("oauth2-alert:google:{}", now.format("%Y-%m-%d")),
            Fact {
                value: "invalid_grant".into(),
                recorded_by: "desk2:77".into(),
                recorded_at: now,
            },
        )
        .await
        .expect("fact");
    assert!(
        !alert::queue(store, config, &refused("google"), now)
            .await
            .expect("queue")
    );
    assert!(
        alert::queue(store, config, &refused("m365"), now + Duration::days(1))
            .await
            .expect("queue"),
        "the next day it is told again"
    );
    assert_eq!(
        desk.value("SELECT COUNT(*) FROM outbox WHERE kind = 'admin'")
            .await,
        "2"
    );
}
