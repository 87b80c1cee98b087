//! The one TOML configuration file: typed sections with documented defaults,
//! then a validation pass that reports every problem at once, each with the
//! file, the line and the key (`helpdesk.toml:14: mailbox[0].imap.port: …`).
//!
//! Relative paths in the file (data_dir, password files, CA files) are taken
//! relative to the directory of the configuration file, so the daemon behaves
//! the same whatever its working directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::ack::Desk;
use crate::domain::mail::Address;
use crate::domain::schedule::CronSchedule;
use crate::domain::sla::calendar::{Calendar, CalendarSpec};
use crate::domain::staff::{Directory, StaffMember};

mod changes;

/// A secret read from a file or the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

/// One thing wrong in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS before login.
    Starttls,
    /// No TLS: only for loopback test setups.
    None,
}

/// How the desk logs in to an IMAP or SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// `user` with `password_file` or `password_env`.
    Password,
    /// XOAUTH2 with an access token of the `[[oauth2]]` account `oauth2`.
    OAuth2,
}

/// How an `[[oauth2]]` account obtains its access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// The app's own permission (Microsoft 365 `IMAP.AccessAsApp`): no person involved.
    ClientCredentials,
    /// A person's consent once (`helpdeskd oauth login`), kept as a refresh token.
    RefreshToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Processed {
    /// Set the `$HelpdeskProcessed` keyword and `\Seen`, leave the mail in place.
    Flag,
    /// Move the mail to `processed_folder`.
    Move,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

// ---- the file as written -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_data_dir")]
    data_dir: String,
    #[serde(default)]
    database: RawDatabase,
    desk: RawDesk,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    mailbox: Vec<RawMailbox>,
    smtp: RawServer,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    staff: Vec<RawStaff>,
    #[serde(default)]
    trust: RawTrust,
    #[serde(default)]
    tickets: RawTickets,
    #[serde(default)]
    problems: RawProblems,
    #[serde(default)]
    releases: RawReleases,
    #[serde(default)]
    calendar: Vec<RawCalendar>,
    #[serde(default)]
    sla_policy: Vec<RawSlaPolicy>,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    supplier: Vec<RawSupplier>,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    report: RawReport,
    #[serde(default)]
    plugins: RawPlugins,
    metrics: Option<RawMetrics>,
    #[serde(default)]
    oauth2: Vec<RawOAuth2>,
    #[serde(default)]
    item: Vec<changes::RawItem>,
    #[serde(default)]
    cab: Vec<changes::RawCab>,
    #[serde(default)]
    freeze: Vec<changes::RawFreeze>,
    #[serde(default)]
    changes: changes::RawChanges,
    #[serde(default)]
    satisfaction: RawSatisfaction,
    #[serde(default)]
    complaints: RawComplaints,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    name: String,
    email: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    #[serde(default)]
    authserv_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    #[serde(default = "default_reopen_days")]
    reopen_window_days: Spanned<i64>,
    #[serde(default = "default_ack_limit")]
    ack_limit_per_hour: Spanned<i64>,
    #[serde(default = "default_max_recipients")]
    max_recipients: Spanned<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProblems {
    on_resolve: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReleases {
    #[serde(default)]
    subscribers: Vec<Spanned<String>>,
}

impl Default for RawTickets {
    fn default() -> Self {
        RawTickets {
            reopen_window_days: default_reopen_days(),
            ack_limit_per_hour: default_ack_limit(),
            max_recipients: default_max_recipients(),
        }
    }
}

fn default_reopen_days() -> Spanned<i64> {
    Spanned::new(0..0, 7)
}
fn default_ack_limit() -> Spanned<i64> {
    Spanned::new(0..0, 5)
}
fn default_max_recipients() -> Spanned<i64> {
    Spanned::new(0..0, 50)
}

fn default_data_dir() -> String {
    "data".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    #[serde(default = "default_max_connections")]
    max_connections: Spanned<i64>,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: None,
            url_env: None,
            max_connections: default_max_connections(),
        }
    }
}

fn default_max_connections() -> Spanned<i64> {
    Spanned::new(0..0, 8)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDesk {
    #[serde(default = "default_desk_name")]
    name: String,
    address: Spanned<String>,
    #[serde(default = "default_tag")]
    tag: Spanned<String>,
    token_secret_file: Option<Spanned<String>>,
    admin_address: Option<Spanned<String>>,
}

fn default_desk_name() -> String {
    "Service Desk".into()
}
fn default_tag() -> Spanned<String> {
    Spanned::new(0..0, "HELPDESK".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    #[serde(default = "default_batch_size")]
    batch_size: Spanned<i64>,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: Spanned<i64>,
}

impl Default for RawIngest {
    fn default() -> Self {
        RawIngest {
            batch_size: default_batch_size(),
            max_message_bytes: default_max_message_bytes(),
        }
    }
}

fn default_batch_size() -> Spanned<i64> {
    Spanned::new(0..0, 500)
}
fn default_max_message_bytes() -> Spanned<i64> {
    Spanned::new(0..0, 64 * 1024 * 1024)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: Option<String>,
    #[serde(default = "default_folder")]
    folder: String,
    #[serde(default = "default_processed")]
    processed: Processed,
    #[serde(default = "default_processed_folder")]
    processed_folder: String,
    #[serde(default = "default_poll_interval")]
    poll_interval_secs: Spanned<i64>,
    #[serde(default = "default_true")]
    idle: bool,
    group: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    /// The kind of the tickets this mailbox opens (default incident).
    kind: Option<Spanned<String>>,
    imap: RawServer,
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_processed() -> Processed {
    Processed::Move
}
fn default_processed_folder() -> String {
    "Processed".into()
}
fn default_poll_interval() -> Spanned<i64> {
    Spanned::new(0..0, 60)
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: Option<Spanned<i64>>,
    #[serde(default = "default_tls")]
    tls: TlsMode,
    ca_file: Option<Spanned<String>>,
    user: Option<String>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    #[serde(default = "default_timeout")]
    timeout_secs: Spanned<i64>,
    auth: Option<Spanned<AuthMode>>,
    oauth2: Option<Spanned<String>>,
}

fn default_tls() -> TlsMode {
    TlsMode::Implicit
}

fn default_timeout() -> Spanned<i64> {
    Spanned::new(0..0, 30)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    #[serde(default = "default_retry_initial")]
    retry_initial_secs: Spanned<i64>,
    #[serde(default = "default_retry_max")]
    retry_max_secs: Spanned<i64>,
    #[serde(default = "default_max_attempts")]
    max_attempts: Spanned<i64>,
    #[serde(default = "default_flush_interval")]
    flush_interval_secs: Spanned<i64>,
    #[serde(default = "default_parallel")]
    parallel: Spanned<i64>,
}

impl Default for RawOutbox {
    fn default() -> Self {
        RawOutbox {
            retry_initial_secs: default_retry_initial(),
            retry_max_secs: default_retry_max(),
            max_attempts: default_max_attempts(),
            flush_interval_secs: default_flush_interval(),
            parallel: default_parallel(),
        }
    }
}

fn default_retry_initial() -> Spanned<i64> {
    Spanned::new(0..0, 30)
}
fn default_retry_max() -> Spanned<i64> {
    Spanned::new(0..0, 3600)
}
fn default_max_attempts() -> Spanned<i64> {
    Spanned::new(0..0, 50)
}
fn default_flush_interval() -> Spanned<i64> {
    Spanned::new(0..0, 5)
}
fn default_parallel() -> Spanned<i64> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default = "default_log_format")]
    format: LogFormat,
    #[serde(default = "default_log_level")]
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Text
}
fn default_log_level() -> String {
    "info".into()
}

// ---- the validated configuration ----------------------------------------

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub desk: Desk,
    pub ingest: IngestConfig,
    pub mailboxes: Vec<MailboxConfig>,
    pub smtp: ServerConfig,
    pub outbox: OutboxConfig,
    pub log: LogConfig,
    pub staff: Directory,
    pub trust: TrustConfig,
    pub tickets: TicketsConfig,
    /// `[problems]`: what a solved problem does to its open incidents.
    pub problem_on_resolve: crate::domain::problem::OnResolve,
    /// `[releases] subscribers`: who gets the notes of a deployed release.
    pub release_subscribers: Vec<Address>,
    /// The secret reply tokens are signed with; created on first start.
    pub token_secret_file: PathBuf,
    pub plugins: PluginsConfig,
    pub levels: ServiceLevels,
    /// `[metrics]`: where the daemon serves /metrics, /healthz and /readyz.
    pub metrics: Option<MetricsConfig>,
    /// `[[oauth2]]` accounts, for servers with `auth = "oauth2"`.
    pub oauth2: Vec<OAuth2Account>,
    /// Told by mail of what needs an admin (a refused OAuth2 refresh).
    pub admin_address: Option<Address>,
    /// Configuration items, change advisory boards and freezes.
    pub changes: crate::domain::changes::Config,
    /// `[satisfaction]`, `[complaints]` and the services' managers.
    pub relationship: crate::domain::satisfaction::Policy,
}

#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// authserv-ids whose `Authentication-Results` headers are believed.
    pub authserv_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TicketsConfig {
    pub reopen_window: chrono::Duration,
    pub ack_limit_per_hour: u32,
    /// Recipients of one desk mail at most (one copy each).
    pub max_recipients: usize,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub batch_size: usize,
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Connect and per-command timeout.
    pub timeout: Duration,
    /// `Some`: log in with XOAUTH2 through this `[[oauth2]]` account.
    pub oauth2: Option<OAuth2Login>,
}

