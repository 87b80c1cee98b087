//! Supplier performance against the underpinning contract, as plain
//! arithmetic over escalation records: what a supplier review reports.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::sla::calendar::Calendar;

/// One escalation of a ticket to the supplier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub ticket: String,
    pub escalated_at: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The contract's targets, in business time of `calendar`.
#[derive(Clone, Debug)]
pub struct Contract<'a> {
    pub calendar: &'a Calendar,
    pub response: Duration,
    pub resolution: Duration,
    pub end: Option<NaiveDate>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReviewFigures {
    pub escalated: usize,
    pub responded: usize,
    pub responded_in_target: usize,
    pub resolved: usize,
    pub resolved_in_target: usize,
    /// Escalations that missed a target (late, or still open past it).
    pub breaches: usize,
    /// Median and worst response, in business minutes.
    pub median_response_minutes: Option<i64>,
    pub worst_response_minutes: Option<i64>,
    /// Escalations still unresolved (of any period), by ticket.
    pub open_items: Vec<String>,
    /// Days until the contract ends, when it ends within 90 days (negative: ended).
    pub contract_ends_in_days: Option<i64>,
}

/// Figures of the escalations made in the period (`in_period`) and the open
/// items of all of them (`all`), read at `now`.
pub fn review(
    contract: &Contract<'_>,
    in_period: &[Escalation],
    all: &[Escalation],
    now: DateTime<Utc>,
) -> ReviewFigures {
    let cal = contract.calendar;
    let mut f = ReviewFigures {
        escalated: in_period.len(),
        ..ReviewFigures::default()
    };
    let mut responses: Vec<i64> = Vec::new();
    for e in in_period {
        let took = |until: DateTime<Utc>| cal.business_between(e.escalated_at, until);
        let mut breached = false;
        match e.responded_at {
            Some(r) => {
                f.responded += 1;
                let t = took(r);
                responses.push(t.num_minutes());
                if t <= contract.response {
                    f.responded_in_target += 1;
                } else {
                    breached = true;
                }
            }
            None => breached |= took(now) > contract.response,
        }
        match e.resolved_at {
            Some(r) => {
                f.resolved += 1;
                if took(r) <= contract.resolution {
                    f.resolved_in_target += 1;
                } else {
                    breached = true;
                }
            }
            None => breached |= took(now) > contract.resolution,
        }
        f.breaches += usize::from(breached);
    }
    responses.sort_unstable();
    f.median_response_minutes = responses.get(responses.len() / 2).copied();
    f.worst_response_minutes = responses.last().copied();
    f.open_items = all
        .iter()
        .filter(|e| e.resolved_at.is_none())
        .map(|e| e.ticket.clone())
        .collect();
    f.contract_ends_in_days = contract
        .end
        .map(|end| (end - now.date_naive()).num_days())
        .filter(|d| *d <= 90);
    f
}

/// The review as text for the review ticket and the manager's mail.
pub fn text(
    supplier: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    c: &Contract<'_>,
    f: &ReviewFigures,
) -> String {
    let share = |n: usize, of: usize| {
        (n * 100)
            .checked_div(of)
            .map_or("-".to_string(), |p| format!("{n}/{of} ({p}%)"))
    };
    let minutes =
        |m: Option<i64>| m.map_or("-".to_string(), |m| format!("{}h{:02}m", m / 60, m % 60));
    let mut s = format!(
        "Supplier review: {supplier}\n\
         Period: {} to {}\n\n\
         Tickets escalated:          {}\n\
         Responses within {}:      {}\n\
         Median / worst response:    {} / {}\n\
         Resolutions within {}:    {}\n\
         Escalations missing a target: {}\n\
         Open items:                 {}\n",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d"),
        f.escalated,
        minutes(Some(c.response.num_minutes())),
        share(f.responded_in_target, f.escalated),
        minutes(f.median_response_minutes),
        minutes(f.worst_response_minutes),
        minutes(Some(c.resolution.num_minutes())),
        share(f.resolved_in_target, f.escalated),
        f.breaches,
        if f.open_items.is_empty() {
            "none".to_string()
        } else {
            f.open_items.join(", ")
        },
    );
    if let Some(days) = f.contract_ends_in_days {
        s.push_str(&if days < 0 {
            format!("\nThe contract ENDED {} days ago.\n", -days)
        } else {
            format!("\nThe contract ends in {days} days: decide on renewal.\n")
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sla::always;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default() + Duration::hours(h)
    }

    #[test]
    fn figures_against_the_contract() {
        let cal = always();
        let c = Contract {
            calendar: &cal,
            response: Duration::hours(2),
            resolution: Duration::hours(8),
            end: Some(at(0).date_naive() + Duration::days(30)),
        };
        let e = |t: &str, r: Option<i64>, x: Option<i64>| Escalation {
            ticket: t.into(),
            escalated_at: at(0),
            responded_at: r.map(at),
            resolved_at: x.map(at),
        };
        let period = vec![
            e("INC-1", Some(1), Some(5)),
            e("INC-2", Some(3), Some(6)),
            e("INC-3", None, None),
        ];
        let f = review(&c, &period, &period, at(10));
        assert_eq!(f.escalated, 3);
        assert_eq!((f.responded, f.responded_in_target), (2, 1));
        assert_eq!((f.resolved, f.resolved_in_target), (2, 2));
        assert_eq!(
            f.breaches, 2,
            "INC-2 answered late, INC-3 unanswered past both targets"
        );
        assert_eq!(f.median_response_minutes, Some(180));
        assert_eq!(f.worst_response_minutes, Some(180));
        assert_eq!(f.open_items, ["INC-3"]);
        assert_eq!(f.contract_ends_in_days, Some(30));
        let t = text("NetCo", at(0), at(10), &c, &f);
        assert!(
            t.contains("1/3 (33%)") && t.contains("ends in 30 days"),
            "{t}"
        );
    }
}
