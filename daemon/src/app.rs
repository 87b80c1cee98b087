//! Wiring: the store, the ingest writer, one poller per mailbox and the
//! outbox sender, for `run`, `run --once`, `import` and `check`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use std::collections::HashMap;

use crate::config::ServiceLevels;
use crate::domain::conversation::{Settings, Supplier};
use crate::domain::sla::ServicePolicy;
use crate::domain::sla::clock::Percent;
use crate::error::{Error, Result};
use crate::import::{self, Source};
use crate::ingest::{Stats, Writer};
use crate::metrics::{
    self,
    status::{self, JobLine, MailboxLine, Status},
};
use crate::oauth2::{self, Alert, Tokens};
use crate::outbox::{self, FlushStats, Sender};
use crate::plugins::{self, DispatchStats};
use crate::poller::{self, Poller};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::token_secret::Agreement;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// The OAuth2 token cache of the process, shared by pollers and sender.
    pub tokens: Tokens,
    alerts: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Alert>>,
}

/// What `run --once` did.
#[derive(Debug, Default)]
pub struct OnceReport {
    pub stats: Stats,
    pub ingest_time: Duration,
    pub mailbox_errors: Vec<(String, String)>,
    pub outbox: Option<FlushStats>,
    /// What the plugin dispatcher did after the ingest.
    pub plugins: DispatchStats,
    /// The scheduled jobs whose slot had come.
    pub jobs: Vec<crate::jobs::RunRecord>,
}

impl App {
    /// Connects to the database and applies pending migrations.
    pub async fn open(config: Config) -> Result<App> {
        App::open_as(config, false).await
    }

    /// [`App::open`] for `run`: the daemon is counted among those polling
    /// the desk's mailboxes (`Store::announce`) before it migrates.
    pub async fn open_to_poll(config: Config) -> Result<App> {
        App::open_as(config, true).await
    }

