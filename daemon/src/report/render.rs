//! Report figures as text: an aligned table, CSV and JSON for the command
//! line, a plain-text summary, and the HTML mail body with inline SVG charts.
//! Pure functions of [`Figures`]; no I/O.
//!
//! The HTML is built for mail clients, not browsers: one centred layout
//! table, inline styles only, no scripts, no external images or fonts, no
//! CSS classes. Every chart is followed by a table with the same figures,
//! because several clients do not draw SVG (see [`html_sections`]).

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde_json::json;

use super::figures::{AgeCount, Figures};

/// One part of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sla,
    Volume,
    Backlog,
    Suppliers,
    Satisfaction,
    Problems,
    Changes,
    Releases,
    Availability,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Sla,
        Kind::Volume,
        Kind::Backlog,
        Kind::Suppliers,
        Kind::Satisfaction,
        Kind::Problems,
        Kind::Changes,
        Kind::Releases,
        Kind::Availability,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sla => "sla",
            Kind::Volume => "volume",
            Kind::Backlog => "backlog",
            Kind::Suppliers => "suppliers",
            Kind::Satisfaction => "satisfaction",
            Kind::Problems => "problems",
            Kind::Changes => "changes",
            Kind::Releases => "releases",
            Kind::Availability => "availability",
        }
    }

    /// The section title in the HTML report.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Sla => "SLA compliance",
            Kind::Volume => "Ticket volumes",
            Kind::Backlog => "Backlog by age",
            Kind::Suppliers => "Supplier performance",
            Kind::Satisfaction => "Customer satisfaction",
            Kind::Problems => "Problems and known errors",
            Kind::Changes => "Changes",
            Kind::Releases => "Releases",
            Kind::Availability => "Availability per service",
        }
    }

    /// What the section's figures mean, one sentence under its title.
    fn explanation(self) -> &'static str {
        match self {
            Kind::Sla => {
                "Tickets created in the period, per service and priority. A target is met when \
                 the first answer (response) or the resolution came by its due time, breached when \
                 it came later or is still missing past it, open while the due time is ahead."
            }
            Kind::Volume => "Tickets created and tickets resolved per day (UTC).",
            Kind::Backlog => {
                "Tickets not resolved or closed at the time of the report, by age since creation."
            }
            Kind::Suppliers => {
                "Escalations to suppliers in the period, against the response and resolution \
                 targets of their contracts (business time of the supplier's calendar)."
            }
            Kind::Satisfaction => {
                "Ratings (1 to 5) customers gave in the period in answer to the question sent \
                 when their ticket was resolved; the latest answer to each question counts. Per \
                 service and per staff member as they were at the resolution; 4-5 % is the \
                 share of 4 and 5."
            }
            Kind::Problems => {
                "Problems opened and solved in the period; open problems and the known errors \
                 among them at the time of the report."
            }
            Kind::Changes => {
                "Changes submitted, decided, implemented and failed in the period. Success is \
                 implemented / (implemented + failed); an emergency change was submitted less \
                 than 24 hours before its window; late approvals are answers refused because \
                 they came after the deadline."
            }
            Kind::Releases => {
                "Deploys asked in the period (through the release.before_deploy gate), \
                 releases deployed, and deploys the gate vetoed or failed."
            }
            Kind::Availability => {
                "Per service (configuration items of kind service), the share of the period \
                 without an outage of it or of an item it depends on, from the outages staff \
                 recorded on incidents (/outage start, /outage end); overlapping outages count \
                 once, one still open counts until the end of the period."
            }
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown report {s:?} (sla, volume, backlog, suppliers, satisfaction, \
                     problems, changes, releases, availability)"
                )
            })
    }
}

// ---- the figures as a grid of cells ----------------------------------------

/// One value of a report table; CSV writes it raw, tables for people format it.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Text(String),
    Date(NaiveDate),
    Count(u64),
    Percent(Option<f64>),
    Secs(Option<i64>),
    /// A mean score, two decimals.
    Average(Option<f64>),
}

