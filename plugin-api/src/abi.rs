//! The C ABI between the daemon and a plugin, version [`ABI_VERSION`](crate::ABI_VERSION).
//!
//! A plugin library exports one symbol, `helpdeskd_plugin_v1`, a function
//! without arguments that returns a pointer to a static [`PluginV1`] table.
//! The table starts with `abi_version` and `struct_size`: the daemon refuses
//! a version it does not speak and reads only the fields `struct_size`
//! covers, so later versions can append entry points without breaking old
//! plugins.
//!
//! Data crosses the boundary as UTF-8 JSON bytes:
//!
//! - **Inputs** (`config`, `event`) are borrowed: the daemon owns them, the
//!   plugin reads them during the call only.
//! - **Outputs** are written by the plugin into the [`Buffer`] the daemon
//!   passes (`out`), allocated by the plugin; the daemon copies them and hands
//!   the buffer back to the table's `free_buffer` exactly once. A plugin in C
//!   allocates with `malloc` and frees with `free`.
//! - Every entry point returns [`STATUS_OK`] (the output is the JSON result)
//!   or [`STATUS_ERROR`] (the output, possibly empty, is a UTF-8 message).
//!
//! | entry point | input | output on success |
//! |---|---|---|
//! | `metadata` | — | [`Metadata`](crate::Metadata) |
//! | `init` | the plugin's configuration (JSON, `null` if none) | anything (ignored) |
//! | `handle` | one [`Event`](crate::Event) | a [`Response`](crate::Response): `{"actions": [...]}` |
//!
//! The daemon calls `metadata`, then `init` once, then `handle` per event,
//! never two calls at once.
//!
//! This module is the crate's only unsafe code; plugin authors never call it
//! directly: [`export_plugin!`](crate::export_plugin) wires it.

#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLock;

use crate::{Event, Plugin, Response};

/// The entry point returned `STATUS_OK`; the output holds the JSON result.
pub const STATUS_OK: i32 = 0;
/// The entry point failed; the output holds a UTF-8 error message.
pub const STATUS_ERROR: i32 = 1;

/// The name of the exported entry symbol, NUL-terminated for `dlsym`.
pub const ENTRY_SYMBOL: &[u8] = b"helpdeskd_plugin_v1\0";

/// The type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginV1;

/// A byte buffer allocated by the plugin and released with its
/// `free_buffer`. `ptr` may be null when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Buffer {
    /// The first byte.
    pub ptr: *mut u8,
    /// The number of bytes.
    pub len: usize,
}

impl Buffer {
    /// An empty buffer (null pointer), as the daemon passes it in.
    pub const fn empty() -> Buffer {
        Buffer {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }
}

/// The function table of ABI version 1, as `include/helpdeskd_plugin.h`
/// declares it (`hd_plugin_v1`).
#[repr(C)]
#[derive(Debug)]
pub struct PluginV1 {
    /// Must be [`ABI_VERSION`](crate::ABI_VERSION) (1).
    pub abi_version: u32,
    /// `sizeof` this table as the plugin was built; the daemon reads only
    /// the fields it covers.
    pub struct_size: usize,
    /// Writes the plugin's metadata JSON to `out`.
    pub metadata: unsafe extern "C" fn(out: *mut Buffer) -> i32,
    /// Configures the plugin with `config` (JSON bytes); called once.
    pub init: unsafe extern "C" fn(config: *const u8, config_len: usize, out: *mut Buffer) -> i32,
    /// Handles one event (JSON bytes); writes the response JSON to `out`.
    pub handle: unsafe extern "C" fn(event: *const u8, event_len: usize, out: *mut Buffer) -> i32,
    /// Releases a buffer the plugin wrote into an `out`.
    pub free_buffer: unsafe extern "C" fn(buf: Buffer),
}

/// Where an exported plugin keeps its instance after `init`.
#[derive(Debug)]
pub struct Slot<P>(RwLock<Option<P>>);

impl<P> Slot<P> {
    /// An empty slot (usable in a `static`).
    pub const fn new() -> Slot<P> {
        Slot(RwLock::new(None))
    }
}

impl<P> Default for Slot<P> {
    fn default() -> Self {
        Slot::new()
    }
}

/// Implemented by [`export_plugin!`](crate::export_plugin): the static slot
/// of a plugin type.
pub trait Exported: Plugin {
    /// The plugin's slot.
    fn slot() -> &'static Slot<Self>;
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Runs `f` with panics caught, writes its bytes (or the error text) to
/// `out` and returns the status.
///
/// # Safety
/// `out` must be null or valid for writing one [`Buffer`].
unsafe fn guarded(out: *mut Buffer, f: impl FnOnce() -> Result<Vec<u8>, String>) -> i32 {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(bytes)) => (STATUS_OK, bytes),
        Ok(Err(message)) => (STATUS_ERROR, message.into_bytes()),
        Err(payload) => (
            STATUS_ERROR,
            format!("panicked: {}", panic_text(payload.as_ref())).into_bytes(),
        ),
    };
    if !out.is_null() {
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        let ptr = Box::into_raw(boxed).cast::<u8>();
        // SAFETY: the caller guarantees `out` is valid for one write.
        unsafe { out.write(Buffer { ptr, len }) };
    }
    status
}

/// # Safety
/// `ptr` must be null (with `len` 0) or valid for reading `len` bytes for the
/// duration of the call.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The `metadata` entry point of an exported plugin.
///
/// # Safety
/// `out` must be null or valid for writing one [`Buffer`].
pub unsafe extern "C" fn metadata<P: Exported>(out: *mut Buffer) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe {
        guarded(out, || {
            serde_json::to_vec(&P::metadata()).map_err(|e| e.to_string())
        })
    }
}

