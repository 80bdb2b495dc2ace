//! Accounts, services and scopes.

use crate::audit::{self, Actor};
use crate::auth::TokenPurpose;
use crate::error::{AppError, AppResult};
use crate::referentiel;
use crate::App;
use guichet_domain::access::{ServiceTarget, DIRECTIONS_NATIONALES};
use guichet_domain::territory::de_name;
use guichet_domain::{CollectiviteRef, Principal, Role, ServiceScope};
use guichet_storage::accounts::{self as store, NewService, ServiceRow, UserRow};
use guichet_storage::referentiel as refstore;
use serde_json::json;

/// A request to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub service: Option<ServiceTarget>,
    pub collectivites: Vec<CollectiviteRef>,
}

/// An account and what it may see, loaded for every request of a logged-in user: it holds
/// only what the access rules need (the collectivités' names are looked up where they are shown,
/// with `named_collectivites`).
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: UserRow,
    pub role: Role,
    pub service: Option<ServiceRow>,
    pub principal: Principal,
}

/// Normalises and checks an email address.
pub fn parse_email(input: &str) -> AppResult<String> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::Invalid("adresse électronique manquante".into()));
    }
    email.parse::<lettre::Address>().map_err(|_| {
        AppError::Invalid(format!(
            "adresse électronique invalide : « {} »",
            input.trim()
        ))
    })?;
    Ok(email)
}

pub fn service_scope(s: &ServiceRow) -> AppResult<ServiceScope> {
    Ok(ServiceScope {
        id: s.id,
        kind: s.kind,
        territory_code: s.territory_code.clone(),
        region_code: s.region_code.clone(),
    })
}

