//! The secret reply tokens are signed with (`token_secret_file`): read,
//! or created on first start, and compared with the one the desk's other
//! daemons use (its fingerprint in `desk_facts`). Its own module because the
//! daemon, the plugin dispatcher and the commands all need it, below `app`.

use std::path::Path;

use chrono::{DateTime, Utc};
use tracing::info;

use crate::domain::token::TokenKey;
use crate::error::{Error, Result};
use crate::store::{Fact, Store};

/// Reads the reply-token secret, creating it (32 random bytes, hex, mode
/// 0600) on first start. Losing it only makes old reply tokens unverifiable:
/// those replies still thread by their headers.
pub fn token_key(path: &std::path::Path) -> Result<TokenKey> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| Error::Invalid(format!("no randomness for the token secret: {e}")))?;
            let hex = crate::ingest::parse::hex(&bytes);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            write_private(path, &hex)?;
            info!(file = %path.display(), "created the reply-token secret");
            hex
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    TokenKey::new(text.trim().as_bytes())
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// The `desk_facts` name of the token secret's fingerprint.
const FACT: &str = "token_secret";

/// How this daemon's token secret compares with the desk's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// The same secret as recorded.
    Same(Fact),
    /// Nothing recorded yet (only `check` sees this; a daemon records it).
    Unrecorded,
    /// Another secret is recorded: replies threaded by one daemon's tokens
    /// would be refused as forged by this one.
    Differs(Fact),
}

impl Agreement {
    /// The refusal a daemon starts with when the secrets differ.
    pub fn refusal(&self, file: &Path) -> Option<String> {
        let Agreement::Differs(f) = self else {
            return None;
        };
        Some(format!(
            "desk.token_secret_file {}: this secret differs from the one the desk's other daemons \
             sign reply tokens with (recorded by {} at {}); staff replies would be refused as forged. \
             Copy that host's file here, or, after a deliberate change of the secret, run \
             `helpdeskd token-secret adopt` once",
            file.display(),
            f.recorded_by,
            f.recorded_at.format("%Y-%m-%d %H:%M UTC"),
        ))
    }
}

/// Compares `key` with the desk's recorded secret, recording it first if
/// none is (`record`); a daemon records, `check` only reads.
pub async fn agree(
    store: &Store,
    key: &TokenKey,
    file: &Path,
    now: DateTime<Utc>,
    record: bool,
) -> Result<Agreement> {
    let mine = key.fingerprint();
    let recorded = match store.fact(FACT).await? {
        None if record => Some(store.record_fact_once(FACT, fact(key, file, now)).await?),
        recorded => recorded,
    };
    Ok(match recorded {
        None => Agreement::Unrecorded,
        Some(f) if f.value == mine => Agreement::Same(f),
        Some(f) => Agreement::Differs(f),
    })
}

/// Makes this host's secret the desk's (after a deliberate change).
pub async fn adopt(store: &Store, key: &TokenKey, file: &Path, now: DateTime<Utc>) -> Result<()> {
    store.replace_fact(FACT, fact(key, file, now)).await
}

fn fact(key: &TokenKey, file: &Path, now: DateTime<Utc>) -> Fact {
    Fact {
        value: key.fingerprint(),
        recorded_by: format!("{} ({})", host_name(), file.display()),
        recorded_at: now,
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "a host".to_string())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_secret_is_created_once_private_and_then_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data").join("token.key");
        token_key(&path).expect("created");
        let first = std::fs::read_to_string(&path).expect("written");
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        token_key(&path).expect("read again");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), first);
    }

    #[test]
    fn an_unreadable_or_short_token_secret_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A folder where the file should be cannot be read, even by root.
        let folder = dir.path().join("token.key");
        std::fs::create_dir(&folder).expect("folder");
        let e = token_key(&folder).expect_err("a folder is no secret");
        assert!(e.to_string().contains(&folder.display().to_string()), "{e}");

        let short = dir.path().join("short.key");
        std::fs::write(&short, "abc\n").expect("write");
        let e = token_key(&short).expect_err("too short");
        let text = e.to_string();
        assert!(text.contains(&short.display().to_string()), "{text}");
        assert!(text.contains("at least 16"), "{text}");
    }
}
