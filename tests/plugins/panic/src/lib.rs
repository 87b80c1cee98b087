//! A plugin that panics on every new ticket: the panic must be caught at the
//! boundary and become an error result.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Panicky;

impl Plugin for Panicky {
    fn metadata() -> Metadata {
        Metadata::new("panic", env!("CARGO_PKG_VERSION"), &[hooks::TICKET_CREATED])
    }
    fn init(_config: serde_json::Value) -> Result<Self, String> {
        Ok(Panicky)
    }
    fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
        panic!("the panic plugin panics on event {}", event.id)
    }
}

export_plugin!(Panicky);
