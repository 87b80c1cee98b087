//! release-gate: the gate of a release's deploy (`release.before_deploy`).
//! It vetoes when a change of the release is not approved, when the deploy
//! falls outside the release's planned window, or inside a freeze period of
//! its configuration; every reason that holds is named in one veto.
//!
//! It fails closed: an event it cannot read is an error (retried, then the
//! gate fails and the release is not deployed), never a silent pass.

use chrono::{DateTime, Utc};
use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};
use serde::Deserialize;

/// `[plugins.config.release-gate]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Change states that may be deployed (default: approved, scheduled,
    /// implemented).
    #[serde(default = "default_states")]
    deployable_states: Vec<String>,
    /// Freeze periods: no deploy starts inside one.
    #[serde(default)]
    freeze: Vec<Freeze>,
}

fn default_states() -> Vec<String> {
    ["approved", "scheduled", "implemented"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Freeze {
    name: String,
    /// RFC 3339, e.g. `2026-12-20T00:00:00+01:00`.
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// The `release` data of the gate event (see `plugin_api::hooks`).
#[derive(Debug, Deserialize)]
struct Release {
    number: String,
    deploy_at: DateTime<Utc>,
    window: Option<Window>,
    #[serde(default)]
    changes: Vec<ChangeRef>,
}

#[derive(Debug, Deserialize)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct ChangeRef {
    number: String,
    state: String,
}

struct ReleaseGate {
    config: Config,
}

impl ReleaseGate {
    /// Why the deploy must not go ahead; empty when it may.
    fn reasons(&self, r: &Release) -> Vec<String> {
        let mut out = Vec::new();
        if r.changes.is_empty() {
            out.push(format!("{} has no changes", r.number));
        }
        for c in &r.changes {
            if !self.config.deployable_states.contains(&c.state) {
                out.push(format!("{} is {}, not approved", c.number, c.state));
            }
        }
        match &r.window {
            None => out.push(format!(
                "{} has no planned window (/window START END [ZONE])",
                r.number
            )),
            Some(w) if r.deploy_at < w.start || r.deploy_at >= w.end => out.push(format!(
                "the deploy at {} is outside the release window {} to {}",
                stamp(r.deploy_at),
                stamp(w.start),
                stamp(w.end)
            )),
            Some(_) => {}
        }
        for f in &self.config.freeze {
            if f.start <= r.deploy_at && r.deploy_at < f.end {
                out.push(format!(
                    "the deploy at {} is in the freeze period {:?} ({} to {})",
                    stamp(r.deploy_at),
                    f.name,
                    stamp(f.start),
                    stamp(f.end)
                ));
            }
        }
        out
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl Plugin for ReleaseGate {
    fn metadata() -> Metadata {
        Metadata::new(
            "release-gate",
            env!("CARGO_PKG_VERSION"),
            &[hooks::RELEASE_BEFORE_DEPLOY],
        )
    }

    fn init(config: serde_json::Value) -> Result<Self, String> {
        let config: Config = if config.is_null() {
            Config {
                deployable_states: default_states(),
                freeze: Vec::new(),
            }
        } else {
            serde_json::from_value(config).map_err(|e| format!("configuration: {e}"))?
        };
        if config.deployable_states.is_empty() {
            return Err("deployable_states is empty: nothing could ever be deployed".into());
        }
        for (i, f) in config.freeze.iter().enumerate() {
            if f.end <= f.start {
                return Err(format!("freeze[{i}] ({:?}) ends before it starts", f.name));
            }
        }
        Ok(ReleaseGate { config })
    }

    fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
        if event.hook != hooks::RELEASE_BEFORE_DEPLOY {
            return Ok(Vec::new());
        }
        let release: Release = event
            .data
            .get("release")
            .cloned()
            .ok_or("the event has no release")
            .and_then(|v| serde_json::from_value(v).map_err(|_| "unreadable release"))
            .map_err(|e| format!("release.before_deploy: {e}"))?;
        let reasons = self.reasons(&release);
        Ok(if reasons.is_empty() {
            Vec::new()
        } else {
            vec![Action::Veto {
                reason: reasons.join("; "),
            }]
        })
    }
}

export_plugin!(ReleaseGate);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gate(config: serde_json::Value) -> ReleaseGate {
        ReleaseGate::init(config).expect("init")
    }

    fn event(release: serde_json::Value) -> Event {
        serde_json::from_value(json!({
            "id": 1, "hook": "release.before_deploy", "ticket": null, "release": release,
        }))
        .expect("event")
    }

    fn release(deploy_at: &str, states: &[&str]) -> serde_json::Value {
        json!({
            "number": "REL-000050", "title": "Q4", "manager": "ada@example.test",
            "deploy_at": deploy_at,
            "window": {"start": "2026-12-10T21:00:00Z", "end": "2026-12-11T01:00:00Z", "zone": "Europe/Berlin"},
            "changes": states.iter().enumerate().map(|(i, s)| json!({
                "number": format!("CHG-00004{i}"), "subject": "x", "state": s, "items": []
            })).collect::<Vec<_>>(),
        })
    }

    fn veto(g: &ReleaseGate, e: &Event) -> Option<String> {
        match g.handle(e).expect("handled").as_slice() {
            [] => None,
            [Action::Veto { reason }] => Some(reason.clone()),
            other => panic!("unexpected actions {other:?}"),
        }
    }

    #[test]
    fn an_approved_release_in_its_window_passes() {
        let g = gate(serde_json::Value::Null);
        let e = event(release("2026-12-10T22:00:00Z", &["approved", "scheduled"]));
        assert_eq!(veto(&g, &e), None);
    }

    #[test]
    fn every_reason_is_named() {
        let g = gate(json!({"freeze": [
            {"name": "year end", "start": "2026-12-11T00:00:00Z", "end": "2027-01-04T00:00:00Z"}
        ]}));
        let e = event(release(
            "2026-12-11T03:00:00Z",
            &["approved", "submitted", "rejected"],
        ));
        let why = veto(&g, &e).expect("vetoed");
        for want in [
            "CHG-000041 is submitted, not approved",
            "CHG-000042 is rejected, not approved",
            "outside the release window 2026-12-10 21:00 UTC to 2026-12-11 01:00 UTC",
            "freeze period \"year end\"",
        ] {
            assert!(why.contains(want), "{want:?} not in {why}");
        }
        assert!(!why.contains("CHG-000040"), "{why}");
    }

    #[test]
    fn the_window_end_is_exclusive_and_a_missing_window_vetoes() {
        let g = gate(serde_json::Value::Null);
        let at_end = event(release("2026-12-11T01:00:00Z", &["approved"]));
        assert!(veto(&g, &at_end).is_some());
        let mut r = release("2026-12-10T22:00:00Z", &["approved"]);
        r["window"] = serde_json::Value::Null;
        assert!(
            veto(&g, &event(r))
                .expect("vetoed")
                .contains("no planned window")
        );
        let mut empty = release("2026-12-10T22:00:00Z", &[]);
        empty["changes"] = json!([]);
        assert!(
            veto(&g, &event(empty))
                .expect("vetoed")
                .contains("no changes")
        );
    }

    #[test]
    fn it_fails_closed_and_checks_its_configuration() {
        let g = gate(serde_json::Value::Null);
        let e = event(json!({"number": "REL-1"}));
        assert!(g.handle(&e).is_err(), "no deploy_at: an error, not a pass");
        let other: Event =
            serde_json::from_value(json!({"id": 2, "hook": "ticket.created", "ticket": null}))
                .expect("event");
        assert_eq!(g.handle(&other).expect("ok"), Vec::new());
        for bad in [
            json!({"deployable_states": []}),
            json!({"freeze": [{"name": "x", "start": "2026-12-11T00:00:00Z", "end": "2026-12-10T00:00:00Z"}]}),
            json!({"freeze": [{"name": "x", "start": "soon", "end": "later"}]}),
            json!({"frezze": []}),
        ] {
            assert!(ReleaseGate::init(bad.clone()).is_err(), "{bad}");
        }
    }
}
