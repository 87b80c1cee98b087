//! Service level arithmetic: business calendars, SLA clocks, and what the
//! SLA job decides for one ticket (which warnings and breaches are due, and
//! when to look at the ticket next).

pub mod calendar;
pub mod clock;

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, Utc};

use calendar::Calendar;
use clock::{Pause, Percent, Reading, SlaState};

/// Around the clock: the calendar of a policy that names none.
pub fn always() -> Arc<Calendar> {
    static ALWAYS: LazyLock<Arc<Calendar>> = LazyLock::new(|| {
        let every_day: Vec<_> = [
            chrono::Weekday::Mon,
            chrono::Weekday::Tue,
            chrono::Weekday::Wed,
            chrono::Weekday::Thu,
            chrono::Weekday::Fri,
            chrono::Weekday::Sat,
            chrono::Weekday::Sun,
        ]
        .into_iter()
        .map(|d| (d, chrono::NaiveTime::MIN, chrono::NaiveTime::MIN))
        .collect();
        Arc::new(
            Calendar::new(chrono_tz::UTC, &every_day, &[])
                .expect("a calendar open every whole day has hours"),
        )
    });
    ALWAYS.clone()
}

/// The two targets of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Response,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Response => "response",
            Target::Resolution => "resolution",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alert {
    Warning,
    Breach,
}

impl Alert {
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::Warning => "warning",
            Alert::Breach => "breach",
        }
    }
}

/// A ticket's SLA as the policy sets it.
#[derive(Clone, Debug)]
pub struct Policy {
    pub calendar: Arc<Calendar>,
    pub response: Option<Duration>,
    pub resolution: Option<Duration>,
    pub warn: Percent,
}

/// A service's SLA policy: targets per priority (low, normal, high, urgent).
#[derive(Clone, Debug)]
pub struct ServicePolicy {
    pub calendar: Arc<Calendar>,
    pub response: [Option<Duration>; 4],
    pub resolution: [Option<Duration>; 4],
    pub warn: Percent,
}

impl ServicePolicy {
    /// The targets for a ticket of this priority.
    pub fn for_priority(&self, p: crate::domain::ticket::Priority) -> Policy {
        use crate::domain::ticket::Priority;
        let i = match p {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        };
        Policy {
            calendar: self.calendar.clone(),
            response: self.response[i],
            resolution: self.resolution[i],
            warn: self.warn,
        }
    }
}

/// The SLA facts of one ticket.
#[derive(Clone, Debug, Default)]
pub struct Clocks {
    pub created: DateTime<Utc>,
    pub pauses: Vec<Pause>,
    /// The first public answer; stops the response clock.
    pub responded_at: Option<DateTime<Utc>>,
    /// Resolved or closed; stops the resolution clock.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What to store on the ticket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub response: Option<DateTime<Utc>>,
    pub resolution: Option<DateTime<Utc>>,
    /// When the SLA job must look next; `None`: nothing left to watch.
    pub next_check: Option<DateTime<Utc>>,
}

