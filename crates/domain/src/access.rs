//! Roles, services and scopes, and the access decisions made from them.
//!
//! Every role except `administrateur` is bound to a territory: a service (a prefecture or a
//! national directorate) or, for applicants, one or more collectivités. The decisions below are
//! the single place where "who may see what" is written; the web layer asks them on every read.

use crate::codes::{DepartementCode, RegionCode};
use crate::territory::{CollectiviteRef, TerritoryFootprint};
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
    #[error("territoire inconnu : « {0} » (formes acceptées : 95, departement:95, region:11, DINUM, DITP, ANCT, ANSSI)")]
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

/// The national directorates that instruct or pilot ITN7 measures.
pub const DIRECTIONS_NATIONALES: [(&str, &str); 4] = [
    ("DINUM", "Direction interministérielle du numérique"),
    (
        "DITP",
        "Direction interministérielle de la transformation publique",
    ),
    ("ANCT", "Agence nationale de la cohésion des territoires"),
    (
        "ANSSI",
        "Agence nationale de la sécurité des systèmes d’information",
    ),
];

/// Which service a `--territoire` argument designates, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTarget {
    Departement(DepartementCode),
    Region(RegionCode),
    Direction(&'static str),
}

impl ServiceTarget {
    /// Accepts `95`, `departement:95`, `region:11`, `DINUM` or `national:DINUM`.
    pub fn parse(input: &str) -> Result<Self, AccessError> {
        let s = input.trim();
        let unknown = || AccessError::UnknownTerritory(s.to_string());
        let (prefix, code) = match s.split_once(':') {
            Some((p, c)) => (Some(p.to_ascii_lowercase()), c),
            None => (None, s),
        };
        let direction = DIRECTIONS_NATIONALES
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(code))
            .map(|(c, _)| *c);
        match prefix.as_deref() {
            None => direction
                .map(ServiceTarget::Direction)
                .or_else(|| {
                    DepartementCode::parse(code)
                        .ok()
                        .map(ServiceTarget::Departement)
                })
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
    pub fn is_admin(&self) -> bool {
        self.role == Role::Administrateur
    }

    /// May this user see the page of a service (its members, later its queue)?
    pub fn can_view_service(&self, target: &ServiceScope) -> bool {
        match self.role {
            Role::Administrateur => true,
            Role::Demandeur => false,
            Role::Instructeur | Role::Expert | Role::MembreComite => {
                self.service.as_ref().is_some_and(|own| own.id == target.id)
            }
            Role::Coordinateur => self.service.as_ref().is_some_and(|own| {
                own.id == target.id
                    || (target.kind == ServiceKind::PrefectureDepartementale
                        && target.region_code.as_deref() == Some(own.territory_code.as_str()))
            }),
        }
    }

    /// May this user see the private space of a collectivité (its agents, later its dossiers)?
    pub fn can_view_collectivite(
        &self,
        target: &CollectiviteRef,
        footprint: &TerritoryFootprint,
    ) -> bool {
        match self.role {
            Role::Administrateur => true,
            Role::Demandeur => self.collectivites.contains(target),
            Role::Instructeur => match &self.service {
                Some(s) => match s.kind {
                    ServiceKind::PrefectureDepartementale => {
                        footprint.touches_departement(&s.territory_code)
                    }
                    ServiceKind::PrefectureRegionale => footprint.touches_region(&s.territory_code),
                    ServiceKind::DirectionNationale => true,
                },
                None => false,
            },
            Role::Coordinateur => self
                .service
                .as_ref()
                .is_some_and(|s| footprint.touches_region(&s.territory_code)),
            // Experts and committee members will see the dossiers put before them, not whole territories.
            Role::Expert | Role::MembreComite => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::territory::CollectiviteKind;

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
        assert!(p.can_view_collectivite(&cergy, &footprint("95", "11")));
        assert!(!p.can_view_collectivite(&versailles, &footprint("78", "11")));
        assert!(p.can_view_service(&dept_service(95, "95", "11")));
        assert!(!p.can_view_service(&dept_service(78, "78", "11")));
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
        assert!(p.can_view_service(&dept_service(78, "78", "11")));
        assert!(!p.can_view_service(&dept_service(13, "13", "93")));
        let marseille = CollectiviteRef::new(CollectiviteKind::Commune, "13055").unwrap();
        assert!(!p.can_view_collectivite(&marseille, &footprint("13", "93")));
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
        assert!(ServiceTarget::parse("mars").is_err());
        assert!(ServiceTarget::parse("region:1").is_err());
    }
}