impl Cell {
    fn raw(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
            Cell::Count(n) => n.to_string(),
            Cell::Percent(p) => p.map(|p| p.to_string()).unwrap_or_default(),
            Cell::Secs(s) => s.map(|s| s.to_string()).unwrap_or_default(),
            Cell::Average(a) => a.map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    fn human(&self) -> String {
        match self {
            Cell::Percent(p) => p.map(fmt_percent).unwrap_or_else(|| "-".into()),
            Cell::Secs(s) => s.map(fmt_secs).unwrap_or_else(|| "-".into()),
            Cell::Average(a) => a.map(|a| format!("{a:.2}")).unwrap_or_else(|| "-".into()),
            other => other.raw(),
        }
    }

    fn numeric(&self) -> bool {
        !matches!(self, Cell::Text(_) | Cell::Date(_))
    }
}

/// Column names: (CSV/JSON-style, for people).
fn columns(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Sla => &[
            ("service", "service"),
            ("priority", "priority"),
            ("tickets", "tickets"),
            ("response_met", "resp. met"),
            ("response_breached", "breached"),
            ("response_open", "open"),
            ("response_no_target", "no target"),
            ("response_met_percent", "met %"),
            ("resolution_met", "resol. met"),
            ("resolution_breached", "breached"),
            ("resolution_open", "open"),
            ("resolution_no_target", "no target"),
            ("resolution_met_percent", "met %"),
        ],
        Kind::Volume => &[
            ("date", "date"),
            ("created", "created"),
            ("resolved", "resolved"),
        ],
        Kind::Backlog => &[("age", "age"), ("open_tickets", "open tickets")],
        Kind::Suppliers => &[
            ("supplier", "supplier"),
            ("escalations", "escalations"),
            ("responded", "responded"),
            ("median_response_secs", "median resp."),
            ("worst_response_secs", "worst resp."),
            ("response_target_secs", "resp. target"),
            ("response_within_target_percent", "within %"),
            ("resolved", "resolved"),
            ("median_resolution_secs", "median resol."),
            ("worst_resolution_secs", "worst resol."),
            ("resolution_target_secs", "resol. target"),
            ("resolution_within_target_percent", "within %"),
            ("open", "open"),
        ],
        Kind::Satisfaction => &[
            ("by", "by"),
            ("name", "name"),
            ("ratings", "ratings"),
            ("average", "average"),
            ("satisfied", "4-5"),
            ("satisfied_percent", "4-5 %"),
            ("dissatisfied", "1-2"),
        ],
        Kind::Problems => &[
            ("opened", "opened"),
            ("solved", "solved"),
            ("open", "open now"),
            ("known_errors", "known errors"),
        ],
        Kind::Changes => &[
            ("submitted", "submitted"),
            ("approved", "approved"),
            ("rejected", "rejected"),
            ("implemented", "implemented"),
            ("failed", "failed"),
            ("success_percent", "success %"),
            ("emergency", "emergency"),
            ("approvals_late", "late approvals"),
            ("answers_refused", "refused answers"),
        ],
        Kind::Releases => &[
            ("deploys_asked", "deploys asked"),
            ("deployed", "deployed"),
            ("vetoed", "vetoed"),
        ],
        Kind::Availability => &[
            ("service", "service"),
            ("outages", "outages"),
            ("down_secs", "down"),
            ("availability_percent", "available %"),
        ],
    }
}

const NO_SERVICE: &str = "(no service)";

