//! Cron slots for scheduled jobs: which slot, if any, a job should run for
//! now, and when the next one comes.
//!
//! A *slot* is an instant the job's cron expression names. The scheduler
//! (leases, the jobs table, running the job) lives elsewhere; this module is
//! the pure arithmetic it relies on, over the `cron` crate, so missed slots,
//! first starts and daylight-saving changes are table-tested.
//!
//! # Expressions the desk accepts
//!
//! - 5 fields, classic crontab: `minute hour day-of-month month day-of-week`
//!   (`*/5 * * * *`, `0 8 * * mon-fri`). Slots fall on second 0.
//! - 6 fields, seconds first, the `cron` crate's own form: `0 */5 * * * *`.
//! - `@hourly`, `@daily` (or `@midnight`), `@weekly` (Sunday 00:00),
//!   `@monthly`, `@yearly` (or `@annually`).
//!
//! Fields take numbers, `*`, lists `a,b`, ranges `a-b` and steps `*/n`,
//! `a-b/n`; months also `jan`–`dec`, days of week `sun`–`sat`. A year field
//! is not accepted. 5-field expressions are normalised to the crate's form by
//! putting `0` in front.
//!
//! Day-of-week **numbers mean what they mean in crontab, in both forms**:
//! 0 and 7 are Sunday, 1 is Monday, … 6 is Saturday. (The `cron` crate on
//! its own counts 1 = Sunday; the desk translates, so `1-5` is Monday to
//! Friday whatever the field count.) A day range may wrap (`fri-mon`).
//!
//! When both day-of-month and day-of-week are restricted, crontab runs on
//! days matching *either*, the `cron` crate on days matching *both*. So that
//! no expression silently means something else than its reader expects, the
//! 5-field form refuses that combination; the 6-field form accepts it with
//! the crate's meaning (`0 0 8 1-7 * mon`: the first Monday of the month).
//!
//! An expression that can never fire (`0 0 31 2 *`) is refused.
//!
//! # Missed slots and first runs
//!
//! [`CronSchedule::due_slot`] answers "which slot should run now?": the
//! latest slot at or before `now` that is after the last slot the job ran
//! for. A daemon that was down for ten slots runs the job once, for the
//! latest of them, not ten times. A job that never ran is governed by
//! [`FirstRun`]: SLA checks run at once ([`FirstRun::Immediately`]); reports
//! wait for their first slot after the job became known
//! ([`FirstRun::NextSlotAfter`]), so the first start of a desk does not mail
//! last week's report.
//!
//! # Time zones
//!
//! Expressions are read in UTC ([`CronSchedule::parse`]) or in a zone
//! ([`CronSchedule::parse_in`], e.g. for reports at 08:00 local time). In a
//! zone with daylight saving, a slot in the hour skipped in spring does not
//! happen that day; a slot in the hour repeated in autumn happens once when
//! the hour field is fixed (`30 2 * * *`), and at both instants when the
//! hour field is `*` (`*/5 * * * *` keeps its pace in real time).

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;

/// A parsed, validated cron schedule in a time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    source: String,
    normalised: String,
    inner: cron::Schedule,
    zone: Tz,
    /// Whether the hour field is `*`: slots in the repeated autumn hour
    /// then happen at both instants.
    every_hour: bool,
}

/// A cron expression the desk refuses, with the reason for a person:
/// ``cron expression "0 61 * * *": hour field 61 is not valid (…)``.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cron expression {expr:?}: {reason}")]
pub struct ScheduleError {
    /// The expression as given.
    pub expr: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a job that has never run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstRun {
    /// Run at once for the latest slot at or before now (SLA checks).
    Immediately,
    /// Wait for the first slot after this instant — when the job became
    /// known to the desk, recorded once at its first start (reports,
    /// reviews).
    NextSlotAfter(DateTime<Utc>),
}

/// A bound on the candidates one query examines, so that no expression
/// makes a query run long. Around an autumn change a query scans about two
/// folds' worth of slots (7,200 for an every-second schedule), far below it.
const CANDIDATE_LIMIT: usize = 100_000;

impl CronSchedule {
    /// Parses an expression evaluated in UTC. See the module comment for
    /// the accepted forms.
    pub fn parse(expr: &str) -> Result<CronSchedule, ScheduleError> {
        CronSchedule::parse_in(expr, Tz::UTC)
    }

