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
    crate::metrics::oauth2_token_refresh(
        account,
        match outcome {
            Outcome::Ok => crate::metrics::RefreshOutcome::Ok,
            Outcome::Refused => crate::metrics::RefreshOutcome::Refused,
            Outcome::Failed => crate::metrics::RefreshOutcome::Failed,
        },
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Clock0(Mutex<DateTime<Utc>>);

    impl Clock for Clock0 {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("clock")
        }
    }

    impl Clock0 {
        fn advance(&self, secs: i64) {
            *self.0.lock().expect("clock") += chrono::Duration::seconds(secs);
        }
    }

    /// A token endpoint answering `answers[n]` (status, JSON; `#` becomes
    /// the request's number) to its nth request (the last one from then
    /// on); counts the requests.
    async fn endpoint(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        let count = Arc::new(AtomicU32::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst) as usize;
                let (status, body) = answers[n.min(answers.len() - 1)];
                let body = body.replace('#', &n.to_string());
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        (url, count)
    }

    fn account(token_url: String, flow: Flow, refresh: Option<PathBuf>) -> OAuth2Account {
        OAuth2Account {
            name: "acct".into(),
            flow,
            token_url,
            client_id: "cid".into(),
            client_secret: Some(Secret::new("shh")),
            scopes: vec![],
            refresh_token_file: refresh,
            device_authorization_url: None,
            authorization_url: None,
            username: None,
            refused_retry: Duration::from_secs(900),
        }
    }

    const REFUSED: (u16, &str) = (
        401,
        r#"{"error":"invalid_client","error_description":"secret expired"}"#,
    );
    const GRANTED: (u16, &str) = (200, r#"{"access_token":"a1","expires_in":3600}"#);

    #[tokio::test]
    async fn a_refusal_is_reported_once_and_asked_again_only_after_the_pause() {
        let (url, requests) = endpoint(vec![REFUSED, REFUSED, GRANTED]).await;
        let clock = Arc::new(Clock0(Mutex::new(DateTime::UNIX_EPOCH)));
        let dir = tempfile::tempdir().expect("tempdir");
        let (tokens, mut alerts) = Tokens::new(
            &[account(url, Flow::ClientCredentials, None)],
            clock.clone(),
        )
        .with_alerts(dir.path().to_path_buf());

        for _ in 0..3 {
            match tokens.token("acct").await {
                Err(Error::OAuth2Refused { message, .. }) => {
                    assert_eq!(message, "invalid_client: secret expired")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(requests.load(Ordering::SeqCst), 1, "asked again at once");
        clock.advance(899);
        assert!(tokens.token("acct").await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        clock.advance(2);
        assert!(tokens.token("acct").await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert_eq!(
            alerts.try_recv().ok(),
            Some(Alert {
                account: "acct".into(),
                reason: "invalid_client: secret expired".into()
            })
        );
        assert!(
            alerts.try_recv().is_err(),
            "the same refusal reported twice"
        );

        clock.advance(901);
        let t = tokens.token("acct").await.expect("granted");
        assert_eq!(t.secret.expose(), "a1");
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        clock.advance(3000);
        assert_eq!(
            tokens.token("acct").await.expect("cached").secret.expose(),
            "a1"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            3,
            "a good token was not reused"
        );
        clock.advance(541);
        assert!(tokens.token("acct").await.is_ok());
        assert_eq!(
            requests.load(Ordering::SeqCst),
            4,
            "an expiring token was reused"
        );
        assert!(
            !dir.path().join("oauth2-acct.refused").exists(),
            "the mark outlived the refusal"
        );
    }

    #[tokio::test]
    async fn a_new_refresh_token_file_is_tried_at_once_and_a_rejected_token_renewed() {
        let refused_grant = (
            400,
            r#"{"error":"invalid_grant","error_description":"revoked"}"#,
        );
        let rotated = (
            200,
            r#"{"access_token":"a#","expires_in":3600,"refresh_token":"r3"}"#,
        );
        let (url, requests) = endpoint(vec![refused_grant, rotated]).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("acct.refresh");
        std::fs::write(&file, "r1\n").expect("write");
        let clock = Arc::new(Clock0(Mutex::new(DateTime::UNIX_EPOCH)));
        let tokens = Tokens::new(
            &[account(url, Flow::RefreshToken, Some(file.clone()))],
            clock,
        );
        assert!(matches!(
            tokens.token("acct").await,
            Err(Error::OAuth2Refused { .. })
        ));
        assert!(tokens.token("acct").await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        std::fs::write(&file, "r2\n").expect("write");
        let t = tokens.token("acct").await.expect("the new login works");
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert_eq!(token::read_refresh_token(&file).expect("file"), "r3");

        // A server refused `a2`: the next request gets a new token…
        let again = tokens.renew("acct", &t.secret).await.expect("renewed");
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        assert_ne!(again.secret, t.secret);
        // …and a second login refused with the old one shares it.
        let shared = tokens.renew("acct", &t.secret).await.expect("shared");
        assert_eq!(shared.secret, again.secret);
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }
}
