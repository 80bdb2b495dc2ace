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
    #[error("la migration {version} ({name}) a été modifiée après avoir été appliquée à cette base (somme de contrôle enregistrée {recorded}…, actuelle {current}…) : Guichet refuse de démarrer ; rétablissez le texte d’origine de cette migration et décrivez le changement dans une nouvelle migration")]
    EditedMigration {
        version: i64,
        name: &'static str,
        recorded: String,
        current: String,
    },
    #[error("la base de données a été migrée par une version plus récente de Guichet (migration {0} inconnue)")]
    FutureSchema(i64),
    /// A unique constraint refused the write (what exists already is in the message).
    #[error("{}", .0.message)]
    Conflict(Violation),
    /// A foreign key refused the write (it names something that does not exist, or something
    /// still referred to).
    #[error("{}", .0.message)]
    ForeignKey(Violation),
    /// A row holds a value the code cannot read (a corrupt timestamp, an unknown role…).
    #[error("donnée illisible en base ({0})")]
    Corrupt(String),
    /// Optimistic concurrency: the row changed since it was read.
    #[error("{0} a été modifié entre-temps : rechargez la page et recommencez")]
    Stale(&'static str),
    #[error("erreur de base de données")]
    Query(#[source] sqlx::Error),
}

/// A constraint violation: which constraint (when the engine says), and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub constraint: &'static str,
    pub message: &'static str,
}

/// Every named constraint, once: PostgreSQL's name for it, SQLite's description of it (SQLite
/// names the columns, not the constraint), and the French message a user reads.
const CONSTRAINTS: &[(&str, &str, &str)] = &[
    (
        "users_email_key",
        "users.email",
        "un compte existe déjà pour cette adresse électronique",
    ),
    (
        "services_code_key",
        "services.code",
        "un service existe déjà avec ce code",
    ),
    (
        "user_collectivites_pkey",
        "user_collectivites.user_id, user_collectivites.kind, user_collectivites.code",
        "ce compte est déjà rattaché à cette collectivité",
    ),
    (
        "users_service_id_fkey",
        "",
        "le service indiqué n’existe pas, ou des comptes y sont encore rattachés",
    ),
    (
        "user_collectivites_user_id_fkey",
        "",
        "le compte indiqué n’existe pas",
    ),
    (
        "sessions_user_id_fkey",
        "",
        "le compte indiqué n’existe pas",
    ),
    (
        "auth_tokens_user_id_fkey",
        "",
        "le compte indiqué n’existe pas",
    ),
    (
        "api_tokens_token_hash_key",
        "api_tokens.token_hash",
        "ce jeton d’API existe déjà",
    ),
    (
        "api_tokens_service_id_fkey",
        "",
        "le service indiqué n’existe pas, ou des jetons d’API y sont encore rattachés",
    ),
    (
        "dossiers_number_key",
        "dossiers.number",
        "un dossier porte déjà ce numéro",
    ),
    (
        "dossiers_created_by_fkey",
        "",
        "le compte indiqué n’existe pas, ou des dossiers y sont encore rattachés",
    ),
    (
        "dossiers_service_id_fkey",
        "",
        "le service indiqué n’existe pas, ou des dossiers y sont encore rattachés",
    ),
    (
        "dossier_territories_pkey",
        "dossier_territories.dossier_id, dossier_territories.kind, dossier_territories.code",
        "ce territoire figure déjà dans l’empreinte du dossier",
    ),
    (
        "dossier_territories_dossier_id_fkey",
        "",
        "le dossier indiqué n’existe pas",
    ),
    (
        "dossier_versions_pkey",
        "dossier_versions.dossier_id, dossier_versions.version",
        "cette version du dossier a déjà été déposée",
    ),
    (
        "dossier_versions_dossier_id_fkey",
        "",
        "le dossier indiqué n’existe pas",
    ),
    (
        "dossier_history_dossier_id_fkey",
        "",
        "le dossier indiqué n’existe pas",
    ),
    (
        "dossier_sequences_pkey",
        "dossier_sequences.prefix, dossier_sequences.territory, dossier_sequences.year",
        "cette séquence de numéros existe déjà",
    ),
    (
        "webhooks_service_id_fkey",
        "",
        "le service indiqué n’existe pas, ou des webhooks y sont encore rattachés",
    ),
    (
        "webhook_deliveries_webhook_id_fkey",
        "",
        "le webhook indiqué n’existe pas",
    ),
];

fn violation(db: &dyn sqlx::error::DatabaseError) -> Violation {
    let found = match db.constraint() {
        Some(name) => CONSTRAINTS.iter().find(|(pg, _, _)| *pg == name),
        // SQLite: "UNIQUE constraint failed: users.email".
        None => CONSTRAINTS.iter().find(|(_, cols, _)| {
            !cols.is_empty() && db.message().rsplit(": ").next() == Some(*cols)
        }),
    };
    match (found, db.kind()) {
        (Some((name, _, message)), _) => Violation {
            constraint: name,
            message,
        },
        (None, ErrorKind::ForeignKeyViolation) => Violation {
            constraint: "clé étrangère",
            message: "cette opération fait référence à un élément qui n’existe pas, ou en supprime un encore utilisé",
        },
        (None, _) => Violation {
            constraint: "unicité",
            message: "cet élément existe déjà",
        },
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
                StorageError::Conflict(violation(db.as_ref()))
            }
            sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation => {
                StorageError::ForeignKey(violation(db.as_ref()))
            }
            sqlx::Error::ColumnDecode { index, source } => {
                StorageError::Corrupt(format!("colonne {index} : {source}"))
            }
            _ => StorageError::Query(e),
        }
    }
}

impl StorageError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict(_))
    }

    /// A failure that the same statements may not meet again a moment later: the database was
    /// busy (SQLite's lock, a PostgreSQL serialisation failure or deadlock) or the pool had no
    /// connection to give.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Query(sqlx::Error::PoolTimedOut) => true,
            StorageError::Query(sqlx::Error::Database(db)) => matches!(
                db.code().as_deref(),
                // SQLITE_BUSY, SQLITE_LOCKED and their extended codes; PostgreSQL 40001, 40P01.
                Some("5" | "6" | "261" | "262" | "517" | "40001" | "40P01")
            ),
            _ => false,
        }
    }
}
