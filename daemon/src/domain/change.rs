//! The change engine: every change to a ticket's fields, whoever asks for
//! it (a staff command, a plugin action, the processes to come), is a
//! [`Change`] applied by [`apply`], so one set of rules holds for all of
//! them: which status moves are legal, that a resolve stamps `resolved_at`,
//! that handing a ticket to a group takes it off the person who had it.
//! Callers check their own input (who "me" is, which services exist) and
//! keep their own bookkeeping (notifications, events) from the returned
//! field changes.

use chrono::{DateTime, Utc};

use super::conversation::{Change as FieldChange, TicketState};
use super::staff::Assignee;
use super::ticket::{Kind, Priority, Status};

/// One change to a ticket's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Status(Status),
    /// To a person, to a group (the ticket leaves its assignee: the group's
    /// queue has it now), or to nobody.
    Assign(Assignee),
    Priority(Priority),
    Kind(Kind),
    /// A configured service (the caller checks that it exists).
    Service(String),
}

/// The fields a [`Change`] can move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub status: Status,
    pub priority: Priority,
    pub kind: Kind,
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub service: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Fields {
    pub fn of(t: &TicketState) -> Fields {
        Fields {
            status: t.status,
            priority: t.priority,
            kind: t.kind,
            assignee: t.assignee.clone(),
            group: t.team.clone(),
            service: t.service.clone(),
            resolved_at: t.resolved_at,
        }
    }

    pub fn put(self, t: &mut TicketState) {
        t.status = self.status;
        t.priority = self.priority;
        t.kind = self.kind;
        t.assignee = self.assignee;
        t.team = self.group;
        t.service = self.service;
        t.resolved_at = self.resolved_at;
    }
}

