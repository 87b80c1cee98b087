//! Wiring: the store, the ingest writer, one poller per mailbox and the
//! outbox sender, for `run`, `run --once`, `import` and `check`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{error, info};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Result;
use crate::import::{self, Source};
use crate::ingest::{Stats, Writer};
use crate::outbox::{self, FlushStats, Sender};
use crate::poller::{self, Poller};
use crate::shutdown::Shutdown;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

/// What `run --once` did.
#[derive(Debug, Default)]
pub struct OnceReport {
    pub stats: Stats,
    pub ingest_time: Duration,
    pub mailbox_errors: Vec<(String, String)>,
    pub outbox: Option<FlushStats>,
}

impl App {
    /// Connects to the database and applies pending migrations.
    pub async fn open(config: Config) -> Result<App> {
        let store = Store::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await?;
        store.migrate().await?;
        Ok(App {
            config,
            store,
            clock: Arc::new(SystemClock),
        })
    }

    fn writer(&self, wake: Arc<Notify>) -> Writer {
        Writer::spawn(
            self.store.clone(),
            self.config.desk.clone(),
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
        )
    }

    fn pollers(&self, writer: &Writer) -> Vec<Poller> {
        self.config
            .mailboxes
            .iter()
            .map(|m| Poller {
                mailbox: m.clone(),
                ingest: self.config.ingest.clone(),
                store: self.store.clone(),
                writer: writer.clone(),
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
        if send {
            report.outbox = Some(self.sender()?.flush().await?);
        }
        Ok(report)
    }

    /// The daemon: runs every task until `shutdown` fires.
    pub async fn run(&self, shutdown: Shutdown) -> Result<()> {
        let wake = Arc::new(Notify::new());
        let writer = self.writer(wake.clone());
        let sender = self.sender()?;
        let mut tasks = Vec::new();
        for p in self.pollers(&writer) {
            tasks.push(tokio::spawn(p.run(shutdown.clone())));
        }
        tasks.push(tokio::spawn(sender.run(wake, shutdown.clone())));
        info!(mailboxes = self.config.mailboxes.len(), "helpdeskd running");
        for t in tasks {
            let _ = t.await;
        }
        info!("helpdeskd stopped");
        Ok(())
    }

    pub async fn import(&self, source: &Source) -> Result<Stats> {
        let writer = self.writer(Arc::new(Notify::new()));
        import::import(source, &writer, &self.config.ingest).await
    }
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
    for m in &config.mailboxes {
        let r = async {
            let mut s = poller::connect(m).await?;
            let sel = s
                .select(&m.folder)
                .await
                .map_err(|e| crate::Error::imap(&m.name, format!("select {}: {e}", m.folder)))?;
            let _ = s.logout().await;
            Ok(format!(
                "{}:{} logged in as {}, {} holds {} mail(s)",
                m.imap.host,
                m.imap.port,
                m.imap.user.as_deref().unwrap_or(""),
                m.folder,
                sel.exists
            ))
        }
        .await;
        lines.push(line(&format!("mailbox {}", m.name), r));
    }
    let smtp = async {
        let t = outbox::transport(&config.smtp)?;
        match t.test_connection().await {
            Ok(true) => Ok(format!(
                "{}:{} accepts connections",
                config.smtp.host, config.smtp.port
            )),
            Ok(false) => Err(crate::Error::Smtp("server did not answer NOOP".into())),
            Err(e) => Err(crate::Error::Smtp(format!(
                "{}:{}: {e}",
                config.smtp.host, config.smtp.port
            ))),
        }
    }
    .await;
    lines.push(line("smtp", smtp));
    lines
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