fn reading(
    p: &Policy,
    c: &Clocks,
    target: Duration,
    stop: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Reading {
    clock::read(
        &p.calendar,
        c.created,
        &c.pauses,
        target,
        p.warn,
        stop.unwrap_or(now),
    )
}

/// The targets still running at `now` with their readings.
fn running(p: &Policy, c: &Clocks, now: DateTime<Utc>) -> Vec<(Target, Reading)> {
    let mut out = Vec::new();
    if let Some(t) = p.response
        && c.responded_at.is_none()
        && c.resolved_at.is_none()
    {
        out.push((Target::Response, reading(p, c, t, None, now)));
    }
    if let Some(t) = p.resolution
        && c.resolved_at.is_none()
    {
        out.push((Target::Resolution, reading(p, c, t, None, now)));
    }
    out
}

/// The due instants and the next check, for storing on the ticket;
/// `already` lists the alerts sent before (not to be looked at again).
pub fn due(p: &Policy, c: &Clocks, now: DateTime<Utc>, already: &[(Target, Alert)]) -> Due {
    let stop_response = c.responded_at.or(c.resolved_at);
    let response = p
        .response
        .and_then(|t| reading(p, c, t, stop_response, now).due);
    let resolution = p
        .resolution
        .and_then(|t| reading(p, c, t, c.resolved_at, now).due);
    let mut next: Option<DateTime<Utc>> = None;
    for (target, r) in running(p, c, now) {
        let thresholds = [(Alert::Warning, r.warn_at), (Alert::Breach, r.due)];
        for (alert, at) in thresholds {
            if already.contains(&(target, alert)) || already.contains(&(target, Alert::Breach)) {
                continue;
            }
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
    }
    Due {
        response,
        resolution,
        next_check: next,
    }
}

/// The alerts due at `now` that were not sent before. A breach found at
/// once (the job was down through the warning) is sent without its warning.
pub fn alerts(
    p: &Policy,
    c: &Clocks,
    now: DateTime<Utc>,
    already: &[(Target, Alert)],
) -> Vec<(Target, Alert, DateTime<Utc>)> {
    let mut out = Vec::new();
    for (target, r) in running(p, c, now) {
        let Some(due) = r.due else { continue };
        let alert = match r.state {
            SlaState::Breached => Alert::Breach,
            SlaState::Warning => Alert::Warning,
            SlaState::OnTrack => continue,
        };
        if already.contains(&(target, alert))
            || (alert == Alert::Warning && already.contains(&(target, Alert::Breach)))
        {
            continue;
        }
        out.push((target, alert, due));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    fn policy() -> Policy {
        Policy {
            calendar: always(),
            response: Some(Duration::hours(1)),
            resolution: Some(Duration::hours(8)),
            warn: Percent::new(80).expect("80 <= 100"),
        }
    }

    fn clocks() -> Clocks {
        Clocks {
            created: at(0, 0),
            ..Clocks::default()
        }
    }

    #[test]
    fn due_times_and_the_next_check() {
        let d = due(&policy(), &clocks(), at(0, 0), &[]);
        assert_eq!(d.response, Some(at(1, 0)));
        assert_eq!(d.resolution, Some(at(8, 0)));
        assert_eq!(
            d.next_check,
            Some(at(0, 48)),
            "the response warning comes first"
        );
        let d = due(
            &policy(),
            &clocks(),
            at(0, 50),
            &[(Target::Response, Alert::Warning)],
        );
        assert_eq!(d.next_check, Some(at(1, 0)));
        let all = [
            (Target::Response, Alert::Warning),
            (Target::Response, Alert::Breach),
        ];
        assert_eq!(
            due(&policy(), &clocks(), at(2, 0), &all).next_check,
            Some(at(6, 24))
        );
    }

    #[test]
    fn alerts_come_once_and_a_late_job_sends_only_the_breach() {
        let p = policy();
        let c = clocks();
        assert!(alerts(&p, &c, at(0, 30), &[]).is_empty());
        assert_eq!(
            alerts(&p, &c, at(0, 50), &[]),
            vec![(Target::Response, Alert::Warning, at(1, 0))]
        );
        assert!(alerts(&p, &c, at(0, 55), &[(Target::Response, Alert::Warning)]).is_empty());
        assert_eq!(
            alerts(&p, &c, at(1, 0), &[(Target::Response, Alert::Warning)]),
            vec![(Target::Response, Alert::Breach, at(1, 0))]
        );
        // Down until after the due: one breach, no warning.
        assert_eq!(
            alerts(&p, &c, at(3, 0), &[]),
            vec![(Target::Response, Alert::Breach, at(1, 0))]
        );
    }

    #[test]
    fn an_answer_stops_the_response_clock_and_a_pause_moves_the_due() {
        let p = policy();
        let mut c = clocks();
        c.responded_at = Some(at(0, 30));
        assert_eq!(due(&p, &c, at(0, 30), &[]).response, Some(at(1, 0)));
        assert!(alerts(&p, &c, at(5, 0), &[]).is_empty());
        c.pauses = vec![Pause {
            from: at(1, 0),
            until: Some(at(3, 0)),
        }];
        let d = due(&p, &c, at(3, 0), &[]);
        assert_eq!(d.resolution, Some(at(10, 0)));
        c.pauses = vec![Pause {
            from: at(1, 0),
            until: None,
        }];
        let d = due(&p, &c, at(3, 0), &[]);
        assert_eq!(d.resolution, None, "waiting for the customer: no due time");
        assert_eq!(d.next_check, None);
        c.resolved_at = Some(at(4, 0));
        assert!(alerts(&p, &c, at(20, 0), &[]).is_empty());
    }
}
