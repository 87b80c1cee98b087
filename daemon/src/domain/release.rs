//! Release management: a release (`REL-…`) groups changes, has a planned
//! window and a manager (its assignee), and is deployed through a gate
//! (`release.before_deploy`) that plugins may veto.
//!
//! States: `planned` until its manager writes `/deploy`; `deploying` while
//! the gate is asked; then `deployed`, or `vetoed` (with the reasons) from
//! where `/deploy` may be tried again once the release is mended.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::conversation::{Draft, DraftKind, Settings, TicketState};
use super::mail::Address;
use super::staff::StaffMember;
use super::threading::tagged_subject;
use super::ticket::TicketNumber;

/// A release ticket as its mails need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub number: TicketNumber,
    pub subject: String,
    /// The release manager.
    pub assignee: Option<String>,
}

impl From<&TicketState> for Info {
    fn from(t: &TicketState) -> Info {
        Info {
            number: t.number,
            subject: t.subject.clone(),
            assignee: t.assignee.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    Planned,
    Deploying,
    Vetoed,
    Deployed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::Deploying => "deploying",
            State::Vetoed => "vetoed",
            State::Deployed => "deployed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            State::Planned,
            State::Deploying,
            State::Vetoed,
            State::Deployed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| format!("unknown release state {s:?}"))
    }
}

/// A release's planned window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub zone: String,
}

/// What the desk keeps about a release beyond its ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub state: State,
    pub window: Option<Window>,
    /// The reasons of the last veto or gate failure, one per line.
    pub vetoes: String,
    pub deployed_at: Option<DateTime<Utc>>,
}

/// A change of a release, as the gate and the notes show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ChangeView {
    pub number: String,
    pub subject: String,
    pub state: String,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// The changes of a gate event's `release` data.
