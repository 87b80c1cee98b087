use chrono::TimeZone;

use super::*;
use crate::report::figures::{
    AgeBucket, AgeCount, Compliance, DayVolume, Figures, SlaRow, SupplierRow, TimeFigures,
};

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0)
        .single()
        .expect("valid time")
}

/// Figures with names that need escaping and quoting.
fn sample() -> Figures {
    let compliance = |met, breached, open| Compliance {
        met,
        breached,
        open,
        no_target: 0,
        met_percent: Some(if met + breached == 0 {
            0.0
        } else {
            (met as f64 * 1000.0 / (met + breached) as f64).round() / 10.0
        }),
    };
    Figures {
        from: at(1, 0),
        to: at(4, 0),
        now: at(4, 0),
        sla: vec![
            SlaRow {
                service: Some("Mail <Exchange> & \"Co\", EU".into()),
                priority: "urgent".into(),
                tickets: 4,
                response: compliance(3, 1, 0),
                resolution: compliance(2, 1, 1),
            },
            SlaRow {
                service: None,
                priority: "low".into(),
                tickets: 1,
                response: Compliance {
                    no_target: 1,
                    ..Compliance::default()
                },
                resolution: Compliance {
                    no_target: 1,
                    ..Compliance::default()
                },
            },
        ],
        volume: (1..=3)
            .map(|d| DayVolume {
                date: at(d, 0).date_naive(),
                created: u64::from(d) * 2,
                resolved: u64::from(d),
            })
            .collect(),
        backlog: AgeBucket::ALL
            .into_iter()
            .zip([5, 3, 2, 1, 0])
            .map(|(age, tickets)| AgeCount { age, tickets })
            .collect(),
        suppliers: vec![SupplierRow {
            supplier: "Fibre <Co>".into(),
            escalations: 2,
            response: TimeFigures {
                target_secs: Some(4 * 3600),
                done: 2,
                median_secs: Some(5400),
                worst_secs: Some(2 * 86_400 + 3 * 3600),
                within_target: 1,
                late: 1,
                within_target_percent: Some(50.0),
            },
            resolution: TimeFigures::default(),
            open: 1,
        }],
        satisfaction: crate::report::satisfaction::aggregate(
            3,
            &[crate::report::satisfaction::RatingFact {
                id: 1,
                request: "<q1@desk.test>".into(),
                score: 2,
                service: Some("Email".into()),
                assignee: Some("ann@example.test".into()),
            }],
        ),
        processes: crate::report::processes::Processes {
            changes: crate::report::processes::change_figures(
                &[
                    ("implemented".into(), String::new()),
                    ("failed".into(), String::new()),
                ],
                &[],
            ),
            availability: vec![crate::domain::outage::Availability {
                service: "Mail <Exchange>".into(),
                outages: 1,
                down_secs: 3600,
                period_secs: 3 * 86_400,
                percent: 100.0 * (3.0 * 86_400.0 - 3600.0) / (3.0 * 86_400.0),
            }],
            ..Default::default()
        },
    }
}