fn rows(f: &Figures, kind: Kind) -> Vec<Vec<Cell>> {
    match kind {
        Kind::Sla => f
            .sla
            .iter()
            .map(|r| {
                let mut row = vec![
                    Cell::Text(r.service.clone().unwrap_or_else(|| NO_SERVICE.into())),
                    Cell::Text(r.priority.clone()),
                    Cell::Count(r.tickets),
                ];
                for c in [&r.response, &r.resolution] {
                    row.extend([
                        Cell::Count(c.met),
                        Cell::Count(c.breached),
                        Cell::Count(c.open),
                        Cell::Count(c.no_target),
                        Cell::Percent(c.met_percent),
                    ]);
                }
                row
            })
            .collect(),
        Kind::Volume => f
            .volume
            .iter()
            .map(|d| {
                vec![
                    Cell::Date(d.date),
                    Cell::Count(d.created),
                    Cell::Count(d.resolved),
                ]
            })
            .collect(),
        Kind::Backlog => f
            .backlog
            .iter()
            .map(|b| vec![Cell::Text(b.age.label().into()), Cell::Count(b.tickets)])
            .collect(),
        Kind::Suppliers => f
            .suppliers
            .iter()
            .map(|s| {
                let mut row = vec![Cell::Text(s.supplier.clone()), Cell::Count(s.escalations)];
                for t in [&s.response, &s.resolution] {
                    row.extend([
                        Cell::Count(t.done),
                        Cell::Secs(t.median_secs),
                        Cell::Secs(t.worst_secs),
                        Cell::Secs(t.target_secs),
                        Cell::Percent(t.within_target_percent),
                    ]);
                }
                row.push(Cell::Count(s.open));
                row
            })
            .collect(),
        Kind::Satisfaction => {
            let s = &f.satisfaction;
            if s.overall.ratings == 0 {
                return Vec::new();
            }
            let row = |by: &str, name: String, x: &super::satisfaction::Scores| {
                vec![
                    Cell::Text(by.into()),
                    Cell::Text(name),
                    Cell::Count(x.ratings),
                    Cell::Average(x.average),
                    Cell::Count(x.satisfied),
                    Cell::Percent(x.satisfied_percent),
                    Cell::Count(x.dissatisfied),
                ]
            };
            let mut out = vec![row("all", "(all)".into(), &s.overall)];
            for (name, x) in &s.services {
                let name = name.clone().unwrap_or_else(|| NO_SERVICE.into());
                out.push(row("service", name, x));
            }
            for (name, x) in &s.staff {
                let name = name.clone().unwrap_or_else(|| "(nobody)".into());
                out.push(row("staff", name, x));
            }
            out
        }
        Kind::Problems => {
            let p = &f.processes.problems;
            vec![vec![
                Cell::Count(p.opened),
                Cell::Count(p.solved),
                Cell::Count(p.open),
                Cell::Count(p.known_errors),
            ]]
        }
        Kind::Changes => {
            let c = &f.processes.changes;
            vec![vec![
                Cell::Count(c.submitted),
                Cell::Count(c.approved),
                Cell::Count(c.rejected),
                Cell::Count(c.implemented),
                Cell::Count(c.failed),
                Cell::Percent(c.success_percent),
                Cell::Count(c.emergency),
                Cell::Count(c.approvals_late),
                Cell::Count(c.answers_refused),
            ]]
        }
        Kind::Releases => {
            let r = &f.processes.releases;
            vec![vec![
                Cell::Count(r.deploys_asked),
                Cell::Count(r.deployed),
                Cell::Count(r.vetoed),
            ]]
        }
        Kind::Availability => f
            .processes
            .availability
            .iter()
            .map(|a| {
                vec![
                    Cell::Text(a.service.clone()),
                    Cell::Count(a.outages),
                    Cell::Secs(Some(a.down_secs)),
                    Cell::Percent(Some((a.percent * 1000.0).round() / 1000.0)),
                ]
            })
            .collect(),
    }
}