    async fn open_as(config: Config, polls: bool) -> Result<App> {
        let store = Store::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await?;
        if polls && !config.mailboxes.is_empty() {
            store.announce().await?;
        }
        store.migrate().await?;
        let settings = Arc::new(settings(&config)?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (tokens, alerts) =
            Tokens::new(&config.oauth2, clock.clone()).with_alerts(config.data_dir.clone());
        let file = &config.token_secret_file;
        let agreement =
            crate::token_secret::agree(&store, &settings.key, file, clock.now(), true).await?;
        if let Some(refusal) = agreement.refusal(file) {
            return Err(crate::Error::Invalid(refusal));
        }
        Ok(App {
            config,
            store,
            clock,
            settings,
            tokens,
            alerts: tokio::sync::Mutex::new(alerts),
        })
    }

    fn writer(&self, wake: Arc<Notify>) -> Writer {
        Writer::spawn(
            self.store.clone(),
            self.settings.clone(),
            self.clock.clone(),
            wake,
        )
    }

    fn sender(&self) -> Result<Sender> {
        Sender::new(
            self.store.clone(),
            self.config.smtp.clone(),
            self.config.outbox.clone(),
            self.clock.clone(),
            self.config.data_dir.join("outbox.sent"),
            self.tokens.clone(),
        )
    }

    /// Queues the admin mails of refused OAuth2 grants reported so far.
    async fn queue_alerts(&self) -> Result<usize> {
        let mut rx = self.alerts.lock().await;
        let mut queued = 0;
        while let Ok(alert) = rx.try_recv() {
            if oauth2::alert::queue(&self.store, &self.config, &alert, self.clock.now()).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    fn pollers(&self, writer: &Writer) -> Vec<Poller> {
        self.config
            .mailboxes
            .iter()
            .enumerate()
            .map(|(position, m)| Poller {
                mailbox: m.clone(),
                position,
                of: self.config.mailboxes.len(),
                ingest: self.config.ingest.clone(),
                store: self.store.clone(),
                writer: writer.clone(),
                clock: self.clock.clone(),
                tokens: self.tokens.clone(),
            })
            .collect()
    }

    /// One full cycle: poll every mailbox, then (unless `send` is false) flush the outbox.
    pub async fn run_once(&self, send: bool) -> Result<OnceReport> {
        let writer = self.writer(Arc::new(Notify::new()));
        let pollers = self.pollers(&writer);
        let started = Instant::now();
        let results = futures::future::join_all(pollers.iter().map(|p| p.run_once())).await;
        let mut report = OnceReport {
            ingest_time: started.elapsed(),
            ..Default::default()
        };
        for (p, r) in pollers.iter().zip(results) {
            match r {
                Ok(s) => report.stats.merge(s),
                Err(e) => {
                    error!(mailbox = p.mailbox.name, error = %e, "mailbox not polled");
                    report
                        .mailbox_errors
                        .push((p.mailbox.name.clone(), e.to_string()));
                }
            }
        }
        // Due jobs run after the ingest (so the SLA job sees this cycle's
        // answers) and before the plugins and the outbox flush (so their
        // events and mails go out in the same cycle).
        report.jobs =
            crate::jobs::run_due(&self.store, &self.config, &self.settings, self.clock.now())
                .await?;
        // Plugins see this cycle's events before the outbox flush, so the
        // mails they send go out in the same cycle.
        report.plugins = self.dispatch_plugins().await?;
        crate::releases::settle(&self.store, &self.settings, self.clock.now()).await?;
        self.queue_alerts().await?;
        if send {
            report.outbox = Some(self.sender()?.flush().await?);
        }
        Ok(report)
    }

    /// The daemon: runs every task until `shutdown` fires.
    pub async fn run(&self, outer: Shutdown) -> Result<()> {
        // The tasks stop on the signal or when one of them panics.
        let (trigger, shutdown) = crate::shutdown::channel();
        let trigger = Arc::new(trigger);
        {
            let (trigger, mut outer) = (trigger.clone(), outer);
            tokio::spawn(async move {
                outer.wait().await;
                trigger.fire();
            });
        }
        let wake = Arc::new(Notify::new());
        let writer = self.writer(wake.clone());
        let sender = self.sender()?;
        let mut tasks: Vec<(String, JoinHandle<()>)> = Vec::new();
        if let Some(m) = &self.config.metrics {
            let listener = metrics::http::bind(m.listen).await?;
            let endpoint = Arc::new(metrics::http::Endpoint {
                store: self.store.clone(),
                clock: self.clock.clone(),
                mailboxes: self
                    .config
                    .mailboxes
                    .iter()
                    .map(|m| m.name.clone())
                    .collect(),
                flush_interval: self.config.outbox.flush_interval,
                jobs: crate::jobs::jobs(&self.config)
                    .into_iter()
                    .map(|j| j.name)
                    .collect(),
            });
            tasks.push((
                "metrics endpoint".into(),
                tokio::spawn(metrics::http::serve(listener, endpoint, shutdown.clone())),
            ));
        }
        for p in self.pollers(&writer) {
            let name = format!("poller {}", p.mailbox.name);
            tasks.push((name, tokio::spawn(p.run(shutdown.clone()))));
        }
        let (dispatcher, _) = plugins::dispatcher(
            &self.config,
            self.store.clone(),
            self.clock.clone(),
            &plugins::host_exe(),
        )
        .await;
        tasks.push((
            "plugin dispatcher".into(),
            tokio::spawn(dispatcher.run(wake.clone(), shutdown.clone())),
        ));
        tasks.push((
            "scheduler".into(),
            tokio::spawn(scheduler(
                self.store.clone(),
                self.config.clone(),
                self.settings.clone(),
                self.clock.clone(),
                wake.clone(),
                shutdown.clone(),
            )),
        ));
        {
            let (wake, mut shutdown) = (wake.clone(), shutdown.clone());
            let (store, config, clock) =
                (self.store.clone(), self.config.clone(), self.clock.clone());
            let mut rx = std::mem::replace(
                &mut *self.alerts.lock().await,
                tokio::sync::mpsc::unbounded_channel().1,
            );
            tasks.push((
                "oauth2 alerts".into(),
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            alert = rx.recv() => {
                                let Some(alert) = alert else { return };
                                match oauth2::alert::queue(&store, &config, &alert, clock.now()).await {
                                    Ok(true) => wake.notify_one(),
                                    Ok(false) => {}
                                    Err(e) => error!(account = alert.account, error = %e, "cannot queue the admin mail of a refused OAuth2 grant"),
                                }
                            }
                            _ = shutdown.wait() => return,
                        }
                    }
                }),
            ));
        }
        {
            // A deploy asked by `/deploy` is settled once the plugins have
            // answered its gate.
            let (wake, mut shutdown) = (wake.clone(), shutdown.clone());
            let (store, settings, clock) = (
                self.store.clone(),
                self.settings.clone(),
                self.clock.clone(),
            );
            tasks.push((
                "release gates".into(),
                tokio::spawn(async move {
                    loop {
                        match crate::releases::settle(&store, &settings, clock.now()).await {
                            Ok(n) if n > 0 => wake.notify_one(),
                            Ok(_) => {}
                            Err(e) => warn!(error = %e, "cannot settle the deploys; retrying"),
                        }
                        if shutdown.sleep(std::time::Duration::from_secs(2)).await {
                            return;
                        }
                    }
                }),
            ));
        }
        tasks.push((
            "outbox sender".into(),
            tokio::spawn(sender.run(wake, shutdown.clone())),
        ));
        info!(mailboxes = self.config.mailboxes.len(), "helpdeskd running");
        let result = supervise(tasks, &trigger).await;
        info!("helpdeskd stopped");
        result
    }

    /// Loads the plugins and dispatches every due event, then stops the host.
    pub async fn dispatch_plugins(&self) -> Result<DispatchStats> {
        let (mut d, _) = plugins::dispatcher(
            &self.config,
            self.store.clone(),
            self.clock.clone(),
            &plugins::host_exe(),
        )
        .await;
        let stats = d.drain().await;
        d.shutdown().await;
        stats
    }

    /// What `helpdeskd status` shows, from the database.
    pub async fn status(&self) -> Result<Status> {
        let now = self.clock.now();
        let rows = status::mailbox_rows(&self.store).await?;
        let mut mailboxes: Vec<MailboxLine> = self
            .config
            .mailboxes
            .iter()
            .map(|m| MailboxLine::new(&m.name, rows.iter().find(|r| r.mailbox == m.name), now))
            .collect();
        // Mailboxes polled by daemons configured otherwise.
        for r in &rows {
            if !mailboxes.iter().any(|m| m.mailbox == r.mailbox) {
                mailboxes.push(MailboxLine::new(&r.mailbox, Some(r), now));
            }
        }
        let names: Vec<String> = crate::jobs::jobs(&self.config)
            .into_iter()
            .map(|j| j.name)
            .collect();
        let queues = status::queues(&self.store, now, &names).await?;
        let jobs = crate::jobs::list(&self.store, &self.config, now)
            .await?
            .into_iter()
            .map(|j| JobLine {
                last_success_at: queues
                    .job_successes
                    .iter()
                    .find(|(job, _)| *job == j.job)
                    .map(|(_, at)| *at),
                last_run_at: j.last.as_ref().map(|r| r.slot),
                last_status: j.last.map(|r| r.status),
                next_at: j.next,
                schedule: j.schedule,
                job: j.job,
            })
            .collect();
        Ok(Status {
            at: now,
            mailboxes,
            outbox: queues.outbox,
            failed_plugin_events: queues.failed_events,
            jobs,
        })
    }

    pub async fn import(&self, source: &Source) -> Result<Stats> {
        let writer = self.writer(Arc::new(Notify::new()));
        import::import(source, &writer, &self.config.ingest).await
    }
}

