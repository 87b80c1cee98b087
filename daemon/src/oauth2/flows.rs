//! The grants: client credentials (RFC 6749 §4.4), refresh token (§6), and
//! for `helpdeskd oauth login` the device authorization grant (RFC 8628) or
//! the authorization code with a loopback redirect and PKCE (RFC 8252,
//! RFC 7636).
//! The client authenticates with `client_secret_post` (the secret in the
//! form), which Microsoft and Google both take.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use base64::Engine;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::{Reply, post_form};
use super::token::{AccessToken, Answer, percent_decode, percent_encode, reason, refused_for_good};
use crate::config::{Flow, OAuth2Account, Secret};

const TIMEOUT: Duration = Duration::from_secs(30);
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A new access token, and the refresh token when the provider rotated it.
#[derive(Debug)]
pub struct Grant {
    pub token: AccessToken,
    pub refresh_token: Option<String>,
}

#[derive(Debug)]
pub enum FlowError {
    /// The provider refused: an admin has to act (the provider's reason).
    Refused(String),
    /// No usable answer: tried again soon.
    Failed(String),
}

/// The form of a token request by the account's flow.
pub fn token_form(acc: &OAuth2Account, refresh_token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut form = match (acc.flow, refresh_token) {
        (Flow::RefreshToken, Some(rt)) => vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.to_string()),
        ],
        _ => vec![("grant_type", "client_credentials".to_string())],
    };
    client_auth(acc, &mut form);
    if !acc.scopes.is_empty() {
        form.push(("scope", acc.scopes.join(" ")));
    }
    form
}

fn client_auth(acc: &OAuth2Account, form: &mut Vec<(&'static str, String)>) {
    form.push(("client_id", acc.client_id.clone()));
    if let Some(secret) = &acc.client_secret {
        form.push(("client_secret", secret.expose().to_string()));
    }
}

/// Reads a token endpoint's answer into a grant or the reason there is none.
pub fn grant_of(reply: &Reply, now: DateTime<Utc>) -> Result<Grant, FlowError> {
    match Answer::read(reply.status, &reply.body) {
        Answer::Granted(g) => Ok(Grant {
            token: AccessToken::new(Secret::new(g.access_token.clone()), now, g.expires_in()),
            refresh_token: g.refresh_token.filter(|r| !r.is_empty()),
        }),
        Answer::Error {
            status,
            error,
            description,
        } => {
            let why = reason(&error, description.as_deref());
            if refused_for_good(status, &error) {
                Err(FlowError::Refused(why))
            } else {
                Err(FlowError::Failed(format!("HTTP {status}: {why}")))
            }
        }
        Answer::Unreadable { status, text } => Err(FlowError::Failed(format!(
            "HTTP {status} without a token: {text}"
        ))),
    }
}

/// One token request by the account's flow (`refresh_token`: the current
/// one, for the refresh_token flow).
pub async fn request_token(
    acc: &OAuth2Account,
    refresh_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Grant, FlowError> {
    let reply = post_form(&acc.token_url, token_form(acc, refresh_token), TIMEOUT)
        .await
        .map_err(FlowError::Failed)?;
    grant_of(&reply, now)
}

/// The device authorization endpoint's answer (Google says
/// `verification_url`).
#[derive(Debug, Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub interval: Option<u64>,
}

/// Starts the device flow: the code the person types at the URL.
pub async fn device_authorize(acc: &OAuth2Account) -> Result<DeviceCode, FlowError> {
    let url = acc.device_authorization_url.as_deref().ok_or_else(|| {
        FlowError::Refused(format!(
            "[[oauth2]] {:?} has no device_authorization_url",
            acc.name
        ))
    })?;
    let mut form = Vec::new();
    client_auth(acc, &mut form);
    if !acc.scopes.is_empty() {
        form.push(("scope", acc.scopes.join(" ")));
    }
    let reply = post_form(url, form, TIMEOUT)
        .await
        .map_err(FlowError::Failed)?;
    if (200..300).contains(&reply.status)
        && let Ok(code) = serde_json::from_str::<DeviceCode>(&reply.body)
    {
        return Ok(code);
    }
    match grant_of(&reply, chrono::DateTime::UNIX_EPOCH) {
        Err(e) => Err(e),
        Ok(_) => Err(FlowError::Failed(
            "the device endpoint answered with a token, not a code".into(),
        )),
    }
}

/// Polls the token endpoint until the person approved (or refused, or the
/// code expired), at the pace the provider asks for.
pub async fn device_poll(
    acc: &OAuth2Account,
    code: &DeviceCode,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Grant, FlowError> {
    let mut interval = Duration::from_secs(code.interval.unwrap_or(5).max(1));
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(code.expires_in.unwrap_or(900));
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() > deadline {
            return Err(FlowError::Refused(
                "the code expired before it was approved: run the login again".into(),
            ));
        }
        let mut form = vec![
            ("grant_type", DEVICE_GRANT.to_string()),
            ("device_code", code.device_code.clone()),
        ];
        client_auth(acc, &mut form);
        let reply = match post_form(&acc.token_url, form, TIMEOUT).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(account = acc.name, error = %e, "device flow: token endpoint not reached; polling on");
                continue;
            }
        };
        match Answer::read(reply.status, &reply.body) {
            Answer::Error { error, .. } if error == "authorization_pending" => {}
            Answer::Error { error, .. } if error == "slow_down" => {
                interval += Duration::from_secs(5);
            }
            _ => return grant_of(&reply, now()),
        }
    }
}

