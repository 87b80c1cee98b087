//! sea-orm entities, one per table of `migrations/`. Plain data: no behaviour here.

pub mod attachment;
pub mod contact;
pub mod counter;
pub mod desk_fact;
pub mod event;
pub mod job_run;
pub mod job_state;
pub mod mailbox_state;
pub mod mailbox_status;
pub mod message;
pub mod message_raw_piece;
pub mod outbox;
pub mod participant;
pub mod plugin_error;
pub mod quarantine;
pub mod rating;
pub mod satisfaction_request;
pub mod sla_event;
pub mod sla_pause;
pub mod supplier_escalation;
pub mod ticket;
pub mod ticket_key;
pub mod ticket_link;