/// Waits for every task. A task that panics is logged with its name and the
/// others are told to stop, and the daemon ends with an error (exit status
/// 1), so that its supervisor (systemd's `Restart=on-failure`) starts it
/// afresh: restarting the one task in place could repeat the panic forever
/// with nobody told. A mail that panics never gets here: it is quarantined
/// where it is processed.
async fn supervise(
    mut tasks: Vec<(String, JoinHandle<()>)>,
    trigger: &crate::shutdown::Trigger,
) -> Result<()> {
    let mut first: Option<String> = None;
    while !tasks.is_empty() {
        let (done, i, _) = futures::future::select_all(tasks.iter_mut().map(|(_, h)| h)).await;
        let (name, _) = tasks.swap_remove(i);
        if let Err(e) = done
            && e.is_panic()
        {
            let message = crate::panic_message(&*e.into_panic());
            error!(
                task = name,
                panic = message,
                "a task of the daemon panicked; stopping"
            );
            first.get_or_insert(format!("the {name} task panicked: {message}"));
            trigger.fire();
        }
    }
    match first {
        Some(why) => Err(Error::Invalid(why)),
        None => Ok(()),
    }
}

/// The scheduler task of the daemon: runs due jobs, then sleeps until the
/// next slot (at most 30 s, so a clock or config change is noticed).
async fn scheduler(
    store: Store,
    config: Config,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    let jobs = crate::jobs::jobs(&config);
    if jobs.is_empty() {
        return;
    }
    loop {
        let now = clock.now();
        match crate::jobs::run_due(&store, &config, &settings, now).await {
            Ok(runs) if !runs.is_empty() => wake.notify_one(),
            Ok(_) => {}
            Err(e) => error!(error = %e, "scheduler: jobs not run; trying again"),
        }
        let now = clock.now();
        let next = jobs
            .iter()
            .filter_map(|j| j.schedule.next_after(now))
            .min()
            .map(|t| (t - now).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(30))
            .min(Duration::from_secs(30));
        if shutdown.sleep(next).await {
            return;
        }
    }
}

