//! A fuzz harness for the pure ingest path, on the stable toolchain: raw
//! bytes → `ingest::parse` → `classify` → tokens → `threading::thread`
//! (against an in-memory desk that knows a few tickets, Message-IDs and
//! participants) → `conversation::author` / `apply` (staff configured, so
//! staff replies with commands run, with a valid reply token when the mail
//! carries one) → every draft addressed to every recipient and rendered
//! (`Draft::address`, `domain::render`), as `ingest::apply` does it for a
//! batch of one mail, without the database.
//!
//! [`run_one`] runs one input and reports a panic or a draft that cannot be
//! rendered (in the daemon that `Err` fails the whole ingest batch) as a
//! [`Finding`]; [`campaign`] feeds it structure-aware mutations of real
//! mails (`mutate`) for a while. The runner is `daemon/examples/fuzz.rs`; the
//! bounded CI run and the regression inputs are this module's tests.
//!
//! Not part of the desk's API: public only for the runner and a
//! coverage-guided target (`daemon/fuzz/`).

mod campaign;
mod mutate;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{LazyLock, Once};

use chrono::{DateTime, Duration, Utc};

use crate::domain::classify::classify;
use crate::domain::conversation::{
    self, Author, Lookup, MailIn, Participant, Settings, TicketState,
};
use crate::domain::intake::{self, MailFacts, Placed};
use crate::domain::mail::Address;
use crate::domain::threading::{Known, TicketRef};
use crate::domain::ticket::{ContactId, Kind, Priority, Role, Status, TicketId, TicketNumber};
use crate::domain::token::Token;
use crate::ingest::parse::{self, Parsed};

pub use campaign::{Campaign, Summary, UniqueFinding, campaign, corpus_dir, replay};
pub use mutate::{Mutator, Rng, builtin_seeds, corpus_seeds};

/// `ingest.max_message_bytes` of the harness: larger inputs are quarantined
/// unread, as in the daemon (whose default is 64 MiB; mutations stay far below).
pub const MAX_BYTES: usize = 16 << 20;

/// What one input did wrong.
#[derive(Debug)]
pub enum Finding {
    /// Something on the path panicked: in the daemon, the writer task dies.
    Panic {
        message: String,
        /// `file:line:column` of the panic.
        location: String,
        /// The stack at the panic, resolved when shown.
        backtrace: Option<std::backtrace::Backtrace>,
    },
    /// `domain::render` refused a draft the conversation rules made: in the
    /// daemon the whole ingest batch fails (and is fetched again, forever).
    RenderErr {
        draft: &'static str,
        recipient: String,
        error: String,
    },
}

impl Finding {
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Panic { .. } => "panic",
            Finding::RenderErr { .. } => "render-err",
        }
    }

    /// What tells findings apart: a panic's location and message, a render
    /// error's text without the addresses and Message-IDs in it.
    pub fn signature(&self) -> String {
        match self {
            Finding::Panic {
                message, location, ..
            } => format!("panic at {location}: {}", generalise(message)),
            Finding::RenderErr { error, .. } => {
                // "cannot send to \"ADDRESS\": WHY", "cannot build mail ID: WHY".
                let why = match error.strip_prefix("cannot send to ") {
                    Some(rest) => format!(
                        "cannot send to …: {}",
                        rest.rsplit(": ").next().unwrap_or(rest)
                    ),
                    None => match error.strip_prefix("cannot build mail ") {
                        Some(rest) => format!(
                            "cannot build mail …: {}",
                            rest.split_once(": ").map_or(rest, |(_, why)| why)
                        ),
                        None => error.clone(),
                    },
                };
                format!("render-err: {}", generalise(&why))
            }
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Panic {
                message,
                location,
                backtrace,
            } => {
                write!(f, "panic at {location}: {message}")?;
                if let Some(bt) = backtrace {
                    write!(f, "\nstack:\n{bt}")?;
                }
                Ok(())
            }
            Finding::RenderErr {
                draft,
                recipient,
                error,
            } => write!(
                f,
                "a {draft} draft to {recipient:?} cannot be rendered: {error}"
            ),
        }
    }
}

