//! Dossiers over the API: the list a caller sees (an API token sees its service's, as its
//! instructors do; a session sees what its account sees), by pages with a cursor, and one
//! dossier with its frozen submission, its verdict at filing and its history. The scope is the
//! use cases' (`app.dossiers()`), in their SQL.

use crate::ctx::Ctx;
use crate::error::extract::{ApiPath, ApiQuery};
use crate::error::{ApiError, Problem};
use axum::extract::State as AxumState;
use axum::Json;
use guichet_app::dossiers::{Dossier, ListFilter, MAX_PAGE};
use guichet_app::App;
use guichet_domain::dossier::State;
use guichet_domain::{CollectiviteRef, DepartementCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Dossiers per page without `limite`.
const DEFAULT_PAGE: i64 = 50;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// État : brouillon, depose, en_instruction, en_correction, instruit, accepte, refuse, sans_suite
    #[param(
        pattern = "^(|brouillon|depose|en_instruction|en_correction|instruit|accepte|refuse|sans_suite)$"
    )]
    etat: Option<String>,
    /// Identifiant de la mesure (`/api/v1/mesures`)
    #[param(max_length = 80)]
    mesure: Option<String>,
    /// Code du département touché par le dossier (95, 2A…)
    #[param(pattern = "^(|[0-9]{2,3}|2[AB])$")]
    departement: Option<String>,
    /// Curseur : la valeur `suivant` de la page précédente
    #[param(pattern = "^(|[1-9][0-9]{0,17})$")]
    apres: Option<String>,
    /// Nombre de dossiers par page (1 à 200 ; vide : 50)
    #[param(pattern = "^(|[1-9]|[1-9][0-9]|1[0-9][0-9]|200)$")]
    limite: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DossierResume {
    /// Numéro attribué au dépôt ; absent pour un brouillon
    #[schema(example = "ITN7-95-2021-00001")]
    pub numero: Option<String>,
    pub titre: String,
    #[schema(example = "axe3.v1.relation-usager")]
    pub mesure: String,
    #[schema(example = "depose")]
    pub etat: String,
    /// La collectivité qui dépose (`type:code`)
    #[schema(example = "commune:95127")]
    pub demandeur: String,
    pub demandeur_nom: String,
    /// Service instructeur (identifiant, `/api/v1/services/{id}`)
    pub service_id: Option<i64>,
    /// Date et heure du dépôt (RFC 3339)
    pub depose_le: Option<String>,
    /// Montant proposé par le programme au dépôt, en centimes
    pub montant_indicatif_centimes: Option<i64>,
    /// Montant attribué, en centimes
    pub montant_attribue_centimes: Option<i64>,
    /// Version du dossier, pour les écritures concurrentes
    pub version: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PageDossiers {
    pub dossiers: Vec<DossierResume>,
    /// Curseur de la page suivante (paramètre `apres`) ; absent sur la dernière page
    pub suivant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Depense {
    /// Catégorie de dépense du programme
    pub categorie: String,
    pub montant_centimes: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Cofinancement {
    pub source: String,
    pub montant_centimes: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Verdict {
    pub eligible: bool,
    /// Codes des motifs relevés
    pub motifs: Vec<String>,
    pub assiette_centimes: Option<i64>,
    pub montant_centimes: Option<i64>,
    pub montant_max_centimes: Option<i64>,
    #[schema(value_type = String, format = Date)]
    pub date: chrono::NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct Etape {
    /// Date et heure (RFC 3339)
    pub date: String,
    /// L’événement (depot, prise_en_instruction, demande_de_correction…)
    pub evenement: String,
    pub etat_precedent: Option<String>,
    pub etat: String,
    pub message: Option<String>,
    pub montant_centimes: Option<i64>,
    pub taux_points_de_base: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DossierDetail {
    #[serde(flatten)]
    pub resume: DossierResume,
    /// Le contenu déposé (la dernière version figée) : les champs du formulaire par identifiant
    pub champs: BTreeMap<String, String>,
    pub depenses: Vec<Depense>,
    pub cofinancements: Vec<Cofinancement>,
    /// Le calcul du programme au dépôt
    pub verdict: Option<Verdict>,
    pub historique: Vec<Etape>,
}

fn resume(d: &Dossier, name: String) -> DossierResume {
    DossierResume {
        numero: d.row.number.as_ref().map(ToString::to_string),
        titre: d.row.title.clone(),
        mesure: d.row.measure.clone(),
        etat: d.row.state.as_str().to_string(),
        demandeur: d.row.applicant.to_string(),
        demandeur_nom: name,
        service_id: d.row.service_id,
        depose_le: d.row.submitted_at.as_ref().map(|t| t.to_string()),
        montant_indicatif_centimes: d.verdict.as_ref().and_then(|v| v.montant_centimes),
        montant_attribue_centimes: d.row.granted_cents,
        version: d.row.version,
    }
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Dossiers visibles par l’appelant
#[utoipa::path(
    get,
    path = "/api/v1/dossiers",
    tag = "dossiers",
    security(("jeton" = []), ("session" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "Une page de dossiers, du plus ancien au plus récent, et le curseur de la suivante", body = PageDossiers),
        (status = 400, description = "Paramètre invalide", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Trop de requêtes pour ce jeton d’API (en-tête Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<PageDossiers>, ApiError> {
    let principal = ctx.api_principal()?;
    let given = |v: &Option<String>| -> Option<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let state = given(&p.etat)
        .map(|s| State::parse(&s).map_err(|_| bad(format!("état inconnu : « {s} »"))))
        .transpose()?;
    let measure = given(&p.mesure);
    if let Some(m) = &measure {
        if app.programme.measure(m).is_none() {
            return Err(bad(format!("mesure inconnue : « {m} »")));
        }
    }
    let departement = given(&p.departement)
        .map(|d| {
            DepartementCode::parse(&d)
                .map(|c| c.to_string())
                .map_err(|_| bad(format!("département inconnu : « {d} »")))
        })
        .transpose()?;
    let after = given(&p.apres)
        .map(|a| {
            a.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("curseur invalide : « {a} »")))
        })
        .transpose()?;
    let limit = given(&p.limite)
        .map(|l| {
            l.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "limite invalide : « {l} » (entier de 1 à {MAX_PAGE})"
                    ))
                })
        })
        .transpose()?
        .unwrap_or(DEFAULT_PAGE);
    let rows = app
        .dossiers()
        .list(
            principal,
            &ListFilter {
                state,
                states: &[],
                measure: measure.as_deref(),
                departement: departement.as_deref(),
                after_id: after,
                limit: limit + 1,
                followed_by: None,
                assigned_to: None,
                label: None,
            },
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let refs: Vec<CollectiviteRef> = rows.iter().map(|r| r.applicant.clone()).collect();
    let names = app.accounts().named_collectivites(&refs).await?;
    let suivant = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let mut dossiers = Vec::with_capacity(rows.len());
    for (row, (_, name)) in rows.into_iter().zip(names) {
        let d = app.dossiers().of_row(row)?;
        dossiers.push(resume(&d, name));
    }
    Ok(Json(PageDossiers { dossiers, suivant }))
}

/// Un dossier : son contenu déposé, le calcul au dépôt et son historique
#[utoipa::path(
    get,
    path = "/api/v1/dossiers/{numero}",
    tag = "dossiers",
    security(("jeton" = []), ("session" = [])),
    params(("numero" = String, Path, description = "Numéro du dossier", example = "ITN7-95-2021-00001")),
    responses(
        (status = 200, description = "Le dossier", body = DossierDetail),
        (status = 401, description = "Authentification requise", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Hors du périmètre de l’appelant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Introuvable, ou numéro mal formé", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Trop de requêtes pour ce jeton d’API (en-tête Retry-After)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn details(
    AxumState(app): AxumState<App>,
    ctx: Ctx,
    ApiPath(numero): ApiPath<String>,
) -> Result<Json<DossierDetail>, ApiError> {
    let principal = ctx.api_principal()?;
    // A malformed number names no dossier: 404, as an unknown one.
    if guichet_domain::DossierNumber::parse(&numero).is_err() {
        return Err(guichet_app::Error::NotFound(format!(
            "dossier {} introuvable (forme attendue ITN7-95-2021-00042)",
            numero.chars().take(40).collect::<String>()
        ))
        .into());
    }
    let d = app.dossiers().by_number(principal, &numero).await?;
    let id = d.row.id;
    let frozen = app.dossiers().frozen(principal, id).await?;
    let data = frozen.as_ref().unwrap_or(&d.data);
    let history = app.dossiers().history(principal, id).await?;
    let name = app.accounts().name_or_reference(&d.row.applicant).await?;
    Ok(Json(DossierDetail {
        champs: data.champs.clone(),
        depenses: data
            .depenses
            .iter()
            .map(|(c, a)| Depense {
                categorie: c.clone(),
                montant_centimes: a.get(),
            })
            .collect(),
        cofinancements: data
            .cofinancements
            .iter()
            .map(|c| Cofinancement {
                source: c.source.clone(),
                montant_centimes: c.montant.get(),
            })
            .collect(),
        verdict: d.verdict.as_ref().map(|v| Verdict {
            eligible: v.eligible,
            motifs: v.motifs.clone(),
            assiette_centimes: v.assiette_centimes,
            montant_centimes: v.montant_centimes,
            montant_max_centimes: v.montant_max_centimes,
            date: v.date,
        }),
        historique: history
            .into_iter()
            .map(|h| Etape {
                date: h.at.to_string(),
                evenement: h.event,
                etat_precedent: h.from.map(|s| s.as_str().to_string()),
                etat: h.to.as_str().to_string(),
                message: h.message,
                montant_centimes: h.amount_cents,
                taux_points_de_base: h.rate_bp,
            })
            .collect(),
        resume: resume(&d, name),
    }))
}

/// Writes the programme's measures into the list's `mesure` parameter (an enum: the empty
/// value for « any », then each measure id), so that the document says which values exist.
pub fn document_programme(doc: &mut serde_json::Value, programme: &guichet_programme::Programme) {
    let Some(params) = doc
        .pointer_mut("/paths/~1api~1v1~1dossiers/get/parameters")
        .and_then(|p| p.as_array_mut())
    else {
        return;
    };
    let mut values = vec![serde_json::Value::from("")];
    values.extend(
        programme
            .measures()
            .map(|m| serde_json::Value::from(m.id.as_str())),
    );
    for p in params.iter_mut() {
        if p["name"] == "mesure" {
            p["schema"] = serde_json::json!({ "type": "string", "enum": values });
        }
    }
}
