//! keyword-router: routes new tickets to a kind, priority and assignee by
//! keywords in the subject or text and by the sender's domain.
//!
//! Configured with the table `[plugins.config.keyword-router]` of the desk's
//! configuration file (see README.md): a list of rules, the first match
//! wins. Each applied rule also leaves an internal note saying why, so staff
//! can see where a routing came from.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};
use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Rules in order; the first matching rule is applied.
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
    /// Add an internal note naming the rule that matched (default true).
    #[serde(default = "yes")]
    note: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    /// A name for the note; default "rule N".
    name: Option<String>,
    /// Any of these words or phrases in the subject or text (case-insensitive,
    /// whole words).
    #[serde(default)]
    keywords: Vec<String>,
    /// Any of these sender domains (subdomains included).
    #[serde(default)]
    domains: Vec<String>,
    kind: Option<String>,
    priority: Option<String>,
    assignee: Option<String>,
}

struct KeywordRouter {
    config: Config,
}

const KINDS: &[&str] = &["incident", "request", "problem", "change", "complaint"];
const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

impl Config {
    fn check(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("rule[{i}]");
            if r.keywords.is_empty() && r.domains.is_empty() {
                return Err(format!("{at}: give keywords, domains or both"));
            }
            if r.kind.is_none() && r.priority.is_none() && r.assignee.is_none() {
                return Err(format!("{at}: sets nothing (kind, priority, assignee)"));
            }
            if let Some(k) = &r.kind
                && !KINDS.contains(&k.as_str())
            {
                return Err(format!("{at}.kind: {k:?} is not one of {KINDS:?}"));
            }
            if let Some(p) = &r.priority
                && !PRIORITIES.contains(&p.as_str())
            {
                return Err(format!("{at}.priority: {p:?} is not one of {PRIORITIES:?}"));
            }
            if r.keywords.iter().any(|k| k.trim().is_empty()) {
                return Err(format!("{at}.keywords: empty keyword"));
            }
        }
        Ok(())
    }
}