/// Quoted parts, words with an `@` and long digit runs become `…`, so one
/// bug with many addresses is one signature.
fn generalise(text: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…");
            }
            quoted = !quoted;
            if !quoted {
                out.push('"');
            }
        } else if !quoted {
            out.push(c);
        }
    }
    out.split(' ')
        .map(|w| {
            if w.contains('@') || w.chars().filter(char::is_ascii_digit).count() > 3 {
                "…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

/// Runs one input down the whole pure ingest path; a panic anywhere on it
/// is caught and returned, as is a draft that cannot be rendered.
pub fn run_one(raw: &[u8]) -> Result<(), Finding> {
    install_hook();
    let desk = &*DESK;
    CAPTURING.set(true);
    let result = std::panic::catch_unwind(|| exercise(desk, raw));
    CAPTURING.set(false);
    match result {
        Ok(r) => r.map(|_| ()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".into());
            let (location, backtrace) = CAPTURED
                .take()
                .unwrap_or_else(|| ("(unknown)".into(), None));
            Err(Finding::Panic {
                message,
                location,
                backtrace,
            })
        }
    }
}

thread_local! {
    /// Set while [`run_one`] runs on this thread: its panics are recorded
    /// here, not printed.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<(String, Option<std::backtrace::Backtrace>)>> =
        const { RefCell::new(None) };
    /// Panic locations whose stack this thread already took: a stack is
    /// taken once per location, a known panic found again costs little.
    static STACKS_TAKEN: RefCell<std::collections::HashSet<String>> =
        RefCell::new(std::collections::HashSet::new());
}

/// A panic hook that records panics of [`run_one`] and leaves every other
/// panic (other tests, other threads) to the hook it replaces.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAPTURING.get() {
                previous(info);
                return;
            }
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "(unknown)".into());
            let first = STACKS_TAKEN.with_borrow_mut(|seen| seen.insert(location.clone()));
            let backtrace = first.then(std::backtrace::Backtrace::force_capture);
            CAPTURED.set(Some((location, backtrace)));
        }));
    });
}

/// The desk the harness runs against.
struct FuzzDesk {
    settings: Settings,
    now: DateTime<Utc>,
    tickets: HashMap<i64, TicketState>,
    by_mid: HashMap<String, TicketRef>,
    contacts: HashMap<String, i64>,
    /// Desk mails a bounce may name: Message-ID → recipients.
    outbox: HashMap<String, String>,
    /// Known errors new tickets are matched against.
    known_errors: Vec<crate::domain::problem::KnownError>,
}

/// The desk's facts, for the seeds and the tests: who is who, and which ids
/// the desk knows.
pub mod facts {
    pub const DESK: &str = "support@example.test";
    pub const TAG: &str = "ACME";
    pub const ADA: &str = "ada@example.test";
    pub const BOB: &str = "bob@example.test";
    pub const CUSTOMER: &str = "jo@cust.test";
    pub const CC: &str = "cc@cust.test";
    pub const SUPPLIER: &str = "noc@netco.test";
    pub const ADA_CONTACT: i64 = 21;
    pub const BOB_CONTACT: i64 = 22;
    pub const CUSTOMER_CONTACT: i64 = 11;
    pub const SECRET: &[u8] = b"helpdeskd-fuzz-harness-secret";
    pub const TRUSTED_AUTHSERV: &str = "mx.example.test";
    /// Customer mails of ticket 1.
    pub const KNOWN_IDS: [&str; 2] = ["m1@cust.test", "m2@cust.test"];
    /// A desk mail of ticket 1 that a bounce can name.
    pub const SENT_ID: &str = "sent1@example.test";
}

static DESK: LazyLock<FuzzDesk> = LazyLock::new(FuzzDesk::new);

/// The harness's desk as a configuration file says it, read by the
/// daemon's own code (`Config::parse`, `app::settings`), so settings the
/// desk gains later get their defaults here too.
const CONFIG: &str = r#"
[desk]
name = "ACME Service Desk"
address = "support@example.test"
tag = "ACME"
token_secret_file = "token.key"

[[mailbox]]
name = "INBOX"
group = "network"
service = "email"
[mailbox.imap]
host = "127.0.0.1"
user = "support"
password_env = "HELPDESK_FUZZ_UNUSED"

[smtp]
host = "127.0.0.1"

[[staff]]
name = "Ada Lovelace"
email = "ada@example.test"
groups = ["network"]

[[staff]]
name = "Bob"
email = "bob@example.test"
groups = ["desktop"]

[trust]
authserv_ids = ["mx.example.test"]

[[sla_policy]]
name = "standard"
response = { urgent = "30m", high = "1h", normal = "4h", low = "8h" }
resolution = { urgent = "4h", high = "8h", normal = "3d", low = "5d" }

[[service]]
name = "email"
sla_policy = "standard"
escalation = "servicemanager@example.test"