    /// Parses an expression evaluated in `zone`'s wall-clock time.
    pub fn parse_in(expr: &str, zone: Tz) -> Result<CronSchedule, ScheduleError> {
        let fail = |reason: String| ScheduleError {
            expr: expr.to_string(),
            reason,
        };
        let normalised = normalise(expr).map_err(fail)?;
        let inner = cron::Schedule::from_str(&normalised).map_err(|e| fail(crate_reason(&e)))?;
        let every_hour = inner.hours().is_all();
        let schedule = CronSchedule {
            source: expr.to_string(),
            normalised,
            inner,
            zone,
            every_hour,
        };
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        if schedule.next_after(epoch).is_none() {
            return Err(fail("never fires: no date matches it".to_string()));
        }
        Ok(schedule)
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression in the `cron` crate's 6-field form, with day-of-week
    /// numbers in the crate's counting (1 = Sunday).
    pub fn normalised(&self) -> &str {
        &self.normalised
    }

    /// The zone the expression is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first slot strictly after `t`; `None` past the crate's range
    /// (year 2100).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Normally the crate's next slot is the answer. Within a few hours
        // of an autumn change it walks local time, so started in the first
        // pass through the repeated hour it skips the rest of the second;
        // start one fold earlier and take the smallest candidate after `t`.
        let t = within_crate_range(t);
        let fold = self.fold_near(t);
        let start = t.checked_sub_signed(fold).unwrap_or(t);
        let mut best: Option<DateTime<Tz>> = None;
        for candidate in self
            .inner
            .after(&start.with_timezone(&self.zone))
            .take(CANDIDATE_LIMIT)
        {
            if let Some(b) = &best
                && candidate.naive_local() > b.naive_local() + fold
            {
                break;
            }
            if candidate.with_timezone(&Utc) > t
                && self.keeps(&candidate)
                && best.as_ref().is_none_or(|b| candidate < *b)
            {
                best = Some(candidate);
                if fold.is_zero() {
                    break;
                }
            }
        }
        best.map(|b| b.with_timezone(&Utc))
    }

    /// The latest slot at or before `t`; `None` before the crate's range
    /// (1970).
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Slots are whole seconds: search below the next whole second. Near
        // an autumn change the crate, walking local time backwards from the
        // second pass through the repeated hour, skips the rest of the first
        // pass; as in `next_after`, start one fold later and take the
        // largest candidate.
        let t = within_crate_range(t);
        let floor = t.with_nanosecond(0).unwrap_or(t);
        let fold = self.fold_near(floor);
        let bound = floor
            .checked_add_signed(Duration::seconds(1) + fold)
            .unwrap_or(floor);
        let mut best: Option<DateTime<Tz>> = None;
        for candidate in self
            .inner
            .after(&bound.with_timezone(&self.zone))
            .rev()
            .take(CANDIDATE_LIMIT)
        {
            if let Some(b) = &best
                && candidate.naive_local() < b.naive_local() - fold
            {
                break;
            }
            if candidate.with_timezone(&Utc) <= floor
                && self.keeps(&candidate)
                && best.as_ref().is_none_or(|b| candidate > *b)
            {
                best = Some(candidate);
                if fold.is_zero() {
                    break;
                }
            }
        }
        best.map(|b| b.with_timezone(&Utc))
    }

    /// The slot the job should run for at `now`, if any: the latest slot at
    /// or before `now` that is after `last_run_slot` (the slot the job last
    /// ran for, successfully or not). Missed slots collapse into one run.
    /// With no previous run, `first` decides. A `last_run_slot` after `now`
    /// (the clock was set back) gives `None` until `now` passes it.
    pub fn due_slot(
        &self,
        last_run_slot: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        first: FirstRun,
    ) -> Option<DateTime<Utc>> {
        let slot = self.latest_at_or_before(now)?;
        let after = match (last_run_slot, first) {
            (Some(last), _) => Some(last),
            (None, FirstRun::Immediately) => None,
            (None, FirstRun::NextSlotAfter(known)) => Some(known),
        };
        match after {
            Some(after) if slot <= after => None,
            _ => Some(slot),
        }
    }

    /// Whether a candidate from the crate is a slot: the second pass
    /// through a repeated hour only counts when the hour field is `*`.
    fn keeps(&self, candidate: &DateTime<Tz>) -> bool {
        if self.every_hour {
            return true;
        }
        match self.zone.from_local_datetime(&candidate.naive_local()) {
            LocalResult::Ambiguous(_, later) => later != *candidate,
            _ => true,
        }
    }