/// XOAUTH2 login of a server: the account giving tokens, the user they are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Login {
    pub account: String,
    pub user: String,
}

/// One validated `[[oauth2]]` account.
#[derive(Debug, Clone)]
pub struct OAuth2Account {
    pub name: String,
    pub flow: Flow,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    /// Where the refresh token lives (`refresh_token` flow); rewritten,
    /// mode 0600, when the provider rotates it.
    pub refresh_token_file: Option<PathBuf>,
    /// RFC 8628 device authorization endpoint, for `helpdeskd oauth login`.
    pub device_authorization_url: Option<String>,
    /// Authorization endpoint for `helpdeskd oauth login` by the loopback
    /// redirect (RFC 8252, with PKCE), where a provider has no device flow
    /// for the scope (Google and mail).
    pub authorization_url: Option<String>,
    /// The mailbox user tokens are for, when the server section names none.
    pub username: Option<String>,
    /// How long after a refused token request the provider is asked again
    /// (sooner when the refresh token file changes).
    pub refused_retry: Duration,
}

#[derive(Debug, Clone)]
pub struct MailboxConfig {
    pub name: String,
    pub folder: String,
    pub processed: Processed,
    pub processed_folder: String,
    pub poll_interval: Duration,
    pub idle: bool,
    /// The staff group new tickets of this mailbox are routed to.
    pub group: Option<String>,
    /// The service new tickets of this mailbox are about (their SLA).
    pub service: Option<String>,
    /// The kind of the tickets this mailbox opens (`kind`, default incident).
    pub kind: crate::domain::ticket::Kind,
    pub imap: ServerConfig,
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_attempts: u32,
    pub flush_interval: Duration,
    /// Mails in flight at once, each on its own connection.
    pub parallel: usize,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Config {
    /// Reads, parses and validates the file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// `load` for `helpdeskd oauth login`, which writes the refresh token
    /// files the other commands need.
    pub fn load_for_login(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Config::parse_with(path, &text, &|name| std::env::var(name).ok(), true)
    }

    /// Parses `text` as if read from `path`; `env` looks up environment variables.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, env, false)
    }

    fn parse_with(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        oauth_login: bool,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => (
                    Some(line_of(text, span.start)),
                    key_path_at(text, span.start),
                ),
                None => (None, String::new()),
            };
            ConfigError::Invalid {
                problems: vec![Problem {
                    file: path.to_path_buf(),
                    line,
                    key,
                    message: e.message().trim().to_string(),
                }],
            }
        })?;
        let mut v = Validator {
            file: path.to_path_buf(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
            env,
            problems: Vec::new(),
            oauth_login,
        };
        let config = v.build(raw);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                problems: v.problems,
            })
        }
    }
}

struct Validator<'a> {
    file: PathBuf,
    base: PathBuf,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
    /// `helpdeskd oauth login` writes the refresh token files: they may be missing.
    oauth_login: bool,
}

