//! sea-orm entities, one per table of `migrations/`. Plain data: no behaviour here.

pub mod attachment;
pub mod contact;
pub mod counter;
pub mod event;
pub mod mailbox_state;
pub mod message;
pub mod outbox;
pub mod participant;
pub mod plugin_error;
pub mod quarantine;
pub mod ticket;
pub mod ticket_link;
