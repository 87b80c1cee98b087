//! supplier-scorecard: turns a supplier review (`supplier.review_due`) into a
//! score from 0 to 100 and a recommendation — renew, renew with an
//! improvement plan, escalate to vendor management, or replace — and writes
//! them on the review ticket: an internal note with the breakdown and the
//! custom fields `supplier_score` and `supplier_recommendation`.
//!
//! The rule (weights and thresholds from `[plugins.config.supplier-scorecard]`,
//! see README.md) is the pure function [`score`]; [`note`] writes it up.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};
use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Relative weights of the three shares of the period's escalations.
    pub weights: Weights,
    /// Points off per escalation still open (of any period).
    pub open_item_penalty: u32,
    /// At most this many points off for open items.
    pub open_item_penalty_max: u32,
    /// Lowest scores of the recommendations; below `escalate`: replace.
    pub thresholds: Thresholds,
    /// A contract that ends within this many days (or has ended) leaves no
    /// time for an escalation to vendor management: that band recommends
    /// replacing the supplier instead.
    pub contract_notice_days: i64,
}

/// Relative weights; they need not add up to 100.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Share of escalations answered within the response target.
    pub response: u32,
    /// Share of escalations resolved within the resolution target.
    pub resolution: u32,
    /// Share of escalations that missed no target.
    pub no_breach: u32,
}

/// The lowest score of each recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// At least this: "renew".
    pub renew: u32,
    /// At least this: "renew with improvement plan".
    pub improvement_plan: u32,
    /// At least this: "escalate to vendor management"; below: "replace".
    pub escalate: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            weights: Weights::default(),
            open_item_penalty: 5,
            open_item_penalty_max: 20,
            thresholds: Thresholds::default(),
            contract_notice_days: 60,
        }
    }
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            response: 40,
            resolution: 40,
            no_breach: 20,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            renew: 80,
            improvement_plan: 60,
            escalate: 40,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), String> {
        let w = &self.weights;
        if u64::from(w.response) + u64::from(w.resolution) + u64::from(w.no_breach) == 0 {
            return Err("weights: at least one weight must be above 0".into());
        }
        let t = &self.thresholds;
        for (name, v) in [
            ("renew", t.renew),
            ("improvement_plan", t.improvement_plan),
            ("escalate", t.escalate),
        ] {
            if v > 100 {
                return Err(format!("thresholds.{name}: {v} is above 100"));
            }
        }
        if !(t.renew >= t.improvement_plan && t.improvement_plan >= t.escalate) {
            return Err(format!(
                "thresholds: need renew >= improvement_plan >= escalate, got {} / {} / {}",
                t.renew, t.improvement_plan, t.escalate
            ));
        }
        if self.contract_notice_days < 0 {
            return Err("contract_notice_days: must not be negative".into());
        }
        Ok(())
    }
}

/// The review figures as the desk sends them (`supplier.figures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Escalations made in the period.
    pub escalated: u64,
    /// Of those, answered by the supplier.
    pub responded: u64,
    /// Answered within the response target.
    pub responded_in_target: u64,
    /// Resolved.
    pub resolved: u64,
    /// Resolved within the resolution target.
    pub resolved_in_target: u64,
    /// Escalations that missed a target (late, or open past it).
    pub breaches: u64,
    /// The supplier's unresolved escalations of any period.
    pub open_items: Vec<String>,
    /// Days until the contract ends, when within 90 days (negative: ended).
    pub contract_ends_in_days: Option<i64>,
}

/// What a supplier review comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No escalations in the period: nothing to score.
    NoEscalations,
    /// A score and what it recommends.
    Scored(Score),
}

/// A score with its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// 0–100.
    pub score: u32,
    /// The shares, in order: responses, resolutions, without breach.
    pub parts: [Part; 3],
    /// Points off for open items.
    pub penalty: u32,
    /// The recommendation.
    pub recommendation: &'static str,
    /// The contract's end turned an escalation into a replacement.
    pub contract_rule: bool,
}

/// One weighted share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What is counted.
    pub label: &'static str,
    /// How many of `of`.
    pub n: u64,
    /// Escalations in the period.
    pub of: u64,
    /// The part's weight.
    pub weight: u32,
}

