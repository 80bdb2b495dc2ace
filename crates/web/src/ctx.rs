//! Per-request context: who is logged in (from the session cookie), the CSRF token their forms
//! must carry, and the clock notice. Built once by the `load` middleware, read by handlers.

use crate::error::{ApiError, PageError};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Datelike;
use guichet_app::accounts::UserView;
use guichet_app::auth::random_token;
use guichet_app::App;
use std::net::SocketAddr;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "guichet_session";
pub const CSRF_COOKIE: &str = "guichet_csrf";

#[derive(Clone)]
pub struct Ctx {
    pub user: Option<Arc<UserView>>,
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

    pub fn api_user(&self) -> Result<&UserView, ApiError> {
        self.user().ok_or_else(ApiError::unauthenticated)
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

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Builds a `Set-Cookie` value: HttpOnly, SameSite, Path=/, Secure behind HTTPS.
pub fn set_cookie(
    app: &App,
    name: &str,
    value: &str,
    max_age: Option<i64>,
    same_site: &str,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if app.config.secure_cookies() {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
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
    if app.config.trust_proxy {
        if let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            return Some(ip);
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Middleware: loads the session and user, sets the anonymous CSRF cookie when missing.
pub async fn load(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Result<Response, PageError> {
    let headers = req.headers();
    let session_cookie = cookie(headers, SESSION_COOKIE);
    let anon_csrf = cookie(headers, CSRF_COOKIE);
    let mut user = None;
    let mut session_csrf = None;
    let mut stale_session = false;
    if let Some(token) = &session_cookie {
        match app.session_view(token).await? {
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
        if let Some(v) = set_cookie(&app, CSRF_COOKIE, &token, None, "Strict") {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if stale_session && !response.headers().contains_key(header::SET_COOKIE) {
        if let Some(v) = set_cookie(&app, SESSION_COOKIE, "", Some(0), "Lax") {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}
