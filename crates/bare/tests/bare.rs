//! `guichet-bare` started as a process on a fresh database (SQLite file or PostgreSQL database,
//! per `GUICHET_TEST_DATABASE`): it seeds, answers a page and inserts.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn pages_and_inserts() {
    let dir = guichet_testkit::temp_dir();
    let url = guichet_testkit::fresh_database_url(&dir).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_guichet-bare"))
        .args(["--bind", "127.0.0.1:0", "--seed", "45"])
        .env("DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start guichet-bare");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let addr = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read address");
        line.trim().to_string()
    })
    .await
    .expect("address");
    assert!(!addr.is_empty(), "guichet-bare printed no address");
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    let first: Vec<serde_json::Value> = client
        .get(format!("{base}/page"))
        .send()
        .await
        .expect("GET /page")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(first.len(), 20);
    assert_eq!(first[0]["id"], 1);
    assert_eq!(first[0]["title"], "Ligne n° 1");
    let last = first[19]["id"].as_i64().expect("id");
    let third: Vec<serde_json::Value> = client
        .get(format!("{base}/page?after=40"))
        .send()
        .await
        .expect("GET /page?after=40")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(third.len(), 5, "45 rows seeded, 5 after id 40");
    assert_eq!(last, 20);

    let inserted: serde_json::Value = client
        .post(format!("{base}/insert"))
        .json(&serde_json::json!({ "title": "nouvelle", "amount": 1234 }))
        .send()
        .await
        .expect("POST /insert")
        .json()
        .await
        .expect("JSON id");
    assert_eq!(inserted["id"], 46);
    let tail: Vec<serde_json::Value> = client
        .get(format!("{base}/page?after=45"))
        .send()
        .await
        .expect("GET /page?after=45")
        .json()
        .await
        .expect("JSON page");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["title"], "nouvelle");
    assert_eq!(tail[0]["amount"], 1234);
    drop(server);
}
