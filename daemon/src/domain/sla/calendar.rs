//! Business calendars: when the desk is open, and how much open time lies
//! between two instants.
//!
//! SLA targets are promised in *business* time ("4 business hours"), so every
//! due time the desk stores is computed here. The module is pure — no clock,
//! no I/O, no database — so weekends, holidays, overnight shifts and the two
//! daylight-saving changes a year are covered by table tests, not by waiting.
//!
//! # What "open" means
//!
//! Opening hours are wall-clock times in the calendar's IANA zone. Each span
//! of a day becomes one real interval: it opens the first moment the local
//! clock shows its start and closes the last moment the clock shows its end.
//! A start or end that the clock skips (the hour lost in spring) is the
//! moment the clock jumps over it. So on the spring-forward day in Berlin a
//! span 01:00–05:00 holds 3 real hours, on the autumn day 5, and a span
//! 02:30–04:00 on the spring day opens at 03:00. Business time is real elapsed
//! time while open: 24x7 in Berlin has 23 hours on the spring day.
//!
//! An overnight span (`mon 22:00-06:00`) belongs to the day it starts on for
//! the weekly pattern, but a holiday closes its whole local calendar day:
//! the part after midnight of a shift that started the evening before a
//! holiday does not count.
//!
//! The arithmetic steps span by span (a few per day), never minute by
//! minute. The calendar covers local dates 1900-01-01 to 2199-12-31; outside
//! it the desk counts as closed, which bounds the work for absurd inputs.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::{GapInfo, Tz};

const SECS_PER_DAY: u32 = 86_400;

/// First local date the calendar knows; earlier the desk counts as closed.
const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Last local date the calendar knows; later the desk counts as closed.
const LAST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2199, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};
/// Inputs are clamped to this UTC range (the calendar range plus two days
/// for offsets), so date arithmetic below can never overflow.
const CLAMP_FROM: NaiveDate = match NaiveDate::from_ymd_opt(1899, 12, 29) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
const CLAMP_TO: NaiveDate = match NaiveDate::from_ymd_opt(2200, 1, 3) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A business calendar: a time zone, weekly opening hours and holidays.
///
/// Built from config with [`CalendarSpec::build`] or from typed data with
/// [`Calendar::new`]. A calendar always has some opening hours, so the
/// arithmetic always makes progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    zone: Tz,
    /// Open pieces per weekday (index 0 = Monday) in seconds of the local
    /// day, `[start, end)` with `end <= 86_400`; sorted, not overlapping,
    /// not touching. Overnight spans are already split at midnight.
    week: [Vec<(u32, u32)>; 7],
    /// Closed local dates as inclusive ranges; sorted, merged.
    holidays: Vec<(NaiveDate, NaiveDate)>,
}

/// Why a calendar could not be built from typed data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The weekly hours are empty: no business time would ever pass, and a
    /// due time could never be found.
    #[error("the calendar has no opening hours: no business time would ever pass")]
    NoHours,
    /// A holiday range ends before it starts.
    #[error("holiday range {first}..{last} ends before it starts")]
    HolidayRange {
        /// First day of the range as given.
        first: NaiveDate,
        /// Last day of the range as given.
        last: NaiveDate,
    },
}