/// Whether `needle` (lower case) occurs in `hay` (lower case) as whole words.
fn contains_words(hay: &str, needle: &str) -> bool {
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let mut start = 0;
    while let Some(pos) = hay[start..].find(needle) {
        let at = start + pos;
        let end = at + needle.len();
        if boundary(hay[..at].chars().next_back()) && boundary(hay[end..].chars().next()) {
            return true;
        }
        start = at + hay[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

impl Rule {
    /// Why the rule matches, if it does.
    fn matches(&self, text: &str, domain: &str) -> Option<String> {
        let keyword = if self.keywords.is_empty() {
            None
        } else {
            let k = self
                .keywords
                .iter()
                .find(|k| contains_words(text, &k.trim().to_lowercase()))?;
            Some(format!("keyword {k:?}"))
        };
        let domain = if self.domains.is_empty() {
            None
        } else {
            let d = self.domains.iter().find(|d| {
                let d = d.trim().trim_start_matches('@').to_lowercase();
                domain == d || domain.ends_with(&format!(".{d}"))
            })?;
            Some(format!("sender domain {d}"))
        };
        Some(
            [keyword, domain]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and "),
        )
    }
}

impl Plugin for KeywordRouter {
    fn metadata() -> Metadata {
        Metadata::new(
            "keyword-router",
            env!("CARGO_PKG_VERSION"),
            &[hooks::TICKET_CREATED],
        )
    }

    fn init(config: serde_json::Value) -> Result<Self, String> {
        let config: Config = if config.is_null() {
            Config::default()
        } else {
            serde_json::from_value(config).map_err(|e| e.to_string())?
        };
        config.check()?;
        Ok(KeywordRouter { config })
    }

    fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
        let Some(ticket) = &event.ticket else {
            return Ok(Vec::new());
        };
        let mut text = ticket.subject.to_lowercase();
        let mut sender = ticket.customer.as_str();
        if let Some(m) = &event.message {
            text.push('\n');
            text.push_str(&m.subject.to_lowercase());
            text.push('\n');
            text.push_str(&m.text.to_lowercase());
            if !m.from.is_empty() {
                sender = &m.from;
            }
        }
        let domain = domain_of(sender).to_lowercase();
        for (i, rule) in self.config.rules.iter().enumerate() {
            let Some(why) = rule.matches(&text, &domain) else {
                continue;
            };
            let mut actions = Vec::new();
            if let Some(kind) = &rule.kind {
                actions.push(Action::SetKind { kind: kind.clone() });
            }
            if let Some(priority) = &rule.priority {
                actions.push(Action::SetPriority {
                    priority: priority.clone(),
                });
            }
            if let Some(assignee) = &rule.assignee {
                actions.push(Action::SetAssignee {
                    assignee: Some(assignee.clone()),
                });
            }
            if self.config.note {
                let name = rule
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("rule {}", i + 1));
                actions.push(Action::AddNote {
                    text: format!("keyword-router: {name} matched ({why})"),
                });
            }
            return Ok(actions);
        }
        Ok(Vec::new())
    }
}

export_plugin!(KeywordRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::{Message, Ticket};
    use serde_json::json;

    fn event(subject: &str, text: &str, from: &str) -> Event {
        Event {
            id: 1,
            hook: hooks::TICKET_CREATED.into(),
            ticket: Some(Ticket {
                number: "INC-000001".into(),
                kind: "incident".into(),
                status: "new".into(),
                priority: "normal".into(),
                subject: subject.into(),
                assignee: None,
                group: None,
                customer: from.into(),
                mailbox: "support".into(),
                fields: Default::default(),
            }),
            message: Some(Message {
                message_id: "m@x".into(),
                from: from.into(),
                subject: subject.into(),
                text: text.into(),
                visibility: "public".into(),
            }),
            changes: vec![],
            data: Default::default(),
        }
    }

    fn router() -> KeywordRouter {
        KeywordRouter::init(json!({
            "rule": [
                {"name": "vpn", "keywords": ["VPN", "remote access"], "priority": "high",
                 "assignee": "net@example.test"},
                {"domains": ["bigcorp.example"], "kind": "request", "priority": "urgent"},
                {"keywords": ["invoice"], "domains": ["@vendor.example"], "assignee": "ap@example.test"}
            ]
        }))
        .expect("valid config")
    }

    #[test]
    fn first_matching_rule_wins_with_a_note() {
        let a = router()
            .handle(&event("VPN down", "", "jo@bigcorp.example"))
            .expect("ok");
        assert_eq!(
            a,
            vec![
                Action::SetPriority {
                    priority: "high".into()
                },
                Action::SetAssignee {
                    assignee: Some("net@example.test".into())
                },
                Action::AddNote {
                    text: "keyword-router: vpn matched (keyword \"VPN\")".into()
                },
            ]
        );
    }

    #[test]
    fn keywords_match_whole_words_in_subject_or_text() {
        let r = router();
        assert!(
            r.handle(&event("hi", "my vpnclient", "a@x.test"))
                .expect("ok")
                .is_empty()
        );
        assert_eq!(
            r.handle(&event("hi", "need Remote  access", "a@x.test"))
                .expect("ok")
                .len(),
            0,
            "two spaces are not the phrase"
        );
        assert_eq!(
            r.handle(&event("hi", "need remote access.", "a@x.test"))
                .expect("ok")
                .len(),
            3
        );
    }

    #[test]
    fn domains_match_subdomains_and_combine_with_keywords() {
        let r = router();
        let a = r
            .handle(&event("hello", "", "x@eu.bigcorp.example"))
            .expect("ok");
        assert!(a.contains(&Action::SetKind {
            kind: "request".into()
        }));
        assert!(
            r.handle(&event("invoice", "", "x@other.example"))
                .expect("ok")
                .is_empty()
        );
        assert_eq!(
            r.handle(&event("Invoice 42", "", "x@vendor.example"))
                .expect("ok")
                .len(),
            2
        );
        assert!(
            r.handle(&event("hello", "", "x@notbigcorp.example"))
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn bad_configuration_is_refused_at_init() {
        for (config, want) in [
            (json!({"rule": [{"keywords": ["x"]}]}), "sets nothing"),
            (json!({"rule": [{"priority": "high"}]}), "give keywords"),
            (
                json!({"rule": [{"keywords": ["x"], "priority": "asap"}]}),
                "priority",
            ),
            (json!({"rules": []}), "unknown field"),
        ] {
            let err = KeywordRouter::init(config).err().expect("refused");
            assert!(err.contains(want), "{err}");
        }
        assert!(KeywordRouter::init(serde_json::Value::Null).is_ok());
    }
}
