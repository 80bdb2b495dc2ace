//! Attacks on accounts, reproduced through the login, logout and password pages: bursts against
//! the login throttle, lockout as denial of service, logout under concurrency, one-time links
//! that outlive a new password, reset mail floods.

use crate::common::{csrf_in, session_cookie, spawn_app, spawn_with, TestApp, PASSWORD};
use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::App;
use guichet_domain::{Role, Vintage};
use std::net::IpAddr;

const WRONG: &str = "pas le bon mot de passe";

/// A browser-like client whose connections come from `ip` (any 127.0.0.0/8 address reaches the
/// test server on 127.0.0.1; the server sees this one as the client's address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<IpAddr>().expect("adresse"))
        .build()
        .expect("client HTTP")
}

/// Posts the login form once with an already fetched CSRF token.
async fn post_login(
    t: &TestApp,
    c: &reqwest::Client,
    csrf: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    t.post_form(
        c,
        "/connexion",
        &[
            ("csrf", csrf),
            ("email", email),
            ("password", password),
            ("suite", "/espace"),
        ],
    )
    .await
}

/// Sends one wrong password for `email` in a task of its own (a burst runs many at once);
/// the task answers the HTTP status.
fn spawn_wrong_login(
    t: &TestApp,
    c: &reqwest::Client,
    csrf: &str,
    email: String,
) -> tokio::task::JoinHandle<u16> {
    let (base, c, csrf) = (t.base.clone(), c.clone(), csrf.to_string());
    tokio::spawn(async move {
        c.post(format!("{base}/connexion"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email.as_str()),
                ("password", WRONG),
                ("suite", "/espace"),
            ])
            .send()
            .await
            .expect("POST")
            .status()
            .as_u16()
    })
}

async fn counted(t: &TestApp, key: &str) -> i64 {
    guichet_app::testing::storage::accounts::attempt_count(guichet_app::testing::db(&t.app), key)
        .await
        .expect("compteur")
}

fn statuses(all: &[u16], status: u16) -> usize {
    all.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn a_burst_of_a_hundred_wrong_passwords_gets_five_checked() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client_from("127.0.0.1");
    let csrf = t.csrf(&c, "/connexion").await;
    let mut burst = Vec::new();
    for _ in 0..100 {
        burst.push(spawn_wrong_login(&t, &c, &csrf, email.clone()));
    }
    let mut all = Vec::new();
    for r in burst {
        all.push(r.await.unwrap());
    }
    assert_eq!(
        statuses(&all, 401),
        5,
        "only five passwords are checked: {all:?}"
    );
    assert_eq!(statuses(&all, 429), 95, "{all:?}");
    // The lock is short for the account holder: a minute after the fifth failure, they may try.
    t.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        post_login(&t, &c, &csrf, &email, PASSWORD).await.status(),
        303
    );
}

#[tokio::test]
async fn the_right_password_at_the_end_of_a_burst_does_not_log_in() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client_from("127.0.0.1");
    let csrf = t.csrf(&c, "/connexion").await;
    let mut burst = Vec::new();
    for _ in 0..39 {
        burst.push(spawn_wrong_login(&t, &c, &csrf, email.clone()));
    }
    // The wrong guesses are under way (counted, their hashes still being checked): the last
    // request of the burst holds the right password.
    let key = format!("paire:{email}|127.0.0.1");
    for _ in 0..200 {
        if counted(&t, &key).await >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let last = post_login(&t, &c, &csrf, &email, PASSWORD).await;
    let mut all = Vec::new();
    for r in burst {
        all.push(r.await.unwrap());
    }
    assert_eq!(statuses(&all, 401), 5, "five checked: {all:?}");
    assert_eq!(last.status(), 429, "the right password came too late");
    assert_eq!(
        t.get_with(&c, "/espace").await.status(),
        303,
        "no session was opened"
    );
}

#[tokio::test]
async fn twenty_parallel_wrong_passwords_are_each_counted() {
    let t = spawn_app().await;
    let c = client_from("127.0.0.1");
    let csrf = t.csrf(&c, "/connexion").await;
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.push(spawn_wrong_login(
            &t,
            &c,
            &csrf,
            format!("inconnu{i}@exemple.fr"),
        ));
    }
    for r in burst {
        assert_eq!(r.await.unwrap(), 401);
    }
    assert_eq!(counted(&t, "ip:127.0.0.1").await, 20, "no count was lost");
}