/// The recommendations, best first.
pub const RENEW: &str = "renew";
/// Renew, with a plan to fix what the figures show.
pub const IMPROVE: &str = "renew with improvement plan";
/// Hand the supplier to vendor management.
pub const ESCALATE: &str = "escalate to vendor management";
/// Look for another supplier.
pub const REPLACE: &str = "replace";

/// Scores the figures. The rule:
///
/// - each share (responses within target, resolutions within target,
///   escalations without a breach, all of the period's escalations) counts
///   with its weight: `base = 100 × Σ(weight × share) / Σ weights`, rounded
///   half up;
/// - each open item costs `open_item_penalty` points, at most
///   `open_item_penalty_max`; the score does not go below 0;
/// - the score's band gives the recommendation (`thresholds`), except that a
///   contract ending within `contract_notice_days` (or ended) turns
///   "escalate to vendor management" into "replace";
/// - no escalations in the period: no score.
pub fn score(config: &Config, f: &Figures) -> Outcome {
    let of = f.escalated;
    if of == 0 {
        return Outcome::NoEscalations;
    }
    let w = &config.weights;
    let part = |label, n: u64, weight| Part {
        label,
        n: n.min(of),
        of,
        weight,
    };
    let parts = [
        part("responses within target", f.responded_in_target, w.response),
        part(
            "resolutions within target",
            f.resolved_in_target,
            w.resolution,
        ),
        part(
            "escalations without breach",
            of - f.breaches.min(of),
            w.no_breach,
        ),
    ];
    let num: u64 = 100 * parts.iter().map(|p| u64::from(p.weight) * p.n).sum::<u64>();
    let den: u64 = of * parts.iter().map(|p| u64::from(p.weight)).sum::<u64>();
    let base = (2 * num + den) / (2 * den).max(1);
    let open = u64::try_from(f.open_items.len()).unwrap_or(u64::MAX);
    let penalty = open
        .saturating_mul(u64::from(config.open_item_penalty))
        .min(u64::from(config.open_item_penalty_max));
    let score = u32::try_from(base.saturating_sub(penalty).min(100)).unwrap_or(100);
    let t = &config.thresholds;
    let band = if score >= t.renew {
        RENEW
    } else if score >= t.improvement_plan {
        IMPROVE
    } else if score >= t.escalate {
        ESCALATE
    } else {
        REPLACE
    };
    let ending = f
        .contract_ends_in_days
        .is_some_and(|d| d <= config.contract_notice_days);
    let contract_rule = band == ESCALATE && ending;
    Outcome::Scored(Score {
        score,
        parts,
        penalty: u32::try_from(penalty).unwrap_or(u32::MAX),
        recommendation: if contract_rule { REPLACE } else { band },
        contract_rule,
    })
}

/// The internal note for the review ticket.
pub fn note(
    config: &Config,
    supplier: &str,
    period: &str,
    f: &Figures,
    outcome: &Outcome,
) -> String {
    let mut s = match outcome {
        Outcome::NoEscalations => format!(
            "supplier-scorecard: no escalations to {supplier} in the period {period}: no score.\n"
        ),
        Outcome::Scored(sc) => {
            let total: u32 = sc.parts.iter().map(|p| p.weight).sum();
            let mut s = format!(
                "supplier-scorecard: {supplier} scores {}/100 for {period}.\n\
                 Recommendation: {}\n\nBreakdown:\n",
                sc.score, sc.recommendation
            );
            for p in &sc.parts {
                let points =
                    f64::from(p.weight) * 100.0 * p.n as f64 / (p.of as f64 * f64::from(total));
                s.push_str(&format!(
                    "  {:<28} {:>3}/{:<3} {:>3}%  weight {:>3}  {:>5.1} points\n",
                    p.label,
                    p.n,
                    p.of,
                    p.n * 100 / p.of,
                    p.weight,
                    points
                ));
            }
            s.push_str(&format!(
                "  {:<28} {:>3}      {} each, at most {}: -{} points\n",
                "open items",
                f.open_items.len(),
                config.open_item_penalty,
                config.open_item_penalty_max,
                sc.penalty
            ));
            s.push_str(&format!(
                "  {:<28} {:>3}/100\n",
                "score (rounded)", sc.score
            ));
            let t = &config.thresholds;
            s.push_str(&format!(
                "\nBands: renew from {}, renew with improvement plan from {}, \
                 escalate to vendor management from {}, replace below.\n",
                t.renew, t.improvement_plan, t.escalate
            ));
            s
        }
    };
    if matches!(outcome, Outcome::NoEscalations) && !f.open_items.is_empty() {
        s.push_str(&format!(
            "Still open from earlier periods: {}.\n",
            f.open_items.join(", ")
        ));
    }
    if let Some(days) = f.contract_ends_in_days {
        let when = if days < 0 {
            format!("The contract ended {} days ago", -days)
        } else {
            format!("The contract ends in {days} days")
        };
        match outcome {
            Outcome::Scored(sc) if sc.contract_rule => s.push_str(&format!(
                "{when}: no time to escalate to vendor management \
                 (notice {} days), so the recommendation is {REPLACE}.\n",
                config.contract_notice_days
            )),
            Outcome::Scored(_) => {
                s.push_str(&format!("{when}: the recommendation is for the renewal.\n"))
            }
            Outcome::NoEscalations => s.push_str(&format!("{when}: decide on renewal.\n")),
        }
    }
    s
}

