//! Configuration: defaults, then an optional TOML file (`GUICHET_CONFIG`), then environment
//! variables, then command-line flags (applied by the binary). Every setting is documented in
//! the README and in `guichet --help`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpTls {
    /// Implicit TLS (port 465).
    Tls,
    /// STARTTLS upgrade (port 587).
    StartTls,
    /// Plain text, for a relay on the same host only.
    None,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: SmtpTls,
}

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: String,
    pub base_url: String,
    pub data_dir: PathBuf,
    /// Where `npm ci` put the front-end and reference packages.
    pub npm_dir: PathBuf,
    pub clock_start: Option<DateTime<Utc>>,
    pub smtp: Option<SmtpConfig>,
    pub mail_from: String,
    /// Another programme folder than the shipped ITN7 one (or its programme.yaml).
    pub programme_file: Option<PathBuf>,
    pub db_max_connections: u32,
    /// How many reverse proxies stand in front and append to `X-Forwarded-For` (0: none, the
    /// header is ignored). The client is the address that many hops from the right.
    pub trusted_proxy_hops: u32,
    /// Largest body of an upload route (multipart), in bytes: also the largest attached
    /// document.
    pub upload_max_bytes: usize,
    /// Where attached documents are stored (`GUICHET_PIECES`): a folder (default
    /// `<data_dir>/pieces`), or `s3://bucket[/prefix]` for an S3-compatible store whose
    /// endpoint and credentials come from the `AWS_*` variables (`AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
    pub pieces: Option<String>,
    /// Job queue workers run by `guichet serve` (0: this instance only serves pages).
    pub workers: usize,
    /// The audit chain's anchoring: key file, checkpoint folder, period, optional mail copy.
    pub audit_anchor: AnchorConfig,
    /// Draft programme folders, one per subfolder, offered by the impact page.
    pub brouillons_dir: Option<PathBuf>,
    /// Requests an API token may make per minute (`GUICHET_API_REQUETES_MINUTE`), shared by
    /// every instance (counted in the database).
    pub api_requests_per_minute: i64,
    /// How long a webhook delivery waits for the receiver's answer (10 s; tests shorten it).
    pub webhook_timeout: std::time::Duration,
}

/// Default API token rate: 600 requests a minute.
pub const DEFAULT_API_REQUESTS_PER_MINUTE: i64 = 600;

/// Default largest upload: 20 MB.
pub const DEFAULT_UPLOAD_MAX_BYTES: usize = 20 * 1024 * 1024;

/// Most proxy hops accepted in `GUICHET_TRUST_PROXY` (a deeper chain is surely a mistake).
const MAX_PROXY_HOPS: u32 = 16;

// Written by hand so that no password (database, SMTP) ever reaches a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &guichet_storage::redact_url(&self.database_url),
            )
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("data_dir", &self.data_dir)
            .field("npm_dir", &self.npm_dir)
            .field("clock_start", &self.clock_start)
            .field("smtp", &self.smtp)
            .field("mail_from", &self.mail_from)
            .field("programme_file", &self.programme_file)
            .field("db_max_connections", &self.db_max_connections)
            .field("trusted_proxy_hops", &self.trusted_proxy_hops)
            .field("upload_max_bytes", &self.upload_max_bytes)
            .field("pieces", &self.pieces)
            .field("workers", &self.workers)
            .field("audit_anchor", &self.audit_anchor)
            .field("brouillons_dir", &self.brouillons_dir)
            .finish()
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// A yes/no setting, in the usual spellings (any case): `1`/`0`, `true`/`false`, `yes`/`no`,
/// `oui`/`non`, `on`/`off`. Anything else is refused, naming the setting.
pub fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "oui" | "on" | "vrai" => Ok(true),
        "0" | "false" | "no" | "non" | "off" | "faux" => Ok(false),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!(
                "« {value} » n’est pas une valeur oui/non (1/0, true/false, yes/no, oui/non, on/off)"
            ),
        }),
    }
}

/// `GUICHET_TRUST_PROXY`: a yes/no (yes is one proxy) or the number of proxies in front.
pub fn parse_proxy_hops(value: &str) -> Result<u32, ConfigError> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_PROXY_HOPS)
            .ok_or(ConfigError::Invalid {
                name: "GUICHET_TRUST_PROXY",
                reason: format!("« {value} » : au plus {MAX_PROXY_HOPS} mandataires"),
            });
    }
    parse_bool("GUICHET_TRUST_PROXY", v)
        .map(u32::from)
        .map_err(|_| ConfigError::Invalid {
            name: "GUICHET_TRUST_PROXY",
            reason: format!(
                "« {value} » : le nombre de mandataires inverses devant Guichet (0, 1, 2…) ou oui/non (1/0, true/false, yes/no, oui/non, on/off)"
            ),
        })
}