/// PKCE's secret and what the authorization request shows of it (S256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn from_random(random: &[u8; 32]) -> Pkce {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let verifier = b64.encode(random);
        let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// The URL the person opens: an authorization code request answered to
/// `redirect_uri`, with `state` and the PKCE challenge. `access_type` and
/// `prompt` make Google grant a refresh token; other providers ignore them.
pub fn authorization_request(
    acc: &OAuth2Account,
    endpoint: &str,
    redirect_uri: &str,
    state: &str,
    pkce: &Pkce,
) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", acc.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", &acc.scopes.join(" ")),
        ("state", state),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", percent_encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{params}")
}

/// What the browser brought to the redirect URI (`GET /?code=…&state=…`):
/// the code, a refusal, or `None` for another request (a favicon).
pub fn redirect_answer(request_line: &str, state: &str) -> Option<Result<String, FlowError>> {
    let target = request_line.split_whitespace().nth(1)?;
    let query = target.split_once('?')?.1;
    let params: std::collections::HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    if let Some(error) = params.get("error") {
        return Some(Err(FlowError::Refused(reason(
            error,
            params.get("error_description").map(String::as_str),
        ))));
    }
    let code = params.get("code")?;
    if params.get("state").map(String::as_str) != Some(state) {
        return Some(Err(FlowError::Refused(
            "the answer's state is not this login's: ignored, run the login again".into(),
        )));
    }
    Some(Ok(code.clone()))
}

/// How long the loopback login waits for the person.
const REDIRECT_WAIT: Duration = Duration::from_secs(600);

