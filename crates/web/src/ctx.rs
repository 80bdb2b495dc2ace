//! Per-request context: who is logged in (from the session cookie), the CSRF token their forms
//! must carry, and the clock notice. Built once by the `load` middleware, read by handlers.

use crate::error::{ApiError, PageError};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Datelike;
use guichet_app::accounts::UserView;
use guichet_app::api_tokens::ApiCaller;
use guichet_app::auth::random_token;
use guichet_app::App;
use guichet_domain::Principal;
use std::net::SocketAddr;
use std::sync::Arc;

/// Base names of the cookies; behind HTTPS they carry the `__Host-` prefix (see [`cookie_name`]).
pub const SESSION_COOKIE: &str = "guichet_session";
pub const CSRF_COOKIE: &str = "guichet_csrf";

/// The name a cookie goes by: with the `__Host-` prefix when the public URL is HTTPS, so that
/// browsers accept it only `Secure`, for `Path=/` and without `Domain` (a sibling sub-domain
/// cannot plant or shadow it). Over plain HTTP (local use) browsers refuse the prefix.
pub fn cookie_name(app: &App, base: &'static str) -> String {
    if app.config.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

#[derive(Clone)]
pub struct Ctx {
    pub user: Option<Arc<UserView>>,
    /// The API token of this request (`Authorization: Bearer`, API routes only); a request
    /// that carries one reads no session cookie.
    pub api_caller: Option<Arc<ApiCaller>>,
    /// Whether the request's method writes (POST, PUT, PATCH, DELETE).
    pub writes: bool,
    pub csrf: String,
    pub session_token: Option<String>,
    pub clock_notice: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

fn clock_notice(app: &App) -> Option<String> {
    app.clock.is_simulated().then(|| {
        format!(
            "Horloge simulée : nous sommes le {} (heure de Paris).",
            french_date(app.clock.now())
        )
    })
}

impl Ctx {
    /// The context of a request whose session could not be read (the database is down, say):
    /// enough to draw an error page.
    pub fn anonymous(app: &App) -> Ctx {
        Ctx {
            user: None,
            api_caller: None,
            writes: false,
            csrf: String::new(),
            session_token: None,
            clock_notice: clock_notice(app),
            client_ip: None,
            user_agent: None,
        }
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&UserView> {
        self.user.as_deref()
    }

    /// The logged-in account of an API request (a session cookie): a token is no account.
    pub fn api_user(&self) -> Result<&UserView, ApiError> {
        if self.api_caller.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "un jeton d’API n’est pas un compte : cette ressource décrit le compte d’une session",
            ));
        }
        self.user().ok_or_else(ApiError::unauthenticated)
    }

    /// Who makes an API request, for the use cases: the session's account, or the token's
    /// service (read as one of its instructors). A token of reach `lecture` is refused here on a
    /// request that writes, so no write route can forget to check it.
    pub fn api_principal(&self) -> Result<&Principal, ApiError> {
        if let Some(c) = &self.api_caller {
            if self.writes && !c.scope.permits_writes() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "ce jeton d’API ne permet que la lecture (portée « lecture »)",
                ));
            }
            return Ok(&c.principal);
        }
        Ok(&self.api_user()?.principal)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Ctx>>()
            .map(|c| c.as_ref().clone())
            .ok_or_else(|| PageError::status(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

/// A cookie's value from the request (through axum-extra's cookie jar); empty or overlong
/// values count as absent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Builds a `Set-Cookie` value for the cookie `base` (named by [`cookie_name`]): HttpOnly,
/// SameSite, Path=/, Secure behind HTTPS; a session cookie (no expiry).
pub fn set_cookie(
    app: &App,
    base: &'static str,
    value: &str,
    same_site: SameSite,
) -> Option<HeaderValue> {
    encode(build_cookie(app, base, value, same_site))
}

/// A `Set-Cookie` value that removes the cookie `base`.
pub fn remove_cookie(app: &App, base: &'static str, same_site: SameSite) -> Option<HeaderValue> {
    let mut c = build_cookie(app, base, "", same_site);
    c.make_removal();
    encode(c)
}

fn build_cookie(
    app: &App,
    base: &'static str,
    value: &str,
    same_site: SameSite,
) -> Cookie<'static> {
    Cookie::build((cookie_name(app, base), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(app.config.secure_cookies())
        .build()
}

fn encode(c: Cookie<'_>) -> Option<HeaderValue> {
    HeaderValue::from_str(&c.encoded().to_string()).ok()
}

fn french_date(at: chrono::DateTime<chrono::Utc>) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let local = at.with_timezone(&chrono_tz::Europe::Paris);
    format!(
        "{} {} {} à {}",
        local.day(),
        MONTHS[local.month0() as usize],
        local.year(),
        local.format("%H:%M")
    )
}

pub fn paris_datetime(at: chrono::DateTime<chrono::Utc>) -> String {
    french_date(at)
}

fn client_ip(app: &App, req: &Request) -> Option<String> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    forwarded_client(req.headers(), app.config.trusted_proxy_hops, peer).map(|ip| ip.to_string())
}

/// The client's address behind `hops` trusted reverse proxies. Each proxy appends the address
/// it received the request from to `X-Forwarded-For`, so only the last `hops` entries were
/// written by proxies we trust; everything to their left came from the client and may be
/// forged. The client is therefore the `hops`-th entry from the right (the leftmost if the
/// chain is shorter). Without trusted proxies, or when that entry is not an address, the
/// socket's peer is the client.
pub fn forwarded_client(
    headers: &HeaderMap,
    hops: u32,
    peer: Option<std::net::IpAddr>,
) -> Option<std::net::IpAddr> {
    if hops == 0 {
        return peer;
    }
    // Several header lines are one list, in order (RFC 9110, 5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if entries.is_empty() {
        return peer;
    }
    let index = entries.len().saturating_sub(hops as usize);
    let chosen = entries[index];
    match parse_forwarded_ip(chosen) {
        Some(ip) => Some(ip),
        None => {
            tracing::warn!(entree = %chosen, "X-Forwarded-For illisible : adresse du pair retenue");
            peer
        }
    }
}

