//! The small HTTP/1.1 endpoint of `[metrics] listen`: `GET /metrics`,
//! `/healthz` and `/readyz`, one request per connection. A request head
//! larger than [`MAX_HEAD`] or slower than [`READ_TIMEOUT`] is dropped, and
//! at most [`MAX_CONNECTIONS`] are served at once, so a slow or hostile
//! client cannot hold the daemon's database connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::health::{Facts, readiness};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;
use crate::store::Store;

pub const MAX_HEAD: usize = 8 * 1024;
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_CONNECTIONS: usize = 16;
/// How long the database may take to answer a readiness check.
const DB_TIMEOUT: Duration = Duration::from_secs(5);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Metrics,
    Healthz,
    Readyz,
    NotFound,
    MethodNotAllowed,
    Bad,
}

/// Reads a request head (up to its blank line): the request line decides.
pub fn parse(head: &[u8]) -> Request {
    let Some(line) = head.split(|b| *b == b'\n').next() else {
        return Request::Bad;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Request::Bad;
    }
    if method != "GET" {
        return Request::MethodNotAllowed;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match path {
        "/metrics" => Request::Metrics,
        "/healthz" => Request::Healthz,
        "/readyz" => Request::Readyz,
        _ => Request::NotFound,
    }
}

/// The end of the head (after its blank line), if `buf` holds it.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    /// Closed, timed out or failed before the head was complete.
    Gone,
}

async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
    timeout: Duration,
) -> std::result::Result<Vec<u8>, HeadError> {
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = r.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
            if n == 0 {
                return Err(HeadError::Gone);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = head_end(&buf) {
                buf.truncate(end);
                return Ok(buf);
            }
            if buf.len() > limit {
                return Err(HeadError::TooLarge);
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(HeadError::Gone))
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "",
        };
        let allow = if self.status == 405 {
            "Allow: GET\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// What the endpoint reads its answers from.
pub struct Endpoint {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The configured mailboxes, in order.
    pub mailboxes: Vec<String>,
    pub flush_interval: Duration,
    /// The configured jobs, whose last success a scrape reads.
    pub jobs: Vec<String>,
}

impl Endpoint {
    async fn answer(&self, request: Request) -> Response {
        match request {
            Request::Metrics => Response {
                status: 200,
                content_type: OPENMETRICS,
                body: super::get()
                    .scrape(&self.store, self.clock.now(), &self.jobs)
                    .await,
            },
            Request::Healthz => Response::text(200, "ok\n"),
            Request::Readyz => match readiness(&self.facts().await, Instant::now()) {
                Ok(()) => Response::text(200, "ready\n"),
                Err(failed) => Response::text(503, format!("not ready\n{}\n", failed.join("\n"))),
            },
            Request::NotFound => Response::text(404, "not found: /metrics, /healthz, /readyz\n"),
            Request::MethodNotAllowed => Response::text(405, "only GET\n"),
            Request::Bad => Response::text(400, "bad request\n"),
        }
    }

    async fn facts(&self) -> Facts {
        let health = &super::get().health;
        let db = async {
            self.store.conn().execute_unprepared("SELECT 1").await?;
            let now = self.clock.now();
            let outbox = super::status::outbox(&self.store, now).await?;
            Ok::<_, Error>(
                outbox
                    .oldest_due_at
                    .map(|t| (now - t).to_std().unwrap_or_default()),
            )
        };
        let (database, outbox_oldest_due) = match tokio::time::timeout(DB_TIMEOUT, db).await {
            Ok(Ok(due)) => (Ok(()), due),
            Ok(Err(e)) => (Err(e.to_string()), None),
            Err(_) => (
                Err(format!("no answer within {}s", DB_TIMEOUT.as_secs())),
                None,
            ),
        };
        let mut pollers = health.pollers();
        Facts {
            database,
            pollers: self
                .mailboxes
                .iter()
                .map(|m| (m.clone(), pollers.remove(m)))
                .collect(),
            sender_beat: health.sender(),
            flush_interval: self.flush_interval,
            outbox_oldest_due,
        }
    }

    async fn handle(&self, mut stream: TcpStream) {
        let response = match read_head(&mut stream, MAX_HEAD, READ_TIMEOUT).await {
            Ok(head) => self.answer(parse(&head)).await,
            Err(HeadError::TooLarge) => Response::text(431, "request head too large\n"),
            Err(HeadError::Gone) => return,
        };
        let write = async {
            stream.write_all(&response.bytes()).await?;
            stream.shutdown().await
        };
        if let Ok(Err(e)) = tokio::time::timeout(READ_TIMEOUT, write).await {
            debug!(error = %e, "metrics: answer not delivered");
        }
    }
}

/// Binds the endpoint's address; a daemon that cannot serve what its
/// configuration asks does not start.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Invalid(format!("metrics.listen {addr}: {e}")))
}

/// Serves connections until shutdown.
pub async fn serve(listener: TcpListener, endpoint: Arc<Endpoint>, mut shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics endpoint listening");
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "metrics: accept failed");
                if shutdown.sleep(Duration::from_millis(100)).await {
                    return;
                }
                continue;
            }
        };
        // Over the limit, the connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            endpoint.handle(stream).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        let p = |s: &str| parse(s.as_bytes());
        assert_eq!(
            p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            p("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(p("GET /healthz HTTP/1.1\r\n\r\n"), Request::Healthz);
        assert_eq!(p("GET /readyz HTTP/1.1\n\n"), Request::Readyz);
        assert_eq!(p("GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("GET /metrics/x HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            p("POST /metrics HTTP/1.1\r\n\r\n"),
            Request::MethodNotAllowed
        );
        assert_eq!(
            p("HEAD /healthz HTTP/1.1\r\n\r\n"),
            Request::MethodNotAllowed
        );
        assert_eq!(p("GET /metrics\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET metrics HTTP/1.1\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET  /metrics HTTP/1.1\r\n\r\n"), Request::Bad);
        assert_eq!(parse(b"GET /\xff HTTP/1.1\r\n\r\n"), Request::Bad);
        assert_eq!(p(""), Request::Bad);
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let r = Response::text(405, "only GET\n").bytes();
        assert_eq!(
            String::from_utf8(r).expect("text"),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 9\r\nAllow: GET\r\nConnection: close\r\n\r\nonly GET\n"
        );
    }

    #[tokio::test]
    async fn a_head_is_read_to_its_blank_line_within_limits() {
        let mut r: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nbody";
        let head = read_head(&mut r, 64, READ_TIMEOUT).await.expect("a head");
        assert_eq!(head, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");

        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(5000));
        let mut r = big.as_bytes();
        assert_eq!(
            read_head(&mut r, 1024, READ_TIMEOUT).await,
            Err(HeadError::TooLarge)
        );

        let mut r: &[u8] = b"GET /healthz HTTP/1.1\r\n";
        assert_eq!(
            read_head(&mut r, 1024, READ_TIMEOUT).await,
            Err(HeadError::Gone)
        );
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_dropped_after_the_timeout() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let started = Instant::now();
        let r = read_head(&mut server, 1024, Duration::from_millis(200)).await;
        assert_eq!(r, Err(HeadError::Gone));
        assert!(started.elapsed() >= Duration::from_millis(200));
        client.write_all(b"late").await.ok();
    }
}
