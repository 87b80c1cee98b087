//! Finding and loading plugin libraries, with the checks that make a third-
//! party plugin safe to install: the folder and each file must belong to the
//! user running helpdeskd (or root) and be writable by nobody else, the
//! library must export `helpdeskd_plugin_v1`, speak ABI version 1 and return
//! valid metadata. A plugin failing any check is refused with the reason;
//! the others load and the desk runs on.
//!
//! This module and `host.rs` are the daemon's only unsafe code: loading a
//! library runs its initialisers, and calling it trusts its function table.
//! Both run in the plugin-host process unless `isolation = "in-process"`.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use plugin_api::abi::{Buffer, ENTRY_SYMBOL, EntryFn, PluginV1, STATUS_OK};
use plugin_api::{ABI_VERSION, Metadata};
use serde_json::Value;

use super::protocol::LoadReport;

/// The files of a plugin folder that passed the ownership checks, and those
/// that did not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    pub files: Vec<PathBuf>,
    pub refused: Vec<LoadReport>,
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses a path writable by group or others, or owned by somebody other
/// than the user running helpdeskd or root.
pub fn check_permissions(path: &Path, meta: &std::fs::Metadata, euid: u32) -> Result<(), String> {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} is writable by {} (mode {mode:04o}); run `chmod go-w {}`",
            path.display(),
            match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            },
            path.display()
        ));
    }
    let uid = meta.uid();
    if uid != euid && uid != 0 {
        return Err(format!(
            "{} is owned by uid {uid}, not by the user running helpdeskd (uid {euid}) or root",
            path.display()
        ));
    }
    Ok(())
}

/// Lists the plugin libraries (`*.so`) of `dir`, refusing those that fail
/// the ownership checks. A missing folder holds no plugins; a folder that
/// fails the checks itself is an error: none of its files are loaded.
pub fn scan(dir: &Path) -> Result<Scan, String> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let euid = effective_uid();
    check_permissions(dir, &meta, euid).map_err(|e| format!("plugin folder refused: {e}"))?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == std::env::consts::DLL_EXTENSION)
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    names.sort();
    let mut scan = Scan::default();
    for file in names {
        let checked = std::fs::metadata(&file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|m| {
                if !m.is_file() {
                    return Err(format!("{} is not a regular file", file.display()));
                }
                check_permissions(&file, &m, euid)
            });
        match checked {
            Ok(()) => scan.files.push(file),
            Err(e) => scan.refused.push(LoadReport {
                file,
                result: Err(e),
            }),
        }
    }
    Ok(scan)
}

/// A loaded plugin library and its function table.
pub struct Library {
    table: PluginV1Fns,
    pub metadata: Metadata,
    pub file: PathBuf,
    // Kept last: the library is unloaded only after everything above.
    _lib: libloading::Library,
}

/// The entry points of the table, copied out once the size was checked.
#[derive(Clone, Copy)]
struct PluginV1Fns {
    init: unsafe extern "C" fn(*const u8, usize, *mut Buffer) -> i32,
    handle: unsafe extern "C" fn(*const u8, usize, *mut Buffer) -> i32,
    free_buffer: unsafe extern "C" fn(Buffer),
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("file", &self.file)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// Copies a plugin's output buffer and hands it back to the plugin.
///
/// # Safety
/// `out` must have been written by an entry point of the plugin whose
/// `free_buffer` is given (or still be the empty buffer).
unsafe fn take(out: Buffer, free_buffer: unsafe extern "C" fn(Buffer)) -> Vec<u8> {
    if out.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: per the ABI the plugin wrote `len` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec();
    // SAFETY: the buffer came from this plugin and is freed once.
    unsafe { free_buffer(out) };
    bytes
}

fn text(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes).trim().to_string();
    if s.is_empty() {
        "(no message)".into()
    } else {
        s
    }
}

