//! A dossier's thread on its two pages (the collectivité's and the instructor's): the lines
//! shown, and posting a message (`app.messages()` decides who may).

use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PageForm, PagePath};
use crate::error::PageError;
use axum::extract::State as AxumState;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::accounts::UserView;
use guichet_app::messages::Side;
use guichet_app::{App, Error as AppError};
use serde::Deserialize;

pub struct ThreadLine {
    /// `demandeur`, `instruction` or `guichet` (the CSS modifier).
    pub side: &'static str,
    pub author: String,
    pub at: String,
    pub body: String,
    pub unread: bool,
}

/// The thread as a page shows it (and marked read for its reader).
pub async fn lines(app: &App, u: &UserView, dossier_id: i64) -> Result<Vec<ThreadLine>, PageError> {
    Ok(app
        .messages()
        .thread(&u.principal, dossier_id)
        .await?
        .into_iter()
        .map(|m| ThreadLine {
            side: match m.side {
                Side::Applicant => "demandeur",
                Side::Instruction => "instruction",
                Side::Guichet => "guichet",
            },
            author: match m.side {
                Side::Instruction => format!("{} (service instructeur)", m.author),
                _ => m.author,
            },
            at: paris_datetime(m.row.created_at.instant()),
            body: m.row.body,
            unread: m.unread,
        })
        .collect())
}

#[derive(Default, Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    message: String,
}

/// `POST /espace/dossiers/{id}/messages`: the collectivité writes.
pub async fn post_applicant(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<MessageForm>,
) -> Result<Response, PageError> {
    let path = super::depot::dossier_href(id);
    let u = super::depot::require_filer(&ctx, &path)?;
    match app.messages().post(&u.principal, id, &form.message).await {
        Ok(_) => Ok(Redirect::to(&format!("{path}?message=1#messagerie")).into_response()),
        Err(e @ AppError::Invalid(_)) => {
            Ok(
                super::depot::show_step(&app, &ctx, u, id, "depot", e.to_string())
                    .await?
                    .into_response(),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /instruction/dossiers/{numero}/messages`: the service writes.
pub async fn post_instruction(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    PagePath(numero): PagePath<String>,
    PageForm(form): PageForm<MessageForm>,
) -> Result<Response, PageError> {
    let path = format!("/instruction/dossiers/{numero}");
    let u = super::require_user(&ctx, &path)?;
    let file = app
        .dossiers()
        .instruction_file(&u.principal, &numero)
        .await?;
    match app
        .messages()
        .post(&u.principal, file.dossier.row.id, &form.message)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{path}?fait=message#messagerie")).into_response()),
        Err(e @ AppError::Invalid(_)) => Ok(super::instruction::dossier_page(
            &app,
            &ctx,
            u,
            &numero,
            Some(super::instruction::Notice::Error(
                crate::security::capitalise(&e.to_string()),
            )),
        )
        .await?
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
