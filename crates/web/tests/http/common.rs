//! `spawn_app()` and helpers for talking to it.

use chrono::TimeZone;
use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::Config;
use guichet_app::jobs::{Registry, WorkerOptions, Workers};
use guichet_app::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteRef, Principal, Role, Vintage};
use std::path::PathBuf;

pub const PASSWORD: &str = "une phrase de passe correcte";

/// A national administrator as the access rules see one, for tests that call use cases directly.
pub fn admin() -> Principal {
    Principal {
        user_id: 0,
        role: Role::Administrateur,
        service: None,
        collectivites: vec![],
    }
}

pub struct TestApp {
    pub base: String,
    pub app: App,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    /// The instance's job workers (`config.workers` of them, polling fast).
    pub workers: tokio::sync::Mutex<Option<Workers>>,
}

/// Worker settings for tests: quick polls and a short scheduler period.
pub fn test_worker_options(workers: usize) -> WorkerOptions {
    WorkerOptions {
        poll: std::time::Duration::from_millis(25),
        schedule_every: std::time::Duration::from_millis(100),
        ..WorkerOptions::new(workers)
    }
}

pub fn fixtures_npm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node_modules")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client HTTP")
}

/// Starts Guichet with the fixture referential (a subset of both vintages) and the clock at
/// 1 June 2021, 09:00 in Paris.
pub async fn spawn_app() -> TestApp {
    spawn_with_npm_dir(fixtures_npm_dir()).await
}

pub async fn spawn_with_npm_dir(npm_dir: PathBuf) -> TestApp {
    spawn_with(move |config| config.npm_dir = npm_dir).await
}

/// Like `spawn_app()`, but `tweak` may change the configuration (SMTP settings, say) just before
/// the application starts.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = guichet_testkit::temp_dir();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let addr = listener.local_addr().expect("adresse");
    let mut config = Config::defaults(&data_dir);
    config.database_url = guichet_testkit::fresh_database_url(&data_dir).await;
    config.npm_dir = fixtures_npm_dir();
    config.bind = addr.to_string();
    config.base_url = format!("http://{addr}");
    config.db_max_connections = 4;
    tweak(&mut config);
    let clock = Clock::starting_at(chrono::Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap());
    let app = App::start(config, clock).await.expect("démarrage");
    for v in Vintage::ALL {
        app.referentiel()
            .import_vintage(v, Actor::Cli, &|_, _| {})
            .await
            .expect("import du référentiel");
    }
    serve(listener, app, data_dir)
}

/// Serves `app` on `listener` in the background.
pub fn serve(listener: tokio::net::TcpListener, app: App, data_dir: PathBuf) -> TestApp {
    let addr = listener.local_addr().expect("adresse");
    let server = app.clone();
    tokio::spawn(async move { guichet_web::serve_on(listener, server).await });
    let workers = Workers::start(
        &app,
        Registry::standard(&app),
        test_worker_options(app.config.workers),
    );
    TestApp {
        base: format!("http://{addr}"),
        app,
        client: client(),
        data_dir,
        workers: tokio::sync::Mutex::new(Some(workers)),
    }
}

impl TestApp {
    /// Replaces this instance's workers with `n` running `registry`'s kinds.
    pub async fn restart_workers(&self, registry: Registry, n: usize) {
        let mut slot = self.workers.lock().await;
        if let Some(w) = slot.take() {
            w.stop().await;
        }
        *slot = Some(Workers::start(&self.app, registry, test_worker_options(n)));
    }

    /// Waits until no job is due or running (mail sent, purges done); jobs backing off until
    /// later are not waited for.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let c = self.app.jobs().counts().await.expect("état de la file");
            if c.due == 0 && c.running == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "la file de travaux ne se vide pas : {c:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    /// Creates an account with a known password; returns its email.
    pub async fn user(
        &self,
        email: &str,
        role: Role,
        service: Option<&str>,
        collectivites: &[&str],
    ) -> String {
        let (id, _) = self
            .app
            .accounts()
            .create_user(
                guichet_app::accounts::NewUser {
                    email: email.into(),
                    display_name: format!("Personne {email}"),
                    role,
                    service: service.map(|s| ServiceTarget::parse(s).expect("territoire")),
                    collectivites: collectivites
                        .iter()
                        .map(|c| CollectiviteRef::parse(c).expect("collectivité"))
                        .collect(),
                },
                Actor::Cli,
            )
            .await
            .expect("création du compte");
        // Its welcome message goes out before the password is set (else it would be moot).
        self.settle().await;
        self.app
            .sessions()
            .set_password(id, PASSWORD, Actor::Cli)
            .await
            .expect("mot de passe");
        email.to_string()
    }

    /// Reads the CSRF token from a page's forms.
    pub async fn csrf(&self, client: &reqwest::Client, path: &str) -> String {
        let html = client
            .get(self.url(path))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("corps");
        csrf_in(&html).unwrap_or_else(|| panic!("pas de jeton CSRF sur {path}"))
    }

    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Logs in with a new browser-like client and returns it.
    pub async fn login_as(&self, email: &str) -> reqwest::Client {
        let c = client();
        let r = self.login_with(&c, email, PASSWORD).await;
        assert_eq!(r.status(), 303, "connexion de {email}");
        c
    }

    pub async fn login_with(
        &self,
        c: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = self.csrf(c, "/connexion").await;
        self.post_form(
            c,
            "/connexion",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("suite", "/espace"),
            ],
        )
        .await
    }

    /// The emails written to disk (no SMTP in tests), oldest first.
    pub fn emails(&self) -> Vec<String> {
        let dir = self.data_dir.join("courriels");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("courriel"))
            .collect()
    }

    /// The one-time link in the last email sent to `to`.
    pub fn last_link_to(&self, to: &str) -> String {
        let mail = self
            .emails()
            .into_iter()
            .rev()
            .find(|m| m.contains(to))
            .unwrap_or_else(|| panic!("aucun courriel pour {to}"));
        // Undo quoted-printable soft breaks should a transport have used them.
        let mail = mail
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        let start = mail.find(&self.base).expect("lien dans le courriel");
        mail[start..]
            .split_whitespace()
            .next()
            .expect("lien")
            .to_string()
    }
}

/// The `name=value` of the session cookie a response sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("guichet_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("cookie de session")
}

impl TestApp {
    /// An applicant agent of Cergy, with the known password.
    pub async fn applicant(&self) -> String {
        self.user(
            "agent@cergy.test",
            Role::Demandeur,
            None,
            &["commune:95127"],
        )
        .await
    }

    /// Asks for a password reset through the form, from a fresh browser.
    pub async fn ask_for_reset(&self, email: &str) -> reqwest::Response {
        let c = client();
        let csrf = self.csrf(&c, "/mot-de-passe/oublie").await;
        let r = self
            .post_form(
                &c,
                "/mot-de-passe/oublie",
                &[("csrf", &csrf), ("email", email)],
            )
            .await;
        // The link goes out through the job queue: wait for it, as a person waits for mail.
        self.settle().await;
        r
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}
