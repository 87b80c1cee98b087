//! Ticket identity and lifecycle values: kinds with their number prefixes,
//! statuses, priorities, and the `INC-000042` number format.

use std::fmt;
use std::str::FromStr;

/// What a ticket is about; the kind gives the number its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Incident,
    Request,
    Problem,
    Change,
    Release,
    /// A complaint about the service (`CMP`): its own notification group.
    Complaint,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Incident,
        Kind::Request,
        Kind::Problem,
        Kind::Change,
        Kind::Release,
        Kind::Complaint,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Incident => "INC",
            Kind::Request => "REQ",
            Kind::Problem => "PRB",
            Kind::Change => "CHG",
            Kind::Release => "REL",
            Kind::Complaint => "CMP",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Incident => "incident",
            Kind::Request => "request",
            Kind::Problem => "problem",
            Kind::Change => "change",
            Kind::Release => "release",
            Kind::Complaint => "complaint",
        }
    }

    /// The kinds' names, comma separated, for help and error texts.
    pub fn names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }

    fn from_prefix(prefix: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.prefix().eq_ignore_ascii_case(prefix))
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown kind {s:?} ({})", Kind::names()))
    }
}

/// The ticket lifecycle: `new` until staff answer, `open` while the desk
/// works on it, `pending` while it waits for the customer, `resolved` (a
/// customer reply within the reopen window opens it again) and `closed`,
/// which is final: a later customer reply opens a new, linked ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    New,
    Open,
    Pending,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::New,
        Status::Open,
        Status::Pending,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }
}

impl Status {
    /// Whether staff or a plugin may move a ticket from `self` to `to`.
    pub fn check_move(self, to: Status) -> Result<(), String> {
        match (self, to) {
            (Status::Closed, _) => Err("the ticket is closed; closed is final".into()),
            (_, Status::New) => Err("a ticket cannot go back to new".into()),
            _ => Ok(()),
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown status {s:?} (new, open, pending, resolved, closed)"))
    }
}

/// A ticket's id: the row key, and the sequence of its number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId(pub i64);

/// A contact's id: a person the desk knows by address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContactId(pub i64);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a person is on a ticket: its customer (who opened it), a cc'd
/// customer (`/cc`), someone else who wrote to it, or staff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Cc,
    Participant,
    Staff,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Customer, Role::Cc, Role::Participant, Role::Staff];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Cc => "cc",
            Role::Participant => "participant",
            Role::Staff => "staff",
        }
    }

    /// The customer side: who receives public answers.
    pub fn is_audience(self) -> bool {
        matches!(self, Role::Customer | Role::Cc)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (customer, cc, participant, staff)"))
    }
}

/// Who sees a message of a ticket: its customers too, or only staff
/// (the default: nothing is shown to customers by accident).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Visibility {
    Public,
    #[default]
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown priority {s:?} (low, normal, high, urgent)"))
    }
}

/// A ticket number: kind prefix and sequence, shown as `INC-000042`.
///
/// The sequence is global across kinds, so `INC-000042` and `REQ-000042`
/// never both exist; parsing accepts any prefix and any zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TicketNumber {
    pub kind: Kind,
    pub seq: i64,
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:06}", self.kind.prefix(), self.seq)
    }
}

impl FromStr for TicketNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a ticket number: {s:?} (expected e.g. INC-000042)");
        let (prefix, digits) = s.trim().split_once('-').ok_or_else(bad)?;
        let kind = Kind::from_prefix(prefix).ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let seq = digits.parse().map_err(|_| bad())?;
        Ok(TicketNumber { kind, seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_round_trips() {
        let n = TicketNumber {
            kind: Kind::Incident,
            seq: 42,
        };
        assert_eq!(n.to_string(), "INC-000042");
        assert_eq!("INC-000042".parse::<TicketNumber>(), Ok(n));
        assert_eq!("inc-42".parse::<TicketNumber>(), Ok(n));
        assert_eq!(
            "CHG-1234567".parse::<TicketNumber>().map(|n| n.to_string()),
            Ok("CHG-1234567".to_string())
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for s in [
            "",
            "INC",
            "INC-",
            "XYZ-1",
            "INC-12a",
            "INC--1",
            "INC-99999999999999999999",
        ] {
            assert!(s.parse::<TicketNumber>().is_err(), "{s} parsed");
        }
    }

    #[test]
    fn closed_is_final_and_new_is_never_reentered() {
        assert!(Status::Open.check_move(Status::Resolved).is_ok());
        assert!(Status::Resolved.check_move(Status::Open).is_ok());
        assert!(Status::Closed.check_move(Status::Open).is_err());
        assert!(Status::Open.check_move(Status::New).is_err());
        assert_eq!(" high".parse::<Priority>(), Ok(Priority::High));
        assert!("asap".parse::<Priority>().is_err());
    }

    #[test]
    fn status_parses_case_insensitively() {
        assert_eq!("Pending".parse::<Status>(), Ok(Status::Pending));
        assert!("waiting".parse::<Status>().is_err());
    }
}
