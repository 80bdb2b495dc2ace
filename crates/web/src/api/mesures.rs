//! The programme's measures, public: the list by axis and each measure's terms in every
//! territory (the same sheet as the pages, `guichet_app::mesures`), dates in ISO form.

use crate::error::extract::ApiPath;
use crate::error::{ApiError, Problem};
use axum::extract::State;
use axum::Json;
use guichet_app::mesures::{self, MeasureBrief};
use guichet_app::App;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MesureResume {
    /// Identifiant de la mesure, pour l’API et le simulateur
    #[schema(example = "axe3.v1.relation-usager")]
    pub id: String,
    pub nom: String,
    pub resume: String,
    /// Qui peut la demander
    pub beneficiaires: String,
    /// Qui instruit les demandes
    pub instruction: String,
    /// Période de dépôt à la date du jour, en mots (règles nationales)
    pub periode: String,
}

#[derive(Serialize, ToSchema)]
pub struct Axe {
    pub id: String,
    pub nom: String,
    pub pilote: String,
    /// Enveloppe de l’axe, en mots (« 30 M€ »), quand il en a une
    pub enveloppe: Option<String>,
    pub mesures: Vec<MesureResume>,
}

#[derive(Serialize, ToSchema)]
pub struct Valeur {
    /// Nom du paramètre dans les fichiers du programme
    pub nom: String,
    pub titre: String,
    /// Valeur en vigueur à la date du jour, en français (« 80 % », « 5 000 € »)
    pub valeur: String,
}

#[derive(Serialize, ToSchema)]
pub struct DateMesure {
    pub titre: String,
    #[schema(value_type = String, format = Date)]
    pub date: chrono::NaiveDate,
    /// La date dite depuis aujourd’hui (« dans 12 jours »)
    pub relatif: String,
}

#[derive(Serialize, ToSchema)]
pub struct Territoire {
    /// Code de la région dont les règles s’appliquent ; absent pour les règles nationales
    pub code: Option<String>,
    pub nom: String,
    /// Pourquoi la mesure n’est pas proposée dans ce territoire, le cas échéant
    pub non_proposee: Option<String>,
    pub taux_et_plafonds: Vec<Valeur>,
    pub dates: Vec<DateMesure>,
}

#[derive(Serialize, ToSchema)]
pub struct Source {
    /// Référence dans les fichiers du programme (« [000] »)
    pub id: String,
    pub titre: String,
}

#[derive(Serialize, ToSchema)]
pub struct Mesure {
    #[serde(flatten)]
    pub resume: MesureResume,
    pub axe: String,
    /// Règles nationales d’abord, puis chaque variante territoriale
    pub territoires: Vec<Territoire>,
    pub sources: Vec<Source>,
}

fn resume(m: MeasureBrief) -> MesureResume {
    MesureResume {
        id: m.id,
        nom: m.name,
        resume: m.summary,
        beneficiaires: m.beneficiaries,
        instruction: m.instruction,
        periode: m.window,
    }
}

fn today(app: &App) -> chrono::NaiveDate {
    app.clock
        .now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

/// Les mesures du programme, par axe
#[utoipa::path(
    get,
    path = "/api/v1/mesures",
    tag = "programme",
    responses((status = 200, description = "Les axes du programme et leurs mesures", body = [Axe]))
)]
pub async fn list(State(app): State<App>) -> Json<Vec<Axe>> {
    Json(
        mesures::catalogue(&app.programme, today(&app), None)
            .into_iter()
            .map(|a| Axe {
                id: a.id,
                nom: a.name,
                pilote: a.pilot,
                enveloppe: a.envelope,
                mesures: a.measures.into_iter().map(resume).collect(),
            })
            .collect(),
    )
}

/// Une mesure : conditions, taux, plafonds et dates dans chaque territoire, sources
#[utoipa::path(
    get,
    path = "/api/v1/mesures/{mesure}",
    tag = "programme",
    params(("mesure" = String, Path, description = "Identifiant de la mesure", example = "axe3.v1.relation-usager")),
    responses(
        (status = 200, description = "La mesure", body = Mesure),
        (status = 400, description = "Identifiant illisible", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Aucune mesure de ce nom dans le programme", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn details(
    State(app): State<App>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Mesure>, ApiError> {
    let s = mesures::sheet(&app.programme, &id, today(&app), None)
        .ok_or_else(|| ApiError::not_found("aucune mesure de ce nom dans le programme"))?;
    Ok(Json(Mesure {
        resume: resume(s.brief),
        axe: s.axis,
        territoires: s
            .territories
            .into_iter()
            .map(|t| Territoire {
                code: t.territory.code,
                nom: t.territory.name,
                non_proposee: t.excluded,
                taux_et_plafonds: t
                    .amounts
                    .into_iter()
                    .map(|a| Valeur {
                        nom: a.name,
                        titre: a.title,
                        valeur: a.value,
                    })
                    .collect(),
                dates: t
                    .dates
                    .into_iter()
                    .map(|d| DateMesure {
                        titre: d.title,
                        date: d.date,
                        relatif: d.relative,
                    })
                    .collect(),
            })
            .collect(),
        sources: s
            .sources
            .into_iter()
            .map(|s| Source {
                id: s.id,
                titre: s.title,
            })
            .collect(),
    }))
}
