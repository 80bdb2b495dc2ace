//! The `guichet` binary: one entry point for serving, migrating, importing the referential,
//! administering accounts, verifying the audit log, simulating a measure and checking or testing
//! a programme folder.
//!
//! Exit codes: 0 success; 1 failure (database unreachable, invalid programme, failing test
//! cases…); 2 input error (command-line usage, or a simulation input the user must correct).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use guichet_app::audit::Actor;
use guichet_app::clock::Clock;
use guichet_app::config::{parse_clock, Config};
use guichet_app::error::AppError;
use guichet_app::jobs::{Registry, WorkerOptions, Workers};
use guichet_app::simulation::{explain, SimulationInput, SimulationOutput};
use guichet_app::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteRef, Role, Vintage};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
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
  GUICHET_BROUILLONS_DIR  dossier des brouillons de programme comparés par la page /admin/impact
  GUICHET_DB_MAX_CONNECTIONS  taille du pool de connexions (défaut : 8)
  GUICHET_TRUST_PROXY     nombre de proxys inverses devant Guichet qui ajoutent X-Forwarded-For
                          (défaut : 0 ; oui/non, 1/0, true/false, yes/no, on/off acceptés : oui = 1)
  GUICHET_UPLOAD_MAX_OCTETS  taille maximale d'un envoi de fichiers (défaut : 20M ; ex. 20971520, 50M)
  GUICHET_API_REQUETES_MINUTE  requêtes par minute permises à un jeton d'API (défaut : 600)
  GUICHET_WORKERS         travailleurs de la file de travaux dans « serve » (défaut : 2 ; 0 possible)
  GUICHET_AUDIT_CLE       clé ed25519 qui signe les ancres du journal d'audit (« guichet audit cle »)
  GUICHET_AUDIT_ANCRES    dossier des ancres signées (défaut : <données>/ancres)
  GUICHET_AUDIT_ANCRAGE   minutes entre deux ancres (défaut : 60)
  GUICHET_AUDIT_ANCRES_COURRIEL  adresse qui reçoit aussi chaque ancre
  GUICHET_LOG             filtre des journaux (défaut : info ; warn pour simulate et programme)

Codes de sortie : 0 succès ; 1 échec (base injoignable, programme invalide, cas de test en échec…) ;
2 saisie à corriger (option inconnue, mesure ou collectivité inconnue, montant ou date invalide…).";

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
    /// Exécute les travaux de la file (courriels, purges, ancres du journal) sans servir de pages
    Worker(WorkerArgs),
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
    /// Simule l'aide d'une mesure pour une collectivité (référentiel importé requis)
    #[command(after_help = SIMULATE_HELP)]
    Simulate(SimulateArgs),
    /// Données de démonstration
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Exporte des données en CSV ou XLSX
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Vérifie ou teste un dossier de programme (sans base de données)
    Programme {
        #[command(subcommand)]
        command: ProgrammeCommand,
    },
}

const SIMULATE_HELP: &str = "\
Exemples :
  guichet simulate --mesure axe3.v1.relation-usager --demandeur commune:95127 --cout \"100 000\" --date-fin 2022-06-30
  guichet simulate --mesure axe3.v1.dematads --demandeur epci:249500109 --depense prestation=20000 \\
    --fait communes_rattachees=31 --date-depot 2021-06-01 --json

Sortie : l'explication en français, ou avec --json un objet JSON (mesure, eligible, motifs,
donnees_manquantes, hypotheses, depenses, assiette_centimes, taux, taux_max, montant_centimes,
montant_max_centimes, variante, date_depot, demandeur, version_programme, trace).

