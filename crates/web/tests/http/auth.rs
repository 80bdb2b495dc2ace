//! Login, sessions, throttling, CSRF, body limits, password links.

use crate::common::{client, session_cookie, spawn_app, PASSWORD};
use guichet_domain::Role;

#[tokio::test]
async fn an_agent_logs_in_and_reaches_mon_espace() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let r = t.login_with(&c, &email, PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/espace");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("guichet_session="));
    let cookie = cookie.expect("cookie de session");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let page = t.get_with(&c, "/espace").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Mon espace") && html.contains("Cergy"),
        "{html}"
    );
}

#[tokio::test]
async fn a_wrong_password_gets_a_french_message_and_no_session() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let r = t.login_with(&c, &email, "pas le bon mot de passe").await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Adresse électronique ou mot de passe incorrect"),
        "{html}"
    );
    assert_eq!(t.get_with(&c, "/espace").await.status(), 303);
    // An unknown account gets the very same answer.
    let r = t
        .login_with(&c, "personne@nulle.part", "pas le bon mot de passe")
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn logins_are_throttled_per_account_after_five_failures() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            t.login_with(&c, &email, "mauvais mot de passe")
                .await
                .status(),
            401
        );
    }
    let r = t.login_with(&c, &email, PASSWORD).await;
    assert_eq!(
        r.status(),
        429,
        "même le bon mot de passe attend la fin du blocage"
    );
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));
    // Fifteen minutes later the account opens again.
    t.app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(t.login_with(&c, &email, PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn the_session_changes_at_login_and_ends_at_logout() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let first = t.login_with(&c, &email, PASSWORD).await;
    let first_token = session_cookie(&first);
    let second = t.login_with(&c, &email, PASSWORD).await;
    let second_token = session_cookie(&second);
    assert_ne!(first_token, second_token);
    // The first session was closed by the second login.
    let old = client();
    let r = old
        .get(t.url("/api/v1/moi"))
        .header("cookie", &first_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let csrf = t.csrf(&c, "/espace").await;
    let out = t.post_form(&c, "/deconnexion", &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(t.get_with(&c, "/api/v1/moi").await.status(), 401);
    let r = old
        .get(t.url("/api/v1/moi"))
        .header("cookie", &second_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "la session fermée ne sert plus");
}

#[tokio::test]
async fn a_forged_or_missing_csrf_token_is_refused() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let _ = t.csrf(&c, "/connexion").await;
    let r = t
        .post_form(
            &c,
            "/connexion",
            &[("csrf", "forge"), ("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = t
        .post_form(
            &c,
            "/connexion",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Le formulaire a expiré ou ne provient pas de ce site"),
        "{html}"
    );
    assert_eq!(
        t.get_with(&c, "/espace").await.status(),
        303,
        "aucune session ouverte"
    );
    // A logged-in user's logout needs the session's token too.
    let c = t.login_as(&email).await;
    assert_eq!(
        t.post_form(&c, "/deconnexion", &[("csrf", "forge")])
            .await
            .status(),
        403
    );
    assert_eq!(
        t.get_with(&c, "/espace").await.status(),
        200,
        "toujours connecté"
    );
}

#[tokio::test]
async fn a_ten_megabyte_form_is_refused_without_harm() {
    let t = spawn_app().await;
    let c = client();
    let csrf = t.csrf(&c, "/connexion").await;
    let big = "x".repeat(10 * 1024 * 1024);
    let r = t
        .post_form(
            &c,
            "/connexion",
            &[("csrf", &csrf), ("email", &big), ("password", "x")],
        )
        .await;
    assert_eq!(r.status(), 413);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("dépasse la taille autorisée"));
    assert_eq!(t.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_expires() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let r = t.ask_for_reset(&email).await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Si un compte existe pour cette adresse"));
    let link = t.last_link_to(&email);
    let path = link.trim_start_matches(&t.base).to_string();
    let form = t.get_with(&c, &path).await;
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    let token = path.split("jeton=").nth(1).unwrap().to_string();
    let csrf = crate::common::csrf_in(&html).unwrap();
    // Too short, then mismatched: explained, link still usable.
    let r = t
        .post_form(
            &c,
            "/mot-de-passe/definir",
            &[
                ("csrf", &csrf),
                ("jeton", &token),
                ("password", "court"),
                ("confirmation", "court"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("au moins 12 caractères"));
    let r = t
        .post_form(
            &c,
            "/mot-de-passe/definir",
            &[
                ("csrf", &csrf),
                ("jeton", &token),
                ("password", "nouvelle phrase secrète"),
                ("confirmation", "autre phrase secrète"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = t
        .post_form(
            &c,
            "/mot-de-passe/definir",
            &[
                ("csrf", &csrf),
                ("jeton", &token),
                ("password", "nouvelle phrase secrète"),
                ("confirmation", "nouvelle phrase secrète"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        t.login_with(&client(), &email, PASSWORD).await.status(),
        401,
        "l’ancien mot de passe ne sert plus"
    );
    assert_eq!(
        t.login_with(&client(), &email, "nouvelle phrase secrète")
            .await
            .status(),
        303
    );
    // Used once: the link now says so.
    let again = t.get_with(&c, &path).await;
    assert_eq!(again.status(), 410);
    assert!(again.text().await.unwrap().contains("déjà été utilisé"));
    // A fresh link left for more than an hour has expired.
    t.ask_for_reset(&email).await;
    let late = t
        .last_link_to(&email)
        .trim_start_matches(&t.base)
        .to_string();
    assert_ne!(late, path);
    t.app.clock.advance(chrono::Duration::minutes(61));
    let expired = t.get_with(&c, &late).await;
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("Ce lien a expiré"));
    let unknown = t.get_with(&c, "/mot-de-passe/definir?jeton=inconnu").await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_address_reveals_nothing() {
    let t = spawn_app().await;
    let r = t.ask_for_reset("inconnu@exemple.fr").await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Si un compte existe pour cette adresse"));
    assert!(t.emails().iter().all(|m| !m.contains("inconnu@exemple.fr")));
    let r = t.ask_for_reset("pas une adresse").await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Adresse électronique invalide"));
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let csrf = t.csrf(&c, "/connexion").await;
    let r = t
        .post_form(
            &c,
            "/connexion",
            &[
                ("csrf", &csrf),
                ("email", &email),
                ("password", PASSWORD),
                ("suite", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.headers()["location"], "/espace");
}

#[tokio::test]
async fn a_first_password_link_from_account_creation_opens_the_account() {
    let t = spawn_app().await;
    let (_, link) = t
        .app
        .accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: "Nouvel.Agent@Exemple.fr".into(),
                display_name: "Nouvel agent".into(),
                role: Role::Instructeur,
                service: Some(guichet_domain::access::ServiceTarget::parse("95").unwrap()),
                collectivites: vec![],
            },
            guichet_app::audit::Actor::Cli,
        )
        .await
        .unwrap();
    // The welcome message carries a link of its own, made by the worker when it sends it (the
    // queue never holds a usable secret).
    t.settle().await;
    let mailed = t.last_link_to("nouvel.agent@exemple.fr");
    assert!(mailed.starts_with(&format!("{}/mot-de-passe/definir?jeton=", t.base)));
    assert_ne!(mailed, link);
    assert_eq!(
        t.get(mailed.trim_start_matches(&t.base)).await.status(),
        200,
        "le lien envoyé est valable"
    );
    let c = client();
    let path = link.trim_start_matches(&t.base).to_string();
    let html = t.get_with(&c, &path).await.text().await.unwrap();
    assert!(html.contains("Choisir votre mot de passe"));
    let csrf = crate::common::csrf_in(&html).unwrap();
    let token = path.split("jeton=").nth(1).unwrap();
    let r = t
        .post_form(
            &c,
            "/mot-de-passe/definir",
            &[
                ("csrf", &csrf),
                ("jeton", token),
                ("password", PASSWORD),
                ("confirmation", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        t.login_with(&c, "nouvel.agent@exemple.fr", PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn logins_are_throttled_per_address_across_accounts() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    // Fifty failures spread over many accounts from one address lock that address.
    for i in 0..50 {
        let r = t
            .login_with(
                &c,
                &format!("inconnu{i}@exemple.fr"),
                "mauvais mot de passe",
            )
            .await;
        assert_eq!(r.status(), 401, "tentative {i}");
    }
    let r = t.login_with(&c, &email, PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));
}

#[tokio::test]
async fn behind_https_cookies_are_secure_and_hsts_is_sent() {
    let t = crate::common::spawn_with(|c| c.base_url = "https://guichet.exemple.fr".into()).await;
    let r = t.get("/connexion").await;
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}
