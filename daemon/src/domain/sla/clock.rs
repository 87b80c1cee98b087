//! The SLA clock of one ticket target: when it is due, how much business
//! time has run, and whether the warning share or the target is reached.
//!
//! A ticket's clock runs in the business time of its service's calendar from
//! the moment the ticket was created, and stops running while the ticket
//! waits for the customer (status `pending`). This module turns that rule
//! into plain functions over plain data — a calendar, the creation instant,
//! the pauses and the target — so the SLA job, the staff commands and the
//! reports all compute the same due times, and tests cover pauses over
//! weekends and daylight-saving changes exactly. No clock is read here:
//! `now` is an argument. A clock that stopped because the target was met
//! (the first response sent, the ticket resolved) is read with `now` set to
//! that instant.

use chrono::{DateTime, Duration, Utc};

use super::calendar::Calendar;

/// A stretch of time in which the clock did not run because the ticket
/// waited for the customer. `until: None` means it is still waiting.
///
/// Pauses may be given in any order, may overlap and may start before the
/// ticket was created; they are clipped and merged. A pause with
/// `until <= from` is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    /// When the ticket started waiting.
    pub from: DateTime<Utc>,
    /// When it stopped waiting; `None` while it still waits.
    pub until: Option<DateTime<Utc>>,
}

/// A share of a target in whole percent, 0 to 100 (warn at 80 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u8);

impl Percent {
    /// `None` above 100.
    pub fn new(percent: u8) -> Option<Percent> {
        (percent <= 100).then_some(Percent(percent))
    }

    /// The share in percent.
    pub fn get(self) -> u8 {
        self.0
    }

    /// This share of `d`, to the millisecond (rounded towards zero).
    pub fn of(self, d: Duration) -> Duration {
        let ms = i128::from(d.num_milliseconds()) * i128::from(self.0) / 100;
        // |ms| <= |d|, so it always fits; the fallback is never taken.
        i64::try_from(ms)
            .ok()
            .and_then(Duration::try_milliseconds)
            .unwrap_or(d)
    }
}

/// Where a clock stands at the moment it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlaState {
    /// Less business time than the warning share has run.
    OnTrack,
    /// The warning share has run, the target has not.
    Warning,
    /// The whole target has run: the target is breached (a clock read at
    /// exactly its due instant counts as breached).
    Breached,
}

/// A clock read at some `now`; see [`read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Business time run between creation and `now`, pauses excluded.
    pub elapsed: Duration,
    /// The state that `elapsed` puts the clock in.
    pub state: SlaState,
    /// Whether `now` lies in a pause.
    pub paused: bool,
    /// When the warning share is (or was) reached; `None` while an
    /// open-ended pause holds the clock before that point.
    pub warn_at: Option<DateTime<Utc>>,
    /// When the target is (or was) reached; `None` while an open-ended
    /// pause holds the clock before that point.
    pub due: Option<DateTime<Utc>>,
}

/// The instant the clock has run `target` of business time: the ticket's
/// due time. `None` while the ticket still waits for the customer (an
/// open-ended pause) before the target is reached, or when the instant lies
/// beyond the calendar's range. A target of zero or less is due at creation.
pub fn due_at(
    calendar: &Calendar,
    created: DateTime<Utc>,
    pauses: &[Pause],
    target: Duration,
) -> Option<DateTime<Utc>> {
    run_until(calendar, created, &normalise(created, pauses), target)
}

/// Business time the clock has run between `created` and `now`, pauses
/// excluded (zero when `now` is before `created`).
pub fn elapsed(
    calendar: &Calendar,
    created: DateTime<Utc>,
    pauses: &[Pause],
    now: DateTime<Utc>,
) -> Duration {
    elapsed_normalised(calendar, created, &normalise(created, pauses), now)
}

/// Reads the clock of one target at `now`: elapsed business time, state
/// against `warn` share and `target`, and the warning and due instants.
pub fn read(
    calendar: &Calendar,
    created: DateTime<Utc>,
    pauses: &[Pause],
    target: Duration,
    warn: Percent,
    now: DateTime<Utc>,
) -> Reading {
    let pauses = normalise(created, pauses);
    let elapsed = elapsed_normalised(calendar, created, &pauses, now);
    let warn_after = warn.of(target);
    let state = if elapsed >= target {
        SlaState::Breached
    } else if elapsed >= warn_after {
        SlaState::Warning
    } else {
        SlaState::OnTrack
    };
    let paused = pauses
        .iter()
        .any(|&(from, until)| from <= now && until.is_none_or(|u| now < u));
    Reading {
        elapsed,
        state,
        paused,
        warn_at: run_until(calendar, created, &pauses, warn_after),
        due: run_until(calendar, created, &pauses, target),
    }
}