impl App {
    /// Finds or creates the service a target designates, named from the referential.
    pub async fn ensure_service(
        &self,
        target: &ServiceTarget,
        actor: Actor,
    ) -> AppResult<ServiceRow> {
        let v = i64::from(self.vintage_in_force().await?.year());
        let (code, name, region) = match target {
            ServiceTarget::Departement(d) => {
                let dep = refstore::find_departement(&self.db, v, d.as_str()).await?.ok_or_else(|| {
                    AppError::NotFound(format!(
                        "département {d} inconnu du référentiel {v} (importez-le : guichet referentiel import)"
                    ))
                })?;
                (
                    format!("pref-{}", dep.code),
                    format!("Préfecture {}", de_name(dep.liaison, &dep.name)),
                    Some(dep.region_code),
                )
            }
            ServiceTarget::Region(r) => {
                let reg = refstore::find_region(&self.db, v, r.as_str()).await?.ok_or_else(|| {
                    AppError::NotFound(format!("région {r} inconnue du référentiel {v} (importez-le : guichet referentiel import)"))
                })?;
                (
                    format!("pref-reg-{}", reg.code),
                    format!("Préfecture de la région {}", reg.name),
                    None,
                )
            }
            ServiceTarget::Direction(code) => {
                let label = DIRECTIONS_NATIONALES
                    .iter()
                    .find(|(c, _)| c == code)
                    .map(|(_, l)| *l)
                    .unwrap_or(code);
                (code.to_string(), format!("{label} ({code})"), None)
            }
        };
        let now = self.now_ts();
        let mut tx = self.db.begin_write().await?;
        let (row, created) = store::ensure_service(
            &mut tx,
            &NewService {
                code: &code,
                kind: target.kind(),
                name: &name,
                territory_code: target.territory_code(),
                region_code: region.as_deref(),
            },
            &now,
        )
        .await?;
        if created {
            audit::record(
                &mut tx,
                &self.clock,
                actor,
                "service.creation",
                "service",
                &row.id.to_string(),
                None,
                Some(&json!({"code": row.code, "nom": row.name, "type": row.kind.slug(), "territoire": row.territory_code})),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Creates an account and returns its id and a one-time link to set the first password; the
    /// welcome message, with a link of its own, is queued in the same transaction.
    pub async fn create_user(&self, new: NewUser, actor: Actor) -> AppResult<(i64, String)> {
        let email = parse_email(&new.email)?;
        let display_name = new.display_name.trim().to_string();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(AppError::Invalid(
                "nom affiché manquant ou trop long (200 caractères au plus)".into(),
            ));
        }
        new.role
            .check_scope(
                new.service.as_ref().map(ServiceTarget::kind),
                new.collectivites.len(),
            )
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let vintage = self.vintage_in_force().await?;
        for c in &new.collectivites {
            if referentiel::footprint(&self.db, vintage, c)
                .await?
                .is_none()
            {
                return Err(AppError::NotFound(format!(
                    "collectivité {c} inconnue du référentiel {vintage}"
                )));
            }
        }
        let service = match &new.service {
            Some(t) => Some(self.ensure_service(t, actor).await?),
            None => None,
        };
        let now = self.now_ts();
        let mut tx = self.db.begin_write().await?;
        let id = store::insert_user(
            &mut *tx,
            &email,
            &display_name,
            new.role,
            service.as_ref().map(|s| s.id),
            &now,
        )
        .await
        .map_err(|e| {
            if e.is_conflict() {
                AppError::Conflict(format!("un compte existe déjà pour {email}"))
            } else {
                e.into()
            }
        })?;
        for c in &new.collectivites {
            store::add_user_collectivite(&mut *tx, id, c.kind.slug(), &c.code).await?;
        }
        audit::record(
            &mut tx,
            &self.clock,
            actor,
            "utilisateur.creation",
            "utilisateur",
            &id.to_string(),
            None,
            Some(&json!({
                "courriel": email,
                "role": new.role.slug(),
                "service": service.as_ref().map(|s| &s.code),
                "collectivites": new.collectivites.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
        )
        .await?;
        // The printed link is issued in the account's transaction, before the worker can make
        // the mailed one (issuing revokes earlier links of the same purpose).
        let link = self
            .issue_token_link_in(&mut tx, id, TokenPurpose::FirstPassword)
            .await?;
        self.enqueue(&mut tx, &crate::mail::FirstPasswordMail { user_id: id })
            .await?;
        tx.commit().await?;
        self.wake_workers();
        Ok((id, link))
    }

    /// The access-rule view of a user.
    pub async fn user_view(&self, user_id: i64) -> AppResult<UserView> {
        let user = store::find_user(&self.db, user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("compte introuvable".into()))?;
        let service = match user.service_id {
            Some(id) => store::find_service(&self.db, id).await?,
            None => None,
        };
        self.view_of(user, service).await
    }

    /// The access-rule view of a user already read with their service: reads their
    /// collectivités.
    pub(crate) async fn view_of(
        &self,
        user: UserRow,
        service: Option<ServiceRow>,
    ) -> AppResult<UserView> {
        let collectivites = store::user_collectivites(&self.db, user.id)
            .await?
            .iter()
            .map(|(kind, code)| CollectiviteRef::from_parts(kind, code))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let principal = Principal {
            user_id: user.id,
            role: user.role,
            service: service.as_ref().map(service_scope).transpose()?,
            collectivites,
        };
        Ok(UserView {
            role: user.role,
            user,
            service,
            principal,
        })
    }

    /// The collectivités with their names in the vintage in force (the code when unknown), in
    /// one statement.
    pub async fn named_collectivites(
        &self,
        refs: &[CollectiviteRef],
    ) -> AppResult<Vec<(CollectiviteRef, String)>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let vintage = self.vintage_in_force().await?;
        let pairs: Vec<(&str, &str)> = refs
            .iter()
            .map(|r| (r.kind.slug(), r.code.as_str()))
            .collect();
        let names = refstore::names_of(&self.db, i64::from(vintage.year()), &pairs).await?;
        Ok(refs
            .iter()
            .map(|r| {
                let name = names
                    .iter()
                    .find(|(k, c, _)| k == r.kind.slug() && *c == r.code)
                    .map(|(_, _, n)| n.clone())
                    .unwrap_or_else(|| r.to_string());
                (r.clone(), name)
            })
            .collect())
    }

    pub async fn collectivite_name(
        &self,
        vintage: guichet_domain::Vintage,
        r: &CollectiviteRef,
    ) -> AppResult<Option<String>> {
        let v = i64::from(vintage.year());
        use guichet_domain::CollectiviteKind as K;
        Ok(match r.kind {
            K::Commune => refstore::find_commune(&self.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Epci => refstore::find_epci(&self.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Departement => refstore::find_departement(&self.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Region => refstore::find_region(&self.db, v, &r.code)
                .await?
                .map(|c| c.name),
        })
    }

    pub async fn service(&self, id: i64) -> AppResult<Option<ServiceRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::find_service(&mut *conn, id).await?)
    }

    pub async fn services(&self) -> AppResult<Vec<ServiceRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::list_services(&mut *conn).await?)
    }

    pub async fn service_members(&self, id: i64) -> AppResult<Vec<UserRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::users_of_service(&mut *conn, id).await?)
    }

    pub async fn collectivite_members(&self, r: &CollectiviteRef) -> AppResult<Vec<UserRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::users_of_collectivite(&mut *conn, r.kind.slug(), &r.code).await?)
    }

    pub async fn users(&self) -> AppResult<Vec<UserRow>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::list_users(&mut *conn).await?)
    }

    /// Services a principal may see.
    pub async fn visible_services(&self, p: &Principal) -> AppResult<Vec<ServiceRow>> {
        let mut out = Vec::new();
        for s in self.services().await? {
            if p.can_view_service(&service_scope(&s)?) {
                out.push(s);
            }
        }
        Ok(out)
    }
}
