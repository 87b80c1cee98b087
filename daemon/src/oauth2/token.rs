//! Access tokens and what the token endpoint answers (RFC 6749 §5), and the
//! refresh token file. Pure, except the file functions at the end.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::config::Secret;

/// The lifetime assumed when the endpoint names none (`expires_in` is only
/// RECOMMENDED); the providers' own default.
const DEFAULT_LIFETIME_SECS: i64 = 3600;
/// A token is replaced this long before it expires, or a quarter of its
/// lifetime when that is shorter.
const MAX_MARGIN_SECS: i64 = 60;

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// A token issued at `now` with the endpoint's `expires_in` (seconds).
    pub fn new(secret: Secret, now: DateTime<Utc>, expires_in: Option<i64>) -> AccessToken {
        let secs = expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_LIFETIME_SECS);
        AccessToken {
            secret,
            issued_at: now,
            expires_at: now + Duration::seconds(secs),
        }
    }

    /// How long before its expiry the token is replaced.
    pub fn margin(&self) -> Duration {
        let quarter = (self.expires_at - self.issued_at) / 4;
        quarter.min(Duration::seconds(MAX_MARGIN_SECS))
    }

    /// Whether the token may still be handed out at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        now + self.margin() < self.expires_at
    }
}

/// A successful token response.
#[derive(Debug, Deserialize)]
pub struct Granted {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    /// A number, or a string of digits from some providers.
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl Granted {
    pub fn expires_in(&self) -> Option<i64> {
        match self.expires_in.as_ref()? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// What a token (or device authorization) endpoint said.
#[derive(Debug)]
pub enum Answer {
    Granted(Granted),
    /// An RFC 6749 §5.2 error: `error` and `error_description`.
    Error {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Anything else: an HTML error page, a proxy's answer, bad JSON.
    Unreadable {
        status: u16,
        text: String,
    },
}

impl Answer {
    pub fn read(status: u16, body: &str) -> Answer {
        if (200..300).contains(&status)
            && let Ok(g) = serde_json::from_str::<Granted>(body)
            && !g.access_token.is_empty()
        {
            return Answer::Granted(g);
        }
        if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
            return Answer::Error {
                status,
                error: e.error,
                description: e.error_description.filter(|d| !d.trim().is_empty()),
            };
        }
        let text: String = body.trim().chars().take(200).collect();
        Answer::Unreadable { status, text }
    }
}

/// Whether an endpoint's `error` says asking again the same way cannot
/// help: the grant, the client or the scope is refused.
pub fn refused_for_good(status: u16, error: &str) -> bool {
    status < 500
        && !matches!(
            error,
            "temporarily_unavailable" | "server_error" | "authorization_pending" | "slow_down"
        )
}

/// `invalid_grant: Token has been expired or revoked.`
pub fn reason(error: &str, description: Option<&str>) -> String {
    match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_string(),
    }
}

/// The SASL XOAUTH2 initial response (before base64), as Google and
/// Microsoft document it.
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// `s` for a URL query: unreserved characters as they are, the rest `%XX`.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query value as written: `%XX` and `+` (a space) decoded.
pub fn percent_decode(s: &str) -> String {
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

/// The refresh token kept in `path` (surrounding whitespace removed).
pub fn read_refresh_token(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(token.to_string())
}

/// Replaces `path` with `token`, mode 0600 and the old file's owner,
/// atomically: a reader sees the old token or the new one, never a part.
pub fn write_refresh_token(path: &Path, token: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        // `helpdeskd check` or `oauth login` run as root must not leave the
        // daemon's user a file it cannot read.
        if let Ok(old) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::fchown(&f, Some(old.uid()), Some(old.gid()));
        }
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("a valid instant")
    }

    #[test]
    fn an_hour_token_is_replaced_a_minute_before_it_expires() {
        let t = AccessToken::new(Secret::new("t"), at(0), Some(3600));
        assert_eq!(t.expires_at, at(3600));
        assert_eq!(t.margin(), Duration::seconds(60));
        assert!(t.usable_at(at(3539)));
        assert!(!t.usable_at(at(3540)));
        assert!(!t.usable_at(at(4000)));
    }

    #[test]
    fn a_short_token_keeps_a_quarter_of_its_life_as_margin() {
        let t = AccessToken::new(Secret::new("t"), at(0), Some(8));
        assert_eq!(t.margin(), Duration::seconds(2));
        assert!(t.usable_at(at(5)));
        assert!(!t.usable_at(at(6)));
    }

    #[test]
    fn no_or_nonsense_lifetime_means_an_hour() {
        for e in [None, Some(0), Some(-5)] {
            let t = AccessToken::new(Secret::new("t"), at(0), e);
            assert_eq!(t.expires_at, at(3600), "{e:?}");
        }
    }

    #[test]
    fn answers_are_read_as_grants_errors_or_unreadable() {
        match Answer::read(
            200,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":"3599","refresh_token":"r2"}"#,
        ) {
            Answer::Granted(g) => {
                assert_eq!(g.access_token, "abc");
                assert_eq!(g.expires_in(), Some(3599));
                assert_eq!(g.refresh_token.as_deref(), Some("r2"));
            }
            other => panic!("{other:?}"),
        }
        match Answer::read(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ) {
            Answer::Error {
                status,
                error,
                description,
            } => {
                assert_eq!(status, 400);
                assert_eq!(
                    reason(&error, description.as_deref()),
                    "invalid_grant: Token has been expired or revoked."
                );
                assert!(refused_for_good(status, &error));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Answer::read(502, "<html>Bad Gateway</html>"),
            Answer::Unreadable { status: 502, .. }
        ));
        assert!(matches!(
            Answer::read(200, r#"{"access_token":""}"#),
            Answer::Unreadable { .. }
        ));
    }

    #[test]
    fn only_refusals_of_the_grant_are_for_good() {
        assert!(refused_for_good(401, "invalid_client"));
        assert!(refused_for_good(400, "invalid_scope"));
        assert!(!refused_for_good(400, "authorization_pending"));
        assert!(!refused_for_good(503, "temporarily_unavailable"));
        assert!(!refused_for_good(500, "invalid_grant"));
    }

    #[test]
    fn query_values_round_trip() {
        let s = "https://mail.google.com/ a+b%";
        assert_eq!(
            percent_encode(s),
            "https%3A%2F%2Fmail.google.com%2F%20a%2Bb%25"
        );
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }

    #[test]
    fn the_xoauth2_string_is_the_documented_one() {
        assert_eq!(
            xoauth2("support@example.com", "ya29.abc"),
            "user=support@example.com\u{1}auth=Bearer ya29.abc\u{1}\u{1}"
        );
    }

    #[test]
    fn the_refresh_token_file_is_replaced_whole_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_refresh_token(&path, "new-token").expect("write token");
        assert_eq!(read_refresh_token(&path).expect("read"), "new-token");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("refresh")]);
        std::fs::write(&path, "  \n").expect("write");
        assert!(read_refresh_token(&path).is_err());
    }

    #[test]
    fn the_refresh_token_file_keeps_its_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").expect("write");
        // Another owner can only be set up as root (as the tests run here).
        if std::os::unix::fs::chown(&path, Some(8), Some(8)).is_err() {
            eprintln!("SKIPPED: not root, cannot give the file another owner");
            return;
        }
        write_refresh_token(&path, "new").expect("write token");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (8, 8));
    }
}