/// Pauses clipped to start no earlier than `created`, without empty ones,
/// sorted and merged: `(from, until)`, with `None` only possibly last.
fn normalise(
    created: DateTime<Utc>,
    pauses: &[Pause],
) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let mut clipped: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = pauses
        .iter()
        .map(|p| (p.from.max(created), p.until))
        .filter(|&(from, until)| until.is_none_or(|u| u > from))
        .collect();
    clipped.sort_unstable_by_key(|&(from, _)| from);
    let mut merged: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::with_capacity(clipped.len());
    for (from, until) in clipped {
        if let Some(last) = merged.last_mut() {
            match last.1 {
                // The previous pause never ends: it swallows everything after.
                None => break,
                Some(end) if from <= end => {
                    last.1 = until.map(|u| u.max(end));
                    continue;
                }
                Some(_) => {}
            }
        }
        merged.push((from, until));
    }
    merged
}

/// The instant `business` of clock time has run, over normalised pauses.
fn run_until(
    calendar: &Calendar,
    created: DateTime<Utc>,
    pauses: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    business: Duration,
) -> Option<DateTime<Utc>> {
    if business <= Duration::zero() {
        return Some(created);
    }
    let mut cursor = created;
    let mut left = business;
    for &(from, until) in pauses {
        if from > cursor {
            let here = calendar.business_between(cursor, from);
            if here >= left {
                return calendar.add_business(cursor, left);
            }
            left -= here;
        }
        cursor = cursor.max(until?);
    }
    calendar.add_business(cursor, left)
}

fn elapsed_normalised(
    calendar: &Calendar,
    created: DateTime<Utc>,
    pauses: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
) -> Duration {
    let mut total = calendar.business_between(created, now);
    for &(from, until) in pauses {
        if from >= now {
            break;
        }
        let end = until.map_or(now, |u| u.min(now));
        total -= calendar.business_between(from, end);
    }
    total.max(Duration::zero())
}

#[cfg(test)]
mod tests {
    // A bad fixture should fail the test loudly; that is what unwrap is for.
    #![allow(clippy::unwrap_used)]

    use super::super::calendar::CalendarSpec;
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use chrono_tz::Tz;

    const BERLIN: &str = "Europe/Berlin";
    const NEW_YORK: &str = "America/New_York";

    fn cal(zone: &str, hours: &[&str], holidays: &[&str]) -> Calendar {
        CalendarSpec {
            zone: zone.into(),
            hours: hours.iter().map(|s| s.to_string()).collect(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        }
        .build()
        .unwrap()
    }

    fn office() -> Calendar {
        cal(BERLIN, &["mon-fri 08:00-18:00"], &[])
    }

    fn local(zone: &str, s: &str) -> DateTime<Utc> {
        let tz: Tz = zone.parse().unwrap();
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn b(s: &str) -> DateTime<Utc> {
        local(BERLIN, s)
    }

    fn pause(from: &str, until: Option<&str>) -> Pause {
        Pause {
            from: b(from),
            until: until.map(b),
        }
    }

    fn h(n: i64) -> Duration {
        Duration::hours(n)
    }

    fn pct(p: u8) -> Percent {
        Percent::new(p).unwrap()
    }

    #[test]
    fn no_pauses_is_add_business() {
        let c = office();
        let created = b("2025-06-06 16:00"); // Friday
        assert_eq!(due_at(&c, created, &[], h(4)), Some(b("2025-06-09 10:00")));
    }

    #[test]
    fn pause_and_resume_push_the_due_time() {
        let c = office();
        let created = b("2025-06-02 09:00"); // Monday
        // Waited for the customer Monday 10:00 to Tuesday 11:00: 11 business
        // hours of waiting (8 on Monday, 3 on Tuesday).
        let pauses = [pause("2025-06-02 10:00", Some("2025-06-03 11:00"))];
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            Some(b("2025-06-03 14:00"))
        );
        assert_eq!(elapsed(&c, created, &pauses, b("2025-06-03 12:00")), h(2));
    }

    #[test]
    fn open_ended_pause_has_no_due_time() {
        let c = office();
        let created = b("2025-06-02 09:00");
        let pauses = [pause("2025-06-02 10:00", None)];
        assert_eq!(due_at(&c, created, &pauses, h(4)), None);
        let r = read(&c, created, &pauses, h(4), pct(80), b("2025-06-10 12:00"));
        assert_eq!(r.elapsed, h(1));
        assert!(r.paused);
        assert_eq!(r.state, SlaState::OnTrack);
        assert_eq!(r.due, None);
        assert_eq!(r.warn_at, None);
    }

    #[test]
    fn open_ended_pause_after_the_due_time_keeps_it() {
        let c = office();
        let created = b("2025-06-02 09:00");
        let pauses = [pause("2025-06-02 15:00", None)];
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            Some(b("2025-06-02 13:00"))
        );
        let r = read(&c, created, &pauses, h(4), pct(80), b("2025-06-03 09:00"));
        assert_eq!(r.state, SlaState::Breached);
        assert_eq!(r.elapsed, h(6));
        assert!(r.paused);
    }

