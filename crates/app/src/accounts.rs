//! Accounts, services and scopes.

use crate::audit::{self, Actor};
use crate::auth::TokenPurpose;
use crate::error::{AppError, AppResult};
use crate::referentiel;
use crate::App;
use guichet_domain::access::{Action, Scope, ServiceSet, ServiceTarget};
use guichet_domain::territory::de_name;
use guichet_domain::{CollectiviteRef, Principal, Role, ServiceScope};
use guichet_storage::accounts::{self as store, NewService};
pub use guichet_storage::accounts::{ServiceRow, UserRow};
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
    /// What the principal may see and do, computed once per request (menus read it).
    pub scope: Scope,
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

/// What identifies the service a target designates: its code, name and région.
#[derive(Debug, Clone)]
pub(crate) struct ServiceIdentity {
    code: String,
    name: String,
    region: Option<String>,
    target: ServiceTarget,
}

/// Accounts and services: creating them, who sees which service and collectivité, and the
/// spaces of a collectivité (`app.accounts()`).
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub(crate) app: &'a App,
}

impl Accounts<'_> {
    /// A service by its code (`pref-95`, `pref-reg-11`, `DINUM`), or a French "unknown service".
    pub async fn service_by_code(&self, code: &str) -> AppResult<ServiceRow> {
        let code = code.trim();
        store::find_service_by_code(&self.app.db, code)
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "service « {code} » inconnu (voir la liste des services : /espace/services)"
                ))
            })
    }

    /// Finds or creates the service a target designates, named from the referential.
    pub async fn ensure_service(
        &self,
        target: &ServiceTarget,
        actor: Actor,
    ) -> AppResult<ServiceRow> {
        let identity = self.service_identity(target).await?;
        let mut tx = self.app.db.begin_write().await?;
        let row = self.ensure_service_in(&mut tx, &identity, actor).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The code, name and région of the service a target designates (read from the
    /// referential and the programme, before the transaction that creates it).
    pub(crate) async fn service_identity(
        &self,
        target: &ServiceTarget,
    ) -> AppResult<ServiceIdentity> {
        let v = i64::from(self.app.referentiel().vintage_in_force().await?.year());
        let (code, name, region) = match target {
            ServiceTarget::Departement(d) => {
                let dep = refstore::find_departement(&self.app.db, v, d.as_str()).await?.ok_or_else(|| {
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
                let reg = refstore::find_region(&self.app.db, v, r.as_str()).await?.ok_or_else(|| {
                    AppError::NotFound(format!("région {r} inconnue du référentiel {v} (importez-le : guichet referentiel import)"))
                })?;
                (
                    format!("pref-reg-{}", reg.code),
                    format!("Préfecture de la région {}", reg.name),
                    None,
                )
            }
            ServiceTarget::Direction(code) => {
                // The programme says which directorates exist (`directions_nationales`).
                let d = self.app.programme.direction(code).ok_or_else(|| {
                    let known: Vec<_> = self
                        .app
                        .programme
                        .directions
                        .iter()
                        .map(|d| d.code.as_str())
                        .collect();
                    AppError::NotFound(format!(
                        "direction nationale {code} inconnue du programme (directions : {})",
                        known.join(", ")
                    ))
                })?;
                (d.code.clone(), format!("{} ({})", d.name, d.code), None)
            }
        };
        Ok(ServiceIdentity {
            code,
            name,
            region,
            target: target.clone(),
        })
    }

    /// Finds or creates a service within the caller's transaction (audited when created).
    pub(crate) async fn ensure_service_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        identity: &ServiceIdentity,
        actor: Actor,
    ) -> AppResult<ServiceRow> {
        let now = self.app.now_ts();
        let target = &identity.target;
        let (row, created) = store::ensure_service(
            &mut *tx,
            &NewService {
                code: &identity.code,
                kind: target.kind(),
                name: &identity.name,
                territory_code: target.territory_code(),
                region_code: identity.region.as_deref(),
            },
            &now,
        )
        .await?;
        if created {
            audit::record(
                &mut *tx,
                &self.app.clock,
                actor,
                "service.creation",
                "service",
                &row.id.to_string(),
                None,
                Some(&json!({"code": row.code, "nom": row.name, "type": row.kind.slug(), "territoire": row.territory_code})),
            )
            .await?;
        }
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
        let vintage = self.app.referentiel().vintage_in_force().await?;
        for c in &new.collectivites {
            if referentiel::footprint(&self.app.db, vintage, c)
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
        let now = self.app.now_ts();
        let mut tx = self.app.db.begin_write().await?;
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
            &self.app.clock,
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
            .app
            .sessions()
            .issue_token_link_in(&mut tx, id, TokenPurpose::FirstPassword)
            .await?;
        self.app
            .enqueue(&mut tx, &crate::mail::FirstPasswordMail { user_id: id })
            .await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok((id, link))
    }

    /// The access-rule view of a user.
    pub async fn user_view(&self, user_id: i64) -> AppResult<UserView> {
        let user = store::find_user(&self.app.db, user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("compte introuvable".into()))?;
        let service = match user.service_id {
            Some(id) => store::find_service(&self.app.db, id).await?,
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
        let collectivites = store::user_collectivites(&self.app.db, user.id)
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
            scope: principal.scope(),
            principal,
        })
    }

    /// A service's name, by id (`None` when there is no such service). Names are public (the
    /// service directory); no scope applies.
    pub async fn service_name(&self, id: i64) -> AppResult<Option<String>> {
        Ok(guichet_storage::accounts::find_service(&self.app.db, id)
            .await?
            .map(|s| s.name))
    }

    /// One collectivité's name in the vintage in force (its reference when unknown), through
    /// [`Accounts::collectivite_name`].
    pub async fn name_or_reference(&self, r: &CollectiviteRef) -> AppResult<String> {
        let vintage = self.app.referentiel().vintage_in_force().await?;
        Ok(self
            .collectivite_name(vintage, r)
            .await?
            .unwrap_or_else(|| r.to_string()))
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
        let vintage = self.app.referentiel().vintage_in_force().await?;
        let pairs: Vec<(&str, &str)> = refs
            .iter()
            .map(|r| (r.kind.slug(), r.code.as_str()))
            .collect();
        let names = refstore::names_of(&self.app.db, i64::from(vintage.year()), &pairs).await?;
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
            K::Commune => refstore::find_commune(&self.app.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Epci => refstore::find_epci(&self.app.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Departement => refstore::find_departement(&self.app.db, v, &r.code)
                .await?
                .map(|c| c.name),
            K::Region => refstore::find_region(&self.app.db, v, &r.code)
                .await?
                .map(|c| c.name),
        })
    }

    /// The services a principal may see, filtered in SQL by its scope.
    pub async fn visible_services(&self, p: &Principal) -> AppResult<Vec<ServiceRow>> {
        let scope = p.scope();
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::services_in(&mut conn, &scope.services).await?)
    }

    /// The directory of services (`/espace/services`): refused to those who may not list
    /// services (applicants), else the services of their scope.
    pub async fn service_directory(&self, p: &Principal) -> AppResult<Vec<ServiceRow>> {
        if !p.scope().can(Action::ListServices) {
            return Err(AppError::Forbidden);
        }
        self.visible_services(p).await
    }

    /// A service and its members, if the principal may see it: `NotFound` when there is no such
    /// service, `Forbidden` when it lies outside the principal's scope.
    pub async fn service_details(&self, p: &Principal, id: i64) -> AppResult<ServiceDetails> {
        let scope = p.scope();
        let mut conn = self.app.db.pool().acquire().await?;
        let service = match store::service_in(&mut conn, id, &scope.services).await? {
            Some(s) => s,
            None if store::find_service(&mut *conn, id).await?.is_some() => {
                return Err(AppError::Forbidden)
            }
            None => return Err(AppError::NotFound(format!("aucun service n° {id}"))),
        };
        let members = store::users_of_service_in(&mut conn, id, &scope.services).await?;
        Ok(ServiceDetails { service, members })
    }

    /// The private space of a collectivité (its agents), if the principal may see it:
    /// `NotFound` when the referential in force does not know it, `Forbidden` when it lies
    /// outside the principal's scope.
    pub async fn collectivite_space(
        &self,
        p: &Principal,
        r: &CollectiviteRef,
    ) -> AppResult<CollectiviteSpace> {
        let vintage = self.app.referentiel().vintage_in_force().await?;
        let name = self.collectivite_name(vintage, r).await?.ok_or_else(|| {
            AppError::NotFound(format!(
                "aucune collectivité {r} dans le référentiel {vintage}"
            ))
        })?;
        let scope = p.scope();
        let v = i64::from(vintage.year());
        let mut conn = self.app.db.pool().acquire().await?;
        if !store::collectivite_in(&mut conn, v, r.kind.slug(), &r.code, &scope.collectivites)
            .await?
        {
            return Err(AppError::Forbidden);
        }
        let members = store::users_of_collectivite_in(
            &mut conn,
            v,
            r.kind.slug(),
            &r.code,
            &scope.collectivites,
        )
        .await?;
        Ok(CollectiviteSpace {
            reference: r.clone(),
            name,
            members,
        })
    }

    /// Whether the principal may open the private space of a collectivité (the public page
    /// links to it only then).
    pub async fn may_view_collectivite(
        &self,
        p: &Principal,
        r: &CollectiviteRef,
    ) -> AppResult<bool> {
        let v = i64::from(self.app.referentiel().vintage_in_force().await?.year());
        let mut conn = self.app.db.pool().acquire().await?;
        Ok(store::collectivite_in(
            &mut conn,
            v,
            r.kind.slug(),
            &r.code,
            &p.scope().collectivites,
        )
        .await?)
    }

    /// The collectivités in the principal's scope that have agents on Guichet, with their names
    /// (the first `COLLECTIVITES_LISTED`), filtered in SQL.
    pub async fn collectivites_with_agents(
        &self,
        p: &Principal,
    ) -> AppResult<Vec<CollectiviteWithAgents>> {
        let vintage = self.app.referentiel().vintage_in_force().await?;
        let mut conn = self.app.db.pool().acquire().await?;
        store::collectivites_with_agents_in(
            &mut conn,
            i64::from(vintage.year()),
            &p.scope().collectivites,
            COLLECTIVITES_LISTED,
        )
        .await?
        .into_iter()
        .map(|row| {
            let reference = CollectiviteRef::from_parts(&row.kind, &row.code)
                .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
            Ok(CollectiviteWithAgents {
                name: row.name.unwrap_or_else(|| reference.to_string()),
                reference,
                agents: row.agents,
            })
        })
        .collect()
    }

    /// Every account, with its service's name (administrators only).
    pub async fn list(&self, p: &Principal) -> AppResult<Vec<(UserRow, Option<String>)>> {
        if !p.scope().can(Action::ManageAccounts) {
            return Err(AppError::Forbidden);
        }
        let mut conn = self.app.db.pool().acquire().await?;
        let services: std::collections::HashMap<i64, String> =
            store::services_in(&mut conn, &ServiceSet::All)
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect();
        Ok(store::list_users(&mut *conn)
            .await?
            .into_iter()
            .map(|u| {
                let service = u.service_id.and_then(|id| services.get(&id).cloned());
                (u, service)
            })
            .collect())
    }
}

/// A service and its members, as `service_details` returns them.
#[derive(Debug, Clone)]
pub struct ServiceDetails {
    pub service: ServiceRow,
    pub members: Vec<UserRow>,
}

/// A collectivité's private space, as `collectivite_space` returns it.
#[derive(Debug, Clone)]
pub struct CollectiviteSpace {
    pub reference: CollectiviteRef,
    pub name: String,
    pub members: Vec<UserRow>,
}

/// How many collectivités with agents "Mon espace" lists at most (dossier queues, which
/// will replace this list, page through theirs).
pub const COLLECTIVITES_LISTED: i64 = 200;

/// A collectivité in scope with its number of agents.
#[derive(Debug, Clone)]
pub struct CollectiviteWithAgents {
    pub reference: CollectiviteRef,
    pub name: String,
    pub agents: i64,
}
