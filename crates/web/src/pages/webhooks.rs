//! Webhooks for administrators (`/admin/webhooks`): the list with each webhook's last
//! deliveries, a creation form that shows the new secret once, and disabling. Access is
//! decided by the use cases (`app.webhooks()`).

use super::{render, require_user, PageResult};
use crate::ctx::{paris_datetime, Ctx};
use crate::error::extract::{PageForm, PagePath, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::accounts::UserView;
use guichet_app::{App, Error as AppError};
use serde::Deserialize;

pub struct DeliveryLine {
    pub id: i64,
    pub event: String,
    pub created: String,
    pub state: &'static str,
    pub badge: &'static str,
    pub attempts: i64,
    pub status: String,
    pub error: String,
    pub last_attempt: String,
}

pub struct WebhookLine {
    pub id: i64,
    pub service: String,
    pub url: String,
    pub created: String,
    pub disabled: Option<String>,
    pub deliveries: Vec<DeliveryLine>,
}

pub struct ServiceChoice {
    pub code: String,
    pub name: String,
}

#[derive(Default, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    url: String,
}

#[derive(Template)]
#[template(path = "pages/admin_webhooks.html")]
struct WebhooksTemplate {
    layout: Layout,
    hooks: Vec<WebhookLine>,
    services: Vec<ServiceChoice>,
    form: WebhookForm,
    error: Option<String>,
    created: Option<(i64, String)>,
    disabled: Option<i64>,
}

#[derive(Deserialize)]
pub struct WebhooksQuery {
    desactive: Option<i64>,
}

fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "livree" => ("Livrée", "fr-badge--success"),
        "morte" => ("Abandonnée", "fr-badge--error"),
        _ => ("En attente", "fr-badge--info"),
    }
}

async fn page(
    app: &App,
    ctx: &Ctx,
    u: &UserView,
    form: WebhookForm,
    error: Option<String>,
    created: Option<(i64, String)>,
    disabled: Option<i64>,
) -> PageResult {
    let rows = app.webhooks().list(&u.principal).await?;
    let mut hooks = Vec::with_capacity(rows.len());
    for w in rows {
        let deliveries = app
            .webhooks()
            .deliveries(&u.principal, w.id)
            .await?
            .into_iter()
            .map(|d| {
                let (state, badge) = state_label(&d.state);
                DeliveryLine {
                    id: d.id,
                    event: d.event_type,
                    created: paris_datetime(d.created_at.instant()),
                    state,
                    badge,
                    attempts: d.attempts,
                    status: d
                        .last_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "—".into()),
                    error: d.last_error.unwrap_or_else(|| "—".into()),
                    last_attempt: d
                        .last_attempt_at
                        .map(|t| paris_datetime(t.instant()))
                        .unwrap_or_else(|| "—".into()),
                }
            })
            .collect();
        hooks.push(WebhookLine {
            id: w.id,
            service: format!("{} ({})", w.service_name, w.service_code),
            url: w.url,
            created: paris_datetime(w.created_at.instant()),
            disabled: w.disabled_at.map(|t| paris_datetime(t.instant())),
            deliveries,
        });
    }
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
    render(&WebhooksTemplate {
        layout: Layout::new(
            ctx,
            app,
            "/admin/webhooks",
            vec![
                Crumb::link("Accueil", "/"),
                Crumb::link("Mon espace", "/espace"),
                Crumb::here("Webhooks"),
            ],
        ),
        hooks,
        services,
        form,
        error,
        created,
        disabled,
    })
}

pub async fn list(
    State(app): State<App>,
    ctx: Ctx,
    PageQuery(q): PageQuery<WebhooksQuery>,
) -> PageResult {
    let u = require_user(&ctx, "/admin/webhooks")?;
    page(
        &app,
        &ctx,
        u,
        WebhookForm::default(),
        None,
        None,
        q.desactive,
    )
    .await
}

/// Creates a webhook and shows its secret in this answer only (never in a URL, never again).
pub async fn create(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(form): PageForm<WebhookForm>,
) -> PageResult {
    let u = require_user(&ctx, "/admin/webhooks")?;
    let result = if form.service.trim().is_empty() {
        Err(AppError::Invalid("choisissez le service du webhook".into()))
    } else {
        app.webhooks().create_by(u, &form.service, &form.url).await
    };
    match result {
        Ok(created) => {
            page(
                &app,
                &ctx,
                u,
                WebhookForm::default(),
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

/// Disables a webhook (CSRF-checked form, audited), then back to the list.
pub async fn disable(
    State(app): State<App>,
    ctx: Ctx,
    PagePath(id): PagePath<i64>,
) -> Result<Response, PageError> {
    let u = require_user(&ctx, "/admin/webhooks")?;
    app.webhooks().disable_by(u, id).await?;
    Ok(Redirect::to(&format!("/admin/webhooks?desactive={id}")).into_response())
}
