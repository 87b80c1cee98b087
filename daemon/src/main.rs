//! The `helpdeskd` command line.

// `ticket show --json` builds one deep json! value.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use helpdeskd::app::{self, App};
use helpdeskd::config::{Config, ConfigError, LogFormat};
use helpdeskd::import::Source;
use helpdeskd::shutdown;
use helpdeskd::store::Store;

#[derive(Parser)]
#[command(
    name = "helpdeskd",
    version,
    about = "An IT service desk that lives in email"
)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "HELPDESK_CONFIG",
        default_value = "config/helpdesk.toml",
        global = true
    )]
    config: PathBuf,
    /// Log format; overrides `[log] format`.
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormatArg>,
    /// Run as if the time were TIME (RFC 3339, e.g. 2026-11-25T10:00:00Z); the
    /// clock runs on from there. For tests and dry runs of scheduled jobs.
    #[arg(long, global = true, value_name = "TIME", hide = true)]
    now: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (graceful shutdown on SIGTERM/SIGINT).
    Run {
        /// One full cycle: poll every mailbox, flush the outbox, exit.
        #[arg(long)]
        once: bool,
        /// With --once: store and queue outbound mail, but do not send it.
        #[arg(long, requires = "once")]
        no_send: bool,
        /// With --once: print the cycle's figures as JSON.
        #[arg(long, requires = "once")]
        json: bool,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Validate the configuration and connect to the database, every mailbox and SMTP.
    Check,
    /// The reply-token secret every daemon of the desk must share.
    TokenSecret {
        #[command(subcommand)]
        action: TokenSecretAction,
    },
    /// Each mailbox (connected, last mail, last error), the outbox, failed
    /// plugin events and the jobs, from the database.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Tickets.
    Ticket {
        #[command(subcommand)]
        command: TicketCommand,
    },
    /// Changes: their state, approvals, refused answers and history.
    Change {
        #[command(subcommand)]
        command: ChangeCommand,
    },
    /// Feed an mbox file or a Maildir through the ingest pipeline.
    Import {
        #[arg(long, conflicts_with = "maildir", required_unless_present = "maildir")]
        mbox: Option<PathBuf>,
        #[arg(long)]
        maildir: Option<PathBuf>,
    },
    /// Mails that could not be stored as ticket messages, with the reason.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Problems and known errors: records, linked incidents.
    Problem {
        #[command(subcommand)]
        command: ProblemCommand,
    },
    /// Plugins: what is loaded, failed events, retries.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Scheduled jobs: the SLA check, the service report, supplier reviews.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Service report figures: SLA compliance, volumes, backlog, suppliers, satisfaction.
    Report {
        /// Which figures.
        #[arg(value_enum)]
        kind: ReportKind,
        /// First day (YYYY-MM-DD, UTC); default: 30 days before --to.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        from: Option<chrono::NaiveDate>,
        /// End day, exclusive (YYYY-MM-DD, UTC); default: tomorrow.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        to: Option<chrono::NaiveDate>,
        /// Output format (html: the report mail's section, with its chart).
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// OAuth2 accounts (`[[oauth2]]`).
    Oauth {
        #[command(subcommand)]
        command: OauthCommand,
    },
    /// The plugin host the daemon starts (internal: speaks frames on stdin/stdout).
    #[command(hide = true)]
    PluginHost,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportKind {
    Sla,
    Volume,
    Backlog,
    Suppliers,
    /// Customer ratings: overall, per service, per staff member.
    Satisfaction,
    /// Problems opened and solved, open problems and known errors.
    Problems,
    /// Changes: outcomes, success rate, emergency changes, late approvals.
    Changes,
    /// Releases: deploys asked, deployed, vetoed.
    Releases,
    /// Availability per service from the outages recorded on incidents.
    Availability,
    /// Queue the scheduled report mail to `[report] recipients` now.
    #[value(hide = true)]
    Send,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
    Html,
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("expected a date such as 2026-11-25 (YYYY-MM-DD): {e}"))
}

#[derive(Subcommand)]
enum TicketCommand {
    /// List tickets.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its participants, messages and attachments.
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the raw bytes of a ticket's message: 1 is the first, in the
    /// order `ticket show` lists them.
    Raw { number: String, message: usize },
}

#[derive(Subcommand)]
enum ChangeCommand {
    /// List changes (tickets of kind change).
    List {
        /// Only changes in this state (draft, submitted, approved, rejected,
        /// scheduled, implemented, failed, closed).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one change: its facts, the answers of its round, the refused
    /// answers with their reasons, and its history.
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenSecretAction {
    /// Record this host's secret as the desk's, after a deliberate change
    /// of the secret; the other daemons then refuse to start until they
    /// have a copy of the file.
    Adopt,
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Log an account of flow = "refresh_token" in once: prints a URL (and,
    /// for the device flow, a code) for a person to approve, waits, and
    /// stores the refresh token in its file (mode 0600).
    Login {
        /// The `name` of the `[[oauth2]]` account.
        account: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Every job: schedule, last run and outcome, next slot.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one job now, whatever its schedule.
    Run { name: String },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print one quarantined mail's raw bytes.
    Show { id: i64 },
}

#[derive(Subcommand)]
enum ProblemCommand {
    /// Every problem: status, linked incidents (open/all), known error, workaround.
    List {
        /// Only known errors.
        #[arg(long)]
        known_errors: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin file: name, version, hooks, status and last error.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Events that failed for good, with the reason.
    Failed {
        #[arg(long)]
        json: bool,
    },
    /// Make failed events pending again (plugins that handled them are not called again).
    Retry {
        /// The event id (see `plugins failed`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every failed event.
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::PluginHost) {
        // Before any configuration or runtime: the host only speaks frames.
        return ExitCode::from(helpdeskd::plugins::host::run().clamp(0, 255) as u8);
    }
    if let Some(now) = &cli.now {
        match chrono::DateTime::parse_from_rfc3339(now) {
            Ok(t) => {
                helpdeskd::clock::start_at(t.with_timezone(&chrono::Utc));
            }
            Err(e) => {
                eprintln!(
                    "error: --now {now:?}: expected RFC 3339 such as 2026-11-25T10:00:00Z ({e})"
                );
                return ExitCode::from(2);
            }
        }
    }
    let load = if matches!(cli.command, Command::Oauth { .. }) {
        Config::load_for_login
    } else {
        Config::load
    };
    let config = match load(&cli.config) {
        Ok(c) => c,
        Err(ConfigError::Invalid { problems }) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!("{} problem(s) in {}", problems.len(), cli.config.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn jobs_command(command: JobsCommand, config: Config) -> anyhow::Result<ExitCode> {
    let app = App::open(config).await?;
    let now = app.clock.now();
    match command {
        JobsCommand::List { json } => {
            let jobs = helpdeskd::jobs::list(&app.store, &app.config, now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("no jobs configured");
            }
            if !json {
                for j in jobs {
                    let last = j.last.map_or("never run".to_string(), |r| {
                        format!(
                            "last {} {}{}",
                            r.slot.format("%Y-%m-%d %H:%M:%S"),
                            r.status,
                            r.outcome.map(|o| format!(" ({o})")).unwrap_or_default()
                        )
                    });
                    let next = j
                        .next
                        .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
                    println!("{:<28} {:<18} next {next}  {last}", j.job, j.schedule);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Run { name } => {
            let r = helpdeskd::jobs::run_now(&app.store, &app.config, &app.settings, &name, now)
                .await?;
            println!("{} {}: {}", r.job, r.status, r.outcome.unwrap_or_default());
            Ok(if r.status == "ok" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn init_logging(config: &Config, flag: Option<LogFormatArg>) {
    // Library chatter (migrations, SQL) stays at warn unless RUST_LOG asks for it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "sea_orm_migration=warn,sqlx=warn,sea_orm=warn,{}",
            config.log.level
        ))
    });
    let json = match flag {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => config.log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            once: true,
            no_send,
            json,
        } => {
            let app = App::open_to_poll(config).await?;
            let r = app.run_once(!no_send).await?;
            let s = r.stats;
            if json {
                let out = json!({
                    "mails": s.mails(), "stored": s.stored, "new_tickets": s.new_tickets,
                    "acknowledged": s.acknowledged, "duplicates": s.duplicates,
                    "quarantined": s.quarantined, "bytes": s.bytes,
                    "ingest_seconds": r.ingest_time.as_secs_f64(),
                    "mailbox_errors": r.mailbox_errors.iter().map(|(m, e)| json!({"mailbox": m, "error": e})).collect::<Vec<_>>(),
                    "plugins": json!({"done": r.plugins.done, "failed": r.plugins.failed, "calls": r.plugins.calls,
                        "call_errors": r.plugins.call_errors, "applied": r.plugins.applied, "refused": r.plugins.refused,
                        "mails": r.plugins.mails}),
                    "outbox": r.outbox.map(|o| json!({"sent": o.sent, "deferred": o.deferred, "failed": o.failed})),
                    "jobs": r.jobs,
                    "peak_rss_bytes": peak_rss_bytes(),
                });
                println!("{out}");
            } else {
                println!(
                    "ingested {} mail(s) in {:.3}s: {} stored ({} new tickets), {} duplicate(s), {} quarantined",
                    s.mails(),
                    r.ingest_time.as_secs_f64(),
                    s.stored,
                    s.new_tickets,
                    s.duplicates,
                    s.quarantined
                );
                let p = r.plugins;
                if p.calls > 0 || p.failed > 0 {
                    println!(
                        "plugins: {} event(s) done, {} failed; {} call(s), {} failed; {} action(s) applied, {} refused",
                        p.done, p.failed, p.calls, p.call_errors, p.applied, p.refused
                    );
                }
                if let Some(o) = r.outbox {
                    println!(
                        "outbox: {} sent, {} deferred, {} failed",
                        o.sent, o.deferred, o.failed
                    );
                }
                for (m, e) in &r.mailbox_errors {
                    println!("mailbox {m}: {e}");
                }
            }
            Ok(if r.mailbox_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run { .. } => {
            // The signals are caught before the desk opens: a SIGTERM while
            // the daemon migrates, or waits for another daemon's migration,
            // stops it cleanly instead of killing it.
            let signals = Signals::new();
            let (trigger, shutdown) = shutdown::channel();
            tokio::spawn(async move {
                signals.wait().await;
                tracing::info!("shutting down");
                trigger.fire();
            });
            let mut stopped = shutdown.clone();
            let app = tokio::select! {
                app = App::open_to_poll(config) => app?,
                _ = stopped.wait() => {
                    tracing::info!("stopped while starting");
                    return Ok(ExitCode::SUCCESS);
                }
            };
            app.run(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = Store::connect(config.database.url.expose(), 1).await?;
            let applied = store.migrate().await?;
            println!("applied {} migration(s); schema up to date", applied.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::TokenSecret {
            action: TokenSecretAction::Adopt,
        } => {
            let store = Store::connect(config.database.url.expose(), 1).await?;
            store.migrate().await?;
            let file = &config.token_secret_file;
            let key = helpdeskd::token_secret::token_key(file)?;
            helpdeskd::token_secret::adopt(
                &store,
                &key,
                file,
                helpdeskd::clock::Clock::now(&helpdeskd::clock::SystemClock),
            )
            .await?;
            println!(
                "{} is now the desk's token secret: copy it to every other daemon's host",
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let lines = app::check(&config).await;
            let mut ok = true;
            for l in &lines {
                ok &= l.ok;
                println!(
                    "{:<4} {:<20} {}",
                    if l.ok { "ok" } else { "FAIL" },
                    l.name,
                    l.detail
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status { json } => {
            let app = App::open(config).await?;
            let s = app.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", helpdeskd::metrics::status::render(&s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket { command } => {
            let app = App::open(config).await?;
            ticket(command, &app.store).await
        }
        Command::Change { command } => {
            let app = App::open(config).await?;
            change(command, &app.store, &app.config).await
        }
        Command::Import { mbox, maildir } => {
            let source = match (mbox, maildir) {
                (Some(f), _) => Source::Mbox(f),
                (None, Some(d)) => Source::Maildir(d),
                (None, None) => anyhow::bail!("give --mbox FILE or --maildir DIR"),
            };
            let app = App::open(config).await?;
            let s = app.import(&source).await?;
            println!(
                "imported {} mail(s): {} stored ({} new tickets), {} duplicate(s), {} quarantined",
                s.mails(),
                s.stored,
                s.new_tickets,
                s.duplicates,
                s.quarantined
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins { command } => plugins_command(command, config).await,
        Command::Oauth {
            command: OauthCommand::Login { account },
        } => {
            let clock: std::sync::Arc<dyn helpdeskd::clock::Clock> =
                std::sync::Arc::new(helpdeskd::clock::SystemClock);
            let path = helpdeskd::oauth2::login(&config.oauth2, &account, clock, |how| {
                match how {
                    helpdeskd::oauth2::Login::Device(code) => {
                        println!(
                            "To let helpdeskd use the account {account}, open\n\n    {}\n\nand enter the code\n\n    {}\n",
                            code.verification_uri, code.user_code
                        );
                        if let Some(full) = &code.verification_uri_complete {
                            println!("(or open {full})\n");
                        }
                    }
                    helpdeskd::oauth2::Login::Redirect(url) => println!(
                        "To let helpdeskd use the account {account}, open this URL in a browser on this machine\n\
(or tunnel its 127.0.0.1 port) and sign in:\n\n    {url}\n"
                    ),
                }
                println!("Waiting for the approval…");
            })
            .await?;
            println!("logged in; refresh token stored in {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::PluginHost => Ok(ExitCode::SUCCESS),
        Command::Report {
            kind,
            from,
            to,
            format,
        } => report_command(kind, from, to, format, config).await,
        Command::Jobs { command } => jobs_command(command, config).await,
        Command::Problem {
            command: ProblemCommand::List { known_errors, json },
        } => {
            let app = App::open(config).await?;
            let rows = app.store.problems(known_errors).await?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|p| {
                        json!({
                            "number": p.ticket.number, "status": p.ticket.status,
                            "subject": p.ticket.subject, "assignee": p.ticket.assignee,
                            "root_cause": p.root_cause, "workaround": p.workaround,
                            "known_error": p.known_error, "keywords": p.keywords,
                            "linked": p.linked, "linked_open": p.linked_open,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for p in rows {
                    let first = |t: &Option<String>| {
                        t.as_deref()
                            .and_then(|t| t.lines().next())
                            .unwrap_or("-")
                            .to_string()
                    };
                    println!(
                        "{}  {:<8} {:>2}/{:<2} open  {}",
                        p.ticket.number, p.ticket.status, p.linked_open, p.linked, p.ticket.subject
                    );
                    println!("    root cause: {}", first(&p.root_cause));
                    println!("    workaround: {}", first(&p.workaround));
                    if p.known_error {
                        println!("    known error, keywords: {}", p.keywords);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine { command } => {
            let app = App::open(config).await?;
            match command {
                QuarantineCommand::List { json } => {
                    let rows = app.store.quarantined().await?;
                    if json {
                        let v: Vec<_> = rows
                            .iter()
                            .map(|q| {
                                json!({
                                    "id": q.id, "mailbox": q.mailbox, "uid": q.uid, "size": q.size, "dedup_key": q.dedup_key,
                                    "reason": q.reason, "created_at": q.created_at.to_rfc3339(),
                                })
                            })
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        for q in rows {
                            println!(
                                "{:>5}  {:<12} uid {:<8} {:>9} bytes  {}",
                                q.id,
                                q.mailbox,
                                q.uid.map(|u| u.to_string()).unwrap_or("-".into()),
                                q.size,
                                q.reason
                            );
                        }
                    }
                }
                QuarantineCommand::Show { id } => {
                    use std::io::Write;
                    let q = app.store.quarantined_one(id).await?;
                    std::io::stdout()
                        .write_all(&q.raw)
                        .context("writing to stdout")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// This process's peak resident memory (`VmHWM`, Linux): it counts from
/// the exec, unlike `ru_maxrss`, which a child inherits from the process
/// that forked it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

async fn change(
    command: ChangeCommand,
    store: &Store,
    config: &helpdeskd::config::Config,
) -> anyhow::Result<ExitCode> {
    use helpdeskd::changes;
    match command {
        ChangeCommand::List { state, json } => {
            let state = match state {
                Some(s) => Some(
                    s.parse::<helpdeskd::domain::changes::State>()
                        .map_err(anyhow::Error::msg)?,
                ),
                None => None,
            };
            let rows = changes::list(store.conn(), config, state).await?;
            if json {
                let v: Vec<_> = rows.iter().map(changes::Shown::json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for r in &rows {
                    println!("{}", changes::line(r));
                }
            }
        }
        ChangeCommand::Show { number, json } => {
            let s = changes::show(store.conn(), config, &number).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s.json())?);
            } else {
                print!("{}", s.text());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ticket(command: TicketCommand, store: &Store) -> anyhow::Result<ExitCode> {
    match command {
        TicketCommand::List { status, json } => {
            if let Some(s) = &status {
                s.parse::<helpdeskd::domain::ticket::Status>()
                    .map_err(anyhow::Error::msg)?;
            }
            let rows = store.tickets(status.as_deref()).await?;
            if json {
                let v: Vec<_> = rows.iter().map(|r| json!({
                    "number": r.ticket.number, "kind": r.ticket.kind, "subject": r.ticket.subject,
                    "status": r.ticket.status, "priority": r.ticket.priority, "customer": r.customer,
                    "mailbox": r.ticket.mailbox,
                    "created_at": r.ticket.created_at.to_rfc3339(), "updated_at": r.ticket.updated_at.to_rfc3339(),
                })).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for r in rows {
                    println!(
                        "{:<11} {:<8} {:<7} {:<30} {}",
                        r.ticket.number,
                        r.ticket.status,
                        r.ticket.priority,
                        r.customer,
                        r.ticket.subject
                    );
                }
            }
        }
        TicketCommand::Raw { number, message } => {
            use std::io::Write;
            let d = store.ticket_detail(&number).await?;
            let Some((m, _)) = message.checked_sub(1).and_then(|i| d.messages.get(i)) else {
                anyhow::bail!(
                    "{number} has {} messages; there is no message {message}",
                    d.messages.len()
                );
            };
            let raw = store.message_raw(m.id).await?;
            std::io::stdout()
                .write_all(&raw)
                .context("writing to stdout")?;
        }
        TicketCommand::Show { number, json } => {
            let d = store.ticket_detail(&number).await?;
            let t = &d.ticket;
            let ratings = helpdeskd::report::satisfaction::of_ticket(store, t.id).await?;
            if json {
                let v = json!({
                    "number": t.number, "kind": t.kind, "subject": t.subject, "status": t.status,
                    "priority": t.priority, "customer": d.customer, "mailbox": t.mailbox,
                    "assignee": t.assignee, "group": t.team, "service": t.service,
                    "fields": serde_json::from_str::<serde_json::Value>(&t.fields).unwrap_or_else(|_| json!({})),
                    "response_due_at": t.response_due_at.map(|r| r.to_rfc3339()),
                    "resolution_due_at": t.resolution_due_at.map(|r| r.to_rfc3339()),
                    "responded_at": t.responded_at.map(|r| r.to_rfc3339()),
                    "sla_next_at": t.sla_next_at.map(|r| r.to_rfc3339()),
                    "resolved_at": t.resolved_at.map(|r| r.to_rfc3339()),
                    "created_at": t.created_at.to_rfc3339(), "updated_at": t.updated_at.to_rfc3339(),
                    "participants": d.participants.iter().map(|(a, r)| json!({"address": a, "role": r})).collect::<Vec<_>>(),
                    "linked": d.linked.iter().map(|(n, r)| json!({"number": n, "reason": r})).collect::<Vec<_>>(),
                    "messages": d.messages.iter().map(|(m, atts)| json!({
                        "direction": m.direction, "message_id": m.message_id, "from": m.from_addr,
                        "to": m.to_addrs, "cc": m.cc_addrs, "subject": m.subject, "class": m.class,
                        "threaded_by": m.threaded_by, "visibility": m.visibility,
                        "author": m.author, "flag": m.flag,
                        "in_reply_to": m.in_reply_to, "references": m.references,
                        "mailbox": m.mailbox, "uid": m.uid,
                        "warnings": m.warnings.lines().collect::<Vec<_>>(),
                        "created_at": m.created_at.to_rfc3339(), "body": m.body_text,
                        "attachments": atts.iter().map(|a| json!({
                            "filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "ratings": ratings.iter().map(|r| json!({
                        "score": r.score, "comment": r.comment, "rated_at": r.rated_at.to_rfc3339(),
                        "assignee": r.assignee, "service": r.service,
                    })).collect::<Vec<_>>(),
                    "outbox": d.outbox.iter().map(|o| json!({
                        "kind": o.kind, "message_id": o.message_id, "to": o.recipients, "status": o.status,
                        "attempts": o.attempts, "last_error": o.last_error,
                    })).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}  {}", t.number, t.subject);
                println!(
                    "status {}  priority {}  kind {}  mailbox {}",
                    t.status, t.priority, t.kind, t.mailbox
                );
                println!("customer {}", d.customer);
                println!(
                    "assignee {}",
                    t.assignee
                        .clone()
                        .or_else(|| t.team.as_ref().map(|g| format!("group {g}")))
                        .unwrap_or_else(|| "nobody".into())
                );
                for (a, r) in &d.participants {
                    println!("participant {a} ({r})");
                }
                for (n, r) in &d.linked {
                    println!("linked {n}: {r}");
                }
                for r in &ratings {
                    println!(
                        "rating {}/5 {} {}",
                        r.score,
                        r.rated_at.to_rfc3339(),
                        r.comment.lines().next().unwrap_or("")
                    );
                }
                for (m, atts) in &d.messages {
                    println!(
                        "\n--- {} {} {} [{}]",
                        m.direction,
                        m.created_at.to_rfc3339(),
                        m.from_addr,
                        m.class
                    );
                    println!("Subject: {}  ({}, {})", m.subject, m.author, m.visibility);
                    if let Some(f) = &m.flag {
                        println!("FLAG: {f}");
                    }
                    for w in m.warnings.lines() {
                        println!("warning: {w}");
                    }
                    println!("\n{}", m.body_text.trim_end());
                    for a in atts {
                        println!(
                            "[attachment] {} ({}, {} bytes, sha256 {})",
                            a.filename, a.content_type, a.size, a.sha256
                        );
                    }
                }
                for o in &d.outbox {
                    println!(
                        "\noutbox {} to {}: {} after {} attempt(s){}",
                        o.kind,
                        o.recipients,
                        o.status,
                        o.attempts,
                        o.last_error
                            .as_deref()
                            .map(|e| format!(" (last error: {e})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT, listened for from the moment this is made.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn wait(mut self) {
        let term = async {
            match &mut self.term {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let int = async {
            match &mut self.int {
                Some(i) => {
                    i.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = int => {}
        }
    }
}

async fn plugins_command(command: PluginsCommand, config: Config) -> anyhow::Result<ExitCode> {
    use helpdeskd::plugins;
    let app = App::open(config).await?;
    match command {
        PluginsCommand::List { json } => {
            let mut loaded = plugins::load(&app.config.plugins, &plugins::host_exe()).await;
            loaded.runner.shutdown().await;
            let errors = plugins::last_errors(app.store.conn()).await?;
            let rows: Vec<_> = loaded
                .statuses
                .iter()
                .map(|s| {
                    let name = s.name();
                    let (version, hooks, status) = match &s.result {
                        Ok(m) => (m.version.clone(), m.hooks.clone(), "loaded".to_string()),
                        Err(e) => (String::new(), Vec::new(), format!("refused: {e}")),
                    };
                    let last = errors.get(&name).map(|e| {
                        format!("{} {}", e.created_at.format("%Y-%m-%d %H:%M:%S"), e.error)
                    });
                    (name, version, hooks, status, last, s.file.clone())
                })
                .collect();
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(name, version, hooks, status, last, file)| {
                        json!({"name": name, "version": version, "hooks": hooks, "status": status,
                               "last_error": last, "file": file})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"plugins": v, "error": loaded.error}))?
                );
            } else {
                if let Some(e) = &loaded.error {
                    println!("error: {e}");
                }
                if rows.is_empty() {
                    println!("no plugins in {}", app.config.plugins.dir.display());
                }
                for (name, version, hooks, status, last, _) in rows {
                    println!("{name:<20} {version:<8} {:<40} {status}", hooks.join(","));
                    if let Some(l) = last {
                        println!("{:<20} last error: {l}", "");
                    }
                }
            }
        }
        PluginsCommand::Failed { json } => {
            let rows = plugins::failed_events(app.store.conn()).await?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|f| {
                        json!({"id": f.event.id, "hook": f.event.hook, "ticket": f.ticket,
                               "attempts": f.event.attempts, "error": f.event.last_error,
                               "created_at": f.event.created_at.to_rfc3339()})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for f in rows {
                    println!(
                        "{:>6}  {:<16} {:<11} {} attempt(s)  {}",
                        f.event.id,
                        f.event.hook,
                        f.ticket.as_deref().unwrap_or("-"),
                        f.event.attempts,
                        f.event.last_error.as_deref().unwrap_or("")
                    );
                }
            }
        }
        PluginsCommand::Retry { id, all } => {
            let id = if all { None } else { id };
            let n = plugins::dispatch::retry(app.store.conn(), id, app.clock.now()).await?;
            if n == 0 && id.is_some() {
                anyhow::bail!("event {} is not a failed event", id.unwrap_or_default());
            }
            println!(
                "{n} event(s) pending again; the daemon (or the next `run --once`) dispatches them"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn report_command(
    kind: ReportKind,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    format: Option<ReportFormat>,
    config: Config,
) -> anyhow::Result<ExitCode> {
    use helpdeskd::report::{self, Kind, render};
    let kind = match kind {
        ReportKind::Sla => Kind::Sla,
        ReportKind::Volume => Kind::Volume,
        ReportKind::Backlog => Kind::Backlog,
        ReportKind::Suppliers => Kind::Suppliers,
        ReportKind::Satisfaction => Kind::Satisfaction,
        ReportKind::Problems => Kind::Problems,
        ReportKind::Changes => Kind::Changes,
        ReportKind::Releases => Kind::Releases,
        ReportKind::Availability => Kind::Availability,
        ReportKind::Send => {
            if from.is_some() || to.is_some() || format.is_some() {
                anyhow::bail!(
                    "report send takes no --from, --to or --format: it covers the last \
                     [report] period_days days"
                );
            }
            let app = App::open(config).await?;
            if app.config.levels.report.recipients.is_empty() {
                anyhow::bail!("no [report] recipients are configured");
            }
            let n = report::queue_scheduled(&app.store, &app.config, None, app.clock.now()).await?;
            println!("queued {n} report mail(s); the daemon (or the next `run --once`) sends them");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let app = App::open(config).await?;
    let now = app.clock.now();
    let to = to.unwrap_or_else(|| now.date_naive() + chrono::Days::new(1));
    let from = from.unwrap_or(to - chrono::Days::new(30));
    if from >= to {
        anyhow::bail!("--from {from} must be before --to {to} (the end day is exclusive)");
    }
    let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let (from, to) = (midnight(from), midnight(to));
    let figures = report::figures(
        &app.store,
        &app.config.levels,
        &app.config.changes.catalog,
        from,
        to,
        now,
    )
    .await?;
    let out = match format.unwrap_or(ReportFormat::Table) {
        ReportFormat::Table => render::table(&figures, kind),
        ReportFormat::Csv => render::csv(&figures, kind),
        ReportFormat::Json => render::json(&figures, kind),
        ReportFormat::Html => {
            render::html_sections(&figures, &app.config.desk.name, from, to, &[kind])
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
