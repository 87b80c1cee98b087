//! A plugin that never returns from a new ticket.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Hanger;

impl Plugin for Hanger {
    fn metadata() -> Metadata {
        Metadata::new("hang", env!("CARGO_PKG_VERSION"), &[hooks::TICKET_CREATED])
    }
    fn init(_config: serde_json::Value) -> Result<Self, String> {
        Ok(Hanger)
    }
    fn handle(&self, _event: &Event) -> Result<Vec<Action>, String> {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

export_plugin!(Hanger);
