//! helpdeskd: an IT service desk that lives in email.
//!
//! `domain` is the pure core; `ingest`, `poller`, `outbox`, `store` and
//! `import` are the adapters at its edges; `app` wires them into the daemon.
//! ARCHITECTURE.md has the map.

pub mod app;
pub mod changes;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod ingest;
pub mod jobs;
pub mod metrics;
#[cfg(test)]
mod middle;
pub mod oauth2;
pub mod outbox;
pub mod plugins;
pub mod poller;
pub mod releases;
pub mod report;
pub mod service_level;
pub mod shutdown;
pub mod store;
pub mod supplier;
pub mod tickets;
pub mod tls;
pub mod token_secret;

pub use error::{Error, Result};

/// The message of a caught panic, for the log and the quarantine reason.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