/// Applies `change` to `f`, returning what moved (nothing when the field
/// already had that value). An illegal status move is refused with the
/// reason and leaves `f` as it was.
pub fn apply(
    f: &mut Fields,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Vec<FieldChange>, String> {
    let mut moved = Vec::new();
    let mut record = |field: &'static str, from: Option<&str>, to: Option<&str>| {
        if from != to {
            moved.push(FieldChange {
                field,
                from: from.unwrap_or_default().to_string(),
                to: to.unwrap_or_default().to_string(),
            });
        }
    };
    match change {
        // The status it has already is no move, and never refused.
        Change::Status(to) if *to == f.status => {}
        Change::Status(to) => {
            f.status.check_move(*to)?;
            record("status", Some(f.status.as_str()), Some(to.as_str()));
            // A close that skips the resolve is resolved at the close, so
            // resolution times count it.
            let resolves =
                *to == Status::Resolved || (*to == Status::Closed && f.resolved_at.is_none());
            if resolves && f.status != Status::Resolved {
                f.resolved_at = Some(now);
            }
            f.status = *to;
        }
        Change::Assign(Assignee::Person(email)) => {
            record("assignee", f.assignee.as_deref(), Some(email));
            f.assignee = Some(email.clone());
        }
        Change::Assign(Assignee::Group(g)) => {
            record("group", f.group.as_deref(), Some(g));
            record("assignee", f.assignee.as_deref(), None);
            f.group = Some(g.clone());
            f.assignee = None;
        }
        Change::Assign(Assignee::Nobody) => {
            record("assignee", f.assignee.as_deref(), None);
            f.assignee = None;
        }
        Change::Priority(p) => {
            record("priority", Some(f.priority.as_str()), Some(p.as_str()));
            f.priority = *p;
        }
        Change::Kind(k) => {
            record("kind", Some(f.kind.as_str()), Some(k.as_str()));
            f.kind = *k;
        }
        Change::Service(name) => {
            record("service", f.service.as_deref(), Some(name));
            f.service = Some(name.clone());
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            status: Status::Open,
            priority: Priority::Normal,
            kind: Kind::Incident,
            assignee: Some("ann@example.test".into()),
            group: Some("network".into()),
            service: None,
            resolved_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn moved(v: &[FieldChange]) -> Vec<(&str, &str, &str)> {
        v.iter()
            .map(|c| (c.field, c.from.as_str(), c.to.as_str()))
            .collect()
    }

    #[test]
    fn each_change_moves_its_fields_and_says_what_moved() {
        type Check = fn(&Fields) -> bool;
        type Moves = Vec<(&'static str, &'static str, &'static str)>;
        let cases: Vec<(Change, Moves, Check)> = vec![
            (
                Change::Status(Status::Resolved),
                vec![("status", "open", "resolved")],
                |f| f.status == Status::Resolved && f.resolved_at.is_some(),
            ),
            (
                Change::Status(Status::Closed),
                vec![("status", "open", "closed")],
                |f| f.status == Status::Closed && f.resolved_at.is_some(),
            ),
            (Change::Status(Status::Open), vec![], |f| {
                f.status == Status::Open && f.resolved_at.is_none()
            }),
            (
                Change::Assign(Assignee::Person("bob@example.test".into())),
                vec![("assignee", "ann@example.test", "bob@example.test")],
                |f| f.assignee.as_deref() == Some("bob@example.test"),
            ),
            (
                Change::Assign(Assignee::Group("servers".into())),
                vec![
                    ("group", "network", "servers"),
                    ("assignee", "ann@example.test", ""),
                ],
                |f| f.group.as_deref() == Some("servers") && f.assignee.is_none(),
            ),
            (
                Change::Assign(Assignee::Nobody),
                vec![("assignee", "ann@example.test", "")],
                |f| f.assignee.is_none() && f.group.as_deref() == Some("network"),
            ),
            (
                Change::Priority(Priority::High),
                vec![("priority", "normal", "high")],
                |f| f.priority == Priority::High,
            ),
            (
                Change::Kind(Kind::Problem),
                vec![("kind", "incident", "problem")],
                |f| f.kind == Kind::Problem,
            ),
            (
                Change::Service("email".into()),
                vec![("service", "", "email")],
                |f| f.service.as_deref() == Some("email"),
            ),
        ];
        for (change, want, holds) in cases {
            let mut f = fields();
            let got = apply(&mut f, &change, now()).expect("legal");
            assert_eq!(moved(&got), want, "{change:?}");
            assert!(holds(&f), "{change:?}: {f:?}");
        }
    }

    #[test]
    fn an_illegal_status_move_is_refused_and_changes_nothing() {
        let mut f = fields();
        f.status = Status::Closed;
        let before = f.clone();
        assert!(apply(&mut f, &Change::Status(Status::Open), now()).is_err());
        assert_eq!(f, before);
    }

    #[test]
    fn the_status_a_ticket_has_is_no_move_even_when_closed() {
        let mut f = fields();
        f.status = Status::Closed;
        let got = apply(&mut f, &Change::Status(Status::Closed), now()).expect("no move");
        assert!(got.is_empty());
    }

    #[test]
    fn closing_a_resolved_ticket_keeps_its_resolve_time() {
        let mut f = fields();
        apply(&mut f, &Change::Status(Status::Resolved), now()).expect("resolve");
        let first = f.resolved_at;
        let later = now() + chrono::Duration::hours(1);
        apply(&mut f, &Change::Status(Status::Closed), later).expect("close");
        assert_eq!(f.resolved_at, first);
    }

    #[test]
    fn resolving_twice_keeps_the_first_resolve_time() {
        let mut f = fields();
        apply(&mut f, &Change::Status(Status::Resolved), now()).expect("resolve");
        let first = f.resolved_at;
        let later = now() + chrono::Duration::hours(1);
        let again = apply(&mut f, &Change::Status(Status::Resolved), later).expect("again");
        assert!(again.is_empty());
        assert_eq!(f.resolved_at, first);
    }
}
