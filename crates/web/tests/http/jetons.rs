//! API tokens: a token reads what its service's instructors read and nothing more; unknown,
//! revoked and expired tokens are refused alike; a token of reach `lecture` writes nothing; the
//! per-minute limit holds under a parallel burst; administrators create and revoke tokens on
//! /admin/jetons, and the secret is stored only as its SHA-256.

use crate::common::{client, spawn_app, spawn_with, TestApp};
use guichet_app::api_tokens::NewToken;
use guichet_app::audit::Actor;
use guichet_domain::api_token::TokenScope;
use guichet_domain::Role;

async fn token(t: &TestApp, service: &str, scope: TokenScope) -> (i64, String) {
    t.app
        .api_tokens()
        .create(
            NewToken {
                service_code: service,
                scope,
                expires_on: None,
                label: "essai",
            },
            Actor::Cli,
        )
        .await
        .expect("création du jeton")
}

async fn get_bearer(t: &TestApp, path: &str, secret: &str) -> reqwest::Response {
    client()
        .get(t.url(path))
        .header("Authorization", format!("Bearer {secret}"))
        .send()
        .await
        .expect("GET")
}

async fn service_ids(t: &TestApp, secret: &str) -> Vec<i64> {
    let r = get_bearer(t, "/api/v1/services", secret).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_token_reads_what_its_service_instructors_read_and_nothing_more() {
    let t = spawn_app().await;
    let i95 = t
        .user(
            "instruction.95@exemple.fr",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    t.user(
        "instruction.78@exemple.fr",
        Role::Instructeur,
        Some("78"),
        &[],
    )
    .await;
    let (_, secret) = token(&t, "pref-95", TokenScope::Lecture).await;
    let session = t.login_as(&i95).await;
    // The same answers as the service's instructor gets with a session, route by route.
    let listed = service_ids(&t, &secret).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let all = t
        .app
        .accounts()
        .visible_services(&crate::common::admin())
        .await
        .unwrap();
    for s in &all {
        for path in [
            format!("/api/v1/services/{}", s.id),
            "/api/v1/collectivites/commune/95127/agents".to_string(),
            "/api/v1/collectivites/commune/78646/agents".to_string(),
            "/api/v1/services".to_string(),
        ] {
            let by_token = get_bearer(&t, &path, &secret).await.status();
            let by_session = t.get_with(&session, &path).await.status();
            assert_eq!(by_token, by_session, "{path}");
        }
    }
    let other = all.iter().find(|s| s.code == "pref-78").unwrap();
    assert_eq!(
        get_bearer(&t, &format!("/api/v1/services/{}", other.id), &secret)
            .await
            .status(),
        403
    );
    // A token is no account.
    let r = get_bearer(&t, "/api/v1/moi", &secret).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("n’est pas un compte"));
    // Only the SHA-256 of the secret is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(guichet_app::testing::db(&t.app).pool())
        .await
        .unwrap();
    assert_eq!(stored, vec![guichet_app::auth::token_hash(&secret)]);
    assert!(!stored[0].contains(&secret));
}

#[tokio::test]
async fn unknown_malformed_revoked_and_expired_tokens_are_refused_alike() {
    let t = spawn_app().await;
    t.user(
        "instruction.95@exemple.fr",
        Role::Instructeur,
        Some("95"),
        &[],
    )
    .await;
    let (id, secret) = token(&t, "pref-95", TokenScope::Lecture).await;
    assert_eq!(service_ids(&t, &secret).await.len(), 1);
    let refused = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 401);
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        body["detail"].as_str().unwrap().to_string()
    };
    let unknown = refused(get_bearer(&t, "/api/v1/services", "guichet_inconnu").await).await;
    assert!(unknown.contains("inconnu, expiré ou révoqué"), "{unknown}");
    let malformed = client()
        .get(t.url("/api/v1/services"))
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert!(refused(malformed).await.contains("Bearer"));
    // Revoked: refused at once, and revoking twice is a conflict.
    t.app.api_tokens().revoke(id, Actor::Cli).await.unwrap();
    assert_eq!(
        refused(get_bearer(&t, "/api/v1/services", &secret).await).await,
        unknown
    );
    assert!(matches!(
        t.app.api_tokens().revoke(id, Actor::Cli).await,
        Err(guichet_app::Error::Conflict(_))
    ));
    // Expired: valid through its last day (Paris), refused the day after.
    let (_, dated) = t
        .app
        .api_tokens()
        .create(
            NewToken {
                service_code: "pref-95",
                scope: TokenScope::Lecture,
                expires_on: Some(t.app.today()),
                label: "",
            },
            Actor::Cli,
        )
        .await
        .unwrap();
    assert_eq!(service_ids(&t, &dated).await.len(), 1);
    t.app.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        refused(get_bearer(&t, "/api/v1/services", &dated).await).await,
        unknown
    );
    // A date already past, or a service that does not exist, is refused at creation.
    for (service, day) in [
        ("pref-95", Some(t.app.today() - chrono::Duration::days(1))),
        ("pref-999", None),
    ] {
        let r = t
            .app
            .api_tokens()
            .create(
                NewToken {
                    service_code: service,
                    scope: TokenScope::Lecture,
                    expires_on: day,
                    label: "",
                },
                Actor::Cli,
            )
            .await;
        assert!(r.is_err(), "{service} {day:?}");
    }
}

