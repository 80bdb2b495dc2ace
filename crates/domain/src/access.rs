//! Roles, services and scopes, and the access decisions made from them.
//!
//! Every role except `administrateur` is bound to a territory: a service (a prefecture or a
//! national directorate) or, for applicants, one or more collectivités. A principal's `Scope`,
//! below, is the single place where "who may see what" is written: the application layer passes
//! it to storage, which filters in SQL; the web layer never decides.

use crate::codes::{DepartementCode, RegionCode};
use crate::territory::{CollectiviteKind, CollectiviteRef, TerritoryFootprint};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Demandeur,
    Instructeur,
    Coordinateur,
    Administrateur,
    Expert,
    MembreComite,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("rôle inconnu : « {0} » (demandeur, instructeur, coordinateur, administrateur, expert, membre-comite)")]
    UnknownRole(String),
    #[error("territoire inconnu : « {0} » (formes acceptées : 95, departement:95, region:11, ou le code d’une direction nationale du programme, par exemple DINUM)")]
    UnknownTerritory(String),
    #[error("le rôle {role} exige {what}")]
    MissingScope { role: Role, what: &'static str },
    #[error("le rôle {role} ne peut pas être rattaché à {what}")]
    ForbiddenScope { role: Role, what: &'static str },
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Demandeur,
        Role::Instructeur,
        Role::Coordinateur,
        Role::Administrateur,
        Role::Expert,
        Role::MembreComite,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Role::Demandeur => "demandeur",
            Role::Instructeur => "instructeur",
            Role::Coordinateur => "coordinateur",
            Role::Administrateur => "administrateur",
            Role::Expert => "expert",
            Role::MembreComite => "membre-comite",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Demandeur => "Demandeur (agent de collectivité)",
            Role::Instructeur => "Instructeur",
            Role::Coordinateur => "Coordinateur régional",
            Role::Administrateur => "Administrateur national",
            Role::Expert => "Expert",
            Role::MembreComite => "Membre de comité",
        }
    }

    pub fn parse(input: &str) -> Result<Self, AccessError> {
        let s = input.trim().to_ascii_lowercase();
        Role::ALL
            .into_iter()
            .find(|r| r.slug() == s)
            .ok_or(AccessError::UnknownRole(input.trim().to_string()))
    }

    /// Checks that a role is given the kind of scope it needs, and nothing else.
    pub fn check_scope(
        self,
        service: Option<ServiceKind>,
        collectivites: usize,
    ) -> Result<(), AccessError> {
        let role = self;
        match self {
            Role::Administrateur => {
                if service.is_some() {
                    return Err(AccessError::ForbiddenScope {
                        role,
                        what: "un service",
                    });
                }
                if collectivites > 0 {
                    return Err(AccessError::ForbiddenScope {
                        role,
                        what: "une collectivité",
                    });
                }
            }
            Role::Demandeur => {
                if service.is_some() {
                    return Err(AccessError::ForbiddenScope {
                        role,
                        what: "un service de l’État",
                    });
                }
                if collectivites == 0 {
                    return Err(AccessError::MissingScope {
                        role,
                        what: "au moins une collectivité (--collectivite TYPE:CODE)",
                    });
                }
            }
            Role::Coordinateur => {
                if service != Some(ServiceKind::PrefectureRegionale) {
                    return Err(AccessError::MissingScope {
                        role,
                        what: "une préfecture de région (--territoire region:CODE)",
                    });
                }
                if collectivites > 0 {
                    return Err(AccessError::ForbiddenScope {
                        role,
                        what: "une collectivité",
                    });
                }
            }
            Role::Instructeur | Role::Expert | Role::MembreComite => {
                if service.is_none() {
                    return Err(AccessError::MissingScope {
                        role,
                        what: "un service (--territoire)",
                    });
                }
                if collectivites > 0 {
                    return Err(AccessError::ForbiddenScope {
                        role,
                        what: "une collectivité",
                    });
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    PrefectureDepartementale,
    PrefectureRegionale,
    DirectionNationale,
}

impl ServiceKind {
    pub fn slug(self) -> &'static str {
        match self {
            ServiceKind::PrefectureDepartementale => "prefecture-departementale",
            ServiceKind::PrefectureRegionale => "prefecture-regionale",
            ServiceKind::DirectionNationale => "direction-nationale",
        }
    }

    pub fn from_slug(input: &str) -> Option<Self> {
        [
            ServiceKind::PrefectureDepartementale,
            ServiceKind::PrefectureRegionale,
            ServiceKind::DirectionNationale,
        ]
        .into_iter()
        .find(|k| k.slug() == input)
    }

    pub fn label(self) -> &'static str {
        match self {
            ServiceKind::PrefectureDepartementale => "Préfecture de département",
            ServiceKind::PrefectureRegionale => "Préfecture de région",
            ServiceKind::DirectionNationale => "Direction nationale",
        }
    }
}

/// Which service a `--territoire` argument designates, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTarget {
    Departement(DepartementCode),
    Region(RegionCode),
    /// A national directorate's code, in upper case. Which directorates exist is the
    /// programme's data (`directions_nationales`): the application checks the code against it
    /// before it creates or finds the service.
    Direction(String),
}

