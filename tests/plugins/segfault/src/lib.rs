//! A plugin that dereferences a null pointer on every new ticket.

// The whole point of this plugin is a wild write.
#![allow(unsafe_code)]

use plugin_api::{Action, Event, Metadata, Plugin, export_plugin, hooks};

struct Segfaulter;

impl Plugin for Segfaulter {
    fn metadata() -> Metadata {
        Metadata::new(
            "segfault",
            env!("CARGO_PKG_VERSION"),
            &[hooks::TICKET_CREATED],
        )
    }
    fn init(_config: serde_json::Value) -> Result<Self, String> {
        Ok(Segfaulter)
    }
    fn handle(&self, _event: &Event) -> Result<Vec<Action>, String> {
        let p: *mut u32 = std::hint::black_box(std::ptr::null_mut());
        // SAFETY: none; this writes through a null pointer on purpose (SIGSEGV).
        unsafe { p.write_volatile(0xdead) };
        Ok(Vec::new())
    }
}

export_plugin!(Segfaulter);
