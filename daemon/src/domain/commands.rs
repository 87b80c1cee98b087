//! Commands staff write in the first lines of a reply (README "Staff
//! commands"): `/status`, `/assign`, `/priority`, `/kind`, `/link`, `/note`,
//! `/resolve`, `/close`, `/cc add|remove`, and the problem commands
//! `/problem`, `/rootcause`, `/workaround`, `/knownerror`.
//!
//! Parsing is separate from applying: this module only reads text. Whether
//! the sender may command, and whether a command fits the ticket, is decided
//! by `conversation`.

use super::mail::Address;
use super::problem::Keywords;
use super::ticket::{Kind, Priority, Status, TicketNumber};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Status(Status),
    Assign(String),
    Priority(Priority),
    Kind(Kind),
    Link(TicketNumber),
    Note,
    CcAdd(Address),
    CcRemove(String),
    /// `/service NAME`: the service (and so the SLA) the ticket is about.
    Service(String),
    /// `/supplier NAME [note]`: escalate the ticket to a supplier.
    Supplier {
        name: String,
        note: String,
    },
    /// `/problem TITLE`: a new problem ticket, linked to this one.
    Problem(String),
    /// `/rootcause [TEXT]`: without text, the reply's text is the cause.
    RootCause(String),
    /// `/workaround [TEXT]`: without text, the reply's text is the workaround.
    Workaround(String),
    /// `/knownerror KEYWORDS` or `/knownerror off` (`None`).
    KnownError(Option<Keywords>),
    /// `/release new TITLE` (`Err(title)`) or `/release REL-…` (`Ok`): put
    /// this change in a new or an existing release.
    Release(Result<TicketNumber, String>),
    /// `/deploy`: deploy this release (its gate is asked first).
    Deploy,
    /// `/outage start ITEM`, `/outage end`.
    Outage(super::outage::Command),
    /// `/ci NAME`: the ticket names a configuration item.
    Ci(String),
    /// `/risk`, `/impact`, `/window`, `/submit`, `/change` (`domain::changes`).
    Change(super::changes::apply::ChangeCommand),
}

impl Command {
    /// Whether the command takes the reply's text when it has none of its own.
    pub fn takes_text(&self) -> bool {
        matches!(self, Command::RootCause(t) | Command::Workaround(t) if t.is_empty())
    }
}

/// A command line that could not be read, with its line and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError {
    pub line: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub commands: Vec<Command>,
    pub errors: Vec<CommandError>,
    /// The text after the commands (for `/note`, the note).
    pub text: String,
}

impl Reply {
    pub fn is_note(&self) -> bool {
        self.commands.contains(&Command::Note)
    }
}

/// Splits a staff reply into its leading commands and the text after them.
pub fn parse(text: &str) -> Reply {
    let mut reply = Reply::default();
    let mut lines = text.lines().peekable();
    let mut note_head: Option<String> = None;
    while let Some(line) = lines.peek() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            lines.next();
            continue;
        }
        let Some(body) = trimmed.strip_prefix('/') else {
            break;
        };
        // A path such as "/var/log is full" is text, not a command.
        let (word, arg) = match body.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (body, ""),
        };
        if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphabetic()) {
            break;
        }
        lines.next();
        match command(&word.to_ascii_lowercase(), arg) {
            Ok(Command::Note) => {
                reply.commands.push(Command::Note);
                if !arg.is_empty() {
                    note_head = Some(arg.to_string());
                }
            }
            Ok(c) => reply.commands.push(c),
            Err(message) => reply.errors.push(CommandError {
                line: trimmed.to_string(),
                message,
            }),
        }
    }
    let rest: Vec<&str> = lines.collect();
    let mut text = rest.join("\n").trim().to_string();
    if let Some(head) = note_head {
        text = if text.is_empty() {
            head
        } else {
            format!("{head}\n{text}")
        };
    }
    reply.text = text;
    reply
}

