//! Where plugin calls run: in the supervised plugin host (the default) or,
//! for trusted plugins, in the daemon itself. Both answer a batch of calls
//! with one result per call made; a call that was never made (the host died
//! before it) has no result and is simply sent again later.
//!
//! The supervisor starts `helpdeskd plugin-host`, reads each result with the
//! configured timeout, and on a crash, a hang or a broken pipe charges the
//! call in progress with the reason (exit code or signal), kills the host and
//! starts a fresh one for the next batch.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tracing::{info, warn};

use super::loader::{self, Library};
use super::protocol::{self, Call, FromHost, LoadReport, Outcome, ToHost};

/// One call's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub event: i64,
    pub plugin: String,
    pub outcome: Outcome,
}

/// The plugin host could not be started or loaded: nothing was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDown(pub String);

pub enum Runner {
    /// Boxed: the supervisor is much larger than the in-process runner.
    Process(Box<HostProcess>),
    InProcess(InProcess),
}

impl Runner {
    /// Loads the plugins; one report per file.
    pub async fn load(&mut self) -> Result<Vec<LoadReport>, HostDown> {
        match self {
            Runner::Process(h) => h.start().await,
            Runner::InProcess(p) => Ok(p.load().await),
        }
    }

    /// Makes the calls in order. Calls after a crash have no result.
    pub async fn dispatch(&mut self, calls: Vec<Call>) -> Result<Vec<CallResult>, HostDown> {
        match self {
            Runner::Process(h) => h.dispatch(calls).await,
            Runner::InProcess(p) => Ok(p.dispatch(calls).await),
        }
    }

    /// Stops the host process, if any.
    pub async fn shutdown(&mut self) {
        if let Runner::Process(h) = self {
            h.stop().await;
        }
    }
}

// ---- the supervised host process -------------------------------------------

pub struct HostProcess {
    exe: PathBuf,
    files: Vec<PathBuf>,
    config: BTreeMap<String, Value>,
    timeout: Duration,
    running: Option<Running>,
    /// Host processes started, for logs and tests.
    pub starts: u32,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Why a host process ended, from its exit status.
fn describe(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
            _ => format!("ended ({s})"),
        },
        None => "did not exit".into(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV, a segmentation fault",
        libc::SIGABRT => "SIGABRT, an abort",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

impl HostProcess {
    /// A supervisor for `exe plugin-host`; nothing starts until [`Runner::load`].
    pub fn new(
        exe: PathBuf,
        files: Vec<PathBuf>,
        config: BTreeMap<String, Value>,
        timeout: Duration,
    ) -> HostProcess {
        HostProcess {
            exe,
            files,
            config,
            timeout,
            running: None,
            starts: 0,
        }
    }

    async fn start(&mut self) -> Result<Vec<LoadReport>, HostDown> {
        self.stop().await;
        let mut child = Command::new(&self.exe)
            .arg("plugin-host")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HostDown(format!("cannot start {}: {e}", self.exe.display())))?;
        self.starts += 1;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(HostDown("plugin host has no pipes".into()));
        };
        let mut r = Running {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let load = ToHost::Load {
            files: self.files.clone(),
            config: self.config.clone(),
        };
        let answer = async {
            protocol::write_frame_async(&mut r.stdin, &load).await?;
            protocol::read_frame_async::<_, FromHost>(&mut r.stdout).await
        };
        // Loading runs every plugin's initialisers: give it the timeout per file.
        let limit = self.timeout * (self.files.len() as u32 + 1);
        let reports = match tokio::time::timeout(limit, answer).await {
            Ok(Ok(Some(FromHost::Loaded { plugins }))) => plugins,
            Ok(Ok(_)) | Ok(Err(_)) => {
                let status = r.child.wait().await.ok();
                return Err(HostDown(format!(
                    "plugin host {} while loading plugins",
                    describe(status)
                )));
            }
            Err(_) => {
                let _ = r.child.kill().await;
                return Err(HostDown(format!(
                    "plugin host did not finish loading plugins within {}s",
                    limit.as_secs()
                )));
            }
        };
        if self.starts > 1 {
            info!(starts = self.starts, "plugin host restarted");
            crate::metrics::get().plugin_host_restart();
        }
        self.running = Some(r);
        Ok(reports)
    }

    async fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            drop(r.stdin);
            if tokio::time::timeout(Duration::from_secs(2), r.child.wait())
                .await
                .is_err()
            {
                let _ = r.child.kill().await;
            }
        }
    }

    async fn dispatch(&mut self, calls: Vec<Call>) -> Result<Vec<CallResult>, HostDown> {
        if self.running.is_none() {
            self.start().await?;
        }
        let expected: Vec<(i64, String)> = calls
            .iter()
            .flat_map(|c| {
                let id = c.event_id();
                c.plugins.iter().map(move |p| (id, p.clone()))
            })
            .collect();
        let mut results = Vec::with_capacity(expected.len());
        let Some(r) = self.running.as_mut() else {
            return Err(HostDown("plugin host is not running".into()));
        };
        let msg = ToHost::Dispatch { calls };
        let sent = protocol::write_frame_async(&mut r.stdin, &msg).await;
        let mut failure: Option<String> = sent.err().map(|e| format!("pipe to plugin host: {e}"));
        if failure.is_none() {
            for (event, plugin) in &expected {
                match tokio::time::timeout(
                    self.timeout,
                    protocol::read_frame_async::<_, FromHost>(&mut r.stdout),
                )
                .await
                {
                    Ok(Ok(Some(FromHost::Result {
                        event: e,
                        plugin: p,
                        outcome,
                    }))) if e == *event && p == *plugin => results.push(CallResult {
                        event: e,
                        plugin: p,
                        outcome,
                    }),
                    Ok(Ok(Some(other))) => {
                        failure = Some(format!("plugin host answered out of turn: {other:?}"));
                        break;
                    }
                    Ok(Ok(None)) | Ok(Err(_)) => {
                        failure = Some(String::new());
                        break;
                    }
                    Err(_) => {
                        crate::metrics::get().plugin_timeout(plugin);
                        failure = Some(format!(
                            "did not answer within {}s; the plugin host was killed",
                            self.timeout.as_secs()
                        ));
                        break;
                    }
                }
            }
        }
        let Some(mut reason) = failure else {
            return Ok(results);
        };
        // The call in progress killed or hung the host: charge it, restart later.
        let mut dead = self.running.take();
        if let Some(r) = dead.as_mut() {
            if reason.is_empty() {
                let status = tokio::time::timeout(Duration::from_secs(5), r.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                reason = format!("crashed the plugin host, which {}", describe(status));
            } else {
                let _ = r.child.kill().await;
            }
        }
        if let Some((event, plugin)) = expected.get(results.len()) {
            warn!(event, plugin, error = reason, "plugin call failed");
            results.push(CallResult {
                event: *event,
                plugin: plugin.clone(),
                outcome: Outcome::Error(reason),
            });
        }
        Ok(results)
    }
}

