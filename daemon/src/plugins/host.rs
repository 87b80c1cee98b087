//! The plugin host: `helpdeskd plugin-host`, a child process of the daemon
//! that loads the plugins and calls them, so that a plugin that panics,
//! aborts, segfaults or hangs costs this process, never the daemon.
//!
//! It speaks the frames of [`super::protocol`] on the pipes it was given as
//! stdin and stdout. Before loading anything it moves those pipes to fresh
//! descriptors and points fd 0 at /dev/null and fd 1 at stderr, so a plugin
//! that prints cannot corrupt the protocol. It exits when its stdin closes.

#![allow(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::loader::{self, Library};
use super::protocol::{self, FromHost, Outcome, ToHost};

/// Duplicates `fd` to a new descriptor (close-on-exec).
fn dup(fd: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor has no other effect.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Points `target` at the same file as `source`.
fn redirect(source: i32, target: i32) -> std::io::Result<()> {
    // SAFETY: dup2 on open descriptors; `target` is a standard descriptor
    // whose previous file we no longer use through std.
    if unsafe { libc::dup2(source, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs the host until stdin closes. Returns the process exit code.
pub fn run() -> i32 {
    let (input, output) = match protocol_pipes() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("plugin-host: cannot set up its pipes: {e}");
            return 1;
        }
    };
    let mut input = BufReader::new(input);
    let mut output = output;
    let mut plugins: Vec<Library> = Vec::new();
    loop {
        let msg: ToHost = match protocol::read_frame(&mut input) {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("plugin-host: bad frame from the daemon: {e}");
                return 1;
            }
        };
        let written = match msg {
            ToHost::Load { files, config } => {
                let (loaded, reports) = loader::load_all(&files, &config);
                plugins = loaded;
                protocol::write_frame(&mut output, &FromHost::Loaded { plugins: reports })
            }
            ToHost::Dispatch { calls } => dispatch(&plugins, calls, &mut output),
        };
        if let Err(e) = written {
            eprintln!("plugin-host: the daemon went away: {e}");
            return 1;
        }
    }
}

/// Calls each plugin of each call in order, writing each result at once.
pub fn dispatch(
    plugins: &[Library],
    calls: Vec<protocol::Call>,
    output: &mut impl Write,
) -> std::io::Result<()> {
    for call in calls {
        let id = call.event_id();
        let bytes = serde_json::to_vec(&call.event).unwrap_or_default();
        for name in call.plugins {
            let outcome = call_one(plugins, &name, &bytes);
            protocol::write_frame(
                output,
                &FromHost::Result {
                    event: id,
                    plugin: name,
                    outcome,
                },
            )?;
        }
    }
    Ok(())
}

/// One call of one plugin.
pub fn call_one(plugins: &[Library], name: &str, event: &[u8]) -> Outcome {
    match plugins.iter().find(|p| p.metadata.name == name) {
        Some(p) => match p.handle(event) {
            Ok(actions) => Outcome::Actions(actions),
            Err(e) => Outcome::Error(e),
        },
        None => Outcome::Error(format!("plugin {name} is not loaded in the plugin host")),
    }
}

/// Takes the protocol pipes off fds 0 and 1 and makes those harmless.
fn protocol_pipes() -> std::io::Result<(File, File)> {
    let input = dup(std::io::stdin().as_raw_fd())?;
    let output = dup(std::io::stdout().as_raw_fd())?;
    let null = File::open("/dev/null")?;
    redirect(null.as_raw_fd(), 0)?;
    redirect(std::io::stderr().as_raw_fd(), 1)?;
    Ok((File::from(input), File::from(output)))
}