impl ServiceTarget {
    /// Accepts `95`, `departement:95`, `region:11`, `DINUM` or `national:DINUM` (directorate
    /// codes in any case: 2 to 12 letters or digits, at least one letter).
    pub fn parse(input: &str) -> Result<Self, AccessError> {
        let s = input.trim();
        let unknown = || AccessError::UnknownTerritory(s.to_string());
        let (prefix, code) = match s.split_once(':') {
            Some((p, c)) => (Some(p.to_ascii_lowercase()), c),
            None => (None, s),
        };
        let direction = ((2..=12).contains(&code.len())
            && code.chars().all(|c| c.is_ascii_alphanumeric())
            && code.chars().any(|c| c.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase());
        match prefix.as_deref() {
            // A département first: `2A` is Corse-du-Sud, not a directorate.
            None => DepartementCode::parse(code)
                .ok()
                .map(ServiceTarget::Departement)
                .or_else(|| direction.map(ServiceTarget::Direction))
                .ok_or_else(unknown),
            Some("departement") | Some("département") => DepartementCode::parse(code)
                .map(ServiceTarget::Departement)
                .map_err(|_| unknown()),
            Some("region") | Some("région") => RegionCode::parse(code)
                .map(ServiceTarget::Region)
                .map_err(|_| unknown()),
            Some("national") => direction.map(ServiceTarget::Direction).ok_or_else(unknown),
            Some(_) => Err(unknown()),
        }
    }

    pub fn kind(&self) -> ServiceKind {
        match self {
            ServiceTarget::Departement(_) => ServiceKind::PrefectureDepartementale,
            ServiceTarget::Region(_) => ServiceKind::PrefectureRegionale,
            ServiceTarget::Direction(_) => ServiceKind::DirectionNationale,
        }
    }

    pub fn territory_code(&self) -> &str {
        match self {
            ServiceTarget::Departement(d) => d.as_str(),
            ServiceTarget::Region(r) => r.as_str(),
            ServiceTarget::Direction(d) => d,
        }
    }
}

/// A service as the access rules need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceScope {
    pub id: i64,
    pub kind: ServiceKind,
    /// Département code, région code or directorate code, by kind.
    pub territory_code: String,
    /// For a departmental prefecture, the région it belongs to.
    pub region_code: Option<String>,
}

/// The authenticated user as the access rules see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: i64,
    pub role: Role,
    pub service: Option<ServiceScope>,
    pub collectivites: Vec<CollectiviteRef>,
}

impl Principal {
    /// What this principal may see and do, as a value. Computed from the role and the service
    /// only (no I/O): the application passes it to storage, which turns it into a `WHERE`
    /// clause, and the menus ask it which areas to offer.
    pub fn scope(&self) -> Scope {
        let service = self.service.as_ref();
        let services = match (self.role, service) {
            (Role::Administrateur, _) => ServiceSet::All,
            (Role::Demandeur, _) | (_, None) => ServiceSet::Nothing,
            (Role::Coordinateur, Some(s)) if s.kind == ServiceKind::PrefectureRegionale => {
                ServiceSet::Region {
                    own: s.id,
                    region: s.territory_code.clone(),
                }
            }
            (_, Some(s)) => ServiceSet::Own(s.id),
        };
        let collectivites = match (self.role, service) {
            (Role::Administrateur, _) => CollectiviteSet::All,
            (Role::Demandeur, _) => CollectiviteSet::Listed(self.collectivites.clone()),
            // Experts and committee members will see the dossiers put before them, not whole
            // territories.
            (Role::Expert | Role::MembreComite, _) | (_, None) => CollectiviteSet::Nothing,
            (Role::Instructeur | Role::Coordinateur, Some(s)) => match s.kind {
                ServiceKind::DirectionNationale if self.role == Role::Instructeur => {
                    CollectiviteSet::All
                }
                ServiceKind::DirectionNationale => CollectiviteSet::Nothing,
                ServiceKind::PrefectureRegionale => {
                    CollectiviteSet::Region(s.territory_code.clone())
                }
                ServiceKind::PrefectureDepartementale if self.role == Role::Instructeur => {
                    CollectiviteSet::Departement(s.territory_code.clone())
                }
                ServiceKind::PrefectureDepartementale => CollectiviteSet::Nothing,
            },
        };
        Scope {
            role: self.role,
            own_service: service.map(|s| s.id),
            services,
            collectivites,
        }
    }
}