impl Validator<'_> {
    fn problem(&mut self, span: Option<std::ops::Range<usize>>, key: &str, message: String) {
        let line = span
            .filter(|s| !(s.start == 0 && s.end == 0))
            .map(|s| line_of(self.text, s.start));
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message,
        });
    }

    fn int_in(&mut self, value: &Spanned<i64>, key: &str, min: i64, max: i64) -> i64 {
        let v = *value.get_ref();
        if v < min || v > max {
            self.problem(
                Some(value.span()),
                key,
                format!("expected an integer {min}-{max}, got {v}"),
            );
            min
        } else {
            v
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// A secret from `{what}_file` or `{what}_env` (`what`: `password`,
    /// `client_secret`); each problem carries the line of the key that
    /// caused it.
    fn secret(
        &mut self,
        key: &str,
        what: &str,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        required: bool,
    ) -> Option<Secret> {
        match (file, env) {
            (Some(f), Some(e)) => {
                // The line of whichever comes second.
                let span = std::cmp::max_by_key(f.span(), e.span(), |s| s.start);
                self.problem(
                    Some(span),
                    key,
                    format!("set {what}_file or {what}_env, not both"),
                );
                None
            }
            (Some(f), None) => {
                let p = self.path(f.get_ref());
                let read = if p.is_dir() {
                    Err("is a directory, expected a file".to_string())
                } else {
                    std::fs::read_to_string(&p).map_err(|e| e.to_string())
                };
                match read {
                    Ok(s) => Some(Secret::new(s.trim_end_matches(['\r', '\n']))),
                    Err(e) => {
                        self.problem(
                            Some(f.span()),
                            &format!("{key}.{what}_file"),
                            format!("cannot read {}: {e}", p.display()),
                        );
                        None
                    }
                }
            }
            (None, Some(name)) => match (self.env)(name.get_ref()) {
                Some(s) => Some(Secret::new(s)),
                None => {
                    self.problem(
                        Some(name.span()),
                        &format!("{key}.{what}_env"),
                        format!("environment variable {} is not set", name.get_ref()),
                    );
                    None
                }
            },
            (None, None) if required => {
                self.problem(
                    None,
                    key,
                    format!(
                        "a {} is required: set {what}_file or {what}_env",
                        what.replace('_', " ")
                    ),
                );
                None
            }
            (None, None) => None,
        }
    }

    fn server(
        &mut self,
        raw: &RawServer,
        key: &str,
        default_port: impl Fn(TlsMode) -> u16,
        needs_login: bool,
        accounts: &[OAuth2Account],
    ) -> ServerConfig {
        if raw.host.trim().is_empty() {
            self.problem(None, &format!("{key}.host"), "must not be empty".into());
        }
        let port = match &raw.port {
            Some(p) => self.int_in(p, &format!("{key}.port"), 1, 65535) as u16,
            None => default_port(raw.tls),
        };
        if needs_login && raw.user.as_deref().is_none_or(str::is_empty) {
            self.problem(None, &format!("{key}.user"), "is required".into());
        }
        let oauth2 = self.oauth2_login(raw, key, accounts);
        let wants_oauth2 = raw
            .auth
            .as_ref()
            .is_some_and(|a| *a.get_ref() == AuthMode::OAuth2);
        let password = if wants_oauth2 {
            if let Some(f) = raw.password_file.as_ref().or(raw.password_env.as_ref()) {
                self.problem(
                    Some(f.span()),
                    key,
                    "auth = \"oauth2\" logs in with a token: remove the password".into(),
                );
            }
            None
        } else {
            self.secret(
                key,
                "password",
                &raw.password_file,
                &raw.password_env,
                needs_login,
            )
        };
        let ca_file = raw
            .ca_file
            .as_ref()
            .map(|f| (self.path(f.get_ref()), f.span()));
        if let Some((ca, span)) = &ca_file
            && !ca.is_file()
        {
            self.problem(
                Some(span.clone()),
                &format!("{key}.ca_file"),
                format!("{} is not a readable file", ca.display()),
            );
        }
        let timeout = Duration::from_secs(self.int_in(
            &raw.timeout_secs,
            &format!("{key}.timeout_secs"),
            1,
            3600,
        ) as u64);
        ServerConfig {
            timeout,
            host: raw.host.clone(),
            port,
            tls: raw.tls,
            ca_file: ca_file.map(|(p, _)| p),
            user: raw.user.clone(),
            password,
            oauth2,
        }
    }

    /// The XOAUTH2 login of a server section with `auth = "oauth2"`.
    fn oauth2_login(
        &mut self,
        raw: &RawServer,
        key: &str,
        accounts: &[OAuth2Account],
    ) -> Option<OAuth2Login> {
        let mode = raw.auth.as_ref().map(|a| *a.get_ref());
        match (mode, &raw.oauth2) {
            (None | Some(AuthMode::Password), None) => None,
            (None | Some(AuthMode::Password), Some(name)) => {
                self.problem(
                    Some(name.span()),
                    &format!("{key}.oauth2"),
                    "is only read with auth = \"oauth2\"".into(),
                );
                None
            }
            (Some(AuthMode::OAuth2), None) => {
                let span = raw.auth.as_ref().map(|a| a.span());
                self.problem(
                    span,
                    &format!("{key}.oauth2"),
                    "auth = \"oauth2\" needs oauth2 = \"NAME\" of an [[oauth2]] account".into(),
                );
                None
            }
            (Some(AuthMode::OAuth2), Some(name)) => {
                let Some(account) = accounts.iter().find(|a| &a.name == name.get_ref()) else {
                    self.problem(
                        Some(name.span()),
                        &format!("{key}.oauth2"),
                        format!("no [[oauth2]] account is named {:?}", name.get_ref()),
                    );
                    return None;
                };
                let user = account
                    .username
                    .clone()
                    .or_else(|| raw.user.clone().filter(|u| !u.is_empty()));
                match user {
                    Some(user) => Some(OAuth2Login {
                        account: account.name.clone(),
                        user,
                    }),
                    None => {
                        self.problem(
                            Some(name.span()),
                            &format!("{key}.user"),
                            format!(
                                "XOAUTH2 needs the mailbox user: set user here or username in [[oauth2]] {:?}",
                                account.name
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    fn oauth2_accounts(&mut self, raw: &[RawOAuth2]) -> Vec<OAuth2Account> {
        let mut out: Vec<OAuth2Account> = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            let key = format!("oauth2[{i}]");
            let name = a.name.get_ref().trim().to_string();
            if name.is_empty() {
                self.problem(
                    Some(a.name.span()),
                    &format!("{key}.name"),
                    "must not be empty".into(),
                );
            } else if out.iter().any(|o| o.name == name) {
                self.problem(
                    Some(a.name.span()),
                    &format!("{key}.name"),
                    format!("the [[oauth2]] name {name:?} is used twice"),
                );
            }
            if let Some(literal) = &a.client_secret {
                self.problem(
                    Some(literal.span()),
                    &format!("{key}.client_secret"),
                    "secrets are never written in this file: put it in a file (client_secret_file, mode 0600) or an environment variable (client_secret_env)".into(),
                );
            }
            if let Err(e) = endpoint_ok(a.token_url.get_ref()) {
                self.problem(Some(a.token_url.span()), &format!("{key}.token_url"), e);
            }
            for (u, k) in [
                (&a.device_authorization_url, "device_authorization_url"),
                (&a.authorization_url, "authorization_url"),
            ] {
                if let Some(u) = u
                    && let Err(e) = endpoint_ok(u.get_ref())
                {
                    self.problem(Some(u.span()), &format!("{key}.{k}"), e);
                }
            }
            if a.client_id.trim().is_empty() {
                self.problem(
                    Some(a.name.span()),
                    &format!("{key}.client_id"),
                    "must not be empty".into(),
                );
            }
            let flow = *a.flow.get_ref();
            let client_secret = self.secret(
                &key,
                "client_secret",
                &a.client_secret_file,
                &a.client_secret_env,
                flow == Flow::ClientCredentials && a.client_secret.is_none(),
            );
            let refresh_token_file = match (flow, &a.refresh_token_file) {
                (Flow::RefreshToken, None) => {
                    self.problem(
                        Some(a.flow.span()),
                        &format!("{key}.refresh_token_file"),
                        "the refresh_token flow needs a refresh_token_file (written by helpdeskd oauth login)".into(),
                    );
                    None
                }
                (Flow::ClientCredentials, Some(f)) => {
                    self.problem(
                        Some(f.span()),
                        &format!("{key}.refresh_token_file"),
                        "is only read with flow = \"refresh_token\"".into(),
                    );
                    None
                }
                (Flow::RefreshToken, Some(f)) => {
                    let p = self.path(f.get_ref());
                    let k = format!("{key}.refresh_token_file");
                    let dir_ok = p
                        .parent()
                        .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir());
                    if p.is_dir() {
                        self.problem(
                            Some(f.span()),
                            &k,
                            format!("{} is a directory, expected a file", p.display()),
                        );
                    } else if !dir_ok {
                        self.problem(
                            Some(f.span()),
                            &k,
                            format!("the folder of {} does not exist", p.display()),
                        );
                    } else if !self.oauth_login && !p.is_file() {
                        self.problem(
                            Some(f.span()),
                            &k,
                            format!(
                                "{} does not exist: run `helpdeskd oauth login {name}` once",
                                p.display()
                            ),
                        );
                    }
                    Some(p)
                }
                (Flow::ClientCredentials, None) => None,
            };
            let refused_retry = Duration::from_secs(self.int_in(
                &a.refused_retry_secs,
                &format!("{key}.refused_retry_secs"),
                1,
                86_400,
            ) as u64);
            out.push(OAuth2Account {
                name,
                flow,
                token_url: a.token_url.get_ref().trim().to_string(),
                client_id: a.client_id.trim().to_string(),
                client_secret,
                scopes: a.scopes.clone(),
                refresh_token_file,
                device_authorization_url: a
                    .device_authorization_url
                    .as_ref()
                    .map(|u| u.get_ref().trim().to_string()),
                authorization_url: a
                    .authorization_url
                    .as_ref()
                    .map(|u| u.get_ref().trim().to_string()),
                username: a.username.clone().filter(|u| !u.trim().is_empty()),
                refused_retry,
            });
        }
        out
    }

    fn address(&mut self, value: &Spanned<String>, key: &str) -> Address {
        let s = value.get_ref().trim();
        let ok = s.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace)
        });
        if !ok {
            self.problem(
                Some(value.span()),
                key,
                format!("expected a mail address like support@example.com, got {s:?}"),
            );
        }
        Address::new("", s)
    }

    fn staff(&mut self, raw: &[RawStaff]) -> Directory {
        let mut members: Vec<StaffMember> = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let key = format!("staff[{i}].email");
            let address = self.address(&s.email, &key);
            if members.iter().any(|m| m.email == address.email) {
                self.problem(
                    Some(s.email.span()),
                    &key,
                    format!("{} is listed twice", address.email),
                );
            }
            if s.name.trim().is_empty() {
                self.problem(
                    None,
                    &format!("staff[{i}].name"),
                    "must not be empty".into(),
                );
            }
            members.push(StaffMember {
                name: s.name.trim().to_string(),
                email: address.email,
                groups: s.groups.iter().map(|g| g.trim().to_lowercase()).collect(),
            });
        }
        Directory::new(members)
    }

    fn build(&mut self, raw: RawConfig) -> Config {
        let data_dir = self.path(&raw.data_dir);

        let url = match (&raw.database.url, &raw.database.url_env) {
            (Some(u), Some(e)) => {
                self.problem(
                    Some(std::cmp::max_by_key(u.span(), e.span(), |s| s.start)),
                    "database",
                    "set url or url_env, not both".into(),
                );
                String::new()
            }
            (Some(u), None) => u.get_ref().clone(),
            (None, Some(name)) => (self.env)(name.get_ref()).unwrap_or_else(|| {
                self.problem(
                    Some(name.span()),
                    "database.url_env",
                    format!("environment variable {} is not set", name.get_ref()),
                );
                String::new()
            }),
            (None, None) => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("helpdesk.db").display()
            ),
        };
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            let (span, key) = match &raw.database.url {
                Some(u) => (u.span(), "database.url"),
                None => (
                    raw.database
                        .url_env
                        .as_ref()
                        .map(|e| e.span())
                        .unwrap_or(0..0),
                    "database.url_env",
                ),
            };
            self.problem(
                Some(span),
                key,
                "expected a sqlite: or postgres:// URL".into(),
            );
        }
        let max_connections = self.int_in(
            &raw.database.max_connections,
            "database.max_connections",
            1,
            1000,
        ) as u32;

        let mut address = self.address(&raw.desk.address, "desk.address");
        address.name = raw.desk.name.clone();
        let tag = raw.desk.tag.get_ref().trim().to_string();
        if tag.is_empty() || tag.contains(['[', ']']) {
            self.problem(
                Some(raw.desk.tag.span()),
                "desk.tag",
                "expected a short word without brackets, such as ACME".into(),
            );
        }
        let desk = Desk {
            name: raw.desk.name.clone(),
            address,
            tag,
        };

        let ingest = IngestConfig {
            batch_size: self.int_in(&raw.ingest.batch_size, "ingest.batch_size", 1, 10_000)
                as usize,
            max_message_bytes: self.int_in(
                &raw.ingest.max_message_bytes,
                "ingest.max_message_bytes",
                1024,
                1 << 30,
            ) as usize,
        };

        if raw.mailbox.is_empty() {
            self.problem(
                None,
                "mailbox",
                "no [[mailbox]] configured: the desk would read no mail".into(),
            );
        }
        let staff = self.staff(&raw.staff);
        let oauth2 = self.oauth2_accounts(&raw.oauth2);
        let mut mailboxes: Vec<MailboxConfig> = Vec::new();
        for (i, m) in raw.mailbox.iter().enumerate() {
            let key = format!("mailbox[{i}]");
            let imap = self.server(
                &m.imap,
                &format!("{key}.imap"),
                |tls| if tls == TlsMode::Implicit { 993 } else { 143 },
                true,
                &oauth2,
            );
            let name = m
                .name
                .clone()
                .or_else(|| imap.user.clone())
                .unwrap_or_else(|| format!("mailbox{i}"));
            if mailboxes.iter().any(|o| o.name == name) {
                self.problem(
                    None,
                    &format!("{key}.name"),
                    format!("mailbox name {name:?} is used twice; names must be unique"),
                );
            }
            if m.processed == Processed::Move && m.processed_folder == m.folder {
                self.problem(
                    None,
                    &format!("{key}.processed_folder"),
                    "must differ from folder when processed = \"move\"".into(),
                );
            }
            let poll = self.int_in(
                &m.poll_interval_secs,
                &format!("{key}.poll_interval_secs"),
                1,
                86_400,
            );
            let group = m.group.as_ref().map(|g| {
                let name = g.get_ref().trim().to_lowercase();
                if !staff.has_group(&name) {
                    self.problem(
                        Some(g.span()),
                        &format!("{key}.group"),
                        format!("no [[staff]] entry is in group {name:?}"),
                    );
                }
                name
            });
            let service = m.service.as_ref().map(|s| {
                let name = s.get_ref().trim().to_string();
                if !raw.service.iter().any(|x| x.name.get_ref().trim() == name) {
                    self.problem(
                        Some(s.span()),
                        &format!("{key}.service"),
                        format!("no [[service]] is named {name:?}"),
                    );
                }
                name
            });
            let kind = match &m.kind {
                None => crate::domain::ticket::Kind::Incident,
                Some(k) => k.get_ref().parse().unwrap_or_else(|e: String| {
                    self.problem(Some(k.span()), &format!("{key}.kind"), e);
                    crate::domain::ticket::Kind::Incident
                }),
            };
            mailboxes.push(MailboxConfig {
                group,
                service,
                kind,
                name,
                folder: m.folder.clone(),
                processed: m.processed,
                processed_folder: m.processed_folder.clone(),
                poll_interval: Duration::from_secs(poll as u64),
                idle: m.idle,
                imap,
            });
        }

        let smtp = self.server(
            &raw.smtp,
            "smtp",
            |tls| match tls {
                TlsMode::Implicit => 465,
                TlsMode::Starttls => 587,
                TlsMode::None => 25,
            },
            false,
            &oauth2,
        );

        let o = &raw.outbox;
        let outbox = OutboxConfig {
            retry_initial: Duration::from_secs(self.int_in(
                &o.retry_initial_secs,
                "outbox.retry_initial_secs",
                1,
                86_400,
            ) as u64),
            retry_max: Duration::from_secs(self.int_in(
                &o.retry_max_secs,
                "outbox.retry_max_secs",
                1,
                7 * 86_400,
            ) as u64),
            max_attempts: self.int_in(&o.max_attempts, "outbox.max_attempts", 1, 10_000) as u32,
            flush_interval: Duration::from_secs(self.int_in(
                &o.flush_interval_secs,
                "outbox.flush_interval_secs",
                1,
                3600,
            ) as u64),
            parallel: self.int_in(&o.parallel, "outbox.parallel", 1, 32) as usize,
        };

        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            self.problem(
                None,
                "log.level",
                format!(
                    "{:?} is not a level or filter (error, warn, info, debug, trace)",
                    raw.log.level
                ),
            );
        }

        let problem_on_resolve = match &raw.problems.on_resolve {
            None => Default::default(),
            Some(v) => v.get_ref().parse().unwrap_or_else(|e| {
                self.problem(Some(v.span()), "problems.on_resolve", e);
                Default::default()
            }),
        };
        let release_subscribers = raw
            .releases
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, a)| self.address(a, &format!("releases.subscribers[{i}]")))
            .collect();
        let tickets = TicketsConfig {
            reopen_window: chrono::Duration::days(self.int_in(
                &raw.tickets.reopen_window_days,
                "tickets.reopen_window_days",
                0,
                3650,
            )),
            ack_limit_per_hour: self.int_in(
                &raw.tickets.ack_limit_per_hour,
                "tickets.ack_limit_per_hour",
                0,
                10_000,
            ) as u32,
            max_recipients: self.int_in(
                &raw.tickets.max_recipients,
                "tickets.max_recipients",
                1,
                10_000,
            ) as usize,
        };
        // A missing secret file is created at start; a directory in its
        // place would only fail then, without a line.
        let token_secret_file = match &raw.desk.token_secret_file {
            Some(f) => {
                let p = self.path(f.get_ref());
                if p.is_dir() {
                    self.problem(
                        Some(f.span()),
                        "desk.token_secret_file",
                        format!("{} is a directory, expected a file", p.display()),
                    );
                }
                p
            }
            None => data_dir.join("token.key"),
        };

        let plugins = self.plugins(&raw.plugins);
        let metrics = raw.metrics.as_ref().and_then(|m| self.metrics(m));
        let admin_address = raw
            .desk
            .admin_address
            .as_ref()
            .map(|a| self.address(a, "desk.admin_address"));

        let levels = self.levels(&raw, &staff);
        let changes = self.changes(&raw);
        let relationship = self.relationship(&raw, &staff, &levels);
        Config {
            changes,
            relationship,
            file: self.file.clone(),
            metrics,
            oauth2,
            admin_address,
            levels,
            plugins,
            staff,
            trust: TrustConfig {
                authserv_ids: raw
                    .trust
                    .authserv_ids
                    .iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect(),
            },
            tickets,
            problem_on_resolve,
            release_subscribers,
            token_secret_file,
            data_dir,
            database: DatabaseConfig {
                url: Secret::new(url),
                max_connections,
            },
            desk,
            ingest,
            mailboxes,
            smtp,
            outbox,
            log: LogConfig {
                format: raw.log.format,
                level: raw.log.level,
            },
        }
    }
}

