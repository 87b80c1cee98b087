//! The only crate a helpdeskd plugin depends on.
//!
//! A plugin is a shared library (`cdylib`) in the desk's plugin folder. The
//! daemon hands it **events** (a ticket was created, updated, resolved, a
//! message arrived, …) and applies the **actions** it returns (add a note,
//! set a field, send a mail, veto a gate) after validating each of them.
//!
//! In Rust, implement [`Plugin`] and call [`export_plugin!`]:
//!
//! ```
//! use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};
//!
//! struct Urgent;
//!
//! impl Plugin for Urgent {
//!     fn metadata() -> Metadata {
//!         Metadata::new("urgent", env!("CARGO_PKG_VERSION"), &[hooks::TICKET_CREATED])
//!     }
//!     fn init(_config: serde_json::Value) -> Result<Self, String> {
//!         Ok(Urgent)
//!     }
//!     fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
//!         let urgent = event
//!             .ticket
//!             .as_ref()
//!             .is_some_and(|t| t.subject.to_lowercase().contains("urgent"));
//!         Ok(if urgent {
//!             vec![Action::SetPriority { priority: "urgent".into() }]
//!         } else {
//!             vec![]
//!         })
//!     }
//! }
//!
//! export_plugin!(Urgent);
//! ```
//!
//! The boundary is a small C ABI ([`abi`], and `include/helpdeskd_plugin.h`
//! for C authors) over which events and results travel as JSON, so a plugin
//! built with another compiler version, or written in another language,
//! loads and works. Panics are caught at the boundary and become error
//! results. README.md is the author's guide.
//!
//! # The event contract
//!
//! Every event is one JSON object (see [`Event`]):
//!
//! ```json
//! {"id": 42, "hook": "ticket.created",
//!  "ticket": {"number": "INC-000001", "kind": "incident", "status": "new",
//!             "priority": "normal", "subject": "Printer on fire",
//!             "assignee": null, "group": null, "customer": "jo@example.com",
//!             "mailbox": "support", "fields": {"site": "Berlin"}},
//!  "message": {"message_id": "abc@example.com", "from": "jo@example.com",
//!              "subject": "Printer on fire", "text": "It burns.",
//!              "visibility": "public"},
//!  "changes": [{"field": "status", "from": "new", "to": "open"}]}
//! ```
//!
//! `ticket` is the ticket as it was when the event happened; `message` is the
//! mail or note that caused it (`null` when none did); `changes` lists what the
//! event changed (empty for `ticket.created`). A string that is `null` or
//! missing reads as empty. Other top-level keys carry a hook's own data (the
//! supplier hooks add `supplier`) and land in [`Event::data`]. Unknown keys
//! may be added in later versions of the same ABI: read the ones you know,
//! ignore the rest.

#![warn(missing_docs)]

pub mod abi;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the C ABI this crate implements. The daemon refuses a
/// plugin whose function table carries another version.
pub const ABI_VERSION: u32 = 1;

/// The hooks, by name. A hook is a plain string on the wire, so adding one
/// (SLA, change and release hooks come later) adds a constant here
/// and changes nothing in the ABI; a plugin that asks for a hook the daemon
/// does not know is loaded and simply never called for it.
pub mod hooks {
    /// A new ticket was opened (by a customer mail, an import, …).
    pub const TICKET_CREATED: &str = "ticket.created";
    /// A ticket's status, priority, kind, assignee or a field changed.
    pub const TICKET_UPDATED: &str = "ticket.updated";
    /// A ticket moved to `resolved`.
    pub const TICKET_RESOLVED: &str = "ticket.resolved";
    /// A mail (customer or staff) was stored on a ticket.
    pub const MESSAGE_RECEIVED: &str = "message.received";
    /// A staff member escalated a ticket to a supplier (`/supplier NAME …`);
    /// the event's [`data`](crate::Event::data) holds `supplier`: `name` and
    /// `note`.
    pub const SUPPLIER_ESCALATED: &str = "supplier.escalated";
    /// The supplier review job created a review ticket (assigned to the
    /// supplier manager); the event's [`data`](crate::Event::data) holds
    /// `supplier`: `name`, the period (`from`, `to`, RFC 3339), the contract's
    /// `response_target_minutes` and `resolution_target_minutes`, and the
    /// review `figures` (see README.md).
    pub const SUPPLIER_REVIEW_DUE: &str = "supplier.review_due";
    /// The SLA job found a ticket past the warning share of a target; the
    /// event's [`data`](crate::Event::data) holds `sla`: `target`
    /// (`response` or `resolution`), `due` (RFC 3339) and `service`.
    pub const SLA_WARNING: &str = "sla.warning";
    /// The SLA job found a ticket past a target; `data` as for [`SLA_WARNING`].
    pub const SLA_BREACHED: &str = "sla.breached";
    /// A gate: the release manager asked to deploy a release (`/deploy`).
    /// The event's [`data`](crate::Event::data) holds `release`: `number`,
    /// `title`, `manager`, `deploy_at` (RFC 3339, UTC), `window` (`start`,
    /// `end` in RFC 3339 UTC and `zone`, or null) and `changes`, each with
    /// `number`, `subject`, `state` (`draft`, `submitted`, `approved`,
    /// `rejected`, `scheduled`, `implemented`, `failed`, `closed`) and
    /// `items`. A [`Veto`](crate::Action::Veto) stops the deploy; the reason
    /// is recorded on the release and mailed to its manager.
    pub const RELEASE_BEFORE_DEPLOY: &str = "release.before_deploy";
    /// A release was deployed (no plugin vetoed); `data` as for
    /// [`RELEASE_BEFORE_DEPLOY`], plus `services`: those its changes touch.
    pub const RELEASE_DEPLOYED: &str = "release.deployed";
    /// A staff member submitted a change for approval (`/submit`); the
    /// event's [`data`](crate::Event::data) holds `change`: `number`,
    /// `state`, `risk`, `impact`, `window_start`, `window_end` (RFC 3339),
    /// `items`, `round`, `board`, `approvers` and `flags` (overlaps, freezes).
    pub const CHANGE_SUBMITTED: &str = "change.submitted";
    /// A change's approvers reached its quorum; `data` as for [`CHANGE_SUBMITTED`].
    pub const CHANGE_APPROVED: &str = "change.approved";
    /// A change's quorum can no longer be reached; `data` as for [`CHANGE_SUBMITTED`].
    pub const CHANGE_REJECTED: &str = "change.rejected";
    /// A change was marked implemented (`/change implemented`); `data` as
    /// for [`CHANGE_SUBMITTED`].
    pub const CHANGE_IMPLEMENTED: &str = "change.implemented";

