//! The secret reply tokens are signed with (`token_secret_file`): read,
//! or created on first start. Its own module because the daemon, the plugin
//! dispatcher and the commands all need it, below `app`.

use tracing::info;

use crate::domain::token::TokenKey;
use crate::error::{Error, Result};

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
