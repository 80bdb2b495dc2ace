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

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: SmtpTls,
}

#[derive(Debug, Clone)]
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
    /// Trust `X-Forwarded-For` (only behind a reverse proxy that sets it).
    pub trust_proxy: bool,
    /// Draft programme folders, one per subfolder, offered by the impact page.
    pub brouillons_dir: Option<PathBuf>,
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
    trust_proxy: Option<bool>,
    brouillons_dir: Option<PathBuf>,
    smtp: Option<FileSmtp>,
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
            trust_proxy: false,
            brouillons_dir: None,
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
        c.trust_proxy = env("GUICHET_TRUST_PROXY")
            .map(|v| v == "1" || v == "true")
            .or(file.trust_proxy)
            .unwrap_or(false);
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
    fn rejects_bad_values_with_their_name() {
        let e = load(&[("GUICHET_HORLOGE", "juin 2021")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("GUICHET_HORLOGE"), "{e}");
        assert!(load(&[("GUICHET_SMTP_HOST", "x"), ("GUICHET_SMTP_TLS", "ssl3")]).is_err());
        assert!(load(&[("GUICHET_CONFIG", "/nonexistent/guichet.toml")]).is_err());
    }
}