/// The conversation rules from the configuration and the token secret.
pub fn settings(config: &Config) -> Result<Settings> {
    Ok(Settings {
        desk: config.desk.clone(),
        staff: config.staff.clone(),
        key: crate::token_secret::token_key(&config.token_secret_file)?,
        trusted_authserv: config.trust.authserv_ids.clone(),
        reopen_window: config.tickets.reopen_window,
        ack_limit_per_hour: config.tickets.ack_limit_per_hour,
        mailbox_groups: config
            .mailboxes
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.group.clone()?)))
            .collect(),
        mailbox_services: config
            .mailboxes
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.service.clone()?)))
            .collect(),
        mailbox_kinds: config
            .mailboxes
            .iter()
            .map(|m| (m.name.clone(), m.kind))
            .collect(),
        relationship: config.relationship.clone(),
        services: sla_policies(&config.levels),
        service_escalation: config
            .levels
            .services
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.escalation.clone()?)))
            .collect(),
        suppliers: config
            .levels
            .suppliers
            .iter()
            .map(|s| Supplier {
                name: s.name.clone(),
                contacts: s.contacts.clone(),
            })
            .collect(),
        emit_events: config.plugins.enabled && plugins_installed(&config.plugins.dir),
        max_recipients: config.tickets.max_recipients,
        problem_on_resolve: config.problem_on_resolve,
        release_subscribers: config.release_subscribers.clone(),
        changes: config.changes.clone(),
    })
}

/// Service name → its SLA, for services whose policy exists.
fn sla_policies(levels: &ServiceLevels) -> HashMap<String, ServicePolicy> {
    levels
        .services
        .iter()
        .filter_map(|s| {
            let p = levels.policy(&s.policy)?;
            let policy = ServicePolicy {
                calendar: levels
                    .calendar(p.calendar.as_deref())
                    .unwrap_or_else(crate::domain::sla::always),
                response: p.response,
                resolution: p.resolution,
                warn: Percent::new(p.warn_percent)?,
            };
            Some((s.name.clone(), policy))
        })
        .collect()
}

/// Whether the plugin folder holds a shared library: hook events are only
/// recorded while some plugin could receive them.
fn plugins_installed(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "so" || x == "dylib" || x == "dll")
        })
    })
}