#[test]
fn html_has_four_sections_with_svg_charts_and_tables() {
    let f = sample();
    let html = html(&f, "ACME <Desk>", f.from, f.to);
    for kind in Kind::ALL {
        assert!(
            html.contains(&format!(">{}</h2>", kind.title())),
            "{kind:?}"
        );
    }
    assert_eq!(
        html.matches("<svg ").count(),
        5,
        "one chart per section but the process sections"
    );
    assert_eq!(html.matches("</svg>").count(), 5);
    assert!(html.contains("avg 2.00"), "the satisfaction chart");
    assert!(
        html.matches("<table role=\"table\"").count() == Kind::ALL.len(),
        "a table per section"
    );
    assert!(html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    for banned in [
        "<script", "src=", "href=", "<link", "<style", "class=", "url(",
    ] {
        assert!(!html.contains(banned), "{banned} in the mail body");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert!(
        html.contains("2026-11-01 – 2026-11-03"),
        "the period, end inclusive"
    );
}

#[test]
fn html_escapes_every_text() {
    let f = sample();
    let html = html(&f, "ACME <Desk>", f.from, f.to);
    assert!(html.contains("ACME &lt;Desk&gt;"));
    assert!(html.contains("Mail &lt;Exchange&gt; &amp; &quot;Co&quot;, EU"));
    assert!(html.contains("Fibre &lt;Co&gt;"));
    for raw in ["<Desk>", "<Exchange>", "<Co>", "& \""] {
        assert!(!html.contains(raw), "unescaped {raw:?}");
    }
    assert_eq!(esc("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
}

#[test]
fn html_without_figures_has_no_empty_charts() {
    let mut f = sample();
    f.sla.clear();
    f.volume.clear();
    f.suppliers.clear();
    f.satisfaction = Default::default();
    let html = html_sections(&f, "Desk", f.from, f.to, &Kind::ALL);
    assert_eq!(html.matches("<svg ").count(), 1, "only the backlog chart");
    assert!(html.contains("(no ratings in the period)"));
    assert!(html.contains("(no tickets created in the period)"));
    let one = html_sections(&f, "Desk", f.from, f.to, &[Kind::Backlog]);
    assert!(one.contains(">Backlog by age</h2>") && !one.contains(">SLA compliance</h2>"));
}

#[test]
fn csv_has_a_header_and_one_line_per_row() {
    let f = sample();
    let volume = csv(&f, Kind::Volume);
    assert_eq!(
        volume,
        "date,created,resolved\n2026-11-01,2,1\n2026-11-02,4,2\n2026-11-03,6,3\n"
    );
    let backlog = csv(&f, Kind::Backlog);
    assert_eq!(
        backlog,
        "age,open_tickets\n<1d,5\n1-3d,3\n3-7d,2\n7-30d,1\n>30d,0\n"
    );
    let sla = csv(&f, Kind::Sla);
    let lines: Vec<_> = sla.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("service,priority,tickets,response_met,"));
    assert_eq!(
        lines[1], "\"Mail <Exchange> & \"\"Co\"\", EU\",urgent,4,3,1,0,0,75,2,1,1,0,66.7",
        "quoted name; raw numbers"
    );
    assert_eq!(lines[2], "(no service),low,1,0,0,0,1,,0,0,0,1,");
    let suppliers = csv(&f, Kind::Suppliers);
    let lines: Vec<_> = suppliers.lines().collect();
    assert_eq!(lines[1], "Fibre <Co>,2,2,5400,183600,14400,50,0,,,,,1");
    for kind in Kind::ALL {
        let text = csv(&f, kind);
        let widths: Vec<usize> = text.lines().map(|l| fields(l).len()).collect();
        assert!(
            widths.iter().all(|w| *w == widths[0]),
            "{kind:?}: {widths:?}"
        );
    }
}

/// Counts the fields of a CSV line (quotes respected).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("a field").push(c),
        }
    }
    out
}

#[test]
fn table_aligns_columns_and_formats_for_people() {
    let f = sample();
    let t = table(&f, Kind::Suppliers);
    let lines: Vec<_> = t.lines().collect();
    assert!(lines[0].starts_with("supplier    escalations"), "{t}");
    assert!(lines[1].starts_with("----------  -----------"), "{t}");
    assert!(
        lines[2].contains("1h 30m") && lines[2].contains("2d 3h"),
        "{t}"
    );
    assert!(lines[2].contains("50%"), "{t}");
    let volume = table(&f, Kind::Volume);
    assert_eq!(
        volume.lines().nth(2),
        Some("2026-11-01        2         1"),
        "{volume}"
    );
    let mut empty = f.clone();
    empty.sla.clear();
    assert!(table(&empty, Kind::Sla).contains("(no tickets created in the period)"));
}

#[test]
fn json_holds_the_period_and_one_section() {
    let f = sample();
    let v: serde_json::Value = serde_json::from_str(&json(&f, Kind::Backlog)).expect("JSON");
    assert_eq!(v["from"], "2026-11-01T00:00:00Z");
    assert_eq!(v["backlog"][4]["age"], ">30d");
    assert_eq!(v["backlog"][0]["tickets"], 5);
    assert!(v.get("sla").is_none());
    let v: serde_json::Value = serde_json::from_str(&json(&f, Kind::Sla)).expect("JSON");
    assert_eq!(v["sla"][0]["response"]["met_percent"], 75.0);
    assert_eq!(v["sla"][1]["service"], serde_json::Value::Null);
}