    #[test]
    fn pause_in_closed_time_changes_nothing() {
        let c = office();
        let created = b("2025-06-06 16:00"); // Friday
        let pauses = [pause("2025-06-07 10:00", Some("2025-06-08 20:00"))]; // weekend
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            due_at(&c, created, &[], h(4))
        );
    }

    #[test]
    fn pause_over_a_weekend_resumed_on_monday() {
        let c = office();
        let created = b("2025-06-05 09:00"); // Thursday
        // Pending from Friday 12:00 to Monday 14:00.
        let pauses = [pause("2025-06-06 12:00", Some("2025-06-09 14:00"))];
        // 9 h Thursday + 4 h Friday = 13 h; 3 h more from Monday 14:00.
        assert_eq!(
            due_at(&c, created, &pauses, h(16)),
            Some(b("2025-06-09 17:00"))
        );
        // A 2-day target (20 business hours) now runs into Tuesday.
        assert_eq!(
            due_at(&c, created, &pauses, h(20)),
            Some(b("2025-06-10 11:00"))
        );
    }

    #[test]
    fn several_pauses_unsorted_and_overlapping() {
        let c = office();
        let created = b("2025-06-02 08:00");
        let pauses = [
            pause("2025-06-02 13:00", Some("2025-06-02 14:00")),
            pause("2025-06-02 09:00", Some("2025-06-02 10:00")),
            pause("2025-06-02 09:30", Some("2025-06-02 11:00")), // overlaps
            pause("2025-06-02 12:00", Some("2025-06-02 11:00")), // empty
        ];
        // Runs 08-09, 11-13, 14-15.
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            Some(b("2025-06-02 15:00"))
        );
        assert_eq!(elapsed(&c, created, &pauses, b("2025-06-02 18:00")), h(7));
    }

    #[test]
    fn pause_before_creation_is_clipped() {
        let c = office();
        let created = b("2025-06-02 09:00");
        let pauses = [pause("2025-06-01 09:00", Some("2025-06-02 10:00"))];
        assert_eq!(
            due_at(&c, created, &pauses, h(2)),
            Some(b("2025-06-02 12:00"))
        );
        let wholly_before = [pause("2025-05-01 09:00", Some("2025-05-02 10:00"))];
        assert_eq!(
            due_at(&c, created, &wholly_before, h(2)),
            Some(b("2025-06-02 11:00"))
        );
    }

    #[test]
    fn resume_exactly_at_due_boundary() {
        let c = office();
        let created = b("2025-06-02 08:00");
        // The target is used up exactly when the pause starts.
        let pauses = [pause("2025-06-02 10:00", Some("2025-06-02 15:00"))];
        assert_eq!(
            due_at(&c, created, &pauses, h(2)),
            Some(b("2025-06-02 10:00"))
        );
    }

    #[test]
    fn warning_and_breach() {
        let c = office();
        let created = b("2025-06-02 08:00");
        let target = h(10);
        let at = |s: &str| read(&c, created, &[], target, pct(80), b(s));
        let r = at("2025-06-02 15:59");
        assert_eq!(r.state, SlaState::OnTrack);
        assert_eq!(r.warn_at, Some(b("2025-06-02 16:00")));
        assert_eq!(r.due, Some(b("2025-06-02 18:00")));
        assert_eq!(at("2025-06-02 16:00").state, SlaState::Warning);
        assert_eq!(at("2025-06-02 17:59").state, SlaState::Warning);
        let r = at("2025-06-02 18:00");
        assert_eq!(r.state, SlaState::Breached);
        assert_eq!(r.elapsed, target);
        // Overnight the elapsed time stands still.
        assert_eq!(at("2025-06-03 07:00").elapsed, target);
        assert!(!at("2025-06-03 07:00").paused);
    }

    #[test]
    fn warning_frozen_during_pause_then_resumes() {
        let c = office();
        let created = b("2025-06-02 08:00");
        let pauses = [pause("2025-06-02 12:00", Some("2025-06-04 08:00"))];
        let r = read(&c, created, &pauses, h(10), pct(80), b("2025-06-03 17:00"));
        assert_eq!(r.elapsed, h(4));
        assert!(r.paused);
        assert_eq!(r.state, SlaState::OnTrack);
        assert_eq!(r.warn_at, Some(b("2025-06-04 12:00")));
        assert_eq!(r.due, Some(b("2025-06-04 14:00")));
        let r = read(&c, created, &pauses, h(10), pct(80), b("2025-06-04 12:00"));
        assert_eq!(r.state, SlaState::Warning);
        assert!(!r.paused);
    }

    #[test]
    fn state_agrees_with_due_instant() {
        let c = cal(
            BERLIN,
            &["mon-fri 08:00-12:00, 13:00-17:00"],
            &["2025-10-27"],
        );
        let created = b("2025-10-23 11:17");
        let pauses = [
            pause("2025-10-24 09:00", Some("2025-10-24 16:00")),
            pause("2025-10-28 13:30", Some("2025-10-29 09:10")),
        ];
        let target = h(12);
        let due = due_at(&c, created, &pauses, target).unwrap();
        let before = read(
            &c,
            created,
            &pauses,
            target,
            pct(75),
            due - Duration::seconds(1),
        );
        let at = read(&c, created, &pauses, target, pct(75), due);
        assert_eq!(before.state, SlaState::Warning);
        assert_eq!(at.state, SlaState::Breached);
        assert_eq!(at.elapsed, target);
        let warn = at.warn_at.unwrap();
        assert_eq!(elapsed(&c, created, &pauses, warn), pct(75).of(target));
    }

    #[test]
    fn pause_across_berlin_spring_forward_in_24x7() {
        let c = cal(BERLIN, &["24x7"], &[]);
        let created = b("2025-03-29 20:00");
        // Paused 22:00 Saturday to 04:00 Sunday local: 5 real hours.
        let pauses = [pause("2025-03-29 22:00", Some("2025-03-30 04:00"))];
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            Some(b("2025-03-30 06:00"))
        );
    }

    #[test]
    fn pause_across_new_york_fall_back() {
        let c = cal(NEW_YORK, &["24x7"], &[]);
        let created = local(NEW_YORK, "2025-11-01 20:00");
        let pauses = [Pause {
            from: local(NEW_YORK, "2025-11-01 22:00"),
            until: Some(local(NEW_YORK, "2025-11-02 04:00")), // 7 real hours
        }];
        assert_eq!(
            due_at(&c, created, &pauses, h(4)),
            Some(local(NEW_YORK, "2025-11-02 06:00"))
        );
    }

    #[test]
    fn zero_target_and_times_before_creation() {
        let c = office();
        let created = b("2025-06-07 10:00"); // Saturday
        assert_eq!(due_at(&c, created, &[], Duration::zero()), Some(created));
        assert_eq!(
            elapsed(&c, created, &[], b("2025-06-01 10:00")),
            Duration::zero()
        );
        let r = read(&c, created, &[], h(1), pct(0), created);
        assert_eq!(r.state, SlaState::Warning);
        assert_eq!(r.warn_at, Some(created));
    }

    #[test]
    fn percent() {
        assert_eq!(Percent::new(101), None);
        assert_eq!(Percent::new(100).map(Percent::get), Some(100));
        assert_eq!(pct(80).of(h(10)), h(8));
        assert_eq!(pct(80).of(Duration::minutes(1)), Duration::seconds(48));
        assert_eq!(pct(100).of(Duration::MAX), Duration::MAX);
        assert_eq!(
            pct(50).of(Duration::MIN),
            Duration::milliseconds(Duration::MIN.num_milliseconds() / 2)
        );
    }

    #[test]
    fn extreme_pauses_do_not_panic() {
        let c = office();
        let created = b("2025-06-02 09:00");
        let pauses = [
            Pause {
                from: DateTime::<Utc>::MIN_UTC,
                until: Some(DateTime::<Utc>::MAX_UTC),
            },
            Pause {
                from: DateTime::<Utc>::MAX_UTC,
                until: None,
            },
        ];
        assert_eq!(due_at(&c, created, &pauses, h(1)), None);
        let r = read(
            &c,
            created,
            &pauses,
            Duration::MAX,
            pct(80),
            DateTime::<Utc>::MAX_UTC,
        );
        assert_eq!(r.elapsed, Duration::zero());
    }
}