[[supplier]]
name = "NetCo"
contacts = ["noc@netco.test"]
response_target = "2h"
resolution_target = "8h"
manager = "ada@example.test"

[[item]]
name = "email"
kind = "service"
depends_on = ["db1"]

[[item]]
name = "db1"
kind = "system"
"#;

/// Reads [`CONFIG`] with the token secret in a file of its own (the daemon
/// reads the key from a file) under the temporary directory.
fn desk_settings() -> crate::Result<Settings> {
    let dir = std::env::temp_dir().join(format!("helpdeskd-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
    let key_file = dir.join("token.key");
    std::fs::write(&key_file, facts::SECRET).map_err(|e| crate::Error::io(&key_file, e))?;
    let config = crate::config::Config::parse(&dir.join("helpdesk.toml"), CONFIG, &|_| {
        Some("unused".to_string())
    })
    .map_err(|e| crate::Error::Invalid(e.to_string()))?;
    let settings = crate::app::settings(&config);
    let _ = std::fs::remove_dir_all(&dir);
    let mut settings = settings?;
    // Hook events are built as if a plugin were installed.
    settings.emit_events = true;
    Ok(settings)
}

/// The harness's settings (built once): the token key, staff and suppliers
/// the seeds are written for.
pub fn settings() -> &'static Settings {
    &DESK.settings
}

/// A reply token of the harness's desk, as the desk signs it.
pub fn token(seq: i64, contact: i64) -> String {
    DESK.settings.key.sign(Token {
        number: number(seq),
        contact: ContactId(contact),
    })
}

fn number(seq: i64) -> TicketNumber {
    TicketNumber {
        kind: Kind::Incident,
        seq,
    }
}

impl FuzzDesk {
    fn new() -> FuzzDesk {
        use facts::*;
        let settings = desk_settings().unwrap_or_else(|e| panic!("the fuzz harness's desk: {e}"));
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        let person = |name: &str, email: &str, role: &str| Participant {
            address: Address::new(name, email),
            role: role.parse().unwrap_or(Role::Participant),
        };
        let ticket = |seq: i64, status: Status, customer: Participant| TicketState {
            id: TicketId(seq),
            number: number(seq),
            subject: format!("Ticket {seq}: the printer is on fire"),
            status,
            priority: Priority::Normal,
            kind: Kind::Incident,
            assignee: None,
            team: None,
            customer: customer.address.clone(),
            resolved_at: None,
            root_message_id: Some(format!("root{seq}@cust.test")),
            last_public_message_id: None,
            participants: vec![customer],
            created_at: now - Duration::days(20),
            service: Some("email".into()),
            responded_at: None,
            mailbox: "INBOX".into(),
            fields: "{}".into(),
            change: None,
        };
        let mut t1 = ticket(1, Status::Open, person("Jo Doe", CUSTOMER, "customer"));
        t1.participants.push(person("Cc Person", CC, "cc"));
        t1.participants.push(person("Ada Lovelace", ADA, "staff"));
        t1.root_message_id = Some(KNOWN_IDS[0].into());
        t1.last_public_message_id = Some(KNOWN_IDS[1].into());
        let mut t2 = ticket(
            2,
            Status::Pending,
            person("Ann", "ann@cust.test", "customer"),
        );
        t2.assignee = Some(ADA.into());
        let mut t3 = ticket(3, Status::Resolved, person("Jo Doe", CUSTOMER, "customer"));
        t3.resolved_at = Some(now - Duration::days(30));
        let t4 = ticket(4, Status::Closed, person("Jo Doe", CUSTOMER, "customer"));
        let mut t5 = ticket(5, Status::Resolved, person("Jo Doe", CUSTOMER, "customer"));
        t5.resolved_at = Some(now - Duration::days(1));
        t5.team = Some("desktop".into());
        let tickets: HashMap<i64, TicketState> = [t1, t2, t3, t4, t5]
            .into_iter()
            .map(|t| (t.id.0, t))
            .collect();
        let mut by_mid = HashMap::new();
        for t in tickets.values() {
            let r = TicketRef {
                id: t.id,
                number: t.number,
            };
            for id in [&t.root_message_id, &t.last_public_message_id]
                .into_iter()
                .flatten()
            {
                by_mid.insert(id.clone(), r);
            }
            by_mid.insert(format!("{}.staff@example.test", t.number), r);
        }
        by_mid.insert(
            SENT_ID.into(),
            TicketRef {
                id: TicketId(1),
                number: number(1),
            },
        );
        let contacts = [
            (CUSTOMER, CUSTOMER_CONTACT),
            (CC, 12),
            ("ann@cust.test", 13),
            (ADA, ADA_CONTACT),
            (BOB, BOB_CONTACT),
            (SUPPLIER, 31),
        ]
        .into_iter()
        .map(|(e, id)| (e.to_string(), id))
        .collect();
        let outbox = [(SENT_ID.to_string(), CUSTOMER.to_string())]
            .into_iter()
            .collect();
        FuzzDesk {
            settings,
            now,
            tickets,
            by_mid,
            contacts,
            outbox,
            known_errors: ["vpn|anyconnect, drops|disconnects", "printer, fire|smoke"]
                .into_iter()
                .enumerate()
                .filter_map(|(i, spec)| {
                    Some(crate::domain::problem::KnownError {
                        id: TicketId(900 + i as i64),
                        number: TicketNumber {
                            kind: Kind::Problem,
                            seq: 900 + i as i64,
                        },
                        subject: format!("known error {i}"),
                        workaround: "Reconnect with the web client.".into(),
                        keywords: spec.parse().ok()?,
                    })
                })
                .collect(),
        }
    }
}

/// The desk's knowledge plus what the one mail adds (its new ticket).
struct View<'a> {
    desk: &'a FuzzDesk,
    extra: Option<(TicketRef, String)>,
}

