//! Storage errors, with the unique-violation mapping declared once.

use sqlx::error::ErrorKind;

/// Storage failures. Messages are French because operators and users read them; database
/// internals stay in the logs (`source`), never in the message.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("DATABASE_URL invalide : {0}")]
    BadUrl(String),
    #[error("impossible de se connecter à la base de données ({target}) : {reason}")]
    Unreachable { target: String, reason: String },
    #[error("échec de la migration {version} ({name}) : {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("la base de données a été migrée par une version plus récente de Guichet (migration {0} inconnue)")]
    FutureSchema(i64),
    #[error("conflit : {0}")]
    Conflict(String),
    #[error("erreur de base de données")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.kind() == ErrorKind::UniqueViolation {
                return StorageError::Conflict(db.constraint().unwrap_or("unicité").to_string());
            }
        }
        StorageError::Query(e)
    }
}

impl StorageError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict(_))
    }
}