/// A byte count: `20971520`, or with a unit `20M`, `20 Mo`, `512K`, `512 Ko` (powers of 1024).
pub fn parse_bytes(name: &'static str, value: &str) -> Result<usize, ConfigError> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let factor: usize = match unit.trim().to_lowercase().as_str() {
        "" | "o" | "b" => 1,
        "k" | "ko" | "kb" | "kio" | "kib" => 1024,
        "m" | "mo" | "mb" | "mio" | "mib" => 1024 * 1024,
        "g" | "go" | "gb" | "gio" | "gib" => 1024 * 1024 * 1024,
        _ => 0,
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
        .ok_or(ConfigError::Invalid {
            name,
            reason: format!("« {value} » n’est pas une taille (exemples : 20971520, 20M, 512K)"),
        })
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileProxy {
    Flag(bool),
    Hops(u32),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileBytes {
    Count(usize),
    Text(String),
}

/// Where and how often the audit chain's head is signed and written outside the database.
#[derive(Debug, Clone)]
pub struct AnchorConfig {
    /// The ed25519 private key (PKCS#8 PEM, `guichet audit cle`); no anchoring without it.
    pub key_file: Option<PathBuf>,
    /// Folder receiving one signed checkpoint file per period.
    pub dir: PathBuf,
    /// Minutes between checkpoints.
    pub every_minutes: u32,
    /// Also mail each checkpoint to this address.
    pub mail_to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("fichier de configuration {path} illisible : {reason}")]
    File { path: String, reason: String },
    #[error("réglage {name} invalide : {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    bind: Option<String>,
    base_url: Option<String>,
    data_dir: Option<PathBuf>,
    npm_dir: Option<PathBuf>,
    horloge: Option<String>,
    mail_from: Option<String>,
    programme: Option<PathBuf>,
    db_max_connections: Option<u32>,
    trust_proxy: Option<FileProxy>,
    upload_max_octets: Option<FileBytes>,
    pieces: Option<String>,
    brouillons_dir: Option<PathBuf>,
    smtp: Option<FileSmtp>,
    workers: Option<usize>,
    audit_cle: Option<PathBuf>,
    audit_ancres: Option<PathBuf>,
    audit_ancrage: Option<u32>,
    audit_ancres_courriel: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    tls: Option<String>,
}

pub fn parse_clock(value: &str) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| ConfigError::Invalid {
            name: "GUICHET_HORLOGE",
            reason: format!("« {value} » n’est pas une date RFC 3339 ({e}) ; exemple : 2021-06-01T09:00:00+02:00"),
        })
}

fn parse_tls(value: &str) -> Result<SmtpTls, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "tls" => Ok(SmtpTls::Tls),
        "starttls" => Ok(SmtpTls::StartTls),
        "none" | "aucun" => Ok(SmtpTls::None),
        other => Err(ConfigError::Invalid {
            name: "GUICHET_SMTP_TLS",
            reason: format!("« {other} » (tls, starttls ou none)"),
        }),
    }
}

impl Config {
    /// Defaults for a data directory: SQLite file inside it, local bind, packages in ./node_modules.
    pub fn defaults(data_dir: &Path) -> Config {
        Config {
            database_url: format!("sqlite://{}/guichet.sqlite", data_dir.display()),
            bind: "127.0.0.1:8080".into(),
            base_url: "http://127.0.0.1:8080".into(),
            data_dir: data_dir.to_path_buf(),
            npm_dir: PathBuf::from("node_modules"),
            clock_start: None,
            smtp: None,
            mail_from: "Guichet <ne-pas-repondre@guichet.localhost>".into(),
            programme_file: None,
            db_max_connections: 8,
            trusted_proxy_hops: 0,
            upload_max_bytes: DEFAULT_UPLOAD_MAX_BYTES,
            pieces: None,
            workers: 2,
            api_requests_per_minute: DEFAULT_API_REQUESTS_PER_MINUTE,
            audit_anchor: AnchorConfig {
                key_file: None,
                dir: data_dir.join("ancres"),
                every_minutes: 60,
                mail_to: None,
            },
            brouillons_dir: None,
            webhook_timeout: std::time::Duration::from_secs(10),
        }
    }

