//! OAuth2 access tokens for XOAUTH2 logins (`[[oauth2]]` accounts): one
//! cache per process, shared by the pollers, the outbox sender and `check`.
//!
//! A token is handed out until shortly before it expires
//! ([`AccessToken::usable_at`]), then replaced; a server that refuses a
//! token gets one fresh token ([`Tokens::renew`]). A refused grant
//! (`invalid_grant`, `invalid_client`…) is logged once with the provider's
//! reason, reported once to `desk.admin_address` ([`Alert`]), and asked
//! again only after `refused_retry_secs` or as soon as the refresh token
//! file changes (`helpdeskd oauth login` was run). Nothing waits on it but
//! the logins of that account: mail stays on the server and in the outbox.

pub mod alert;
pub mod flows;
mod http;
pub mod token;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::{Flow, OAuth2Account, Secret};
use crate::error::{Error, Result};
use flows::{FlowError, Grant};
pub use token::{AccessToken, xoauth2};

/// How a token request ended, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new access token.
    Ok,
    /// The provider refused the grant: an admin has to act.
    Refused,
    /// No answer or an unreadable one: tried again soon.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// The one place a token request is recorded: every refresh, refused
/// refresh and failed one of every account passes here, with the tracing
/// fields `account` and `outcome` (the metrics count them here too).
pub fn record_refresh(account: &str, outcome: Outcome, detail: &str) {
    match outcome {
        Outcome::Ok => info!(
            account,
            outcome = outcome.as_str(),
            expires = detail,
            "oauth2 token obtained"
        ),
        Outcome::Refused | Outcome::Failed => warn!(
            account,
            outcome = outcome.as_str(),
            error = detail,
            "oauth2 token request failed"
        ),
    }
}

/// A refused grant, for the admin mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub account: String,
    pub reason: String,
}

#[derive(Debug)]
struct Refusal {
    reason: String,
    at: DateTime<Utc>,
    /// The refresh token that was refused: another one in the file is
    /// tried at once.
    refresh_token: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    token: Option<AccessToken>,
    refused: Option<Refusal>,
}

struct Account {
    cfg: OAuth2Account,
    /// Held while a token is requested, so concurrent logins share one request.
    state: tokio::sync::Mutex<State>,
}

/// The token cache of a process; cheap to clone.
#[derive(Clone, Default)]
pub struct Tokens {
    accounts: Arc<HashMap<String, Arc<Account>>>,
    clock: Option<Arc<dyn Clock>>,
    alerts: Option<UnboundedSender<Alert>>,
    /// Where "already reported" marks are kept (`<data_dir>`), so a
    /// refusal is mailed once, not once per process start.
    marks: Option<PathBuf>,
}

impl Tokens {
    pub fn new(accounts: &[OAuth2Account], clock: Arc<dyn Clock>) -> Tokens {
        Tokens {
            accounts: Arc::new(
                accounts
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            Arc::new(Account {
                                cfg: a.clone(),
                                state: tokio::sync::Mutex::new(State::default()),
                            }),
                        )
                    })
                    .collect(),
            ),
            clock: Some(clock),
            alerts: None,
            marks: None,
        }
    }

    /// Refused grants are reported on the returned channel, once per
    /// refusal (kept as a mark in `data_dir` until a token is obtained).
    pub fn with_alerts(mut self, data_dir: PathBuf) -> (Tokens, UnboundedReceiver<Alert>) {
        let (tx, rx) = unbounded_channel();
        self.alerts = Some(tx);
        self.marks = Some(data_dir);
        (self, rx)
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Some(c) => c.now(),
            None => crate::clock::SystemClock.now(),
        }
    }

    fn account(&self, name: &str) -> Result<&Arc<Account>> {
        self.accounts.get(name).ok_or_else(|| Error::OAuth2 {
            account: name.to_string(),
            message: "no such [[oauth2]] account".into(),
        })
    }

    /// A token of `account` that is good for a while yet.
    pub async fn token(&self, account: &str) -> Result<AccessToken> {
        let acc = self.account(account)?;
        let mut state = acc.state.lock().await;
        if let Some(t) = &state.token
            && t.usable_at(self.now())
        {
            return Ok(t.clone());
        }
        self.obtain(acc, &mut state).await
    }

    /// `rejected` was refused by a server: a fresh token, unless another
    /// login already replaced it.
    pub async fn renew(&self, account: &str, rejected: &Secret) -> Result<AccessToken> {
        let acc = self.account(account)?;
        let mut state = acc.state.lock().await;
        match &state.token {
            Some(t) if &t.secret != rejected && t.usable_at(self.now()) => Ok(t.clone()),
            _ => {
                state.token = None;
                self.obtain(acc, &mut state).await
            }
        }
    }

    async fn obtain(&self, acc: &Account, state: &mut State) -> Result<AccessToken> {
        let cfg = &acc.cfg;
        let now = self.now();
        let refresh_token = match cfg.flow {
            Flow::RefreshToken => Some(read_refresh(cfg)),
            Flow::ClientCredentials => None,
        };
        let current = refresh_token
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .cloned();
        if let Some(r) = &state.refused {
            let changed = cfg.flow == Flow::RefreshToken && current != r.refresh_token;
            let due = r.at + chrono::Duration::from_std(cfg.refused_retry).unwrap_or_default();
            if !changed && now < due {
                return Err(refused(&cfg.name, &r.reason));
            }
        }
        let result = match &refresh_token {
            Some(Err(e)) => Err(FlowError::Refused(e.clone())),
            _ => flows::request_token(cfg, current.as_deref(), now).await,
        };
        match result {
            Ok(Grant {
                token,
                refresh_token: rotated,
            }) => {
                record_refresh(&cfg.name, Outcome::Ok, &token.expires_at.to_rfc3339());
                if let (Some(new), Some(path)) = (rotated, &cfg.refresh_token_file)
                    && current.as_deref() != Some(new.as_str())
                {
                    match token::write_refresh_token(path, &new) {
                        Ok(()) => {
                            info!(account = cfg.name, file = %path.display(), "the provider rotated the refresh token; stored")
                        }
                        Err(e) => {
                            error!(account = cfg.name, file = %path.display(), error = %e, "the provider rotated the refresh token and it cannot be stored: the next login will need `helpdeskd oauth login`")
                        }
                    }
                }
                if state.refused.take().is_some() {
                    info!(account = cfg.name, "oauth2 tokens are granted again");
                }
                self.clear_mark(&cfg.name);
                state.token = Some(token.clone());
                Ok(token)
            }
            Err(FlowError::Refused(reason)) => {
                record_refresh(&cfg.name, Outcome::Refused, &reason);
                let again = state.refused.as_ref().is_some_and(|r| r.reason == reason);
                if !again {
                    error!(account = cfg.name, error = reason, retry_in = ?cfg.refused_retry, "the OAuth2 provider refused a token; logins with this account wait until an admin acts (helpdeskd check, helpdeskd oauth login)");
                    self.alert(&cfg.name, &reason);
                }
                state.token = None;
                state.refused = Some(Refusal {
                    reason: reason.clone(),
                    at: now,
                    refresh_token: current,
                });
                Err(refused(&cfg.name, &reason))
            }
            Err(FlowError::Failed(message)) => {
                record_refresh(&cfg.name, Outcome::Failed, &message);
                Err(Error::OAuth2 {
                    account: cfg.name.clone(),
                    message,
                })
            }
        }
    }

    fn mark_path(&self, account: &str) -> Option<PathBuf> {
        let safe: String = account
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Some(self.marks.as_ref()?.join(format!("oauth2-{safe}.refused")))
    }

    fn alert(&self, account: &str, reason: &str) {
        let Some(tx) = &self.alerts else { return };
        if let Some(mark) = self.mark_path(account) {
            if std::fs::read_to_string(&mark).is_ok_and(|r| r == reason) {
                return;
            }
            if let Err(e) = std::fs::write(&mark, reason) {
                warn!(account, file = %mark.display(), error = %e, "cannot keep the mark of a reported refusal");
            }
        }
        let _ = tx.send(Alert {
            account: account.to_string(),
            reason: reason.to_string(),
        });
    }

    fn clear_mark(&self, account: &str) {
        if let Some(mark) = self.mark_path(account) {
            let _ = std::fs::remove_file(mark);
        }
    }
}

