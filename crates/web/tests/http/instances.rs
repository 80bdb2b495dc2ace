//! Two application servers on one database: sessions and the referential live in the database,
//! so either instance can serve any request.

use crate::common::{client, serve, session_cookie, spawn_app, TestApp, PASSWORD};
use guichet_app::App;
use serde_json::Value;

/// Starts a second instance on the first one's database (same configuration and clock, another
/// port). Its package directory is empty, so it could not import the referential even if it
/// tried.
async fn second_instance(first: &TestApp) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let addr = listener.local_addr().expect("adresse");
    let data_dir = guichet_testkit::temp_dir();
    let mut config = (*first.app.config).clone();
    config.bind = addr.to_string();
    config.base_url = format!("http://{addr}");
    config.data_dir = data_dir.clone();
    config.npm_dir = data_dir.join("node_modules");
    let app = App::start(config, first.app.clock.clone())
        .await
        .expect("démarrage de la seconde instance");
    serve(listener, app, data_dir)
}

#[tokio::test]
async fn two_instances_on_one_database_share_sessions_and_referential() {
    let one = spawn_app().await;
    let imports_before = one.app.referentiel().imports().await.unwrap();
    let two = second_instance(&one).await;
    assert_eq!(two.app.config.database_url, one.app.config.database_url);
    assert_ne!(two.base, one.base);
    let email = one.applicant().await;

    // Log in on instance 1.
    let browser = client();
    let r = one.login_with(&browser, &email, PASSWORD).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r);
    assert_eq!(one.get_with(&browser, "/api/v1/moi").await.status(), 200);

    // The very same cookie, sent to instance 2 by a client that keeps no cookies of its own.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let on_two = |path: &str| bare.get(two.url(path)).header("cookie", &cookie);
    let r = on_two("/api/v1/moi").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let moi: Value = r.json().await.unwrap();
    assert_eq!(moi["courriel"], email.as_str());

    // Log out on instance 2, with the session's CSRF token read from a page of instance 2.
    let html = on_two("/espace")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::csrf_in(&html).expect("jeton CSRF sur /espace");
    let r = bare
        .post(two.url("/deconnexion"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/connexion?statut=deconnecte");

    // Instance 1 no longer knows the session either.
    assert_eq!(one.get_with(&browser, "/api/v1/moi").await.status(), 401);
    let r = bare
        .get(one.url("/api/v1/moi"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(on_two("/api/v1/moi").send().await.unwrap().status(), 401);

    // Instance 2 searches the referential instance 1 imported, without importing it again.
    let r = two.get("/api/v1/collectivites?q=cergy").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["millesime"], 2021);
    assert_eq!(body["resultats"][0]["nom"], "Cergy");
    assert_eq!(body["resultats"][0]["population"], 65911);
    let imports_after = two.app.referentiel().imports().await.unwrap();
    assert_eq!(
        format!("{imports_after:?}"),
        format!("{imports_before:?}"),
        "aucun nouvel import"
    );
}