    /// How far the clock is set back by a change within three hours of
    /// `t` (zero when there is none).
    fn fold_near(&self, t: DateTime<Utc>) -> Duration {
        let window = Duration::hours(3);
        let offset = |x: Option<DateTime<Utc>>| {
            x.map(|x| {
                self.zone
                    .offset_from_utc_datetime(&x.naive_utc())
                    .fix()
                    .local_minus_utc()
            })
        };
        let before = offset(t.checked_sub_signed(window));
        let after = offset(t.checked_add_signed(window));
        match (before, after) {
            (Some(b), Some(a)) if b > a => Duration::seconds(i64::from(b - a)),
            _ => Duration::zero(),
        }
    }
}

/// Clamps an instant to a year around the crate's range (1970 to 2100),
/// which changes no answer and keeps the crate's date arithmetic, which
/// panics on overflow, far from the limits of `DateTime`.
fn within_crate_range(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = DateTime::from_timestamp(-365 * 86_400, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    let hi = DateTime::from_timestamp(4_133_980_800 + 365 * 86_400, 0)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    t.clamp(lo, hi)
}

/// The first slot strictly after `t` of a UTC expression.
pub fn next_after(expr: &str, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    Ok(CronSchedule::parse(expr)?.next_after(t))
}

/// The slot a job on a UTC expression should run for at `now`; see
/// [`CronSchedule::due_slot`].
pub fn due_slot(
    expr: &str,
    last_run_slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    first: FirstRun,
) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    Ok(CronSchedule::parse(expr)?.due_slot(last_run_slot, now, first))
}

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

const FIELD_HINTS: [&str; 5] = ["0-59", "0-59", "0-23", "1-31 or ?", "1-12 or jan-dec"];

const BOTH_DAY_FIELDS: &str = "day-of-month and day-of-week are both restricted: crontab \
    would run on days matching either, this desk on days matching both; restrict one of \
    them, or write the 6-field form (seconds first) to mean both";

/// The expression in the crate's 6-field form, each field checked so the
/// error names the field at fault.
fn normalise(expr: &str) -> Result<String, String> {
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err("empty (expected e.g. \"*/5 * * * *\")".to_string());
    }
    let lower = trimmed.to_ascii_lowercase();
    let text = match lower.as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ if trimmed.starts_with('@') => {
            return Err(format!(
                "{trimmed} is not supported (expected @hourly, @daily, @weekly, \
                 @monthly or @yearly)"
            ));
        }
        _ => trimmed,
    };
    let given: Vec<&str> = text.split_whitespace().collect();
    let classic = match given.len() {
        5 => true,
        6 => false,
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                 (second minute hour day-of-month month day-of-week), found {n}"
            ));
        }
    };
    let mut fields: Vec<String> = Vec::with_capacity(6);
    if classic {
        fields.push("0".to_string());
    }
    fields.extend(given.iter().map(|f| f.to_string()));

    for (i, hint) in FIELD_HINTS.iter().enumerate() {
        let mut probe: Vec<&str> = vec!["0", "0", "0", "*", "*", "*"];
        probe[i] = &fields[i];
        if cron::Schedule::from_str(&probe.join(" ")).is_err() {
            return Err(format!(
                "{} field {} is not valid (expected {hint}, *, a list a,b, a range a-b \
                 or a step */n)",
                FIELD_NAMES[i], fields[i]
            ));
        }
    }
    let day_of_week = day_of_week(&fields[5]).ok_or_else(|| {
        format!(
            "day-of-week field {} is not valid (expected 0-7 or sun-sat, 0 and 7 being \
             Sunday, *, a list a,b, a range a-b or a step */n)",
            fields[5]
        )
    })?;
    let restricted = |f: &str| f != "*" && f != "?";
    if classic && restricted(&fields[3]) && restricted(&fields[5]) {
        return Err(BOTH_DAY_FIELDS.to_string());
    }
    fields[5] = day_of_week;
    Ok(fields.join(" "))
}

/// A crontab day-of-week field (0 and 7 = Sunday) in the crate's counting
/// (1 = Sunday): `*` or a list of numbers. `None` when it is not valid.
fn day_of_week(field: &str) -> Option<String> {
    let field = field.to_ascii_lowercase();
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: usize = step.parse().ok()?;
                (base, (1..=7).contains(&step).then_some(step)?)
            }
            None => (item, 1),
        };
        // Days in crontab numbering (0..=6), in walking order.
        let walk: Vec<u32> = match base {
            "*" | "?" => (0..7).collect(),
            _ => match base.split_once('-') {
                Some((from, to)) => {
                    let (from, to) = (weekday(from)?, weekday(to)?);
                    if from <= to {
                        (from..=to).map(|d| d % 7).collect()
                    } else {
                        // A range over the week end: fri-mon.
                        (from..=6).chain(0..=to).map(|d| d % 7).collect()
                    }
                }
                None => {
                    let day = weekday(base)?;
                    if item.contains('/') {
                        // `a/n`: from a to the end of the week.
                        (day % 7..=6).collect()
                    } else {
                        vec![day % 7]
                    }
                }
            },
        };
        for day in walk.into_iter().step_by(step) {
            days[day as usize] = true;
        }
    }
    if days.iter().all(|&d| d) {
        return Some("*".to_string());
    }
    let list: Vec<String> = (0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect();
    Some(list.join(","))
}