impl Calendar {
    /// Builds a calendar from typed data.
    ///
    /// Each entry of `hours` opens on its weekday at its start time and
    /// closes at its end time on the same day, or on the next day when the
    /// end is at or before the start (`(Mon, 22:00, 06:00)` is overnight,
    /// `(Mon, 08:00, 00:00)` closes at midnight, `(Mon, 00:00, 00:00)` is
    /// the whole day). Spans may overlap; they are merged. Sub-second parts
    /// of times are ignored. `holidays` are whole local days.
    pub fn new(
        zone: Tz,
        hours: &[(Weekday, NaiveTime, NaiveTime)],
        holidays: &[NaiveDate],
    ) -> Result<Calendar, CalendarError> {
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for &(day, start, end) in hours {
            let s = start.num_seconds_from_midnight();
            let e = end.num_seconds_from_midnight();
            let today = day.num_days_from_monday() as usize;
            if e > s {
                week[today].push((s, e));
            } else {
                week[today].push((s, SECS_PER_DAY));
                if e > 0 {
                    week[day.succ().num_days_from_monday() as usize].push((0, e));
                }
            }
        }
        for pieces in &mut week {
            pieces.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::with_capacity(pieces.len());
            for &(s, e) in pieces.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *pieces = merged;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoHours);
        }
        let calendar = Calendar {
            zone,
            week,
            holidays: Vec::new(),
        };
        calendar.add_holidays(holidays.iter().map(|&day| (day, day)))
    }

    /// Adds the inclusive range of local dates `first..=last` as holidays
    /// (a company shutdown, say).
    pub fn with_holidays(
        self,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Calendar, CalendarError> {
        self.add_holidays([(first, last)])
    }

    /// Adds inclusive ranges of holidays, then sorts and merges them once.
    fn add_holidays(
        mut self,
        ranges: impl IntoIterator<Item = (NaiveDate, NaiveDate)>,
    ) -> Result<Calendar, CalendarError> {
        for (first, last) in ranges {
            if last < first {
                return Err(CalendarError::HolidayRange { first, last });
            }
            self.holidays.push((first, last));
        }
        self.holidays.sort_unstable();
        let mut merged: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(self.holidays.len());
        for &(f, l) in &self.holidays {
            match merged.last_mut() {
                // Touching ranges merge too: a cursor then skips them at once.
                Some(prev) if f <= prev.1.succ_opt().unwrap_or(NaiveDate::MAX) => {
                    prev.1 = prev.1.max(l);
                }
                _ => merged.push((f, l)),
            }
        }
        self.holidays = merged;
        Ok(self)
    }

    /// The calendar's time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether the desk is open at instant `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let t = clamp(t);
        for (a, b) in self.open_from(t) {
            if a > t {
                return false;
            }
            if t < b {
                return true;
            }
        }
        false
    }

    /// The business time between `a` and `b` (zero when `b <= a`).
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        let (a, b) = (clamp(a), clamp(b));
        let mut total = Duration::zero();
        if b <= a {
            return total;
        }
        // Intervals come sorted by start but may overlap around a DST
        // change; `cursor` makes every instant count once.
        let mut cursor = a;
        for (x, y) in self.open_from(a) {
            if x >= b {
                break;
            }
            let from = x.max(cursor);
            let to = y.min(b);
            if to > from {
                total += to - from;
                cursor = to;
            }
        }
        total
    }

    /// The instant at which `dur` of business time has passed after
    /// `start`: the earliest `t` with `business_between(start, t) == dur`.
    ///
    /// A zero or negative `dur` gives `start`. Otherwise the result is
    /// inside an open interval or at its end, never in closed time: 2 hours
    /// from Friday 17:00 with hours 08:00–18:00 is Monday 09:00, and exactly
    /// the hour left on Friday gives Friday 18:00. `None` only when the
    /// instant lies beyond the calendar's range (year 2199), which no real
    /// SLA target reaches.
    pub fn add_business(&self, start: DateTime<Utc>, dur: Duration) -> Option<DateTime<Utc>> {
        if dur <= Duration::zero() {
            return Some(start);
        }
        let mut left = dur;
        let mut cursor = clamp(start);
        for (x, y) in self.open_from(cursor) {
            let from = x.max(cursor);
            if y <= from {
                continue;
            }
            let here = y - from;
            if here >= left {
                return Some(from + left);
            }
            left -= here;
            cursor = y;
        }
        None
    }

    /// Open intervals in UTC, sorted by start, beginning with any interval
    /// that may contain `t`. Intervals may overlap (a span closing in the
    /// repeated autumn hour); callers skip what they already counted.
    fn open_from(&self, t: DateTime<Utc>) -> OpenIntervals<'_> {
        let local = t.with_timezone(&self.zone).date_naive();
        let date = local.pred_opt().unwrap_or(local).max(FIRST_DATE);
        OpenIntervals {
            calendar: self,
            date,
            piece: 0,
            holiday: self.holidays.partition_point(|&(_, last)| last < date),
        }
    }

    /// The real instant of a local wall-clock boundary; see the module
    /// comment for the rules at daylight-saving changes.
    fn resolve(&self, local: NaiveDateTime, edge: Edge) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, later) => match edge {
                Edge::Opens => earlier.with_timezone(&Utc),
                Edge::Closes => later.with_timezone(&Utc),
            },
            LocalResult::None => self.gap_end(local),
        }
    }

    /// For a local time the clock skips: the instant the clock jumps over it.
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let info = GapInfo::new(&local, &self.zone);
        if let Some(end) = info.as_ref().and_then(|i| i.end) {
            return end.with_timezone(&Utc);
        }
        // At the edge of the zone's table: read the time with the offset
        // in force before it, which lands after the gap.
        let offset = match info.and_then(|i| i.begin) {
            Some((_, before)) => before.fix(),
            None => self.zone.offset_from_utc_datetime(&local).fix(),
        };
        local.checked_sub_offset(offset).unwrap_or(local).and_utc()
    }
}

/// Which side of an open interval a wall-clock time is.
#[derive(Clone, Copy)]
enum Edge {
    Opens,
    Closes,
}

/// Keeps an instant inside the range the calendar can compute with.
fn clamp(t: DateTime<Utc>) -> DateTime<Utc> {
    let lo = CLAMP_FROM.and_time(NaiveTime::MIN).and_utc();
    let hi = CLAMP_TO.and_time(NaiveTime::MIN).and_utc();
    t.clamp(lo, hi)
}

/// Iterator over the open intervals of a calendar, day by day.
struct OpenIntervals<'a> {
    calendar: &'a Calendar,
    /// Local date whose pieces are being produced.
    date: NaiveDate,
    /// Next piece of `date` to produce.
    piece: usize,
    /// First holiday range that does not end before `date`.
    holiday: usize,
}

impl Iterator for OpenIntervals<'_> {
    type Item = (DateTime<Utc>, DateTime<Utc>);

    fn next(&mut self) -> Option<Self::Item> {
        let cal = self.calendar;
        loop {
            if self.date > LAST_DATE {
                return None;
            }
            if self.piece == 0 {
                while cal
                    .holidays
                    .get(self.holiday)
                    .is_some_and(|&(_, last)| last < self.date)
                {
                    self.holiday += 1;
                }
                if let Some(&(first, last)) = cal.holidays.get(self.holiday)
                    && first <= self.date
                {
                    self.date = last.succ_opt()?;
                    continue;
                }
            }
            let pieces = &cal.week[self.date.weekday().num_days_from_monday() as usize];
            if let Some(&(s, e)) = pieces.get(self.piece) {
                self.piece += 1;
                let midnight = self.date.and_time(NaiveTime::MIN);
                let open = midnight.checked_add_signed(Duration::seconds(i64::from(s)))?;
                let close = midnight.checked_add_signed(Duration::seconds(i64::from(e)))?;
                let a = cal.resolve(open, Edge::Opens);
                let b = cal.resolve(close, Edge::Closes);
                if b > a {
                    return Some((a, b));
                }
                // A piece wholly inside a skipped hour: nothing to count.
                continue;
            }
            self.date = self.date.succ_opt()?;
            self.piece = 0;
        }
    }
}

/// A calendar as plain config data, before validation.
///
/// ```text
/// zone     = "Europe/Berlin"
/// hours    = ["mon-fri 08:00-18:00", "sat 09:00-12:00, 13:00-15:00", "sun 22:00-06:00"]
/// holidays = ["2025-12-25", "2025-12-24..2026-01-01"]
/// ```
///
/// `zone` is an IANA name. Each `hours` entry is parsed by [`parse_hours`];
/// each `holidays` entry is a date `YYYY-MM-DD` or an inclusive range
/// `YYYY-MM-DD..YYYY-MM-DD`, in the calendar's zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CalendarSpec {
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub zone: String,
    /// Weekly opening hours, e.g. `mon-fri 08:00-18:00`.
    pub hours: Vec<String>,
    /// Whole closed days or inclusive ranges of them.
    pub holidays: Vec<String>,
}

