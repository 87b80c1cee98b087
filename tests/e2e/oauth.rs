//! XOAUTH2 for real: a private Dovecot whose passdb is its own `oauth2`
//! driver, asking the token introspection endpoint this test runs on
//! loopback, for IMAP and for submission (which relays to the stack's
//! OpenSMTPD). The test's endpoint issues short-lived access tokens and
//! refresh tokens it can revoke.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::both_backends;
use crate::harness::*;

const CLIENT_ID: &str = "helpdesk-test";
const CLIENT_SECRET: &str = "s3cret-of-the-app";

#[derive(Default)]
struct Provider {
    user: String,
    lifetime: Duration,
    /// access token -> expiry
    access: HashMap<String, Instant>,
    refresh: HashSet<String>,
    next: u64,
    refresh_grants: u32,
    client_grants: u32,
    device_grants: u32,
    /// authorization code -> (PKCE challenge, redirect URI)
    codes: HashMap<String, (String, String)>,
    introspections: u32,
    refused: u32,
}

impl Provider {
    fn token(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}{}x{}", std::process::id(), self.next)
    }

    fn access_token(&mut self) -> String {
        let t = self.token("at");
        self.access
            .insert(t.clone(), Instant::now() + self.lifetime);
        t
    }

    fn refresh_token(&mut self) -> String {
        let t = self.token("rt");
        self.refresh.insert(t.clone());
        t
    }

    /// What the endpoint answers to `path` with this form: (status, JSON).
    fn answer(&mut self, path: &str, form: &HashMap<String, String>) -> (u16, String) {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        match path {
            "/introspect" => {
                self.introspections += 1;
                let live = self
                    .access
                    .get(get("token"))
                    .is_some_and(|exp| *exp > Instant::now());
                if live {
                    (
                        200,
                        serde_json::json!({"active": true, "username": self.user}).to_string(),
                    )
                } else {
                    (200, r#"{"active":false}"#.into())
                }
            }
            "/device" => (
                200,
                serde_json::json!({
                    "device_code": "dev-1",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "http://127.0.0.1/device",
                    "expires_in": 60,
                    "interval": 1,
                })
                .to_string(),
            ),
            "/token" => {
                if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
                    self.refused += 1;
                    return (401, r#"{"error":"invalid_client"}"#.into());
                }
                let lifetime = self.lifetime.as_secs();
                match get("grant_type") {
                    "client_credentials" => {
                        self.client_grants += 1;
                        let at = self.access_token();
                        (
                            200,
                            serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": lifetime}).to_string(),
                        )
                    }
                    "refresh_token" => {
                        // Rotated at every use, as Microsoft does.
                        if !self.refresh.remove(get("refresh_token")) {
                            self.refused += 1;
                            return (
                                400,
                                r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#.into(),
                            );
                        }
                        self.refresh_grants += 1;
                        let (at, rt) = (self.access_token(), self.refresh_token());
                        (
                            200,
                            serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": lifetime, "refresh_token": rt}).to_string(),
                        )
                    }
                    "authorization_code" => {
                        use base64::Engine;
                        use sha2::Digest;
                        let Some((challenge, redirect)) = self.codes.remove(get("code")) else {
                            return (400, r#"{"error":"invalid_grant"}"#.into());
                        };
                        let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(sha2::Sha256::digest(get("code_verifier").as_bytes()));
                        if verified != challenge || redirect != get("redirect_uri") {
                            return (
                                400,
                                r#"{"error":"invalid_grant","error_description":"PKCE or redirect_uri mismatch"}"#.into(),
                            );
                        }
                        let (at, rt) = (self.access_token(), self.refresh_token());
                        (
                            200,
                            serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": lifetime, "refresh_token": rt}).to_string(),
                        )
                    }
                    "urn:ietf:params:oauth:grant-type:device_code" => {
                        self.device_grants += 1;
                        if self.device_grants == 1 {
                            return (400, r#"{"error":"authorization_pending"}"#.into());
                        }
                        let (at, rt) = (self.access_token(), self.refresh_token());
                        (
                            200,
                            serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": lifetime, "refresh_token": rt}).to_string(),
                        )
                    }
                    _ => (400, r#"{"error":"unsupported_grant_type"}"#.into()),
                }
            }
            _ => (404, r#"{"error":"not_found"}"#.into()),
        }
    }

    /// Every refresh token and access token stops working.
    fn revoke_all(&mut self) {
        self.refresh.clear();
        self.access.clear();
    }
}

/// The token, device and introspection endpoints on a loopback port.
struct TokenServer {
    url: String,
    provider: Arc<Mutex<Provider>>,
}

impl TokenServer {
    async fn start(lifetime: Duration) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let provider = Arc::new(Mutex::new(Provider {
            lifetime,
            ..Default::default()
        }));
        let p = provider.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &p).await;
                });
            }
        });
        TokenServer { url, provider }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Provider) -> T) -> T {
        f(&mut self.provider.lock().expect("provider"))
    }
}

