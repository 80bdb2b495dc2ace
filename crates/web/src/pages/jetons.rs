//! API tokens for administrators (`/admin/jetons`): the list, a creation form that shows the
//! new secret once, and revocation. Access is decided by the use cases (`app.api_tokens()`).

use super::{render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PageForm, PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::accounts::UserView;
use guichet_app::api_tokens::{parse_expiry, NewToken};
use guichet_app::{App, Error as AppError};
use guichet_domain::api_token::TokenScope;
use serde::Deserialize;

pub struct TokenLine {
    pub id: i64,
    pub service: String,
    pub scope: &'static str,
    pub label: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

pub struct ServiceChoice {
    pub code: String,
    pub name: String,
}

#[derive(Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    portee: String,
    #[serde(default)]
    expire: String,
    #[serde(default)]
    nom: String,
}

#[derive(Template)]
#[template(path = "pages/admin_jetons.html")]
struct TokensTemplate {
    layout: Layout,
    tokens: Vec<TokenLine>,
    services: Vec<ServiceChoice>,
    form: TokenForm,
    error: Option<String>,
    created: Option<(i64, String)>,
    revoked: Option<i64>,
}

#[derive(Deserialize)]
pub struct TokensQuery {
    revoque: Option<i64>,
}

async fn page(
    app: &App,
    ctx: &Ctx,
    u: &UserView,
    form: TokenForm,
    error: Option<String>,
    created: Option<(i64, String)>,
    revoked: Option<i64>,
) -> PageResult {
    let tokens = app
        .api_tokens()
        .list(&u.principal)
        .await?
        .into_iter()
        .map(|t| TokenLine {
            id: t.id,
            service: format!("{} ({})", t.service_name, t.service_code),
            scope: t.scope.label(),
            label: if t.label.is_empty() {
                "—".into()
            } else {
                t.label
            },
            created: paris_datetime(t.created_at.instant()),
            expires: t
                .expires_at
                .map(|e| paris_datetime(e.instant()))
                .unwrap_or_else(|| "jamais".into()),
            last_used: t
                .last_used_at
                .map(|e| paris_datetime(e.instant()))
                .unwrap_or_else(|| "jamais".into()),
            revoked: t.revoked_at.map(|e| paris_datetime(e.instant())),
        })
        .collect();
    let services = app
        .accounts()
        .visible_services(&u.principal)
        .await?
        .into_iter()
        .map(|s| ServiceChoice {
            code: s.code,
            name: s.name,
        })
        .collect();
    render(&TokensTemplate {
        layout: Layout::new(
            ctx,
            app,
            "/admin/jetons",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Jetons d’API"),
            ],
        ),
        tokens,
        services,
        form,
        error,
        created,
        revoked,
    })
}

pub async fn list(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<TokensQuery>,
) -> PageResult {
    let u = require_user(&ctx, "/admin/jetons")?;
    page(&app, &ctx, u, TokenForm::default(), None, None, q.revoque).await
}

/// Creates a token and shows its secret in this answer only (never in a URL, never again).
pub async fn create(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(form): PageForm<TokenForm>,
) -> PageResult {
    let u = require_user(&ctx, "/admin/jetons")?;
    let parsed = TokenScope::parse(&form.portee)
        .map_err(|_| {
            AppError::Invalid("choisissez la portée du jeton : lecture ou écriture".into())
        })
        .and_then(|scope| Ok((scope, parse_expiry(&form.expire)?)));
    let result = match parsed {
        Ok((scope, expires_on)) if !form.service.trim().is_empty() => {
            app.api_tokens()
                .create_by(
                    u,
                    NewToken {
                        service_code: &form.service,
                        scope,
                        expires_on,
                        label: &form.nom,
                    },
                )
                .await
        }
        Ok(_) => Err(AppError::Invalid("choisissez le service du jeton".into())),
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            page(
                &app,
                &ctx,
                u,
                TokenForm::default(),
                None,
                Some(created),
                None,
            )
            .await
        }
        Err(e @ (AppError::Invalid(_) | AppError::NotFound(_))) => {
            page(&app, &ctx, u, form, Some(e.to_string()), None, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Revokes a token (CSRF-checked form, audited), then back to the list.
pub async fn revoke(
    State(app): State<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
) -> Result<Response, PageError> {
    let u = require_user(&ctx, "/admin/jetons")?;
    app.api_tokens().revoke_by(u, id).await?;
    Ok(Redirect::to(&format!("/admin/jetons?revoque={id}")).into_response())
}
