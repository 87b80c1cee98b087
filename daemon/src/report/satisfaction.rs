//! Customer satisfaction figures of a report period: the ratings given in
//! it (the latest answer to each rating request counts once), overall, per
//! service and per staff member (the assignee at the resolution), with the
//! count, the average score and the share of 4 and 5; and how many
//! requests were sent in the period. Plain selects; the grouping is here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Serialize;

use crate::error::Result;
use crate::store::Store;
use crate::store::entity::{rating, satisfaction_request};

/// The satisfaction section of a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Rating requests sent in the period.
    pub asked: u64,
    pub overall: Scores,
    /// Per service (tickets without one last, as `None`).
    pub services: Vec<(Option<String>, Scores)>,
    /// Per assignee at the resolution (nobody last, as `None`).
    pub staff: Vec<(Option<String>, Scores)>,
}

/// The figures of a set of ratings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scores {
    pub ratings: u64,
    /// The mean score, two decimals.
    pub average: Option<f64>,
    /// Ratings of 4 or 5.
    pub satisfied: u64,
    /// `satisfied / ratings` in percent, one decimal.
    pub satisfied_percent: Option<f64>,
    /// Ratings of 1 or 2.
    pub dissatisfied: u64,
    #[serde(skip)]
    sum: u64,
}

impl Scores {
    fn add(&mut self, score: u8) {
        self.ratings += 1;
        self.sum += u64::from(score);
        if score >= 4 {
            self.satisfied += 1;
        }
        if score <= crate::domain::satisfaction::LOW_SCORE {
            self.dissatisfied += 1;
        }
        self.average = Some((self.sum as f64 * 100.0 / self.ratings as f64).round() / 100.0);
        self.satisfied_percent =
            Some((self.satisfied as f64 * 1000.0 / self.ratings as f64).round() / 10.0);
    }
}

/// One stored rating, as the figures need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatingFact {
    pub id: i64,
    pub request: String,
    pub score: i16,
    pub service: Option<String>,
    pub assignee: Option<String>,
}

/// Groups ratings: the latest (highest id) per request counts; scores
/// outside 1–5 (a hand edit) are left out. Services and staff in name
/// order, `None` last.
pub fn aggregate(asked: u64, ratings: &[RatingFact]) -> Satisfaction {
    let mut latest: BTreeMap<&str, &RatingFact> = BTreeMap::new();
    for r in ratings {
        if !(1..=5).contains(&r.score) {
            continue;
        }
        let e = latest.entry(r.request.as_str()).or_insert(r);
        if r.id > e.id {
            *e = r;
        }
    }
    let mut out = Satisfaction {
        asked,
        ..Satisfaction::default()
    };
    // `(false, name)` sorts before `(true, "")`: named groups first.
    let mut services: BTreeMap<(bool, String), Scores> = BTreeMap::new();
    let mut staff: BTreeMap<(bool, String), Scores> = BTreeMap::new();
    let key = |v: &Option<String>| (v.is_none(), v.clone().unwrap_or_default());
    for r in latest.values() {
        let score = r.score as u8;
        out.overall.add(score);
        services.entry(key(&r.service)).or_default().add(score);
        staff.entry(key(&r.assignee)).or_default().add(score);
    }
    let list = |m: BTreeMap<(bool, String), Scores>| {
        m.into_iter()
            .map(|((none, name), s)| ((!none).then_some(name), s))
            .collect()
    };
    out.services = list(services);
    out.staff = list(staff);
    out
}

/// Reads the ratings given and the requests sent in `[from, to)`.
pub async fn load(store: &Store, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Satisfaction> {
    let db = store.conn();
    let rows = rating::Entity::find()
        .filter(rating::Column::RatedAt.gte(from))
        .filter(rating::Column::RatedAt.lt(to))
        .all(db)
        .await?;
    let asked = satisfaction_request::Entity::find()
        .filter(satisfaction_request::Column::AskedAt.gte(from))
        .filter(satisfaction_request::Column::AskedAt.lt(to))
        .count(db)
        .await?;
    let facts: Vec<RatingFact> = rows
        .into_iter()
        .map(|r| RatingFact {
            id: r.id,
            request: r.request_message_id,
            score: r.score,
            service: r.service,
            assignee: r.assignee,
        })
        .collect();
    Ok(aggregate(asked, &facts))
}

/// Every rating given on one ticket, oldest first (`ticket show`).
pub async fn of_ticket(store: &Store, ticket_id: i64) -> Result<Vec<rating::Model>> {
    use sea_orm::QueryOrder;
    Ok(rating::Entity::find()
        .filter(rating::Column::TicketId.eq(ticket_id))
        .order_by_asc(rating::Column::Id)
        .all(store.conn())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(
        id: i64,
        request: &str,
        score: i16,
        service: Option<&str>,
        who: Option<&str>,
    ) -> RatingFact {
        RatingFact {
            id,
            request: request.into(),
            score,
            service: service.map(str::to_string),
            assignee: who.map(str::to_string),
        }
    }

    #[test]
    fn the_latest_answer_per_request_counts_once() {
        let s = aggregate(
            4,
            &[
                fact(1, "a", 2, Some("Email"), Some("ann@x.test")),
                fact(3, "a", 5, Some("Email"), Some("ann@x.test")),
                fact(2, "b", 4, Some("Email"), Some("bob@x.test")),
                fact(4, "c", 1, None, None),
                fact(5, "d", 9, Some("Email"), None),
            ],
        );
        assert_eq!(s.asked, 4);
        assert_eq!(s.overall.ratings, 3);
        assert_eq!(s.overall.average, Some(3.33));
        assert_eq!(s.overall.satisfied, 2);
        assert_eq!(s.overall.satisfied_percent, Some(66.7));
        assert_eq!(s.overall.dissatisfied, 1);
        let names: Vec<Option<&str>> = s.services.iter().map(|(n, _)| n.as_deref()).collect();
        assert_eq!(names, vec![Some("Email"), None]);
        assert_eq!(s.services[0].1.ratings, 2);
        assert_eq!(s.services[0].1.average, Some(4.5));
        let staff: Vec<(Option<&str>, u64)> = s
            .staff
            .iter()
            .map(|(n, x)| (n.as_deref(), x.ratings))
            .collect();
        assert_eq!(
            staff,
            vec![(Some("ann@x.test"), 1), (Some("bob@x.test"), 1), (None, 1)]
        );
    }

    #[test]
    fn no_ratings_no_average() {
        let s = aggregate(0, &[]);
        assert_eq!(s.overall.ratings, 0);
        assert_eq!(s.overall.average, None);
        assert_eq!(s.overall.satisfied_percent, None);
        assert!(s.services.is_empty() && s.staff.is_empty());
    }
}