// ---- services, SLA policies, calendars, suppliers, jobs, report -----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    name: Spanned<String>,
    #[serde(default = "default_zone")]
    zone: String,
    hours: Vec<String>,
    #[serde(default)]
    holidays: Vec<String>,
}

fn default_zone() -> String {
    "UTC".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlaPolicy {
    name: Spanned<String>,
    calendar: Option<Spanned<String>>,
    #[serde(default = "default_warn_percent")]
    warn_percent: Spanned<i64>,
    #[serde(default)]
    response: std::collections::BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    resolution: std::collections::BTreeMap<String, Spanned<String>>,
}

fn default_warn_percent() -> Spanned<i64> {
    Spanned::new(0..0, 80)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    sla_policy: Spanned<String>,
    escalation: Option<Spanned<String>>,
    /// Told of ratings of 1 or 2 (default: the escalation address).
    manager: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupplier {
    name: Spanned<String>,
    contacts: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<String>,
    response_target: Spanned<String>,
    resolution_target: Spanned<String>,
    calendar: Option<Spanned<String>>,
    contract_end: Option<Spanned<String>>,
    review: Option<Spanned<String>>,
    manager: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    #[serde(default = "default_sla_schedule")]
    sla: Spanned<String>,
    #[serde(default = "default_lease")]
    lease_secs: Spanned<i64>,
}

impl Default for RawJobs {
    fn default() -> Self {
        RawJobs {
            sla: default_sla_schedule(),
            lease_secs: default_lease(),
        }
    }
}

fn default_sla_schedule() -> Spanned<String> {
    Spanned::new(0..0, "* * * * *".into())
}
fn default_lease() -> Spanned<i64> {
    Spanned::new(0..0, 600)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    recipients: Vec<Spanned<String>>,
    #[serde(default = "default_period_days")]
    period_days: Spanned<i64>,
}

impl Default for RawReport {
    fn default() -> Self {
        RawReport {
            schedule: None,
            recipients: Vec::new(),
            period_days: default_period_days(),
        }
    }
}

fn default_period_days() -> Spanned<i64> {
    Spanned::new(0..0, 7)
}

/// Service level management, supplier management and reporting, validated.
#[derive(Debug, Clone, Default)]
pub struct ServiceLevels {
    pub calendars: std::collections::BTreeMap<String, std::sync::Arc<Calendar>>,
    pub policies: Vec<SlaPolicy>,
    pub services: Vec<ServiceConfig>,
    pub suppliers: Vec<SupplierConfig>,
    pub jobs: JobsConfig,
    pub report: ReportConfig,
}

impl ServiceLevels {
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }
    pub fn policy(&self, name: &str) -> Option<&SlaPolicy> {
        self.policies.iter().find(|p| p.name == name)
    }
    pub fn supplier(&self, name: &str) -> Option<&SupplierConfig> {
        self.suppliers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
    /// The calendar a policy or supplier names; `None` means around the clock.
    pub fn calendar(&self, name: Option<&str>) -> Option<std::sync::Arc<Calendar>> {
        name.and_then(|n| self.calendars.get(n).cloned())
    }
}

/// Targets per priority, in business time of the policy's calendar.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    pub name: String,
    /// `None`: around the clock.
    pub calendar: Option<String>,
    pub warn_percent: u8,
    /// Indexed low, normal, high, urgent.
    pub response: [Option<chrono::Duration>; 4],
    pub resolution: [Option<chrono::Duration>; 4],
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    pub policy: String,
    /// Told on every breach, besides the assignee.
    pub escalation: Option<Address>,
    /// Told of low ratings (`manager`, else the escalation address).
    pub manager: Option<Address>,
}

#[derive(Debug, Clone)]
pub struct SupplierConfig {
    pub name: String,
    pub contacts: Vec<Address>,
    pub services: Vec<String>,
    pub response_target: chrono::Duration,
    pub resolution_target: chrono::Duration,
    pub calendar: Option<String>,
    pub contract_end: Option<chrono::NaiveDate>,
    /// Cron expression of the supplier review; `None`: no review job.
    pub review: Option<String>,
    /// The staff member who owns the supplier relationship.
    pub manager: String,
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Cron expression of the SLA check.
    pub sla: String,
    /// How long a job run holds its slot before another daemon may take over.
    pub lease: chrono::Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            sla: "* * * * *".into(),
            lease: chrono::Duration::minutes(10),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReportConfig {
    /// Cron expression of the service report; `None`: no scheduled report.
    pub schedule: Option<String>,
    pub recipients: Vec<Address>,
    pub period_days: u32,
}

/// `"90m"`, `"4h"`, `"1h30m"`, `"2d"` (days of 24 hours of the calendar's time).
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("expected a duration such as 30m, 4h, 1h30m or 2d, got {s:?}");
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match c {
            'm' => chrono::Duration::try_minutes(n),
            'h' => chrono::Duration::try_hours(n),
            'd' => chrono::Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total += unit;
        any = true;
    }
    if !digits.is_empty() || !any || total <= chrono::Duration::zero() {
        return Err(bad());
    }
    Ok(total)
}

impl Validator<'_> {
    fn levels(&mut self, raw: &RawConfig, staff: &Directory) -> ServiceLevels {
        let mut out = ServiceLevels::default();
        for (i, c) in raw.calendar.iter().enumerate() {
            let name = c.name.get_ref().trim().to_string();
            let spec = CalendarSpec {
                zone: c.zone.clone(),
                hours: c.hours.clone(),
                holidays: c.holidays.clone(),
            };
            match spec.build() {
                Ok(cal) => {
                    out.calendars.insert(name, std::sync::Arc::new(cal));
                }
                Err(errors) => {
                    for e in errors {
                        self.problem(
                            Some(c.name.span()),
                            &format!("calendar[{i}].{}", e.path),
                            e.message.clone(),
                        );
                    }
                }
            }
        }
        for (i, p) in raw.sla_policy.iter().enumerate() {
            let key = format!("sla_policy[{i}]");
            if let Some(c) = &p.calendar
                && !raw.calendar.iter().any(|x| x.name.get_ref() == c.get_ref())
            {
                self.problem(
                    Some(c.span()),
                    &format!("{key}.calendar"),
                    format!("no [[calendar]] is named {:?}", c.get_ref()),
                );
            }
            let warn = self.int_in(&p.warn_percent, &format!("{key}.warn_percent"), 1, 100) as u8;
            let response = self.targets(&p.response, &format!("{key}.response"));
            let resolution = self.targets(&p.resolution, &format!("{key}.resolution"));
            out.policies.push(SlaPolicy {
                name: p.name.get_ref().trim().to_string(),
                calendar: p.calendar.as_ref().map(|c| c.get_ref().clone()),
                warn_percent: warn,
                response,
                resolution,
            });
        }
        for (i, sv) in raw.service.iter().enumerate() {
            let key = format!("service[{i}]");
            if !raw
                .sla_policy
                .iter()
                .any(|p| p.name.get_ref() == sv.sla_policy.get_ref())
            {
                self.problem(
                    Some(sv.sla_policy.span()),
                    &format!("{key}.sla_policy"),
                    format!("no [[sla_policy]] is named {:?}", sv.sla_policy.get_ref()),
                );
            }
            let escalation = sv
                .escalation
                .as_ref()
                .map(|e| self.address(e, &format!("{key}.escalation")));
            let manager = sv
                .manager
                .as_ref()
                .map(|e| self.address(e, &format!("{key}.manager")));
            out.services.push(ServiceConfig {
                name: sv.name.get_ref().trim().to_string(),
                policy: sv.sla_policy.get_ref().clone(),
                escalation,
                manager,
            });
        }
        for (i, su) in raw.supplier.iter().enumerate() {
            out.suppliers.push(self.supplier(raw, staff, su, i));
        }
        if let Err(e) = CronSchedule::parse(raw.jobs.sla.get_ref()) {
            self.problem(Some(raw.jobs.sla.span()), "jobs.sla", e.to_string());
        }
        out.jobs = JobsConfig {
            sla: raw.jobs.sla.get_ref().clone(),
            lease: chrono::Duration::seconds(self.int_in(
                &raw.jobs.lease_secs,
                "jobs.lease_secs",
                10,
                86_400,
            )),
        };
        if let Some(s) = &raw.report.schedule
            && let Err(e) = CronSchedule::parse(s.get_ref())
        {
            self.problem(Some(s.span()), "report.schedule", e.to_string());
        }
        out.report = ReportConfig {
            schedule: raw.report.schedule.as_ref().map(|s| s.get_ref().clone()),
            recipients: raw
                .report
                .recipients
                .iter()
                .enumerate()
                .map(|(i, r)| self.address(r, &format!("report.recipients[{i}]")))
                .collect(),
            period_days: self.int_in(&raw.report.period_days, "report.period_days", 1, 366) as u32,
        };
        if out.report.schedule.is_some() && out.report.recipients.is_empty() {
            self.problem(
                None,
                "report.recipients",
                "report.schedule is set but nobody receives the report".into(),
            );
        }
        out
    }

    fn targets(
        &mut self,
        map: &std::collections::BTreeMap<String, Spanned<String>>,
        key: &str,
    ) -> [Option<chrono::Duration>; 4] {
        let mut t: [Option<chrono::Duration>; 4] = [None; 4];
        for (prio, value) in map {
            let k = format!("{key}.{prio}");
            let Some(idx) = ["low", "normal", "high", "urgent"]
                .iter()
                .position(|x| x == prio)
            else {
                self.problem(
                    Some(value.span()),
                    &k,
                    "expected one of low, normal, high, urgent".into(),
                );
                continue;
            };
            match parse_duration(value.get_ref()) {
                Ok(d) => t[idx] = Some(d),
                Err(e) => self.problem(Some(value.span()), &k, e),
            }
        }
        t
    }

    fn supplier(
        &mut self,
        raw: &RawConfig,
        staff: &Directory,
        su: &RawSupplier,
        i: usize,
    ) -> SupplierConfig {
        let key = format!("supplier[{i}]");
        let contacts: Vec<Address> = su
            .contacts
            .iter()
            .enumerate()
            .map(|(j, c)| self.address(c, &format!("{key}.contacts[{j}]")))
            .collect();
        if contacts.is_empty() {
            self.problem(
                Some(su.name.span()),
                &format!("{key}.contacts"),
                "a supplier needs at least one contact address".into(),
            );
        }
        let mut duration = |v: &Spanned<String>, what: &str| {
            parse_duration(v.get_ref()).unwrap_or_else(|e| {
                self.problem(Some(v.span()), &format!("{key}.{what}"), e);
                chrono::Duration::hours(1)
            })
        };
        let response_target = duration(&su.response_target, "response_target");
        let resolution_target = duration(&su.resolution_target, "resolution_target");
        let contract_end = su.contract_end.as_ref().and_then(|d| {
            let parsed = chrono::NaiveDate::parse_from_str(d.get_ref().trim(), "%Y-%m-%d");
            if parsed.is_err() {
                self.problem(
                    Some(d.span()),
                    &format!("{key}.contract_end"),
                    format!("expected a date like 2027-06-30, got {:?}", d.get_ref()),
                );
            }
            parsed.ok()
        });
        if let Some(c) = &su.calendar
            && !raw.calendar.iter().any(|x| x.name.get_ref() == c.get_ref())
        {
            self.problem(
                Some(c.span()),
                &format!("{key}.calendar"),
                format!("no [[calendar]] is named {:?}", c.get_ref()),
            );
        }
        if let Some(r) = &su.review
            && let Err(e) = CronSchedule::parse(r.get_ref())
        {
            self.problem(Some(r.span()), &format!("{key}.review"), e.to_string());
        }
        let manager = su.manager.get_ref().trim().to_ascii_lowercase();
        if staff.by_email(&manager).is_none() {
            self.problem(
                Some(su.manager.span()),
                &format!("{key}.manager"),
                format!("{manager} is not a [[staff]] address"),
            );
        }
        SupplierConfig {
            name: su.name.get_ref().trim().to_string(),
            contacts,
            services: su.services.clone(),
            response_target,
            resolution_target,
            calendar: su.calendar.as_ref().map(|c| c.get_ref().clone()),
            contract_end,
            review: su.review.as_ref().map(|r| r.get_ref().clone()),
            manager,
        }
    }
}

