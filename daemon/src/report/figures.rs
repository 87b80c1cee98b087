//! The figures of a service report over a period: SLA compliance per service
//! and priority, ticket volumes per day, the backlog by age, and supplier
//! performance against the underpinning contracts.
//!
//! The queries are plain selects and counts that read the same on SQLite and
//! PostgreSQL; the period's rows are few, so grouping and medians are done
//! here in Rust. The backlog, which spans every open ticket, is counted by
//! the database. The aggregation functions are pure and tested without a
//! database.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde::Serialize;

use crate::config::ServiceLevels;
use crate::domain::sla::{self, calendar::Calendar};
use crate::error::Result;
use crate::store::Store;
use crate::store::entity::{supplier_escalation, ticket};

/// Everything a report shows, for the period `[from, to)` as seen at `now`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub sla: Vec<SlaRow>,
    pub volume: Vec<DayVolume>,
    pub backlog: Vec<AgeCount>,
    pub suppliers: Vec<SupplierRow>,
    /// Ratings given in the period (`report/satisfaction.rs`).
    pub satisfaction: super::satisfaction::Satisfaction,
    /// Problems, changes, releases, availability (`report/processes.rs`).
    pub processes: super::processes::Processes,
}

/// SLA compliance of the tickets of one service and priority created in the period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlaRow {
    /// `None`: tickets without a service.
    pub service: Option<String>,
    pub priority: String,
    pub tickets: u64,
    pub response: Compliance,
    pub resolution: Compliance,
}

/// How one target fared over a set of tickets.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Compliance {
    /// Done by the due instant.
    pub met: u64,
    /// Done late, or still not done past the due instant.
    pub breached: u64,
    /// Not done yet, and the due instant is still ahead.
    pub open: u64,
    /// The ticket has no due instant for this target.
    pub no_target: u64,
    /// `met / (met + breached)`, in percent; `None` when nothing is decided yet.
    pub met_percent: Option<f64>,
}

impl Compliance {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Met => self.met += 1,
            Outcome::Breached => self.breached += 1,
            Outcome::Open => self.open += 1,
            Outcome::NoTarget => self.no_target += 1,
        }
        self.met_percent = percent(self.met, self.met + self.breached);
    }

    /// Tickets that have a due instant for this target.
    pub fn targeted(&self) -> u64 {
        self.met + self.breached + self.open
    }
}

/// One target of one ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Met,
    Breached,
    Open,
    NoTarget,
}

/// Met when done by the due instant; breached when done later or not done
/// and the due instant has passed; open while the due instant is ahead.
pub fn outcome(
    done: Option<DateTime<Utc>>,
    due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Outcome {
    match (due, done) {
        (None, _) => Outcome::NoTarget,
        (Some(due), Some(done)) if done <= due => Outcome::Met,
        (Some(_), Some(_)) => Outcome::Breached,
        (Some(due), None) if now > due => Outcome::Breached,
        (Some(_), None) => Outcome::Open,
    }
}

/// Tickets created and resolved on one day (UTC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayVolume {
    pub date: NaiveDate,
    pub created: u64,
    pub resolved: u64,
}

/// The age of an open ticket, in the report's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum AgeBucket {
    #[serde(rename = "<1d")]
    UnderOneDay,
    #[serde(rename = "1-3d")]
    OneToThreeDays,
    #[serde(rename = "3-7d")]
    ThreeToSevenDays,
    #[serde(rename = "7-30d")]
    SevenToThirtyDays,
    #[serde(rename = ">30d")]
    OverThirtyDays,
}

impl AgeBucket {
    pub const ALL: [AgeBucket; 5] = [
        AgeBucket::UnderOneDay,
        AgeBucket::OneToThreeDays,
        AgeBucket::ThreeToSevenDays,
        AgeBucket::SevenToThirtyDays,
        AgeBucket::OverThirtyDays,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AgeBucket::UnderOneDay => "<1d",
            AgeBucket::OneToThreeDays => "1-3d",
            AgeBucket::ThreeToSevenDays => "3-7d",
            AgeBucket::SevenToThirtyDays => "7-30d",
            AgeBucket::OverThirtyDays => ">30d",
        }
    }

    /// The ages the bucket holds: from its lower bound (inclusive) to its
    /// upper bound (exclusive; `None`: no upper bound).
    pub fn bounds(self) -> (Duration, Option<Duration>) {
        let d = Duration::days;
        match self {
            AgeBucket::UnderOneDay => (Duration::zero(), Some(d(1))),
            AgeBucket::OneToThreeDays => (d(1), Some(d(3))),
            AgeBucket::ThreeToSevenDays => (d(3), Some(d(7))),
            AgeBucket::SevenToThirtyDays => (d(7), Some(d(30))),
            AgeBucket::OverThirtyDays => (d(30), None),
        }
    }

    /// The bucket of a ticket of age `age` (a negative age, a clock skew,
    /// counts as new).
    pub fn of(age: Duration) -> AgeBucket {
        AgeBucket::ALL
            .into_iter()
            .find(|b| b.bounds().1.is_some_and(|upper| age < upper))
            .unwrap_or(AgeBucket::OverThirtyDays)
    }
}