struct SupplierScorecard {
    config: Config,
}

impl Plugin for SupplierScorecard {
    fn metadata() -> Metadata {
        Metadata::new(
            "supplier-scorecard",
            env!("CARGO_PKG_VERSION"),
            &[hooks::SUPPLIER_REVIEW_DUE],
        )
    }

    fn init(config: serde_json::Value) -> Result<Self, String> {
        let config: Config = if config.is_null() {
            Config::default()
        } else {
            serde_json::from_value(config).map_err(|e| e.to_string())?
        };
        config.check()?;
        Ok(SupplierScorecard { config })
    }

    fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
        if event.hook != hooks::SUPPLIER_REVIEW_DUE {
            return Ok(Vec::new());
        }
        let supplier = event
            .data
            .get("supplier")
            .ok_or("supplier.review_due without \"supplier\"")?;
        let figures: Figures = serde_json::from_value(
            supplier
                .get("figures")
                .cloned()
                .ok_or("supplier.review_due without \"supplier.figures\"")?,
        )
        .map_err(|e| format!("supplier.figures: {e}"))?;
        let name = supplier["name"].as_str().unwrap_or("the supplier");
        let date = |key: &str| {
            let d = supplier[key].as_str().unwrap_or("?");
            d.get(..10).unwrap_or(d).to_string()
        };
        let period = format!("{} to {}", date("from"), date("to"));
        let outcome = score(&self.config, &figures);
        let mut actions = vec![Action::AddNote {
            text: note(&self.config, name, &period, &figures, &outcome),
        }];
        if let Outcome::Scored(sc) = &outcome {
            actions.push(Action::SetField {
                name: "supplier_score".into(),
                value: sc.score.to_string(),
            });
            actions.push(Action::SetField {
                name: "supplier_recommendation".into(),
                value: sc.recommendation.into(),
            });
        }
        Ok(actions)
    }
}