pub fn changes_of(data: &Value) -> Vec<ChangeView> {
    data["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}

/// Whether `member` may deploy the release now.
pub fn may_deploy(
    release: &TicketState,
    record: &Record,
    member: &StaffMember,
) -> Result<(), String> {
    if release.assignee.as_deref() != Some(member.email.as_str()) {
        return Err(format!(
            "/deploy: only the release manager of {} may deploy it ({}); /assign it to yourself first",
            release.number,
            release.assignee.as_deref().unwrap_or("nobody is assigned")
        ));
    }
    match record.state {
        State::Planned | State::Vetoed => Ok(()),
        State::Deploying => Err(format!(
            "/deploy: {} is being deployed; its gate has not answered yet",
            release.number
        )),
        State::Deployed => Err(format!("/deploy: {} is deployed already", release.number)),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The services the changes touch, each once, in order.
pub fn services(changes: &[ChangeView]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in changes.iter().flat_map(|c| &c.services) {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The `release` data of the gate and deployed events (see `plugin_api::hooks`).
pub fn event_data(
    release: &TicketState,
    record: &Record,
    changes: &[ChangeView],
    deploy_at: DateTime<Utc>,
) -> Value {
    json!({
        "number": release.number.to_string(),
        "title": release.subject,
        "manager": release.assignee,
        "deploy_at": rfc3339(deploy_at),
        "window": record.window.as_ref().map(|w| json!({
            "start": rfc3339(w.start), "end": rfc3339(w.end), "zone": w.zone,
        })),
        "changes": changes.iter().map(|c| json!({
            "number": c.number, "subject": c.subject, "state": c.state, "items": c.items,
            "services": c.services,
        })).collect::<Vec<_>>(),
        "services": services(changes),
    })
}

/// The mail to the staff member who opened a release from a change.
pub fn opened_notice(
    settings: &Settings,
    release: &TicketState,
    change: &TicketState,
    member: &StaffMember,
) -> Draft {
    staff_mail(
        settings,
        &Info::from(release),
        vec![member.address()],
        format!(
            "Release {number} (\"{title}\") was opened from {change} by {name}, who is its \
             release manager. {change} is part of it.\n\n\
             Reply to this mail to work on the release. Commands in the first lines:\n\
             \x20 /window START END [ZONE]   the planned window, e.g.\n\
             \x20                            /window 2026-12-10 22:00 2026-12-11 02:00 Europe/Berlin\n\
             \x20 /deploy                    deploy: the gate (plugins) is asked first\n\
             Add more changes from them with /release {number}.\n",
            number = release.number,
            title = release.subject,
            change = change.number,
            name = member.name,
        ),
    )
}

/// The mail to the release manager: the gate vetoed (or failed).
pub fn veto_notice(settings: &Settings, release: &Info, reasons: &[String]) -> Option<Draft> {
    let manager = settings.staff.by_email(release.assignee.as_deref()?)?;
    let list: String = reasons.iter().map(|r| format!("  - {r}\n")).collect();
    Some(staff_mail(
        settings,
        release,
        vec![manager.address()],
        format!(
            "Release {number} (\"{title}\") was NOT deployed:\n\n{list}\n\
             Mend it and reply /deploy to try again.\n",
            number = release.number,
            title = release.subject,
        ),
    ))
}

/// The release notes, to the subscribers and the release manager.
pub fn release_notes(
    settings: &Settings,
    release: &Info,
    record: &Record,
    changes: &[ChangeView],
    subscribers: &[Address],
    deployed_at: DateTime<Utc>,
) -> Option<Draft> {
    let mut to: Vec<Address> = subscribers.to_vec();
    if let Some(m) = release
        .assignee
        .as_deref()
        .and_then(|a| settings.staff.by_email(a))
        && !to.iter().any(|a| a.email == m.email)
    {
        to.push(m.address());
    }
    if to.is_empty() {
        return None;
    }
    let list: String = changes
        .iter()
        .map(|c| {
            let items = if c.items.is_empty() {
                String::new()
            } else {
                format!(" (items: {})", c.items.join(", "))
            };
            format!("  - {} {}{items}\n", c.number, c.subject)
        })
        .collect();
    let touched = services(changes);
    let window = record.window.as_ref().map_or("-".to_string(), |w| {
        format!(
            "{} to {} UTC ({})",
            w.start.format("%Y-%m-%d %H:%M"),
            w.end.format("%Y-%m-%d %H:%M"),
            w.zone
        )
    });
    let mut draft = staff_mail(
        settings,
        release,
        to,
        format!(
            "Release {number} (\"{title}\") was deployed at {at} UTC.\n\n\
             Window:   {window}\n\
             Services: {services}\n\n\
             Changes:\n{list}\n-- \n{desk}\n",
            number = release.number,
            title = release.subject,
            at = deployed_at.format("%Y-%m-%d %H:%M"),
            services = if touched.is_empty() {
                "-".to_string()
            } else {
                touched.join(", ")
            },
            desk = settings.desk.name,
        ),
    );
    draft.kind = DraftKind::ReleaseNotes;
    draft.subject = format!(
        "Release notes: {}",
        tagged_subject(&release.subject, &settings.desk.tag, release.number)
    );
    Some(draft)
}

fn staff_mail(settings: &Settings, release: &Info, to: Vec<Address>, body: String) -> Draft {
    Draft {
        kind: DraftKind::Notification,
        to,
        from_name: settings.desk.name.clone(),
        subject: tagged_subject(&release.subject, &settings.desk.tag, release.number),
        body,
        in_reply_to: None,
        references: vec![format!(
            "{}.staff@{}",
            release.number,
            settings.desk.id_domain()
        )],
        with_attachments: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::tests::{settings, ticket};
    use crate::domain::ticket::{Kind, TicketNumber};

    fn release() -> TicketState {
        let mut t = ticket();
        t.kind = Kind::Release;
        t.number = TicketNumber {
            kind: Kind::Release,
            seq: 50,
        };
        t.subject = "December".into();
        t.assignee = Some("ada@example.test".into());
        t
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn only_the_manager_deploys_and_only_from_planned_or_vetoed() {
        let s = settings();
        let ada = s.staff.by_email("ada@example.test").expect("ada").clone();
        let bob = s.staff.by_email("bob@example.test").expect("bob").clone();
        let r = release();
        let mut rec = Record::default();
        assert!(may_deploy(&r, &rec, &ada).is_ok());
        assert!(
            may_deploy(&r, &rec, &bob)
                .expect_err("bob")
                .contains("release manager")
        );
        for (state, ok) in [
            (State::Vetoed, true),
            (State::Deploying, false),
            (State::Deployed, false),
        ] {
            rec.state = state;
            assert_eq!(may_deploy(&r, &rec, &ada).is_ok(), ok, "{state}");
        }
    }

    #[test]
    fn the_gate_data_names_the_changes_window_and_services() {
        let rec = Record {
            window: Some(Window {
                start: at("2026-12-10T21:00:00Z"),
                end: at("2026-12-11T01:00:00Z"),
                zone: "Europe/Berlin".into(),
            }),
            ..Record::default()
        };
        let changes = vec![
            ChangeView {
                number: "CHG-000047".into(),
                subject: "Upgrade the VPN".into(),
                state: "approved".into(),
                items: vec!["vpn-gw".into()],
                services: vec!["vpn".into(), "email".into()],
            },
            ChangeView {
                number: "CHG-000048".into(),
                subject: "New mail relay".into(),
                state: "submitted".into(),
                items: vec![],
                services: vec!["email".into()],
            },
        ];
        let v = event_data(&release(), &rec, &changes, at("2026-12-10T22:00:00Z"));
        assert_eq!(v["number"], "REL-000050");
        assert_eq!(v["deploy_at"], "2026-12-10T22:00:00Z");
        assert_eq!(v["window"]["end"], "2026-12-11T01:00:00Z");
        assert_eq!(v["changes"][1]["state"], "submitted");
        assert_eq!(v["services"], json!(["vpn", "email"]));
        let s = settings();
        let notes = release_notes(
            &s,
            &Info::from(&release()),
            &rec,
            &changes,
            &[Address::new("", "cab@example.test")],
            at("2026-12-10T22:00:00Z"),
        )
        .expect("notes");
        let to: Vec<&str> = notes.to.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(to, vec!["cab@example.test", "ada@example.test"]);
        for want in [
            "CHG-000047 Upgrade the VPN (items: vpn-gw)",
            "Services: vpn, email",
        ] {
            assert!(notes.body.contains(want), "{want:?}:\n{}", notes.body);
        }
        assert!(notes.subject.starts_with("Release notes: "));
    }

    #[test]
    fn states_read_back() {
        for s in ["planned", "deploying", "vetoed", "deployed"] {
            assert_eq!(s.parse::<State>().expect("state").as_str(), s);
        }
        assert!("shipped".parse::<State>().is_err());
    }
}
