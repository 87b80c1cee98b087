//! Configuration items and change management (README "Changes and
//! configuration items"): the item catalogue and what an item affects, the
//! states of a change and their legal moves, change windows, advisory boards
//! and their quorum, and the approval tokens approvers answer with.
//!
//! Pure: the staff commands and the approvers' answers are applied in
//! `apply.rs`, called from `conversation`; `ingest::apply::changes` loads
//! and writes the rows.

pub mod apply;
pub mod token;
pub mod window;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::mail::Address;
pub use window::Window;

// ---- configuration items --------------------------------------------------

/// What a configuration item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Service,
    System,
    Component,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Service => "service",
            ItemKind::System => "system",
            ItemKind::Component => "component",
        }
    }
}

impl FromStr for ItemKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ItemKind::Service, ItemKind::System, ItemKind::Component]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown item kind {s:?} (service, system, component)"))
    }
}

/// A configuration item: a name, its kind and what it depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub kind: ItemKind,
    pub depends_on: Vec<String>,
}

/// The configured items. Names are compared without regard to case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub items: Vec<Item>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Item> {
        self.items
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name.trim()))
    }

    pub fn names(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.name.as_str()).collect()
    }

    /// The services `name` affects: itself when it is a service, and every
    /// service that depends on it, directly or through other items; sorted.
    pub fn affected_services(&self, name: &str) -> Vec<String> {
        let Some(start) = self.get(name) else {
            return Vec::new();
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo = vec![start.name.clone()];
        let mut out = BTreeSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.to_ascii_lowercase()) {
                continue;
            }
            if let Some(item) = self.get(&n)
                && item.kind == ItemKind::Service
            {
                out.insert(item.name.clone());
            }
            for dependent in &self.items {
                if dependent
                    .depends_on
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&n))
                {
                    todo.push(dependent.name.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// The services all of `items` affect, sorted, without repeats.
    pub fn services_of<'a>(&self, items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let set: BTreeSet<String> = items
            .into_iter()
            .flat_map(|i| self.affected_services(i))
            .collect();
        set.into_iter().collect()
    }

    /// A dependency cycle, as the names around it (first name repeated at
    /// the end), if there is one.
    pub fn cycle(&self) -> Option<Vec<String>> {
        // 0 unvisited, 1 on the path, 2 done.
        fn visit(
            c: &Catalog,
            i: usize,
            marks: &mut Vec<u8>,
            path: &mut Vec<usize>,
        ) -> Option<Vec<String>> {
            marks[i] = 1;
            path.push(i);
            for d in &c.items[i].depends_on {
                let Some(j) = c.items.iter().position(|x| x.name.eq_ignore_ascii_case(d)) else {
                    continue;
                };
                if marks[j] == 1 {
                    let from = path.iter().position(|&p| p == j).unwrap_or(0);
                    let mut names: Vec<String> = path[from..]
                        .iter()
                        .map(|&p| c.items[p].name.clone())
                        .collect();
                    names.push(c.items[j].name.clone());
                    return Some(names);
                }
                if marks[j] == 0
                    && let Some(found) = visit(c, j, marks, path)
                {
                    return Some(found);
                }
            }
            path.pop();
            marks[i] = 2;
            None
        }
        let mut marks = vec![0u8; self.items.len()];
        for i in 0..self.items.len() {
            if marks[i] == 0 {
                let mut path = Vec::new();
                if let Some(c) = visit(self, i, &mut marks, &mut path) {
                    return Some(c);
                }
            }
        }
        None
    }
}

// ---- boards, freezes, the configuration --------------------------------------

/// How many of a board's approvers must approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    All,
    Any,
    AtLeast(u32),
}

impl Quorum {
    /// Approvals needed out of `approvers`.
    pub fn needed(self, approvers: usize) -> usize {
        match self {
            Quorum::All => approvers,
            Quorum::Any => approvers.min(1),
            Quorum::AtLeast(n) => (n as usize).min(approvers),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::All => f.write_str("all"),
            Quorum::Any => f.write_str("any"),
            Quorum::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Quorum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Quorum::All),
            "any" => Ok(Quorum::Any),
            n => match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Quorum::AtLeast(n)),
                _ => Err(format!(
                    "expected \"all\", \"any\" or a number of approvers (1 or more), got {s:?}"
                )),
            },
        }
    }
}

/// What the approvals of a round add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    Open,
    Approved,
    Rejected,
}