// ---- [[oauth2]] ------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    name: Spanned<String>,
    flow: Spanned<Flow>,
    token_url: Spanned<String>,
    client_id: String,
    client_secret_file: Option<Spanned<String>>,
    client_secret_env: Option<Spanned<String>>,
    /// Read only to refuse it with a clear message.
    client_secret: Option<Spanned<toml::Value>>,
    #[serde(default)]
    scopes: Vec<String>,
    refresh_token_file: Option<Spanned<String>>,
    device_authorization_url: Option<Spanned<String>>,
    authorization_url: Option<Spanned<String>>,
    username: Option<String>,
    #[serde(default = "default_refused_retry")]
    refused_retry_secs: Spanned<i64>,
}

fn default_refused_retry() -> Spanned<i64> {
    Spanned::new(0..0, 900)
}

/// An endpoint the desk sends secrets to: `https://`, or `http://` on loopback.
pub fn endpoint_ok(url: &str) -> Result<(), String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected an https:// URL, got {url:?}"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http"
            if host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()) =>
        {
            Ok(())
        }
        "http" => Err(format!(
            "plain http:// sends the client secret and tokens in clear text: use https:// ({host} is not loopback)"
        )),
        _ => Err(format!("expected an https:// URL, got {url:?}")),
    }
}

// ---- [plugins] -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_plugins_dir")]
    dir: String,
    #[serde(default = "default_isolation")]
    isolation: Isolation,
    #[serde(default = "default_plugin_timeout")]
    timeout_secs: Spanned<i64>,
    #[serde(default = "default_plugin_retries")]
    retries: Spanned<i64>,
    /// `[plugins.config.NAME]`: each plugin's own configuration.
    #[serde(default)]
    config: std::collections::BTreeMap<String, Spanned<toml::Value>>,
}

impl Default for RawPlugins {
    fn default() -> Self {
        RawPlugins {
            enabled: true,
            dir: default_plugins_dir(),
            isolation: default_isolation(),
            timeout_secs: default_plugin_timeout(),
            retries: default_plugin_retries(),
            config: Default::default(),
        }
    }
}

fn default_plugins_dir() -> String {
    "plugins".into()
}
fn default_isolation() -> Isolation {
    Isolation::Process
}
fn default_plugin_timeout() -> Spanned<i64> {
    Spanned::new(0..0, 5)
}
fn default_plugin_retries() -> Spanned<i64> {
    Spanned::new(0..0, 3)
}

/// Where plugins run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In a supervised `helpdeskd plugin-host` child process (the default):
    /// a crash or a hang costs the host, which is restarted.
    Process,
    /// In the daemon itself: faster, for trusted plugins only; a crashing
    /// plugin takes the daemon down.
    InProcess,
}

