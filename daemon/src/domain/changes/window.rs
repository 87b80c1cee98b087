//! Change windows: `/window START END [ZONE]`, local times in an IANA zone
//! (the SLA calendars' zone names), kept as UTC instants.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::sla::calendar::parse_zone;

/// A planned window: UTC instants and the zone it was given in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub zone: String,
}

const USAGE: &str = "usage: /window YYYY-MM-DD HH:MM YYYY-MM-DD HH:MM [ZONE], \
                     e.g. /window 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin";

impl Window {
    /// Reads `START END [ZONE]`: each instant as `YYYY-MM-DD HH:MM` or
    /// `YYYY-MM-DDTHH:MM`; without a zone, `default` is meant.
    pub fn parse(arg: &str, default: Tz) -> Result<Window, String> {
        let words: Vec<&str> = arg.split_whitespace().collect();
        let mut instants: Vec<NaiveDateTime> = Vec::new();
        let mut i = 0;
        while i < words.len() && instants.len() < 2 {
            let w = words[i];
            if let Some((d, t)) = w.split_once(['T', 't'])
                && NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
            {
                instants.push(local(d, t)?);
                i += 1;
            } else if let Some(t) = words.get(i + 1)
                && NaiveDate::parse_from_str(w, "%Y-%m-%d").is_ok()
            {
                instants.push(local(w, t)?);
                i += 2;
            } else {
                return Err(format!("{w:?} is not a date and time; {USAGE}"));
            }
        }
        if instants.len() < 2 {
            return Err(format!("a window needs a start and an end; {USAGE}"));
        }
        let zone = match &words[i..] {
            [] => default,
            [z] => parse_zone(z)?,
            more => return Err(format!("unexpected {:?}; {USAGE}", more.join(" "))),
        };
        let start = to_utc(instants[0], zone)?;
        let end = to_utc(instants[1], zone)?;
        if end <= start {
            return Err(format!(
                "the window ends ({}) before it starts ({})",
                instants[1].format("%Y-%m-%d %H:%M"),
                instants[0].format("%Y-%m-%d %H:%M")
            ));
        }
        Ok(Window {
            start,
            end,
            zone: zone.name().to_string(),
        })
    }

    /// `2026-12-10 22:00 – 2026-12-11 02:00 Europe/Berlin (21:00 – 01:00 UTC)`.
    pub fn describe(&self) -> String {
        let zone: Tz = self.zone.parse().unwrap_or(Tz::UTC);
        let (s, e) = (
            self.start.with_timezone(&zone),
            self.end.with_timezone(&zone),
        );
        if zone == Tz::UTC {
            format!(
                "{} – {} UTC",
                s.format("%Y-%m-%d %H:%M"),
                e.format("%Y-%m-%d %H:%M")
            )
        } else {
            format!(
                "{} – {} {} ({} – {} UTC)",
                s.format("%Y-%m-%d %H:%M"),
                e.format("%Y-%m-%d %H:%M"),
                self.zone,
                self.start.format("%Y-%m-%d %H:%M"),
                self.end.format("%Y-%m-%d %H:%M")
            )
        }
    }
}

fn local(date: &str, time: &str) -> Result<NaiveDateTime, String> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| format!("{date:?} is not a date (YYYY-MM-DD); {USAGE}"))?;
    let t = NaiveTime::parse_from_str(time, "%H:%M")
        .map_err(|_| format!("{time:?} is not a time (HH:MM); {USAGE}"))?;
    Ok(d.and_time(t))
}

/// A local time in `zone` as UTC; a time the clocks skip or pass twice
/// (daylight saving) is refused with the reason.
pub fn to_utc(t: NaiveDateTime, zone: Tz) -> Result<DateTime<Utc>, String> {
    match zone.from_local_datetime(&t) {
        chrono::LocalResult::Single(x) => Ok(x.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(..) => Err(format!(
            "{} happens twice in {} (clocks go back); pick another time",
            t.format("%Y-%m-%d %H:%M"),
            zone.name()
        )),
        chrono::LocalResult::None => Err(format!(
            "{} does not exist in {} (clocks go forward); pick another time",
            t.format("%Y-%m-%d %H:%M"),
            zone.name()
        )),
    }
}

/// A `[[freeze]]` time: RFC 3339, or `YYYY-MM-DD HH:MM` / `YYYY-MM-DD` in
/// `zone`.
pub fn parse_instant(s: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return to_utc(t, zone);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return to_utc(d.and_time(NaiveTime::MIN), zone);
    }
    Err(format!(
        "expected RFC 3339, \"YYYY-MM-DD HH:MM\" or \"YYYY-MM-DD\", got {s:?}"
    ))
}