/// `83.3%`, `100%`.
fn fmt_percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The two largest units of a duration: `45s`, `12m`, `2h 5m`, `3d 4h`.
fn fmt_secs(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The period for people: whole days as `2026-11-01 – 2026-11-30` (the
/// exclusive end shown as the last day it covers), else with times in UTC.
pub fn period(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let midnight =
        |t: DateTime<Utc>| t.time().num_seconds_from_midnight() == 0 && t.nanosecond() == 0;
    if midnight(from) && midnight(to) && to > from {
        let last = (to - chrono::Duration::days(1)).date_naive();
        if last == from.date_naive() {
            return from.format("%Y-%m-%d").to_string();
        }
        format!("{} – {}", from.format("%Y-%m-%d"), last.format("%Y-%m-%d"))
    } else {
        format!(
            "{} – {} UTC",
            from.format("%Y-%m-%d %H:%M"),
            to.format("%Y-%m-%d %H:%M")
        )
    }
}

// ---- command-line formats ----------------------------------------------

/// An aligned text table with a header line; numbers right-aligned.
pub fn table(f: &Figures, kind: Kind) -> String {
    let header: Vec<String> = columns(kind).iter().map(|(_, h)| h.to_string()).collect();
    let rows = rows(f, kind);
    let cells: Vec<Vec<(String, bool)>> = rows
        .iter()
        .map(|r| r.iter().map(|c| (c.human(), c.numeric())).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, (s, _)) in r.iter().enumerate() {
            widths[i] = widths[i].max(s.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| rows.first().is_some_and(|r| r[i].numeric()))
        .collect();
    let line = |out: &mut String, values: &[String]| {
        let mut l = String::new();
        for (i, v) in values.iter().enumerate() {
            let pad = widths[i].saturating_sub(v.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if numeric[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(v);
            } else {
                l.push_str(v);
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let mut out = String::new();
    line(&mut out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for r in cells {
        let values: Vec<String> = r.into_iter().map(|(s, _)| s).collect();
        line(&mut out, &values);
    }
    if rows.is_empty() {
        out.push_str(empty_note(kind));
        out.push('\n');
    }
    out
}

fn empty_note(kind: Kind) -> &'static str {
    match kind {
        Kind::Sla => "(no tickets created in the period)",
        Kind::Volume => "(an empty period)",
        Kind::Backlog => "(no open tickets)",
        Kind::Suppliers => "(no suppliers configured and no escalations)",
        Kind::Satisfaction => "(no ratings in the period)",
        Kind::Problems | Kind::Changes | Kind::Releases => "",
        Kind::Availability => "(no configuration items of kind service)",
    }
}

/// RFC 4180 CSV with a header line; empty fields for figures without a value.
pub fn csv(f: &Figures, kind: Kind) -> String {
    let mut out = String::new();
    let header: Vec<&str> = columns(kind).iter().map(|(c, _)| *c).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for r in rows(f, kind) {
        let fields: Vec<String> = r.iter().map(|c| csv_field(&c.raw())).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The period and one section of the figures as pretty JSON.
pub fn json(f: &Figures, kind: Kind) -> String {
    let section = match kind {
        Kind::Sla => serde_json::to_value(&f.sla),
        Kind::Volume => serde_json::to_value(&f.volume),
        Kind::Backlog => serde_json::to_value(&f.backlog),
        Kind::Suppliers => serde_json::to_value(&f.suppliers),
        Kind::Satisfaction => serde_json::to_value(&f.satisfaction),
        Kind::Problems => serde_json::to_value(&f.processes.problems),
        Kind::Changes => serde_json::to_value(&f.processes.changes),
        Kind::Releases => serde_json::to_value(&f.processes.releases),
        Kind::Availability => serde_json::to_value(&f.processes.availability),
    }
    .unwrap_or_default();
    let mut v = json!({"from": f.from, "to": f.to, "now": f.now});
    v[kind.as_str()] = section;
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

// ---- the mail --------------------------------------------------------------

/// The text/plain part of the report mail: a summary, then the four tables.
pub fn text(f: &Figures, desk_name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Service report of {desk_name}, {}\n",
        period(f.from, f.to)
    );
    let (mut resp, mut resol) = (
        super::figures::Compliance::default(),
        super::figures::Compliance::default(),
    );
    let mut tickets = 0;
    for r in &f.sla {
        tickets += r.tickets;
        for (sum, c) in [(&mut resp, &r.response), (&mut resol, &r.resolution)] {
            sum.met += c.met;
            sum.breached += c.breached;
            sum.open += c.open;
        }
    }
    let share = |c: &super::figures::Compliance| {
        let decided = c.met + c.breached;
        match decided {
            0 => "none decided yet".to_string(),
            _ => format!(
                "{} of {decided} met ({})",
                c.met,
                fmt_percent((c.met as f64 * 1000.0 / decided as f64).round() / 10.0)
            ),
        }
    };
    let _ = writeln!(
        out,
        "- SLA compliance of the {tickets} ticket(s) created: response {}, resolution {}; \
         {} response(s) and {} resolution(s) still within target.",
        share(&resp),
        share(&resol),
        resp.open,
        resol.open
    );
    let created: u64 = f.volume.iter().map(|d| d.created).sum();
    let resolved: u64 = f.volume.iter().map(|d| d.resolved).sum();
    let _ = writeln!(
        out,
        "- Volumes: {created} ticket(s) created, {resolved} resolved."
    );
    let open: u64 = f.backlog.iter().map(|b| b.tickets).sum();
    let buckets: Vec<String> = f
        .backlog
        .iter()
        .map(|b| format!("{} {}", b.age.label(), b.tickets))
        .collect();
    let _ = writeln!(
        out,
        "- Backlog: {open} open ticket(s) ({}).",
        buckets.join(", ")
    );
    let escalations: u64 = f.suppliers.iter().map(|s| s.escalations).sum();
    let late: u64 = f.suppliers.iter().map(|s| s.response.late).sum();
    let _ = writeln!(
        out,
        "- Suppliers: {escalations} escalation(s), {late} response(s) past the contract's target, \
         {} still open.",
        f.suppliers.iter().map(|s| s.open).sum::<u64>()
    );
    let sat = &f.satisfaction.overall;
    let _ = writeln!(
        out,
        "- Satisfaction: {} rating(s) to {} question(s) sent{}.",
        sat.ratings,
        f.satisfaction.asked,
        match (sat.average, sat.satisfied_percent) {
            (Some(a), Some(p)) => format!(", average {a:.2}, {} rated 4 or 5", fmt_percent(p)),
            _ => String::new(),
        }
    );
    let p = &f.processes;
    let _ = writeln!(
        out,
        "- Problems: {} opened, {} solved, {} open with {} known error(s).",
        p.problems.opened, p.problems.solved, p.problems.open, p.problems.known_errors
    );
    let _ = writeln!(
        out,
        "- Changes: {} submitted, {} implemented, {} failed{}, {} emergency, {} late approval(s).",
        p.changes.submitted,
        p.changes.implemented,
        p.changes.failed,
        p.changes
            .success_percent
            .map(|s| format!(" ({} success)", fmt_percent(s)))
            .unwrap_or_default(),
        p.changes.emergency,
        p.changes.approvals_late
    );
    let _ = writeln!(
        out,
        "- Releases: {} deployed, {} deploy(s) vetoed.",
        p.releases.deployed, p.releases.vetoed
    );
    if let Some(worst) = p
        .availability
        .iter()
        .min_by(|a, b| a.percent.total_cmp(&b.percent))
    {
        let _ = writeln!(
            out,
            "- Availability: lowest {} at {}.",
            worst.service,
            fmt_percent((worst.percent * 1000.0).round() / 1000.0)
        );
    }
    out.push_str("\nThe HTML part of this mail has the charts.\n");
    for kind in Kind::ALL {
        let _ = write!(out, "\n{}\n\n{}", kind.title(), table(f, kind));
    }
    out
}

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole HTML report mail body: all four sections.
pub fn html(f: &Figures, desk_name: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    html_sections(f, desk_name, from, to, &Kind::ALL)
}

const FONT: &str = "Arial,Helvetica,sans-serif";
const INK: &str = "#1f2933";
const MUTED: &str = "#52606d";
const GRID: &str = "#d9dee3";
const MET: &str = "#2f855a";
const BREACHED: &str = "#c53030";
const OPEN: &str = "#a0aec0";
const CREATED: &str = "#2b6cb0";
const RESOLVED: &str = "#2f855a";
const BACKLOG: &str = "#b7791f";
/// Width of the content column, and so of every chart.
const WIDTH: i64 = 632;

/// The HTML report with the given sections.
///
/// Mail clients differ: Apple Mail, iOS Mail, Thunderbird and most webmail
/// draw inline SVG, but Outlook for Windows (Word's renderer) and Gmail drop
/// it. So each chart is only an illustration: the table after it carries
/// every figure, and the layout stays readable without the charts.
pub fn html_sections(
    f: &Figures,
    desk_name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    kinds: &[Kind],
) -> String {
    let mut out = String::new();
    let title = format!("Service report {}", period(from, to));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n\
         <body style=\"margin:0;padding:0;background:#f4f5f7;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
         style=\"background:#f4f5f7;\"><tr><td align=\"center\" style=\"padding:16px 8px;\">\n\
         <table role=\"presentation\" width=\"680\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
         style=\"width:680px;max-width:100%;background:#ffffff;border:1px solid #dde1e6;\
         font-family:{FONT};color:{INK};\">\n\
         <tr><td style=\"padding:20px 24px 4px 24px;\">\
         <h1 style=\"margin:0 0 4px 0;font-size:22px;font-weight:bold;\">Service report</h1>\
         <p style=\"margin:0;font-size:13px;color:{MUTED};\">{desk} &middot; {period} &middot; \
         figures as of {now}</p></td></tr>\n",
        title = esc(&title),
        desk = esc(desk_name),
        period = esc(&period(from, to)),
        now = esc(&f.now.format("%Y-%m-%d %H:%M UTC").to_string()),
    );
    for &kind in kinds {
        let _ = writeln!(
            out,
            "<tr><td style=\"padding:8px 24px 8px 24px;\">\
             <h2 style=\"margin:16px 0 4px 0;font-size:17px;font-weight:bold;\
             border-bottom:2px solid #e4e7eb;padding-bottom:4px;\">{}</h2>\
             <p style=\"margin:0 0 8px 0;font-size:12px;color:{MUTED};\">{}</p>",
            esc(kind.title()),
            esc(kind.explanation())
        );
        let chart = match kind {
            Kind::Sla => sla_chart(f),
            Kind::Volume => volume_chart(f),
            Kind::Backlog => backlog_chart(&f.backlog),
            Kind::Suppliers => supplier_chart(f),
            Kind::Satisfaction => satisfaction_chart(f),
            Kind::Problems | Kind::Changes | Kind::Releases | Kind::Availability => None,
        };
        if let Some(svg) = chart {
            let _ = writeln!(out, "<div style=\"margin:0 0 8px 0;\">{svg}</div>");
        }
        out.push_str(&html_table(f, kind));
        out.push_str("</td></tr>\n");
    }
    let _ = write!(
        out,
        "<tr><td style=\"padding:16px 24px 20px 24px;font-size:11px;color:{MUTED};\">\
         Produced by helpdeskd for {}. Times are UTC.</td></tr>\n\
         </table></td></tr></table>\n</body></html>\n",
        esc(desk_name)
    );
    out
}

fn html_table(f: &Figures, kind: Kind) -> String {
    let rows = rows(f, kind);
    let mut out = String::from(
        "<table role=\"table\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" width=\"100%\" \
         style=\"border-collapse:collapse;font-size:12px;width:100%;\">\n<tr>",
    );
    for (i, (_, h)) in columns(kind).iter().enumerate() {
        let align = if rows.first().is_some_and(|r| r[i].numeric()) {
            "right"
        } else {
            "left"
        };
        let _ = write!(
            out,
            "<th align=\"{align}\" style=\"text-align:{align};padding:4px 6px;\
             border-bottom:1px solid #9aa5b1;font-weight:bold;\">{}</th>",
            esc(h)
        );
    }
    out.push_str("</tr>\n");
    for (n, r) in rows.iter().enumerate() {
        let bg = if n % 2 == 1 { "#f7f9fa" } else { "#ffffff" };
        let _ = write!(out, "<tr style=\"background:{bg};\">");
        for c in r {
            let align = if c.numeric() { "right" } else { "left" };
            let _ = write!(
                out,
                "<td align=\"{align}\" style=\"text-align:{align};padding:3px 6px;\
                 border-bottom:1px solid #e4e7eb;\">{}</td>",
                esc(&c.human())
            );
        }
        out.push_str("</tr>\n");
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{}\" style=\"padding:6px;color:{MUTED};\">{}</td></tr>",
            columns(kind).len(),
            esc(empty_note(kind))
        );
    }
    out.push_str("</table>\n");
    out
}

// ---- charts ------------------------------------------------------------------

/// An SVG element of the given height, the full content width, with a
/// title for screen readers.
struct Svg {
    out: String,
}

impl Svg {
    fn new(height: i64, label: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{l}\" \
             style=\"display:block;max-width:100%;height:auto;\" font-family=\"{FONT}\">\
             <title>{l}</title>",
            l = esc(label)
        );
        Svg { out }
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        if w > 0.0 && h > 0.0 {
            let _ = write!(
                self.out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>"
            );
        }
    }

    fn text(&mut self, x: f64, y: f64, size: u32, anchor: &str, fill: &str, s: &str) {
        let _ = write!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" \
             fill=\"{fill}\">{}</text>",
            esc(s)
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        let _ = write!(
            self.out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{GRID}\" \
             stroke-width=\"1\"/>"
        );
    }

    /// Coloured squares with labels, left to right from `x`.
    fn legend(&mut self, mut x: f64, y: f64, items: &[(&str, &str)]) {
        for (color, label) in items {
            self.rect(x, y - 9.0, 10.0, 10.0, color);
            self.text(x + 14.0, y, 11, "start", INK, label);
            x += 24.0 + 6.5 * label.chars().count() as f64;
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A value axis maximum: 1, 2, 5 times a power of ten, at least `max`.
fn nice_max(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Two stacked bars (response, resolution) per service and priority:
/// met, breached and open as shares of the tickets with a target.
fn sla_chart(f: &Figures) -> Option<String> {
    let rows: Vec<_> = f
        .sla
        .iter()
        .filter(|r| r.response.targeted() + r.resolution.targeted() > 0)
        .collect();
    if rows.is_empty() {
        return None;
    }
    const ROW: f64 = 36.0;
    const TOP: f64 = 26.0;
    let (label_w, sub_w, bar_w) = (190.0, 66.0, 270.0);
    let bar_x = label_w + sub_w;
    let height = TOP + ROW * rows.len() as f64 + 4.0;
    let mut svg = Svg::new(
        height as i64,
        "SLA compliance per service and priority: share of tickets with the target met, breached or open",
    );
    svg.legend(
        0.0,
        14.0,
        &[
            (MET, "met"),
            (BREACHED, "breached"),
            (OPEN, "open, within target"),
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        let y0 = TOP + ROW * i as f64;
        let label = format!(
            "{} / {}",
            r.service.as_deref().unwrap_or(NO_SERVICE),
            r.priority
        );
        svg.text(0.0, y0 + 19.0, 12, "start", INK, &clip(&label, 26));
        for (j, (name, c)) in [("response", &r.response), ("resolution", &r.resolution)]
            .into_iter()
            .enumerate()
        {
            let y = y0 + 3.0 + 15.0 * j as f64;
            svg.text(label_w, y + 10.0, 10, "start", MUTED, name);
            svg.rect(bar_x, y, bar_w, 12.0, "#edf0f2");
            let total = c.targeted();
            if total > 0 {
                let mut x = bar_x;
                for (n, color) in [(c.met, MET), (c.breached, BREACHED), (c.open, OPEN)] {
                    let w = bar_w * n as f64 / total as f64;
                    svg.rect(x, y, w, 12.0, color);
                    x += w;
                }
            }
            let pct = c
                .met_percent
                .map(|p| format!("{} met", fmt_percent(p)))
                .unwrap_or_else(|| "–".into());
            svg.text(bar_x + bar_w + 8.0, y + 10.0, 11, "start", INK, &pct);
        }
    }
    Some(svg.finish())
}

/// Created and resolved tickets per day, side by side.
fn volume_chart(f: &Figures) -> Option<String> {
    if f.volume.is_empty() {
        return None;
    }
    let (left, right, top, bottom) = (40.0, 8.0, 28.0, 28.0);
    let height = 230.0;
    let plot_w = WIDTH as f64 - left - right;
    let plot_h = height - top - bottom;
    let max = nice_max(
        f.volume
            .iter()
            .map(|d| d.created.max(d.resolved))
            .max()
            .unwrap_or(0),
    );
    let mut svg = Svg::new(height as i64, "Tickets created and resolved per day");
    svg.legend(left, 14.0, &[(CREATED, "created"), (RESOLVED, "resolved")]);
    for step in 0..=2u64 {
        let v = max * step / 2;
        let y = top + plot_h - plot_h * v as f64 / max as f64;
        svg.line(left, y, left + plot_w, y);
        svg.text(left - 6.0, y + 4.0, 10, "end", MUTED, &v.to_string());
    }
    let n = f.volume.len();
    let slot = plot_w / n as f64;
    let bar = (slot * 0.4).max(0.5);
    let every = n.div_ceil(12).max(1);
    for (i, d) in f.volume.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.1;
        for (k, (v, color)) in [(d.created, CREATED), (d.resolved, RESOLVED)]
            .into_iter()
            .enumerate()
        {
            let h = plot_h * v as f64 / max as f64;
            svg.rect(x + bar * k as f64, top + plot_h - h, bar, h, color);
        }
        if i % every == 0 {
            svg.text(
                left + slot * (i as f64 + 0.5),
                height - 10.0,
                10,
                "middle",
                MUTED,
                &d.date.format("%m-%d").to_string(),
            );
        }
    }
    Some(svg.finish())
}

/// Open tickets per age bucket.
fn backlog_chart(backlog: &[AgeCount]) -> Option<String> {
    if backlog.is_empty() {
        return None;
    }
    let (left, top, bottom) = (40.0, 20.0, 26.0);
    let height = 190.0;
    let plot_w = WIDTH as f64 - left - 8.0;
    let plot_h = height - top - bottom;
    let max = nice_max(backlog.iter().map(|b| b.tickets).max().unwrap_or(0));
    let mut svg = Svg::new(height as i64, "Open tickets by age");
    svg.line(left, top + plot_h, left + plot_w, top + plot_h);
    let slot = plot_w / backlog.len() as f64;
    for (i, b) in backlog.iter().enumerate() {
        let h = plot_h * b.tickets as f64 / max as f64;
        let x = left + slot * i as f64 + slot * 0.2;
        svg.rect(x, top + plot_h - h, slot * 0.6, h, BACKLOG);
        let cx = left + slot * (i as f64 + 0.5);
        svg.text(
            cx,
            top + plot_h - h - 4.0,
            11,
            "middle",
            INK,
            &b.tickets.to_string(),
        );
        svg.text(cx, height - 8.0, 11, "middle", MUTED, b.age.label());
    }
    Some(svg.finish())
}

/// Per supplier: the share of responses and of resolutions within the
/// contract's targets.
fn supplier_chart(f: &Figures) -> Option<String> {
    if f.suppliers.is_empty() {
        return None;
    }
    const ROW: f64 = 36.0;
    const TOP: f64 = 26.0;
    let (label_w, sub_w, bar_w) = (190.0, 66.0, 270.0);
    let bar_x = label_w + sub_w;
    let height = TOP + ROW * f.suppliers.len() as f64 + 4.0;
    let mut svg = Svg::new(
        height as i64,
        "Supplier performance: share of responses and resolutions within the contract's targets",
    );
    svg.legend(
        0.0,
        14.0,
        &[
            (MET, "within target"),
            (BREACHED, "late (done late or overdue)"),
        ],
    );
    for (i, s) in f.suppliers.iter().enumerate() {
        let y0 = TOP + ROW * i as f64;
        let label = format!("{} ({})", s.supplier, s.escalations);
        svg.text(0.0, y0 + 19.0, 12, "start", INK, &clip(&label, 26));
        for (j, (name, t)) in [("response", &s.response), ("resolution", &s.resolution)]
            .into_iter()
            .enumerate()
        {
            let y = y0 + 3.0 + 15.0 * j as f64;
            svg.text(label_w, y + 10.0, 10, "start", MUTED, name);
            svg.rect(bar_x, y, bar_w, 12.0, "#edf0f2");
            let decided = t.within_target + t.late;
            if decided > 0 {
                let w = bar_w * t.within_target as f64 / decided as f64;
                svg.rect(bar_x, y, w, 12.0, MET);
                svg.rect(bar_x + w, y, bar_w - w, 12.0, BREACHED);
            }
            let pct = t
                .within_target_percent
                .map(|p| format!("{} in time", fmt_percent(p)))
                .unwrap_or_else(|| "–".into());
            svg.text(bar_x + bar_w + 8.0, y + 10.0, 11, "start", INK, &pct);
        }
    }
    Some(svg.finish())
}

/// One stacked bar per row of the satisfaction table (all, each service,
/// each staff member): ratings of 4-5, 3 and 1-2 as shares, and the average.
fn satisfaction_chart(f: &Figures) -> Option<String> {
    let s = &f.satisfaction;
    if s.overall.ratings == 0 {
        return None;
    }
    let mut rows: Vec<(String, &super::satisfaction::Scores)> =
        vec![("all".to_string(), &s.overall)];
    for (name, x) in &s.services {
        let name = name.clone().unwrap_or_else(|| NO_SERVICE.into());
        rows.push((format!("service {name}"), x));
    }
    for (name, x) in &s.staff {
        let name = name.clone().unwrap_or_else(|| "(nobody)".into());
        rows.push((name, x));
    }
    const ROW: f64 = 20.0;
    const TOP: f64 = 26.0;
    let (label_w, bar_w) = (220.0, 300.0);
    let height = TOP + ROW * rows.len() as f64 + 4.0;
    let mut svg = Svg::new(
        height as i64,
        "Customer satisfaction: shares of ratings 4-5, 3 and 1-2, with the average",
    );
    svg.legend(0.0, 14.0, &[(MET, "4-5"), (OPEN, "3"), (BREACHED, "1-2")]);
    for (i, (label, x)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let label = format!("{label} ({})", x.ratings);
        svg.text(0.0, y + 11.0, 12, "start", INK, &clip(&label, 32));
        svg.rect(label_w, y + 1.0, bar_w, 12.0, "#edf0f2");
        if x.ratings > 0 {
            let share = |n: u64| bar_w * n as f64 / x.ratings as f64;
            let neutral = x.ratings - x.satisfied - x.dissatisfied;
            let (w1, w2) = (share(x.satisfied), share(neutral));
            svg.rect(label_w, y + 1.0, w1, 12.0, MET);
            svg.rect(label_w + w1, y + 1.0, w2, 12.0, OPEN);
            svg.rect(
                label_w + w1 + w2,
                y + 1.0,
                share(x.dissatisfied),
                12.0,
                BREACHED,
            );
        }
        let avg = x
            .average
            .map(|a| format!("avg {a:.2}"))
            .unwrap_or_else(|| "–".into());
        svg.text(label_w + bar_w + 8.0, y + 11.0, 11, "start", INK, &avg);
    }
    Some(svg.finish())
}

#[cfg(test)]
mod tests;
