//! Demo data: the referential, ITN7's services and one fictional account per role. Idempotent:
//! running it again creates only what is missing. Every name here is invented.

use crate::accounts::NewUser;
use crate::audit::Actor;
use crate::error::{AppError, AppResult};
use crate::App;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteRef, Role, Vintage};
use guichet_storage::accounts as store;

/// Password of every demo account (listed in the README).
pub const DEMO_PASSWORD: &str = "demonstration-itn7";

/// ITN7's instructing services: the 7 Île-de-France departmental prefectures of volet 1, the
/// regional prefectures of Île-de-France, PACA and Occitanie, and the national directorates.
pub const DEMO_SERVICES: &[&str] = &[
    "77",
    "78",
    "91",
    "92",
    "93",
    "94",
    "95",
    "region:11",
    "region:93",
    "region:76",
    "DINUM",
    "DITP",
    "ANCT",
    "ANSSI",
];

pub struct DemoAccount {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
    pub service: Option<&'static str>,
    pub collectivites: &'static [&'static str],
}

pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        email: "admin@demo.guichet.test",
        name: "Alix Exemple",
        role: Role::Administrateur,
        service: None,
        collectivites: &[],
    },
    DemoAccount {
        email: "coordination.idf@demo.guichet.test",
        name: "Sacha Exemple",
        role: Role::Coordinateur,
        service: Some("region:11"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.95@demo.guichet.test",
        name: "Dominique Exemple",
        role: Role::Instructeur,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.78@demo.guichet.test",
        name: "Claude Exemple",
        role: Role::Instructeur,
        service: Some("78"),
        collectivites: &[],
    },
    DemoAccount {
        email: "instruction.dinum@demo.guichet.test",
        name: "Maxime Exemple",
        role: Role::Instructeur,
        service: Some("DINUM"),
        collectivites: &[],
    },
    DemoAccount {
        email: "expert.95@demo.guichet.test",
        name: "Morgan Exemple",
        role: Role::Expert,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "comite.95@demo.guichet.test",
        name: "Noa Exemple",
        role: Role::MembreComite,
        service: Some("95"),
        collectivites: &[],
    },
    DemoAccount {
        email: "mairie.cergy@demo.guichet.test",
        name: "Camille Exemple",
        role: Role::Demandeur,
        service: None,
        collectivites: &["commune:95127", "epci:249500109"],
    },
    DemoAccount {
        email: "mairie.versailles@demo.guichet.test",
        name: "Lou Exemple",
        role: Role::Demandeur,
        service: None,
        collectivites: &["commune:78646"],
    },
];

/// Demo data (`app.demo()`).
#[derive(Clone, Copy)]
pub struct Demo<'a> {
    pub(crate) app: &'a App,
}

impl Demo<'_> {
    /// Loads the demo data; returns how many accounts were created.
    pub async fn load(&self) -> AppResult<usize> {
        let imported = crate::referentiel::available_vintages(&self.app.db).await?;
        for v in Vintage::ALL {
            if !imported.contains(&v) {
                let report = self
                    .app
                    .referentiel()
                    .import_vintage(v, Actor::System, &|_, _| {})
                    .await?;
                tracing::info!(millesime = %v, communes = report.communes, "référentiel importé pour la démonstration");
            }
        }
        for s in DEMO_SERVICES {
            let target = ServiceTarget::parse(s).map_err(|e| AppError::Invalid(e.to_string()))?;
            self.app
                .accounts()
                .ensure_service(&target, Actor::System)
                .await?;
        }
        let mut created = 0;
        for a in DEMO_ACCOUNTS {
            let exists = {
                let mut conn = self.app.db.pool().acquire().await?;
                store::find_user_by_email(&mut *conn, a.email)
                    .await?
                    .is_some()
            };
            if exists {
                continue;
            }
            let service = a
                .service
                .map(ServiceTarget::parse)
                .transpose()
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            let collectivites = a
                .collectivites
                .iter()
                .map(|c| CollectiviteRef::parse(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| AppError::Invalid(e.to_string()))?;
            let (id, _link) = self
                .app
                .accounts()
                .create_user(
                    NewUser {
                        email: a.email.into(),
                        display_name: a.name.into(),
                        role: a.role,
                        service,
                        collectivites,
                    },
                    Actor::System,
                )
                .await?;
            self.app
                .sessions()
                .set_password(id, DEMO_PASSWORD, Actor::System)
                .await?;
            created += 1;
        }
        Ok(created)
    }
}