/// Approved when `approvals` reach the quorum; rejected when the quorum can
/// no longer be reached because of `rejections`; open otherwise.
pub fn tally(quorum: Quorum, approvers: usize, approvals: usize, rejections: usize) -> Tally {
    let need = quorum.needed(approvers);
    if need > 0 && approvals >= need {
        Tally::Approved
    } else if approvers.saturating_sub(rejections) < need.max(1) {
        Tally::Rejected
    } else {
        Tally::Open
    }
}

/// A change advisory board (`[[cab]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cab {
    pub name: String,
    pub approvers: Vec<Address>,
    /// Matches a change affecting any of these services; empty: any service.
    pub services: Vec<String>,
    /// Matches a change of one of these risks; empty: any risk.
    pub risk: Vec<Risk>,
    pub quorum: Quorum,
    pub deadline_hours: u32,
}

impl Cab {
    pub fn matches(&self, risk: Risk, services: &[String]) -> bool {
        let by_service = self.services.is_empty()
            || self
                .services
                .iter()
                .any(|s| services.iter().any(|x| x.eq_ignore_ascii_case(s)));
        let by_risk = self.risk.is_empty() || self.risk.contains(&risk);
        by_service && by_risk
    }
}

/// A change freeze (`[[freeze]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `[[item]]`, `[[cab]]`, `[[freeze]]` and `[changes]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub catalog: Catalog,
    pub cabs: Vec<Cab>,
    pub freezes: Vec<Freeze>,
    /// Told of every decision and of overlaps and freezes.
    pub manager: Option<Address>,
    /// The zone of a `/window` without one, and of `[[freeze]]` times.
    pub zone: Tz,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            catalog: Catalog::default(),
            cabs: Vec::new(),
            freezes: Vec::new(),
            manager: None,
            zone: Tz::UTC,
        }
    }
}

impl Config {
    /// The board of a change: the first `[[cab]]`, in the order of the file,
    /// that matches its risk and the services it affects.
    pub fn board(&self, risk: Risk, services: &[String]) -> Option<&Cab> {
        self.cabs.iter().find(|c| c.matches(risk, services))
    }

    /// Everyone change mail may go to besides staff: the approvers of every
    /// board and the manager.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.cabs
            .iter()
            .flat_map(|c| c.approvers.iter())
            .chain(self.manager.iter())
            .map(|a| a.email.as_str())
    }
}

// ---- changes ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl FromStr for Risk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Risk::Low, Risk::Medium, Risk::High]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown risk {s:?} (low, medium, high)"))
    }
}

/// The states of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Scheduled,
    Implemented,
    Failed,
    Closed,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Draft,
        State::Submitted,
        State::Approved,
        State::Rejected,
        State::Scheduled,
        State::Implemented,
        State::Failed,
        State::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Submitted => "submitted",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Scheduled => "scheduled",
            State::Implemented => "implemented",
            State::Failed => "failed",
            State::Closed => "closed",
        }
    }

    /// Risk, impact, window and items may be changed (then `/submit` again).
    pub fn editable(self) -> Result<(), String> {
        match self {
            State::Draft | State::Rejected | State::Failed => Ok(()),
            State::Submitted => Err(
                "the change is submitted and waits for its approvers; /change draft first to \
                 edit it, then /submit again"
                    .into(),
            ),
            s => Err(format!(
                "the change is {}; it can no longer be edited",
                s.as_str()
            )),
        }
    }

    /// `/submit`: from draft, rejected or failed, or again while submitted
    /// (a new round: the requests of the round before no longer count).
    pub fn may_submit(self) -> Result<(), String> {
        match self {
            State::Draft | State::Submitted | State::Rejected | State::Failed => Ok(()),
            s => Err(format!(
                "the change is {}; only a draft, submitted, rejected or failed change can be \
                 submitted",
                s.as_str()
            )),
        }
    }

    /// A move by `/change STATE`. Submitted, approved and rejected are
    /// reached only by `/submit` and the approvers' answers.
    pub fn staff_move(self, to: State) -> Result<(), String> {
        use State::*;
        if matches!(to, Submitted | Approved | Rejected) {
            return Err(format!(
                "{} is reached by /submit and the approvers' answers, not by /change",
                to.as_str()
            ));
        }
        let ok = match self {
            Draft => matches!(to, Closed),
            Submitted => matches!(to, Draft | Closed),
            Approved => matches!(to, Scheduled | Implemented | Failed | Closed | Draft),
            Scheduled => matches!(to, Implemented | Failed | Closed | Draft),
            Rejected => matches!(to, Draft | Closed),
            Implemented => matches!(to, Closed),
            Failed => matches!(to, Draft | Closed),
            Closed => false,
        };
        if ok {
            Ok(())
        } else if self == to {
            Err(format!("the change is {} already", to.as_str()))
        } else {
            Err(format!(
                "a {} change cannot move to {}",
                self.as_str(),
                to.as_str()
            ))
        }
    }

    /// Still planned: counts for window overlaps.
    pub fn is_live(self) -> bool {
        !matches!(self, State::Rejected | State::Closed)
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown change state {s:?} (draft, submitted, approved, rejected, \
                     scheduled, implemented, failed, closed)"
                )
            })
    }
}

