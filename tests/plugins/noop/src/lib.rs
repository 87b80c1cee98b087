//! A plugin that does nothing, for every hook: the baseline of the plugin
//! benchmark and a well-behaved neighbour in the isolation tests.

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Noop;

impl Plugin for Noop {
    fn metadata() -> Metadata {
        Metadata::new("noop", env!("CARGO_PKG_VERSION"), hooks::ALL)
    }
    fn init(_config: serde_json::Value) -> Result<Self, String> {
        Ok(Noop)
    }
    fn handle(&self, _event: &Event) -> Result<Vec<Action>, String> {
        Ok(Vec::new())
    }
}

export_plugin!(Noop);