/// `203.0.113.7`, `2001:db8::1`, and the forms with a port (`203.0.113.7:443`, `[2001:db8::1]:443`).
fn parse_forwarded_ip(s: &str) -> Option<std::net::IpAddr> {
    s.parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Middleware: loads the session and user, sets the anonymous CSRF cookie when missing.
pub async fn load(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Result<Response, PageError> {
    // An API request with a token is the token's: no cookie is read for it.
    if crate::security::is_api(req.uri().path()) {
        if let Some(authorization) = req.headers().get(header::AUTHORIZATION) {
            let caller = match bearer(authorization) {
                Some(secret) => app.api_tokens().authenticate(secret).await,
                None => Err(guichet_app::Error::Unauthorized(
                    "en-tête Authorization invalide : « Bearer <jeton> » attendu".into(),
                )),
            };
            let caller = match caller {
                Ok(c) => Arc::new(c),
                Err(e) => return Ok(token_refused(e)),
            };
            let writes = matches!(
                *req.method(),
                axum::http::Method::POST
                    | axum::http::Method::PUT
                    | axum::http::Method::PATCH
                    | axum::http::Method::DELETE
            );
            let ctx = Arc::new(Ctx {
                user: None,
                api_caller: Some(caller),
                writes,
                csrf: String::new(),
                session_token: None,
                clock_notice: None,
                client_ip: client_ip(&app, &req),
                user_agent: None,
            });
            req.extensions_mut().insert(ctx.clone());
            let mut response = next.run(req).await;
            response.extensions_mut().insert(ctx);
            return Ok(response);
        }
    }
    let headers = req.headers();
    let session_cookie = cookie(headers, &cookie_name(&app, SESSION_COOKIE));
    let anon_csrf = cookie(headers, &cookie_name(&app, CSRF_COOKIE));
    let mut user = None;
    let mut session_csrf = None;
    let mut stale_session = false;
    if let Some(token) = &session_cookie {
        match app.sessions().session_view(token).await? {
            Some((s, view)) => {
                user = Some(Arc::new(view));
                session_csrf = Some(s.csrf_token);
            }
            None => stale_session = true,
        }
    }
    let new_anon = anon_csrf.is_none().then(random_token);
    let csrf = session_csrf
        .or_else(|| anon_csrf.clone())
        .or_else(|| new_anon.clone())
        .unwrap_or_default();
    let clock_notice = clock_notice(&app);
    let ctx = Ctx {
        user,
        api_caller: None,
        writes: false,
        csrf,
        session_token: session_cookie.filter(|_| !stale_session),
        clock_notice,
        client_ip: client_ip(&app, &req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let ctx = Arc::new(ctx);
    req.extensions_mut().insert(ctx.clone());
    let mut response = next.run(req).await;
    // The error-page renderer, outside this middleware, draws the header for this user.
    response.extensions_mut().insert(ctx);
    if let Some(token) = new_anon {
        if let Some(v) = set_cookie(&app, CSRF_COOKIE, &token, SameSite::Strict) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if stale_session && !response.headers().contains_key(header::SET_COOKIE) {
        if let Some(v) = remove_cookie(&app, SESSION_COOKIE, SameSite::Lax) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// The secret of `Authorization: Bearer <secret>` (the scheme in any case, RFC 7235).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let v = value.to_str().ok()?.trim();
    let (scheme, secret) = v.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// A refused token: 401 with `WWW-Authenticate` (RFC 6750), or 429 with `Retry-After`.
fn token_refused(e: guichet_app::Error) -> Response {
    let retry_after = match &e {
        guichet_app::Error::TooManyAttempts {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        _ => None,
    };
    let unauthorized = matches!(e, guichet_app::Error::Unauthorized(_));
    let mut r = ApiError::from(e).into_response();
    if unauthorized {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"guichet\", error=\"invalid_token\""),
        );
    }
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

#[cfg(test)]
mod token_tests {
    use super::Ctx;
    use guichet_app::accounts::ServiceRow;
    use guichet_app::api_tokens::ApiCaller;
    use guichet_domain::api_token::TokenScope;
    use guichet_domain::{Principal, Role, ServiceKind};
    use std::sync::Arc;

    fn ctx(scope: TokenScope, writes: bool) -> Ctx {
        let service = ServiceRow {
            id: 7,
            code: "pref-95".into(),
            kind: ServiceKind::PrefectureDepartementale,
            name: "Préfecture du Val-d'Oise".into(),
            territory_code: "95".into(),
            region_code: Some("11".into()),
        };
        Ctx {
            user: None,
            api_caller: Some(Arc::new(ApiCaller {
                token_id: 1,
                scope,
                service,
                principal: Principal {
                    user_id: 0,
                    role: Role::Instructeur,
                    service: None,
                    collectivites: vec![],
                },
            })),
            writes,
            csrf: String::new(),
            session_token: None,
            clock_notice: None,
            client_ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn a_reading_token_gets_no_principal_for_a_write() {
        assert!(ctx(TokenScope::Lecture, false).api_principal().is_ok());
        let refused = ctx(TokenScope::Lecture, true).api_principal().unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(refused.detail.contains("lecture"), "{}", refused.detail);
        assert!(ctx(TokenScope::Ecriture, true).api_principal().is_ok());
        // A token is never an account.
        assert_eq!(
            ctx(TokenScope::Ecriture, false)
                .api_user()
                .unwrap_err()
                .status,
            403
        );
    }
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;
    use axum::http::{HeaderMap, HeaderValue};
    use std::net::IpAddr;

    fn client(xff: &[&str], hops: u32) -> Option<String> {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        forwarded_client(&h, hops, Some(peer)).map(|ip| ip.to_string())
    }

    #[test]
    fn only_the_trusted_hops_from_the_right_are_believed() {
        let s = |v: &str| Some(v.to_string());
        // No proxy trusted: the header is ignored.
        assert_eq!(client(&["203.0.113.7"], 0), s("10.0.0.1"));
        // One proxy: the entry it appended, whatever the client wrote before it.
        assert_eq!(client(&["203.0.113.7"], 1), s("203.0.113.7"));
        assert_eq!(client(&["6.6.6.6, 203.0.113.7"], 1), s("203.0.113.7"));
        assert_eq!(client(&["6.6.6.6", "203.0.113.7"], 1), s("203.0.113.7"));
        // Two proxies: the second from the right.
        assert_eq!(
            client(&["6.6.6.6, 203.0.113.7, 10.1.1.1"], 2),
            s("203.0.113.7")
        );
        // A chain shorter than the hops: its leftmost, written by a trusted proxy.
        assert_eq!(client(&["203.0.113.7"], 3), s("203.0.113.7"));
        // Ports and IPv6.
        assert_eq!(client(&["203.0.113.7:443"], 1), s("203.0.113.7"));
        assert_eq!(client(&["[2001:db8::1]:443"], 1), s("2001:db8::1"));
        assert_eq!(client(&["2001:db8::1"], 1), s("2001:db8::1"));
        // Garbage where the proxy's entry should be: the peer.
        assert_eq!(client(&["1.2.3.4, pas-une-adresse"], 1), s("10.0.0.1"));
        // No header: the peer.
        assert_eq!(client(&[], 1), s("10.0.0.1"));
    }
}