/// One approver's answer in the current round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub approver: String,
    pub approve: bool,
    pub reason: String,
}

/// A change as the conversation sees it (the `changes` row, its items and
/// the answers of its current round).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub state: State,
    pub risk: Option<Risk>,
    pub impact: Option<String>,
    pub window: Option<Window>,
    /// The configuration items the ticket names (`/ci`).
    pub items: Vec<String>,
    /// Submissions so far; approval tokens name their round.
    pub round: u32,
    pub board: Option<String>,
    pub approvers: Vec<String>,
    pub quorum: Quorum,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_by: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    /// Overlaps and freezes found at the last submission.
    pub flags: Vec<String>,
    pub answers: Vec<Answer>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            state: State::Draft,
            risk: None,
            impact: None,
            window: None,
            items: Vec::new(),
            round: 0,
            board: None,
            approvers: Vec::new(),
            quorum: Quorum::All,
            submitted_at: None,
            submitted_by: None,
            deadline: None,
            flags: Vec::new(),
            answers: Vec::new(),
        }
    }
}

impl Record {
    pub fn is_approver(&self, email: &str) -> bool {
        self.approvers.iter().any(|a| a.eq_ignore_ascii_case(email))
    }

    pub fn tally(&self) -> Tally {
        let yes = self.answers.iter().filter(|a| a.approve).count();
        let no = self.answers.len() - yes;
        tally(self.quorum, self.approvers.len(), yes, no)
    }
}

/// Another planned change, for the overlap check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub ticket_seq: i64,
    pub state: State,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub items: Vec<String>,
}

/// What a window collides with: planned changes on the same items whose
/// windows overlap it (not rejected or closed), and freeze periods.
pub fn collisions(
    own_seq: i64,
    window: &Window,
    items: &[String],
    planned: &[Planned],
    freezes: &[Freeze],
) -> Vec<String> {
    let overlaps = |s: DateTime<Utc>, e: DateTime<Utc>| s < window.end && window.start < e;
    let mut out = Vec::new();
    for p in planned {
        if p.ticket_seq == own_seq || !p.state.is_live() || !overlaps(p.start, p.end) {
            continue;
        }
        let shared: Vec<&str> = p
            .items
            .iter()
            .filter(|i| items.iter().any(|x| x.eq_ignore_ascii_case(i)))
            .map(String::as_str)
            .collect();
        if !shared.is_empty() {
            out.push(format!(
                "window overlaps CHG-{:06} ({}, {} – {} UTC) on {}",
                p.ticket_seq,
                p.state.as_str(),
                p.start.format("%Y-%m-%d %H:%M"),
                p.end.format("%Y-%m-%d %H:%M"),
                shared.join(", ")
            ));
        }
    }
    for f in freezes {
        if overlaps(f.start, f.end) {
            out.push(format!(
                "window falls in the change freeze {:?} ({} – {} UTC)",
                f.name,
                f.start.format("%Y-%m-%d %H:%M"),
                f.end.format("%Y-%m-%d %H:%M")
            ));
        }
    }
    out
}

/// The deadline of a round submitted at `at`.
pub fn deadline(at: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    at + Duration::hours(i64::from(hours))
}

/// An item name the catalogue knows, in its configured spelling, or the
/// error that lists the known ones.
pub fn known_item(catalog: &Catalog, name: &str) -> Result<String, String> {
    catalog.get(name).map(|i| i.name.clone()).ok_or_else(|| {
        let known = catalog.names();
        if known.is_empty() {
            format!("/ci {name}: no such configuration item (none are configured)")
        } else {
            format!(
                "/ci {name}: no such configuration item (known: {})",
                known.join(", ")
            )
        }
    })
}

/// Lower-cased approver addresses by board, for lookups.
pub fn approver_emails(cab: &Cab) -> Vec<String> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    cab.approvers
        .iter()
        .map(|a| a.email.to_ascii_lowercase())
        .filter(|e| seen.insert(e.clone(), ()).is_none())
        .collect()
}

#[cfg(test)]
mod tests;
