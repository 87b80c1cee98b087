//! The ticket layer: what every writer of tickets shares, between the pure
//! domain and the adapters (ingest, the jobs, the plugin dispatcher). It
//! may use `domain` and `store`; nothing here imports
//! `ingest`, `plugins`, the jobs or `app`.
//!
//! Today it holds the id counters, the contacts of a transaction, desk mails
//! into the outbox and hook event rows; the change engine of the issue "One
//! ticket layer" belongs here next.

mod contacts;
mod counter;
mod drafts;
pub(crate) mod events;
mod release;
pub mod sla;

pub(crate) use contacts::Contacts;
pub(crate) use counter::{Counter, IdCounts, Reservation};
pub(crate) use drafts::{Queue, Queued, queue_drafts};
pub use events::event_row;
pub use release::release_record;