fn command(word: &str, arg: &str) -> Result<Command, String> {
    let need = |what: &str| {
        if arg.is_empty() {
            Err(format!("/{word} needs {what}"))
        } else {
            Ok(arg)
        }
    };
    let no_arg = |c: Command| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(format!("/{word} takes no argument"))
        }
    };
    match word {
        "status" => need("a status (open, pending, resolved, closed)")?
            .parse()
            .map(Command::Status),
        "assign" => {
            need("a staff member, a group, me or nobody").map(|a| Command::Assign(a.to_string()))
        }
        "priority" => need("a priority (low, normal, high, urgent)")?
            .parse()
            .map(Command::Priority),
        "kind" => need(&format!("a kind ({})", Kind::names()))?
            .parse()
            .map(Command::Kind),
        "link" => need("a ticket number such as PRB-000012")?
            .parse()
            .map(Command::Link),
        "note" => Ok(Command::Note),
        "service" => need("a service name").map(|s| Command::Service(s.to_string())),
        "supplier" => {
            let arg = need("a supplier name")?;
            let (name, note) = match arg.split_once(char::is_whitespace) {
                Some((n, rest)) => (n, rest.trim()),
                None => (arg, ""),
            };
            Ok(Command::Supplier {
                name: name.to_string(),
                note: note.to_string(),
            })
        }
        "problem" => need("a title for the new problem").map(|t| Command::Problem(t.to_string())),
        "rootcause" => Ok(Command::RootCause(arg.to_string())),
        "workaround" => Ok(Command::Workaround(arg.to_string())),
        "knownerror" => {
            if arg.eq_ignore_ascii_case("off") {
                Ok(Command::KnownError(None))
            } else {
                arg.parse().map(|k| Command::KnownError(Some(k)))
            }
        }
        "release" => {
            let arg = need("NEW TITLE or a release number such as REL-000050")?;
            match arg.split_once(char::is_whitespace) {
                Some((w, title)) if w.eq_ignore_ascii_case("new") => {
                    Ok(Command::Release(Err(title.trim().to_string())))
                }
                _ if arg.eq_ignore_ascii_case("new") => {
                    Err("/release new needs a title".to_string())
                }
                _ => arg.parse().map(|n| Command::Release(Ok(n))),
            }
        }
        "deploy" => no_arg(Command::Deploy),
        "outage" => super::outage::parse(arg).map(Command::Outage),
        "ci" => need("a configuration item").map(|s| Command::Ci(s.to_string())),
        "risk" | "impact" | "window" | "submit" | "change" => {
            super::changes::apply::parse_command(word, arg).map(Command::Change)
        }
        "resolve" => no_arg(Command::Status(Status::Resolved)),
        "close" => no_arg(Command::Status(Status::Closed)),
        "cc" => {
            let usage = "usage: /cc add ADDRESS or /cc remove ADDRESS";
            let (op, addr) = arg.split_once(char::is_whitespace).ok_or(usage)?;
            let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
            let valid = addr
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !addr.contains(char::is_whitespace);
            if !valid {
                return Err(format!("{addr:?} is not a mail address"));
            }
            match op.to_ascii_lowercase().as_str() {
                "add" => Ok(Command::CcAdd(Address::new("", addr))),
                "remove" | "rm" | "del" => Ok(Command::CcRemove(addr.to_ascii_lowercase())),
                _ => Err(usage.to_string()),
            }
        }
        other => Err(format!(
            "unknown command /{other} (known: /status, /assign, /priority, /kind, /link, \
             /note, /resolve, /close, /cc, /service, /supplier, /problem, /rootcause, \
             /workaround, /knownerror, /release, /deploy, /outage, /ci, /risk, /impact, /window, \
             /submit, /change)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_then_text() {
        let r = parse(
            "\n/status pending\n/PRIORITY High\n\n/assign ada\nHello Jo,\n\n/not a command here\n",
        );
        assert_eq!(
            r.commands,
            vec![
                Command::Status(Status::Pending),
                Command::Priority(Priority::High),
                Command::Assign("ada".into()),
            ]
        );
        assert!(r.errors.is_empty());
        assert_eq!(r.text, "Hello Jo,\n\n/not a command here");
    }

    #[test]
    fn only_commands_leave_no_text() {
        let r = parse("/resolve\n/kind problem\n/link INC-7\n");
        assert_eq!(r.text, "");
        assert_eq!(r.commands.len(), 3);
        assert!(
            r.commands
                .contains(&Command::Link("INC-000007".parse().expect("n")))
        );
    }

    #[test]
    fn note_takes_the_rest_and_its_own_line() {
        let r = parse("/note checked the switch\nport 4 was down");
        assert!(r.is_note());
        assert_eq!(r.text, "checked the switch\nport 4 was down");
    }

    #[test]
    fn bad_commands_are_reported_with_their_line() {
        let r = parse(
            "/stauts resolved\n/priority whenever\n/status\n/resolve now\n/cc add nope\nText",
        );
        let msgs: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(r.errors.len(), 5, "{msgs:?}");
        assert!(msgs[0].starts_with("unknown command /stauts"));
        assert!(msgs[1].contains("unknown priority"));
        assert!(msgs[2].contains("needs a status"));
        assert!(msgs[3].contains("takes no argument"));
        assert!(msgs[4].contains("not a mail address"));
        assert_eq!(r.errors[0].line, "/stauts resolved");
        assert_eq!(r.text, "Text");
    }

    #[test]
    fn paths_and_plain_text_are_not_commands() {
        let r = parse("/var/log is full\n/status open");
        assert!(r.commands.is_empty() && r.errors.is_empty());
        assert_eq!(r.text, "/var/log is full\n/status open");
    }

    #[test]
    fn service_and_supplier_take_their_arguments() {
        let r = parse("/service email\n/supplier netco the router in room 4 is dead\n/supplier\n");
        assert_eq!(
            r.commands,
            vec![
                Command::Service("email".into()),
                Command::Supplier {
                    name: "netco".into(),
                    note: "the router in room 4 is dead".into()
                },
            ]
        );
        assert_eq!(r.errors.len(), 1);
    }

    #[test]
    fn problem_commands() {
        let r = parse(
            "/problem VPN drops every hour\n/rootcause\n/workaround use the web client\n\
             /knownerror vpn, drops|disconnects\n/knownerror OFF\n/knownerror ,\n/problem\n\
             The lease pool was too small.",
        );
        assert_eq!(
            r.commands,
            vec![
                Command::Problem("VPN drops every hour".into()),
                Command::RootCause(String::new()),
                Command::Workaround("use the web client".into()),
                Command::KnownError(Some("vpn, drops|disconnects".parse().expect("k"))),
                Command::KnownError(None),
            ]
        );
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(r.commands[1].takes_text() && !r.commands[2].takes_text());
        assert_eq!(r.text, "The lease pool was too small.");
    }

    #[test]
    fn release_commands() {
        let r = parse(
            "/release new December rollout\n/release REL-50\n/deploy\n/release new\n/deploy now\n/release soon",
        );
        assert_eq!(
            r.commands,
            vec![
                Command::Release(Err("December rollout".into())),
                Command::Release(Ok("REL-000050".parse().expect("n"))),
                Command::Deploy,
            ]
        );
        assert_eq!(r.errors.len(), 3, "{:?}", r.errors);
    }

    #[test]
    fn cc_add_and_remove() {
        let r = parse("/cc add <Kim@Example.test>\n/cc remove lee@example.test");
        assert_eq!(
            r.commands,
            vec![
                Command::CcAdd(Address::new("", "kim@example.test")),
                Command::CcRemove("lee@example.test".into()),
            ]
        );
    }
}