/// One problem in a [`CalendarSpec`], located by the key path within the
/// spec (`zone`, `hours[2]`, `holidays[0]`, or `hours` when there are no
/// hours at all). Displays as `hours[2]: 25:00 is not a time`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Where in the spec: `zone`, `hours[i]`, `holidays[i]` or `hours`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl SpecError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl CalendarSpec {
    /// Validates the spec and builds the calendar, reporting every problem
    /// at once rather than the first one only.
    pub fn build(&self) -> Result<Calendar, Vec<SpecError>> {
        let mut errors = Vec::new();
        let zone = match parse_zone(&self.zone) {
            Ok(z) => Some(z),
            Err(message) => {
                errors.push(SpecError::new("zone", message));
                None
            }
        };
        let mut hours = Vec::new();
        for (i, entry) in self.hours.iter().enumerate() {
            match parse_hours(entry) {
                Ok(spans) => hours.extend(spans),
                Err(message) => errors.push(SpecError::new(format!("hours[{i}]"), message)),
            }
        }
        if self.hours.is_empty() {
            errors.push(SpecError::new(
                "hours",
                "no opening hours: give at least one entry such as \"mon-fri 08:00-18:00\" \
                 (or \"24x7\")",
            ));
        }
        let mut holidays = Vec::new();
        for (i, entry) in self.holidays.iter().enumerate() {
            match parse_holiday(entry) {
                Ok(range) => holidays.push(range),
                Err(message) => errors.push(SpecError::new(format!("holidays[{i}]"), message)),
            }
        }
        let Some(zone) = zone else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Calendar::new(zone, &hours, &[])
            .and_then(|calendar| calendar.add_holidays(holidays))
            .map_err(|e| {
                let path = match e {
                    CalendarError::NoHours => "hours",
                    CalendarError::HolidayRange { .. } => "holidays",
                };
                vec![SpecError::new(path, e.to_string())]
            })
    }
}

/// Parses an IANA zone name; the message suggests the right spelling when
/// only the case is wrong.
pub(crate) fn parse_zone(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("no time zone given (expected an IANA name such as \"Europe/Berlin\")".into());
    }
    if let Ok(zone) = name.parse::<Tz>() {
        return Ok(zone);
    }
    let suggestion = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|z| z.name().eq_ignore_ascii_case(name));
    Err(match suggestion {
        Some(z) => format!(
            "{name} is not an IANA time zone; did you mean {}?",
            z.name()
        ),
        None => format!("{name} is not an IANA time zone (e.g. \"Europe/Berlin\")"),
    })
}

/// Parses one entry of weekly hours into `(day, start, end)` spans with the
/// same meaning as in [`Calendar::new`].
///
/// Forms (case-insensitive):
/// - `mon-fri 08:00-18:00` — days, then one or more spans;
/// - `mon,wed,fri 08:00-12:00, 13:00-17:00` — day lists and several spans
///   (separated by commas or spaces);
/// - `fri-mon 09:00-17:00` — a day range may wrap over the week end;
/// - `mon-thu 22:00-06:00` — an end before the start is the next morning;
/// - `sat 08:00-24:00`, `daily 00:00-24:00` — `24:00` ends a day, `daily`
///   is every day;
/// - `24x7` — always open.
///
/// Days are `mon tue wed thu fri sat sun` or their full English names.
/// Times are `H:MM` or `HH:MM`. The error is a message for a person, e.g.
/// `25:00 is not a time`.
pub fn parse_hours(entry: &str) -> Result<Vec<(Weekday, NaiveTime, NaiveTime)>, String> {
    const EXAMPLE: &str = "expected e.g. \"mon-fri 08:00-18:00\"";
    let text = entry.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Err(format!("empty ({EXAMPLE})"));
    }
    if text == "24x7" {
        return Ok(ALL_DAYS
            .iter()
            .map(|&d| (d, NaiveTime::MIN, NaiveTime::MIN))
            .collect());
    }
    let Some((days_text, spans_text)) = text.split_once(char::is_whitespace) else {
        return Err(format!("{text} gives no times ({EXAMPLE})"));
    };
    let days = parse_days(days_text)?;
    let mut spans = Vec::new();
    for span in spans_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        spans.push(parse_span(span)?);
    }
    if spans.is_empty() {
        return Err(format!("{days_text} gives no times ({EXAMPLE})"));
    }
    let mut out = Vec::with_capacity(days.len() * spans.len());
    for &day in &days {
        for &(start, end) in &spans {
            out.push((day, start, end));
        }
    }
    Ok(out)
}

const ALL_DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// `mon-fri`, `mon,wed,fri`, `fri-mon`, `daily`.
fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    if text == "daily" {
        return Ok(ALL_DAYS.to_vec());
    }
    let mut days = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{text} has an empty day in its list"));
        }
        match item.split_once('-') {
            Some((from, to)) => {
                let mut day = parse_day(from)?;
                let to = parse_day(to)?;
                // Walk forward, wrapping over the week end (fri-mon).
                loop {
                    if !days.contains(&day) {
                        days.push(day);
                    }
                    if day == to {
                        break;
                    }
                    day = day.succ();
                }
            }
            None => {
                let day = parse_day(item)?;
                if !days.contains(&day) {
                    days.push(day);
                }
            }
        }
    }
    Ok(days)
}

fn parse_day(text: &str) -> Result<Weekday, String> {
    let day = match text {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => {
            let shown = if text.is_empty() { "\"\"" } else { text };
            return Err(format!(
                "{shown} is not a day (expected mon, tue, wed, thu, fri, sat, sun or daily)"
            ));
        }
    };
    Ok(day)
}

