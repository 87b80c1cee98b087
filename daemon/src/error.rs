//! The library's one error type. Each variant says which edge failed, so the
//! binary can print it and the poller and outbox can decide to retry.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("IMAP {mailbox}: {message}")]
    Imap { mailbox: String, message: String },
    /// The server refused for good what the configuration asks (the login,
    /// the folder): trying again soon cannot help.
    #[error("IMAP {mailbox}: {message}")]
    ImapRefused { mailbox: String, message: String },
    #[error("SMTP: {0}")]
    Smtp(String),
    /// No token now (the endpoint unreachable, a server error): tried again soon.
    #[error("OAuth2 {account}: {message}")]
    OAuth2 { account: String, message: String },
    /// The provider refused the grant (`invalid_grant`, `invalid_client`…):
    /// an admin has to act; asked again only after a long pause.
    #[error("OAuth2 {account}: the provider refused a token: {message}")]
    OAuth2Refused { account: String, message: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the ingest writer has stopped")]
    WriterGone,
}

impl Error {
    pub fn imap(mailbox: &str, err: impl std::fmt::Display) -> Error {
        Error::Imap {
            mailbox: mailbox.to_string(),
            message: err.to_string(),
        }
    }

    pub fn imap_refused(mailbox: &str, err: impl std::fmt::Display) -> Error {
        Error::ImapRefused {
            mailbox: mailbox.to_string(),
            message: err.to_string(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<crate::domain::render::RenderError> for Error {
    fn from(e: crate::domain::render::RenderError) -> Error {
        Error::Invalid(e.0)
    }
}