/// The `init` entry point of an exported plugin.
///
/// # Safety
/// `config` must be valid for reading `config_len` bytes; `out` must be null
/// or valid for writing one [`Buffer`].
pub unsafe extern "C" fn init<P: Exported>(
    config: *const u8,
    config_len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(config, config_len) };
    // SAFETY: forwarded from the caller.
    unsafe {
        guarded(out, || {
            let value = if bytes.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(bytes).map_err(|e| format!("configuration: {e}"))?
            };
            let plugin = P::init(value)?;
            *P::slot().0.write().unwrap_or_else(|e| e.into_inner()) = Some(plugin);
            Ok(b"{}".to_vec())
        })
    }
}

/// The `handle` entry point of an exported plugin.
///
/// # Safety
/// `event` must be valid for reading `event_len` bytes; `out` must be null or
/// valid for writing one [`Buffer`].
pub unsafe extern "C" fn handle<P: Exported>(
    event: *const u8,
    event_len: usize,
    out: *mut Buffer,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(event, event_len) };
    // SAFETY: forwarded from the caller.
    unsafe {
        guarded(out, || {
            let event: Event = serde_json::from_slice(bytes).map_err(|e| format!("event: {e}"))?;
            let slot = P::slot().0.read().unwrap_or_else(|e| e.into_inner());
            let plugin = slot.as_ref().ok_or("handle called before init")?;
            let actions = plugin.handle(&event)?;
            serde_json::to_vec(&Response { actions }).map_err(|e| e.to_string())
        })
    }
}

/// The `free_buffer` entry point: releases a buffer written by the entry
/// points above.
///
/// # Safety
/// `buf` must come from one of this crate's entry points and be freed once.
pub unsafe extern "C" fn free_buffer(buf: Buffer) {
    if buf.ptr.is_null() {
        return;
    }
    let slice = std::ptr::slice_from_raw_parts_mut(buf.ptr, buf.len);
    // SAFETY: the buffer was made by `Box::into_raw` of a boxed slice of
    // exactly this length in `guarded`, and is freed once.
    drop(unsafe { Box::from_raw(slice) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Metadata};

    struct Echo;
    impl Plugin for Echo {
        fn metadata() -> Metadata {
            Metadata::new("echo", "1.0.0", &["ticket.created"])
        }
        fn init(config: serde_json::Value) -> Result<Self, String> {
            if config.get("fail").is_some() {
                return Err("asked to fail".into());
            }
            Ok(Echo)
        }
        fn handle(&self, event: &Event) -> Result<Vec<Action>, String> {
            if event.id == 13 {
                panic!("unlucky event");
            }
            Ok(vec![Action::AddNote {
                text: format!("saw {}", event.id),
            }])
        }
    }
    crate::export_plugin!(Echo);

    fn call(f: impl FnOnce(*mut Buffer) -> i32) -> (i32, String) {
        let mut out = Buffer::empty();
        let status = f(&mut out);
        // SAFETY: `out` was written by the entry point and is freed once.
        let text = unsafe {
            let t = String::from_utf8_lossy(input(out.ptr, out.len)).into_owned();
            free_buffer(out);
            t
        };
        (status, text)
    }

    #[test]
    fn the_table_round_trips_and_catches_panics() {
        // SAFETY: the symbol is the function generated above.
        let table = unsafe { &*helpdeskd_plugin_v1() };
        assert_eq!(table.abi_version, crate::ABI_VERSION);
        assert_eq!(table.struct_size, std::mem::size_of::<PluginV1>());
        // SAFETY: valid buffers per the ABI.
        let (s, meta) = call(|o| unsafe { (table.metadata)(o) });
        assert_eq!(s, STATUS_OK);
        assert!(meta.contains("\"echo\""), "{meta}");

        let bad = br#"{"fail":true}"#;
        // SAFETY: valid buffers per the ABI.
        let (s, msg) = call(|o| unsafe { (table.init)(bad.as_ptr(), bad.len(), o) });
        assert_eq!((s, msg.as_str()), (STATUS_ERROR, "asked to fail"));

        let ev = br#"{"id":5,"hook":"ticket.created","ticket":null}"#;
        // SAFETY: valid buffers per the ABI.
        let (s, msg) = call(|o| unsafe { (table.handle)(ev.as_ptr(), ev.len(), o) });
        assert_eq!(
            (s, msg.as_str()),
            (STATUS_ERROR, "handle called before init")
        );

        // SAFETY: valid buffers per the ABI.
        let (s, _) = call(|o| unsafe { (table.init)(std::ptr::null(), 0, o) });
        assert_eq!(s, STATUS_OK);
        // SAFETY: valid buffers per the ABI.
        let (s, out) = call(|o| unsafe { (table.handle)(ev.as_ptr(), ev.len(), o) });
        assert_eq!(s, STATUS_OK);
        assert_eq!(out, r#"{"actions":[{"type":"add_note","text":"saw 5"}]}"#);

        let ev = br#"{"id":13,"hook":"ticket.created","ticket":null}"#;
        // SAFETY: valid buffers per the ABI.
        let (s, out) = call(|o| unsafe { (table.handle)(ev.as_ptr(), ev.len(), o) });
        assert_eq!((s, out.as_str()), (STATUS_ERROR, "panicked: unlucky event"));

        let junk = b"not json";
        // SAFETY: valid buffers per the ABI.
        let (s, out) = call(|o| unsafe { (table.handle)(junk.as_ptr(), junk.len(), o) });
        assert_eq!(s, STATUS_ERROR);
        assert!(out.starts_with("event: "), "{out}");
    }
}
