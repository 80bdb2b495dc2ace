//! A dossier's thread (`app.messages()`): the collectivité and its instructing service write to
//! each other on the dossier; Guichet adds its own entries (the filing's acknowledgement, the
//! correction requests). Whoever sees the dossier reads the thread; its agents and its
//! service's instructors (and administrators) write. Each message tells the other side by
//! email through the job queue, with a link to the dossier (never the content alone).

use crate::audit::{self, Actor as AuditActor};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, Registry};
use crate::App;
use guichet_domain::dossier::{Actor, Parties};
use guichet_domain::Principal;
use guichet_storage::accounts as accounts_store;
use guichet_storage::messages::{self as store, MessageRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5_000;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// An agent of the collectivité.
    Applicant,
    /// The instructing service (or an administrator).
    Instruction,
    /// Guichet itself (acknowledgements, correction requests).
    Guichet,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Applicant => "demandeur",
            Side::Instruction => "instruction",
            Side::Guichet => "guichet",
        }
    }

    fn parse(s: &str) -> Side {
        match s {
            "demandeur" => Side::Applicant,
            "instruction" => Side::Instruction,
            _ => Side::Guichet,
        }
    }
}

/// A message as its reader sees it.
#[derive(Debug, Clone)]
pub struct Message {
    pub row: MessageRow,
    pub side: Side,
    /// The author's name, or the side's for Guichet's entries.
    pub author: String,
    /// Newer than what the reader had read before opening the thread.
    pub unread: bool,
}

/// The email that tells the other side of a new message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageMail {
    pub to: String,
    pub numero: String,
    pub titre: String,
    pub de: String,
    pub lien: String,
}

impl Job for MessageMail {
    const KIND: &'static str = "courriel.message";
}

impl MessageMail {
    pub fn subject(&self) -> String {
        format!("Nouveau message sur le dossier {}", self.numero)
    }

    pub fn text(&self) -> String {
        format!(
            "Bonjour,\n\n{} a écrit un message sur le dossier {} « {} ».\n\n\
             Lisez-le et répondez sur la page du dossier :\n{}\n",
            self.de, self.numero, self.titre, self.lien
        )
    }
}

pub(crate) fn register_jobs(r: &mut Registry) {
    r.register(|app: App, j: MessageMail| async move {
        app.mailer.deliver(&j.to, &j.subject(), &j.text()).await
    });
}

fn parse_body(body: &str) -> AppResult<String> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::Invalid(
            "le message est vide : écrivez-le avant de l’envoyer".into(),
        ));
    }
    let n = body.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(AppError::Invalid(format!(
            "le message est trop long ({n} caractères ; {MAX_MESSAGE_CHARS} au plus)"
        )));
    }
    Ok(body.to_string())
}

/// Messages' use cases (`app.messages()`).
#[derive(Clone, Copy)]
pub struct Messages<'a> {
    pub(crate) app: &'a App,
}

