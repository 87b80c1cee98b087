//! `[[item]]`, `[[cab]]`, `[[freeze]]` and `[changes]`: configuration items
//! and change management (README "Changes and configuration items").
//!
//! Every `[[service]]` is also a configuration item of kind service; an
//! `[[item]]` of kind service with the same name adds its relations, and an
//! `[[item]]` of another kind may not take a service's name.

use serde::Deserialize;
use toml::Spanned;

use super::{RawConfig, Validator};
use crate::domain::changes::window::parse_instant;
use crate::domain::changes::{Cab, Catalog, Config, Freeze, Item, ItemKind, Quorum};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawItem {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawQuorum {
    Word(String),
    Number(i64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCab {
    name: Spanned<String>,
    approvers: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
    #[serde(default)]
    risk: Vec<Spanned<String>>,
    quorum: Spanned<RawQuorum>,
    #[serde(default = "default_deadline")]
    deadline_hours: Spanned<i64>,
}

fn default_deadline() -> Spanned<i64> {
    Spanned::new(0..0, 48)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreeze {
    name: Spanned<String>,
    start: Spanned<String>,
    end: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChanges {
    manager: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
}

impl Validator<'_> {
    pub(super) fn changes(&mut self, raw: &RawConfig) -> Config {
        let mut out = Config::default();
        if let Some(z) = &raw.changes.zone {
            match crate::domain::sla::calendar::parse_zone(z.get_ref()) {
                Ok(zone) => out.zone = zone,
                Err(e) => self.problem(Some(z.span()), "changes.zone", e),
            }
        }
        out.manager = raw
            .changes
            .manager
            .as_ref()
            .map(|m| self.address(m, "changes.manager"));
        out.catalog = self.catalog(raw);
        let services: Vec<String> = out
            .catalog
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Service)
            .map(|i| i.name.clone())
            .collect();
        for (i, c) in raw.cab.iter().enumerate() {
            let key = format!("cab[{i}]");
            let name = c.name.get_ref().trim().to_string();
            if name.is_empty() {
                self.problem(
                    Some(c.name.span()),
                    &format!("{key}.name"),
                    "is empty".into(),
                );
            } else if out
                .cabs
                .iter()
                .any(|b: &Cab| b.name.eq_ignore_ascii_case(&name))
            {
                self.problem(
                    Some(c.name.span()),
                    &format!("{key}.name"),
                    format!("a [[cab]] named {name:?} exists already"),
                );
            }
            let approvers: Vec<_> = c
                .approvers
                .get_ref()
                .iter()
                .map(|a| self.address(a, &format!("{key}.approvers")))
                .collect();
            if approvers.is_empty() {
                self.problem(
                    Some(c.approvers.span()),
                    &format!("{key}.approvers"),
                    "a board needs at least one approver".into(),
                );
            }
            for s in &c.services {
                if !services.iter().any(|x| x.eq_ignore_ascii_case(s.get_ref())) {
                    self.problem(
                        Some(s.span()),
                        &format!("{key}.services"),
                        format!(
                            "no service is named {:?} (known: {})",
                            s.get_ref(),
                            services.join(", ")
                        ),
                    );
                }
            }
            let mut risk = Vec::new();
            for r in &c.risk {
                match r.get_ref().parse() {
                    Ok(x) => risk.push(x),
                    Err(e) => self.problem(Some(r.span()), &format!("{key}.risk"), e),
                }
            }
            let quorum = match c.quorum.get_ref() {
                RawQuorum::Word(w) => w.parse::<Quorum>(),
                RawQuorum::Number(n) => u32::try_from(*n)
                    .map_err(|_| format!("expected 1 or more approvers, got {n}"))
                    .and_then(|n| n.to_string().parse()),
            };
            let quorum = match quorum {
                Ok(Quorum::AtLeast(n)) if n as usize > approvers.len() => {
                    self.problem(
                        Some(c.quorum.span()),
                        &format!("{key}.quorum"),
                        format!(
                            "a quorum of {n} needs at least {n} approvers; the board has {}",
                            approvers.len()
                        ),
                    );
                    Quorum::All
                }
                Ok(q) => q,
                Err(e) => {
                    self.problem(Some(c.quorum.span()), &format!("{key}.quorum"), e);
                    Quorum::All
                }
            };
            let deadline = self.int_in(
                &c.deadline_hours,
                &format!("{key}.deadline_hours"),
                1,
                24 * 365,
            );
            out.cabs.push(Cab {
                name,
                approvers,
                services: c
                    .services
                    .iter()
                    .map(|s| s.get_ref().trim().to_string())
                    .collect(),
                risk,
                quorum,
                deadline_hours: deadline as u32,
            });
        }
        for (i, f) in raw.freeze.iter().enumerate() {
            let key = format!("freeze[{i}]");
            let at = |v: &Spanned<String>, what: &str, this: &mut Self| {
                parse_instant(v.get_ref(), out.zone).map_err(|e| {
                    this.problem(Some(v.span()), &format!("{key}.{what}"), e);
                })
            };
            let (Ok(start), Ok(end)) = (at(&f.start, "start", self), at(&f.end, "end", self))
            else {
                continue;
            };
            if end <= start {
                self.problem(
                    Some(f.end.span()),
                    &format!("{key}.end"),
                    "the freeze ends before it starts".into(),
                );
                continue;
            }
            out.freezes.push(Freeze {
                name: f.name.get_ref().trim().to_string(),
                start,
                end,
            });
        }
        out
    }

    fn catalog(&mut self, raw: &RawConfig) -> Catalog {
        let mut items: Vec<Item> = raw
            .service
            .iter()
            .map(|s| Item {
                name: s.name.get_ref().trim().to_string(),
                kind: ItemKind::Service,
                depends_on: Vec::new(),
            })
            .collect();
        for (i, it) in raw.item.iter().enumerate() {
            let key = format!("item[{i}]");
            let name = it.name.get_ref().trim().to_string();
            if name.is_empty() || name.contains(char::is_whitespace) {
                self.problem(
                    Some(it.name.span()),
                    &format!("{key}.name"),
                    format!("expected a name without spaces, got {name:?}"),
                );
                continue;
            }
            let kind = match it.kind.get_ref().parse::<ItemKind>() {
                Ok(k) => k,
                Err(e) => {
                    self.problem(Some(it.kind.span()), &format!("{key}.kind"), e);
                    continue;
                }
            };
            let depends_on: Vec<String> = it
                .depends_on
                .iter()
                .map(|d| d.get_ref().trim().to_string())
                .collect();
            let is_service = raw
                .service
                .iter()
                .any(|s| s.name.get_ref().trim().eq_ignore_ascii_case(&name));
            match items
                .iter_mut()
                .find(|x| x.name.eq_ignore_ascii_case(&name))
            {
                Some(x) if is_service && kind == ItemKind::Service && x.depends_on.is_empty() => {
                    x.depends_on = depends_on;
                }
                Some(_) if is_service => self.problem(
                    Some(it.kind.span()),
                    &format!("{key}.kind"),
                    format!(
                        "{name:?} is a [[service]], so its item is of kind service, not {}",
                        kind.as_str()
                    ),
                ),
                Some(_) => self.problem(
                    Some(it.name.span()),
                    &format!("{key}.name"),
                    format!("an [[item]] named {name:?} exists already"),
                ),
                None => items.push(Item {
                    name,
                    kind,
                    depends_on,
                }),
            }
        }
        let catalog = Catalog { items };
        for (i, it) in raw.item.iter().enumerate() {
            for d in &it.depends_on {
                if catalog.get(d.get_ref()).is_none() {
                    self.problem(
                        Some(d.span()),
                        &format!("item[{i}].depends_on"),
                        format!("no item or service is named {:?}", d.get_ref()),
                    );
                }
            }
        }
        if let Some(cycle) = catalog.cycle() {
            // The line of the first item of the cycle that is an [[item]].
            let at = raw.item.iter().enumerate().find(|(_, it)| {
                cycle
                    .first()
                    .is_some_and(|c| it.name.get_ref().trim().eq_ignore_ascii_case(c))
            });
            let (span, key) = match at {
                Some((i, it)) => (
                    it.depends_on.first().map(|d| d.span()),
                    format!("item[{i}].depends_on"),
                ),
                None => (None, "item".to_string()),
            };
            self.problem(
                span,
                &key,
                format!(
                    "the items depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            );
        }
        catalog
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};
    use crate::domain::changes::Quorum;

    const BASE: &str = r#"[desk]
name = "ACME Service Desk"
address = "support@example.test"
tag = "ACME"

[[mailbox]]
name = "support"
[mailbox.imap]
host = "127.0.0.1"
user = "support"
password_env = "PW"

[smtp]
host = "127.0.0.1"
port = 25
tls = "none"

[[sla_policy]]
name = "standard"

[[service]]
name = "email"
sla_policy = "standard"
"#;

    fn parse(extra: &str) -> Result<Config, Vec<String>> {
        let text = format!("{BASE}{extra}");
        Config::parse(Path::new("/etc/helpdesk.toml"), &text, &|n| {
            (n == "PW").then(|| "pw".to_string())
        })
        .map_err(|e| match e {
            ConfigError::Invalid { problems } => problems.iter().map(|p| p.to_string()).collect(),
            e => vec![e.to_string()],
        })
    }

    #[test]
    fn items_boards_and_freezes_are_read() {
        let c = parse(
            r#"
[[item]]
name = "email"
kind = "service"
depends_on = ["mx1"]

[[item]]
name = "mx1"
kind = "system"

[[cab]]
name = "mail"
approvers = ["ann@example.test", "ben@example.test", "cat@example.test"]
services = ["email"]
risk = ["high"]
quorum = 2

[[cab]]
name = "default"
approvers = ["ann@example.test"]
quorum = "any"
deadline_hours = 24

[[freeze]]
name = "year end"
start = "2026-12-20"
end = "2027-01-02 08:00"

[changes]
manager = "max@example.test"
zone = "Europe/Berlin"
"#,
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let ch = &c.changes;
        assert_eq!(ch.catalog.affected_services("mx1"), vec!["email"]);
        assert_eq!(ch.cabs[0].quorum, Quorum::AtLeast(2));
        assert_eq!(ch.cabs[0].deadline_hours, 48);
        assert_eq!(ch.cabs[1].quorum, Quorum::Any);
        assert_eq!(
            ch.freezes[0].start.to_rfc3339(),
            "2026-12-19T23:00:00+00:00"
        );
        assert_eq!(
            ch.manager.as_ref().map(|m| m.email.as_str()),
            Some("max@example.test")
        );
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let p = parse(
            r#"
[[item]]
name = "app"
kind = "system"
depends_on = ["db", "nowhere"]

[[item]]
name = "db"
kind = "system"
depends_on = ["app"]

[[item]]
name = "email"
kind = "component"

[[item]]
name = "x"
kind = "gadget"

[[cab]]
name = "mail"
approvers = ["ann@example.test", "ben@example.test"]
services = ["printing"]
risk = ["extreme"]
quorum = 3

[[freeze]]
name = "bad"
start = "2026-12-20"
end = "2026-12-19"

[changes]
zone = "Mars/Olympus"
"#,
        )
        .map(|_| ())
        .expect_err("problems");
        let want = [
            "/etc/helpdesk.toml:56: changes.zone: Mars/Olympus is not an IANA time zone",
            "/etc/helpdesk.toml:46: cab[0].services: no service is named \"printing\"",
            "/etc/helpdesk.toml:47: cab[0].risk: unknown risk \"extreme\"",
            "/etc/helpdesk.toml:48: cab[0].quorum: a quorum of 3 needs at least 3 approvers; the board has 2",
            "/etc/helpdesk.toml:53: freeze[0].end: the freeze ends before it starts",
            "/etc/helpdesk.toml:41: item[3].kind: unknown item kind \"gadget\"",
            "/etc/helpdesk.toml:37: item[2].kind: \"email\" is a [[service]], so its item is of kind service, not component",
            "/etc/helpdesk.toml:28: item[0].depends_on: no item or service is named \"nowhere\"",
            "/etc/helpdesk.toml:28: item[0].depends_on: the items depend on each other in a cycle: app → db → app",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in\n{}",
                p.join("\n")
            );
        }
    }

    /// The commented change examples of config/helpdesk.toml, uncommented,
    /// are a valid configuration.
    #[test]
    fn the_shipped_change_examples_are_valid() {
        let example = include_str!("../../../config/helpdesk.toml");
        let from = example.find("# [[item]]").expect("the [[item]] example");
        let to = example[from..]
            .find("\n\n# Scheduled jobs")
            .expect("its end")
            + from;
        let block: String = example[from..to]
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                // TOML lines are uncommented; the prose stays a comment.
                Some(t)
                    if t.starts_with('[')
                        || t.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        }) =>
                {
                    t
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&format!("\n{block}\n")).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(c.changes.catalog.affected_services("disk7"), vec!["email"]);
        assert_eq!(c.changes.cabs.len(), 1);
        assert_eq!(c.changes.freezes.len(), 1);
    }
}
