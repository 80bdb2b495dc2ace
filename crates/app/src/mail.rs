//! Outgoing email. With SMTP settings, mail goes out through `lettre`; without them, each
//! message is written as an `.eml` file under `<data>/courriels/` and logged, so that nothing is
//! silently dropped on a development machine or in tests.
//!
//! Mail leaves through the job queue (`jobs`): a use case enqueues a mail job in its own
//! transaction and answers at once; a worker sends it, retrying with backoff while the relay is
//! down, and a message that still cannot go out is a dead job on `/admin/travaux`. Links to set
//! a password are made by the worker when it sends them, so the queue never holds a usable
//! secret: a reset job carries only the address typed in the form, a first-password job only the
//! account number.

use crate::auth::TokenPurpose;
use crate::config::{Config, SmtpTls};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobError, JobResult, Registry};
use crate::App;
use guichet_storage::accounts as accounts_store;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn from_config(config: &Config) -> AppResult<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| AppError::Invalid(format!("adresse d’expédition invalide ({e})")))?;
        let transport = match &config.smtp {
            Some(smtp) => {
                let builder = match smtp.tls {
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host),
                    SmtpTls::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                    }
                    SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                        &smtp.host,
                    )),
                }
                .map_err(|e| {
                    AppError::Invalid(format!("serveur SMTP {} invalide : {e}", smtp.host))
                })?;
                let mut builder = builder.port(smtp.port);
                if let (Some(u), Some(p)) = (&smtp.user, &smtp.password) {
                    builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Transport::Smtp(builder.build())
            }
            None => Transport::Files(config.data_dir.join("courriels")),
        };
        Ok(Mailer { transport, from })
    }

    /// Describes where mail goes, for start-up logs.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Files(dir) => format!("fichiers .eml dans {}", dir.display()),
        }
    }

    /// Sends one message; the error says whether trying again may help, and why it failed
    /// (shown to the administrator on a dead job).
    pub async fn deliver(&self, to: &str, subject: &str, text: &str) -> JobResult {
        let to: Mailbox = to.parse().map_err(|e| {
            JobError::Fatal(format!("adresse électronique invalide « {to} » ({e})"))
        })?;
        let body = Body::new_with_encoding(text.to_string(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(|_| Body::new(text.to_string()));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| JobError::Fatal(format!("courriel mal formé : {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|e| {
                    tracing::error!(destinataire = %to, erreur = %e, "échec d’envoi SMTP");
                    let reason = e.to_string();
                    if e.is_permanent() {
                        JobError::Fatal(format!("refus définitif du serveur SMTP : {reason}"))
                    } else {
                        JobError::Retry(format!("envoi SMTP impossible : {reason}"))
                    }
                })?;
                tracing::info!(destinataire = %to, sujet = subject, "courriel envoyé");
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| JobError::Retry(format!("dossier {} : {e}", dir.display())))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| JobError::Retry(format!("écriture du courriel : {e}")))?;
                tracing::info!(
                    destinataire = %to,
                    sujet = subject,
                    fichier = %dir.join(format!("{id}.eml")).display(),
                    "courriel écrit sur disque (pas de serveur SMTP configuré)"
                );
            }
        }
        Ok(())
    }
}

/// A password reset link for whoever holds this address (nothing is sent when nobody does, and
/// the request answered the same either way).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetLinkMail {
    pub email: String,
}

impl Job for ResetLinkMail {
    const KIND: &'static str = "courriel.reinitialisation";
}

/// The welcome message of a new account, with a link to choose its first password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstPasswordMail {
    pub user_id: i64,
}

impl Job for FirstPasswordMail {
    const KIND: &'static str = "courriel.premier-mot-de-passe";
}

/// A plain message (no secret in it: the queue keeps it in clear).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlainMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Job for PlainMail {
    const KIND: &'static str = "courriel.envoi";
}

pub(crate) fn register_jobs(r: &mut Registry) {
    r.register(|app: App, j: ResetLinkMail| async move { send_reset_link(&app, &j.email).await });
    r.register(|app: App, j: FirstPasswordMail| async move {
        send_first_password_link(&app, j.user_id).await
    });
    r.register(|app: App, j: PlainMail| async move {
        app.mailer.deliver(&j.to, &j.subject, &j.body).await
    });
}

async fn send_reset_link(app: &App, email: &str) -> JobResult {
    let user = {
        let mut conn = app.db.pool().acquire().await.map_err(AppError::from)?;
        accounts_store::find_user_by_email(&mut *conn, email).await?
    };
    let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
        tracing::info!(
            "demande de réinitialisation pour une adresse sans compte actif : rien n’est envoyé"
        );
        return Ok(());
    };
    let link = app
        .sessions()
        .issue_token_link(user.id, TokenPurpose::Reset)
        .await?;
    app.mailer
        .deliver(
            &user.email,
            "Réinitialisation de votre mot de passe Guichet",
            &format!(
                "Bonjour {},\n\nPour choisir un nouveau mot de passe, suivez ce lien, valable une heure et utilisable une seule fois :\n\n{link}\n\n\
                 Si vous n’avez rien demandé, ignorez ce message : votre mot de passe actuel reste valable.\n",
                user.display_name
            ),
        )
        .await
}

async fn send_first_password_link(app: &App, user_id: i64) -> JobResult {
    let user = {
        let mut conn = app.db.pool().acquire().await.map_err(AppError::from)?;
        accounts_store::find_user(&mut *conn, user_id).await?
    };
    let Some(user) = user.filter(|u| u.disabled_at.is_none()) else {
        tracing::info!(
            compte = user_id,
            "compte supprimé ou désactivé : message de bienvenue non envoyé"
        );
        return Ok(());
    };
    if user.password_hash.is_some() {
        tracing::info!(
            compte = user_id,
            "mot de passe déjà choisi : message de bienvenue sans objet"
        );
        return Ok(());
    }
    // A link of its own, next to the one the creator was shown (`create_user`): both work once,
    // and choosing the password closes them all.
    let link = {
        let mut conn = app.db.pool().acquire().await.map_err(AppError::from)?;
        app.sessions()
            .add_token_link(&mut conn, user.id, TokenPurpose::FirstPassword)
            .await?
    };
    let role = user.role.label();
    app.mailer
        .deliver(
            &user.email,
            "Votre compte Guichet",
            &format!(
                "Bonjour {},\n\nUn compte Guichet ({role}) a été créé pour vous.\n\
                 Choisissez votre mot de passe en suivant ce lien, valable 7 jours et utilisable une seule fois :\n\n{link}\n\n\
                 Si vous n’attendiez pas ce message, ignorez-le.\n",
                user.display_name
            ),
        )
        .await
}