    /// Every hook this version of the crate knows.
    pub const ALL: &[&str] = &[
        TICKET_CREATED,
        TICKET_UPDATED,
        TICKET_RESOLVED,
        MESSAGE_RECEIVED,
        SUPPLIER_ESCALATED,
        SUPPLIER_REVIEW_DUE,
        SLA_WARNING,
        SLA_BREACHED,
        RELEASE_BEFORE_DEPLOY,
        RELEASE_DEPLOYED,
        CHANGE_SUBMITTED,
        CHANGE_APPROVED,
        CHANGE_REJECTED,
        CHANGE_IMPLEMENTED,
    ];

    /// Hooks that are gates: a [`Veto`](crate::Action::Veto) returned for
    /// one of them is recorded on the event and reported to the code that
    /// raised it (which then does not proceed). A veto for any other hook
    /// is an invalid action.
    pub const GATES: &[&str] = &[RELEASE_BEFORE_DEPLOY];

    /// Whether `hook` is one of [`ALL`].
    pub fn is_known(hook: &str) -> bool {
        ALL.contains(&hook)
    }

    /// Whether `hook` is one of [`GATES`].
    pub fn is_gate(hook: &str) -> bool {
        GATES.contains(&hook)
    }
}

/// Reads `null` (or a missing key) as an empty string, so that a plugin
/// never fails on an absent value.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// What a plugin is: its name (unique in the folder), version and the hooks
/// it wants. Returned by [`Plugin::metadata`] before any configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// A short unique name, such as `keyword-router`; it also names the
    /// plugin's configuration table `[plugins.config.NAME]`.
    pub name: String,
    /// The plugin's own version, shown by `helpdeskd plugins list`.
    pub version: String,
    /// The hooks (see [`hooks`]) this plugin is called for.
    pub hooks: Vec<String>,
}

impl Metadata {
    /// Metadata from borrowed parts.
    pub fn new(name: &str, version: &str, hooks: &[&str]) -> Metadata {
        Metadata {
            name: name.to_string(),
            version: version.to_string(),
            hooks: hooks.iter().map(|h| h.to_string()).collect(),
        }
    }
}

