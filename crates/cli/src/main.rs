//! The `guichet` binary: one entry point for serving, migrating, importing the referential,
//! administering accounts and verifying the audit log.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::{parse_clock, Config};
use guichet_app::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteRef, Role, Vintage};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;

const ENV_HELP: &str = "\
Configuration (variables d'environnement, ou fichier TOML désigné par GUICHET_CONFIG) :
  DATABASE_URL            sqlite://data/guichet.sqlite (défaut) ou postgres://user@hôte:5432/base
  GUICHET_DATA_DIR        dossier de données (défaut : ./data ; courriels .eml sans SMTP)
  GUICHET_BIND            adresse d'écoute (défaut : 127.0.0.1:8080)
  GUICHET_BASE_URL        URL publique, pour les liens des courriels (https:// active les cookies Secure et HSTS)
  GUICHET_HORLOGE         date de départ d'une horloge simulée, RFC 3339 (ex. 2021-06-01T09:00:00+02:00)
  GUICHET_NPM_DIR         dossier node_modules des paquets du référentiel (défaut : ./node_modules)
  GUICHET_SMTP_HOST, GUICHET_SMTP_PORT, GUICHET_SMTP_USER, GUICHET_SMTP_PASSWORD,
  GUICHET_SMTP_TLS (tls|starttls|none), GUICHET_MAIL_FROM
  GUICHET_PROGRAMME       fichier de programme YAML (défaut : ITN7 intégré)
  GUICHET_DB_MAX_CONNECTIONS  taille du pool de connexions (défaut : 8)
  GUICHET_TRUST_PROXY     1 derrière un proxy inverse qui pose X-Forwarded-For
  GUICHET_LOG             filtre des journaux (défaut : info)";

#[derive(Parser)]
#[command(name = "guichet", version, about = "Guichet : plateforme de gestion de programmes de subventions publiques (ITN7)", after_help = ENV_HELP)]
struct Cli {
    /// Fichier de configuration TOML (équivaut à GUICHET_CONFIG)
    #[arg(long, global = true, value_name = "FICHIER")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applique les migrations puis sert l'application web
    Serve(ServeArgs),
    /// Applique les migrations de la base de données et s'arrête
    Migrate,
    /// Référentiel territorial (@etalab/decoupage-administratif)
    Referentiel {
        #[command(subcommand)]
        command: ReferentielCommand,
    },
    /// Administration des comptes
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Journal d'audit
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Adresse d'écoute (équivaut à GUICHET_BIND)
    #[arg(long, value_name = "ADRESSE")]
    bind: Option<String>,
    /// Charge les données de démonstration au premier démarrage (horloge en juin 2021 sauf GUICHET_HORLOGE)
    #[arg(long)]
    demo: bool,
}

#[derive(Subcommand)]
enum ReferentielCommand {
    /// Importe un millésime (ou tous) depuis les paquets npm installés par « npm ci »
    Import {
        /// Millésime : 2021 (populations légales en vigueur pour ITN7) ou 2026 ; par défaut, les deux
        #[arg(long, value_name = "ANNÉE")]
        millesime: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Crée un compte et affiche un lien à usage unique pour choisir le mot de passe
    CreateUser(CreateUserArgs),
}

#[derive(Args)]
struct CreateUserArgs {
    /// Adresse électronique
    #[arg(long)]
    email: String,
    /// Rôle : demandeur, instructeur, coordinateur, administrateur, expert, membre-comite
    #[arg(long)]
    role: String,
    /// Service : 95 ou departement:95 (préfecture de département), region:11 (préfecture de région), DINUM, DITP, ANCT, ANSSI
    #[arg(long, value_name = "CODE")]
    territoire: Option<String>,
    /// Collectivité représentée (demandeur), répétable : commune:95127, epci:249500109, departement:95, region:11
    #[arg(long, value_name = "TYPE:CODE")]
    collectivite: Vec<String>,
    /// Nom affiché (par défaut : l'adresse électronique)
    #[arg(long)]
    nom: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Vérifie la chaîne de hachage du journal ; code de sortie non nul à la moindre rupture
    Verify,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUICHET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    if let Some(path) = &cli.config {
        // Read through the same loader as GUICHET_CONFIG.
        let path = path.display().to_string();
        return Ok(Config::load(|k| {
            if k == "GUICHET_CONFIG" {
                Some(path.clone())
            } else {
                std::env::var(k).ok().filter(|v| !v.is_empty())
            }
        })?);
    }
    Ok(Config::from_env()?)
}

fn clock_for(config: &Config) -> Clock {
    match config.clock_start {
        Some(at) => Clock::starting_at(at),
        None => Clock::system(),
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after which blocks of that
/// size (argon2's 19 MB of working memory at every password hash) come from thread arenas whose
/// tops are never returned to the system: the server's resident size then grows by ~20 MB per
/// busy blocking thread. A fixed threshold keeps large blocks in mmap, returned on free.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called once, before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    init_logs();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erreur : {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                if std::env::var("GUICHET_BASE_URL").is_err() {
                    config.base_url = format!("http://{bind}");
                }
                config.bind = bind;
            }
            if args.demo && config.clock_start.is_none() {
                config.clock_start = Some(parse_clock("2021-06-01T09:00:00+02:00")?);
            }
            guichet_web::assets::check()?;
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            if args.demo {
                let created = app.load_demo().await?;
                tracing::info!(comptes_crees = created, "données de démonstration prêtes");
            }
            // The search index loads in the background: the server answers (and /readyz says
            // ready) at once; a search arriving before the index is built waits for it.
            let warm = app.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.search.refresh(&warm.db).await {
                    tracing::error!(erreur = %e, "chargement de l’index de recherche");
                }
            });
            guichet_web::serve(app).await?;
        }
        Command::Migrate => {
            let db = guichet_storage::Db::connect(&config.database_url, 1).await?;
            let applied = db.migrate().await?;
            if applied.is_empty() {
                println!("base à jour : aucune migration à appliquer");
            } else {
                println!("migrations appliquées : {applied:?}");
            }
        }
        Command::Referentiel {
            command: ReferentielCommand::Import { millesime },
        } => {
            let vintages = match millesime {
                Some(m) => vec![Vintage::parse(&m)?],
                None => Vintage::ALL.to_vec(),
            };
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            for v in vintages {
                let started = std::time::Instant::now();
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} lignes ({elapsed})")
                        .context("modèle de barre de progression")?
                        .progress_chars("=> "),
                );
                bar.set_message(format!("Millésime {v}"));
                let report = app
                    .import_vintage(v, Actor::Cli, &|done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })
                    .await?;
                bar.finish_and_clear();
                println!(
                    "millésime {} importé depuis {} : {} régions, {} départements, {} communes, {} EPCI ({:.2} s)",
                    report.vintage,
                    report.source,
                    report.regions,
                    report.departements,
                    report.communes,
                    report.epci,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Command::Admin {
            command: AdminCommand::CreateUser(args),
        } => {
            let role = Role::parse(&args.role)?;
            let service = args
                .territoire
                .as_deref()
                .map(ServiceTarget::parse)
                .transpose()?;
            let collectivites = args
                .collectivite
                .iter()
                .map(|c| CollectiviteRef::parse(c))
                .collect::<Result<Vec<_>, _>>()?;
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            let (id, link) = app
                .create_user(
                    guichet_app::accounts::NewUser {
                        display_name: args.nom.unwrap_or_else(|| args.email.clone()),
                        email: args.email,
                        role,
                        service,
                        collectivites,
                    },
                    Actor::Cli,
                )
                .await?;
            println!("compte n° {id} créé ({role}).");
            println!("Lien à usage unique pour choisir le mot de passe (valable 7 jours) :");
            println!("{link}");
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let db = guichet_storage::Db::connect(&config.database_url, 1).await?;
            db.migrate().await?;
            let report = guichet_app::audit::verify(&db).await?;
            println!(
                "journal d'audit intègre : {} entrées vérifiées, tête n° {} ({})",
                report.checked, report.head_seq, report.head_hash
            );
        }
    }
    Ok(())
}