/// One line of `helpdeskd check`.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Connects to the database, every mailbox and the SMTP server; a line each.
pub async fn check(config: &Config) -> Vec<CheckLine> {
    let mut lines = vec![CheckLine {
        name: "config".into(),
        ok: true,
        detail: format!("{} is valid", config.file.display()),
    }];
    let db = async {
        let store = Store::connect(config.database.url.expose(), 1).await?;
        let pending = store.pending_migrations().await?;
        Ok::<_, crate::Error>(if pending.is_empty() {
            "connected, schema up to date".to_string()
        } else {
            format!(
                "connected, {} migration(s) pending: run `helpdeskd migrate`",
                pending.len()
            )
        })
    }
    .await;
    lines.push(line("database", db));
    lines.push(line("token secret", token_secret(config).await));
    let tokens = Tokens::new(&config.oauth2, Arc::new(SystemClock));
    for a in &config.oauth2 {
        let r = async {
            let t = tokens.token(&a.name).await?;
            let left = t.expires_at - t.issued_at;
            Ok(format!(
                "token from {} expires {} (in {}m{:02}s)",
                a.token_url,
                t.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
                left.num_minutes(),
                left.num_seconds() % 60
            ))
        }
        .await;
        lines.push(line(&format!("oauth2 {}", a.name), r));
    }
    for m in &config.mailboxes {
        let r = async {
            let mut s = poller::connect(m, &tokens).await?;
            let sel = s
                .select(&m.folder)
                .await
                .map_err(|e| crate::Error::imap(&m.name, format!("select {}: {e}", m.folder)))?;
            let _ = s.logout().await;
            Ok(format!(
                "{}:{} logged in as {}{}, {} holds {} mail(s)",
                m.imap.host,
                m.imap.port,
                m.imap
                    .oauth2
                    .as_ref()
                    .map_or(m.imap.user.as_deref().unwrap_or(""), |l| l.user.as_str()),
                if m.imap.oauth2.is_some() {
                    " (XOAUTH2)"
                } else {
                    ""
                },
                m.folder,
                sel.exists
            ))
        }
        .await;
        lines.push(line(&format!("mailbox {}", m.name), r));
    }
    let smtp = async {
        outbox::Connector::new(&config.smtp, 0, tokens.clone())?
            .test()
            .await?;
        Ok(format!(
            "{}:{} accepts connections",
            config.smtp.host, config.smtp.port
        ))
    }
    .await;
    lines.push(line("smtp", smtp));
    let (ok, detail) = plugins::check(&config.plugins, &plugins::host_exe()).await;
    lines.push(CheckLine {
        name: "plugins".into(),
        ok,
        detail,
    });
    lines
}

/// Whether this host signs with the secret the desk's other daemons use.
async fn token_secret(config: &Config) -> Result<String> {
    let file = &config.token_secret_file;
    let key = crate::token_secret::token_key(file)?;
    let store = Store::connect(config.database.url.expose(), 1).await?;
    if !store.pending_migrations().await?.is_empty() {
        return Ok(format!(
            "{} (not compared with the desk's: migrations pending)",
            file.display()
        ));
    }
    let now = SystemClock.now();
    match crate::token_secret::agree(&store, &key, file, now, false).await? {
        Agreement::Same(f) => Ok(format!(
            "{} is the desk's (recorded by {})",
            file.display(),
            f.recorded_by
        )),
        Agreement::Unrecorded => Ok(format!(
            "{} (not recorded yet: the first daemon to start records it)",
            file.display()
        )),
        a @ Agreement::Differs(_) => {
            Err(crate::Error::Invalid(a.refusal(file).unwrap_or_default()))
        }
    }
}

fn line(name: &str, r: Result<String>) -> CheckLine {
    match r {
        Ok(detail) => CheckLine {
            name: name.into(),
            ok: true,
            detail,
        },
        Err(e) => CheckLine {
            name: name.into(),
            ok: false,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_stops_the_others_and_the_daemon_with_its_name() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let mut patient = shutdown.clone();
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = stopped.clone();
        let tasks = vec![
            (
                "outbox sender".to_string(),
                tokio::spawn(async move {
                    patient.wait().await;
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }),
            ),
            (
                "scheduler".to_string(),
                tokio::spawn(async { panic!("a bug in a job") }),
            ),
        ];
        let r = tokio::time::timeout(Duration::from_secs(10), supervise(tasks, &trigger))
            .await
            .expect("supervise returns once the others stopped");
        let e = r.expect_err("the daemon ends with an error");
        assert_eq!(e.to_string(), "the scheduler task panicked: a bug in a job");
        assert!(stopped.load(std::sync::atomic::Ordering::SeqCst));
        assert!(shutdown.is_set());
    }

    #[tokio::test]
    async fn tasks_that_end_after_the_signal_end_the_daemon_well() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let mut s = shutdown.clone();
        let tasks = vec![(
            "poller support".to_string(),
            tokio::spawn(async move { s.wait().await }),
        )];
        trigger.fire();
        assert!(supervise(tasks, &trigger).await.is_ok());
    }
}