/// One event: a hook fired for a ticket. See the crate documentation for the
/// JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's id in the desk's event outbox; an event may be delivered
    /// more than once (after a crash), always with the same id.
    pub id: i64,
    /// The hook, one of [`hooks`].
    pub hook: String,
    /// The ticket as it was when the event happened; present for every hook
    /// that exists now.
    pub ticket: Option<Ticket>,
    /// The message that caused the event, if one did.
    #[serde(default)]
    pub message: Option<Message>,
    /// What changed (empty for `ticket.created`).
    #[serde(default)]
    pub changes: Vec<Change>,
    /// Data of the hook beyond the ticket: every other top-level key of the
    /// event, such as `supplier` for the supplier hooks. Empty for the
    /// ticket and message hooks.
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// A ticket as plugins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// `INC-000042`: kind prefix and sequence.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub number: String,
    /// `incident`, `request`, `problem`, `change` or `complaint`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub kind: String,
    /// `new`, `open`, `pending`, `resolved` or `closed`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub status: String,
    /// `low`, `normal`, `high` or `urgent`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub priority: String,
    /// The subject of the mail that opened the ticket.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subject: String,
    /// The assigned staff member's address, if any.
    pub assignee: Option<String>,
    /// The staff group the ticket belongs to, if any.
    pub group: Option<String>,
    /// The customer's address.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub customer: String,
    /// The `[[mailbox]]` name the ticket came in through.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub mailbox: String,
    /// Custom fields (set by plugins with [`Action::SetField`]).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// A message on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The Message-ID without angle brackets; empty when the mail had none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub message_id: String,
    /// The sender's address.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub from: String,
    /// The subject.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subject: String,
    /// The text shown on the ticket (quoted history stripped where known).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub text: String,
    /// `public` (seen by the customer) or `internal` (staff only).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub visibility: String,
}

/// One changed attribute of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `status`, `priority`, `kind`, `assignee`, `group` or `field:NAME`.
    pub field: String,
    /// The value before (`null`: none).
    pub from: Option<String>,
    /// The value after (`null`: none).
    pub to: Option<String>,
}

/// What a plugin asks the desk to do. The daemon validates every action
/// (unknown assignee, illegal status transition, unknown priority or kind,
/// a veto outside a gate → recorded as a plugin error, not applied) and
/// applies all valid actions of one event in one transaction.
///
/// On the wire an action is an object with a `type` key:
/// `{"type": "set_priority", "priority": "high"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Adds an internal note (staff only) to the ticket.
    AddNote {
        /// The note's text.
        text: String,
    },
    /// Moves the ticket to another status, if the transition is legal
    /// (a closed ticket stays closed; nothing goes back to `new`).
    SetStatus {
        /// `open`, `pending`, `resolved` or `closed`.
        status: String,
    },
    /// Sets the priority: `low`, `normal`, `high` or `urgent`.
    SetPriority {
        /// The new priority.
        priority: String,
    },
    /// Sets the kind: `incident`, `request`, `problem`, `change` or `complaint`. The
    /// ticket keeps its number.
    SetKind {
        /// The new kind.
        kind: String,
    },
    /// Assigns the ticket to a configured staff member (by address or name)
    /// or group (`group:NAME`, which takes the ticket off its assignee), or
    /// unassigns it with `null`.
    SetAssignee {
        /// The staff member, or `None` to unassign.
        assignee: Option<String>,
    },
    /// Sets the service the ticket is about (a configured `[[service]]`);
    /// its SLA policy then sets the ticket's due times.
    SetService {
        /// The service's name.
        service: String,
    },
    /// Sets a custom field of the ticket.
    SetField {
        /// The field's name (1–64 characters).
        name: String,
        /// Its value.
        value: String,
    },
    /// Sends a mail from the desk address through the desk's outbox; the
    /// subject gets the ticket's tag.
    SendMail {
        /// Recipients' addresses.
        to: Vec<String>,
        /// The subject.
        subject: String,
        /// The plain-text body.
        body: String,
    },
    /// Vetoes a gate hook (see [`hooks::GATES`]) with a reason.
    Veto {
        /// Why, shown to whoever raised the gate.
        reason: String,
    },
}

/// What [`Plugin::handle`] returns on the wire: `{"actions": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The actions, applied in order.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// A plugin, written as plain safe Rust. [`export_plugin!`] turns a type
/// implementing it into the exported C ABI.
///
/// The daemon calls [`metadata`](Plugin::metadata) first, then
/// [`init`](Plugin::init) once per process with the plugin's configuration,
/// then [`handle`](Plugin::handle) for each event of a hook it asked for, one
/// call at a time. A panic in any of them is caught and reported as an error;
/// an `Err` is recorded and the event retried (up to the configured number
/// of times).
pub trait Plugin: Send + Sync + Sized + 'static {
    /// Name, version and hooks.
    fn metadata() -> Metadata;
    /// Builds the plugin from its configuration: the table
    /// `[plugins.config.NAME]` of the desk's configuration file as JSON, or
    /// `null` when there is none.
    fn init(config: serde_json::Value) -> Result<Self, String>;
    /// Handles one event; returns the actions to apply (possibly none).
    fn handle(&self, event: &Event) -> Result<Vec<Action>, String>;
}