impl Known for View<'_> {
    fn ticket_by_message_id(&self, message_id: &str) -> Option<TicketRef> {
        self.desk.by_mid.get(message_id).copied()
    }
    fn ticket_by_number(&self, number: TicketNumber) -> Option<TicketRef> {
        if let Some((r, _)) = &self.extra
            && r.number.seq == number.seq
        {
            return Some(*r);
        }
        self.desk.tickets.get(&number.seq).map(|t| TicketRef {
            id: t.id,
            number: t.number,
        })
    }
    fn is_participant(&self, ticket_id: TicketId, email: &str) -> bool {
        if let Some((r, sender)) = &self.extra
            && r.id == ticket_id
        {
            return sender == email;
        }
        self.desk
            .tickets
            .get(&ticket_id.0)
            .is_some_and(|t| t.is_participant(email))
    }
}

impl Lookup for View<'_> {
    fn ticket_id(&self, number: TicketNumber) -> Option<TicketId> {
        self.ticket_by_number(number).map(|t| t.id)
    }
}

/// Contact ids: the desk's, then new ones for new addresses.
struct Contacts<'a> {
    known: &'a HashMap<String, i64>,
    new: HashMap<String, i64>,
}

impl Contacts<'_> {
    fn id_for(&mut self, email: &str) -> i64 {
        if let Some(id) = self.known.get(email) {
            return *id;
        }
        let next = 1000 + self.new.len() as i64;
        *self.new.entry(email.to_string()).or_insert(next)
    }
}

/// Where one mail went, for the tests that check the seeds reach each path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The threading rule, `quarantine` or `no sender`.
    pub rule: &'static str,
    pub author: &'static str,
    pub ticket: i64,
    pub drafts: Vec<&'static str>,
    pub flag: Option<String>,
}

/// [`run_one`] without the panic guard, saying where the mail went.
pub fn trace_one(raw: &[u8]) -> Result<Trace, Finding> {
    exercise(&DESK, raw)
}

