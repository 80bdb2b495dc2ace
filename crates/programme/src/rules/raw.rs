//! The rules files as written: what serde reads, before any name is resolved.

use super::*;

// ---------------------------------------------------------------------------------------------
// Raw files
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRulesFile {
    pub arrondi: String,
    pub variantes_selon: String,
    /// The fact the engine sets to the filing date (ITN7: `date_depot`).
    pub fait_date_de_depot: String,
    pub categories_depenses: Vec<RawCategory>,
    pub faits: BTreeMap<String, RawFact>,
    #[serde(default)]
    pub regles: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub conditions: BTreeMap<String, RawCondition>,
    #[serde(default)]
    pub depenses: BTreeMap<String, BTreeMap<String, Yaml>>,
    pub mesures: BTreeMap<String, RawMeasureRules>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCategory {
    pub id: String,
    pub libelle: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFact {
    pub titre: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub defaut: Option<Yaml>,
    pub origine: String,
    #[serde(default)]
    pub valeurs: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParamsFile {
    pub parametres: BTreeMap<String, RawParam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParam {
    pub titre: String,
    pub unite: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub valeurs: Vec<RawParamValue>,
    #[serde(default)]
    pub variantes: BTreeMap<String, Vec<RawParamValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParamValue {
    pub depuis: NaiveDate,
    pub valeur: Yaml,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    pub motif: String,
    pub message: String,
    pub si: Yaml,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConditionOverride {
    #[serde(default)]
    pub motif: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub si: Option<Yaml>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExclusion {
    pub motif: String,
    pub message: String,
}

/// A measure's rules, and also what a variant overrides of them: every slot is optional, but
/// the national file must give `conditions` (the loader says so).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeasureRules {
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
    #[serde(default)]
    pub depenses: Option<String>,
    #[serde(default)]
    pub taux: Option<Yaml>,
    #[serde(default, rename = "taux max")]
    pub taux_max: Option<Yaml>,
    #[serde(default)]
    pub montant: Option<Yaml>,
    #[serde(default, rename = "montant max")]
    pub montant_max: Option<Yaml>,
    #[serde(default)]
    pub exclue: Option<RawExclusion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariantsFile {
    pub variantes: BTreeMap<String, RawVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub nom: String,
    pub source: String,
    #[serde(default)]
    pub regles: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub conditions: BTreeMap<String, RawConditionOverride>,
    #[serde(default)]
    pub depenses: BTreeMap<String, BTreeMap<String, Yaml>>,
    #[serde(default)]
    pub mesures: BTreeMap<String, RawMeasureRules>,
}
