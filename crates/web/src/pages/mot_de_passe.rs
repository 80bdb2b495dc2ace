//! Forgotten password, and setting a password through a one-time link (first password or reset).

use super::{render, PageResult};
use crate::ctx::Ctx;
use crate::error::extract::{PageForm, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use guichet_app::auth::TokenPurpose;
use guichet_app::error::AppError;
use guichet_app::App;
use guichet_domain::password::MIN_LENGTH;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/mot_de_passe_oublie.html")]
struct ForgotTemplate {
    layout: Layout,
    email: String,
    error: Option<String>,
    sent: bool,
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

fn forgot_layout(app: &App, ctx: &Ctx) -> Layout {
    Layout::new(
        ctx,
        app,
        "/mot-de-passe/oublie",
        vec![
            Crumb::link("Accueil", "/"),
            Crumb::link("Connexion", "/connexion"),
            Crumb::here("Mot de passe oublié"),
        ],
    )
}

pub async fn forgot_form(State(app): State<App>, ctx: Ctx) -> PageResult {
    render(&ForgotTemplate {
        layout: forgot_layout(&app, &ctx),
        email: String::new(),
        error: None,
        sent: false,
    })
}

pub async fn forgot_submit(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(f): PageForm<ForgotForm>,
) -> Result<Response, PageError> {
    match app
        .sessions()
        .request_password_reset(&f.email, ctx.client_ip.as_deref())
        .await
    {
        Ok(()) => Ok(render(&ForgotTemplate {
            layout: forgot_layout(&app, &ctx),
            email: String::new(),
            error: None,
            sent: true,
        })?
        .into_response()),
        Err(AppError::Invalid(m)) => {
            let html = ForgotTemplate {
                layout: forgot_layout(&app, &ctx),
                email: f.email,
                error: Some(crate::security::capitalise(&m) + "."),
                sent: false,
            }
            .render()?;
            Ok((StatusCode::BAD_REQUEST, Html(html)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "pages/mot_de_passe_definir.html")]
struct SetTemplate {
    layout: Layout,
    token: String,
    email: String,
    first: bool,
    min_length: usize,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    jeton: String,
}

#[derive(Deserialize)]
pub struct SetForm {
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
}

fn set_layout(app: &App, ctx: &Ctx) -> Layout {
    Layout::new(
        ctx,
        app,
        "/mot-de-passe/definir",
        vec![
            Crumb::link("Accueil", "/"),
            Crumb::here("Choisir un mot de passe"),
        ],
    )
}

/// A link that cannot be used: expired, used or unknown. The page says which, and what to do.
fn link_error(e: AppError) -> PageError {
    match e {
        AppError::NotFound(m) => PageError::new(StatusCode::NOT_FOUND, m),
        AppError::Conflict(m) => PageError::new(StatusCode::GONE, m),
        other => other.into(),
    }
}

pub async fn set_form(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<TokenQuery>,
) -> PageResult {
    let check = app
        .sessions()
        .check_token(&q.jeton)
        .await
        .map_err(link_error)?;
    render(&SetTemplate {
        layout: set_layout(&app, &ctx),
        token: q.jeton,
        email: check.email,
        first: check.purpose == TokenPurpose::FirstPassword,
        min_length: MIN_LENGTH,
        error: None,
    })
}

pub async fn set_submit(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(f): PageForm<SetForm>,
) -> Result<Response, PageError> {
    let check = app
        .sessions()
        .check_token(&f.jeton)
        .await
        .map_err(link_error)?;
    let result = if f.password != f.confirmation {
        Err(AppError::Invalid(
            "les deux saisies du mot de passe ne sont pas identiques".into(),
        ))
    } else {
        app.sessions()
            .set_password_with_token(&f.jeton, &f.password)
            .await
    };
    match result {
        Ok(_) => Ok(Redirect::to("/connexion?statut=mot-de-passe-defini").into_response()),
        Err(AppError::Invalid(m)) => {
            let html = SetTemplate {
                layout: set_layout(&app, &ctx),
                token: f.jeton,
                email: check.email,
                first: check.purpose == TokenPurpose::FirstPassword,
                min_length: MIN_LENGTH,
                error: Some(crate::security::capitalise(&m) + "."),
            }
            .render()?;
            Ok((StatusCode::BAD_REQUEST, Html(html)).into_response())
        }
        Err(e) => Err(link_error(e)),
    }
}