/// One mail through the pure steps of `ingest::apply` (`apply/mail.rs`) and
/// `queue_drafts`, in their order. `parse` is called unguarded (the daemon
/// calls `parse_guarded`), so a parser panic is still a finding.
fn exercise(desk: &FuzzDesk, raw: &[u8]) -> Result<Trace, Finding> {
    let settings = &desk.settings;
    let now = desk.now;
    let parsed = parse::parse(raw, MAX_BYTES);
    let dedup_key = parsed.dedup_key;
    let mut mail = match parsed.parsed {
        Parsed::Mail(mail) => mail,
        Parsed::Quarantine(_) => {
            return Ok(Trace {
                rule: "quarantine",
                ..Trace::default()
            });
        }
    };
    let Some(sender) = mail.from.clone() else {
        return Ok(Trace {
            rule: "no sender",
            ..Trace::default()
        });
    };
    let class = classify(&mail);
    let toks = crate::ingest::apply::mail_tokens(settings, &mail);
    let mut view = View { desk, extra: None };
    let mut contacts = Contacts {
        known: &desk.contacts,
        new: HashMap::new(),
    };
    let contact_id = contacts.id_for(&sender.email);
    let Placed { route, author } = intake::place(
        settings,
        &MailFacts {
            mail: &mail,
            sender: &sender,
            class: &class,
            tokens: &toks,
            contact: ContactId(contact_id),
        },
        &view,
        |id| {
            desk.tickets
                .get(&id.0)
                .is_some_and(|st| st.is_finished(now, settings.reopen_window))
        },
    );
    let rule = route.rule;
    let new_ticket = route.ticket.is_none();
    if !new_ticket && mail.new_text.is_none() {
        mail.new_text = Some(parse::new_text_of(raw));
    }
    let existing = route
        .ticket
        .and_then(|t| Some((t, desk.tickets.get(&t.id.0)?.clone())));
    let (t, mut state) = match existing {
        Some(found) => found,
        None => {
            let state = intake::new_ticket(
                TicketId(100),
                &mail.subject,
                &sender,
                "INBOX",
                settings,
                now,
            );
            let t = TicketRef {
                id: state.id,
                number: state.number,
            };
            view.extra = Some((t, sender.email.clone()));
            (t, state)
        }
    };
    if !new_ticket {
        intake::join(&mut state, &sender, &author);
    }
    let bounced = class
        .is_bounce()
        .then(|| {
            let b = mail.bounce.as_ref()?;
            let recipients = desk.outbox.get(b.original_message_id.as_ref()?)?;
            intake::bounce_summary(b, recipients)
        })
        .flatten();
    let may_acknowledge = new_ticket && matches!(author, Author::Customer);
    let known_error = may_acknowledge
        .then(|| crate::domain::problem::best_match(&desk.known_errors, &mail.subject, &mail.text))
        .flatten();
    let fx = conversation::apply(
        settings,
        &mut state,
        &MailIn {
            mail: &mail,
            sender: &sender,
            author: &author,
            class: &class,
            new_ticket,
            may_acknowledge,
            bounced,
            known_error,
        },
        &view,
        now,
    );
    for p in &fx.added {
        contacts.id_for(&p.address.email);
    }
    if settings.emit_events {
        let _ = crate::tickets::events::for_mail(&state, &mail, &fx, new_ticket);
    }
    let _ = mail.from.as_ref().map(Address::display);
    // As `ingest::apply::problems`: the record edit, and the mails a solved
    // problem sends (the staff text into a customer mail).
    let _ = fx
        .problem_edit
        .apply_to(&crate::domain::problem::Record::default());
    let mut drafts = fx.drafts.clone();
    if (state.kind == Kind::Problem || fx.new_problem.is_some())
        && let Some(incident) = desk.tickets.values().find(|t| t.kind != Kind::Problem)
    {
        drafts.push(crate::domain::problem::resolution_notice(
            settings,
            &state,
            &crate::domain::problem::Record::default(),
            incident,
            &fx.shown_text,
            true,
        ));
        drafts.extend(crate::domain::problem::incident_notice(
            settings,
            &state,
            incident,
            &fx.shown_text,
        ));
        if let Author::Staff(member) = &author {
            drafts.push(crate::domain::problem::opened_notice(
                settings, &state, incident, member,
            ));
        }
    }
    // As `queue_drafts`: a copy per recipient, with its own token, rendered.
    let unique = parse::sha256_hex(dedup_key.as_bytes())[..16].to_string();
    let attachments =
        if fx.drafts.iter().any(|d| d.with_attachments) && !mail.attachments.is_empty() {
            parse::attachments(raw)
        } else {
            Vec::new()
        };
    for (d, draft) in drafts.iter().enumerate() {
        for (r, to) in draft.to.iter().take(settings.max_recipients).enumerate() {
            // Recipients the desk cannot write to are skipped by design (and
            // warned about at parse time); a draft that passes the check and
            // still cannot be rendered is a finding.
            if crate::domain::render::check_recipient(to).is_err() {
                continue;
            }
            let token = Token {
                number: t.number,
                contact: ContactId(contacts.id_for(&to.email)),
            };
            let tag = format!("{}{d}{r}.{unique}", &draft.kind.as_str()[..1]);
            let mut out = draft.address(settings, to, token, &tag);
            if draft.with_attachments {
                out.attachments = attachments.clone();
            }
            crate::domain::render::render(&out, now).map_err(|e| Finding::RenderErr {
                draft: draft.kind.as_str(),
                recipient: to.display(),
                error: e.to_string(),
            })?;
        }
    }
    Ok(Trace {
        rule,
        author: author.as_str(),
        ticket: t.id.0,
        drafts: fx.drafts.iter().map(|d| d.kind.as_str()).collect(),
        flag: fx.flag.clone(),
    })
}
