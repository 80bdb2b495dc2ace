//! Login and logout.

use super::{render, PageResult};
use crate::ctx::{set_cookie, Ctx, SESSION_COOKIE};
use crate::error::extract::{PageForm, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use guichet_app::error::AppError;
use guichet_app::App;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/connexion.html")]
struct LoginTemplate {
    layout: Layout,
    email: String,
    suite: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    suite: Option<String>,
    #[serde(default)]
    statut: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    suite: String,
}

/// Only local paths are followed after login (no open redirect).
fn safe_next(suite: &str) -> String {
    if suite.starts_with('/') && !suite.starts_with("//") && !suite.contains('\\') {
        suite.to_string()
    } else {
        "/espace".to_string()
    }
}

fn page(
    app: &App,
    ctx: &Ctx,
    email: String,
    suite: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> LoginTemplate {
    LoginTemplate {
        layout: Layout::new(
            ctx,
            app,
            "/connexion",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Connexion")],
        ),
        email,
        suite,
        error,
        notice,
    }
}

pub async fn form(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<LoginQuery>,
) -> PageResult {
    let notice = match q.statut.as_deref() {
        Some("mot-de-passe-defini") => {
            Some("Votre mot de passe est enregistré : vous pouvez vous connecter.")
        }
        Some("deconnecte") => Some("Vous êtes déconnecté."),
        _ => None,
    };
    render(&page(
        &app,
        &ctx,
        String::new(),
        safe_next(q.suite.as_deref().unwrap_or("/espace")),
        None,
        notice,
    ))
}

pub async fn submit(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(f): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(&f.suite);
    let result = if f.email.trim().is_empty() || f.password.is_empty() {
        Err(AppError::Invalid(
            "saisissez votre adresse électronique et votre mot de passe".into(),
        ))
    } else {
        app.login(
            &f.email,
            &f.password,
            ctx.client_ip.as_deref(),
            ctx.user_agent.as_deref(),
            ctx.session_token.as_deref(),
        )
        .await
    };
    match result {
        Ok(session) => {
            let mut r = Redirect::to(&next).into_response();
            if let Some(v) = set_cookie(&app, SESSION_COOKIE, &session.token, None, "Lax") {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(r)
        }
        Err(e) => {
            let (status, retry) = match &e {
                AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
                AppError::Invalid(_) => (StatusCode::BAD_REQUEST, None),
                AppError::TooManyAttempts {
                    retry_after_secs, ..
                } => (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after_secs)),
                _ => return Err(e.into()),
            };
            let message = crate::security::capitalise(&e.to_string()) + ".";
            let html = page(
                &app,
                &ctx,
                f.email.trim().to_string(),
                next,
                Some(message),
                None,
            )
            .render()?;
            let mut r = (status, Html(html)).into_response();
            if let Some(secs) = retry {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(r)
        }
    }
}

pub async fn logout(State(app): State<App>, ctx: Ctx) -> Result<Response, PageError> {
    if let Some(token) = &ctx.session_token {
        app.logout(token).await?;
    }
    let mut r = Redirect::to("/connexion?statut=deconnecte").into_response();
    if let Some(v) = set_cookie(&app, SESSION_COOKIE, "", Some(0), "Lax") {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}
