//! Guichet's web layer: DSFR pages (askama) and the JSON API (OpenAPI), over the application
//! services. Handlers stay thin: they parse input, ask `App`, and render.

pub mod api;
pub mod assets;
mod ctx;
mod error;
mod layout;
mod pages;
mod security;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use guichet_app::App;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceBuilder;
use utoipa::ToSchema;

pub use error::{ApiError, PageError, Problem};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// ok
    pub statut: &'static str,
}

/// Sonde de vie du processus
#[utoipa::path(get, path = "/healthz", tag = "exploitation", responses((status = 200, description = "Le processus répond", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { statut: "ok" })
}

/// Sonde de disponibilité : la base de données répond
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "exploitation",
    responses((status = 200, description = "La base de données répond", body = Health), (status = 503, description = "Base de données injoignable", body = Problem, content_type = "application/problem+json"))
)]
pub async fn readyz(State(app): State<App>) -> Result<Json<Health>, ApiError> {
    app.db.ping().await.map_err(|e| {
        tracing::warn!(erreur = %e, "base de données injoignable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "la base de données ne répond pas",
        )
    })?;
    Ok(Json(Health { statut: "ok" }))
}

async fn not_found() -> impl IntoResponse {
    PageError::not_found()
}

/// The whole application as an axum router.
pub fn router(app: App) -> Router {
    let pages = Router::new()
        .route("/", get(pages::home::page))
        .route("/accessibilite", get(pages::accessibilite::page))
        .route(
            "/connexion",
            get(pages::connexion::form).post(pages::connexion::submit),
        )
        .route("/deconnexion", post(pages::connexion::logout))
        .route(
            "/mot-de-passe/oublie",
            get(pages::mot_de_passe::forgot_form).post(pages::mot_de_passe::forgot_submit),
        )
        .route(
            "/mot-de-passe/definir",
            get(pages::mot_de_passe::set_form).post(pages::mot_de_passe::set_submit),
        )
        .route("/espace", get(pages::espace::page))
        .route("/espace/services", get(pages::espace::services))
        .route("/espace/services/{id}", get(pages::espace::service))
        .route(
            "/espace/collectivites/{kind}/{code}",
            get(pages::espace::collectivite),
        )
        .route("/admin/utilisateurs", get(pages::admin::users))
        .route("/admin/journal", get(pages::admin::journal))
        // Impact of a programme change (administrators, regional coordinators).
        .route("/admin/impact", get(pages::impact::page))
        .route("/admin/impact/export.csv", get(pages::impact::export))
        .route("/simulateur", get(pages::simulateur::page))
        .route("/collectivites", get(pages::collectivites::search))
        .route(
            "/collectivites/{kind}/{code}",
            get(pages::collectivites::page),
        );
    let api = Router::new()
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/collectivites", get(api::collectivites::search))
        .route(
            "/api/v1/collectivites/{kind}/{code}",
            get(api::collectivites::details),
        )
        .route(
            "/api/v1/collectivites/{kind}/{code}/agents",
            get(api::collectivites::agents),
        )
        .route("/api/v1/simulations", post(api::simulations::simulate))
        .route("/api/v1/moi", get(api::moi::moi))
        .route("/api/v1/services", get(api::services::list))
        .route("/api/v1/services/{id}", get(api::services::details));
    let dynamic = pages.merge(api).fallback(not_found).layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(app.clone(), security::render_errors))
            .layer(from_fn_with_state(app.clone(), ctx::load))
            .layer(from_fn(security::csrf_guard)),
    );
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/dsfr/{*path}", get(assets::dsfr))
        .route("/static/{*path}", get(assets::own))
        .merge(dynamic)
        .layer(
            ServiceBuilder::new()
                .layer(tower_http::trace::TraceLayer::new_for_http())
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                ))
                .layer(from_fn_with_state(app.clone(), security::headers)),
        )
        .with_state(app)
}

/// Serves until SIGINT/SIGTERM, purging expired sessions every hour.
pub async fn serve(app: App) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&app.config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("impossible d’écouter sur {} : {e}", app.config.bind))?;
    tracing::info!(
        adresse = %listener.local_addr()?,
        url = %app.config.base_url,
        courriel = %app.mailer.describe(),
        horloge_simulee = app.clock.is_simulated(),
        "Guichet est prêt"
    );
    let purge = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = app.purge_expired_sessions().await {
                    tracing::warn!(erreur = %e, "purge des sessions expirées");
                }
            }
        })
    };
    serve_on(listener, app).await?;
    purge.abort();
    Ok(())
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_on(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("arrêt demandé");
}