export_plugin!(SupplierScorecard);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn figures(escalated: u64, response: u64, resolution: u64, breaches: u64) -> Figures {
        Figures {
            escalated,
            responded: response,
            responded_in_target: response,
            resolved: resolution,
            resolved_in_target: resolution,
            breaches,
            ..Figures::default()
        }
    }

    fn scored(config: &Config, f: &Figures) -> Score {
        match score(config, f) {
            Outcome::Scored(s) => s,
            Outcome::NoEscalations => panic!("no score for {f:?}"),
        }
    }

    /// Only the response share counts: the score is its percentage.
    fn response_only() -> Config {
        Config {
            weights: Weights {
                response: 1,
                resolution: 0,
                no_breach: 0,
            },
            ..Config::default()
        }
    }

    #[test]
    fn default_weights_combine_the_shares() {
        let c = Config::default();
        assert_eq!(scored(&c, &figures(4, 4, 4, 0)).score, 100);
        assert_eq!(scored(&c, &figures(4, 0, 0, 4)).score, 0);
        // 40 × 3/4 + 40 × 2/4 + 20 × 2/4 = 30 + 20 + 10
        let s = scored(&c, &figures(4, 3, 2, 2));
        assert_eq!((s.score, s.recommendation), (60, IMPROVE));
        assert_eq!(
            s.parts.iter().map(|p| (p.n, p.of)).collect::<Vec<_>>(),
            [(3, 4), (2, 4), (2, 4)]
        );
    }

    #[test]
    fn thresholds_are_inclusive_lower_bounds() {
        let c = response_only();
        for (n, want) in [
            (100, RENEW),
            (80, RENEW),
            (79, IMPROVE),
            (60, IMPROVE),
            (59, ESCALATE),
            (40, ESCALATE),
            (39, REPLACE),
            (0, REPLACE),
        ] {
            let s = scored(&c, &figures(100, n, 0, 0));
            assert_eq!((s.score, s.recommendation), (n as u32, want), "{n}");
        }
    }

    #[test]
    fn rounding_is_half_up_and_counts_are_capped() {
        let c = response_only();
        assert_eq!(scored(&c, &figures(8, 1, 0, 0)).score, 13, "12.5");
        assert_eq!(scored(&c, &figures(3, 1, 0, 0)).score, 33, "33.3");
        assert_eq!(scored(&c, &figures(3, 2, 0, 0)).score, 67, "66.7");
        assert_eq!(scored(&c, &figures(2, 5, 0, 0)).score, 100, "capped");
        let s = scored(&Config::default(), &figures(2, 2, 2, 7));
        assert_eq!(s.score, 80, "more breaches than escalations count as all");
    }

    #[test]
    fn open_items_cost_points_up_to_the_cap() {
        let c = Config::default();
        let mut f = figures(2, 2, 2, 0);
        f.open_items = vec!["INC-1".into()];
        assert_eq!(scored(&c, &f).score, 95);
        f.open_items = (0..10).map(|i| format!("INC-{i}")).collect();
        let s = scored(&c, &f);
        assert_eq!((s.score, s.penalty), (80, 20));
        let mut f = figures(2, 0, 0, 2);
        f.open_items = vec!["INC-1".into()];
        assert_eq!(scored(&c, &f).score, 0, "never below 0");
    }

    #[test]
    fn no_escalations_give_no_score_but_a_note() {
        let c = Config::default();
        let mut f = figures(0, 0, 0, 0);
        f.open_items = vec!["INC-000007".into()];
        f.contract_ends_in_days = Some(20);
        assert_eq!(score(&c, &f), Outcome::NoEscalations);
        let n = note(
            &c,
            "NetCo",
            "2026-11-01 to 2026-11-08",
            &f,
            &Outcome::NoEscalations,
        );
        assert!(
            n.contains("no escalations to NetCo in the period 2026-11-01 to 2026-11-08: no score")
                && n.contains("Still open from earlier periods: INC-000007")
                && n.contains("ends in 20 days: decide on renewal"),
            "{n}"
        );
    }

    #[test]
    fn a_contract_ending_leaves_no_time_to_escalate() {
        let c = response_only();
        let mut f = figures(100, 50, 0, 0);
        for (days, want) in [
            (None, ESCALATE),
            (Some(61), ESCALATE),
            (Some(60), REPLACE),
            (Some(0), REPLACE),
            (Some(-3), REPLACE),
        ] {
            f.contract_ends_in_days = days;
            let s = scored(&c, &f);
            assert_eq!(s.recommendation, want, "{days:?}");
            assert_eq!(s.contract_rule, want == REPLACE);
        }
        let n = note(&c, "NetCo", "p", &f, &score(&c, &f));
        assert!(
            n.contains("The contract ended 3 days ago: no time to escalate")
                && n.contains("recommendation is replace"),
            "{n}"
        );
        // Other bands stay what they are; the note says it is the renewal.
        f = figures(100, 90, 0, 0);
        f.contract_ends_in_days = Some(10);
        let s = score(&c, &f);
        assert!(matches!(&s, Outcome::Scored(s) if s.recommendation == RENEW));
        assert!(
            note(&c, "NetCo", "p", &f, &s)
                .contains("ends in 10 days: the recommendation is for the renewal")
        );
    }

    fn review_event(figures: serde_json::Value) -> Event {
        serde_json::from_value(json!({
            "id": 9, "hook": "supplier.review_due",
            "ticket": {"number": "REQ-000002", "kind": "request", "status": "new",
                       "priority": "normal", "subject": "Supplier review: NetCo",
                       "assignee": "ada@example.test", "group": null,
                       "customer": "ada@example.test", "mailbox": null,
                       "fields": {"supplier": "NetCo"}},
            "message": null, "changes": [],
            "supplier": {"name": "NetCo", "from": "2026-11-19T08:00:00+00:00",
                         "to": "2026-11-26T08:00:00+00:00",
                         "response_target_minutes": 120, "resolution_target_minutes": 480,
                         "figures": figures},
        }))
        .expect("event")
    }

    #[test]
    fn the_review_ticket_gets_a_note_and_two_fields() {
        let p = SupplierScorecard::init(serde_json::Value::Null).expect("defaults");
        let e = review_event(json!({
            "escalated": 1, "responded": 1, "responded_in_target": 1, "resolved": 0,
            "resolved_in_target": 0, "breaches": 1, "median_response_minutes": 60,
            "worst_response_minutes": 60, "open_items": ["INC-000001"],
            "contract_ends_in_days": 45,
        }));
        let a = p.handle(&e).expect("handled");
        assert_eq!(a.len(), 3, "{a:?}");
        let Action::AddNote { text } = &a[0] else {
            panic!("{a:?}")
        };
        assert!(
            text.starts_with("supplier-scorecard: NetCo scores 35/100 for 2026-11-19 to 2026-11-26.\nRecommendation: replace\n"),
            "{text}"
        );
        assert!(
            text.contains("responses within target        1/1   100%  weight  40   40.0 points"),
            "{text}"
        );
        assert!(
            text.contains("open items                     1      5 each, at most 20: -5 points"),
            "{text}"
        );
        assert_eq!(
            a[1..],
            [
                Action::SetField {
                    name: "supplier_score".into(),
                    value: "35".into()
                },
                Action::SetField {
                    name: "supplier_recommendation".into(),
                    value: "replace".into()
                },
            ]
        );
        assert_eq!(
            p.handle(&e).expect("again"),
            a,
            "the same event, the same actions"
        );

        let none = p
            .handle(&review_event(json!({"escalated": 0, "open_items": []})))
            .expect("handled");
        assert!(
            matches!(&none[..], [Action::AddNote { text }] if text.contains("no score")),
            "{none:?}"
        );
        let mut other = e.clone();
        other.hook = hooks::TICKET_CREATED.into();
        assert!(p.handle(&other).expect("ignored").is_empty());
        let mut bare = e;
        bare.data.clear();
        assert!(
            p.handle(&bare).is_err(),
            "an event without figures is an error"
        );
    }

    #[test]
    fn configuration_is_read_and_checked() {
        let p = SupplierScorecard::init(json!({
            "weights": {"response": 1, "resolution": 1, "no_breach": 0},
            "open_item_penalty": 0,
            "thresholds": {"renew": 90},
            "contract_notice_days": 30,
        }))
        .expect("valid");
        assert_eq!(p.config.weights.no_breach, 0);
        assert_eq!(p.config.thresholds.improvement_plan, 60, "defaults fill in");
        assert_eq!(p.config.open_item_penalty_max, 20);
        for (config, want) in [
            (
                json!({"weights": {"response": 0, "resolution": 0, "no_breach": 0}}),
                "at least one weight",
            ),
            (json!({"thresholds": {"renew": 101}}), "above 100"),
            (
                json!({"thresholds": {"renew": 50, "improvement_plan": 60}}),
                "renew >= improvement_plan",
            ),
            (json!({"weights": {"response": -1}}), "invalid value"),
            (json!({"contract_notice_days": -1}), "negative"),
            (json!({"weight": {}}), "unknown field"),
        ] {
            let err = SupplierScorecard::init(config).err().expect("refused");
            assert!(err.contains(want), "{err}");
        }
    }
}