/// What a principal may see: the services, and the collectivités (by territory or by name).
/// The one place where "who sees what" is decided; storage translates it into SQL
/// (`guichet_storage::scope`), pages and the API never decide it themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub role: Role,
    /// The principal's own service, if any.
    pub own_service: Option<i64>,
    pub services: ServiceSet,
    pub collectivites: CollectiviteSet,
}

/// The services a principal may see (their page, their members, later their queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceSet {
    All,
    Nothing,
    /// One service: the principal's own.
    Own(i64),
    /// A regional prefecture: itself and the departmental prefectures of its région.
    Region {
        own: i64,
        region: String,
    },
}

/// The collectivités whose private space (agents, later dossiers) a principal may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectiviteSet {
    All,
    Nothing,
    /// The collectivités an applicant acts for.
    Listed(Vec<CollectiviteRef>),
    /// The collectivités touching a département (an EPCI straddling two départements belongs to
    /// both), except régions: a région touches every one of its départements, but its own space
    /// belongs to regional and national services only.
    Departement(String),
    /// The collectivités touching a région.
    Region(String),
}

/// What a principal may do beyond reading scoped data: asked by use cases and by menus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List the services in scope (`/espace/services`).
    ListServices,
    /// See every account.
    ManageAccounts,
    /// Read the audit log.
    ReadAuditLog,
    /// See the job queue and retry dead jobs (`/admin/travaux`).
    ManageJobs,
    /// Create, list and revoke API tokens (`/admin/jetons`).
    ManageApiTokens,
    /// Create, list and disable webhooks and read their delivery log (`/admin/webhooks`).
    ManageWebhooks,
    /// Measure the impact of a draft programme (`/admin/impact`): nationally for
    /// administrators, over their région for coordinators.
    ReadImpact,
    /// Work the instruction queue (`/instruction`): the dossiers of the services in scope.
    InstructDossiers,
    /// File dossiers for the collectivités one acts for (`/espace/dossiers`).
    FileDossiers,
}

/// The areas of "Mon espace" a principal is offered, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// All services (administrators).
    AllServices,
    /// The services of a région (coordinators).
    RegionServices,
    /// One's own service.
    OwnService(i64),
    /// The instruction queue (instructors, coordinators, administrators).
    Instruction,
    /// One's collectivités' dossiers (applicants).
    Dossiers,
    Accounts,
    AuditLog,
    Jobs,
    ApiTokens,
    Webhooks,
    Impact,
}

impl Scope {
    pub fn can(&self, action: Action) -> bool {
        match action {
            Action::ListServices => self.role != Role::Demandeur,
            Action::ManageAccounts
            | Action::ReadAuditLog
            | Action::ManageJobs
            | Action::ManageApiTokens
            | Action::ManageWebhooks => self.role == Role::Administrateur,
            Action::ReadImpact => {
                matches!(self.role, Role::Administrateur | Role::Coordinateur)
            }
            Action::InstructDossiers => matches!(
                self.role,
                Role::Administrateur | Role::Coordinateur | Role::Instructeur
            ),
            Action::FileDossiers => {
                self.role == Role::Demandeur
                    && matches!(&self.collectivites, CollectiviteSet::Listed(l) if !l.is_empty())
            }
        }
    }

    /// The areas to offer in the navigation, derived from the same decisions as the reads.
    pub fn areas(&self) -> Vec<Area> {
        let mut areas = Vec::new();
        match (&self.services, self.own_service) {
            (ServiceSet::All, _) => areas.push(Area::AllServices),
            (ServiceSet::Region { .. }, _) => areas.push(Area::RegionServices),
            (ServiceSet::Own(id), _) => areas.push(Area::OwnService(*id)),
            (ServiceSet::Nothing, _) => {}
        }
        if self.can(Action::FileDossiers) {
            areas.push(Area::Dossiers);
        }
        if self.can(Action::InstructDossiers) {
            areas.push(Area::Instruction);
        }
        if self.can(Action::ManageAccounts) {
            areas.push(Area::Accounts);
        }
        if self.can(Action::ReadAuditLog) {
            areas.push(Area::AuditLog);
        }
        if self.can(Action::ManageJobs) {
            areas.push(Area::Jobs);
        }
        if self.can(Action::ManageApiTokens) {
            areas.push(Area::ApiTokens);
        }
        if self.can(Action::ManageWebhooks) {
            areas.push(Area::Webhooks);
        }
        if self.can(Action::ReadImpact) {
            areas.push(Area::Impact);
        }
        areas
    }