/// Open tickets of one age bucket at `now`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgeCount {
    pub age: AgeBucket,
    pub tickets: u64,
}

/// One supplier's escalations of the period against its contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupplierRow {
    pub supplier: String,
    pub escalations: u64,
    pub response: TimeFigures,
    pub resolution: TimeFigures,
    /// Escalations not resolved yet.
    pub open: u64,
}

/// Times from escalation to the supplier's first answer (or to resolution),
/// in business time of the supplier's calendar (around the clock without one).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimeFigures {
    /// The contract's target; `None` for a supplier no longer configured.
    pub target_secs: Option<i64>,
    /// Escalations answered (or resolved).
    pub done: u64,
    pub median_secs: Option<i64>,
    pub worst_secs: Option<i64>,
    /// Done within the target.
    pub within_target: u64,
    /// Done late, or not done and already past the target.
    pub late: u64,
    /// `within_target / (within_target + late)` in percent.
    pub within_target_percent: Option<f64>,
}

/// Collects the figures of the tickets created in `[from, to)`, the tickets
/// resolved in it, the escalations of it, and the backlog at `now`.
pub async fn figures(
    store: &Store,
    levels: &ServiceLevels,
    catalog: &crate::domain::changes::Catalog,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Figures> {
    let db = store.conn();
    let created: Vec<TicketFacts> = ticket::Entity::find()
        .select_only()
        .columns([
            ticket::Column::Service,
            ticket::Column::Priority,
            ticket::Column::Status,
            ticket::Column::CreatedAt,
            ticket::Column::UpdatedAt,
            ticket::Column::ResponseDueAt,
            ticket::Column::RespondedAt,
            ticket::Column::ResolutionDueAt,
            ticket::Column::ResolvedAt,
        ])
        .filter(ticket::Column::CreatedAt.gte(from))
        .filter(ticket::Column::CreatedAt.lt(to))
        .into_model::<TicketFacts>()
        .all(db)
        .await?;
    let resolved: Vec<DateTime<Utc>> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::ResolvedAt)
        .filter(ticket::Column::ResolvedAt.gte(from))
        .filter(ticket::Column::ResolvedAt.lt(to))
        .into_tuple::<Option<DateTime<Utc>>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mut backlog = Vec::with_capacity(AgeBucket::ALL.len());
    for age in AgeBucket::ALL {
        let (lower, upper) = age.bounds();
        // Age in [lower, upper) is creation in (now - upper, now - lower].
        let mut q = ticket::Entity::find()
            .filter(ticket::Column::Status.is_not_in(["resolved", "closed"]))
            .filter(ticket::Column::CreatedAt.lte(now - lower));
        if let Some(upper) = upper {
            q = q.filter(ticket::Column::CreatedAt.gt(now - upper));
        }
        backlog.push(AgeCount {
            age,
            tickets: q.count(db).await?,
        });
    }
    let escalations = supplier_escalation::Entity::find()
        .filter(supplier_escalation::Column::EscalatedAt.gte(from))
        .filter(supplier_escalation::Column::EscalatedAt.lt(to))
        .all(db)
        .await?;
    let created_at: Vec<DateTime<Utc>> = created.iter().map(|t| t.created_at).collect();
    Ok(Figures {
        from,
        to,
        now,
        sla: sla_rows(levels, &created, now),
        volume: volumes(from, to, &created_at, &resolved),
        backlog,
        suppliers: supplier_rows(levels, &escalations, now),
        satisfaction: super::satisfaction::load(store, from, to).await?,
        processes: super::processes::load(store, catalog, from, to, now).await?,
    })
}

/// The SLA facts of one ticket.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct TicketFacts {
    pub service: Option<String>,
    pub priority: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub response_due_at: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl TicketFacts {
    /// When the resolution clock stopped: resolved, or closed without
    /// passing through resolved (then the last change is the best we know).
    fn resolution_done(&self) -> Option<DateTime<Utc>> {
        self.resolved_at
            .or_else(|| (self.status == "closed").then_some(self.updated_at))
    }

    /// When the response clock stopped: the first answer, or the ticket was
    /// resolved without one (as the SLA job counts it).
    fn response_done(&self) -> Option<DateTime<Utc>> {
        self.responded_at.or_else(|| self.resolution_done())
    }
}

