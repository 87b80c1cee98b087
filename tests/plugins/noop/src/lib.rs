//! A plugin for every hook that does nothing, unless its configuration
//! scripts an answer per hook: `{"on": {"ticket.created": [actions…]}}`.
//! The baseline of the plugin benchmark, a well-behaved neighbour in the
//! isolation tests, and the scripted plugin of the dispatcher tests.

use std::collections::BTreeMap;

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Noop {
    on: BTreeMap<String, Vec<Action>>,
}

impl Plugin for Noop {
    fn metadata() -> Metadata {
        Metadata::new("noop", env!("CARGO_PKG_VERSION"), hooks::ALL)
    }
    fn init(config: serde_json::Value) -> Result<Self, String> {
        let on = match config.get("on") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
            None => BTreeMap::new(),
        };
        Ok(Noop { on })
    }
    fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
        Ok(self.on.get(&event.hook).cloned().unwrap_or_default())
    }
}

export_plugin!(Noop);
