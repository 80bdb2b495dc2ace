//! The simulator's three doors agree: for the same inputs, `guichet simulate --json`, the API
//! `POST /api/v1/simulations` of a running `guichet serve`, and the `/simulateur` page give the
//! same eligibility, reasons and amounts (the CLI and the API the very same JSON).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const HORLOGE: &str = "2021-06-01T09:00:00+02:00";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/node_modules")
}

fn command(dir: &Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guichet"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("GUICHET_DATA_DIR", dir)
        .env("GUICHET_NPM_DIR", fixtures())
        .env("GUICHET_HORLOGE", HORLOGE)
        .env("GUICHET_LOG", "warn");
    c
}

/// A `guichet serve` process, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: &str) -> Server {
    let mut child = command(dir, db)
        .env("GUICHET_LOG", "info")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("guichet serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.expect("ligne");
        if line.contains("Guichet est prêt") {
            // `adresse=127.0.0.1:PORT` (possibly with colour codes around it).
            let at = line.find("127.0.0.1:").expect("adresse dans le journal");
            let port: String = line[at + 10..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            base = Some(format!("http://127.0.0.1:{port}"));
            break;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: base.expect("le serveur n’a pas démarré"),
    }
}

/// One simulation, as CLI arguments, API body and page query.
struct Case {
    mesure: &'static str,
    demandeur: &'static str,
    cout: Option<&'static str>,
    depenses: &'static [(&'static str, &'static str)],
    date_fin: Option<&'static str>,
    faits: &'static [(&'static str, &'static str)],
}

impl Case {
    fn cli_args(&self) -> Vec<String> {
        let mut a = vec![
            "simulate".to_string(),
            "--json".into(),
            "--mesure".into(),
            self.mesure.into(),
            "--demandeur".into(),
            self.demandeur.into(),
            "--date-depot".into(),
            "2021-06-01".into(),
        ];
        if let Some(c) = self.cout {
            a.extend(["--cout".into(), c.into()]);
        }
        for (cat, euros) in self.depenses {
            a.extend(["--depense".into(), format!("{cat}={euros}")]);
        }
        if let Some(d) = self.date_fin {
            a.extend(["--date-fin".into(), d.into()]);
        }
        for (k, v) in self.faits {
            a.extend(["--fait".into(), format!("{k}={v}")]);
        }
        a
    }

    fn api_body(&self) -> serde_json::Value {
        let mut b = serde_json::json!({
            "mesure": self.mesure,
            "demandeur": self.demandeur,
            "date_depot": "2021-06-01",
        });
        if let Some(c) = self.cout {
            b["cout"] = c.into();
        }
        if !self.depenses.is_empty() {
            b["depenses"] = self
                .depenses
                .iter()
                .map(|(c, m)| serde_json::json!({"categorie": c, "montant": m}))
                .collect();
        }
        if let Some(d) = self.date_fin {
            b["date_fin"] = d.into();
        }
        if !self.faits.is_empty() {
            b["faits"] = self
                .faits
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        b
    }

    fn page_query(&self) -> Vec<(String, String)> {
        let mut q = vec![
            ("collectivite".to_string(), self.demandeur.to_string()),
            ("demandeur".into(), self.demandeur.into()),
            ("date_depot".into(), "2021-06-01".into()),
            ("cout".into(), self.cout.unwrap_or_default().into()),
            ("date_fin".into(), self.date_fin.unwrap_or_default().into()),
        ];
        for (cat, euros) in self.depenses {
            q.push((format!("depense_{cat}"), euros.to_string()));
        }
        for (k, v) in self.faits {
            q.push((format!("fait_{k}"), v.to_string()));
        }
        q
    }
}

/// `16 000 €`, `12 345,67 €` → cents.
fn french_cents(text: &str) -> i64 {
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == ',')
        .collect();
    let (euros, cents) = digits.split_once(',').unwrap_or((&digits, "00"));
    euros.parse::<i64>().expect("euros") * 100 + cents.parse::<i64>().expect("centimes")
}

/// The page's result block for a measure: its badge and its proposed amount, if shown.
fn page_result(html: &str, mesure: &str) -> (String, Option<i64>) {
    let id = format!("id=\"mesure-{}\"", mesure.replace('.', "-"));
    let start = html
        .find(&id)
        .unwrap_or_else(|| panic!("bloc {id} absent de la page"));
    let block = &html[start..];
    let block = &block[..block.find("</article>").expect("fin du bloc")];
    let badge_at = block.find("fr-badge").expect("badge");
    let badge = &block[badge_at..];
    let badge =
        badge[badge.find('>').expect(">") + 1..badge.find("</p>").expect("</p>")].to_string();
    let amount = block.find("class=\"guichet-montant\">").map(|at| {
        let rest = &block[at + "class=\"guichet-montant\">".len()..];
        french_cents(&rest[..rest.find("</dd>").expect("</dd>")])
    });
    (badge, amount)
}

#[tokio::test]
async fn the_cli_the_api_and_the_page_give_the_same_answer() {
    let dir = guichet_testkit::temp_dir();
    let db = guichet_testkit::fresh_database_url(&dir).await;
    let o = command(&dir, &db)
        .args(["referentiel", "import", "--millesime", "2021"])
        .output()
        .expect("import");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = serve(&dir, &db);
    let client = reqwest::Client::new();

    let cases = [
        Case {
            mesure: "axe3.v1.dematads",
            demandeur: "epci:249500109",
            cout: None,
            depenses: &[("prestation", "20000")],
            date_fin: None,
            faits: &[("communes_rattachees", "31")],
        },
        Case {
            mesure: "axe3.v1.relation-usager",
            demandeur: "commune:95127",
            cout: Some("100 000"),
            depenses: &[],
            date_fin: Some("2022-06-30"),
            faits: &[],
        },
        Case {
            mesure: "axe3.v1.formation",
            demandeur: "commune:78646",
            cout: Some("12 345,67"),
            depenses: &[],
            date_fin: Some("2022-11-15"),
            faits: &[],
        },
        Case {
            mesure: "axe3.v1.expert",
            demandeur: "commune:13055",
            cout: None,
            depenses: &[
                ("prestation", "30000"),
                ("materiel", "5000"),
                ("logiciel-hors-ue", "8000,50"),
            ],
            date_fin: Some("2022-06-30"),
            faits: &[("deja_commence", "non")],
        },
        Case {
            mesure: "axe2.demat",
            demandeur: "groupement:epci:249500109+epci:247800584",
            cout: Some("300000"),
            depenses: &[],
            date_fin: None,
            faits: &[],
        },
        Case {
            mesure: "axe3.v2.labo",
            demandeur: "commune:31555",
            cout: Some("45000"),
            depenses: &[],
            date_fin: Some("2022-03-31"),
            faits: &[],
        },
    ];
    let mut eligible_seen = false;
    let mut ineligible_seen = false;
    for case in &cases {
        let o = command(&dir, &db)
            .args(case.cli_args())
            .output()
            .expect("simulate");
        assert!(
            o.status.success(),
            "{}: {}",
            case.mesure,
            String::from_utf8_lossy(&o.stderr)
        );
        let cli: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON de la CLI");

        let r = client
            .post(format!("{}/api/v1/simulations", server.base))
            .json(&case.api_body())
            .send()
            .await
            .expect("API");
        assert_eq!(r.status(), 200, "{}", case.mesure);
        let api: serde_json::Value = r.json().await.expect("JSON de l’API");
        assert_eq!(cli, api, "la CLI et l’API diffèrent pour {}", case.mesure);

        let html = client
            .get(format!("{}/simulateur", server.base))
            .query(&case.page_query())
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("HTML");
        let (badge, amount) = page_result(&html, case.mesure);
        let eligible = cli["eligible"].as_bool().expect("eligible");
        let missing = !cli["donnees_manquantes"]
            .as_array()
            .expect("donnees_manquantes")
            .is_empty();
        let expected_badge = if eligible {
            "Éligible"
        } else if missing && cli["motifs"].as_array().map(Vec::len) == Some(1) {
            "À préciser"
        } else {
            "Non éligible"
        };
        assert_eq!(badge.trim(), expected_badge, "{}", case.mesure);
        if eligible {
            eligible_seen = true;
            assert_eq!(
                amount,
                cli["montant_centimes"].as_i64(),
                "montant affiché pour {}",
                case.mesure
            );
        } else {
            ineligible_seen = true;
            let motifs = cli["motifs_detail"].as_array().expect("motifs");
            for m in motifs {
                let message = m["message"].as_str().expect("message");
                if m["code"] != "donnees_manquantes" {
                    let shown = html.replace("&#x27;", "'").replace("&#39;", "'");
                    assert!(
                        shown.contains(message),
                        "motif « {message} » absent de la page pour {}",
                        case.mesure
                    );
                }
            }
        }
    }
    assert!(eligible_seen && ineligible_seen);
    drop(server);
}