impl Library {
    /// Loads a library and checks its symbol, ABI version, table size and
    /// metadata. Does not initialise it (see [`Library::init`]).
    pub fn open(file: &Path) -> Result<Library, String> {
        // SAFETY: loading runs the library's initialisers; that is the trust
        // an admin gives a plugin by installing it, and why plugins run in a
        // separate host process by default.
        let lib =
            unsafe { libloading::Library::new(file) }.map_err(|e| format!("cannot load: {e}"))?;
        // SAFETY: the symbol's type is fixed by the ABI.
        let entry: EntryFn = unsafe {
            *lib.get::<EntryFn>(ENTRY_SYMBOL).map_err(|_| {
                "does not export `helpdeskd_plugin_v1`: not a helpdeskd plugin \
                 (Rust: add `plugin_api::export_plugin!(YourType);`)"
                    .to_string()
            })?
        };
        // SAFETY: the entry point takes no arguments and returns a pointer to
        // a static table.
        let table_ptr = unsafe { entry() };
        if table_ptr.is_null() {
            return Err("helpdeskd_plugin_v1 returned no function table".into());
        }
        // The version and size come first in every ABI version.
        // SAFETY: every version of the table starts with these two fields.
        let (version, size) = unsafe { ((*table_ptr).abi_version, (*table_ptr).struct_size) };
        if version != ABI_VERSION {
            return Err(format!(
                "built for plugin ABI version {version}; this helpdeskd speaks version {ABI_VERSION}: \
                 rebuild the plugin against a matching plugin-api"
            ));
        }
        if size < std::mem::size_of::<PluginV1>() {
            return Err(format!(
                "function table of {size} bytes is smaller than ABI version 1 needs ({})",
                std::mem::size_of::<PluginV1>()
            ));
        }
        // SAFETY: version and size say the table is a whole `PluginV1`.
        let table = unsafe { &*table_ptr };
        let fns = PluginV1Fns {
            init: table.init,
            handle: table.handle,
            free_buffer: table.free_buffer,
        };
        let mut out = Buffer::empty();
        // SAFETY: `out` is a valid buffer for the call.
        let status = unsafe { (table.metadata)(&mut out) };
        // SAFETY: written by this plugin's entry point.
        let bytes = unsafe { take(out, fns.free_buffer) };
        if status != STATUS_OK {
            return Err(format!("metadata failed: {}", text(&bytes)));
        }
        let metadata: Metadata = serde_json::from_slice(&bytes)
            .map_err(|e| format!("metadata is not valid JSON ({e}): {}", text(&bytes)))?;
        let name_ok = !metadata.name.is_empty()
            && metadata.name.len() <= 64
            && metadata
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "plugin name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
                metadata.name
            ));
        }
        Ok(Library {
            table: fns,
            metadata,
            file: file.to_path_buf(),
            _lib: lib,
        })
    }

    /// Initialises the plugin with its configuration (`null` when none).
    pub fn init(&self, config: &Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(config).map_err(|e| e.to_string())?;
        let mut out = Buffer::empty();
        // SAFETY: input valid for the call, `out` a valid buffer.
        let status = unsafe { (self.table.init)(bytes.as_ptr(), bytes.len(), &mut out) };
        // SAFETY: written by this plugin's entry point.
        let reply = unsafe { take(out, self.table.free_buffer) };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(format!("init failed: {}", text(&reply)))
        }
    }

    /// Calls the plugin with one event (JSON bytes); returns its actions.
    pub fn handle(&self, event: &[u8]) -> Result<Vec<Value>, String> {
        let mut out = Buffer::empty();
        // SAFETY: input valid for the call, `out` a valid buffer.
        let status = unsafe { (self.table.handle)(event.as_ptr(), event.len(), &mut out) };
        // SAFETY: written by this plugin's entry point.
        let reply = unsafe { take(out, self.table.free_buffer) };
        if status != STATUS_OK {
            return Err(text(&reply));
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(default)]
            actions: Vec<Value>,
        }
        serde_json::from_slice::<Reply>(&reply)
            .map(|r| r.actions)
            .map_err(|e| format!("answer is not {{\"actions\": [...]}} ({e})"))
    }
}

/// Opens and initialises every file; refuses a second plugin of the same
/// name. Returns the loaded libraries and one report per file.
pub fn load_all(
    files: &[PathBuf],
    config: &BTreeMap<String, Value>,
) -> (Vec<Library>, Vec<LoadReport>) {
    let mut loaded: Vec<Library> = Vec::new();
    let mut reports = Vec::new();
    for file in files {
        let result = Library::open(file).and_then(|lib| {
            if let Some(other) = loaded.iter().find(|l| l.metadata.name == lib.metadata.name) {
                return Err(format!(
                    "a plugin named {:?} is already loaded from {}",
                    lib.metadata.name,
                    other.file.display()
                ));
            }
            let cfg = config
                .get(&lib.metadata.name)
                .cloned()
                .unwrap_or(Value::Null);
            lib.init(&cfg)?;
            Ok(lib)
        });
        match result {
            Ok(lib) => {
                reports.push(LoadReport {
                    file: file.clone(),
                    result: Ok(lib.metadata.clone()),
                });
                loaded.push(lib);
            }
            Err(e) => reports.push(LoadReport {
                file: file.clone(),
                result: Err(e),
            }),
        }
    }
    (loaded, reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_or_foreign_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.so");
        std::fs::write(&f, b"x").expect("write");
        let euid = effective_uid();
        for (mode, ok) in [(0o755, true), (0o644, true), (0o775, false), (0o757, false)] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let m = std::fs::metadata(&f).expect("meta");
            assert_eq!(check_permissions(&f, &m, euid).is_ok(), ok, "mode {mode:o}");
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        let m = std::fs::metadata(&f).expect("meta");
        let e = check_permissions(&f, &m, euid).expect_err("group-writable");
        assert!(e.contains("writable by its group (mode 0664)"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let m = std::fs::metadata(&f).expect("meta");
        if m.uid() != 0 {
            // Owned by us; pretend to be somebody else.
            let e = check_permissions(&f, &m, m.uid() + 1).expect_err("foreign");
            assert!(e.contains("is owned by uid"), "{e}");
        }
    }

    #[test]
    fn scan_lists_libraries_and_refuses_a_writable_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for name in ["b.so", "a.so", ".hidden.so", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
            std::fs::set_permissions(
                dir.path().join(name),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
        }
        std::fs::set_permissions(
            dir.path().join("b.so"),
            std::fs::Permissions::from_mode(0o666),
        )
        .expect("chmod");
        let s = scan(dir.path()).expect("scan");
        assert_eq!(s.files, vec![dir.path().join("a.so")]);
        assert_eq!(s.refused.len(), 1);
        assert!(
            s.refused[0]
                .result
                .as_ref()
                .is_err_and(|e| e.contains("writable by group and others"))
        );

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let e = scan(dir.path()).expect_err("folder refused");
        assert!(e.starts_with("plugin folder refused:"), "{e}");
        assert_eq!(scan(&dir.path().join("missing")), Ok(Scan::default()));
    }

    #[test]
    fn a_file_that_is_no_library_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("junk.so");
        std::fs::write(&f, b"not an ELF file").expect("write");
        let e = Library::open(&f).expect_err("refused");
        assert!(e.starts_with("cannot load:"), "{e}");
    }
}
