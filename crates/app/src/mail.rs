//! Outgoing email. With SMTP settings, mail goes out through `lettre`; without them, each
//! message is written as an `.eml` file under `<data>/courriels/` and logged, so that nothing is
//! silently dropped on a development machine or in tests.

use crate::config::{Config, SmtpTls};
use crate::error::{AppError, AppResult};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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

    pub async fn send(&self, to: &str, subject: &str, text: &str) -> AppResult<()> {
        let to: Mailbox = to.parse().map_err(|e| {
            AppError::Invalid(format!("adresse électronique invalide « {to} » ({e})"))
        })?;
        let body = Body::new_with_encoding(text.to_string(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(|_| Body::new(text.to_string()));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("courriel mal formé : {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|e| {
                    tracing::error!(destinataire = %to, erreur = %e, "échec d’envoi SMTP");
                    AppError::Unavailable(
                        "le courriel n’a pas pu être envoyé ; réessayez plus tard".into(),
                    )
                })?;
                tracing::info!(destinataire = %to, sujet = subject, "courriel envoyé");
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("dossier {} : {e}", dir.display()))
                })?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| {
                        AppError::Internal(anyhow::anyhow!("écriture du courriel : {e}"))
                    })?;
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
