//! Application errors. Each variant says in French what the user can do about it; internal
//! causes are kept for the logs and never shown.

use guichet_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Each input is well formed, but together they are not (a project cost other than the
    /// sum of its expense lines, lines whose sum exceeds the plausibility ceiling): 422 in the
    /// API, whose document describes each field, not their sum.
    #[error("{0}")]
    Inconsistent(String),
    #[error("accès refusé")]
    Forbidden,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("trop de tentatives : réessayez après {until}")]
    TooManyAttempts {
        until: String,
        retry_after_secs: i64,
    },
    #[error("ressource indisponible : {0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(StorageError),
    #[error("erreur interne")]
    Internal(#[from] anyhow::Error),
}

/// Constraint violations and stale writes become conflicts with their French message wherever
/// they happen (409, not a 500); every other storage failure stays internal.
impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(v) | StorageError::ForeignKey(v) => {
                AppError::Conflict(v.message.to_string())
            }
            StorageError::Stale(_) => AppError::Conflict(e.to_string()),
            e => AppError::Storage(e),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Storage(StorageError::from(e))
    }
}

pub type AppResult<T> = Result<T, AppError>;
