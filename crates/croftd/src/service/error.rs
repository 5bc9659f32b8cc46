//! The one error type of every service, and the kinds clients see.
//!
//! Each variant says what went wrong in words a user can act on, and
//! chains its cause as a `source` (see [`crate::error_chain`]). What HTTP
//! status an error gets follows from its [`ErrorKind`] alone, in
//! `http/error.rs`; docs/errors-and-logging.md states the rules.

use crate::backend::BackendError;
use crate::service::images::catalog::ImageError;
use crate::store::StoreError;
use croft_host::storage::StorageError;
use thiserror::Error;

/// What kind of failure an error is, for whoever answers the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; asking again the same way fails again.
    Invalid,
    /// What the request names does not exist.
    NotFound,
    /// The request clashes with the current state (a name taken, a VPS
    /// running); it may succeed once that state changes.
    Conflict,
    /// The host lacks a resource for now; nothing changed, try later.
    Unavailable,
    /// croft or its host failed; not the client's to fix.
    Internal,
    /// The caller did not prove who it is (no, a wrong, an expired or a
    /// revoked credential).
    Unauthenticated,
    /// The caller is known but its role may not do this.
    Forbidden,
    /// The caller failed to authenticate too often; it must wait.
    TooManyAttempts,
}

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyAttempts(String),
    #[error("{what}")]
    Host {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Task(#[from] crate::TaskFailed),
    /// A job stopped at a step because a cancel was asked for.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Invalid(_) => ErrorKind::Invalid,
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ServiceError::Forbidden(_) => ErrorKind::Forbidden,
            ServiceError::TooManyAttempts(_) => ErrorKind::TooManyAttempts,
            ServiceError::Cancelled => ErrorKind::Conflict,
            ServiceError::Store(StoreError::Taken(_) | StoreError::InUse(_) | StoreError::Quota(_)) => {
                ErrorKind::Conflict
            }
            ServiceError::Store(StoreError::LimitRequired(_)) => ErrorKind::Invalid,
            ServiceError::Store(StoreError::Missing(_)) => ErrorKind::NotFound,
            ServiceError::Image(ImageError::Unknown { .. }) => ErrorKind::NotFound,
            ServiceError::Backend(e) => e.kind(),
            ServiceError::Storage(StorageError::NoSpace { .. }) => ErrorKind::Conflict,
            ServiceError::Host { .. }
            | ServiceError::Store(_)
            | ServiceError::Storage(_)
            | ServiceError::Image(_)
            | ServiceError::Task(_) => ErrorKind::Internal,
        }
    }

    /// A failure of the host (a file, a tool) doing `what`.
    pub fn host(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        ServiceError::Host {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// A bad value the client gave, with why, as one line.
    pub fn invalid(e: &dyn std::error::Error) -> Self {
        ServiceError::Invalid(crate::error_chain(e))
    }
}

/// `map_err` for a host operation's io::Error.
pub fn host_err<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> ServiceError {
    let what = what.into();
    move |e| ServiceError::host(what, e)
}
