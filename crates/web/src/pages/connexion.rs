//! Login and logout.

use super::{render, PageResult};
use crate::ctx::{remove_cookie, set_cookie, Ctx, SESSION_COOKIE};
use crate::error::extract::{PageForm, PageQuery};
use crate::error::PageError;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SameSite;
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

/// Where to go after login: a path of this site, as the browser will read it. The candidate is
/// resolved against the public base URL with the WHATWG URL parser (the one browsers follow: it
/// drops tabs and newlines, reads `\` as `/`, decodes nothing that would change the authority),
/// and kept only when it stays on the base URL's origin; the `Location` then carries the
/// parser's own serialization of the path, so what the browser reads is what was checked.
/// Anything else falls back to `/espace`. CR or LF cannot go into a header at all: refused (400)
/// before anything happens.
pub(crate) fn safe_next(base_url: &str, suite: &str) -> Result<String, PageError> {
    const HOME: &str = "/espace";
    if suite.contains(['\r', '\n']) {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "adresse de retour invalide : elle contient un saut de ligne",
        ));
    }
    let Ok(base) = url::Url::parse(base_url) else {
        return Ok(HOME.into());
    };
    // Only a path: a scheme, an authority or a relative reference is never followed.
    if !suite.starts_with('/') {
        return Ok(HOME.into());
    }
    let Ok(target) = base.join(suite) else {
        return Ok(HOME.into());
    };
    if target.origin() != base.origin() || target.username() != "" || target.password().is_some() {
        return Ok(HOME.into());
    }
    let local = &target[url::Position::BeforePath..];
    // A path serialized as `//host` (from `/.//host`, say) would read as another authority.
    if !local.starts_with('/') || local.starts_with("//") {
        return Ok(HOME.into());
    }
    // Belt and braces: what is sent must resolve, once more, to this origin.
    match base.join(local) {
        Ok(again) if again.origin() == base.origin() => Ok(local.to_string()),
        _ => Ok(HOME.into()),
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
        safe_next(
            &app.config.base_url,
            q.suite.as_deref().unwrap_or("/espace"),
        )?,
        None,
        notice,
    ))
}

pub async fn submit(
    State(app): State<App>,
    ctx: Ctx,
    PageForm(f): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(&app.config.base_url, &f.suite)?;
    let result = if f.email.trim().is_empty() || f.password.is_empty() {
        Err(AppError::Invalid(
            "saisissez votre adresse électronique et votre mot de passe".into(),
        ))
    } else {
        app.sessions()
            .login(
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
            if let Some(v) = set_cookie(&app, SESSION_COOKIE, &session.token, SameSite::Lax) {
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
        app.sessions().logout(token).await?;
    }
    let mut r = Redirect::to("/connexion?statut=deconnecte").into_response();
    if let Some(v) = remove_cookie(&app, SESSION_COOKIE, SameSite::Lax) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    const BASE: &str = "https://guichet.exemple.fr";

    fn next(suite: &str) -> String {
        safe_next(BASE, suite).unwrap_or_else(|_| panic!("refusé : {suite:?}"))
    }

    #[test]
    fn local_paths_are_followed_as_the_parser_writes_them() {
        assert_eq!(next("/espace"), "/espace");
        assert_eq!(
            next("/espace/services/3?onglet=agents#haut"),
            "/espace/services/3?onglet=agents#haut"
        );
        assert_eq!(
            next("/collectivites/commune/95127"),
            "/collectivites/commune/95127"
        );
        assert_eq!(next("/a/../espace"), "/espace");
        assert_eq!(next("/%2F/evil.example"), "/%2F/evil.example");
        assert_eq!(next("/%5Cevil.example"), "/%5Cevil.example");
        assert_eq!(
            next("/espace?suite=//evil.example"),
            "/espace?suite=//evil.example"
        );
        assert_eq!(next("/a b"), "/a%20b");
        assert_eq!(next("/\u{1}x"), "/%01x");
        // The same origin written in full keeps its path only.
        assert_eq!(next("//guichet.exemple.fr/espace"), "/espace");
    }

    #[test]
    fn anything_that_a_browser_reads_as_another_origin_goes_home() {
        for suite in [
            "",
            "espace",
            "//evil.example",
            "//evil.example/",
            "///evil.example",
            "////evil.example",
            "/\t/evil.example",
            "/\t\t/evil.example",
            "\t//evil.example",
            "/ /evil.example",
            " //evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "\\/evil.example",
            "/.//evil.example",
            "/./\\evil.example",
            "https://evil.example",
            "https:evil.example",
            "http://guichet.exemple.fr/espace",
            "https://guichet.exemple.fr:444/espace",
            "//guichet.exemple.fr@evil.example",
            "//user:pass@guichet.exemple.fr/espace",
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example\u{0}",
            "/\u{b}/evil.example",
            "//\u{3002}evil.example",
            "//evil%2Eexample",
            "//evil.example%2F",
            "/\u{FF0F}evil.example",
        ] {
            let got = safe_next(BASE, suite).map_err(|e| e.status);
            let resolved = got
                .as_ref()
                .ok()
                .and_then(|p| url::Url::parse(BASE).ok()?.join(p).ok());
            assert!(
                resolved
                    .as_ref()
                    .is_some_and(|u| u.host_str() == Some("guichet.exemple.fr")
                        && u.scheme() == "https"
                        && u.port().is_none()),
                "{suite:?} → {got:?}"
            );
            if !suite.starts_with('/') || suite.starts_with("//") || suite.contains(['\t', '\\']) {
                assert!(
                    got.as_deref()
                        .is_ok_and(|p| p == "/espace" || !p.starts_with("//")),
                    "{suite:?} → {got:?}"
                );
            }
        }
        assert_eq!(next("/\t/evil.example"), "/espace");
        assert_eq!(next("/\\evil.example"), "/espace");
        assert_eq!(next("/.//evil.example"), "/espace");
    }

    #[test]
    fn a_line_break_is_refused() {
        for suite in ["/\r\nSet-Cookie: x=y", "/espace\n", "/\r/evil.example"] {
            let e = safe_next(BASE, suite).expect_err(suite);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