fn refused(account: &str, reason: &str) -> Error {
    Error::OAuth2Refused {
        account: account.to_string(),
        message: reason.to_string(),
    }
}

fn read_refresh(cfg: &OAuth2Account) -> std::result::Result<String, String> {
    let Some(path) = &cfg.refresh_token_file else {
        return Err("no refresh_token_file".into());
    };
    token::read_refresh_token(path).map_err(|e| {
        format!(
            "cannot read the refresh token {}: {e} (run `helpdeskd oauth login {}`)",
            path.display(),
            cfg.name
        )
    })
}

/// What the person is shown by `helpdeskd oauth login`.
pub enum Login<'a> {
    /// Open `verification_uri` and enter `user_code`.
    Device(&'a flows::DeviceCode),
    /// Open this URL in a browser that reaches this machine's loopback.
    Redirect(&'a str),
}

/// `helpdeskd oauth login`: the device flow for `account` where the account
/// has a `device_authorization_url`, else the loopback redirect; `show`
/// tells the person what to open, and the refresh token is stored in the
/// account's `refresh_token_file` (mode 0600). Returns the file.
pub async fn login(
    accounts: &[OAuth2Account],
    account: &str,
    clock: Arc<dyn Clock>,
    show: impl FnOnce(Login<'_>),
) -> Result<PathBuf> {
    let failed = |message: String| Error::OAuth2 {
        account: account.to_string(),
        message,
    };
    let acc = accounts
        .iter()
        .find(|a| a.name == account)
        .ok_or_else(|| failed("no such [[oauth2]] account in the configuration".into()))?;
    let path = match (acc.flow, &acc.refresh_token_file) {
        (Flow::RefreshToken, Some(p)) => p.clone(),
        _ => {
            return Err(failed(
                "only accounts with flow = \"refresh_token\" log in (client_credentials needs no login)"
                    .into(),
            ));
        }
    };
    let flow_error = |e: FlowError| match e {
        FlowError::Refused(m) => refused(account, &m),
        FlowError::Failed(m) => failed(m),
    };
    let grant = if acc.device_authorization_url.is_some() {
        let code = flows::device_authorize(acc).await.map_err(flow_error)?;
        show(Login::Device(&code));
        flows::device_poll(acc, &code, || clock.now()).await
    } else {
        flows::redirect_login(acc, || clock.now(), |url| show(Login::Redirect(url))).await
    }
    .map_err(flow_error)?;
    let refresh = grant.refresh_token.ok_or_else(|| {
        failed("the provider granted no refresh token (ask for offline access: Microsoft's scope offline_access)".into())
    })?;
    token::write_refresh_token(&path, &refresh).map_err(|e| Error::io(&path, e))?;
    record_refresh(account, Outcome::Ok, &grant.token.expires_at.to_rfc3339());
    Ok(path)
}