/// The validated `[plugins]` section.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    pub enabled: bool,
    /// The folder whose shared libraries are loaded.
    pub dir: PathBuf,
    pub isolation: Isolation,
    /// How long one plugin call may take before the host is killed.
    pub timeout: Duration,
    /// How often a failed call is retried before its event is marked failed.
    pub retries: u32,
    /// Each plugin's configuration, by plugin name, as JSON.
    pub config: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Validator<'_> {
    fn plugins(&mut self, raw: &RawPlugins) -> PluginsConfig {
        let timeout = self.int_in(&raw.timeout_secs, "plugins.timeout_secs", 1, 3600);
        let retries = self.int_in(&raw.retries, "plugins.retries", 0, 100);
        let mut config = std::collections::BTreeMap::new();
        for (name, value) in &raw.config {
            let key = format!("plugins.config.{name}");
            if !value.get_ref().is_table() {
                self.problem(
                    Some(value.span()),
                    &key,
                    "expected a table: [plugins.config.NAME] with the plugin's keys".into(),
                );
                continue;
            }
            match serde_json::to_value(value.get_ref()) {
                Ok(v) => {
                    config.insert(name.clone(), v);
                }
                Err(e) => self.problem(Some(value.span()), &key, e.to_string()),
            }
        }
        PluginsConfig {
            enabled: raw.enabled,
            dir: self.path(&raw.dir),
            isolation: raw.isolation,
            timeout: Duration::from_secs(timeout as u64),
            retries: retries as u32,
            config,
        }
    }
}

// ---- [metrics] -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default = "default_metrics_listen")]
    listen: Spanned<String>,
    #[serde(default)]
    allow_remote: bool,
}

fn default_metrics_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9464".into())
}

/// The validated `[metrics]` section.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub listen: std::net::SocketAddr,
}