/// One request per connection, answered with `Connection: close`.
async fn serve(mut stream: TcpStream, p: &Mutex<Provider>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect();
    let (status, json) = p.lock().expect("provider").answer(&path, &form);
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// The endpoint's own form decoding, apart from the daemon's, so that a
/// bug in one is not mirrored by the other.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Dovecot of the stack's users whose logins are tokens of `server`;
/// stopped when dropped.
struct OAuthDovecot {
    dir: PathBuf,
    imap: u16,
    submission: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl OAuthDovecot {
    fn start(server: &TokenServer) -> OAuthDovecot {
        stack();
        let dir = PathBuf::from(format!("/tmp/{}", unique("hd-oauth-")));
        let (imap, submission) = (free_port(), free_port());
        mailstack(&[
            "oauth-start",
            &dir.display().to_string(),
            &imap.to_string(),
            &submission.to_string(),
            &format!("{}/introspect", server.url),
        ]);
        OAuthDovecot {
            dir,
            imap,
            submission,
        }
    }

    /// Ends every session of `user` (IMAP and submission), as a server
    /// restart or an idle timeout would: the next login needs a token.
    fn kick(&self, user: &str) {
        let out = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .args(["kick", user])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("doveadm kick");
        // Exit status 68: nobody was logged in.
        assert!(
            out.status.success() || out.status.code() == Some(68),
            "doveadm kick: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OAuthDovecot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .args(["dovecot-stop", &self.dir.display().to_string()])
            .stdin(std::process::Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A desk whose mailbox (account `imap_account`) and SMTP (account
/// `smtp_account`) log in with XOAUTH2 at `dovecot`, as the desk's user;
/// `accounts` is the `[[oauth2]]` text.
async fn oauth_desk(
    backend: Backend,
    server: &TokenServer,
    dovecot: &OAuthDovecot,
    accounts: &str,
    (imap_account, smtp_account): (&str, &str),
    desk_extra: &str,
) -> Desk {
    let desk = Desk::with(
        backend,
        DeskOptions {
            imap_port: dovecot.imap,
            smtp_port: dovecot.submission,
            retry_initial_secs: 2,
            ..Default::default()
        },
    )
    .await;
    server.with(|p| p.user = desk.user.clone());
    std::fs::write(desk.dir.path().join("client-secret"), CLIENT_SECRET).expect("secret");
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    let cfg = cfg
        .replacen(
            "password_file = \"imap-password\"",
            &format!("auth = \"oauth2\"\noauth2 = \"{imap_account}\""),
            1,
        )
        .replacen(
            "[smtp]\n",
            &format!(
                "[smtp]\nauth = \"oauth2\"\noauth2 = \"{smtp_account}\"\nuser = \"{}\"\n",
                desk.user
            ),
            1,
        )
        .replacen(
            &format!("tag = \"{TAG}\"\n"),
            &format!("tag = \"{TAG}\"\n{desk_extra}\n"),
            1,
        );
    std::fs::write(&desk.config, format!("{cfg}\n{accounts}\n")).expect("config");
    desk
}

fn account(name: &str, flow: &str, server: &TokenServer) -> String {
    let refresh = if flow == "refresh_token" {
        format!(
            "refresh_token_file = \"{name}.refresh\"\ndevice_authorization_url = \"{}/device\"\n",
            server.url
        )
    } else {
        String::new()
    };
    format!(
        "[[oauth2]]\nname = \"{name}\"\nflow = \"{flow}\"\ntoken_url = \"{url}/token\"\nclient_id = \"{CLIENT_ID}\"\n\
client_secret_file = \"client-secret\"\nscopes = [\"mail\"]\n{refresh}",
        url = server.url
    )
}

async fn outbox_rows(desk: &Desk, kind: &str) -> Vec<(String, i64)> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(&desk.db.url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT status, attempts FROM outbox WHERE kind = '{kind}' ORDER BY id"),
        ))
        .await
        .expect("outbox rows");
    let out = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "status").expect("status"),
                i64::from(r.try_get::<i32>("", "attempts").expect("attempts")),
            )
        })
        .collect();
    let _ = db.close().await;
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

both_backends!(expiring_tokens_are_refreshed, super::expiring_tokens_case);

/// Tokens live 6 s. Mail flows in (IMAP, refresh_token flow, the refresh
/// token rotated at every use) and out (submission, client_credentials);
/// after the tokens expired and the sessions ended, new logins get new
/// tokens and the next mail flows both ways too. Then tokens of 2 minutes
/// are revoked at the provider: IMAP and SMTP each get one fresh token
/// after the server's refusal, and mail flows on.
async fn expiring_tokens_case(backend: Backend) {
    let server = TokenServer::start(Duration::from_secs(6)).await;
    let dovecot = OAuthDovecot::start(&server);
    let accounts = format!(
        "{}\n{}",
        account("mailbox", "refresh_token", &server),
        account("smtp", "client_credentials", &server)
    );
    let desk = oauth_desk(
        backend,
        &server,
        &dovecot,
        &accounts,
        ("mailbox", "smtp"),
        "",
    )
    .await;
    let user = desk.user.clone();
    let refresh_file = desk.dir.path().join("mailbox.refresh");
    let first_refresh = server.with(|p| p.refresh_token());
    std::fs::write(&refresh_file, &first_refresh).expect("refresh token");

    let check = desk.cli(&["check"]);
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("oauth2 mailbox") && l.contains("expires")),
        "{check}"
    );
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("oauth2 smtp") && l.contains("expires")),
        "{check}"
    );
    assert!(check.contains("(XOAUTH2)"), "{check}");

    let _daemon = desk.spawn();
    let customer = add_user(&unique("cust"));
    desk.send_from(
        &customer,
        "Printer on fire",
        &format!("{}@client.test", unique("m")),
        "",
        "Help.",
    )
    .await;
    let acks = wait_for_messages(
        &customer.replace("@example.test", ""),
        "INBOX",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(acks.len(), 1, "no acknowledgement:\n{}", desk.daemon_log());
    let before = server.with(|p| (p.refresh_grants, p.client_grants));

    let mail = async |n: usize, subject: &str| {
        tokio::time::sleep(Duration::from_secs(1)).await;
        dovecot.kick(&user);
        desk.send_from(
            &customer,
            subject,
            &format!("{}@client.test", unique("m")),
            "",
            "Help.",
        )
        .await;
        let acks = wait_for_messages(
            &customer.replace("@example.test", ""),
            "INBOX",
            n,
            Duration::from_secs(40),
        )
        .await;
        assert_eq!(
            acks.len(),
            n,
            "mail {n} did not flow:\n{}",
            desk.daemon_log()
        );
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    mail(2, "Scanner on fire too").await;
    let after = server.with(|p| (p.refresh_grants, p.client_grants));
    assert!(
        after.0 > before.0,
        "no refresh after expiry: {before:?} -> {after:?}"
    );
    assert!(
        after.1 > before.1,
        "no new SMTP token after expiry: {before:?} -> {after:?}"
    );

    // Tokens the server refuses long before their expiry (revoked, a
    // restarted provider): each login gets one fresh token and goes on.
    // First tokens of 2 minutes, once the 6-second ones have expired.
    server.with(|p| p.lifetime = Duration::from_secs(120));
    tokio::time::sleep(Duration::from_secs(7)).await;
    mail(3, "Plotter too").await;
    server.with(|p| p.access.clear());
    mail(4, "Beamer as well").await;
    let log = desk.daemon_log();
    assert!(
        log.contains("the server refused the access token; asking for a fresh one"),
        "{log}"
    );
    assert!(
        log.contains("the SMTP server refused the access token; asking for a fresh one"),
        "{log}"
    );

    let stored = std::fs::read_to_string(&refresh_file).expect("refresh file");
    assert_ne!(
        stored.trim(),
        first_refresh,
        "the rotated refresh token was not stored"
    );
    assert!(
        server.with(|p| p.refresh.contains(stored.trim())),
        "the stored refresh token is not the live one"
    );
    assert_eq!(mode(&refresh_file), 0o600);
    let log = desk.daemon_log();
    assert!(
        log.lines()
            .any(|l| l.contains("oauth2 token obtained") && l.contains("mailbox")),
        "{log}"
    );
    desk.finish().await;
}

both_backends!(a_revoked_refresh_token_loses_nothing, super::revoked_case);

/// The provider revokes the refresh token (and its access tokens): the
/// daemon says why once, in its log, in `check` and in one mail to the
/// admin; it keeps running, the new mail stays in the INBOX and the admin
/// mail in the outbox (no attempt counted); after `helpdeskd oauth login`
/// (the device flow against the test's endpoint) the mail flows, without
/// waiting for the hour-long retry.
async fn revoked_case(backend: Backend) {
    let server = TokenServer::start(Duration::from_secs(120)).await;
    let dovecot = OAuthDovecot::start(&server);
    let admin = add_user(&unique("admin"));
    let accounts = format!(
        "{}refused_retry_secs = 3600\n",
        account("desk", "refresh_token", &server)
    );
    let desk = oauth_desk(
        backend,
        &server,
        &dovecot,
        &accounts,
        ("desk", "desk"),
        &format!("admin_address = \"{admin}\""),
    )
    .await;
    let refresh_file = desk.dir.path().join("desk.refresh");
    std::fs::write(&refresh_file, server.with(|p| p.refresh_token())).expect("refresh token");
    let mut daemon = desk.spawn();
    let customer = add_user(&unique("cust"));
    let customer_user = customer.replace("@example.test", "");
    desk.send_from(
        &customer,
        "VPN down",
        &format!("{}@client.test", unique("m")),
        "",
        "Help.",
    )
    .await;
    let acks = wait_for_messages(&customer_user, "INBOX", 1, Duration::from_secs(30)).await;
    assert_eq!(acks.len(), 1, "no acknowledgement:\n{}", desk.daemon_log());

    server.with(|p| p.revoke_all());
    dovecot.kick(&desk.user);
    desk.send_from(
        &customer,
        "Mail down too",
        &format!("{}@client.test", unique("m")),
        "",
        "Again.",
    )
    .await;
    let refused_line = "the OAuth2 provider refused a token";
    assert!(
        eventually(Duration::from_secs(30), async || desk
            .daemon_log()
            .contains(refused_line))
        .await,
        "no refusal logged:\n{}",
        desk.daemon_log()
    );
    // Two rechecks of the poller later: still one line, still running.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let log = desk.daemon_log();
    assert_eq!(log.matches(refused_line).count(), 1, "{log}");
    assert!(
        log.contains("invalid_grant: Token has been expired or revoked."),
        "{log}"
    );
    assert!(
        daemon.try_wait().expect("wait").is_none(),
        "the daemon exited:\n{log}"
    );

    let out = desk.cli_output(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL")
            && l.contains("oauth2 desk")
            && l.contains("invalid_grant")),
        "{stdout}"
    );
    assert_eq!(desk.tickets().len(), 1);
    let inbox = messages(&desk.user, "INBOX").await;
    assert!(
        inbox.iter().any(|m| m.contains("Subject: Mail down too")),
        "the new mail left the INBOX: {inbox:?}"
    );
    assert_eq!(
        outbox_rows(&desk, "admin").await,
        vec![("pending".to_string(), 0)],
        "the admin mail waits, no attempt counted"
    );

    let login = desk.cli(&["oauth", "login", "desk"]);
    assert!(
        login.contains("WDJB-MJHT") && login.contains("http://127.0.0.1/device"),
        "{login}"
    );
    assert_eq!(mode(&refresh_file), 0o600);
    assert!(
        server.with(|p| p
            .refresh
            .contains(std::fs::read_to_string(&refresh_file).expect("file").trim())),
        "the login stored no live refresh token"
    );

    let acks = wait_for_messages(&customer_user, "INBOX", 2, Duration::from_secs(40)).await;
    assert_eq!(
        acks.len(),
        2,
        "the waiting mail did not flow:\n{}",
        desk.daemon_log()
    );
    assert_eq!(desk.tickets().len(), 2);
    let admin_mail = wait_for_messages(
        &admin.replace("@example.test", ""),
        "INBOX",
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(admin_mail.len(), 1, "{}", desk.daemon_log());
    assert!(
        body(&admin_mail[0]).contains("invalid_grant"),
        "{}",
        admin_mail[0]
    );
    assert!(
        desk.daemon_log()
            .contains("oauth2 tokens are granted again")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        wait_for_messages(
            &admin.replace("@example.test", ""),
            "INBOX",
            2,
            Duration::from_secs(1)
        )
        .await
        .len(),
        1,
        "the admin was told twice"
    );
    desk.finish().await;
}

/// `helpdeskd oauth login` without a device flow (Google and the mail
/// scope): the command prints the authorization URL and listens on
/// loopback; the test plays the browser coming back with the code (after a
/// favicon request), and the provider checks the PKCE verifier.
#[tokio::test]
async fn the_loopback_login_stores_a_refresh_token() {
    let server = TokenServer::start(Duration::from_secs(60)).await;
    let desk = Desk::new(Backend::Sqlite).await;
    std::fs::write(desk.dir.path().join("client-secret"), CLIENT_SECRET).expect("secret");
    let account = format!(
        "[[oauth2]]\nname = \"google\"\nflow = \"refresh_token\"\ntoken_url = \"{url}/token\"\n\
authorization_url = \"{url}/authorize\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"client-secret\"\n\
scopes = [\"https://mail.google.com/\"]\nrefresh_token_file = \"google.refresh\"\n",
        url = server.url
    );
    let cfg = std::fs::read_to_string(&desk.config).expect("config");
    std::fs::write(&desk.config, format!("{cfg}\n{account}")).expect("config");
    let refresh_file = desk.dir.path().join("google.refresh");

    let mut login = desk
        .command()
        .args(["oauth", "login", "google"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("oauth login");
    let stdout = login.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the login prints the URL");
        if line.contains("/authorize?") {
            break line.trim().to_string();
        }
    };
    let query: HashMap<String, String> = url
        .split_once('?')
        .expect("a query")
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["scope"], "https://mail.google.com/");
    assert_eq!(query["code_challenge_method"], "S256");
    let redirect = query["redirect_uri"].clone();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    server.with(|p| {
        p.codes.insert(
            "code-7".into(),
            (query["code_challenge"].clone(), redirect.clone()),
        )
    });

    let browser = |path: String| {
        let authority = redirect
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        async move {
            let mut s = TcpStream::connect(&authority)
                .await
                .expect("the login listens");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
                .await
                .expect("request");
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.expect("answer");
            answer
        }
    };
    assert!(
        browser("/favicon.ico".into())
            .await
            .starts_with("HTTP/1.1 404")
    );
    let answer = browser(format!("/?code=code-7&state={}", query["state"])).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = tokio::task::spawn_blocking(move || login.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "oauth login failed");
    let stored = std::fs::read_to_string(&refresh_file).expect("refresh file");
    assert!(
        server.with(|p| p.refresh.contains(stored.trim())),
        "not the refresh token the provider granted: {stored:?}"
    );
    assert_eq!(mode(&refresh_file), 0o600);
    desk.finish().await;
}
