//! Outgoing mail through SMTP: a tiny SMTP sink inside the test stands for the relay.

use crate::common::{spawn_with, TestApp};
use guichet_app::config::{SmtpConfig, SmtpTls};
use guichet_domain::Role;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One message as the sink received it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    /// Headers and body as sent (dot-unstuffed), lines joined with `\n`.
    data: String,
}

impl Received {
    /// The body, decoded if the transport chose quoted-printable (lettre does for lines of 76
    /// characters or more, which the links are).
    fn text(&self) -> String {
        let (headers, body) = self.data.split_once("\n\n").expect("en-têtes puis corps");
        if !headers
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable")
        {
            return body.to_string();
        }
        let joined = body.replace("=\n", "");
        let mut bytes = Vec::with_capacity(joined.len());
        let raw = joined.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (raw[i], hex) {
                (b'=', Some(b)) => {
                    bytes.push(b);
                    i += 3;
                }
                (c, _) => {
                    bytes.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(bytes).expect("corps UTF-8")
    }
}

/// A minimal SMTP server on 127.0.0.1: accepts everything, keeps what it is given.
struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// The accepting task and one task per connection, so that `stop` can close them all.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        SmtpSink::start_on(0).await
    }

    /// Listens on `port` (0: any free one).
    async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("port SMTP");
        let port = listener.local_addr().expect("adresse SMTP").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let (store, connections) = (received.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let task = tokio::spawn(serve_smtp(stream, store.clone()));
                connections.lock().unwrap().push(task);
            }
        });
        tasks.lock().unwrap().push(accept);
        SmtpSink {
            port,
            received,
            tasks,
        }
    }

    fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Closes the listener and every open connection (lettre keeps one in its pool): from
    /// then on nothing listens on the port.
    async fn stop(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Speaks just enough SMTP for lettre: greeting, EHLO (advertising 8BITMIME, since the French
/// messages are not ASCII), MAIL, RCPT, DATA, RSET/NOOP and QUIT.
async fn serve_smtp(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 puits.test ESMTP\r\n")
        .await
        .expect("accueil");
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-puits.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "MAIL" => {
                from = address(&command);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 Fin par <CRLF>.<CRLF>\r\n")
                    .await
                    .expect("354");
                let mut data = Vec::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let l = l.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push(l.strip_prefix('.').unwrap_or(l).to_string());
                }
                store.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data: data.join("\n"),
                });
                b"250 OK message accepte\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 Au revoir\r\n").await;
                return;
            }
            _ => b"250 OK\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The address between angle brackets in `MAIL FROM:<a@b> ...` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

fn smtp_on(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        user: None,
        password: None,
        tls: SmtpTls::None,
    }
}

/// Asks for a password reset through the form, as a visitor would.
fn eml_files(t: &TestApp) -> usize {
    std::fs::read_dir(t.data_dir.join("courriels"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_reset_link_goes_out_by_smtp_when_configured() {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let t = spawn_with(move |config| config.smtp = Some(smtp_on(port))).await;
    assert_eq!(t.app.mailer.describe(), "SMTP");
    let email = t
        .user(
            "agent@cergy.test",
            Role::Demandeur,
            None,
            &["commune:95127"],
        )
        .await;
    // Creating the account already sent its welcome message through the relay.
    let before = sink.messages();
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].text().contains("Un compte Guichet"));

    let r = t.ask_for_reset(&email).await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Si un compte existe pour cette adresse"));
    // The link went out through the job queue (`ask_for_reset` waits for it).
    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let m = &messages[1];
    assert_eq!(m.to, vec![email.clone()]);
    assert_eq!(m.from, "ne-pas-repondre@guichet.localhost");
    assert!(m.data.contains(&format!("\nTo: {email}\n")), "{}", m.data);
    let text = m.text();
    assert!(
        text.contains("Pour choisir un nouveau mot de passe"),
        "{text}"
    );
    let marker = format!("{}/mot-de-passe/definir?jeton=", t.base);
    assert!(text.contains(&marker), "{text}");
    assert_eq!(eml_files(&t), 0, "aucun fichier .eml avec SMTP");

    // The link in the message works.
    let start = text.find(&marker).unwrap() + t.base.len();
    let path = text[start..].split_whitespace().next().unwrap().to_string();
    assert_eq!(t.get(&path).await.status(), 200, "{path}");

    // An address without an account sends nothing, with the same answer.
    let r = t.ask_for_reset("personne@nulle.part").await;
    assert_eq!(r.status(), 200);
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn a_reset_link_waits_out_a_relay_outage_and_goes_out_once_it_is_back() {
    // The relay is up while the account is created (that sends a welcome message), then goes
    // away: nothing listens on its port any more.
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let t = spawn_with(move |config| config.smtp = Some(smtp_on(port))).await;
    let email = t
        .user(
            "agent@cergy.test",
            Role::Demandeur,
            None,
            &["commune:95127"],
        )
        .await;
    sink.stop().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "le port SMTP doit être fermé"
    );

    // The form answers as usual: the request is recorded, the mail waits in the queue.
    let r = t.ask_for_reset(&email).await;
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Si un compte existe pour cette adresse"));
    let counts = t.app.jobs().counts().await.unwrap();
    assert_eq!((counts.later, counts.dead), (1, 0), "{counts:?}");
    let jobs = t
        .app
        .jobs()
        .of_kind("courriel.reinitialisation")
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 1);
    let error = jobs[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("envoi SMTP impossible"), "{error}");
    assert_eq!(eml_files(&t), 0, "pas de repli silencieux sur disque");
    assert_eq!(sink.messages().len(), 1, "seul le message de bienvenue");

    // The relay comes back; once the backoff has passed, the worker sends the link.
    let back = SmtpSink::start_on(port).await;
    t.app.clock.advance(chrono::Duration::seconds(31));
    t.app.wake_workers();
    t.settle().await;
    let messages = back.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].to, vec![email.clone()]);
    assert!(messages[0]
        .text()
        .contains("Pour choisir un nouveau mot de passe"));
    let counts = t.app.jobs().counts().await.unwrap();
    assert_eq!((counts.later, counts.dead), (0, 0), "{counts:?}");

    // The application is still up and the form still answers.
    assert_eq!(t.get("/healthz").await.status(), 200);
    assert_eq!(t.get("/mot-de-passe/oublie").await.status(), 200);
}