impl Validator<'_> {
    /// The endpoint has no authentication: loopback only, unless the
    /// admin says otherwise.
    fn metrics(&mut self, raw: &RawMetrics) -> Option<MetricsConfig> {
        let text = raw.listen.get_ref().trim();
        let Ok(listen) = text.parse::<std::net::SocketAddr>() else {
            self.problem(
                Some(raw.listen.span()),
                "metrics.listen",
                format!("expected an IP address and port such as 127.0.0.1:9464, got {text:?}"),
            );
            return None;
        };
        if !listen.ip().is_loopback() && !raw.allow_remote {
            self.problem(
                Some(raw.listen.span()),
                "metrics.listen",
                format!(
                    "{listen} is not a loopback address and the endpoint has no authentication; \
                     set allow_remote = true to serve it beyond this host"
                ),
            );
            return None;
        }
        Some(MetricsConfig { listen })
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key at a byte offset (`mailbox[1].imap.port`), found by reading
/// the table headers above it; good enough for error messages.
fn key_path_at(text: &str, offset: usize) -> String {
    let target = line_of(text, offset);
    let mut table = String::new();
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    let mut key = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = arrays
                .entry(name.clone())
                .and_modify(|n| *n += 1)
                .or_insert(0);
            table = format!("{name}[{n}]");
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            let name = name.trim();
            // A sub-table of the latest array element: [mailbox.imap] after [[mailbox]].
            table = match name.split_once('.') {
                Some((head, tail)) if arrays.contains_key(head) => {
                    format!("{head}[{}].{tail}", arrays[head])
                }
                _ => name.to_string(),
            };
        }
        if i + 1 == target {
            if let Some((k, _)) = l.split_once('=') {
                key = k.trim().to_string();
            }
            break;
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[desk]
name = "ACME Service Desk"
address = "support@example.test"
tag = "ACME"

[[mailbox]]
name = "support"
[mailbox.imap]
host = "127.0.0.1"
port = 11993
user = "support"
password_env = "PW"

[[mailbox]]
name = "changes"
processed = "flag"
[mailbox.imap]
host = "127.0.0.1"
port = 70000
user = "changes"
password_env = "PW"

[smtp]
host = "127.0.0.1"
port = 0
tls = "none"
"#;

    fn env(name: &str) -> Option<String> {
        (name == "PW").then(|| "pw".to_string())
    }

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(Path::new("/etc/helpdesk.toml"), text, &env) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn every_range_problem_is_reported_with_line_and_key() {
        let p = problems(GOOD);
        assert_eq!(
            p,
            vec![
                "/etc/helpdesk.toml:20: mailbox[1].imap.port: expected an integer 1-65535, got 70000",
                "/etc/helpdesk.toml:26: smtp.port: expected an integer 1-65535, got 0",
            ]
        );
    }

    #[test]
    fn problems_on_resolve_is_checked() {
        let good = GOOD
            .replace("port = 70000", "port = 143")
            .replace("port = 0", "port = 25");
        let text = format!("{good}\n[problems]\non_resolve = \"notify\"\n");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &text, &env).expect("valid");
        assert_eq!(
            c.problem_on_resolve,
            crate::domain::problem::OnResolve::Notify
        );
        let bad = format!("{good}\n[problems]\non_resolve = \"close\"\n");
        let line = bad.lines().count();
        assert_eq!(
            problems(&bad),
            vec![format!(
                "/etc/helpdesk.toml:{line}: problems.on_resolve: unknown value \"close\" (resolve, notify)"
            )]
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        // The example trusts the CA of the local mail stack, which exists
        // only once the stack has run: a file of this test stands in for it.
        let ca = tempfile::NamedTempFile::new().expect("a temp file");
        let text = include_str!("../../config/helpdesk.toml").replace(
            "/tmp/helpdeskd-mailstack/ca.pem",
            &ca.path().display().to_string(),
        );
        assert_ne!(text, include_str!("../../config/helpdesk.toml"));
        let env = |name: &str| (name == "HELPDESK_IMAP_PASSWORD").then(|| "pw".to_string());
        let c = Config::parse(Path::new("/srv/helpdesk/config/helpdesk.toml"), &text, &env)
            .unwrap_or_else(|e| panic!("config/helpdesk.toml: {e}"));
        assert!(!c.staff.members().is_empty());
        assert_eq!(c.levels.services.len(), 1);
        assert_eq!(c.levels.suppliers.len(), 1);
        assert!(c.levels.calendars.contains_key("office"));
    }

    #[test]
    fn service_level_problems_name_key_and_line() {
        let text = GOOD
            .replace("port = 70000", "port = 143")
            .replace("port = 0", "port = 25")
            + r#"
[[staff]]
name = "Ada"
email = "ada@example.test"

[[calendar]]
name = "office"
zone = "Mars/Olympus"
hours = ["mon-fri 08:00-18:00"]

[[sla_policy]]
name = "standard"
calendar = "nowhere"
response = { normal = "4 hours", asap = "1h" }

[[service]]
name = "email"
sla_policy = "gold"

[[supplier]]
name = "NetCo"
contacts = ["noc@netco.example"]
response_target = "2h"
resolution_target = "8h"
review = "0 61 * * *"
manager = "eve@example.test"

[jobs]
sla = "every minute"
"#;
        let p = problems(&text);
        let has = |needle: &str| p.iter().any(|x| x.contains(needle));
        assert!(has("calendar[0].zone"), "{p:#?}");
        assert!(
            has("sla_policy[0].calendar: no [[calendar]] is named \"nowhere\""),
            "{p:#?}"
        );
        assert!(
            has("sla_policy[0].response.normal: expected a duration"),
            "{p:#?}"
        );
        assert!(
            has("sla_policy[0].response.asap: expected one of low, normal, high, urgent"),
            "{p:#?}"
        );
        assert!(
            has("service[0].sla_policy: no [[sla_policy]] is named \"gold\""),
            "{p:#?}"
        );
        assert!(has("supplier[0].review"), "{p:#?}");
        assert!(
            has("supplier[0].manager: eve@example.test is not a [[staff]] address"),
            "{p:#?}"
        );
        assert!(has("jobs.sla"), "{p:#?}");
        assert!(
            p.iter().all(|x| x.starts_with("/etc/helpdesk.toml:")),
            "every problem has a line: {p:#?}"
        );
        assert_eq!(parse_duration("1h30m"), Ok(chrono::Duration::minutes(90)));
        assert!(parse_duration("0m").is_err() && parse_duration("5").is_err());
    }

    #[test]
    fn relationship_problems_name_the_key_and_line() {
        let text = GOOD
            .replace("port = 70000", "port = 143")
            .replace("port = 0", "port = 25")
            .replace(
                "name = \"changes\"\n",
                "name = \"changes\"\nkind = \"grievance\"\n",
            )
            + r#"
[[staff]]
name = "Ada"
email = "ada@example.test"
groups = ["care"]

[[sla_policy]]
name = "standard"

[[service]]
name = "email"
sla_policy = "standard"
manager = "not an address"

[satisfaction]
enabled = true
subject = ""

[complaints]
notify = ["nobody-group", "boss@example.test"]
"#;
        let p = problems(&text);
        let has = |s: &str| p.iter().any(|x| x.contains(s));
        assert!(
            has(
                "/etc/helpdesk.toml:17: mailbox[1].kind: unknown kind \"grievance\" (incident, request, problem, change, release, complaint)"
            ),
            "{p:#?}"
        );
        assert!(
            has(":41: service[0].manager: expected a mail address"),
            "{p:#?}"
        );
        assert!(has(":45: satisfaction.subject: must be one line"), "{p:#?}");
        assert!(
            has(
                ":48: complaints.notify[0]: \"nobody-group\" is neither a mail address nor a [[staff]] group"
            ),
            "{p:#?}"
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        let ok = text
            .replace("\"grievance\"", "\"complaint\"")
            .replace("not an address", "boss@example.test")
            .replace("subject = \"\"\n", "")
            .replace("\"nobody-group\"", "\"care\"");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &ok, &env).expect("valid");
        assert_eq!(c.mailboxes[0].kind, crate::domain::ticket::Kind::Incident);
        assert_eq!(c.mailboxes[1].kind, crate::domain::ticket::Kind::Complaint);
        let r = &c.relationship;
        assert!(r.enabled);
        let notify: Vec<&str> = r.complaints.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(notify, vec!["ada@example.test", "boss@example.test"]);
        assert_eq!(
            r.managers.get("email").map(|a| a.email.as_str()),
            Some("boss@example.test")
        );
        // Without a manager, the escalation address hears of low ratings;
        // without [satisfaction], nobody is asked.
        let esc = ok
            .replace(
                "manager = \"boss@example.test\"",
                "escalation = \"lead@example.test\"",
            )
            .replace("enabled = true\n", "");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &esc, &env).expect("valid");
        assert_eq!(
            c.relationship
                .managers
                .get("email")
                .map(|a| a.email.as_str()),
            Some("lead@example.test")
        );
        assert!(!c.relationship.enabled);
    }

    #[test]
    fn staff_problems_name_the_entry_and_line() {
        let text = GOOD
            .replace("port = 70000", "port = 143")
            .replace("port = 0", "port = 25")
            .replace(
                "name = \"changes\"\n",
                "name = \"changes\"\ngroup = \"Sales\"\n",
            )
            + r#"
[[staff]]
name = "Ada"
email = "ada@example.test"
groups = ["Network"]

[[staff]]
name = "Ada again"
email = "ADA@example.test"

[tickets]
ack_limit_per_hour = -1
"#;
        let p = problems(&text);
        assert_eq!(
            p,
            vec![
                "/etc/helpdesk.toml:37: staff[1].email: ada@example.test is listed twice",
                "/etc/helpdesk.toml:17: mailbox[1].group: no [[staff]] entry is in group \"sales\"",
                "/etc/helpdesk.toml:40: tickets.ack_limit_per_hour: expected an integer 0-10000, got -1",
            ]
        );
        let ok = text
            .replace("group = \"Sales\"", "group = \"network\"")
            .replace("ADA@", "bob@")
            .replace("= -1", "= 2");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &ok, &env).expect("valid");
        assert_eq!(c.staff.members().len(), 2);
        assert_eq!(c.mailboxes[1].group.as_deref(), Some("network"));
        assert_eq!(c.tickets.ack_limit_per_hour, 2);
        assert_eq!(c.tickets.reopen_window, chrono::Duration::days(7));
        assert_eq!(c.token_secret_file, Path::new("/etc/data/token.key"));
    }

    #[test]
    fn a_valid_file_gets_defaults() {
        let text = GOOD
            .replace("70000", "11993")
            .replace("port = 0", "port = 12525");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &text, &env).expect("valid");
        assert_eq!(c.mailboxes.len(), 2);
        assert_eq!(c.mailboxes[0].folder, "INBOX");
        assert_eq!(c.mailboxes[0].processed, Processed::Move);
        assert_eq!(c.mailboxes[1].processed, Processed::Flag);
        assert_eq!(
            c.mailboxes[0].imap.password.as_ref().map(Secret::expose),
            Some("pw")
        );
        assert_eq!(c.ingest.batch_size, 500);
        assert_eq!(c.data_dir, Path::new("/etc/data"));
        assert_eq!(
            c.database.url.expose(),
            "sqlite:///etc/data/helpdesk.db?mode=rwc"
        );
        assert_eq!(format!("{:?}", c.mailboxes[0].imap.password), "Some(***)");
    }

    #[test]
    fn a_type_error_names_line_and_key() {
        let text = GOOD.replace("port = 70000", "port = \"imaps\"");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("/etc/helpdesk.toml:20: mailbox[1].imap.port: "),
            "{}",
            p[0]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = GOOD.replace("tag = \"ACME\"", "tag = \"ACME\"\ntga = 1");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(":6: desk.tga: unknown field `tga`"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn missing_secrets_and_bad_addresses_are_all_reported() {
        let text = GOOD
            .replace("70000", "993")
            .replace("port = 0", "port = 25")
            .replace(
                "password_env = \"PW\"\n\n[[mailbox]]",
                "password_env = \"NOPE\"\n\n[[mailbox]]",
            )
            .replace("support@example.test", "support");
        let p = problems(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains(":4: desk.address: expected a mail address"),
            "{}",
            p[0]
        );
        assert!(
            p[1].contains("mailbox[0].imap.password_env: environment variable NOPE is not set"),
            "{}",
            p[1]
        );
    }

    /// GOOD with valid ports, and `secret` in place of the first
    /// mailbox's `password_env = "PW"` (line 13).
    fn with_first_secret(secret: &str) -> String {
        GOOD.replace("70000", "993")
            .replace("port = 0", "port = 25")
            .replacen("password_env = \"PW\"", secret, 1)
    }

    #[test]
    fn a_missing_password_file_names_line_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let p = problems(&with_first_secret(&format!(
            "password_file = {:?}",
            missing.display().to_string()
        )));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("/etc/helpdesk.toml:13: mailbox[0].imap.password_file: cannot read "),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_password_file_that_is_a_directory_names_line_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = problems(&with_first_secret(&format!(
            "password_file = {:?}",
            dir.path().display().to_string()
        )));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("/etc/helpdesk.toml:13: mailbox[0].imap.password_file: cannot read ")
                && p[0].ends_with("is a directory, expected a file"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn an_unset_password_env_names_line_and_key() {
        let p = problems(&with_first_secret("password_env = \"NOPE\""));
        assert_eq!(
            p,
            vec![
                "/etc/helpdesk.toml:13: mailbox[0].imap.password_env: environment variable NOPE is not set"
            ]
        );
        // Both set: the line of the second.
        let p = problems(&with_first_secret(
            "password_env = \"PW\"\npassword_file = \"pw.txt\"",
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("/etc/helpdesk.toml:14: mailbox[0].imap: set password_file"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn database_and_token_secret_problems_name_their_line() {
        let ok = with_first_secret("password_env = \"PW\"");
        let p = problems(&format!("{ok}\n[database]\nurl_env = \"NO_DB_URL\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        let line = ok.lines().count() + 3;
        assert!(
            p[0].starts_with(&format!(
                "/etc/helpdesk.toml:{line}: database.url_env: environment variable NO_DB_URL is not set"
            )),
            "{}",
            p[0]
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let text = ok.replacen(
            "tag = \"ACME\"",
            &format!(
                "tag = \"ACME\"\ntoken_secret_file = {:?}",
                dir.path().display().to_string()
            ),
            1,
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("/etc/helpdesk.toml:6: desk.token_secret_file: ")
                && p[0].ends_with("is a directory, expected a file"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn plugins_get_defaults_and_their_problems_are_reported() {
        let ok = GOOD
            .replace("70000", "11993")
            .replace("port = 0", "port = 12525");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &ok, &env).expect("valid");
        assert!(c.plugins.enabled);
        assert_eq!(c.plugins.dir, Path::new("/etc/plugins"));
        assert_eq!(c.plugins.isolation, Isolation::Process);
        assert_eq!(c.plugins.timeout, Duration::from_secs(5));
        assert_eq!(c.plugins.retries, 3);

        let text = format!(
            "{ok}\n[plugins]\nisolation = \"in-process\"\ntimeout_secs = 0\n\n[plugins.config.router]\nrule = [{{keywords = [\"vpn\"], priority = \"high\"}}]\n"
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("plugins.timeout_secs: expected an integer 1-3600, got 0"),
            "{}",
            p[0]
        );
        let c = Config::parse(
            Path::new("/etc/helpdesk.toml"),
            &text.replace("timeout_secs = 0", "timeout_secs = 2"),
            &env,
        )
        .expect("valid");
        assert_eq!(c.plugins.isolation, Isolation::InProcess);
        assert_eq!(
            c.plugins.config["router"],
            serde_json::json!({"rule": [{"keywords": ["vpn"], "priority": "high"}]})
        );
        let p = problems(&format!("{ok}\n[plugins]\nisolation = \"thread\"\n"));
        assert!(p.len() == 1 && p[0].contains("plugins.isolation"), "{p:?}");
    }

    #[test]
    fn metrics_listen_on_loopback_unless_remote_is_allowed() {
        let ok = GOOD
            .replace("70000", "11993")
            .replace("port = 0", "port = 12525");
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &ok, &env).expect("valid");
        assert!(c.metrics.is_none(), "no section, no endpoint");

        let c = Config::parse(
            Path::new("/etc/helpdesk.toml"),
            &format!("{ok}\n[metrics]\n"),
            &env,
        )
        .expect("valid");
        assert_eq!(
            c.metrics.map(|m| m.listen.to_string()),
            Some("127.0.0.1:9464".to_string())
        );

        let remote = format!("{ok}\n[metrics]\nlisten = \"0.0.0.0:9464\"\n");
        let line = remote.lines().count();
        assert_eq!(
            problems(&remote),
            vec![format!(
                "/etc/helpdesk.toml:{line}: metrics.listen: 0.0.0.0:9464 is not a loopback address \
                 and the endpoint has no authentication; set allow_remote = true to serve it \
                 beyond this host"
            )]
        );
        let c = Config::parse(
            Path::new("/etc/helpdesk.toml"),
            &format!("{remote}allow_remote = true\n"),
            &env,
        )
        .expect("valid");
        assert_eq!(
            c.metrics.map(|m| m.listen.to_string()),
            Some("0.0.0.0:9464".to_string())
        );

        let p = problems(&format!("{ok}\n[metrics]\nlisten = \"localhost:9464\"\n"));
        assert!(
            p.len() == 1
                && p[0].contains(
                    "metrics.listen: expected an IP address and port such as \
                                  127.0.0.1:9464, got \"localhost:9464\""
                ),
            "{p:?}"
        );
        let p = problems(&format!("{ok}\n[metrics]\nport = 9464\n"));
        assert!(p.len() == 1 && p[0].contains("port"), "{p:?}");
    }

    /// GOOD with valid ports, the first mailbox and the SMTP server on
    /// XOAUTH2, and `accounts` appended.
    fn with_oauth(accounts: &str) -> String {
        let text = with_first_secret("auth = \"oauth2\"\noauth2 = \"m365\"")
            .replace("[smtp]\n", "[smtp]\nauth = \"oauth2\"\noauth2 = \"m365\"\n");
        format!("{text}\n{accounts}")
    }

    fn line_with(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no line with {needle:?}"))
    }

    const M365: &str = r#"
[[oauth2]]
name = "m365"
flow = "client_credentials"
token_url = "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token"
client_id = "00000000-1111"
client_secret_env = "PW"
scopes = ["https://outlook.office365.com/.default"]
username = "support@example.test"
"#;

    #[test]
    fn oauth2_servers_take_their_account_and_user() {
        let text = with_oauth(M365);
        let c = Config::parse(Path::new("/etc/helpdesk.toml"), &text, &env).expect("valid");
        let a = &c.oauth2[0];
        assert_eq!(a.flow, Flow::ClientCredentials);
        assert_eq!(a.client_secret.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(a.refused_retry, Duration::from_secs(900));
        let login = c.mailboxes[0].imap.oauth2.clone().expect("XOAUTH2");
        assert_eq!(login.account, "m365");
        assert_eq!(login.user, "support@example.test");
        assert!(c.mailboxes[0].imap.password.is_none());
        assert!(c.mailboxes[1].imap.oauth2.is_none());
        assert_eq!(
            c.smtp.oauth2,
            Some(OAuth2Login {
                account: "m365".into(),
                user: "support@example.test".into()
            })
        );
        // Without `username`, IMAP logs in as its own user; SMTP has none.
        let p = problems(&with_oauth(
            &M365.replace("username = \"support@example.test\"\n", ""),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("smtp.user: XOAUTH2 needs the mailbox user"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_literal_client_secret_is_refused_with_its_line() {
        let text =
            with_oauth(&M365.replace("client_secret_env = \"PW\"", "client_secret = \"hunter2\""));
        let p = problems(&text);
        let line = line_with(&text, "hunter2");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!(
                "/etc/helpdesk.toml:{line}: oauth2[0].client_secret: secrets are never written in this file"
            )),
            "{}",
            p[0]
        );
    }

    #[test]
    fn oauth2_problems_name_file_line_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let text = with_oauth(&M365.replace("https://login", "http://login").replace(
            "client_secret_env = \"PW\"",
            &format!("client_secret_file = {:?}", missing.display().to_string()),
        ))
        .replacen("oauth2 = \"m365\"", "oauth2 = \"m356\"", 1);
        let p = problems(&text);
        assert_eq!(p.len(), 3, "{p:?}");
        let typo = line_with(&text, "m356");
        assert!(
            p.contains(&format!(
                "/etc/helpdesk.toml:{typo}: mailbox[0].imap.oauth2: no [[oauth2]] account is named \"m356\""
            )),
            "{p:?}"
        );
        let url = line_with(&text, "http://login");
        assert!(
            p.iter().any(|x| x.starts_with(&format!(
                "/etc/helpdesk.toml:{url}: oauth2[0].token_url: plain http:// sends"
            ))),
            "{p:?}"
        );
        let secret = line_with(&text, "client_secret_file");
        assert!(
            p.iter().any(|x| x.starts_with(&format!(
                "/etc/helpdesk.toml:{secret}: oauth2[0].client_secret_file: cannot read "
            ))),
            "{p:?}"
        );
    }

    #[test]
    fn a_missing_refresh_token_is_an_error_except_for_the_login() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("google.refresh");
        let account = format!(
            r#"
[[oauth2]]
name = "m365"
flow = "refresh_token"
token_url = "https://oauth2.googleapis.com/token"
client_id = "123.apps.googleusercontent.com"
client_secret_env = "PW"
scopes = ["https://mail.google.com/"]
refresh_token_file = {:?}
device_authorization_url = "https://oauth2.googleapis.com/device/code"
username = "support@example.test"
"#,
            file.display().to_string()
        );
        let text = with_oauth(&account);
        let p = problems(&text);
        let line = line_with(&text, "refresh_token_file");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!(
                "/etc/helpdesk.toml:{line}: oauth2[0].refresh_token_file: "
            )) && p[0].ends_with("does not exist: run `helpdeskd oauth login m365` once"),
            "{}",
            p[0]
        );
        let login = Config::parse_with(Path::new("/etc/helpdesk.toml"), &text, &env, true)
            .expect("the login writes the file");
        assert_eq!(
            login.oauth2[0].refresh_token_file.as_deref(),
            Some(file.as_path())
        );
        std::fs::write(&file, "1//rt").expect("write");
        assert!(problems(&text).is_empty());
        // Without a refresh_token_file, the refresh_token flow cannot work.
        let p = problems(&with_oauth(&account.replace(
            &format!("refresh_token_file = {:?}\n", file.display().to_string()),
            "",
        )));
        assert!(
            p.len() == 1
                && p[0].contains("oauth2[0].refresh_token_file: the refresh_token flow needs"),
            "{p:?}"
        );
    }

    #[test]
    fn auth_oauth2_without_an_account_and_a_password_with_it_are_refused() {
        let text = with_first_secret("auth = \"oauth2\"");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!(
                "/etc/helpdesk.toml:{}: mailbox[0].imap.oauth2: auth = \"oauth2\" needs",
                line_with(&text, "auth = ")
            )),
            "{}",
            p[0]
        );
        let text = with_oauth(M365).replacen(
            "oauth2 = \"m365\"",
            "oauth2 = \"m365\"\npassword_env = \"PW\"",
            1,
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("remove the password"), "{}", p[0]);
    }

    #[test]
    fn token_endpoints_must_be_https_or_loopback() {
        assert!(endpoint_ok("https://login.microsoftonline.com/t/oauth2/v2.0/token").is_ok());
        assert!(endpoint_ok("http://127.0.0.1:8080/token").is_ok());
        assert!(endpoint_ok("http://localhost/token").is_ok());
        assert!(endpoint_ok("http://[::1]:99/token").is_ok());
        assert!(endpoint_ok("http://login.example.com/token").is_err());
        assert!(endpoint_ok("http://127.0.0.1.evil.example/token").is_err());
        assert!(endpoint_ok("http://127.9.9.9/token").is_ok());
        assert!(endpoint_ok("ftp://x/token").is_err());
        assert!(endpoint_ok("login.example.com/token").is_err());
        assert!(endpoint_ok("https:///token").is_err());
    }
}

// ---- satisfaction and complaints ------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSatisfaction {
    #[serde(default)]
    enabled: bool,
    subject: Option<Spanned<String>>,
    text: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComplaints {
    #[serde(default)]
    notify: Vec<Spanned<String>>,
}

impl Validator<'_> {
    /// `[satisfaction]`, `[complaints] notify` (addresses or staff groups)
    /// and each service's manager (its `manager`, else its `escalation`).
    fn relationship(
        &mut self,
        raw: &RawConfig,
        staff: &Directory,
        levels: &ServiceLevels,
    ) -> crate::domain::satisfaction::Policy {
        let s = &raw.satisfaction;
        let subject = match &s.subject {
            Some(v) if v.get_ref().trim().is_empty() || v.get_ref().contains(['\r', '\n']) => {
                self.problem(
                    Some(v.span()),
                    "satisfaction.subject",
                    "must be one line of text".into(),
                );
                String::new()
            }
            Some(v) => v.get_ref().trim().to_string(),
            None => String::new(),
        };
        let text = match &s.text {
            Some(v) if v.get_ref().trim().is_empty() => {
                self.problem(
                    Some(v.span()),
                    "satisfaction.text",
                    "must not be empty (leave it out for the built-in text)".into(),
                );
                String::new()
            }
            Some(v) => v.get_ref().clone(),
            None => String::new(),
        };
        let mut complaints: Vec<Address> = Vec::new();
        for (i, n) in raw.complaints.notify.iter().enumerate() {
            let key = format!("complaints.notify[{i}]");
            let v = n.get_ref().trim();
            let found: Vec<Address> = if v.contains('@') {
                vec![self.address(n, &key)]
            } else {
                let group = v.to_lowercase();
                if !staff.has_group(&group) {
                    self.problem(
                        Some(n.span()),
                        &key,
                        format!("{v:?} is neither a mail address nor a [[staff]] group"),
                    );
                }
                staff
                    .members()
                    .iter()
                    .filter(|m| m.groups.contains(&group))
                    .map(StaffMember::address)
                    .collect()
            };
            for a in found {
                if !complaints.iter().any(|c| c.email == a.email) {
                    complaints.push(a);
                }
            }
        }
        crate::domain::satisfaction::Policy {
            enabled: s.enabled,
            subject,
            text,
            managers: levels
                .services
                .iter()
                .filter_map(|sv| {
                    let m = sv.manager.clone().or_else(|| sv.escalation.clone())?;
                    Some((sv.name.clone(), m))
                })
                .collect(),
            complaints,
        }
    }
}
