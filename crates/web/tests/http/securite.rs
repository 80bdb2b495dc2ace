//! Web-layer protections found missing by an attack on the running server (issue 8): open
//! redirect after login, cross-site requests, forwarded addresses, request identifiers,
//! `__Host-` cookies, multipart forms and their limits, the dummy hash made at start-up.

use crate::common::{client, csrf_in, spawn_app, spawn_with, TestApp, PASSWORD};
use std::sync::{Arc, Mutex};

/// Logs in through the form with the given `suite` and headers; returns the response.
async fn login_with_suite(
    t: &TestApp,
    c: &reqwest::Client,
    email: &str,
    suite: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = t.csrf(c, "/connexion").await;
    let mut req = c.post(t.url("/connexion")).form(&[
        ("csrf", csrf.as_str()),
        ("email", email),
        ("password", PASSWORD),
        ("suite", suite),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("POST")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Resolves a `Location` the way a browser does, against the page's URL.
fn resolved_host(t: &TestApp, loc: &str) -> Option<String> {
    let base = url::Url::parse(&t.url("/connexion")).ok()?;
    let u = base.join(loc).ok()?;
    Some(
        format!("{}://{}", u.scheme(), u.host_str()?)
            + &u.port().map(|p| format!(":{p}")).unwrap_or_default(),
    )
}

#[tokio::test]
async fn after_login_the_browser_never_lands_on_another_site() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    // The reported attack: the query carries a TAB, which the browser drops from `Location`.
    let c = client();
    let html = t
        .get_with(&c, "/connexion?suite=/%09/evil.example")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"name="suite" value="/espace""#),
        "le champ caché ne garde pas la cible : {html}"
    );
    for suite in [
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "/.//evil.example",
        "/./\\evil.example",
        " //evil.example",
        "https://evil.example/",
        "https:evil.example",
        "//127.0.0.1@evil.example",
        "javascript:alert(1)",
        "/\u{b}/evil.example",
        "//evil.example%2F",
    ] {
        let c = client();
        let r = login_with_suite(&t, &c, &email, suite, &[]).await;
        if suite.contains('\n') {
            assert_eq!(r.status(), 400, "{suite:?}");
            continue;
        }
        assert_eq!(r.status(), 303, "{suite:?}");
        let loc = location(&r);
        assert_eq!(
            resolved_host(&t, &loc).as_deref(),
            Some(t.base.as_str()),
            "{suite:?} → Location {loc:?}"
        );
        assert!(
            !loc.contains(['\t', '\\']) && !loc.starts_with("//"),
            "{suite:?} → {loc:?}"
        );
    }
    // A path of the site is followed, as the parser writes it.
    for (suite, expected) in [
        ("/espace/services", "/espace/services"),
        (
            "/collectivites/commune/95127?x=1",
            "/collectivites/commune/95127?x=1",
        ),
        ("/%2F/evil.example", "/%2F/evil.example"),
    ] {
        let c = client();
        let r = login_with_suite(&t, &c, &email, suite, &[]).await;
        assert_eq!(location(&r), expected, "{suite:?}");
    }
}

#[tokio::test]
async fn a_return_path_with_a_line_break_is_refused_before_any_session() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let c = client();
    let r = t
        .get_with(&c, "/connexion?suite=/%0d%0aSet-Cookie:%20x=y")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("saut de ligne"));
    for suite in ["/\r\nSet-Cookie: x=y", "/espace\r", "/espace\n"] {
        let c = client();
        let r = login_with_suite(&t, &c, &email, suite, &[]).await;
        assert_eq!(r.status(), 400, "{suite:?}");
        assert!(
            r.headers()
                .get_all("set-cookie")
                .iter()
                .all(|v| !v.to_str().unwrap().starts_with("guichet_session=")),
            "aucune session ouverte pour {suite:?}"
        );
        assert_eq!(t.get_with(&c, "/espace").await.status(), 303, "{suite:?}");
    }
}