/// Exports a [`Plugin`] type as a helpdeskd plugin: generates the
/// `helpdeskd_plugin_v1` symbol returning the function table, with every
/// entry point wrapped so that panics never cross the boundary.
///
/// ```ignore
/// plugin_api::export_plugin!(MyPlugin);
/// ```
///
/// The crate must be built as a `cdylib` (`crate-type = ["cdylib"]`). The
/// expansion carries `#[allow(unsafe_code)]` for its `no_mangle` symbol, so it
/// works in crates that deny (but not forbid) unsafe code.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        impl $crate::abi::Exported for $plugin {
            fn slot() -> &'static $crate::abi::Slot<Self> {
                static SLOT: $crate::abi::Slot<$plugin> = $crate::abi::Slot::new();
                &SLOT
            }
        }

        #[doc(hidden)]
        static __HELPDESKD_PLUGIN_TABLE: $crate::abi::PluginV1 = $crate::abi::PluginV1 {
            abi_version: $crate::ABI_VERSION,
            struct_size: ::core::mem::size_of::<$crate::abi::PluginV1>(),
            metadata: $crate::abi::metadata::<$plugin>,
            init: $crate::abi::init::<$plugin>,
            handle: $crate::abi::handle::<$plugin>,
            free_buffer: $crate::abi::free_buffer,
        };

        /// The plugin's entry point: its function table.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn helpdeskd_plugin_v1() -> *const $crate::abi::PluginV1 {
            &__HELPDESKD_PLUGIN_TABLE
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_serializes_to_the_documented_contract() {
        let e = Event {
            id: 7,
            hook: hooks::TICKET_UPDATED.into(),
            ticket: Some(Ticket {
                number: "INC-000001".into(),
                kind: "incident".into(),
                status: "open".into(),
                priority: "normal".into(),
                subject: "Printer".into(),
                assignee: None,
                group: Some("ops".into()),
                customer: "jo@example.test".into(),
                mailbox: "support".into(),
                fields: BTreeMap::from([("k".to_string(), "v".to_string())]),
            }),
            message: None,
            changes: vec![Change {
                field: "status".into(),
                from: Some("new".into()),
                to: Some("open".into()),
            }],
            data: Default::default(),
        };
        let json = serde_json::to_string(&e).expect("serializes");
        assert_eq!(
            json,
            r#"{"id":7,"hook":"ticket.updated","ticket":{"number":"INC-000001","kind":"incident","status":"open","priority":"normal","subject":"Printer","assignee":null,"group":"ops","customer":"jo@example.test","mailbox":"support","fields":{"k":"v"}},"message":null,"changes":[{"field":"status","from":"new","to":"open"}]}"#
        );
        let back: Event = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_keys_are_ignored_and_optional_ones_default() {
        let e: Event =
            serde_json::from_str(r#"{"id":1,"hook":"sla.warning","ticket":null,"future":true}"#)
                .expect("parses");
        assert_eq!(e.hook, "sla.warning");
        assert!(e.changes.is_empty() && e.message.is_none());
        assert_eq!(e.data.get("future"), Some(&serde_json::Value::Bool(true)));
    }

    #[test]
    fn hook_data_reaches_the_plugin_and_round_trips() {
        let json = r#"{"id":3,"hook":"supplier.review_due","ticket":null,"message":null,"changes":[],"supplier":{"figures":{"escalated":2},"name":"NetCo"}}"#;
        let e: Event = serde_json::from_str(json).expect("parses");
        assert!(hooks::is_known(&e.hook));
        assert_eq!(e.data["supplier"]["figures"]["escalated"], 2);
        assert_eq!(serde_json::to_string(&e).expect("serializes"), json);
    }

    #[test]
    fn actions_are_tagged_by_type() {
        let a = Action::SetAssignee {
            assignee: Some("ann@example.test".into()),
        };
        assert_eq!(
            serde_json::to_string(&a).expect("serializes"),
            r#"{"type":"set_assignee","assignee":"ann@example.test"}"#
        );
        let r: Response = serde_json::from_str(
            r#"{"actions":[{"type":"send_mail","to":["a@b.test"],"subject":"s","body":"b"},{"type":"veto","reason":"no"}]}"#,
        )
        .expect("parses");
        assert_eq!(r.actions.len(), 2);
    }

    #[test]
    fn null_strings_read_as_empty() {
        let e: Event = serde_json::from_str(
            r#"{"id":1,"hook":"ticket.created","ticket":{"number":"INC-000001","kind":"incident","status":"new","priority":"normal","subject":null,"assignee":null,"group":null,"customer":"c@x.test","mailbox":null,"fields":{}},"message":{"message_id":null,"from":"c@x.test","subject":"s","text":"t","visibility":"public"}}"#,
        )
        .expect("parses");
        let t = e.ticket.expect("ticket");
        assert_eq!((t.subject.as_str(), t.mailbox.as_str()), ("", ""));
        assert_eq!(e.message.expect("message").message_id, "");
    }

    #[test]
    fn hooks_know_themselves() {
        assert!(hooks::is_known("ticket.created"));
        assert!(!hooks::is_known("ticket.exploded"));
        assert!(!hooks::is_gate("ticket.created"));
    }
}