/// The loopback redirect login: `show` is given the URL to open; the
/// browser brings the code to `http://127.0.0.1:PORT/`, which is exchanged
/// (with the PKCE verifier) for the tokens.
pub async fn redirect_login(
    acc: &OAuth2Account,
    now: impl Fn() -> DateTime<Utc>,
    show: impl FnOnce(&str),
) -> Result<Grant, FlowError> {
    let endpoint = acc.authorization_url.as_deref().ok_or_else(|| {
        FlowError::Refused(format!(
            "[[oauth2]] {:?} has neither device_authorization_url nor authorization_url",
            acc.name
        ))
    })?;
    let failed = |e: std::io::Error| FlowError::Failed(format!("loopback listener: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(failed)?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/",
        listener.local_addr().map_err(failed)?.port()
    );
    let (mut secret, mut nonce) = ([0u8; 32], [0u8; 16]);
    getrandom::fill(&mut secret)
        .and_then(|()| getrandom::fill(&mut nonce))
        .map_err(|e| FlowError::Failed(format!("no randomness: {e}")))?;
    let pkce = Pkce::from_random(&secret);
    let state: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    show(&authorization_request(
        acc,
        endpoint,
        &redirect_uri,
        &state,
        &pkce,
    ));
    let code = tokio::time::timeout(REDIRECT_WAIT, async {
        loop {
            let (mut stream, _) = listener.accept().await.map_err(failed)?;
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]).to_string();
            let answer = redirect_answer(head.lines().next().unwrap_or(""), &state);
            let (status, text) = match &answer {
                None => ("404 Not Found", "not here"),
                Some(Ok(_)) => ("200 OK", "helpdeskd is logged in; you may close this window."),
                Some(Err(_)) => ("400 Bad Request", "helpdeskd was not logged in; see its output."),
            };
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = stream.shutdown().await;
            if let Some(answer) = answer {
                return answer;
            }
        }
    })
    .await
    .map_err(|_| FlowError::Refused("nobody approved within 10 minutes: run the login again".into()))??;
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pkce.verifier.clone()),
    ];
    client_auth(acc, &mut form);
    let reply = post_form(&acc.token_url, form, TIMEOUT)
        .await
        .map_err(FlowError::Failed)?;
    grant_of(&reply, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(flow: Flow) -> OAuth2Account {
        OAuth2Account {
            name: "m365".into(),
            flow,
            token_url: "https://login.example/token".into(),
            client_id: "cid".into(),
            client_secret: Some(Secret::new("shh")),
            scopes: vec!["a".into(), "b".into()],
            refresh_token_file: None,
            device_authorization_url: None,
            authorization_url: None,
            username: None,
            refused_retry: Duration::from_secs(900),
        }
    }

    #[test]
    fn the_forms_follow_the_flow() {
        let f = token_form(&account(Flow::ClientCredentials), None);
        assert_eq!(
            f,
            vec![
                ("grant_type", "client_credentials".to_string()),
                ("client_id", "cid".to_string()),
                ("client_secret", "shh".to_string()),
                ("scope", "a b".to_string()),
            ]
        );
        let mut acc = account(Flow::RefreshToken);
        acc.client_secret = None;
        acc.scopes.clear();
        assert_eq!(
            token_form(&acc, Some("r1")),
            vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", "r1".to_string()),
                ("client_id", "cid".to_string()),
            ]
        );
    }

    #[test]
    fn a_refused_grant_carries_the_providers_reason() {
        let reply = Reply {
            status: 400,
            body: r#"{"error":"invalid_grant","error_description":"revoked"}"#.into(),
        };
        match grant_of(&reply, DateTime::UNIX_EPOCH) {
            Err(FlowError::Refused(r)) => assert_eq!(r, "invalid_grant: revoked"),
            other => panic!("{other:?}"),
        }
        let reply = Reply {
            status: 503,
            body: "busy".into(),
        };
        assert!(matches!(
            grant_of(&reply, DateTime::UNIX_EPOCH),
            Err(FlowError::Failed(_))
        ));
    }

    #[test]
    fn googles_device_answer_is_read() {
        let code: DeviceCode = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABC-DEF","verification_url":"https://www.google.com/device","expires_in":1800,"interval":5}"#,
        )
        .expect("a device code");
        assert_eq!(code.verification_uri, "https://www.google.com/device");
        assert_eq!(code.interval, Some(5));
    }

    #[test]
    fn pkce_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        let random: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let p = Pkce::from_random(&random);
        assert_eq!(p.verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn the_authorization_request_carries_everything_encoded() {
        let mut acc = account(Flow::RefreshToken);
        acc.scopes = vec!["https://mail.google.com/".into()];
        let pkce = Pkce {
            verifier: "v".into(),
            challenge: "c-_".into(),
        };
        let url = authorization_request(
            &acc,
            "https://accounts.example/auth",
            "http://127.0.0.1:5/",
            "s1",
            &pkce,
        );
        assert_eq!(
            url,
            "https://accounts.example/auth?response_type=code&client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2F\
&scope=https%3A%2F%2Fmail.google.com%2F&state=s1&code_challenge=c-_&code_challenge_method=S256\
&access_type=offline&prompt=consent"
        );
    }

    #[test]
    fn the_redirect_brings_the_code_of_this_login_only() {
        match redirect_answer("GET /?state=s1&code=4%2F0Ab HTTP/1.1", "s1") {
            Some(Ok(code)) => assert_eq!(code, "4/0Ab"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            redirect_answer("GET /?state=evil&code=x HTTP/1.1", "s1"),
            Some(Err(FlowError::Refused(_)))
        ));
        match redirect_answer("GET /?error=access_denied&state=s1 HTTP/1.1", "s1") {
            Some(Err(FlowError::Refused(r))) => assert_eq!(r, "access_denied"),
            other => panic!("{other:?}"),
        }
        assert!(redirect_answer("GET /favicon.ico HTTP/1.1", "s1").is_none());
    }
}