impl Messages<'_> {
    /// The thread for whoever sees the dossier, oldest first, with the reader's unread marks;
    /// reading it marks it read.
    pub async fn thread(&self, p: &Principal, dossier_id: i64) -> AppResult<Vec<Message>> {
        self.app.dossiers().get(p, dossier_id).await?;
        let rows = store::thread(&self.app.db, dossier_id).await?;
        let seen = if p.user_id > 0 {
            store::last_read(&self.app.db, dossier_id, p.user_id).await?
        } else {
            i64::MAX
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let side = Side::parse(&row.side);
            let author = match (side, row.author_id) {
                (Side::Guichet, _) => "Guichet".to_string(),
                (_, Some(uid)) => accounts_store::find_user(&self.app.db, uid)
                    .await?
                    .map(|u| u.display_name)
                    .unwrap_or_else(|| format!("compte n° {uid}")),
                (_, None) => "—".to_string(),
            };
            out.push(Message {
                unread: row.id > seen && row.author_id != Some(p.user_id),
                side,
                author,
                row,
            });
        }
        if let (Some(last), true) = (out.last(), p.user_id > 0) {
            let mut conn = self.app.db.acquire().await?;
            store::mark_read(&mut conn, dossier_id, p.user_id, last.row.id).await?;
        }
        Ok(out)
    }

    /// How many messages of the dossier the reader has not read (theirs excluded).
    pub async fn unread(&self, p: &Principal, dossier_id: i64) -> AppResult<usize> {
        self.app.dossiers().get(p, dossier_id).await?;
        let seen = store::last_read(&self.app.db, dossier_id, p.user_id).await?;
        Ok(store::thread(&self.app.db, dossier_id)
            .await?
            .iter()
            .filter(|m| m.id > seen && m.author_id != Some(p.user_id))
            .count())
    }

    /// Writes a message: by an agent of the dossier's collectivité or an instructor of its
    /// service (an administrator writes as the service), on a filed dossier. The other side
    /// is told by email, in the same transaction.
    pub async fn post(&self, p: &Principal, dossier_id: i64, body: &str) -> AppResult<i64> {
        let d = self.app.dossiers().get(p, dossier_id).await?;
        let actor = Actor::of(
            p,
            Parties {
                applicants: std::slice::from_ref(&d.row.applicant),
                instructing_service: d.row.service_id,
            },
        );
        let side = match actor {
            Actor::Applicant => Side::Applicant,
            Actor::Instructor | Actor::Administrator => Side::Instruction,
            _ => return Err(AppError::Forbidden),
        };
        let (Some(number), Some(service_id)) = (d.row.number.as_ref(), d.row.service_id) else {
            return Err(AppError::Invalid(
                "le dossier n’est pas encore déposé : la messagerie avec le service instructeur s’ouvre au dépôt".into(),
            ));
        };
        let body = parse_body(body)?;
        let author = accounts_store::find_user(&self.app.db, p.user_id)
            .await?
            .ok_or(AppError::Forbidden)?;
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
        let id = store::insert(
            &mut *tx,
            dossier_id,
            Some(p.user_id),
            side.as_str(),
            &body,
            None,
            &now,
        )
        .await?;
        audit::record(
            &mut tx,
            &self.app.clock,
            AuditActor::User(p.user_id),
            "dossier.message",
            "dossier",
            &dossier_id.to_string(),
            None,
            Some(&json!({"message": id, "cote": side.as_str()})),
        )
        .await?;
        let base = self.app.config.base_url.trim_end_matches('/');
        let (recipients, link, from) = match side {
            Side::Applicant => (
                self.instructors(&mut tx, service_id).await?,
                format!("{base}/instruction/dossiers/{number}"),
                format!("{} (collectivité)", author.display_name),
            ),
            _ => (
                self.agents(&mut tx, &d.row.applicant).await?,
                format!("{base}/espace/dossiers/{dossier_id}"),
                "Le service instructeur".to_string(),
            ),
        };
        for to in recipients.into_iter().filter(|e| *e != author.email) {
            self.app
                .enqueue(
                    &mut tx,
                    &MessageMail {
                        to,
                        numero: number.to_string(),
                        titre: d.row.title.clone(),
                        de: from.clone(),
                        lien: link.clone(),
                    },
                )
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Guichet's own entry in a thread (the filing's acknowledgement), in the caller's
    /// transaction.
    pub(crate) async fn system_entry(
        &self,
        tx: &mut sqlx::AnyConnection,
        dossier_id: i64,
        author: Option<i64>,
        side: Side,
        body: &str,
        at: &str,
    ) -> AppResult<i64> {
        Ok(store::insert(&mut *tx, dossier_id, author, side.as_str(), body, None, at).await?)
    }

    /// The active instructors of a service (their emails).
    async fn instructors(
        &self,
        tx: &mut sqlx::AnyConnection,
        service_id: i64,
    ) -> AppResult<Vec<String>> {
        Ok(accounts_store::users_of_service_in(
            tx,
            service_id,
            &guichet_domain::access::ServiceSet::All,
        )
        .await?
        .into_iter()
        .filter(|u| {
            u.role == guichet_domain::Role::Instructeur
                && u.disabled_at.is_none()
                && u.password_hash.is_some()
        })
        .map(|u| u.email)
        .collect())
    }

    /// The active agents of a collectivité (their emails).
    pub(crate) async fn agents(
        &self,
        tx: &mut sqlx::AnyConnection,
        c: &guichet_domain::CollectiviteRef,
    ) -> AppResult<Vec<String>> {
        Ok(accounts_store::users_of_collectivite_in(
            tx,
            i64::from(self.app.programme.vintage.year()),
            c.kind.slug(),
            &c.code,
            &guichet_domain::access::CollectiviteSet::All,
        )
        .await?
        .into_iter()
        .filter(|u| u.disabled_at.is_none() && u.password_hash.is_some())
        .map(|u| u.email)
        .collect())
    }
}