Codes de sortie : 0 simulation faite (éligible ou non) ; 2 saisie à corriger (mesure, collectivité,
montant, date, fait ou catégorie inconnus ; une ligne « erreur : … » sur la sortie d'erreur) ;
1 autre échec (base de données injoignable, référentiel non importé…).";

const PROGRAMME_HELP: &str = "\
DOSSIER : le dossier du programme (programmes/itn7) ou son fichier programme.yaml ; il contient
programme.yaml, parametres.yaml, regles.yaml, variantes.yaml, criteres.yaml et tests/*.yaml.

Codes de sortie : check : 0 programme valide, 1 erreurs (une ligne fichier:ligne:colonne : message
par erreur, sur la sortie d'erreur) ; test : 0 tous les cas passent, 1 au moins un échec,
2 programme invalide.";

#[derive(Subcommand)]
enum DemoCommand {
    /// Charge les comptes de démonstration puis dépose N dossiers fictifs (axe 3 volet 1), répartis entre les états
    Seed {
        /// Nombre de dossiers à créer
        #[arg(long, value_name = "N")]
        dossiers: usize,
        /// Graine du tirage : la même graine donne les mêmes dossiers
        #[arg(long, value_name = "S", default_value_t = 1)]
        graine: u64,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Les dossiers déposés (tous, ou ceux d'un service), une ligne par dossier
    Dossiers(ExportDossiersArgs),
}

#[derive(Args)]
struct ExportDossiersArgs {
    /// Code du service instructeur (pref-95, pref-reg-11, DINUM…) ; défaut : tous les dossiers
    #[arg(long, value_name = "CODE")]
    service: Option<String>,
    /// csv (UTF-8, séparateur « ; ») ou xlsx
    #[arg(long, value_name = "FORMAT", default_value = "csv")]
    format: String,
    /// Seulement les dossiers à cet état (depose, en_instruction, accepte…)
    #[arg(long, value_name = "ETAT")]
    etat: Option<String>,
    /// Seulement les dossiers de cette mesure
    #[arg(long, value_name = "ID")]
    mesure: Option<String>,
    /// Fichier à écrire
    #[arg(long, value_name = "FICHIER")]
    sortie: PathBuf,
}

#[derive(Args)]
struct SimulateArgs {
    /// Identifiant de la mesure (ex. axe3.v1.relation-usager, axe3.v1.dematads, axe2.demat)
    #[arg(long, value_name = "ID")]
    mesure: String,
    /// Demandeur : commune:95127, epci:249500109, departement:95, region:11, ou groupement:epci:…+commune:… (membres joints par « + »)
    #[arg(long, value_name = "TYPE:CODE")]
    demandeur: String,
    /// Coût total du projet en euros (12345.67 ou « 12 345,67 ») ; une ligne « prestation » si aucune --depense n'est donnée
    #[arg(long, value_name = "EUROS")]
    cout: Option<String>,
    /// Ligne de dépense, répétable : prestation=20000, logiciel-ue=5000, formation=1 500,50…
    #[arg(long, value_name = "CATEGORIE=EUROS")]
    depense: Vec<String>,
    /// Date de dépôt de la demande, AAAA-MM-JJ (défaut : aujourd'hui selon l'horloge de la plateforme)
    #[arg(long, value_name = "AAAA-MM-JJ")]
    date_depot: Option<String>,
    /// Date de fin prévue du projet, AAAA-MM-JJ
    #[arg(long, value_name = "AAAA-MM-JJ")]
    date_fin: Option<String>,
    /// Fait connu du demandeur, répétable : communes_rattachees=31, labo=oui, deja_commence=non…
    #[arg(long, value_name = "NOM=VALEUR")]
    fait: Vec<String>,
    /// Affiche un objet JSON (le même que l'API) au lieu de l'explication en français
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ProgrammeCommand {
    /// Charge le programme et signale chaque erreur (fichier:ligne:colonne : message)
    #[command(after_help = PROGRAMME_HELP)]
    Check {
        /// Dossier du programme (ex. programmes/itn7) ou son programme.yaml
        #[arg(value_name = "DOSSIER")]
        dir: PathBuf,
    },
    /// Exécute les cas de test du programme (DOSSIER/tests/*.yaml) et affiche « N passed, N failed »
    #[command(after_help = PROGRAMME_HELP)]
    Test {
        /// Dossier du programme (ex. programmes/itn7) ou son programme.yaml
        #[arg(value_name = "DOSSIER")]
        dir: PathBuf,
    },
    /// Impact d'une modification : chaque demandeur du référentiel évalué sous deux versions (référentiel importé requis)
    #[command(after_help = IMPACT_HELP)]
    Impact(ImpactArgs),
}

const IMPACT_HELP: &str = "\
Évalue chaque collectivité du référentiel du programme (communes, EPCI, départements, régions du
millésime du programme, lu dans la base) sous les deux versions, et donne par mesure et par
territoire (région, département) : demandeurs évalués, éligibles avant et après, devenus éligibles
ou inéligibles, montant, taux ou statut modifié, montant total avant et après. « Éligible » : aucune
condition n'exclut le demandeur (les informations du projet non fournies restent à confirmer).
Les dossiers déposés seront évalués aussi quand la plateforme en recevra.

Exemple :
  guichet programme impact --avant programmes/itn7 --apres brouillons/itn7-seuil-20000 \\
    --mesure axe3.v1.formation --cout 100000 --date-depot 2021-06-01 --json

Sortie : le rapport en français (les 50 premiers demandeurs qui changent), ou avec --json un objet
JSON (programme, version_avant, version_apres, millesime, date_depot, cout_centimes, perimetre,
demandeurs, dossiers, mesures[] avec total, regions[] et departements[], changements[] : chaque
demandeur qui change, avec reference, nom, population, avant, apres et ecart_centimes).

Codes de sortie : 0 rapport fait ; 2 saisie à corriger (dossier de programme invalide, mesure
inconnue, montant ou date invalide) ; 1 autre échec (base injoignable, référentiel non importé…).";

#[derive(Args)]
struct ImpactArgs {
    /// Version en vigueur : dossier du programme (ex. programmes/itn7) ou son programme.yaml
    #[arg(long, value_name = "DOSSIER")]
    avant: PathBuf,
    /// Version modifiée : dossier du programme ou son programme.yaml
    #[arg(long, value_name = "DOSSIER")]
    apres: PathBuf,
    /// Mesure à comparer, répétable (défaut : toutes les mesures des deux versions)
    #[arg(long, value_name = "ID")]
    mesure: Vec<String>,
    /// Coût du projet déposé par chaque demandeur, en euros (une ligne « prestation ») ; sans lui, aucun montant n'est calculé
    #[arg(long, value_name = "EUROS")]
    cout: Option<String>,
    /// Date de dépôt, AAAA-MM-JJ (défaut : aujourd'hui selon l'horloge de la plateforme)
    #[arg(long, value_name = "AAAA-MM-JJ")]
    date_depot: Option<String>,
    /// Affiche un objet JSON qui liste chaque demandeur dont la réponse change
    #[arg(long)]
    json: bool,
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

#[derive(Args)]
struct WorkerArgs {
    /// Nombre de travailleurs (défaut : GUICHET_WORKERS, au moins 1)
    #[arg(long, value_name = "N")]
    nombre: Option<usize>,
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
    /// Jetons d'API (Authorization: Bearer) : création, liste, révocation
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Webhooks d'un service (POST JSON signé HMAC-SHA256) : création, liste, désactivation
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Crée un webhook pour un service ; son secret est affiché une seule fois, en dernière ligne
    Create {
        /// Code du service (ex. pref-dep-95, pref-reg-11, DINUM)
        #[arg(long, value_name = "CODE")]
        service: String,
        /// Adresse en https:// (http:// seulement vers 127.0.0.1 ou localhost, pour le développement)
        #[arg(long, value_name = "URL")]
        url: String,
    },
    /// Liste les webhooks (jamais leur secret)
    List,
    /// Désactive un webhook aussitôt (il ne reçoit plus rien)
    Disable {
        /// Numéro du webhook (voir « guichet admin webhook list »)
        id: i64,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Crée un jeton pour un service ; le jeton est affiché une seule fois, en dernière ligne
    Create {
        /// Code du service (ex. pref-dep-95, pref-reg-11, DINUM)
        #[arg(long, value_name = "CODE")]
        service: String,
        /// Portée : lecture, ou ecriture (lecture et écriture)
        #[arg(long, value_name = "PORTÉE")]
        portee: String,
        /// Dernier jour de validité (AAAA-MM-JJ, heure de Paris) ; par défaut, sans expiration
        #[arg(long, value_name = "AAAA-MM-JJ")]
        expire: Option<String>,
        /// Libellé (à quoi sert ce jeton)
        #[arg(long, default_value = "")]
        nom: String,
    },
    /// Liste les jetons (jamais leur secret)
    List,
    /// Révoque un jeton aussitôt
    Revoke {
        /// Numéro du jeton (voir « guichet admin token list »)
        id: i64,
    },
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
    Verify {
        /// Dossier des ancres signées : signale toute troncature ou réécriture depuis chacune
        #[arg(long, value_name = "DOSSIER")]
        ancres: Option<PathBuf>,
        /// Clé publique des ancres (64 chiffres hexadécimaux, ou le fichier .pub) ; défaut : celle de GUICHET_AUDIT_CLE
        #[arg(long, value_name = "CLÉ")]
        cle_publique: Option<String>,
    },
    /// Crée une clé ed25519 pour signer les ancres (fichier PEM privé, et sa clé publique en .pub)
    Cle {
        /// Fichier de la clé privée à créer (ne doit pas exister)
        #[arg(long, value_name = "FICHIER")]
        sortie: PathBuf,
    },
    /// Écrit tout de suite une ancre signée de la tête du journal (GUICHET_AUDIT_CLE requis)
    Ancrer,
}

/// `default` applies when GUICHET_LOG is not set.
fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUICHET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
/// (glibc still serves the C code's allocations, SQLite's.)
///
/// mimalloc, which serves Rust's, purges the memory freed only a second later and only when it
/// allocates again: the memory of the start (the search index built for both vintages) then
/// stayed resident, 135–155 MB idle instead of glibc's 30 MB. Purged at once (and without
/// transparent huge pages, the `no_thp` feature), the idle RSS is about 50 MB, and the
/// simulator page's rate is the same (measured under wrk).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called once, before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    // SAFETY: mi_option_set only changes an allocator parameter; called before other threads.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// `mi_option_purge_delay`: its index in the `mi_option_e` of the mimalloc 3 sources that
/// libmimalloc-sys 0.1.49 builds (Cargo.lock; the crate names no constant for it). To check
/// again when that crate changes: `c_src/mimalloc/v3/include/mimalloc.h`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// An input the user must correct (unknown measure or collectivité, bad amount or date…):
/// exit code 2, like clap's own usage errors.
#[derive(Debug)]
struct InputError(String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Exit code 2: the command line is wrong.
const INPUT_ERROR: u8 = 2;

/// Application errors of a simulation: the user's input errors become [`InputError`].
fn simulation_error(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid(m) | AppError::NotFound(m) | AppError::Inconsistent(m) => {
            InputError(m).into()
        }
        other => other.into(),
    }
}

/// Splits a repeatable `NOM=VALEUR` option.
fn key_value(option: &str, shape: &str, raw: &str) -> Result<(String, String), InputError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(InputError(format!(
            "--{option} attend {shape} (par exemple {}), « {raw} » reçu",
            if option == "depense" {
                "prestation=20000"
            } else {
                "communes_rattachees=31"
            }
        ))),
    }
}

/// mimalloc rather than glibc's allocator: pages such as the simulator's allocate and free
/// thousands of small strings per request, and glibc spent about a third of that page's time
/// in malloc, free and the consolidation of freed chunks (perf under wrk, docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    // The commands whose output other tools read keep stderr for their errors alone.
    init_logs(match cli.command {
        Command::Simulate(_) | Command::Programme { .. } => "warn",
        _ => "info,sqlx=warn",
    });
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line: the input errors' messages are single lines; other causes are chained.
            eprintln!("erreur : {e:#}");
            if e.downcast_ref::<InputError>().is_some() {
                ExitCode::from(INPUT_ERROR)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `guichet programme check DIR`: every diagnostic, or a one-line summary.
fn programme_check(dir: &Path) -> ExitCode {
    let started = std::time::Instant::now();
    match guichet_app::programme::load(dir) {
        Ok(p) => {
            let elapsed = started.elapsed();
            let measures = p.measures().count();
            println!(
                "programme {} valide : {measures} mesure{}, {} paramètre{}, {} variante{} ({})",
                p.id,
                plural(measures),
                p.rules.params.len(),
                plural(p.rules.params.len()),
                p.rules.variants.len(),
                plural(p.rules.variants.len()),
                p.version
            );
            println!("chargé en {} ms", elapsed.as_millis());
            ExitCode::SUCCESS
        }
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            ExitCode::FAILURE
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n > 1 {
        "s"
    } else {
        ""
    }
}

/// `guichet programme test DIR`: runs `DIR/tests/*.yaml`, prints the failures and the summary.
fn programme_test(dir: &Path) -> ExitCode {
    let programme = match guichet_app::programme::load(dir) {
        Ok(p) => p,
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            eprintln!("erreur : le programme ne se charge pas ; aucun cas exécuté");
            return ExitCode::from(INPUT_ERROR);
        }
    };
    let files = match guichet_app::programme::read_tests(dir) {
        Ok(f) => f,
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            return ExitCode::from(INPUT_ERROR);
        }
    };
    let report = guichet_programme::cases::run(&programme, &files);
    for d in &report.errors {
        println!("{d}");
    }
    for f in &report.failures {
        println!("{}:{} {}", f.file, f.line, f.name);
        for p in &f.problems {
            println!("    {p}");
        }
    }
    println!("{}", report.summary());
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `guichet export dossiers`: every dossier (or a service's) to a CSV or XLSX file.
async fn export_dossiers(config: Config, args: ExportDossiersArgs) -> anyhow::Result<()> {
    use guichet_app::dossiers::ListFilter;
    use guichet_domain::dossier::{State, FILED};
    let format = guichet_app::exports::Format::parse(&args.format).map_err(simulation_error)?;
    let state = match args.etat.as_deref() {
        Some(s) => match State::parse(s) {
            Ok(st) if FILED.contains(&st) => Some(st),
            _ => {
                return Err(InputError(format!(
                    "état inconnu ou non exportable : « {s} » (depose, en_instruction, en_correction, instruit, accepte, refuse, sans_suite)"
                ))
                .into())
            }
        },
        None => None,
    };
    let clock = clock_for(&config);
    let app = App::start(config, clock).await?;
    if let Some(m) = args.mesure.as_deref() {
        if app.programme.measure(m).is_none() {
            return Err(InputError(format!("mesure inconnue : « {m} »")).into());
        }
    }
    let principal = match args.service.as_deref() {
        Some(code) => {
            let service = app
                .accounts()
                .service_by_code(code)
                .await
                .map_err(simulation_error)?;
            guichet_domain::Principal {
                user_id: 0,
                role: guichet_domain::Role::Instructeur,
                service: Some(guichet_app::accounts::service_scope(&service)?),
                collectivites: vec![],
            }
        }
        None => guichet_domain::Principal {
            user_id: 0,
            role: guichet_domain::Role::Administrateur,
            service: None,
            collectivites: vec![],
        },
    };
    let started = std::time::Instant::now();
    let n = app
        .exports()
        .dossiers(
            &principal,
            &ListFilter {
                state,
                // Filed dossiers only: drafts are their collectivités' business.
                states: if state.is_some() { &[] } else { FILED },
                measure: args.mesure.as_deref(),
                departement: None,
                after_id: None,
                limit: 0,
                followed_by: None,
                assigned_to: None,
                label: None,
            },
            format,
            &args.sortie,
        )
        .await
        .map_err(simulation_error)?;
    println!(
        "{n} dossier{} exporté{} dans {} ({} ms)",
        plural(n as usize),
        plural(n as usize),
        args.sortie.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `guichet simulate`: one measure for one applicant, explained or as JSON.
async fn simulate(config: Config, args: SimulateArgs) -> anyhow::Result<()> {
    let depenses = args
        .depense
        .iter()
        .map(|d| key_value("depense", "CATEGORIE=EUROS", d))
        .collect::<Result<Vec<_>, _>>()?;
    let faits = args
        .fait
        .iter()
        .map(|f| key_value("fait", "NOM=VALEUR", f))
        .collect::<Result<Vec<_>, _>>()?;
    let input = SimulationInput {
        mesure: Some(args.mesure),
        demandeur: args.demandeur,
        cout: args.cout,
        depenses,
        date_depot: args.date_depot,
        date_fin: args.date_fin,
        faits,
    };
    let clock = clock_for(&config);
    let app = App::start(config, clock).await?;
    let sim = app
        .simulation()
        .simulate(&input)
        .await
        .map_err(simulation_error)?;
    let Some(outcome) = sim.outcomes.first() else {
        anyhow::bail!("la simulation n’a évalué aucune mesure");
    };
    let evaluation = match &outcome.result {
        Ok(ev) => ev,
        Err(msg) if msg.contains(&outcome.measure) => return Err(InputError(msg.clone()).into()),
        Err(msg) => return Err(InputError(format!("mesure {} : {msg}", outcome.measure)).into()),
    };
    if args.json {
        let output = SimulationOutput::new(&app.programme, &sim, evaluation);
        println!(
            "{}",
            serde_json::to_string_pretty(&output).context("sérialisation JSON")?
        );
    } else {
        print!("{}", explain(&app.programme, &sim, evaluation));
    }
    Ok(())
}

/// One version of a programme for `programme impact`: its diagnostics on stderr when it does
/// not load.
fn impact_version(
    option: &str,
    dir: &Path,
) -> anyhow::Result<std::sync::Arc<guichet_programme::Programme>> {
    match guichet_app::programme::load(dir) {
        Ok(p) => Ok(std::sync::Arc::new(p)),
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            Err(InputError(format!(
                "le programme {option} ({}) ne se charge pas : {} erreur{}",
                dir.display(),
                diags.0.len(),
                plural(diags.0.len())
            ))
            .into())
        }
    }
}

/// `guichet programme impact`: both versions over every applicant of the referential.
async fn programme_impact(config: Config, args: ImpactArgs) -> anyhow::Result<()> {
    let before = impact_version("--avant", &args.avant)?;
    let after = impact_version("--apres", &args.apres)?;
    let input = guichet_app::impact::ImpactInput {
        mesures: args.mesure,
        cout: args.cout,
        date_depot: args.date_depot,
    };
    let clock = clock_for(&config);
    let app = App::start(config, clock).await?;
    let started = std::time::Instant::now();
    let report = app
        .impact()
        .programme_impact(
            before,
            after,
            &input,
            guichet_app::impact::ImpactScope::National,
        )
        .await
        .map_err(simulation_error)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("sérialisation JSON")?
        );
    } else {
        print!("{}", guichet_app::impact::text_report(&report, 50));
        println!(
            "\ncalculé en {} ms (lecture du référentiel et deux balayages)",
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The programme commands read files only: no configuration, no database (but impact).
    if let Command::Programme { command } = &cli.command {
        match command {
            ProgrammeCommand::Check { dir } => return Ok(programme_check(dir)),
            ProgrammeCommand::Test { dir } => return Ok(programme_test(dir)),
            ProgrammeCommand::Impact(_) => {}
        }
    }
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Programme {
            command: ProgrammeCommand::Impact(args),
        } => programme_impact(config, args).await?,
        Command::Programme { .. } => {}
        Command::Simulate(args) => simulate(config, args).await?,
        Command::Export {
            command: ExportCommand::Dossiers(args),
        } => export_dossiers(config, args).await?,
        Command::Demo {
            command: DemoCommand::Seed { dossiers, graine },
        } => {
            if dossiers == 0 || dossiers > 1_000_000 {
                return Err(InputError(format!(
                    "--dossiers : de 1 à 1 000 000 dossiers, pas {dossiers}"
                ))
                .into());
            }
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            let started = std::time::Instant::now();
            let report = app.demo().seed(dossiers, graine).await?;
            let states: Vec<String> = report
                .by_state
                .iter()
                .map(|(s, n)| format!("{} {n}", s.label().to_lowercase()))
                .collect();
            println!(
                "{} dossiers de démonstration déposés en {:.1} s ({})",
                report.dossiers,
                started.elapsed().as_secs_f64(),
                states.join(", ")
            );
        }
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
            let workers = config.workers;
            let app = App::start(config, clock).await?;
            if args.demo {
                let created = app.demo().load().await?;
                tracing::info!(comptes_crees = created, "données de démonstration prêtes");
            }
            let workers =
                Workers::start(&app, Registry::standard(&app), WorkerOptions::new(workers));
            // The search index loads in the background: the server answers (and /readyz says
            // ready) at once; a search arriving before the index is built waits for it.
            let warm = app.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.referentiel().refresh_search().await {
                    tracing::error!(erreur = %e, "chargement de l’index de recherche");
                }
            });
            let served = guichet_web::serve(app).await;
            workers.stop().await;
            served?;
        }
        Command::Worker(args) => {
            let n = args.nombre.unwrap_or(config.workers).max(1);
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            let workers = Workers::start(&app, Registry::standard(&app), WorkerOptions::new(n));
            println!("{n} travailleur(s) en service ; Ctrl-C ou SIGTERM pour arrêter");
            guichet_web::shutdown().await;
            workers.stop().await;
            println!("travailleurs arrêtés");
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
                    .referentiel()
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
                .accounts()
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
            println!(
                "Un courriel de bienvenue (avec son propre lien) part par la file de travaux : « guichet serve » ou « guichet worker » l'envoie."
            );
        }
        Command::Admin {
            command: AdminCommand::Token { command },
        } => {
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            let tokens = app.api_tokens();
            match command {
                TokenCommand::Create {
                    service,
                    portee,
                    expire,
                    nom,
                } => {
                    let scope = guichet_domain::api_token::TokenScope::parse(&portee)
                        .map_err(|e| InputError(e.to_string()))?;
                    let expires_on = match expire.as_deref() {
                        Some(e) => guichet_app::api_tokens::parse_expiry(e)
                            .map_err(|e| InputError(e.to_string()))?,
                        None => None,
                    };
                    let (id, secret) = tokens
                        .create(
                            guichet_app::api_tokens::NewToken {
                                service_code: &service,
                                scope,
                                expires_on,
                                label: &nom,
                            },
                            Actor::Cli,
                        )
                        .await?;
                    println!(
                        "jeton n° {id} créé pour le service {} (portée : {}). Il ne sera plus affiché : conservez-le maintenant.",
                        service.trim(),
                        scope.label()
                    );
                    println!("{secret}");
                }
                TokenCommand::List => {
                    let rows = tokens.list_all().await?;
                    if rows.is_empty() {
                        println!("aucun jeton d'API");
                    }
                    for t in rows {
                        let state = match (&t.revoked_at, &t.expires_at) {
                            (Some(at), _) => format!("révoqué le {at}"),
                            (None, Some(at)) => format!("expire le {at}"),
                            (None, None) => "sans expiration".to_string(),
                        };
                        println!(
                            "n° {}\t{}\t{}\t{}\t{}\t{}",
                            t.id,
                            t.service_code,
                            t.scope.slug(),
                            if t.label.is_empty() { "—" } else { &t.label },
                            state,
                            t.last_used_at
                                .map(|u| format!("dernier usage {u}"))
                                .unwrap_or_else(|| "jamais utilisé".into())
                        );
                    }
                }
                TokenCommand::Revoke { id } => {
                    tokens.revoke(id, Actor::Cli).await?;
                    println!("jeton n° {id} révoqué.");
                }
            }
        }
        Command::Admin {
            command: AdminCommand::Webhook { command },
        } => {
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            let hooks = app.webhooks();
            match command {
                WebhookCommand::Create { service, url } => {
                    guichet_app::webhooks::check_url(&url)
                        .map_err(|e| InputError(e.to_string()))?;
                    let (id, secret) = hooks.create(&service, &url, Actor::Cli).await?;
                    println!(
                        "webhook n° {id} créé pour le service {}. Son secret (clé HMAC-SHA256, docs/webhooks.md) ne sera plus affiché : conservez-le maintenant.",
                        service.trim()
                    );
                    println!("{secret}");
                }
                WebhookCommand::List => {
                    let rows = hooks.list_all().await?;
                    if rows.is_empty() {
                        println!("aucun webhook");
                    }
                    for w in rows {
                        let state = match &w.disabled_at {
                            Some(at) => format!("désactivé le {at}"),
                            None => "actif".to_string(),
                        };
                        println!(
                            "n° {}\t{}\t{}\t{}\tcréé le {}",
                            w.id, w.service_code, w.url, state, w.created_at
                        );
                    }
                }
                WebhookCommand::Disable { id } => {
                    hooks.disable(id, Actor::Cli).await?;
                    println!("webhook n° {id} désactivé.");
                }
            }
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    ancres: None,
                    cle_publique: None,
                },
        } => {
            let db = guichet_storage::Db::connect(&config.database_url, 1).await?;
            db.migrate().await?;
            let report = guichet_app::audit::verify(&db).await?;
            println!(
                "journal d'audit intègre : {} entrées vérifiées, tête n° {} ({})",
                report.checked, report.head_seq, report.head_hash
            );
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    ancres,
                    cle_publique,
                },
        } => return audit_verify_anchored(config, ancres, cle_publique).await,
        Command::Audit {
            command: AuditCommand::Cle { sortie },
        } => audit_key(&sortie)?,
        Command::Audit {
            command: AuditCommand::Ancrer,
        } => {
            let clock = clock_for(&config);
            let app = App::start(config, clock).await?;
            match guichet_app::audit::write_anchor(&app).await? {
                Some(a) => println!(
                    "ancre écrite dans {} : entrée n° {} ({})",
                    app.config.audit_anchor.dir.display(),
                    a.seq,
                    a.hash
                ),
                None => println!("la dernière ancre atteste déjà la tête du journal"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `guichet audit verify` with checkpoints: the chain, then each checkpoint against it.
async fn audit_verify_anchored(
    config: Config,
    ancres: Option<PathBuf>,
    cle_publique: Option<String>,
) -> anyhow::Result<ExitCode> {
    let public = match (&cle_publique, &config.audit_anchor.key_file) {
        (Some(k), _) => guichet_app::audit::parse_public_key(k)?,
        (None, Some(file)) => {
            let key = guichet_app::audit::AnchorKey::read(file)?;
            guichet_app::audit::parse_public_key(&key.public_hex())?
        }
        (None, None) => anyhow::bail!(
            "clé publique des ancres inconnue : donnez --cle-publique ou GUICHET_AUDIT_CLE"
        ),
    };
    let dir = ancres.unwrap_or_else(|| config.audit_anchor.dir.clone());
    let anchors = guichet_app::audit::read_anchors(&dir)?;
    if anchors.is_empty() {
        anyhow::bail!(
            "aucune ancre dans {} : rien ne peut être attesté",
            dir.display()
        );
    }
    let db = guichet_storage::Db::connect(&config.database_url, 1).await?;
    db.migrate().await?;
    match guichet_app::audit::verify_with_anchors(&db, &anchors, &public).await? {
        Ok(report) => {
            println!(
                "journal d'audit intègre : {} entrées vérifiées, tête n° {} ({})",
                report.chain.checked, report.chain.head_seq, report.chain.head_hash
            );
            if let Some((seq, at)) = report.latest {
                println!(
                    "{} ancre(s) vérifiée(s) ; la plus récente atteste l'entrée n° {seq} ({at})",
                    report.anchors
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "erreur : journal d'audit non conforme à ses ancres ({} problème(s))",
                problems.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `guichet audit cle --sortie FICHIER`: a new signing key, readable by its owner only.
fn audit_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let (key, pem) = guichet_app::audit::AnchorKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("création de {} (il ne doit pas exister)", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("écriture de {}", path.display()))?;
    let public = path.with_extension("pub");
    std::fs::write(&public, format!("{}\n", key.public_hex()))
        .with_context(|| format!("écriture de {}", public.display()))?;
    println!(
        "clé privée écrite dans {} (à garder hors de la base de données)",
        path.display()
    );
    println!("clé publique ({}) : {}", public.display(), key.public_hex());
    Ok(())
}
