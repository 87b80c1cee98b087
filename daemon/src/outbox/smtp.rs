//! SMTP connections for the sender: lettre's protocol client on sockets
//! this module opens, so that every socket has `TCP_NODELAY`.
//!
//! Why not lettre's own transport: it writes a mail's body and the final
//! `.` in two writes, and without `TCP_NODELAY` the kernel holds the `.`
//! until the server acknowledges the body (about 40 ms on Linux). A sender
//! killed in that pause still has the `.` in its socket buffer, which the
//! kernel sends when it closes the socket: the server accepts a mail whose
//! sender never heard the 250, and the mail goes twice. Measured with
//! SIGKILL during sending: about one duplicate per kill with one mail in
//! flight; the pause is also most of the time a mail takes on loopback.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;

use crate::config::{ServerConfig, TlsMode};
use crate::error::{Error, Result};
use crate::oauth2::Tokens;

/// Why a mail was not sent: a 5xx or a malformed envelope fails the mail for
/// good; anything else (4xx, connection trouble, a timeout) is retried.
#[derive(Debug)]
pub enum SendError {
    Permanent(String),
    Transient(String),
    /// Not tried: the `[smtp]` OAuth2 account has no token (the provider
    /// refused it). The mail waits without an attempt counted.
    Waiting(String),
}

impl SendError {
    pub fn text(&self) -> &str {
        match self {
            SendError::Permanent(t) | SendError::Transient(t) | SendError::Waiting(t) => t,
        }
    }
}

/// Where opening a connection failed: at the login, or before it.
enum OpenError {
    Auth(String),
    Other(String),
}

/// Slowest transfer a send is given time for, on top of its commands.
const MIN_BYTES_PER_SEC: u64 = 64 * 1024;

enum Security {
    Plain,
    StartTls(Box<TlsParameters>),
    Implicit(Arc<ClientConfig>),
}

/// Opens, authenticates and reuses SMTP connections to the `[smtp]` server.
pub struct Connector {
    cfg: ServerConfig,
    security: Security,
    hello: ClientId,
    idle: Mutex<Vec<(Instant, AsyncSmtpConnection)>>,
    keep: usize,
    tokens: Tokens,
}

/// A kept connection unused this long is closed rather than tried: servers
/// drop idle sessions (RFC 5321 asks them to wait 5 minutes at least).
const IDLE_FOR: Duration = Duration::from_secs(30);