/// `0`–`7` or a day name, in crontab numbering (7 kept as 7).
fn weekday(text: &str) -> Option<u32> {
    let day = match text {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => {
            let n: u32 = text.parse().ok()?;
            if n > 7 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n
        }
    };
    Some(day)
}

/// The crate's message, which spans lines with a caret, as one line.
fn crate_reason(error: &cron::error::Error) -> String {
    let text = error.to_string();
    let detail = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && *l != "^");
    match detail {
        Some(d) => format!("not a valid expression ({d})"),
        None => "not a valid expression".to_string(),
    }
}

#[cfg(test)]
mod tests {
    // A bad fixture should fail the test loudly; that is what unwrap is for.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::NaiveDateTime;

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .unwrap()
            .and_utc()
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    /// A local wall-clock time in `zone`, which must be unambiguous.
    fn local(z: &str, s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        zone(z)
            .from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn sched(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).unwrap()
    }

    fn err(expr: &str) -> String {
        CronSchedule::parse(expr).unwrap_err().to_string()
    }

    /// `count` successive slots after `t`.
    fn slots(s: &CronSchedule, mut t: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        for _ in 0..count {
            t = s.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    // --- forms and normalisation ------------------------------------------

    #[test]
    fn five_fields_get_a_seconds_field() {
        assert_eq!(sched("*/5 * * * *").normalised(), "0 */5 * * * *");
        assert_eq!(sched("0 */5 * * * *").normalised(), "0 */5 * * * *");
        assert_eq!(sched("  30   2 * * *  ").normalised(), "0 30 2 * * *");
        assert_eq!(sched("*/5 * * * *").source(), "*/5 * * * *");
    }

    #[test]
    fn day_of_week_numbers_are_crontab_numbers_in_both_forms() {
        // Monday to Friday is 2..=6 in the crate's counting.
        for expr in [
            "0 8 * * 1-5",
            "0 8 * * mon-fri",
            "0 8 * * MON,Tue,wed,thu,friday",
            "0 0 8 * * 1-5",
        ] {
            assert_eq!(
                sched(expr).normalised().rsplit(' ').next(),
                Some("2,3,4,5,6"),
                "{expr}"
            );
        }
        let sunday = |e: &str| sched(e).normalised().rsplit(' ').next().map(str::to_string);
        assert_eq!(sunday("0 8 * * 0").as_deref(), Some("1"));
        assert_eq!(sunday("0 8 * * 7").as_deref(), Some("1"));
        assert_eq!(sunday("0 8 * * sun").as_deref(), Some("1"));
        assert_eq!(sunday("0 8 * * 5-7").as_deref(), Some("1,6,7"));
        assert_eq!(sunday("0 8 * * fri-mon").as_deref(), Some("1,2,6,7"));
        assert_eq!(sunday("0 8 * * */2").as_deref(), Some("1,3,5,7"));
        assert_eq!(sunday("0 8 * * 1-5/2").as_deref(), Some("2,4,6"));
        assert_eq!(sunday("0 8 * * 1/2").as_deref(), Some("2,4,6"));
        assert_eq!(sunday("0 8 * * 0-7").as_deref(), Some("*"));
        assert_eq!(sunday("0 8 ? * *").as_deref(), Some("*"));
    }

    #[test]
    fn weekdays_fire_on_weekdays() {
        let s = sched("0 8 * * 1-5");
        // Friday 2025-06-06 09:00 -> Monday 08:00.
        assert_eq!(
            s.next_after(utc("2025-06-06 09:00")),
            Some(utc("2025-06-09 08:00"))
        );
        let s = sched("0 0 8 * * 0"); // Sunday, 6-field form
        assert_eq!(
            s.next_after(utc("2025-06-06 09:00")),
            Some(utc("2025-06-08 08:00"))
        );
    }

    #[test]
    fn shorthands() {
        let t = utc("2025-06-06 09:10"); // Friday
        let next = |e: &str| sched(e).next_after(t).unwrap();
        assert_eq!(next("@hourly"), utc("2025-06-06 10:00"));
        assert_eq!(next("@daily"), utc("2025-06-07 00:00"));
        assert_eq!(next("@midnight"), utc("2025-06-07 00:00"));
        assert_eq!(next("@weekly"), utc("2025-06-08 00:00"));
        assert_eq!(next("@monthly"), utc("2025-07-01 00:00"));
        assert_eq!(next("@yearly"), utc("2026-01-01 00:00"));
        assert_eq!(next("@Annually"), utc("2026-01-01 00:00"));
    }

    #[test]
    fn first_monday_of_the_month_in_six_fields() {
        let s = sched("0 0 8 1-7 * mon");
        assert_eq!(
            slots(&s, utc("2025-06-01 00:00"), 3),
            vec![
                utc("2025-06-02 08:00"),
                utc("2025-07-07 08:00"),
                utc("2025-08-04 08:00"),
            ]
        );
    }

    // --- next_after ---------------------------------------------------------

    #[test]
    fn next_after_is_strictly_after() {
        let s = sched("*/5 * * * *");
        assert_eq!(
            s.next_after(utc("2025-06-06 10:00")),
            Some(utc("2025-06-06 10:05"))
        );
        assert_eq!(
            s.next_after(utc("2025-06-06 10:04:59")),
            Some(utc("2025-06-06 10:05"))
        );
        let half = utc("2025-06-06 10:05") - Duration::milliseconds(500);
        assert_eq!(s.next_after(half), Some(utc("2025-06-06 10:05")));
        let s = sched("* * * * * *");
        let t = utc("2025-06-06 10:00") + Duration::milliseconds(500);
        assert_eq!(s.next_after(t), Some(utc("2025-06-06 10:00:01")));
    }

    #[test]
    fn free_functions() {
        assert_eq!(
            next_after("0 */5 * * * *", utc("2025-06-06 10:01")).unwrap(),
            Some(utc("2025-06-06 10:05"))
        );
        assert_eq!(
            due_slot(
                "0 * * * *",
                Some(utc("2025-06-06 08:00")),
                utc("2025-06-06 10:17"),
                FirstRun::Immediately
            )
            .unwrap(),
            Some(utc("2025-06-06 10:00"))
        );
        assert!(next_after("0 61 * * *", utc("2025-06-06 10:01")).is_err());
        assert!(due_slot("nope", None, utc("2025-06-06 10:01"), FirstRun::Immediately).is_err());
    }

    #[test]
    fn range_limits_give_none() {
        let s = sched("0 0 1 1 *");
        assert_eq!(s.next_after(utc("2100-06-01 00:00")), None);
        assert_eq!(s.latest_at_or_before(utc("1969-06-01 00:00")), None);
        assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(s.latest_at_or_before(DateTime::<Utc>::MIN_UTC), None);
        assert_eq!(
            s.due_slot(None, DateTime::<Utc>::MIN_UTC, FirstRun::Immediately),
            None
        );
    }

    // --- due_slot: missed slots and first runs ------------------------------

    #[test]
    fn missed_slots_run_once_for_the_latest() {
        let s = sched("0 */5 * * * *");
        let last = Some(utc("2025-06-06 08:00"));
        // Down from 08:01 to 10:17: 27 slots missed, one run for 10:15.
        let now = utc("2025-06-06 10:17:42");
        let slot = s.due_slot(last, now, FirstRun::Immediately);
        assert_eq!(slot, Some(utc("2025-06-06 10:15")));
        // Having run it, nothing more is due until 10:20.
        assert_eq!(s.due_slot(slot, now, FirstRun::Immediately), None);
        assert_eq!(
            s.due_slot(slot, utc("2025-06-06 10:19:59"), FirstRun::Immediately),
            None
        );
        assert_eq!(
            s.due_slot(slot, utc("2025-06-06 10:20"), FirstRun::Immediately),
            Some(utc("2025-06-06 10:20"))
        );
    }

    #[test]
    fn slot_at_exactly_now_is_due() {
        let s = sched("0 * * * *");
        let now = utc("2025-06-06 10:00");
        assert_eq!(
            s.due_slot(Some(utc("2025-06-06 09:00")), now, FirstRun::Immediately),
            Some(now)
        );
        let later = now + Duration::nanoseconds(1);
        assert_eq!(
            s.due_slot(Some(utc("2025-06-06 09:00")), later, FirstRun::Immediately),
            Some(now)
        );
        assert_eq!(
            s.due_slot(
                Some(utc("2025-06-06 09:00")),
                now - Duration::nanoseconds(1),
                FirstRun::Immediately
            ),
            None
        );
    }

    #[test]
    fn never_run_sla_check_runs_at_once() {
        let s = sched("*/5 * * * *");
        assert_eq!(
            s.due_slot(None, utc("2025-06-06 10:17"), FirstRun::Immediately),
            Some(utc("2025-06-06 10:15"))
        );
    }

    #[test]
    fn never_run_report_waits_for_its_next_slot() {
        let s = sched("0 8 * * mon");
        let known = utc("2025-06-04 15:00"); // first start, a Wednesday
        let first = FirstRun::NextSlotAfter(known);
        // Monday 2025-06-02 08:00 is a past slot: not run at first start.
        assert_eq!(s.due_slot(None, known, first), None);
        assert_eq!(s.due_slot(None, utc("2025-06-09 07:59"), first), None);
        assert_eq!(
            s.due_slot(None, utc("2025-06-09 08:00"), first),
            Some(utc("2025-06-09 08:00"))
        );
        // Down over the whole weekend and Monday: still only one run.
        assert_eq!(
            s.due_slot(None, utc("2025-06-17 12:00"), first),
            Some(utc("2025-06-16 08:00"))
        );
    }

    #[test]
    fn last_run_in_the_future_waits() {
        let s = sched("0 * * * *");
        let last = Some(utc("2025-06-06 12:00"));
        assert_eq!(
            s.due_slot(last, utc("2025-06-06 10:30"), FirstRun::Immediately),
            None
        );
        assert_eq!(
            s.due_slot(last, utc("2025-06-06 13:00"), FirstRun::Immediately),
            Some(utc("2025-06-06 13:00"))
        );
    }

    #[test]
    fn last_run_slot_need_not_be_a_slot() {
        // The expression changed from hourly to every 20 minutes.
        let s = sched("*/20 * * * *");
        assert_eq!(
            s.due_slot(
                Some(utc("2025-06-06 10:00")),
                utc("2025-06-06 10:05"),
                FirstRun::Immediately
            ),
            None
        );
        assert_eq!(
            s.due_slot(
                Some(utc("2025-06-06 10:13")),
                utc("2025-06-06 10:25"),
                FirstRun::Immediately
            ),
            Some(utc("2025-06-06 10:20"))
        );
    }

    // --- time zones and daylight saving ---------------------------------------

    #[test]
    fn local_report_time_follows_dst() {
        let s = CronSchedule::parse_in("0 8 * * mon", zone("Europe/Berlin")).unwrap();
        assert_eq!(s.zone(), zone("Europe/Berlin"));
        // Winter: 08:00 CET is 07:00 UTC; summer: 08:00 CEST is 06:00 UTC.
        assert_eq!(
            s.next_after(utc("2025-03-25 00:00")),
            Some(utc("2025-03-31 06:00"))
        );
        assert_eq!(
            s.next_after(utc("2025-03-18 00:00")),
            Some(utc("2025-03-24 07:00"))
        );
    }

    #[test]
    fn berlin_fixed_slot_in_skipped_hour_does_not_happen() {
        let s = CronSchedule::parse_in("30 2 * * *", zone("Europe/Berlin")).unwrap();
        assert_eq!(
            slots(&s, local("Europe/Berlin", "2025-03-29 12:00"), 2),
            vec![
                local("Europe/Berlin", "2025-03-31 02:30"),
                local("Europe/Berlin", "2025-04-01 02:30"),
            ]
        );
        assert_eq!(
            s.latest_at_or_before(local("Europe/Berlin", "2025-03-30 12:00")),
            Some(local("Europe/Berlin", "2025-03-29 02:30"))
        );
    }

    #[test]
    fn berlin_fixed_slot_in_repeated_hour_happens_once() {
        let s = CronSchedule::parse_in("30 2 * * *", zone("Europe/Berlin")).unwrap();
        // 2025-10-26 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET).
        assert_eq!(
            slots(&s, local("Europe/Berlin", "2025-10-25 12:00"), 2),
            vec![
                utc("2025-10-26 00:30"),
                local("Europe/Berlin", "2025-10-27 02:30")
            ]
        );
        assert_eq!(
            s.next_after(utc("2025-10-26 00:45")),
            Some(local("Europe/Berlin", "2025-10-27 02:30"))
        );
        assert_eq!(
            s.latest_at_or_before(utc("2025-10-26 01:45")),
            Some(utc("2025-10-26 00:30"))
        );
        // From 02:06 CET, in the second pass, before the second 02:30.
        assert_eq!(
            s.latest_at_or_before(utc("2025-10-26 01:06")),
            Some(utc("2025-10-26 00:30"))
        );
        let first = FirstRun::Immediately;
        let last = Some(utc("2025-10-26 00:30"));
        assert_eq!(s.due_slot(last, utc("2025-10-26 01:31"), first), None);
    }

    #[test]
    fn berlin_every_half_hour_keeps_pace_through_repeated_hour() {
        let s = CronSchedule::parse_in("*/30 * * * *", zone("Europe/Berlin")).unwrap();
        let want: Vec<DateTime<Utc>> = [
            "2025-10-25 23:30",
            "2025-10-26 00:00", // 02:00 CEST
            "2025-10-26 00:30", // 02:30 CEST
            "2025-10-26 01:00", // 02:00 CET
            "2025-10-26 01:30", // 02:30 CET
            "2025-10-26 02:00", // 03:00 CET
            "2025-10-26 02:30",
        ]
        .iter()
        .map(|s| utc(s))
        .collect();
        assert_eq!(slots(&s, utc("2025-10-25 23:10"), 7), want);
        // Each one, and starting inside the repeated hour, from either pass.
        for pair in want.windows(2) {
            assert_eq!(s.next_after(pair[0]), Some(pair[1]));
            assert_eq!(s.next_after(pair[1] - Duration::seconds(1)), Some(pair[1]));
            assert_eq!(
                s.latest_at_or_before(pair[1] - Duration::seconds(1)),
                Some(pair[0])
            );
            assert_eq!(s.latest_at_or_before(pair[1]), Some(pair[1]));
        }
    }

    #[test]
    fn new_york_every_half_hour_over_both_changes() {
        let s = CronSchedule::parse_in("*/30 * * * *", zone("America/New_York")).unwrap();
        // Spring: 01:30 EST (06:30 UTC) is followed by 03:00 EDT (07:00 UTC).
        assert_eq!(
            slots(&s, utc("2025-03-09 06:10"), 2),
            vec![utc("2025-03-09 06:30"), utc("2025-03-09 07:00")]
        );
        // Autumn: 01:00 and 01:30 happen twice, 30 real minutes apart.
        assert_eq!(
            slots(&s, utc("2025-11-02 04:50"), 5),
            vec![
                utc("2025-11-02 05:00"), // 01:00 EDT
                utc("2025-11-02 05:30"), // 01:30 EDT
                utc("2025-11-02 06:00"), // 01:00 EST
                utc("2025-11-02 06:30"), // 01:30 EST
                utc("2025-11-02 07:00"), // 02:00 EST
            ]
        );
    }

    /// Around each change of 2025: no slot lies strictly between `t` and
    /// `next_after(t)`, and `latest_at_or_before(t)` is followed by a slot
    /// after `t`.
    #[test]
    fn next_and_latest_agree_around_changes() {
        let changes = [
            ("Europe/Berlin", "2025-03-30 01:00"),
            ("Europe/Berlin", "2025-10-26 01:00"),
            ("America/New_York", "2025-03-09 07:00"),
            ("America/New_York", "2025-11-02 06:00"),
            ("Australia/Lord_Howe", "2025-04-05 15:00"), // back 30 minutes
            ("America/Santiago", "2025-04-06 03:00"),    // back at midnight
        ];
        let exprs = [
            "*/5 * * * *",
            "30 2 * * *",
            "*/7 1-3 * * *",
            "0 30 0 * * *",
            "*/20 * * * * *",
        ];
        for (z, change) in changes {
            for expr in exprs {
                let s = CronSchedule::parse_in(expr, zone(z)).unwrap();
                let mut t = utc(change) - Duration::hours(4);
                while t < utc(change) + Duration::hours(4) {
                    let next = s.next_after(t).unwrap();
                    assert!(next > t);
                    let before_next = s.latest_at_or_before(next - Duration::seconds(1)).unwrap();
                    assert!(
                        before_next <= t,
                        "{z} {expr}: {before_next} in ({t}, {next})"
                    );
                    assert_eq!(s.latest_at_or_before(next), Some(next));
                    let latest = s.latest_at_or_before(t).unwrap();
                    assert!(latest <= t);
                    assert!(
                        s.next_after(latest).unwrap() > t,
                        "{z} {expr}: {t} {latest}"
                    );
                    t += Duration::seconds(17 * 60 + 13);
                }
            }
        }
    }

    #[test]
    fn new_york_missed_slots_over_the_repeated_hour() {
        let s = CronSchedule::parse_in("0 */5 * * * *", zone("America/New_York")).unwrap();
        let last = Some(utc("2025-11-02 05:20")); // 01:20 EDT
        // Now 01:12 EST: the latest slot is 01:10 EST, though 01:10 EDT and
        // later EDT slots have a larger wall-clock reading.
        assert_eq!(
            s.due_slot(last, utc("2025-11-02 06:12"), FirstRun::Immediately),
            Some(utc("2025-11-02 06:10"))
        );
    }

    // --- bad expressions ----------------------------------------------------------

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "empty (expected e.g. \"*/5 * * * *\")"),
            (
                "* * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                 (second minute hour day-of-month month day-of-week), found 4",
            ),
            (
                "0 0 0 * * * 2025",
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                 (second minute hour day-of-month month day-of-week), found 7",
            ),
            (
                "61 * * * *",
                "minute field 61 is not valid (expected 0-59, *, a list a,b, a range a-b \
                 or a step */n)",
            ),
            (
                "0 24 * * *",
                "hour field 24 is not valid (expected 0-23, *, a list a,b, a range a-b \
                 or a step */n)",
            ),
            (
                "0 0 32 * *",
                "day-of-month field 32 is not valid (expected 1-31 or ?, *, a list a,b, \
                 a range a-b or a step */n)",
            ),
            (
                "0 0 * 13 *",
                "month field 13 is not valid (expected 1-12 or jan-dec, *, a list a,b, \
                 a range a-b or a step */n)",
            ),
            (
                "0 0 * foo *",
                "month field foo is not valid (expected 1-12 or jan-dec, *, a list a,b, \
                 a range a-b or a step */n)",
            ),
            (
                "60 0 0 * * *",
                "second field 60 is not valid (expected 0-59, *, a list a,b, a range a-b \
                 or a step */n)",
            ),
            (
                "*/0 * * * *",
                "minute field */0 is not valid (expected 0-59, *, a list a,b, a range a-b \
                 or a step */n)",
            ),
            (
                "0 0 * * 8",
                "day-of-week field 8 is not valid (expected 0-7 or sun-sat, 0 and 7 being \
                 Sunday, *, a list a,b, a range a-b or a step */n)",
            ),
            (
                "0 0 * * mon-funday",
                "day-of-week field mon-funday is not valid (expected 0-7 or sun-sat, 0 and 7 \
                 being Sunday, *, a list a,b, a range a-b or a step */n)",
            ),
            (
                "0 0 * * */0",
                "day-of-week field */0 is not valid (expected 0-7 or sun-sat, 0 and 7 being \
                 Sunday, *, a list a,b, a range a-b or a step */n)",
            ),
            (
                "0 0 1 * mon",
                "day-of-month and day-of-week are both restricted: crontab would run on \
                 days matching either, this desk on days matching both; restrict one of \
                 them, or write the 6-field form (seconds first) to mean both",
            ),
            (
                "@reboot",
                "@reboot is not supported (expected @hourly, @daily, @weekly, @monthly or \
                 @yearly)",
            ),
            ("0 0 31 2 *", "never fires: no date matches it"),
            ("0 0 0 31 4 *", "never fires: no date matches it"),
        ];
        for (expr, reason) in cases {
            assert_eq!(
                err(expr),
                format!("cron expression {expr:?}: {reason}"),
                "{expr:?}"
            );
        }
    }

    #[test]
    fn leap_day_is_not_never() {
        let s = sched("0 0 29 2 *");
        assert_eq!(
            s.next_after(utc("2025-01-01 00:00")),
            Some(utc("2028-02-29 00:00"))
        );
        assert_eq!(
            s.latest_at_or_before(utc("2025-01-01 00:00")),
            Some(utc("2024-02-29 00:00"))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "@",
            "@@daily",
            "* * * * * * * *",
            "- - - - -",
            "/ / / / /",
            "*/ * * * *",
            "1-0 * * * *",
            "0 0 * * 7-0",
            "0 0 * * 0/8",
            "0 0 * * ,",
            "0 0 * * 1,,2",
            "0 0 * * -1",
            "0 0 * * 1-",
            "9999999999 * * * *",
            "0 0 * * 99999999999999999999",
            "ü * * * *",
            "0 0 * * süN",
            "\t\n",
            "0 0 * * 1/",
            "0 0 * * /2",
            "0 0 L * *",
            "0 0 * * 5#3",
            "0 0 ? ? ? ?",
        ];
        for input in inputs {
            let _ = CronSchedule::parse(input);
        }
    }
}
