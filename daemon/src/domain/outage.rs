//! Outages and availability: staff record on an incident that a
//! configuration item is down (`/outage start ITEM`) and up again
//! (`/outage end`); the service report turns the outages of a period into
//! an availability figure per service, through the items' relations (an
//! outage of a system is an outage of every service that depends on it).
//!
//! A service is down while any outage affecting it is open: overlapping
//! outages count once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::changes::Catalog;

/// `/outage start ITEM` or `/outage end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Start(String),
    End,
}

/// Reads the argument of `/outage`.
pub fn parse(arg: &str) -> Result<Command, String> {
    let usage = "usage: /outage start ITEM or /outage end";
    let mut words = arg.split_whitespace();
    match (
        words.next().map(str::to_ascii_lowercase).as_deref(),
        words.next(),
        words.next(),
    ) {
        (Some("start"), Some(item), None) => Ok(Command::Start(item.to_string())),
        (Some("end"), None, None) => Ok(Command::End),
        _ => Err(usage.to_string()),
    }
}

/// One outage as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    pub item: String,
    pub start: DateTime<Utc>,
    /// `None` while it lasts.
    pub end: Option<DateTime<Utc>>,
}

/// A stretch of time, start to end.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Availability of one service over a period.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Availability {
    pub service: String,
    /// Outages that touched the service in the period.
    pub outages: u64,
    pub down_secs: i64,
    pub period_secs: i64,
    /// `100 × (period − down) / period`.
    pub percent: f64,
}

/// Availability of every service item over `[from, to)`; an outage still
/// open counts until `to` (or `now`, if earlier). Services without an outage
/// are 100 %.
pub fn availability(
    catalog: &Catalog,
    outages: &[Outage],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Availability> {
    let until = to.min(now.max(from));
    let mut spans: BTreeMap<String, (u64, Vec<Span>)> = catalog
        .items
        .iter()
        .filter(|i| i.kind == super::changes::ItemKind::Service)
        .map(|i| (i.name.clone(), (0, Vec::new())))
        .collect();
    for o in outages {
        let start = o.start.max(from);
        let end = o.end.unwrap_or(until).min(until);
        if end <= start {
            continue;
        }
        for s in catalog.affected_services(&o.item) {
            let entry = spans.entry(s).or_default();
            entry.0 += 1;
            entry.1.push((start, end));
        }
    }
    let period = (to - from).max(Duration::zero());
    spans
        .into_iter()
        .map(|(service, (count, mut v))| {
            v.sort();
            let mut down = Duration::zero();
            let mut current: Option<Span> = None;
            for (s, e) in v {
                current = match current {
                    Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                    Some((cs, ce)) => {
                        down += ce - cs;
                        Some((s, e))
                    }
                    None => Some((s, e)),
                };
            }
            if let Some((cs, ce)) = current {
                down += ce - cs;
            }
            let period_secs = period.num_seconds();
            let down_secs = down.num_seconds();
            let percent = if period_secs > 0 {
                100.0 * (period_secs - down_secs) as f64 / period_secs as f64
            } else {
                100.0
            };
            Availability {
                service,
                outages: count,
                down_secs,
                period_secs,
                percent,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::changes::{Item, ItemKind};

    fn catalog() -> Catalog {
        let item = |name: &str, kind, deps: &[&str]| Item {
            name: name.into(),
            kind,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        };
        Catalog {
            items: vec![
                item("mail", ItemKind::Service, &["db1"]),
                item("crm", ItemKind::Service, &["db1", "web"]),
                item("vpn", ItemKind::Service, &[]),
                item("db1", ItemKind::System, &[]),
                item("web", ItemKind::System, &[]),
            ],
        }
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn outage(item: &str, start: i64, end: Option<i64>) -> Outage {
        Outage {
            item: item.into(),
            start: at(start),
            end: end.map(at),
        }
    }

    #[test]
    fn outages_reach_services_through_relations_and_overlaps_count_once() {
        // A 100-hour period; db1 down 2 h, web down 3 h overlapping it by 1 h.
        let outages = [outage("db1", 10, Some(12)), outage("web", 11, Some(14))];
        let a = availability(&catalog(), &outages, at(0), at(100), at(200));
        let get = |s: &str| a.iter().find(|x| x.service == s).expect(s).clone();
        assert_eq!(get("mail").down_secs, 2 * 3600);
        assert_eq!(get("mail").outages, 1);
        assert_eq!(get("crm").down_secs, 4 * 3600, "10-14, once");
        assert_eq!(get("crm").outages, 2);
        assert!((get("crm").percent - 96.0).abs() < 1e-9);
        assert_eq!(get("vpn").down_secs, 0);
        assert_eq!(get("vpn").percent, 100.0);
        assert_eq!(a.len(), 3, "services only");
    }

    #[test]
    fn outages_are_clipped_to_the_period_and_open_ones_last_until_now() {
        let outages = [
            outage("vpn", -5, Some(2)),
            outage("vpn", 98, None),
            outage("mail", 150, Some(160)),
        ];
        let a = availability(&catalog(), &outages, at(0), at(100), at(99));
        let vpn = a.iter().find(|x| x.service == "vpn").expect("vpn");
        assert_eq!(vpn.down_secs, 3 * 3600, "0-2 and 98-99 (now)");
        let mail = a.iter().find(|x| x.service == "mail").expect("mail");
        assert_eq!((mail.outages, mail.down_secs), (0, 0));
    }

    #[test]
    fn the_command_reads_start_and_end() {
        assert_eq!(parse("start db1"), Ok(Command::Start("db1".into())));
        assert_eq!(parse("END"), Ok(Command::End));
        for bad in ["", "start", "end now", "begin db1", "start db1 db2"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