/// Compliance per service (in configuration order, unknown services after,
/// tickets without a service last) and priority (urgent first).
pub fn sla_rows(
    levels: &ServiceLevels,
    tickets: &[TicketFacts],
    now: DateTime<Utc>,
) -> Vec<SlaRow> {
    let service_rank = |s: &Option<String>| match s {
        Some(name) => match levels.services.iter().position(|c| &c.name == name) {
            Some(i) => (0, i, name.clone()),
            None => (1, 0, name.clone()),
        },
        None => (2, 0, String::new()),
    };
    let priority_rank = |p: &str| {
        ["urgent", "high", "normal", "low"]
            .iter()
            .position(|x| *x == p)
            .unwrap_or(4)
    };
    // (service rank, priority rank, priority): the order of the rows.
    type Key = ((u8, usize, String), usize, String);
    let mut groups: BTreeMap<Key, SlaRow> = BTreeMap::new();
    for t in tickets {
        let key = (
            service_rank(&t.service),
            priority_rank(&t.priority),
            t.priority.clone(),
        );
        let row = groups.entry(key).or_insert_with(|| SlaRow {
            service: t.service.clone(),
            priority: t.priority.clone(),
            tickets: 0,
            response: Compliance::default(),
            resolution: Compliance::default(),
        });
        row.tickets += 1;
        row.response
            .add(outcome(t.response_done(), t.response_due_at, now));
        row.resolution
            .add(outcome(t.resolution_done(), t.resolution_due_at, now));
    }
    groups.into_values().collect()
}

/// One row per UTC day of `[from, to)`, also the days without tickets.
pub fn volumes(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    created: &[DateTime<Utc>],
    resolved: &[DateTime<Utc>],
) -> Vec<DayVolume> {
    let mut days = BTreeMap::new();
    if to > from {
        let last = (to - Duration::nanoseconds(1)).date_naive();
        let mut day = from.date_naive();
        while day <= last {
            days.insert(day, (0u64, 0u64));
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
    }
    for c in created {
        if let Some(v) = days.get_mut(&c.date_naive()) {
            v.0 += 1;
        }
    }
    for r in resolved {
        if let Some(v) = days.get_mut(&r.date_naive()) {
            v.1 += 1;
        }
    }
    days.into_iter()
        .map(|(date, (created, resolved))| DayVolume {
            date,
            created,
            resolved,
        })
        .collect()
}

/// Every configured supplier (also those without escalations), then the
/// suppliers of escalations that are no longer configured.
pub fn supplier_rows(
    levels: &ServiceLevels,
    escalations: &[supplier_escalation::Model],
    now: DateTime<Utc>,
) -> Vec<SupplierRow> {
    let mut names: Vec<String> = levels.suppliers.iter().map(|s| s.name.clone()).collect();
    for e in escalations {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&e.supplier)) {
            names.push(e.supplier.clone());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let config = levels.supplier(&name);
            let calendar = config
                .and_then(|c| levels.calendar(c.calendar.as_deref()))
                .unwrap_or_else(sla::always);
            let mine: Vec<_> = escalations
                .iter()
                .filter(|e| e.supplier.eq_ignore_ascii_case(&name))
                .collect();
            let times = |done: &dyn Fn(&supplier_escalation::Model) -> Option<DateTime<Utc>>,
                         target: Option<Duration>| {
                time_figures(
                    &calendar,
                    mine.iter().map(|e| (e.escalated_at, done(e))),
                    target,
                    now,
                )
            };
            SupplierRow {
                escalations: mine.len() as u64,
                response: times(
                    &|e| e.responded_at.or(e.resolved_at),
                    config.map(|c| c.response_target),
                ),
                resolution: times(&|e| e.resolved_at, config.map(|c| c.resolution_target)),
                open: mine.iter().filter(|e| e.resolved_at.is_none()).count() as u64,
                supplier: name,
            }
        })
        .collect()
}

/// Median, worst and share within target of the times from each start to
/// its end (`None`: not yet), in business time of `calendar`.
fn time_figures(
    calendar: &Calendar,
    spans: impl Iterator<Item = (DateTime<Utc>, Option<DateTime<Utc>>)>,
    target: Option<Duration>,
    now: DateTime<Utc>,
) -> TimeFigures {
    let mut done = Vec::new();
    let mut out = TimeFigures {
        target_secs: target.map(|t| t.num_seconds()),
        ..TimeFigures::default()
    };
    for (start, end) in spans {
        let took = calendar.business_between(start, end.unwrap_or(now));
        if end.is_some() {
            done.push(took.num_seconds());
        }
        match target {
            Some(t) if took <= t && end.is_some() => out.within_target += 1,
            Some(t) if took > t => out.late += 1,
            _ => {}
        }
    }
    done.sort_unstable();
    out.done = done.len() as u64;
    out.median_secs = median(&done);
    out.worst_secs = done.last().copied();
    out.within_target_percent = percent(out.within_target, out.within_target + out.late);
    out
}

/// The median of sorted values (the mean of the two middle ones for an even count).
fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// `part / whole` in percent, one decimal.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

#[cfg(test)]
mod tests;