    /// Loads from the environment (and the TOML file it may name).
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::load(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match env("GUICHET_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path,
                    reason: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = env("GUICHET_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| "data".into());
        let mut c = Config::defaults(&data_dir);
        if let Some(v) = env("DATABASE_URL").or(file.database_url) {
            c.database_url = v;
        }
        let bind_set = env("GUICHET_BIND").or(file.bind);
        if let Some(v) = bind_set {
            c.bind = v;
        }
        c.base_url = env("GUICHET_BASE_URL")
            .or(file.base_url)
            .unwrap_or_else(|| format!("http://{}", c.bind));
        url::Url::parse(&c.base_url).map_err(|e| ConfigError::Invalid {
            name: "GUICHET_BASE_URL",
            reason: e.to_string(),
        })?;
        c.base_url = c.base_url.trim_end_matches('/').to_string();
        if let Some(v) = env("GUICHET_NPM_DIR").map(PathBuf::from).or(file.npm_dir) {
            c.npm_dir = v;
        }
        if let Some(v) = env("GUICHET_HORLOGE").or(file.horloge) {
            c.clock_start = Some(parse_clock(&v)?);
        }
        if let Some(v) = env("GUICHET_MAIL_FROM").or(file.mail_from) {
            v.parse::<lettre::message::Mailbox>()
                .map_err(|e| ConfigError::Invalid {
                    name: "GUICHET_MAIL_FROM",
                    reason: e.to_string(),
                })?;
            c.mail_from = v;
        }
        c.programme_file = env("GUICHET_PROGRAMME")
            .map(PathBuf::from)
            .or(file.programme);
        if let Some(v) = env("GUICHET_DB_MAX_CONNECTIONS") {
            c.db_max_connections =
                v.parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        name: "GUICHET_DB_MAX_CONNECTIONS",
                        reason: format!("« {v} »"),
                    })?;
        } else if let Some(n) = file.db_max_connections {
            c.db_max_connections = n.max(1);
        }
        c.trusted_proxy_hops = match (env("GUICHET_TRUST_PROXY"), file.trust_proxy) {
            (Some(v), _) | (None, Some(FileProxy::Text(v))) => parse_proxy_hops(&v)?,
            (None, Some(FileProxy::Flag(b))) => u32::from(b),
            (None, Some(FileProxy::Hops(n))) => parse_proxy_hops(&n.to_string())?,
            (None, None) => 0,
        };
        c.upload_max_bytes = match (env("GUICHET_UPLOAD_MAX_OCTETS"), file.upload_max_octets) {
            (Some(v), _) | (None, Some(FileBytes::Text(v))) => {
                parse_bytes("GUICHET_UPLOAD_MAX_OCTETS", &v)?
            }
            (None, Some(FileBytes::Count(n))) => parse_bytes("upload_max_octets", &n.to_string())?,
            (None, None) => DEFAULT_UPLOAD_MAX_BYTES,
        };
        c.pieces = env("GUICHET_PIECES").or(file.pieces);
        if let Some(v) = env("GUICHET_WORKERS") {
            c.workers = v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "GUICHET_WORKERS",
                reason: format!("« {v} » (un nombre de travailleurs, 0 possible)"),
            })?;
        } else if let Some(n) = file.workers {
            c.workers = n;
        }
        if let Some(v) = env("GUICHET_API_REQUETES_MINUTE") {
            c.api_requests_per_minute =
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n: &i64| *n > 0)
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "GUICHET_API_REQUETES_MINUTE",
                        reason: format!("« {v} » (un nombre de requêtes par minute, au moins 1)"),
                    })?;
        }
        c.audit_anchor.key_file = env("GUICHET_AUDIT_CLE")
            .map(PathBuf::from)
            .or(file.audit_cle);
        if let Some(d) = env("GUICHET_AUDIT_ANCRES")
            .map(PathBuf::from)
            .or(file.audit_ancres)
        {
            c.audit_anchor.dir = d;
        }
        if let Some(v) = env("GUICHET_AUDIT_ANCRAGE") {
            c.audit_anchor.every_minutes =
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Invalid {
                        name: "GUICHET_AUDIT_ANCRAGE",
                        reason: format!("« {v} » (un nombre de minutes, 1 au moins)"),
                    })?;
        } else if let Some(n) = file.audit_ancrage {
            c.audit_anchor.every_minutes = n.max(1);
        }
        if let Some(v) = env("GUICHET_AUDIT_ANCRES_COURRIEL").or(file.audit_ancres_courriel) {
            v.parse::<lettre::Address>()
                .map_err(|e| ConfigError::Invalid {
                    name: "GUICHET_AUDIT_ANCRES_COURRIEL",
                    reason: format!("« {v} » ({e})"),
                })?;
            c.audit_anchor.mail_to = Some(v);
        }
        c.brouillons_dir = env("GUICHET_BROUILLONS_DIR")
            .map(PathBuf::from)
            .or(file.brouillons_dir);
        let fs = file.smtp.unwrap_or_default();
        if let Some(host) = env("GUICHET_SMTP_HOST").or(fs.host) {
            let tls = match env("GUICHET_SMTP_TLS").or(fs.tls) {
                Some(v) => parse_tls(&v)?,
                None => SmtpTls::StartTls,
            };
            let port = match env("GUICHET_SMTP_PORT") {
                Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                    name: "GUICHET_SMTP_PORT",
                    reason: format!("« {p} »"),
                })?,
                None => fs.port.unwrap_or(match tls {
                    SmtpTls::Tls => 465,
                    SmtpTls::StartTls => 587,
                    SmtpTls::None => 25,
                }),
            };
            c.smtp = Some(SmtpConfig {
                host,
                port,
                user: env("GUICHET_SMTP_USER").or(fs.user),
                password: env("GUICHET_SMTP_PASSWORD").or(fs.password),
                tls,
            });
        }
        Ok(c)
    }

    /// Whether cookies must carry `Secure` (the public URL is HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_to_sqlite_in_data() {
        let c = load(&[]).unwrap();
        assert_eq!(c.database_url, "sqlite://data/guichet.sqlite");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert!(c.smtp.is_none());
    }

    #[test]
    fn reads_clock_and_smtp() {
        let c = load(&[
            ("GUICHET_HORLOGE", "2021-06-01T09:00:00+02:00"),
            ("GUICHET_SMTP_HOST", "smtp.exemple.fr"),
        ])
        .unwrap();
        assert_eq!(
            c.clock_start.map(|d| d.to_rfc3339()),
            Some("2021-06-01T07:00:00+00:00".into())
        );
        assert_eq!(c.smtp.map(|s| s.port), Some(587));
    }

    #[test]
    fn reads_a_toml_file_under_the_environment() {
        let path = std::env::temp_dir().join(format!("guichet-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "database_url = \"postgres://guichet@db:5432/guichet\"\nbind = \"0.0.0.0:9000\"\n\
             horloge = \"2021-09-01T09:00:00+02:00\"\n[smtp]\nhost = \"smtp.exemple.fr\"\ntls = \"tls\"\n",
        )
        .unwrap();
        let file = path.display().to_string();
        let c = load(&[
            ("GUICHET_CONFIG", file.as_str()),
            ("GUICHET_BIND", "127.0.0.1:7000"),
        ])
        .unwrap();
        assert_eq!(c.database_url, "postgres://guichet@db:5432/guichet");
        assert_eq!(
            c.bind, "127.0.0.1:7000",
            "the environment wins over the file"
        );
        assert_eq!(
            c.smtp.as_ref().map(|s| (s.port, s.tls.clone())),
            Some((465, SmtpTls::Tls))
        );
        assert!(c.clock_start.is_some());
        std::fs::write(&path, "datbase_url = \"typo\"\n").unwrap();
        let e = load(&[("GUICHET_CONFIG", file.as_str())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("datbase_url"), "unknown keys are named: {e}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reads_the_api_token_rate() {
        assert_eq!(load(&[]).unwrap().api_requests_per_minute, 600);
        let c = load(&[("GUICHET_API_REQUETES_MINUTE", "30")]).unwrap();
        assert_eq!(c.api_requests_per_minute, 30);
        for v in ["0", "-1", "beaucoup", ""] {
            assert!(load(&[("GUICHET_API_REQUETES_MINUTE", v)]).is_err(), "{v}");
        }
    }

    #[test]
    fn reads_workers_and_anchoring() {
        let c = load(&[]).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(c.audit_anchor.dir, PathBuf::from("data/ancres"));
        assert!(c.audit_anchor.key_file.is_none());
        let c = load(&[
            ("GUICHET_WORKERS", "0"),
            ("GUICHET_AUDIT_CLE", "/etc/guichet/audit.pem"),
            ("GUICHET_AUDIT_ANCRAGE", "15"),
            ("GUICHET_AUDIT_ANCRES_COURRIEL", "archives@exemple.fr"),
        ])
        .unwrap();
        assert_eq!(c.workers, 0);
        assert_eq!(c.audit_anchor.every_minutes, 15);
        assert_eq!(
            c.audit_anchor.key_file,
            Some(PathBuf::from("/etc/guichet/audit.pem"))
        );
        for (k, v) in [
            ("GUICHET_WORKERS", "deux"),
            ("GUICHET_AUDIT_ANCRAGE", "0"),
            ("GUICHET_AUDIT_ANCRES_COURRIEL", "pas une adresse"),
        ] {
            let e = load(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
    }

    #[test]
    fn rejects_bad_values_with_their_name() {
        let e = load(&[("GUICHET_HORLOGE", "juin 2021")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GUICHET_HORLOGE"), "{e}");
        assert!(load(&[("GUICHET_SMTP_HOST", "x"), ("GUICHET_SMTP_TLS", "ssl3")]).is_err());
        assert!(load(&[("GUICHET_CONFIG", "/nonexistent/guichet.toml")]).is_err());
    }

    #[test]
    fn trust_proxy_takes_the_usual_spellings_or_a_hop_count() {
        for (v, hops) in [
            ("1", 1),
            ("0", 0),
            ("true", 1),
            ("TRUE", 1),
            ("false", 0),
            ("yes", 1),
            ("Yes", 1),
            ("no", 0),
            ("oui", 1),
            ("non", 0),
            ("on", 1),
            ("off", 0),
            (" yes ", 1),
            ("2", 2),
            ("3", 3),
        ] {
            let c = load(&[("GUICHET_TRUST_PROXY", v)]).unwrap_or_else(|e| panic!("{v} : {e}"));
            assert_eq!(c.trusted_proxy_hops, hops, "{v}");
        }
        assert_eq!(load(&[]).unwrap().trusted_proxy_hops, 0);
        for v in ["peut-être", "y", "2.5", "-1", "17", "vraiment"] {
            let e = load(&[("GUICHET_TRUST_PROXY", v)])
                .expect_err(v)
                .to_string();
            assert!(e.contains("GUICHET_TRUST_PROXY") && e.contains(v), "{e}");
        }
        let path = std::env::temp_dir().join(format!("guichet-proxy-{}.toml", std::process::id()));
        let file = path.display().to_string();
        for (text, hops) in [
            ("trust_proxy = true", Ok(1)),
            ("trust_proxy = 2", Ok(2)),
            ("trust_proxy = \"oui\"", Ok(1)),
            ("trust_proxy = \"nope\"", Err(())),
        ] {
            std::fs::write(&path, text).unwrap();
            let got = load(&[("GUICHET_CONFIG", file.as_str())]).map(|c| c.trusted_proxy_hops);
            assert_eq!(got.map_err(|_| ()), hops, "{text}");
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_upload_limit_defaults_to_20_mb_and_reads_units() {
        assert_eq!(load(&[]).unwrap().upload_max_bytes, 20 * 1024 * 1024);
        for (v, n) in [("1048576", 1 << 20), ("5M", 5 << 20), ("512 Ko", 512 << 10)] {
            let c = load(&[("GUICHET_UPLOAD_MAX_OCTETS", v)]).unwrap();
            assert_eq!(c.upload_max_bytes, n, "{v}");
        }
        for v in ["beaucoup", "0", "-5", "5 To"] {
            assert!(load(&[("GUICHET_UPLOAD_MAX_OCTETS", v)]).is_err(), "{v}");
        }
    }

    #[test]
    fn debug_output_hides_passwords() {
        let c = load(&[
            ("DATABASE_URL", "postgres://guichet:Tr3sS3cret@db/guichet"),
            ("GUICHET_SMTP_HOST", "smtp.exemple.fr"),
            ("GUICHET_SMTP_PASSWORD", "S3cretSmtp"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("Tr3s") && !shown.contains("S3cretSmtp"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://guichet:***@db/guichet"),
            "{shown}"
        );
    }
}