#[test]
fn text_summary_counts_and_tables() {
    let f = sample();
    let t = text(&f, "ACME");
    assert!(
        t.starts_with("Service report of ACME, 2026-11-01 – 2026-11-03\n"),
        "{t}"
    );
    assert!(t.contains("response 3 of 4 met (75%)"), "{t}");
    assert!(t.contains("12 ticket(s) created, 6 resolved"), "{t}");
    assert!(
        t.contains("Backlog: 11 open ticket(s) (<1d 5, 1-3d 3"),
        "{t}"
    );
    for kind in Kind::ALL {
        assert!(t.contains(kind.title()));
    }
}

#[test]
fn formats_for_people() {
    assert_eq!(fmt_secs(42), "42s");
    assert_eq!(fmt_secs(0), "0s");
    assert_eq!(fmt_secs(600), "10m");
    assert_eq!(fmt_secs(7200), "2h");
    assert_eq!(fmt_secs(7500), "2h 5m");
    assert_eq!(fmt_secs(86_400 * 3 + 60), "3d");
    assert_eq!(fmt_secs(86_400 + 3 * 3600), "1d 3h");
    assert_eq!(fmt_percent(100.0), "100%");
    assert_eq!(fmt_percent(66.7), "66.7%");
    assert_eq!(period(at(1, 0), at(2, 0)), "2026-11-01");
    assert_eq!(
        period(at(1, 7), at(8, 7)),
        "2026-11-01 07:00 – 2026-11-08 07:00 UTC"
    );
    assert_eq!("Volume".parse::<Kind>(), Ok(Kind::Volume));
    assert!("chart".parse::<Kind>().is_err());
    assert_eq!(nice_max(0), 1);
    assert_eq!(nice_max(7), 10);
    assert_eq!(nice_max(11), 20);
    assert_eq!(nice_max(200), 200);
}

#[test]
fn the_process_sections_show_their_figures() {
    let f = sample();
    let changes = table(&f, Kind::Changes);
    assert!(changes.contains("success %"), "{changes}");
    assert!(changes.contains("50%"), "{changes}");
    let avail = table(&f, Kind::Availability);
    assert!(avail.contains("Mail <Exchange>"), "{avail}");
    assert!(avail.contains("1h"), "{avail}");
    assert!(avail.contains("98.6%"), "{avail}");
    assert!(
        csv(&f, Kind::Availability).starts_with("service,outages,down_secs,availability_percent\n")
    );
    let j: serde_json::Value = serde_json::from_str(&json(&f, Kind::Releases)).expect("json");
    assert_eq!(j["releases"]["deployed"], 0);
    let t = text(&f, "ACME");
    assert!(
        t.contains("- Changes: 0 submitted, 1 implemented, 1 failed (50% success)"),
        "{t}"
    );
    assert!(
        t.contains("- Availability: lowest Mail <Exchange> at 98.6%."),
        "{t}"
    );
}

#[test]
fn satisfaction_rows_all_then_services_then_staff() {
    let f = sample();
    let csv = csv(&f, Kind::Satisfaction);
    assert_eq!(
        csv,
        "by,name,ratings,average,satisfied,satisfied_percent,dissatisfied\n\
         all,(all),1,2,0,0,1\n\
         service,Email,1,2,0,0,1\n\
         staff,ann@example.test,1,2,0,0,1\n"
    );
    let t = table(&f, Kind::Satisfaction);
    assert!(
        t.lines()
            .nth(2)
            .is_some_and(|l| l.contains("2.00") && l.contains("0%")),
        "{t}"
    );
    let text = text(&f, "ACME");
    assert!(
        text.contains(
            "- Satisfaction: 1 rating(s) to 3 question(s) sent, average 2.00, 0% rated 4 or 5."
        ),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&json(&f, Kind::Satisfaction)).expect("JSON");
    assert_eq!(v["satisfaction"]["overall"]["average"], 2.0);
    assert_eq!(v["satisfaction"]["asked"], 3);
}