/// `08:00-18:00` into start and end, with `24:00` as `00:00` (the end of
/// the day, by the end-at-or-before-start rule).
fn parse_span(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let Some((from, to)) = text.split_once('-') else {
        return Err(format!(
            "{text} is not a span of times (expected HH:MM-HH:MM)"
        ));
    };
    let start = parse_clock(from)?;
    let end = parse_clock(to)?;
    if start == SECS_PER_DAY {
        return Err(format!("{text}: a span cannot start at 24:00"));
    }
    if start == end {
        return Err(format!(
            "{text} is empty (for a whole day write 00:00-24:00)"
        ));
    }
    Ok((secs_to_time(start), secs_to_time(end % SECS_PER_DAY)))
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, as seconds of the day.
fn parse_clock(text: &str) -> Result<u32, String> {
    let not_a_time = || {
        if text.is_empty() {
            "a span is missing a time (expected HH:MM-HH:MM)".to_string()
        } else {
            format!("{text} is not a time")
        }
    };
    let (h, m) = text.split_once(':').ok_or_else(not_a_time)?;
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1, 2) || !digits(m, 2, 2) {
        return Err(not_a_time());
    }
    let h: u32 = h.parse().map_err(|_| not_a_time())?;
    let m: u32 = m.parse().map_err(|_| not_a_time())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(not_a_time());
    }
    Ok(h * 3600 + m * 60)
}

fn secs_to_time(secs: u32) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or(NaiveTime::MIN)
}

/// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`.
fn parse_holiday(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let text = text.trim();
    let date = |s: &str| {
        let s = s.trim();
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("{s} is not a date (expected YYYY-MM-DD)"))
    };
    match text.split_once("..") {
        Some((first, last)) => {
            let (first, last) = (date(first)?, date(last)?);
            if last < first {
                return Err(format!("{text} ends before it starts"));
            }
            Ok((first, last))
        }
        None => {
            let day = date(text)?;
            Ok((day, day))
        }
    }
}

#[cfg(test)]
mod tests {
    // A bad fixture should fail the test loudly; that is what unwrap is for.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use chrono::NaiveDate;

    fn spec(zone: &str, hours: &[&str], holidays: &[&str]) -> CalendarSpec {
        CalendarSpec {
            zone: zone.into(),
            hours: hours.iter().map(|s| s.to_string()).collect(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn cal(zone: &str, hours: &[&str], holidays: &[&str]) -> Calendar {
        spec(zone, hours, holidays).build().unwrap()
    }

    /// A local wall-clock time in `zone`, which must be unambiguous.
    fn local(zone: &str, s: &str) -> DateTime<Utc> {
        let tz: Tz = zone.parse().unwrap();
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn h(n: i64) -> Duration {
        Duration::hours(n)
    }

    fn m(n: i64) -> Duration {
        Duration::minutes(n)
    }

    const BERLIN: &str = "Europe/Berlin";
    const NEW_YORK: &str = "America/New_York";

    // --- office hours, weekends ---------------------------------------

    #[test]
    fn within_one_day() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        // 2025-06-02 is a Monday.
        let start = local(BERLIN, "2025-06-02 09:00");
        assert_eq!(
            c.add_business(start, h(4)),
            Some(local(BERLIN, "2025-06-02 13:00"))
        );
    }

    #[test]
    fn start_before_opening_counts_from_opening() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let start = local(BERLIN, "2025-06-02 06:30");
        assert_eq!(
            c.add_business(start, m(30)),
            Some(local(BERLIN, "2025-06-02 08:30"))
        );
    }

    #[test]
    fn friday_evening_target_lands_on_monday() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let start = local(BERLIN, "2025-06-06 17:00"); // Friday
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-09 09:00"))
        );
        // Exactly what is left on Friday ends at closing, not on Monday.
        assert_eq!(
            c.add_business(start, h(1)),
            Some(local(BERLIN, "2025-06-06 18:00"))
        );
    }