impl Connector {
    /// `keep`: connections kept open between mails (one per mail in flight).
    pub fn new(cfg: &ServerConfig, keep: usize, tokens: Tokens) -> Result<Connector> {
        let security = match cfg.tls {
            TlsMode::None => Security::Plain,
            TlsMode::Starttls => {
                let mut p = TlsParameters::builder(cfg.host.clone());
                if let Some(ca) = &cfg.ca_file {
                    let pem = std::fs::read(ca).map_err(|e| Error::io(ca, e))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| Error::Tls(format!("{}: {e}", ca.display())))?;
                    p = p.add_root_certificate(cert);
                }
                Security::StartTls(Box::new(
                    p.build_rustls().map_err(|e| Error::Tls(e.to_string()))?,
                ))
            }
            TlsMode::Implicit => {
                Security::Implicit(crate::tls::client_config(cfg.ca_file.as_deref())?)
            }
        };
        Ok(Connector {
            cfg: cfg.clone(),
            security,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            keep,
            tokens,
        })
    }

    fn where_(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    /// A new connection, greeted, secured and authenticated: with the
    /// password, or with XOAUTH2 and a token; a token the server refuses is
    /// replaced by a fresh one once.
    pub async fn connect(&self) -> std::result::Result<AsyncSmtpConnection, SendError> {
        let Some(login) = &self.cfg.oauth2 else {
            let creds = match (&self.cfg.user, &self.cfg.password) {
                (Some(user), Some(pw)) => {
                    Some(Credentials::new(user.clone(), pw.expose().to_string()))
                }
                _ => None,
            };
            return self
                .open(creds.as_ref().map(|c| (DEFAULT_MECHANISMS, c)))
                .await
                .map_err(|e| SendError::Transient(self.text(e)));
        };
        let token_error = |e: Error| match e {
            Error::OAuth2Refused { .. } => SendError::Waiting(e.to_string()),
            e => SendError::Transient(e.to_string()),
        };
        let token = self
            .tokens
            .token(&login.account)
            .await
            .map_err(token_error)?;
        let creds = Credentials::new(login.user.clone(), token.secret.expose().to_string());
        match self.open(Some((&[Mechanism::Xoauth2], &creds))).await {
            Ok(c) => Ok(c),
            Err(OpenError::Auth(first)) => {
                tracing::info!(account = login.account, error = %first, "the SMTP server refused the access token; asking for a fresh one");
                let token = self
                    .tokens
                    .renew(&login.account, &token.secret)
                    .await
                    .map_err(token_error)?;
                let creds = Credentials::new(login.user.clone(), token.secret.expose().to_string());
                self.open(Some((&[Mechanism::Xoauth2], &creds)))
                    .await
                    .map_err(|e| SendError::Transient(self.text(e)))
            }
            Err(e) => Err(SendError::Transient(self.text(e))),
        }
    }

    fn text(&self, e: OpenError) -> String {
        match e {
            OpenError::Auth(t) | OpenError::Other(t) => format!("{}: {t}", self.where_()),
        }
    }

    async fn open(
        &self,
        auth: Option<(&[Mechanism], &Credentials)>,
    ) -> std::result::Result<AsyncSmtpConnection, OpenError> {
        let open = async {
            let other = OpenError::Other;
            let tcp = TcpStream::connect((self.cfg.host.as_str(), self.cfg.port))
                .await
                .map_err(|e| other(format!("connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| other(format!("TCP_NODELAY: {e}")))?;
            let stream: Box<dyn AsyncTokioStream> = match &self.security {
                Security::Implicit(config) => {
                    let name = crate::tls::server_name(&self.cfg.host)
                        .map_err(|e| other(e.to_string()))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| other(format!("TLS: {e}")))?;
                    Box::new(Tls(tls))
                }
                _ => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(|e| other(e.to_string()))?;
            if let Security::StartTls(params) = &self.security {
                conn.starttls((**params).clone(), &self.hello)
                    .await
                    .map_err(|e| other(format!("STARTTLS: {e}")))?;
            }
            if let Some((mechanisms, creds)) = auth {
                conn.auth(mechanisms, creds)
                    .await
                    .map_err(|e| OpenError::Auth(format!("AUTH: {e}")))?;
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.cfg.timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(OpenError::Other(format!(
                "no answer within {:?}",
                self.cfg.timeout
            ))),
        }
    }

    /// Sends one mail on a kept connection, or a new one. A transient failure
    /// on a kept connection is tried once more at once on a fresh one, since
    /// servers limit mails per session (OpenSMTPD answers the 101st with 452)
    /// and kept connections go stale.
    pub async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
    ) -> std::result::Result<(), SendError> {
        let (kept, stale) = self.take_idle();
        for mut c in stale {
            c.abort().await;
        }
        let reused = kept.is_some();
        let conn = match kept {
            Some(c) => c,
            None => self.connect().await?,
        };
        match self.send_on(conn, envelope, raw).await {
            Err(SendError::Transient(first)) if reused => {
                let conn = self.connect().await.map_err(|e| match e {
                    SendError::Transient(e) => {
                        SendError::Transient(format!("{e} (before that: {first})"))
                    }
                    other => other,
                })?;
                self.send_on(conn, envelope, raw)
                    .await
                    .map_err(|e| match e {
                        SendError::Transient(e) => {
                            SendError::Transient(format!("{e} (before that: {first})"))
                        }
                        permanent => permanent,
                    })
            }
            other => other,
        }
    }

    fn take_idle(&self) -> (Option<AsyncSmtpConnection>, Vec<AsyncSmtpConnection>) {
        let Ok(mut idle) = self.idle.lock() else {
            return (None, Vec::new());
        };
        let (fresh, stale): (Vec<_>, Vec<_>) =
            idle.drain(..).partition(|(t, _)| t.elapsed() < IDLE_FOR);
        *idle = fresh;
        (
            idle.pop().map(|(_, c)| c),
            stale.into_iter().map(|(_, c)| c).collect(),
        )
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> std::result::Result<(), SendError> {
        let allowed =
            self.cfg.timeout * 4 + Duration::from_secs(raw.len() as u64 / MIN_BYTES_PER_SEC);
        match tokio::time::timeout(allowed, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.keep
                {
                    idle.push((Instant::now(), conn));
                }
                Ok(())
            }
            Ok(Err(e)) => {
                let text = format!("{}: {e}", self.where_());
                conn.abort().await;
                if e.is_permanent() {
                    Err(SendError::Permanent(text))
                } else {
                    Err(SendError::Transient(text))
                }
            }
            Err(_) => Err(SendError::Transient(format!(
                "{}: the mail was not accepted within {allowed:?}",
                self.where_()
            ))),
        }
    }

    /// Connects and says NOOP: `helpdeskd check`.
    pub async fn test(&self) -> Result<()> {
        let mut conn = self
            .connect()
            .await
            .map_err(|e| Error::Smtp(e.text().to_string()))?;
        let alive = conn.test_connected().await;
        let _ = conn.quit().await;
        if alive {
            Ok(())
        } else {
            Err(Error::Smtp(format!("{}: no answer to NOOP", self.where_())))
        }
    }

    /// Says QUIT on the kept connections.
    pub async fn close(&self) {
        let idle: Vec<_> = match self.idle.lock() {
            Ok(mut v) => v.drain(..).collect(),
            Err(_) => return,
        };
        for (_, mut c) in idle {
            let _ = c.quit().await;
        }
    }
}

/// A TLS stream as lettre's protocol client takes it.
#[derive(Debug)]
struct Tls(TlsStream<TcpStream>);

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
