//! The process figures of a report period: problems and known errors,
//! changes (success rate, emergency changes, late approvals), releases
//! (deployed, vetoed) and the availability of each service from the
//! outages recorded on incidents. Plain selects; counting in Rust, with the
//! counting functions pure and tested.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use crate::domain::changes::Catalog;
use crate::domain::outage::{self, Availability, Outage};
use crate::domain::ticket::{Kind, Status};
use crate::error::Result;
use crate::store::Store;
use crate::store::entity::{change, change_history, event, outage as outage_row, problem, ticket};

/// Problems and known errors.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Problems {
    /// Problem tickets opened in the period.
    pub opened: u64,
    /// Problem tickets resolved in the period.
    pub solved: u64,
    /// Problem tickets neither resolved nor closed now.
    pub open: u64,
    /// Known errors of open problems now.
    pub known_errors: u64,
}

/// Changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Changes {
    pub submitted: u64,
    pub approved: u64,
    pub rejected: u64,
    pub implemented: u64,
    pub failed: u64,
    /// `implemented / (implemented + failed)`, in percent.
    pub success_percent: Option<f64>,
    /// Submitted with a window starting less than 24 hours later.
    pub emergency: u64,
    /// Approval answers refused because they came after the deadline.
    pub approvals_late: u64,
    /// Approval answers refused for any reason (forged, foreign token, late…).
    pub answers_refused: u64,
}

/// Releases.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Releases {
    /// Deploys asked (`/deploy` through the gate).
    pub deploys_asked: u64,
    pub deployed: u64,
    /// Deploys the gate vetoed (or that failed).
    pub vetoed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Processes {
    pub problems: Problems,
    pub changes: Changes,
    pub releases: Releases,
    pub availability: Vec<Availability>,
}

/// A change submitted less than this before its window starts is an
/// emergency change.
pub const EMERGENCY: Duration = Duration::hours(24);

/// The change figures of a period from the history entries in it
/// (`action`, `detail`) and the submissions in it (submitted, window start).
pub fn change_figures(
    history: &[(String, String)],
    submissions: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
) -> Changes {
    let count = |a: &str| history.iter().filter(|(x, _)| x == a).count() as u64;
    let (implemented, failed) = (count("implemented"), count("failed"));
    Changes {
        submitted: count("submitted"),
        approved: count("approved"),
        rejected: count("rejected"),
        implemented,
        failed,
        success_percent: (implemented + failed > 0)
            .then(|| 100.0 * implemented as f64 / (implemented + failed) as f64),
        emergency: submissions
            .iter()
            .filter(|(at, start)| start.is_some_and(|s| s - *at < EMERGENCY))
            .count() as u64,
        approvals_late: history
            .iter()
            .filter(|(a, d)| a == "refused" && d.contains("after the deadline"))
            .count() as u64,
        answers_refused: count("refused"),
    }
}

pub async fn load(
    store: &Store,
    catalog: &Catalog,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Processes> {
    let db = store.conn();
    let in_period = |c: ticket::Column| Condition::all().add(c.gte(from)).add(c.lt(to));
    let problems_q =
        || ticket::Entity::find().filter(ticket::Column::Kind.eq(Kind::Problem.as_str()));
    let open_ids: Vec<i64> = problems_q()
        .select_only()
        .column(ticket::Column::Id)
        .filter(
            ticket::Column::Status.is_not_in([Status::Resolved.as_str(), Status::Closed.as_str()]),
        )
        .into_tuple()
        .all(db)
        .await?;
    let known_errors = if open_ids.is_empty() {
        0
    } else {
        problem::Entity::find()
            .filter(problem::Column::KnownError.eq(true))
            .filter(problem::Column::TicketId.is_in(open_ids.clone()))
            .count(db)
            .await?
    };
    let problems = Problems {
        opened: problems_q()
            .filter(in_period(ticket::Column::CreatedAt))
            .count(db)
            .await?,
        solved: problems_q()
            .filter(in_period(ticket::Column::ResolvedAt))
            .count(db)
            .await?,
        open: open_ids.len() as u64,
        known_errors,
    };

    let history: Vec<(String, String)> = change_history::Entity::find()
        .select_only()
        .column(change_history::Column::Action)
        .column(change_history::Column::Detail)
        .filter(change_history::Column::At.gte(from))
        .filter(change_history::Column::At.lt(to))
        .into_tuple()
        .all(db)
        .await?;
    type Times = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let submissions: Vec<Times> = change::Entity::find()
        .select_only()
        .column(change::Column::SubmittedAt)
        .column(change::Column::WindowStart)
        .filter(change::Column::SubmittedAt.gte(from))
        .filter(change::Column::SubmittedAt.lt(to))
        .into_tuple()
        .all(db)
        .await?;
    let submissions: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = submissions
        .into_iter()
        .filter_map(|(at, start)| Some((at?, start)))
        .collect();
    let changes = change_figures(&history, &submissions);

    let gates: Vec<(String, Option<String>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Status)
        .column(event::Column::Vetoes)
        .filter(event::Column::Hook.eq(plugin_api::hooks::RELEASE_BEFORE_DEPLOY))
        .filter(event::Column::CreatedAt.gte(from))
        .filter(event::Column::CreatedAt.lt(to))
        .into_tuple()
        .all(db)
        .await?;
    let deployed = crate::store::entity::release::Entity::find()
        .filter(crate::store::entity::release::Column::DeployedAt.gte(from))
        .filter(crate::store::entity::release::Column::DeployedAt.lt(to))
        .count(db)
        .await?;
    let releases = Releases {
        deploys_asked: gates.len() as u64,
        deployed,
        vetoed: gates
            .iter()
            .filter(|(status, vetoes)| vetoes.is_some() || status == "failed")
            .count() as u64,
    };

    let outages: Vec<Outage> = outage_row::Entity::find()
        .filter(outage_row::Column::StartedAt.lt(to))
        .filter(
            Condition::any()
                .add(outage_row::Column::EndedAt.is_null())
                .add(outage_row::Column::EndedAt.gt(from)),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|o| Outage {
            item: o.item,
            start: o.started_at,
            end: o.ended_at,
        })
        .collect();
    Ok(Processes {
        problems,
        changes,
        releases,
        availability: outage::availability(catalog, &outages, from, to, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + h * 3600, 0).unwrap_or_default()
    }

    #[test]
    fn change_figures_count_outcomes_emergencies_and_late_answers() {
        let h = |a: &str, d: &str| (a.to_string(), d.to_string());
        let history = [
            h("submitted", "round 1"),
            h("submitted", "round 1"),
            h("approve", "ok"),
            h("approved", "2 of 3"),
            h("rejected", "0 of 1"),
            h("implemented", ""),
            h("implemented", ""),
            h("implemented", ""),
            h("failed", ""),
            h(
                "refused",
                "approve: answer after the deadline (2026-12-06 09:00 UTC)",
            ),
            h("refused", "approve: no approval token: …"),
        ];
        let submissions = [(at(0), Some(at(5))), (at(0), Some(at(48))), (at(1), None)];
        let c = change_figures(&history, &submissions);
        assert_eq!(
            (c.submitted, c.approved, c.rejected, c.implemented, c.failed),
            (2, 1, 1, 3, 1)
        );
        assert_eq!(c.success_percent, Some(75.0));
        assert_eq!(c.emergency, 1);
        assert_eq!((c.approvals_late, c.answers_refused), (1, 2));
        assert_eq!(change_figures(&[], &[]).success_percent, None);
    }
}
