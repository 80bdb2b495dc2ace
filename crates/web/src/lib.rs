//! Guichet's web layer: DSFR pages (askama) and the JSON API (OpenAPI), over the application
//! services. Handlers stay thin: they parse input, ask `App`, and render.

pub mod api;
pub mod assets;
mod ctx;
mod error;
mod layout;
mod multipart;
mod pages;
mod request_id;
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
use tower_http::compression::Predicate as _;
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
    app.ping().await.map_err(|e| {
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
    router_with_uploads(app, Vec::new())
}

/// The routes that take files (the CSRF guard reads their first part, the upload limit
/// applies): attaching a document to a dossier.
fn own_uploads() -> Vec<UploadRoute> {
    vec![("/espace/dossiers/{id}/pieces", post(pages::pieces::upload))]
}

/// A route that takes files: a `multipart/form-data` body whose first part is the `csrf` field,
/// up to `GUICHET_UPLOAD_MAX_OCTETS` (see `security::csrf_guard`).
pub type UploadRoute = (&'static str, axum::routing::MethodRouter<App>);

/// The application with its upload routes (none yet besides those given; tests add one).
pub fn router_with_uploads(app: App, mut uploads: Vec<UploadRoute>) -> Router {
    uploads.extend(own_uploads());
    let guard = security::Guard {
        app: app.clone(),
        uploads: uploads.iter().map(|(p, _)| p.to_string()).collect(),
    };
    let mut upload_routes = Router::new();
    for (path, route) in uploads {
        // The guard enforces the upload limit; axum's own 2 MB default must not cut it short.
        upload_routes = upload_routes.route(
            path,
            route.layer(axum::extract::DefaultBodyLimit::disable()),
        );
    }
    let pages = Router::new()
        .route("/", get(pages::home::page))
        .route("/accessibilite", get(pages::accessibilite::page))
        .route("/mentions-legales", get(pages::legal::mentions))
        .route("/donnees-personnelles", get(pages::legal::donnees))
        .route("/gestion-des-cookies", get(pages::legal::cookies))
        .route("/plan-du-site", get(pages::legal::plan))
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
        // The applicant's dossiers: the list, a new draft, its steps, submission, receipt.
        .route(
            "/espace/dossiers",
            get(pages::depot::list).post(pages::depot::create),
        )
        .route("/espace/dossiers/nouveau", get(pages::depot::new_form))
        .route(
            "/espace/dossiers/{id}",
            get(pages::depot::dossier).post(pages::depot::save),
        )
        .route("/espace/dossiers/{id}/depot", post(pages::depot::submit))
        .route(
            "/espace/dossiers/{id}/recepisse",
            get(pages::depot::receipt),
        )
        .route(
            "/espace/dossiers/{id}/pieces/{piece}/retirer",
            post(pages::pieces::remove),
        )
        .route(
            "/dossiers/{id}/pieces/{piece}",
            get(pages::pieces::download),
        )
        .route(
            "/espace/dossiers/{id}/messages",
            post(pages::messages::post_applicant),
        )
        .route(
            "/instruction/dossiers/{numero}/messages",
            post(pages::messages::post_instruction),
        )
        .route(
            "/instruction/dossiers/{numero}/suivre",
            post(pages::instruction::follow),
        )
        .route(
            "/instruction/dossiers/{numero}/attribuer",
            post(pages::instruction::assign),
        )
        .route(
            "/instruction/dossiers/{numero}/annotations",
            post(pages::instruction::annotate),
        )
        .route(
            "/instruction/dossiers/{numero}/etiquettes",
            post(pages::instruction::label),
        )
        .route("/espace/services", get(pages::espace::services))
        .route("/espace/services/{id}", get(pages::espace::service))
        .route(
            "/espace/collectivites/{kind}/{code}",
            get(pages::espace::collectivite),
        )
        .route("/admin/utilisateurs", get(pages::admin::users))
        .route("/admin/journal", get(pages::admin::journal))
        .route("/admin/travaux", get(pages::admin::jobs))
        .route(
            "/admin/jetons",
            get(pages::jetons::list).post(pages::jetons::create),
        )
        .route("/admin/jetons/{id}/revoquer", post(pages::jetons::revoke))
        .route(
            "/admin/webhooks",
            get(pages::webhooks::list).post(pages::webhooks::create),
        )
        .route(
            "/admin/webhooks/{id}/desactiver",
            post(pages::webhooks::disable),
        )
        .route(
            "/admin/travaux/{id}/relancer",
            post(pages::admin::retry_job),
        )
        // Impact of a programme change (administrators, regional coordinators).
        .route("/instruction", get(pages::instruction::queue))
        .route(
            "/instruction/dossiers/{numero}",
            get(pages::instruction::dossier),
        )
        .route(
            "/instruction/dossiers/{numero}/actions",
            post(pages::decisions::act),
        )
        .route("/admin/impact", get(pages::impact::page))
        .route("/admin/impact/export.csv", get(pages::impact::export))
        .route("/mesures", get(pages::mesures::list))
        .route("/mesures/{id}", get(pages::mesures::sheet))
        .route("/simulateur", get(pages::simulateur::page))
        .route("/collectivites", get(pages::collectivites::search))
        .route(
            "/collectivites/{kind}/{code}",
            get(pages::collectivites::page),
        );
    let api = Router::new()
        .route(
            "/api/v1/openapi.json",
            get(api::openapi).with_state(api::openapi_document(&app)),
        )
        .route("/api/v1/collectivites", get(api::collectivites::search))
        .route(
            "/api/v1/collectivites/{kind}/{code}",
            get(api::collectivites::details),
        )
        .route(
            "/api/v1/collectivites/{kind}/{code}/agents",
            get(api::collectivites::agents),
        )
        .route("/api/v1/dossiers", get(api::dossiers::list))
        .route("/api/v1/dossiers/{numero}", get(api::dossiers::details))
        .route("/api/v1/mesures", get(api::mesures::list))
        .route("/api/v1/mesures/{mesure}", get(api::mesures::details))
        .route("/api/v1/simulations", post(api::simulations::simulate))
        .route("/api/v1/moi", get(api::moi::moi))
        .route("/api/v1/services", get(api::services::list))
        .route("/api/v1/services/{id}", get(api::services::details));
    let dynamic = pages
        .merge(api)
        .merge(upload_routes)
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(app.clone(), security::render_errors))
                .layer(from_fn_with_state(app.clone(), ctx::load))
                .layer(from_fn_with_state(guard, security::csrf_guard)),
        );
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/dsfr/{*path}", get(assets::dsfr))
        .route("/static/{*path}", get(assets::own))
        .merge(dynamic)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(app.clone(), request_id::filter_incoming))
                .layer(tower_http::request_id::SetRequestIdLayer::new(
                    request_id::HEADER,
                    request_id::MakeId,
                ))
                .layer(tower_http::request_id::PropagateRequestIdLayer::new(
                    request_id::HEADER,
                ))
                .layer(
                    tower_http::trace::TraceLayer::new_for_http().make_span_with(request_id::span),
                )
                .layer(from_fn(request_id::scope))
                // Pages, API answers and assets, gzip or brotli as the client accepts (tiny
                // bodies, images and fonts are left as they are). Pages holding a CSRF token
                // are not open to BREACH: the cookies that make them carry a token are
                // SameSite, so a cross-site page cannot have them fetched to measure them.
                .layer(
                    tower_http::compression::CompressionLayer::new()
                        .gzip(true)
                        .br(true)
                        .quality(tower_http::CompressionLevel::Precise(4))
                        // WOFF and WOFF2 fonts are compressed already.
                        .compress_when(tower_http::compression::DefaultPredicate::new().and(
                            tower_http::compression::predicate::NotForContentType::const_new(
                                "font/",
                            ),
                        )),
                )
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                ))
                .layer(from_fn_with_state(app.clone(), security::headers)),
        )
        .with_state(app)
}

/// Serves until SIGINT/SIGTERM. (Workers, which purge expired sessions among other jobs, are
/// started beside it by the binary: `guichet_app::jobs::Workers`.)
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
    serve_on(listener, app).await?;
    Ok(())
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_on(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    serve_router_on(listener, router(app)).await
}

/// Serves a router made by [`router`] or [`router_with_uploads`] on a bound listener.
pub async fn serve_router_on(
    listener: tokio::net::TcpListener,
    router: Router,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
}

/// Waits for Ctrl-C or SIGTERM (the server's and `guichet worker`'s graceful stop).
pub async fn shutdown() {
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
