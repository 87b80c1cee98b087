//! One HTTPS form POST to a token endpoint: ureq (rustls with ring, the
//! web PKI roots) on a blocking thread. Token requests are rare (one an
//! hour per account), so a blocking client costs nothing and keeps hyper
//! out of the build.

use std::time::Duration;

/// The status and body of an answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// The most of an answer that is read: token answers are a few kB.
const MAX_BODY: u64 = 1024 * 1024;

/// POSTs `form` as `application/x-www-form-urlencoded`; an error is a
/// transport failure (no answer), never an HTTP status.
pub async fn post_form(
    url: &str,
    form: Vec<(&'static str, String)>,
    timeout: Duration,
) -> Result<Reply, String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("helpdeskd/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut resp = agent
            .post(&url)
            .header("Accept", "application/json")
            .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
        Ok(Reply { status, body })
    })
    .await
    .map_err(|e| format!("the HTTP task failed: {e}"))?
}