#[tokio::test]
async fn wrong_passwords_from_one_address_lock_no_one_else() {
    let t = spawn_app().await;
    let admin = t
        .user("admin@exemple.fr", Role::Administrateur, None, &[])
        .await;
    let attacker = client_from("127.0.0.2");
    let csrf = t.csrf(&attacker, "/connexion").await;
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.push(
            post_login(&t, &attacker, &csrf, &admin, WRONG)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses(&seen, 401), 5, "{seen:?}");
    assert_eq!(statuses(&seen, 429), 15, "{seen:?}");
    // The attacker's address is locked, even with the right password…
    assert_eq!(
        post_login(&t, &attacker, &csrf, &admin, PASSWORD)
            .await
            .status(),
        429
    );
    // …but the administrator, from their own address, is not.
    let holder = client_from("127.0.0.1");
    assert_eq!(t.login_with(&holder, &admin, PASSWORD).await.status(), 303);
    // Growing delays for the attacker: one more try after a minute, then two minutes to wait.
    t.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        post_login(&t, &attacker, &csrf, &admin, WRONG)
            .await
            .status(),
        401
    );
    t.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        post_login(&t, &attacker, &csrf, &admin, WRONG)
            .await
            .status(),
        429,
        "the second delay is two minutes"
    );
    t.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        post_login(&t, &attacker, &csrf, &admin, WRONG)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_account_ceiling_locks_the_account_and_tells_its_holder() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let ceiling = guichet_app::auth::ACCOUNT_CEILING.limit;
    let per_address = guichet_app::auth::PAIR_RULE.limit;
    let addresses = ceiling / per_address;
    let mut attackers = Vec::new();
    for n in 0..addresses {
        let c = client_from(&format!("127.0.1.{}", n + 1));
        let csrf = t.csrf(&c, "/connexion").await;
        let (base, email) = (t.base.clone(), email.clone());
        attackers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..per_address {
                let r = c
                    .post(format!("{base}/connexion"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("email", email.as_str()),
                        ("password", WRONG),
                        ("suite", "/espace"),
                    ])
                    .send()
                    .await
                    .expect("POST");
                seen.push(r.status().as_u16());
            }
            seen
        }));
    }
    for a in attackers {
        assert!(a.await.unwrap().iter().all(|s| *s == 401));
    }
    // The ceiling is reached: the account is closed to every address for an hour…
    let holder = client_from("127.0.0.1");
    let r = t.login_with(&holder, &email, PASSWORD).await;
    assert_eq!(r.status(), 429);
    // …and its holder was told, once.
    let alerts: Vec<String> = t
        .emails()
        .into_iter()
        .filter(|m| m.contains(&email) && m.contains("sont suspendues"))
        .collect();
    assert_eq!(alerts.len(), 1, "one alert");
    assert!(alerts[0].contains("suspendues"), "{}", alerts[0]);
    t.app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(t.login_with(&holder, &email, PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn logouts_under_concurrency_always_end_the_session() {
    let t = spawn_app().await;
    let mut emails = Vec::new();
    for n in 0..16 {
        emails.push(
            t.user(
                &format!("agent{n}@cergy.test"),
                Role::Demandeur,
                None,
                &["commune:95127"],
            )
            .await,
        );
    }
    let t = std::sync::Arc::new(t);
    let mut clients = Vec::new();
    for email in emails {
        let t = t.clone();
        clients.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..4 {
                let c = client_from("127.0.0.1");
                let r = t.login_with(&c, &email, PASSWORD).await;
                assert_eq!(r.status(), 303, "connexion");
                let cookie = session_cookie(&r);
                let html = t.get_with(&c, "/espace").await.text().await.unwrap();
                let csrf = csrf_in(&html).expect("jeton CSRF");
                let out = t.post_form(&c, "/deconnexion", &[("csrf", &csrf)]).await;
                let bare = reqwest::Client::new();
                let still = bare
                    .get(t.url("/api/v1/moi"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                outcomes.push((out.status().as_u16(), still));
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    assert_eq!(all.len(), 64);
    assert!(
        all.iter().all(|(out, still)| *out == 303 && *still == 401),
        "every logout answers and ends its session: {all:?}"
    );
}

/// The one-time link in the last email to `to` whose subject contains `subject`, as a path.
fn link_in_mail(t: &TestApp, to: &str, subject: &str) -> String {
    let mail = t
        .emails()
        .into_iter()
        .rev()
        .find(|m| m.contains(to) && m.contains(subject))
        .unwrap_or_else(|| panic!("aucun courriel « {subject} » pour {to}"));
    let mail = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = mail.find(&t.base).expect("lien");
    mail[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches(&t.base)
        .to_string()
}

async fn set_password_through(t: &TestApp, path: &str, password: &str) -> reqwest::Response {
    let c = client_from("127.0.0.1");
    let page = t.get_with(&c, path).await;
    let status = page.status();
    let html = page.text().await.unwrap();
    let Some(csrf) = csrf_in(&html) else {
        panic!("{path} : {status}");
    };
    let token = path.split("jeton=").nth(1).unwrap();
    t.post_form(
        &c,
        "/mot-de-passe/definir",
        &[
            ("csrf", &csrf),
            ("jeton", token),
            ("password", password),
            ("confirmation", password),
        ],
    )
    .await
}

#[tokio::test]
async fn setting_a_password_revokes_every_other_link_of_the_account() {
    let t = spawn_app().await;
    let email = "nouvel.agent@exemple.fr";
    t.app
        .accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: email.into(),
                display_name: "Nouvel agent".into(),
                role: Role::Instructeur,
                service: Some(guichet_domain::access::ServiceTarget::parse("95").unwrap()),
                collectivites: vec![],
            },
            Actor::Cli,
        )
        .await
        .unwrap();
    t.settle().await;
    let first = link_in_mail(&t, email, "Votre compte Guichet");
    // The new agent asks for a reset before using the first link, and uses the reset link.
    assert_eq!(t.ask_for_reset(email).await.status(), 200);
    let reset = link_in_mail(&t, email, "valable une heure");
    assert_ne!(first, reset);
    assert_eq!(
        set_password_through(&t, &reset, "mot de passe de la réinitialisation")
            .await
            .status(),
        303
    );
    // The first-password link no longer sets anything.
    let c = client_from("127.0.0.1");
    let r = t.get_with(&c, &first).await;
    assert_eq!(r.status(), 410, "le premier lien est révoqué");
    assert_eq!(
        t.login_with(&c, email, "mot de passe de la réinitialisation")
            .await
            .status(),
        303
    );

    // The other way round: a reset link dies when the first-password link is used.
    let other = "autre.agent@exemple.fr";
    t.app
        .accounts()
        .create_user(
            guichet_app::accounts::NewUser {
                email: other.into(),
                display_name: "Autre agent".into(),
                role: Role::Instructeur,
                service: Some(guichet_domain::access::ServiceTarget::parse("95").unwrap()),
                collectivites: vec![],
            },
            Actor::Cli,
        )
        .await
        .unwrap();
    t.settle().await;
    let first = link_in_mail(&t, other, "Votre compte Guichet");
    assert_eq!(t.ask_for_reset(other).await.status(), 200);
    let reset = link_in_mail(&t, other, "valable une heure");
    assert_eq!(
        set_password_through(&t, &first, "premier mot de passe choisi")
            .await
            .status(),
        303
    );
    assert_eq!(t.get_with(&c, &reset).await.status(), 410);
}

async fn ask_reset_from(t: &TestApp, ip: &str, email: &str) -> reqwest::Response {
    let c = client_from(ip);
    let csrf = t.csrf(&c, "/mot-de-passe/oublie").await;
    t.post_form(
        &c,
        "/mot-de-passe/oublie",
        &[("csrf", &csrf), ("email", email)],
    )
    .await
}

#[tokio::test]
async fn password_reset_requests_are_throttled_per_address_and_per_ip() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let resets = |t: &TestApp| {
        t.emails()
            .iter()
            .filter(|m| m.contains(&email) && m.contains("valable une heure"))
            .count()
    };
    // One address, asked for from many IP addresses: three mails, then a refusal.
    for n in 1..=3 {
        let r = ask_reset_from(&t, &format!("127.0.2.{n}"), &email).await;
        assert_eq!(r.status(), 200);
    }
    let r = ask_reset_from(&t, "127.0.2.4", &email).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));
    t.settle().await;
    assert_eq!(resets(&t), 3, "three mails, not more");
    // One IP address asking for many addresses: twenty, then a refusal.
    for n in 0..20 {
        let r = ask_reset_from(&t, "127.0.3.1", &format!("personne{n}@exemple.fr")).await;
        assert_eq!(r.status(), 200, "demande {n}");
    }
    let r = ask_reset_from(&t, "127.0.3.1", "encore@exemple.fr").await;
    assert_eq!(r.status(), 429);
    // An hour later the address may ask again.
    t.app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(ask_reset_from(&t, "127.0.2.9", &email).await.status(), 200);
    t.settle().await;
    assert_eq!(resets(&t), 4);
}

#[tokio::test]
async fn an_import_whose_audit_entry_fails_leaves_nothing_imported() {
    let data_dir = guichet_testkit::temp_dir();
    let mut config = Config::defaults(&data_dir);
    config.database_url = guichet_testkit::fresh_database_url(&data_dir).await;
    config.npm_dir = crate::common::fixtures_npm_dir();
    let clock = Clock::starting_at(chrono::Utc::now());
    let app = App::start(config, clock).await.expect("démarrage");
    // The audit log cannot be written: its head row is gone.
    sqlx::query("DELETE FROM audit_head")
        .execute(guichet_app::testing::db(&app).pool())
        .await
        .unwrap();
    let e = app
        .referentiel()
        .import_vintage(Vintage::Y2021, Actor::Cli, &|_, _| {})
        .await;
    assert!(e.is_err(), "the import fails");
    let communes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ref_communes")
        .fetch_one(guichet_app::testing::db(&app).pool())
        .await
        .unwrap();
    assert_eq!(communes, 0, "nothing imported");
    assert!(
        guichet_app::testing::storage::referentiel::imports(guichet_app::testing::db(&app))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_address_counted_is_the_connections() {
    // The address seen is the connection's when no proxy is trusted.
    let t = spawn_with(|_| {}).await;
    let c = client_from("127.0.0.5");
    let csrf = t.csrf(&c, "/connexion").await;
    assert_eq!(
        post_login(&t, &c, &csrf, "x@exemple.fr", WRONG)
            .await
            .status(),
        401
    );
    assert_eq!(counted(&t, "ip:127.0.0.5").await, 1);
}

#[tokio::test]
async fn a_corrupt_session_timestamp_is_an_error_not_a_fresh_session() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = t.login_as(&email).await;
    sqlx::query("UPDATE sessions SET created_at = 'corrompu'")
        .execute(guichet_app::testing::db(&t.app).pool())
        .await
        .unwrap();
    let before: String = sqlx::query_scalar("SELECT expires_at FROM sessions")
        .fetch_one(guichet_app::testing::db(&t.app).pool())
        .await
        .unwrap();
    t.app.clock.advance(chrono::Duration::minutes(5));
    let r = t.get_with(&c, "/espace").await;
    assert_eq!(r.status(), 500, "an error, with a reference");
    let after: String = sqlx::query_scalar("SELECT expires_at FROM sessions")
        .fetch_one(guichet_app::testing::db(&t.app).pool())
        .await
        .unwrap();
    assert_eq!(before, after, "the session's limit was not moved");
}

#[tokio::test]
async fn an_unknown_role_in_the_database_is_an_error_not_inconnu() {
    let t = spawn_app().await;
    let admin = t
        .user("admin@exemple.fr", Role::Administrateur, None, &[])
        .await;
    let other = t.applicant().await;
    let c = t.login_as(&admin).await;
    assert_eq!(t.get_with(&c, "/admin/utilisateurs").await.status(), 200);
    sqlx::query("UPDATE users SET role = 'pirate' WHERE email = $1")
        .bind(&other)
        .execute(guichet_app::testing::db(&t.app).pool())
        .await
        .unwrap();
    let r = t.get_with(&c, "/admin/utilisateurs").await;
    assert_eq!(r.status(), 500);
    assert!(!r.text().await.unwrap().contains("inconnu"));
}