#[tokio::test]
async fn token_requests_meet_the_router_without_csrf_and_unknown_methods_get_405() {
    let t = spawn_app().await;
    t.user(
        "instruction.95@exemple.fr",
        Role::Instructeur,
        Some("95"),
        &[],
    )
    .await;
    let (_, reader) = token(&t, "pref-95", TokenScope::Lecture).await;
    let (_, writer) = token(&t, "pref-95", TokenScope::Ecriture).await;
    let post = |secret: &str| {
        let secret = secret.to_string();
        let url = t.url("/api/v1/services");
        async move {
            client()
                .post(url)
                .header("Authorization", format!("Bearer {secret}"))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap()
        }
    };
    // No API route writes yet: both meet the router's 405 (a reading token is refused by
    // `Ctx::api_principal` on any route that writes: unit test in ctx.rs), and neither needs a
    // CSRF token or cookie.
    assert_eq!(post(&reader).await.status(), 405);
    assert_eq!(post(&writer).await.status(), 405);
    // A method that writes nothing anywhere is the router's 405 for every caller.
    let trace = client()
        .request(
            reqwest::Method::TRACE,
            t.url("/api/v1/collectivites?q=cergy"),
        )
        .header("Authorization", format!("Bearer {reader}"))
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 405);
}

#[tokio::test]
async fn a_burst_beyond_the_rate_gets_exactly_the_excess_refused_then_the_window_reopens() {
    let t = spawn_with(|c| c.api_requests_per_minute = 5).await;
    t.user(
        "instruction.95@exemple.fr",
        Role::Instructeur,
        Some("95"),
        &[],
    )
    .await;
    let (_, secret) = token(&t, "pref-95", TokenScope::Lecture).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (url, secret) = (t.url("/api/v1/services"), secret.clone());
        burst.spawn(async move {
            client()
                .get(url)
                .header("Authorization", format!("Bearer {secret}"))
                .send()
                .await
                .expect("GET")
        });
    }
    let answers = burst.join_all().await;
    let ok = answers.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok, limited.len()), (5, 7));
    for r in &limited {
        let secs: i64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
    }
    t.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        get_bearer(&t, "/api/v1/services", &secret).await.status(),
        200
    );
}

#[tokio::test]
async fn administrators_create_and_revoke_tokens_on_their_page() {
    let t = spawn_app().await;
    let admin = t
        .user("admin@exemple.fr", Role::Administrateur, None, &[])
        .await;
    let instructor = t
        .user(
            "instruction.95@exemple.fr",
            Role::Instructeur,
            Some("95"),
            &[],
        )
        .await;
    let c = t.login_as(&admin).await;
    let page = t.get_with(&c, "/admin/jetons").await.text().await.unwrap();
    assert!(page.contains("Créer le jeton"), "{page}");
    assert!(page.contains("pref-95"));
    let csrf = t.csrf(&c, "/admin/jetons").await;
    // A missing service is a French message beside the form, nothing created.
    let r = t
        .post_form(
            &c,
            "/admin/jetons",
            &[("csrf", &csrf), ("service", ""), ("portee", "lecture")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("choisissez le service"));
    let r = t
        .post_form(
            &c,
            "/admin/jetons",
            &[
                ("csrf", &csrf),
                ("service", "pref-95"),
                ("portee", "lecture"),
                ("expire", "demain"),
            ],
        )
        .await;
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("date d’expiration invalide"));
    assert!(t.app.api_tokens().list_all().await.unwrap().is_empty());
    let r = t
        .post_form(
            &c,
            "/admin/jetons",
            &[
                ("csrf", &csrf),
                ("service", "pref-95"),
                ("portee", "lecture"),
                ("nom", "tableau de bord départemental"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let secret = html
        .split("<code id=\"jeton-secret\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("le jeton affiché une fois")
        .to_string();
    assert!(secret.starts_with("guichet_"));
    assert_eq!(service_ids(&t, &secret).await.len(), 1);
    // Shown once: the list never shows it again.
    let again = t.get_with(&c, "/admin/jetons").await.text().await.unwrap();
    assert!(!again.contains(&secret));
    assert!(again.contains("tableau de bord départemental"));
    let id = t.app.api_tokens().list_all().await.unwrap()[0].id;
    let r = t
        .post_form(
            &c,
            &format!("/admin/jetons/{id}/revoquer"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("/admin/jetons?revoque={id}"));
    let after = t.get_with(&c, &to).await.text().await.unwrap();
    assert!(after.contains("est révoqué"));
    assert!(after.contains("Révoqué le"));
    assert_eq!(
        get_bearer(&t, "/api/v1/services", &secret).await.status(),
        401
    );
    // Audited, both ways.
    let log = t
        .app
        .audit()
        .log(&crate::common::admin(), 20)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"jeton.creation"), "{actions:?}");
    assert!(actions.contains(&"jeton.revocation"), "{actions:?}");
    // Nobody else gets the page or its actions.
    let other = t.login_as(&instructor).await;
    assert_eq!(t.get_with(&other, "/admin/jetons").await.status(), 403);
    let csrf = t.csrf(&other, "/espace").await;
    let r = t
        .post_form(
            &other,
            "/admin/jetons",
            &[
                ("csrf", &csrf),
                ("service", "pref-95"),
                ("portee", "ecriture"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(t.app.api_tokens().list_all().await.unwrap().len(), 1);
}
