//! The staff directory from the configuration: who may answer and command,
//! and how `/assign` names a person or a group.

use super::mail::Address;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffMember {
    pub name: String,
    /// Lower-cased.
    pub email: String,
    pub groups: Vec<String>,
}

impl StaffMember {
    pub fn address(&self) -> Address {
        Address::new(self.name.clone(), &self.email)
    }
}

/// Whom `/assign` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    Person(String),
    Group(String),
    Nobody,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    members: Vec<StaffMember>,
}

impl Directory {
    pub fn new(members: Vec<StaffMember>) -> Directory {
        Directory { members }
    }

    pub fn members(&self) -> &[StaffMember] {
        &self.members
    }

    pub fn by_email(&self, email: &str) -> Option<&StaffMember> {
        self.members
            .iter()
            .find(|m| m.email.eq_ignore_ascii_case(email))
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.groups.iter().any(|g| g.eq_ignore_ascii_case(group)))
    }

    /// The people a ticket's news goes to: its assignee, else its group,
    /// else every staff member.
    pub fn watchers(&self, assignee: Option<&str>, group: Option<&str>) -> Vec<&StaffMember> {
        if let Some(m) = assignee.and_then(|a| self.by_email(a)) {
            return vec![m];
        }
        if let Some(g) = group {
            let in_group: Vec<&StaffMember> = self
                .members
                .iter()
                .filter(|m| m.groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
                .collect();
            if !in_group.is_empty() {
                return in_group;
            }
        }
        self.members.iter().collect()
    }

    /// Resolves the argument of `/assign`: `me`, `nobody`, an address, a
    /// local part or a name of a staff member, or a group name (optionally
    /// written `group:NAME` or `@NAME`).
    pub fn resolve(&self, who: &str, me: &str) -> Result<Assignee, String> {
        let who = who.trim();
        let lower = who.to_lowercase();
        if lower == "me" {
            return Ok(Assignee::Person(me.to_ascii_lowercase()));
        }
        if matches!(lower.as_str(), "nobody" | "none" | "-") {
            return Ok(Assignee::Nobody);
        }
        let group_name = lower
            .strip_prefix("group:")
            .or_else(|| lower.strip_prefix('@'));
        if let Some(g) = group_name {
            return if self.has_group(g) {
                Ok(Assignee::Group(g.to_string()))
            } else {
                Err(format!("no staff group {g:?}"))
            };
        }
        let matches: Vec<&StaffMember> = self
            .members
            .iter()
            .filter(|m| {
                m.email == lower
                    || m.email.split('@').next() == Some(lower.as_str())
                    || m.name.to_lowercase() == lower
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(Assignee::Person(one.email.clone())),
            [] if self.has_group(&lower) => Ok(Assignee::Group(lower)),
            [] => Err(format!("no staff member or group {who:?}")),
            _ => Err(format!(
                "{who:?} names several staff members; use the address"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        Directory::new(vec![
            StaffMember {
                name: "Ada Lovelace".into(),
                email: "ada@example.test".into(),
                groups: vec!["network".into()],
            },
            StaffMember {
                name: "Bob".into(),
                email: "bob@example.test".into(),
                groups: vec!["network".into(), "desktop".into()],
            },
            StaffMember {
                name: "Cy".into(),
                email: "cy@example.test".into(),
                groups: vec![],
            },
        ])
    }

    #[test]
    fn assign_resolves_people_and_groups() {
        let d = dir();
        let p = |s: &str| Assignee::Person(s.into());
        assert_eq!(
            d.resolve("ada", "bob@example.test"),
            Ok(p("ada@example.test"))
        );
        assert_eq!(d.resolve("Ada Lovelace", "x"), Ok(p("ada@example.test")));
        assert_eq!(
            d.resolve("BOB@example.test", "x"),
            Ok(p("bob@example.test"))
        );
        assert_eq!(d.resolve("me", "Cy@Example.test"), Ok(p("cy@example.test")));
        assert_eq!(d.resolve("nobody", "x"), Ok(Assignee::Nobody));
        assert_eq!(
            d.resolve("network", "x"),
            Ok(Assignee::Group("network".into()))
        );
        assert_eq!(
            d.resolve("@desktop", "x"),
            Ok(Assignee::Group("desktop".into()))
        );
        assert!(d.resolve("group:sales", "x").is_err());
        assert!(d.resolve("eve", "x").is_err());
    }

    #[test]
    fn watchers_fall_back_from_assignee_to_group_to_everyone() {
        let d = dir();
        let emails = |v: Vec<&StaffMember>| v.iter().map(|m| m.email.clone()).collect::<Vec<_>>();
        assert_eq!(
            emails(d.watchers(Some("cy@example.test"), Some("network"))),
            ["cy@example.test"]
        );
        assert_eq!(
            emails(d.watchers(None, Some("network"))),
            ["ada@example.test", "bob@example.test"]
        );
        assert_eq!(emails(d.watchers(None, Some("empty"))).len(), 3);
        assert_eq!(emails(d.watchers(Some("gone@x.test"), None)).len(), 3);
    }
}
