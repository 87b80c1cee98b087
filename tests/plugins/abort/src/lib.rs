//! A plugin that aborts its process on every new ticket.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Aborter;

impl Plugin for Aborter {
    fn metadata() -> Metadata {
        Metadata::new("abort", env!("CARGO_PKG_VERSION"), &[hooks::TICKET_CREATED])
    }
    fn init(_config: serde_json::Value) -> Result<Self, String> {
        Ok(Aborter)
    }
    fn handle(&self, _event: &Event) -> Result<Vec<Action>, String> {
        std::process::abort()
    }
}

export_plugin!(Aborter);