    #[test]
    fn start_on_weekend() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let start = local(BERLIN, "2025-06-07 11:00"); // Saturday
        assert_eq!(
            c.add_business(start, h(10)),
            Some(local(BERLIN, "2025-06-09 18:00"))
        );
    }

    #[test]
    fn five_business_days_span_a_weekend() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let start = local(BERLIN, "2025-06-04 10:00"); // Wednesday
        let due = c.add_business(start, h(50)).unwrap();
        assert_eq!(due, local(BERLIN, "2025-06-11 10:00"));
        assert_eq!(c.business_between(start, due), h(50));
    }

    #[test]
    fn several_spans_a_day() {
        let c = cal(BERLIN, &["mon-fri 08:00-12:00, 13:00-17:00"], &[]);
        let start = local(BERLIN, "2025-06-02 11:00");
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-02 14:00"))
        );
        assert!(!c.is_open(local(BERLIN, "2025-06-02 12:30")));
        assert!(c.is_open(local(BERLIN, "2025-06-02 13:00")));
        assert!(!c.is_open(local(BERLIN, "2025-06-02 17:00")));
    }

    #[test]
    fn overlapping_entries_count_once() {
        let c = cal(BERLIN, &["mon-fri 08:00-12:00", "mon 10:00-14:00"], &[]);
        let day = local(BERLIN, "2025-06-02 00:00");
        assert_eq!(c.business_between(day, day + h(24)), h(6));
    }

    #[test]
    fn business_between_basics() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let a = local(BERLIN, "2025-06-06 16:00"); // Friday
        let b = local(BERLIN, "2025-06-09 10:00"); // Monday
        assert_eq!(c.business_between(a, b), h(4));
        assert_eq!(c.business_between(b, a), Duration::zero());
        assert_eq!(c.business_between(a, a), Duration::zero());
        // Closed time only.
        let sat = local(BERLIN, "2025-06-07 00:00");
        assert_eq!(c.business_between(sat, sat + h(48)), Duration::zero());
    }

    #[test]
    fn zero_and_negative_durations_return_start() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        let sat = local(BERLIN, "2025-06-07 11:00");
        assert_eq!(c.add_business(sat, Duration::zero()), Some(sat));
        assert_eq!(c.add_business(sat, -h(3)), Some(sat));
    }

    #[test]
    fn sub_second_start_is_kept() {
        let c = cal("UTC", &["24x7"], &[]);
        let start = utc("2025-06-02 10:00") + Duration::milliseconds(250);
        assert_eq!(c.add_business(start, h(1)), Some(start + h(1)));
    }

    // --- is_open --------------------------------------------------------

    #[test]
    fn is_open_edges() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        assert!(c.is_open(local(BERLIN, "2025-06-02 08:00")));
        assert!(c.is_open(local(BERLIN, "2025-06-02 17:59")));
        assert!(!c.is_open(local(BERLIN, "2025-06-02 18:00")));
        assert!(!c.is_open(local(BERLIN, "2025-06-02 07:59")));
        assert!(!c.is_open(local(BERLIN, "2025-06-07 12:00")));
    }

    // --- holidays -------------------------------------------------------

    #[test]
    fn holiday_is_skipped() {
        // Friday 2025-06-06 is a holiday.
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &["2025-06-06"]);
        let start = local(BERLIN, "2025-06-05 17:00"); // Thursday
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-09 09:00"))
        );
        assert!(!c.is_open(local(BERLIN, "2025-06-06 10:00")));
    }

    #[test]
    fn start_on_holiday() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &["2025-06-02"]);
        let start = local(BERLIN, "2025-06-02 10:00");
        assert_eq!(
            c.add_business(start, h(1)),
            Some(local(BERLIN, "2025-06-03 09:00"))
        );
    }

    #[test]
    fn long_holiday_range_and_new_year() {
        let c = cal(
            BERLIN,
            &["mon-fri 08:00-18:00"],
            &["2025-12-24..2026-01-01", "2025-12-23"],
        );
        let start = local(BERLIN, "2025-12-22 17:00"); // Monday
        // 1 h left on the 22nd, then closed until Friday 2026-01-02.
        assert_eq!(
            c.add_business(start, h(3)),
            Some(local(BERLIN, "2026-01-02 10:00"))
        );
        assert_eq!(
            c.business_between(start, local(BERLIN, "2026-01-05 08:00")),
            h(11)
        );
    }

    #[test]
    fn holiday_closes_after_midnight_part_of_overnight_shift() {
        // Night shift Mon 22:00 - Tue 06:00; Tuesday is a holiday.
        let c = cal(BERLIN, &["mon 22:00-06:00"], &["2025-06-03"]);
        let mon = local(BERLIN, "2025-06-02 00:00");
        assert_eq!(c.business_between(mon, mon + h(72)), h(2));
        assert!(c.is_open(local(BERLIN, "2025-06-02 23:00")));
        assert!(!c.is_open(local(BERLIN, "2025-06-03 01:00")));
    }

    #[test]
    fn holiday_on_start_day_of_overnight_shift_keeps_next_morning() {
        let c = cal(BERLIN, &["mon 22:00-06:00"], &["2025-06-02"]);
        let mon = local(BERLIN, "2025-06-02 00:00");
        assert_eq!(c.business_between(mon, mon + h(72)), h(6));
    }

    // --- overnight hours --------------------------------------------------

    #[test]
    fn overnight_shift() {
        let c = cal(BERLIN, &["mon-fri 22:00-06:00"], &[]);
        let start = local(BERLIN, "2025-06-02 23:00"); // Monday night
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-03 01:00"))
        );
        // Tue 05:00 + 2h: 1h until 06:00, then opens again at 22:00.
        let start = local(BERLIN, "2025-06-03 05:00");
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-03 23:00"))
        );
        assert!(c.is_open(local(BERLIN, "2025-06-03 00:00")));
        assert!(!c.is_open(local(BERLIN, "2025-06-03 06:00")));
    }

    #[test]
    fn overnight_shift_over_the_week_end() {
        // Friday's night shift runs into Saturday; Sunday's into Monday.
        let c = cal(BERLIN, &["fri 22:00-06:00", "sun 22:00-06:00"], &[]);
        let fri = local(BERLIN, "2025-06-06 23:00");
        assert_eq!(
            c.add_business(fri, h(7)),
            Some(local(BERLIN, "2025-06-07 06:00"))
        );
        assert_eq!(
            c.add_business(fri, h(8)),
            Some(local(BERLIN, "2025-06-08 23:00"))
        );
        assert_eq!(
            c.business_between(fri, local(BERLIN, "2025-06-07 12:00")),
            h(7)
        );
        // Sunday night crosses into Monday, the first day of the week.
        let sun = local(BERLIN, "2025-06-08 21:00");
        assert_eq!(
            c.add_business(sun, h(5)),
            Some(local(BERLIN, "2025-06-09 03:00"))
        );
        assert!(c.is_open(local(BERLIN, "2025-06-09 05:59")));
        assert!(!c.is_open(local(BERLIN, "2025-06-09 06:00")));
    }

    #[test]
    fn evening_and_overnight_join_without_a_gap() {
        let c = cal(BERLIN, &["mon 18:00-24:00", "tue 00:00-02:00"], &[]);
        let start = local(BERLIN, "2025-06-02 23:00");
        assert_eq!(
            c.add_business(start, h(2)),
            Some(local(BERLIN, "2025-06-03 01:00"))
        );
    }

    // --- 24x7 -------------------------------------------------------------

    #[test]
    fn twenty_four_seven_in_utc_is_plain_addition() {
        let c = cal("UTC", &["24x7"], &[]);
        let start = utc("2025-06-06 17:13");
        for d in [m(1), h(5), h(24 * 9), h(24 * 400)] {
            assert_eq!(c.add_business(start, d), Some(start + d));
            assert_eq!(c.business_between(start, start + d), d);
        }
        assert!(c.is_open(start));
    }

    #[test]
    fn twenty_four_seven_spelled_as_hours() {
        let a = cal(BERLIN, &["24x7"], &[]);
        let b = cal(BERLIN, &["mon-sun 00:00-24:00"], &[]);
        let c = cal(BERLIN, &["daily 00:00-24:00"], &[]);
        assert_eq!(a, b);
        assert_eq!(b, c);
    }

    #[test]
    fn twenty_four_seven_over_dst_is_real_time() {
        let c = cal(BERLIN, &["24x7"], &[]);
        // Across the spring change: 24 real hours.
        let start = local(BERLIN, "2025-03-29 12:00");
        assert_eq!(c.add_business(start, h(24)), Some(start + h(24)));
        assert_eq!(start + h(24), local(BERLIN, "2025-03-30 13:00"));
        // The spring day has 23 hours, the autumn day 25.
        let spring = local(BERLIN, "2025-03-30 00:00");
        assert_eq!(
            c.business_between(spring, local(BERLIN, "2025-03-31 00:00")),
            h(23)
        );
        let autumn = local(BERLIN, "2025-10-26 00:00");
        assert_eq!(
            c.business_between(autumn, local(BERLIN, "2025-10-27 00:00")),
            h(25)
        );
        assert!(c.is_open(utc("2025-10-26 00:30"))); // 02:30 CEST
        assert!(c.is_open(utc("2025-10-26 01:30"))); // 02:30 CET
    }

    // --- DST: Europe/Berlin -------------------------------------------------

    #[test]
    fn berlin_spring_forward_night_span_loses_an_hour() {
        let c = cal(BERLIN, &["sun 01:00-05:00"], &[]);
        let sun = local(BERLIN, "2025-03-30 00:00");
        assert_eq!(c.business_between(sun, sun + h(24)), h(3));
        // A week earlier the same span has 4 hours.
        let before = local(BERLIN, "2025-03-23 00:00");
        assert_eq!(c.business_between(before, before + h(24)), h(4));
        // 01:30 + 1h is 03:30 CEST (02:30 does not exist).
        assert_eq!(
            c.add_business(local(BERLIN, "2025-03-30 01:30"), h(1)),
            Some(local(BERLIN, "2025-03-30 03:30"))
        );
    }

    #[test]
    fn berlin_span_starting_in_the_skipped_hour_opens_at_three() {
        let c = cal(BERLIN, &["sun 02:30-04:00"], &[]);
        let sun = local(BERLIN, "2025-03-30 00:00");
        assert_eq!(c.business_between(sun, sun + h(24)), h(1));
        assert_eq!(
            c.add_business(sun, m(1)),
            Some(local(BERLIN, "2025-03-30 03:01"))
        );
        assert!(c.is_open(local(BERLIN, "2025-03-30 03:00")));
        assert!(!c.is_open(utc("2025-03-30 00:59"))); // 01:59 CET
    }

    #[test]
    fn berlin_span_wholly_inside_the_skipped_hour_is_empty() {
        let c = cal(BERLIN, &["sun 02:10-02:50", "mon 08:00-09:00"], &[]);
        let sun = local(BERLIN, "2025-03-30 00:00");
        assert_eq!(c.business_between(sun, sun + h(24)), Duration::zero());
        assert_eq!(
            c.add_business(sun, m(10)),
            Some(local(BERLIN, "2025-03-31 08:10"))
        );
    }

    #[test]
    fn berlin_fall_back_night_span_gains_an_hour() {
        let c = cal(BERLIN, &["sun 01:00-05:00"], &[]);
        let sun = local(BERLIN, "2025-10-26 00:00");
        assert_eq!(c.business_between(sun, sun + h(25)), h(5));
        // From 01:00 CEST, 2 real hours later is 02:00 CET (the repeat).
        assert_eq!(c.add_business(sun, h(2)), Some(utc("2025-10-26 01:00")));
    }

    #[test]
    fn berlin_span_edges_in_the_repeated_hour() {
        // Opens the first time the clock shows 02:15 (CEST) and closes the
        // last time it shows 02:45 (CET): 1 h 30 min.
        let c = cal(BERLIN, &["sun 02:15-02:45"], &[]);
        let sun = local(BERLIN, "2025-10-26 00:00");
        assert_eq!(c.business_between(sun, sun + h(25)), m(90));
        assert_eq!(c.add_business(sun, m(1)), Some(utc("2025-10-26 00:16")));
        assert_eq!(c.add_business(sun, m(90)), Some(utc("2025-10-26 01:45")));
        assert!(c.is_open(utc("2025-10-26 01:44")));
    }

    #[test]
    fn berlin_office_hours_unaffected_by_dst_week() {
        let c = cal(BERLIN, &["mon-fri 08:00-18:00"], &[]);
        // Friday before the spring change, 16:00 CET, + 4 business hours.
        let fri = local(BERLIN, "2025-03-28 16:00");
        assert_eq!(
            c.add_business(fri, h(4)),
            Some(local(BERLIN, "2025-03-31 10:00"))
        );
        // Monday after the spring change opens at 06:00 UTC, not 07:00.
        assert_eq!(
            c.add_business(fri, h(2) + m(1)),
            Some(utc("2025-03-31 06:01"))
        );
        // Same over the autumn change.
        let fri = local(BERLIN, "2025-10-24 16:00");
        assert_eq!(
            c.add_business(fri, h(4)),
            Some(local(BERLIN, "2025-10-27 10:00"))
        );
        assert_eq!(
            c.add_business(fri, h(2) + m(1)),
            Some(utc("2025-10-27 07:01"))
        );
    }

    #[test]
    fn berlin_overnight_shift_through_both_changes() {
        let c = cal(BERLIN, &["sat 22:00-06:00"], &[]);
        let sat = local(BERLIN, "2025-03-29 12:00");
        // 22:00 CET to 06:00 CEST: 7 real hours.
        assert_eq!(c.business_between(sat, sat + h(48)), h(7));
        let sat = local(BERLIN, "2025-10-25 12:00");
        // 22:00 CEST to 06:00 CET: 9 real hours.
        assert_eq!(c.business_between(sat, sat + h(48)), h(9));
        // Over the autumn change, 5 hours after 22:00 CEST is 02:00 CET.
        assert_eq!(c.add_business(sat, h(5)), Some(utc("2025-10-26 01:00")));
    }

    // --- DST: America/New_York ---------------------------------------------

    #[test]
    fn new_york_office_hours_over_spring_forward() {
        let c = cal(NEW_YORK, &["mon-fri 09:00-17:00"], &[]);
        // Friday 2025-03-07 16:00 EST; the change is Sunday 2025-03-09.
        let fri = local(NEW_YORK, "2025-03-07 16:00");
        assert_eq!(fri, utc("2025-03-07 21:00"));
        let due = c.add_business(fri, h(2)).unwrap();
        assert_eq!(due, local(NEW_YORK, "2025-03-10 10:00"));
        assert_eq!(due, utc("2025-03-10 14:00")); // EDT
        assert_eq!(c.business_between(fri, due), h(2));
    }

    #[test]
    fn new_york_night_span_over_both_changes() {
        let c = cal(NEW_YORK, &["sun 00:00-04:00"], &[]);
        let spring = local(NEW_YORK, "2025-03-09 00:00");
        assert_eq!(c.business_between(spring, spring + h(24)), h(3));
        let autumn = local(NEW_YORK, "2025-11-02 00:00");
        assert_eq!(c.business_between(autumn, autumn + h(25)), h(5));
        // 01:30 EDT + 1 h is 01:30 EST.
        let t = utc("2025-11-02 05:30");
        assert_eq!(c.add_business(t, h(1)), Some(utc("2025-11-02 06:30")));
    }

    #[test]
    fn new_york_24x7_spring_day() {
        let c = cal(NEW_YORK, &["24x7"], &[]);
        let day = local(NEW_YORK, "2025-03-09 00:00");
        assert_eq!(
            c.business_between(day, local(NEW_YORK, "2025-03-10 00:00")),
            h(23)
        );
    }

    // --- consistency: stepping vs. a minute-by-minute count ------------------

    /// Counts open minutes one by one with `is_open` and compares with
    /// `business_between`, and checks `add_business` inverts it.
    fn brute_force_agrees(c: &Calendar, from: DateTime<Utc>, hours: i64) {
        let mut open = 0;
        for i in 0..hours * 60 {
            if c.is_open(from + m(i)) {
                open += 1;
            }
        }
        assert_eq!(c.business_between(from, from + h(hours)), m(open));
        for d in [m(1), m(59), h(3), h(11), h(26)] {
            if d > m(open) {
                continue;
            }
            let t = c.add_business(from, d).unwrap();
            assert_eq!(c.business_between(from, t), d, "add {d} from {from}");
            assert!(c.business_between(from, t - Duration::seconds(1)) < d);
        }
    }

    #[test]
    fn stepping_matches_brute_force_over_dst_weeks() {
        let calendars = [
            cal(BERLIN, &["mon-fri 08:00-18:00"], &["2025-03-26"]),
            cal(BERLIN, &["daily 22:00-06:00", "sat 01:30-02:30"], &[]),
            cal(BERLIN, &["24x7"], &["2025-10-27"]),
            cal(
                BERLIN,
                &["sun 02:15-02:45, 01:00-02:00", "sun 02:50-03:30"],
                &[],
            ),
            cal(NEW_YORK, &["mon-sat 07:00-12:00, 12:30-19:00"], &[]),
            cal(NEW_YORK, &["fri-mon 23:00-01:30"], &["2025-11-01"]),
        ];
        let weeks = [
            utc("2025-03-26 00:00"), // Berlin spring
            utc("2025-10-22 00:00"), // Berlin autumn
            utc("2025-03-05 00:00"), // New York spring
            utc("2025-10-29 00:00"), // New York autumn
        ];
        for c in &calendars {
            for &w in &weeks {
                brute_force_agrees(c, w, 24 * 6);
            }
        }
    }

    #[test]
    fn add_and_between_invert_each_other_in_office_hours() {
        let c = cal(
            BERLIN,
            &["mon-fri 08:00-12:00, 13:00-17:30"],
            &["2025-05-01"],
        );
        let start = local(BERLIN, "2025-04-28 11:47");
        for minutes in (1..=60 * 60).step_by(37) {
            let d = m(minutes);
            let t = c.add_business(start, d).unwrap();
            assert_eq!(c.business_between(start, t), d);
            assert!(c.is_open(t - Duration::seconds(1)));
        }
    }

    // --- limits -------------------------------------------------------------

    #[test]
    fn extreme_inputs_neither_panic_nor_hang() {
        let c = cal(BERLIN, &["mon 08:00-09:00"], &[]);
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(c.add_business(max, h(1)), None);
        assert!(!c.is_open(max));
        assert!(!c.is_open(min));
        assert_eq!(c.business_between(max, min), Duration::zero());
        assert_eq!(c.add_business(utc("2025-01-01 00:00"), Duration::MAX), None);
        let all = c.business_between(min, max);
        assert!(all > h(15_000) && all < h(16_000), "{all}");
        // Before 1900 the calendar is closed; the first hour is in 1900.
        let t = c.add_business(min, h(1)).unwrap();
        assert_eq!(t.year(), 1900);
    }

    #[test]
    fn holidays_to_the_end_of_time_give_none() {
        let c = cal(BERLIN, &["24x7"], &["2025-01-01..2199-12-31"]);
        assert_eq!(c.add_business(utc("2025-06-01 00:00"), h(1)), None);
        assert_eq!(
            c.add_business(utc("2024-12-31 22:00"), h(1)),
            Some(utc("2024-12-31 23:00"))
        );
    }

    // --- construction and parse errors ----------------------------------------

    #[test]
    fn no_hours_is_an_error_not_a_loop() {
        let tz: Tz = BERLIN.parse().unwrap();
        assert_eq!(Calendar::new(tz, &[], &[]), Err(CalendarError::NoHours));
        let err = spec(BERLIN, &[], &[]).build().unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].path, "hours");
    }

    #[test]
    fn typed_construction_matches_strings() {
        let tz: Tz = BERLIN.parse().unwrap();
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        let typed = Calendar::new(
            tz,
            &[
                (Weekday::Mon, t("08:00"), t("18:00")),
                (Weekday::Fri, t("22:00"), t("06:00")),
                (Weekday::Sat, t("10:00"), t("00:00")),
            ],
            &[NaiveDate::from_ymd_opt(2025, 12, 25).unwrap()],
        )
        .unwrap();
        let parsed = cal(
            BERLIN,
            &["mon 08:00-18:00", "fri 22:00-06:00", "sat 10:00-24:00"],
            &["2025-12-25"],
        );
        assert_eq!(typed, parsed);
        assert_eq!(typed.zone(), tz);
    }

    #[test]
    fn holiday_ranges_merge() {
        let tz: Tz = BERLIN.parse().unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let c = Calendar::new(tz, &[(Weekday::Mon, NaiveTime::MIN, NaiveTime::MIN)], &[])
            .unwrap()
            .with_holidays(d("2025-01-01"), d("2025-01-05"))
            .unwrap()
            .with_holidays(d("2025-01-06"), d("2025-01-06"))
            .unwrap()
            .with_holidays(d("2025-01-03"), d("2025-01-04"))
            .unwrap();
        assert_eq!(c.holidays, vec![(d("2025-01-01"), d("2025-01-06"))]);
        assert_eq!(
            c.clone().with_holidays(d("2025-01-02"), d("2025-01-01")),
            Err(CalendarError::HolidayRange {
                first: d("2025-01-02"),
                last: d("2025-01-01")
            })
        );
    }

    #[test]
    fn parse_error_messages() {
        let cases: &[(&str, &str)] = &[
            ("mon-fri 25:00-18:00", "25:00 is not a time"),
            ("mon-fri 08:00-24:30", "24:30 is not a time"),
            ("mon-fri 8-18", "8 is not a time"),
            ("mon-fri 08:60-18:00", "08:60 is not a time"),
            (
                "mon-fri 08:00",
                "08:00 is not a span of times (expected HH:MM-HH:MM)",
            ),
            (
                "mon-fri 08:00-",
                "a span is missing a time (expected HH:MM-HH:MM)",
            ),
            (
                "mon-fri",
                "mon-fri gives no times (expected e.g. \"mon-fri 08:00-18:00\")",
            ),
            ("", "empty (expected e.g. \"mon-fri 08:00-18:00\")"),
            (
                "mnd-fri 08:00-18:00",
                "mnd is not a day (expected mon, tue, wed, thu, fri, sat, sun or daily)",
            ),
            (
                "mon,,fri 08:00-18:00",
                "mon,,fri has an empty day in its list",
            ),
            (
                "mon 24:00-06:00",
                "24:00-06:00: a span cannot start at 24:00",
            ),
            (
                "mon 08:00-08:00",
                "08:00-08:00 is empty (for a whole day write 00:00-24:00)",
            ),
            ("mon 08:00-+9:00", "+9:00 is not a time"),
            ("mon 008:00-09:00", "008:00 is not a time"),
        ];
        for (entry, want) in cases {
            assert_eq!(parse_hours(entry).unwrap_err(), *want, "{entry:?}");
        }
    }

    #[test]
    fn parse_forms() {
        let t = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(
            parse_hours("Sat 9:00-12:00 13:00-15:30").unwrap(),
            vec![
                (Weekday::Sat, t("09:00"), t("12:00")),
                (Weekday::Sat, t("13:00"), t("15:30")),
            ]
        );
        let days: Vec<Weekday> = parse_hours("fri-mon 00:00-24:00")
            .unwrap()
            .into_iter()
            .map(|(d, _, _)| d)
            .collect();
        assert_eq!(
            days,
            vec![Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon]
        );
        assert_eq!(
            parse_hours("monday,Wednesday 08:00-09:00").unwrap().len(),
            2
        );
        assert_eq!(parse_hours("  24X7 ").unwrap().len(), 7);
    }

    #[test]
    fn spec_reports_every_problem_with_its_path() {
        let err = spec(
            "Mars/Olympus",
            &["mon-fri 08:00-18:00", "sat 09:00-12:00", "sun 25:00-26:00"],
            &["2025-12-25", "2025-13-01", "2025-12-31..2025-12-24"],
        )
        .build()
        .unwrap_err();
        let shown: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "zone: Mars/Olympus is not an IANA time zone (e.g. \"Europe/Berlin\")",
                "hours[2]: 25:00 is not a time",
                "holidays[1]: 2025-13-01 is not a date (expected YYYY-MM-DD)",
                "holidays[2]: 2025-12-31..2025-12-24 ends before it starts",
            ]
        );
    }

    #[test]
    fn zone_errors() {
        let err = spec("europe/berlin", &["24x7"], &[]).build().unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "zone: europe/berlin is not an IANA time zone; did you mean Europe/Berlin?"
        );
        let err = spec("  ", &["24x7"], &[]).build().unwrap_err();
        assert_eq!(err[0].path, "zone");
        assert!(spec(" Europe/Berlin ", &["24x7"], &[]).build().is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "",
            " ",
            "-",
            "--",
            "mon -",
            "mon - -",
            "mon 1:1-2:2",
            "mon ::-::",
            "mon 99:99-00:00",
            "mon-",
            "-mon 08:00-09:00",
            "mon-mon 08:00-09:00",
            "ünïcödé 08:00-09:00",
            "mon 08:00-09:00-10:00",
            "mon 08:00—09:00",
            "mon 0８:00-09:00",
            "24x7 08:00-09:00",
        ];
        for input in inputs {
            let _ = parse_hours(input);
        }
        for input in [
            "",
            "..",
            "2025-01-01..",
            "..2025-01-01",
            "x..y",
            "2025-02-30",
            "2025-1-1x",
        ] {
            assert!(parse_holiday(input).is_err(), "{input:?}");
        }
    }
}