#[tokio::test]
async fn a_state_changing_request_from_another_site_is_refused() {
    let t = spawn_app().await;
    let email = t.applicant().await;
    let cross = [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://127.0.0.1:1")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("origin", t.base.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ];
    for headers in &cross {
        let c = client();
        let r = login_with_suite(&t, &c, &email, "/espace", headers).await;
        assert_eq!(r.status(), 403, "{headers:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("provient d’un autre site"), "{html}");
        assert_eq!(t.get_with(&c, "/espace").await.status(), 303, "{headers:?}");
    }
    // The site's own pages, and clients that send neither header, pass.
    for headers in [
        vec![
            ("origin", t.base.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![("sec-fetch-site", "none")],
        vec![],
    ] {
        let c = client();
        let r = login_with_suite(&t, &c, &email, "/espace", &headers).await;
        assert_eq!(r.status(), 303, "{headers:?}");
    }
    // Logout too: a cross-site form leaves the session open, whatever its token.
    let c = t.login_as(&email).await;
    let csrf = t.csrf(&c, "/espace").await;
    let r = c
        .post(t.url("/deconnexion"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(t.get_with(&c, "/espace").await.status(), 200);
    // The public computation changes nothing and stays open to other sites.
    let r = c
        .post(t.url("/api/v1/simulations"))
        .header("origin", "https://autre-site.example")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 403);
}

/// The `ip` the audit log recorded for the last login.
async fn last_login_ip(t: &TestApp) -> Option<String> {
    let entries = guichet_app::audit::latest(guichet_app::testing::db(&t.app), 20)
        .await
        .unwrap();
    let e = entries
        .iter()
        .find(|e| e.action == "session.connexion")
        .expect("entrée de connexion");
    let after: serde_json::Value =
        serde_json::from_str(e.after.as_deref().unwrap_or("{}")).unwrap();
    after["ip"].as_str().map(str::to_string)
}

#[tokio::test]
async fn behind_proxies_only_the_trusted_hops_of_x_forwarded_for_count() {
    for (hops, xff, expected) in [
        (0, "203.0.113.7", "127.0.0.1"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (1, "203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (1, "6.6.6.6, pas-une-adresse", "127.0.0.1"),
    ] {
        let t = spawn_with(move |c| c.trusted_proxy_hops = hops).await;
        let email = t.applicant().await;
        let c = client();
        let r = login_with_suite(&t, &c, &email, "/espace", &[("x-forwarded-for", xff)]).await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            last_login_ip(&t).await.as_deref(),
            Some(expected),
            "{hops} mandataire(s), X-Forwarded-For: {xff}"
        );
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_request_has_an_identifier_in_its_logs_errors_and_audit_entries() {
    // Logs of this thread (the test runtime runs the server on it too).
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = spawn_app().await;
    let email = t.applicant().await;

    // Every response names its request; an identifier sent by a client (no proxy) is replaced.
    let r = t.get("/").await;
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    let r = client()
        .get(t.url("/"))
        .header("x-request-id", "forge-par-le-client")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "forge-par-le-client");

    // A log line written while serving a request carries its identifier.
    let c = client();
    let _ = t.csrf(&c, "/connexion").await;
    let r = c
        .post(t.url("/connexion"))
        .form(&[
            ("csrf", "forge"),
            ("email", email.as_str()),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("jeton CSRF absent ou invalide"))
        .unwrap_or_else(|| panic!("ligne de journal absente :\n{text}"));
    assert!(line.contains(&id), "{line}");

    // The audit entry of a login names the request that made it.
    let c = client();
    let r = t.login_with(&c, &email, PASSWORD).await;
    assert_eq!(r.status(), 303);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let entries = guichet_app::audit::latest(guichet_app::testing::db(&t.app), 5)
        .await
        .unwrap();
    let after: serde_json::Value =
        serde_json::from_str(entries[0].after.as_deref().unwrap()).unwrap();
    assert_eq!(entries[0].action, "session.connexion");
    assert_eq!(after["requete"], id.as_str());
    // The chain still holds with the identifier inside the hashed details.
    guichet_app::audit::verify(guichet_app::testing::db(&t.app))
        .await
        .expect("chaîne intacte");

    // An internal error shows the request's identifier as its reference.
    guichet_app::testing::db(&t.app).close().await;
    let r = t.get_with(&c, "/espace").await;
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("réf. {id}")), "{id} : {html}");
}

#[tokio::test]
async fn a_trusted_proxy_may_hand_its_request_identifier_on() {
    let t = spawn_with(|c| c.trusted_proxy_hops = 1).await;
    let r = client()
        .get(t.url("/"))
        .header("x-request-id", "lb-7f3a-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "lb-7f3a-0001");
    let r = client()
        .get(t.url("/"))
        .header("x-request-id", "pas un identifiant ; <script>")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "pas un identifiant ; <script>");
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn behind_https_cookies_take_the_host_prefix_and_only_those_are_read() {
    let t = spawn_with(|c| c.base_url = "https://guichet.exemple.fr".into()).await;
    let email = t.applicant().await;
    // A browser without a cookie store: cookies are sent by hand, as a browser over HTTPS would.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(t.url("/connexion")).send().await.unwrap();
    let cookies = set_cookies(&r);
    let html = r.text().await.unwrap();
    let csrf = csrf_in(&html).unwrap();
    let anon = cookie_value(&cookies, "__Host-guichet_csrf").expect("cookie __Host-guichet_csrf");
    assert_eq!(anon, csrf);
    let set = cookies.iter().find(|c| c.starts_with("__Host-")).unwrap();
    assert!(
        set.contains("Secure") && set.contains("Path=/") && !set.contains("Domain"),
        "{set}"
    );
    let r = c
        .post(t.url("/connexion"))
        .header("cookie", format!("__Host-guichet_csrf={anon}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = cookie_value(&set_cookies(&r), "__Host-guichet_session")
        .expect("cookie __Host-guichet_session");
    let ok = c
        .get(t.url("/espace"))
        .header("cookie", format!("__Host-guichet_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The unprefixed name (which a sibling sub-domain could plant) is not read.
    let planted = c
        .get(t.url("/espace"))
        .header("cookie", format!("guichet_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 303);
    // Without the prefixed anonymous cookie, the login form's token is not accepted either.
    let r = c
        .post(t.url("/connexion"))
        .header("cookie", format!("guichet_csrf={anon}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_dummy_hash_is_made_at_start_up() {
    // Before any login: an unknown account is checked against it from the first request.
    let _t = spawn_app().await;
    assert!(guichet_app::auth::dummy_hash_ready());
}

// ---- multipart forms -----------------------------------------------------------------------

const BOUNDARY: &str = "----guichet-essai";

fn part(name: &str, filename: Option<&str>, content: &[u8]) -> Vec<u8> {
    let mut p = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"");
    if let Some(f) = filename {
        p.push_str(&format!(
            "; filename=\"{f}\"\r\nContent-Type: application/pdf"
        ));
    }
    p.push_str("\r\n\r\n");
    let mut p = p.into_bytes();
    p.extend_from_slice(content);
    p.extend_from_slice(b"\r\n");
    p
}

fn multipart(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut body: Vec<u8> = parts.concat();
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Told when the test upload route's handler is reached.
#[derive(Default)]
struct Seen {
    reached: tokio::sync::Notify,
}

/// An app whose router has one upload route, `/essai/envoi`, answering `200 <bytes read>` or
/// `413` when its body goes over the limit while streaming.
async fn spawn_with_upload_route(upload_max: usize) -> (TestApp, String, Arc<Seen>) {
    let t = spawn_with(move |c| c.upload_max_bytes = upload_max).await;
    let seen = Arc::new(Seen::default());
    let handler_seen = seen.clone();
    let route = axum::routing::post(move |body: axum::body::Body| {
        let seen = handler_seen.clone();
        async move {
            seen.reached.notify_one();
            match axum::body::to_bytes(body, usize::MAX).await {
                Ok(b) => {
                    let first =
                        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"");
                    assert!(b.starts_with(first.as_bytes()), "corps transmis entier");
                    (axum::http::StatusCode::OK, b.len().to_string())
                }
                Err(_) => (
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "trop".to_string(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = guichet_web::router_with_uploads(t.app.clone(), vec![("/essai/envoi", route)]);
    tokio::spawn(async move { guichet_web::serve_router_on(listener, router).await });
    (t, base, seen)
}

async fn post_multipart(c: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    c.post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_upload_carries_its_token_first_and_stays_within_its_limit() {
    let (_t, base, _) = spawn_with_upload_route(2 * 1024 * 1024).await;
    let c = client();
    let html = c
        .get(format!("{base}/connexion"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&html).unwrap();
    let url = format!("{base}/essai/envoi");
    let file = vec![b'%'; 1024 * 1024];
    // 1 MB (four times the form limit) with the token first: handed on whole.
    let body = multipart(&[
        part("csrf", None, csrf.as_bytes()),
        part("piece", Some("devis.pdf"), &file),
    ]);
    let len = body.len();
    let r = post_multipart(&c, &url, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), len.to_string());
    // A wrong token: refused.
    let r = post_multipart(
        &c,
        &url,
        multipart(&[
            part("csrf", None, b"forge"),
            part("piece", Some("devis.pdf"), &file),
        ]),
    )
    .await;
    assert_eq!(r.status(), 403);
    // The file before the token: refused with the reason.
    let r = post_multipart(
        &c,
        &url,
        multipart(&[
            part("piece", Some("devis.pdf"), &file),
            part("csrf", None, csrf.as_bytes()),
        ]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("doit être envoyé en premier"), "{html}");
    // Another field before the token: refused too.
    let r = post_multipart(
        &c,
        &url,
        multipart(&[part("nom", None, b"x"), part("csrf", None, csrf.as_bytes())]),
    )
    .await;
    assert_eq!(r.status(), 400);
    // 3 MB declared: over the configured 2 MB, refused before reading.
    let big = vec![b'%'; 3 * 1024 * 1024];
    let r = post_multipart(
        &c,
        &url,
        multipart(&[
            part("csrf", None, csrf.as_bytes()),
            part("piece", Some("devis.pdf"), &big),
        ]),
    )
    .await;
    assert_eq!(r.status(), 413);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("dépasse la taille autorisée (2 Mo)"));
    // A form route keeps the form limit, for multipart bodies too; its token is read as well.
    let connexion = format!("{base}/connexion");
    let r = post_multipart(
        &c,
        &connexion,
        multipart(&[
            part("csrf", None, csrf.as_bytes()),
            part("piece", Some("devis.pdf"), &file),
        ]),
    )
    .await;
    assert_eq!(r.status(), 413);
    let r = post_multipart(&c, &connexion, multipart(&[part("csrf", None, b"forge")])).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn an_upload_is_streamed_past_the_guard_and_cut_at_its_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_t, base, seen) = spawn_with_upload_route(2 * 1024 * 1024).await;
    let c = client();
    let jar_html = c.get(format!("{base}/connexion")).send().await.unwrap();
    let cookie = set_cookies(&jar_html)
        .into_iter()
        .find(|c| c.starts_with("guichet_csrf="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = cookie.trim_start_matches("guichet_csrf=").to_string();
    let addr = base.trim_start_matches("http://").to_string();
    // A chunked body: the token part, then nothing until the handler is reached (the guard did
    // not wait for the files), then 3 MB, more than the limit.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /essai/envoi HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut first = part("csrf", None, csrf.as_bytes());
    first.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"piece\"; filename=\"a.pdf\"\r\n\r\n").as_bytes(),
    );
    s.write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&first).await.unwrap();
    s.write_all(b"\r\n").await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), seen.reached.notified())
        .await
        .expect("le gestionnaire reçoit la requête avant les fichiers");
    let chunk = vec![b'%'; 64 * 1024];
    for _ in 0..48 {
        let line = format!("{:x}\r\n", chunk.len());
        if s.write_all(line.as_bytes()).await.is_err()
            || s.write_all(&chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
