//! A request identifier on every request: made by tower-http's `SetRequestIdLayer` (or taken
//! from a trusted proxy's `X-Request-Id`), sent back in the response's `X-Request-Id`, named in
//! the tracing span of the request (so in every log line written while serving it), in the
//! reference of an internal error shown to the user, and in the audit entries it writes.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use guichet_app::App;
use rand::RngCore;
use tower_http::request_id::{MakeRequestId, RequestId};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// 64 random bits in hexadecimal: short enough to be read out over the phone, unique enough to
/// find one request in the logs.
#[derive(Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        HeaderValue::from_str(&hex::encode(bytes))
            .ok()
            .map(RequestId::new)
    }
}

/// What an identifier sent by a proxy may look like (it goes into logs and the audit log).
fn acceptable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Middleware, before `SetRequestIdLayer`: an `X-Request-Id` sent by the client is dropped
/// (a fresh one is made) unless it comes through a trusted proxy and looks like an identifier.
pub async fn filter_incoming(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let keep = app.config.trusted_proxy_hops > 0
        && req.headers().get_all(&HEADER).iter().count() == 1
        && req.headers().get(&HEADER).is_some_and(acceptable);
    if !keep {
        req.headers_mut().remove(&HEADER);
    }
    next.run(req).await
}

/// The request's identifier, as set by `SetRequestIdLayer`.
pub fn of<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Middleware, after `SetRequestIdLayer`: the application sees the identifier for the whole
/// request (audit entries, error references).
pub async fn scope(req: Request, next: Next) -> Response {
    let id = of(&req);
    guichet_app::request::scope(id, next.run(req)).await
}

/// The tracing span of a request: method, path (never the query, which may hold a one-time
/// link's token) and identifier.
pub fn span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::info_span!(
        "requete",
        methode = %req.method(),
        chemin = %req.uri().path(),
        id = %of(req),
    )
}