    /// Whether a service is in scope. Storage applies the same rule in SQL
    /// (`guichet_storage::scope::services`); a test checks that both agree.
    pub fn sees_service(&self, target: &ServiceScope) -> bool {
        match &self.services {
            ServiceSet::All => true,
            ServiceSet::Nothing => false,
            ServiceSet::Own(id) => *id == target.id,
            ServiceSet::Region { own, region } => {
                *own == target.id
                    || (target.kind == ServiceKind::PrefectureDepartementale
                        && target.region_code.as_deref() == Some(region.as_str()))
            }
        }
    }

    /// Whether a collectivité, lying on `footprint`, is in scope. Storage applies the same rule
    /// in SQL (`guichet_storage::scope::collectivites`); a test checks that both agree.
    pub fn sees_collectivite(
        &self,
        target: &CollectiviteRef,
        footprint: &TerritoryFootprint,
    ) -> bool {
        match &self.collectivites {
            CollectiviteSet::All => true,
            CollectiviteSet::Nothing => false,
            CollectiviteSet::Listed(refs) => refs.contains(target),
            CollectiviteSet::Departement(code) => {
                target.kind != CollectiviteKind::Region && footprint.touches_departement(code)
            }
            CollectiviteSet::Region(code) => footprint.touches_region(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dept_service(id: i64, dept: &str, region: &str) -> ServiceScope {
        ServiceScope {
            id,
            kind: ServiceKind::PrefectureDepartementale,
            territory_code: dept.into(),
            region_code: Some(region.into()),
        }
    }

    fn footprint(dept: &str, region: &str) -> TerritoryFootprint {
        TerritoryFootprint {
            departements: [dept.to_string()].into(),
            regions: [region.to_string()].into(),
        }
    }

    #[test]
    fn an_instructor_of_val_d_oise_cannot_see_a_yvelines_commune() {
        let p = Principal {
            user_id: 1,
            role: Role::Instructeur,
            service: Some(dept_service(95, "95", "11")),
            collectivites: vec![],
        };
        let cergy = CollectiviteRef::new(CollectiviteKind::Commune, "95127").unwrap();
        let versailles = CollectiviteRef::new(CollectiviteKind::Commune, "78646").unwrap();
        assert!(p.scope().sees_collectivite(&cergy, &footprint("95", "11")));
        assert!(!p
            .scope()
            .sees_collectivite(&versailles, &footprint("78", "11")));
        assert!(p.scope().sees_service(&dept_service(95, "95", "11")));
        assert!(!p.scope().sees_service(&dept_service(78, "78", "11")));
    }

    #[test]
    fn a_coordinator_sees_the_departments_of_its_region_only() {
        let p = Principal {
            user_id: 1,
            role: Role::Coordinateur,
            service: Some(ServiceScope {
                id: 11,
                kind: ServiceKind::PrefectureRegionale,
                territory_code: "11".into(),
                region_code: None,
            }),
            collectivites: vec![],
        };
        assert!(p.scope().sees_service(&dept_service(78, "78", "11")));
        assert!(!p.scope().sees_service(&dept_service(13, "13", "93")));
        let marseille = CollectiviteRef::new(CollectiviteKind::Commune, "13055").unwrap();
        assert!(!p
            .scope()
            .sees_collectivite(&marseille, &footprint("13", "93")));
    }

    #[test]
    fn a_region_space_belongs_to_regional_and_national_services_only() {
        let instructor = |service: ServiceScope| Principal {
            user_id: 1,
            role: Role::Instructeur,
            service: Some(service),
            collectivites: vec![],
        };
        let idf = CollectiviteRef::new(CollectiviteKind::Region, "11").unwrap();
        let idf_footprint = TerritoryFootprint {
            departements: ["75", "78", "95"].map(String::from).into(),
            regions: ["11".to_string()].into(),
        };
        let val_d_oise = CollectiviteRef::new(CollectiviteKind::Departement, "95").unwrap();
        let dep = instructor(dept_service(95, "95", "11")).scope();
        assert!(!dep.sees_collectivite(&idf, &idf_footprint));
        assert!(dep.sees_collectivite(&val_d_oise, &footprint("95", "11")));
        let reg = instructor(ServiceScope {
            id: 11,
            kind: ServiceKind::PrefectureRegionale,
            territory_code: "11".into(),
            region_code: None,
        })
        .scope();
        assert!(reg.sees_collectivite(&idf, &idf_footprint));
        let national = instructor(ServiceScope {
            id: 1,
            kind: ServiceKind::DirectionNationale,
            territory_code: "DINUM".into(),
            region_code: None,
        })
        .scope();
        assert!(national.sees_collectivite(&idf, &idf_footprint));
    }

    #[test]
    fn menus_follow_the_scope() {
        let admin = Principal {
            user_id: 1,
            role: Role::Administrateur,
            service: None,
            collectivites: vec![],
        }
        .scope();
        assert_eq!(
            admin.areas(),
            [
                Area::AllServices,
                Area::Instruction,
                Area::Accounts,
                Area::AuditLog,
                Area::Jobs,
                Area::ApiTokens,
                Area::Webhooks,
                Area::Impact
            ]
        );
        let applicant = Principal {
            user_id: 2,
            role: Role::Demandeur,
            service: None,
            collectivites: vec![CollectiviteRef::new(CollectiviteKind::Commune, "95127").unwrap()],
        }
        .scope();
        assert_eq!(applicant.areas(), [Area::Dossiers]);
        assert!(applicant.can(Action::FileDossiers));
        assert!(!applicant.can(Action::ListServices));
        let unattached = Principal {
            user_id: 4,
            role: Role::Demandeur,
            service: None,
            collectivites: vec![],
        }
        .scope();
        assert!(
            unattached.areas().is_empty(),
            "no collectivité, nothing to file"
        );
        assert!(!admin.can(Action::FileDossiers));
        let expert = Principal {
            user_id: 3,
            role: Role::Expert,
            service: Some(dept_service(95, "95", "11")),
            collectivites: vec![],
        }
        .scope();
        assert_eq!(expert.areas(), [Area::OwnService(95)]);
        assert_eq!(expert.collectivites, CollectiviteSet::Nothing);
        assert!(!expert.can(Action::InstructDossiers));
        let instructor = Principal {
            user_id: 4,
            role: Role::Instructeur,
            service: Some(dept_service(95, "95", "11")),
            collectivites: vec![],
        }
        .scope();
        assert_eq!(
            instructor.areas(),
            [Area::OwnService(95), Area::Instruction]
        );
        let coordinator = Principal {
            user_id: 5,
            role: Role::Coordinateur,
            service: Some(ServiceScope {
                id: 11,
                kind: ServiceKind::PrefectureRegionale,
                territory_code: "11".into(),
                region_code: None,
            }),
            collectivites: vec![],
        }
        .scope();
        assert_eq!(
            coordinator.areas(),
            [Area::RegionServices, Area::Instruction, Area::Impact]
        );
    }

    #[test]
    fn roles_need_their_scope() {
        assert!(Role::Demandeur.check_scope(None, 0).is_err());
        assert!(Role::Demandeur.check_scope(None, 1).is_ok());
        assert!(Role::Coordinateur
            .check_scope(Some(ServiceKind::PrefectureDepartementale), 0)
            .is_err());
        assert!(Role::Instructeur
            .check_scope(Some(ServiceKind::DirectionNationale), 0)
            .is_ok());
        assert!(Role::Administrateur
            .check_scope(Some(ServiceKind::DirectionNationale), 0)
            .is_err());
    }

    #[test]
    fn service_targets() {
        assert_eq!(
            ServiceTarget::parse("95").map(|t| t.kind()),
            Ok(ServiceKind::PrefectureDepartementale)
        );
        assert_eq!(
            ServiceTarget::parse("region:11").map(|t| t.kind()),
            Ok(ServiceKind::PrefectureRegionale)
        );
        assert_eq!(
            ServiceTarget::parse("dinum").map(|t| t.territory_code().to_string()),
            Ok("DINUM".into())
        );
        // Any directorate code parses; the application checks it against the programme's.
        assert_eq!(
            ServiceTarget::parse("national:anssi"),
            Ok(ServiceTarget::Direction("ANSSI".into()))
        );
        assert_eq!(
            ServiceTarget::parse("2a").map(|t| t.kind()),
            Ok(ServiceKind::PrefectureDepartementale)
        );
        assert!(ServiceTarget::parse("région:11").is_ok());
        assert!(ServiceTarget::parse("region:1").is_err());
        assert!(ServiceTarget::parse("96").is_err());
        assert!(ServiceTarget::parse("national:95").is_err());
        assert!(ServiceTarget::parse("mars:DINUM").is_err());
        assert!(ServiceTarget::parse("dinum numérique").is_err());
        assert!(ServiceTarget::parse("").is_err());
    }
}