// ---- in the daemon's own process ---------------------------------------------

/// Plugins loaded into the daemon (`isolation = "in-process"`). Panics are
/// still caught by plugin-api, but a crash takes the daemon down and a hang
/// can only be abandoned: after a timeout the plugin is disabled until the
/// daemon restarts.
pub struct InProcess {
    files: Vec<PathBuf>,
    config: BTreeMap<String, Value>,
    timeout: Duration,
    /// By name; a call holds the lock, so names are kept outside it.
    plugins: Vec<(String, Arc<Mutex<Library>>)>,
    stuck: Arc<HashSet<String>>,
}

impl InProcess {
    pub fn new(
        files: Vec<PathBuf>,
        config: BTreeMap<String, Value>,
        timeout: Duration,
    ) -> InProcess {
        InProcess {
            files,
            config,
            timeout,
            plugins: Vec::new(),
            stuck: Arc::new(HashSet::new()),
        }
    }

    async fn load(&mut self) -> Vec<LoadReport> {
        let (files, config) = (self.files.clone(), self.config.clone());
        let loaded = tokio::task::spawn_blocking(move || loader::load_all(&files, &config)).await;
        match loaded {
            Ok((libs, reports)) => {
                self.plugins = libs
                    .into_iter()
                    .map(|l| (l.metadata.name.clone(), Arc::new(Mutex::new(l))))
                    .collect();
                reports
            }
            Err(e) => self
                .files
                .iter()
                .map(|f| LoadReport {
                    file: f.clone(),
                    result: Err(format!("loading failed: {e}")),
                })
                .collect(),
        }
    }

    /// Makes the calls on one blocking thread, in order, each result sent
    /// back as it comes; waits for each with the timeout. After a timeout the
    /// thread is told to make no further call of the batch.
    async fn dispatch(&mut self, calls: Vec<Call>) -> Vec<CallResult> {
        let plugins = self.plugins.clone();
        let stuck = self.stuck.clone();
        let expected: Vec<(i64, String)> = calls
            .iter()
            .flat_map(|c| {
                let id = c.event_id();
                c.plugins.iter().map(move |p| (id, p.clone()))
            })
            .collect();
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CallResult>();
        let stop = cancel.clone();
        // A plain thread, not the runtime's blocking pool: a plugin that never
        // returns must not hold up the daemon's shutdown.
        let worker = std::thread::Builder::new()
            .name("plugin-call".into())
            .spawn(move || {
            for call in calls {
                let id = call.event_id();
                let bytes = serde_json::to_vec(&call.event).unwrap_or_default();
                for name in call.plugins {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let outcome = if stuck.contains(&name) {
                        Outcome::Error(format!(
                            "plugin {name} hung earlier and is disabled until helpdeskd restarts"
                        ))
                    } else {
                        match plugins.iter().find(|(n, _)| *n == name) {
                            None => Outcome::Error(format!("plugin {name} is not loaded")),
                            Some((_, lib)) => match lib.lock() {
                                Ok(l) => match l.handle(&bytes) {
                                    Ok(a) => Outcome::Actions(a),
                                    Err(e) => Outcome::Error(e),
                                },
                                Err(_) => Outcome::Error("plugin state poisoned".into()),
                            },
                        }
                    };
                    let r = CallResult {
                        event: id,
                        plugin: name,
                        outcome,
                    };
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            }
        });
        if let Err(e) = worker {
            return expected
                .into_iter()
                .take(1)
                .map(|(event, plugin)| CallResult {
                    event,
                    plugin,
                    outcome: Outcome::Error(format!("cannot start a plugin thread: {e}")),
                })
                .collect();
        }
        let mut results = Vec::with_capacity(expected.len());
        for (event, plugin) in expected {
            match tokio::time::timeout(self.timeout, rx.recv()).await {
                Ok(Some(r)) => results.push(r),
                Ok(None) => break,
                Err(_) => {
                    crate::metrics::get().plugin_timeout(&plugin);
                    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                    Arc::make_mut(&mut self.stuck).insert(plugin.clone());
                    results.push(CallResult {
                        event,
                        plugin,
                        outcome: Outcome::Error(format!(
                            "did not answer within {}s; in-process plugins cannot be stopped, \
                             so it is disabled until helpdeskd restarts",
                            self.timeout.as_secs()
                        )),
                    });
                    break;
                }
            }
        }
        results
    }
}
