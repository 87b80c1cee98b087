//! The grants: client credentials (RFC 6749 §4.4), refresh token (§6) and
//! the device authorization grant of `helpdeskd oauth login` (RFC 8628).
//! The client authenticates with `client_secret_post` (the secret in the
//! form), which Microsoft and Google both take.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::http::{Reply, post_form};
use super::token::{AccessToken, Answer, reason, refused_for_good};
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
}
