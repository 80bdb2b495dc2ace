//! The dossier form, as data (`formulaire` in `programme.yaml`): the blocks every dossier has,
//! each measure's own, the kinds of attached document and which measure requires which.
//!
//! A field may feed one of the engine's facts (`fait`): then the verdict and the indicative
//! amount follow what the applicant types. Such a field must name a fact the applicant
//! supplies (origin `demande` or `demandeur`, not the referential, Guichet's own records or
//! the filing date the engine sets), with a compatible type and, for a choice, only values the
//! fact allows. Checked at load, each problem at its line.

use crate::diag::{Diagnostic, SourceFile};
use crate::rules::Rules;
use crate::value::Type;
use guichet_domain::RegionCode;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// What a field holds, and how a page asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Paragraphs.
    LongText,
    Number,
    /// In euros, stored as cents.
    Amount,
    Date,
    Boolean,
    /// One of the listed values.
    Choice(Vec<String>),
    /// Communes picked from the referential (Démat.ADS' attached communes); a fact reads how
    /// many.
    Communes,
    Email,
    Phone,
    /// Items the applicant ticks one by one (a specification's requirements).
    Checklist(Vec<String>),
}

impl FieldKind {
    /// The fact types this kind of field can feed (none: it feeds no fact).
    fn feeds(&self) -> Option<Type> {
        match self {
            FieldKind::Text | FieldKind::Choice(_) => Some(Type::Texte),
            FieldKind::Number | FieldKind::Communes => Some(Type::Nombre),
            FieldKind::Amount => Some(Type::Montant),
            FieldKind::Date => Some(Type::Date),
            FieldKind::Boolean => Some(Type::Booleen),
            FieldKind::LongText | FieldKind::Email | FieldKind::Phone | FieldKind::Checklist(_) => {
                None
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub id: String,
    pub label: String,
    pub help: Option<String>,
    pub kind: FieldKind,
    pub required: bool,
    /// For texts: the most characters accepted.
    pub max_chars: Option<usize>,
    /// The engine's fact this field feeds.
    pub fact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: String,
    pub title: String,
    pub fields: Vec<Field>,
}

/// A kind of attached document (quote, council deliberation…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentKind {
    pub id: String,
    pub label: String,
    pub description: Option<String>,
}

/// A document a measure asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRequirement {
    pub document: String,
    pub required: bool,
    /// The régions where it is asked (empty: everywhere).
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeasureForm {
    pub blocks: Vec<Block>,
    pub documents: Vec<DocumentRequirement>,
}

/// The compiled `formulaire` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    /// The blocks every dossier has, in order.
    pub common: Vec<Block>,
    pub documents: Vec<DocumentKind>,
    measures: BTreeMap<String, MeasureForm>,
}

impl Form {
    /// A measure's own part of the form (empty when it has none).
    pub fn measure(&self, measure: &str) -> Option<&MeasureForm> {
        self.measures.get(measure)
    }

    /// The blocks of a measure's dossier: the common ones, then its own.
    pub fn blocks_for<'a>(&'a self, measure: &str) -> impl Iterator<Item = &'a Block> + 'a {
        let own = self.measures.get(measure).map(|m| m.blocks.as_slice());
        self.common.iter().chain(own.unwrap_or_default())
    }

    /// The documents a measure asks for in a région (`None`: regardless of territory, only
    /// those asked everywhere).
    pub fn documents_for<'a>(
        &'a self,
        measure: &str,
        region: Option<&'a str>,
    ) -> impl Iterator<Item = &'a DocumentRequirement> + 'a {
        let own = self.measures.get(measure).map(|m| m.documents.as_slice());
        own.unwrap_or_default().iter().filter(move |d| {
            d.regions.is_empty() || region.is_some_and(|r| d.regions.iter().any(|x| x == r))
        })
    }

    pub fn document(&self, id: &str) -> Option<&DocumentKind> {
        self.documents.iter().find(|d| d.id == id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForm {
    blocs: Vec<RawBlock>,
    #[serde(default)]
    pieces: Vec<RawDocumentKind>,
    #[serde(default)]
    mesures: BTreeMap<String, RawMeasureForm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    id: Spanned<String>,
    titre: String,
    champs: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    id: Spanned<String>,
    libelle: String,
    #[serde(default)]
    aide: Option<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    obligatoire: bool,
    #[serde(default)]
    longueur_max: Option<usize>,
    /// For `choix`: the values; default, the fact's allowed values. For `liste`: the items.
    #[serde(default)]
    valeurs: Option<Vec<String>>,
    #[serde(default)]
    fait: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocumentKind {
    id: Spanned<String>,
    libelle: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasureForm {
    #[serde(default)]
    blocs: Vec<RawBlock>,
    #[serde(default)]
    pieces: Vec<RawRequirement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    piece: Spanned<String>,
    #[serde(default = "yes")]
    obligatoire: bool,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
}

fn yes() -> bool {
    true
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Ctx<'a> {
    file: &'a SourceFile,
    rules: &'a Rules,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn block(
        &mut self,
        raw: RawBlock,
        ids: &mut BTreeSet<String>,
        blocks: &mut BTreeSet<String>,
    ) -> Block {
        let block_id = raw.id.value.trim().to_string();
        if !valid_id(&block_id) {
            self.diags.push(self.file.at_span(
                &raw.id,
                format!("formulaire : identifiant de bloc « {block_id} » invalide (minuscules, chiffres et _)"),
            ));
        } else if !blocks.insert(block_id.clone()) {
            self.diags.push(
                self.file
                    .at_span(&raw.id, format!("formulaire : bloc en double : {block_id}")),
            );
        }
        let fields = raw
            .champs
            .into_iter()
            .filter_map(|f| self.field(f, ids))
            .collect();
        Block {
            id: block_id,
            title: raw.titre,
            fields,
        }
    }

    fn field(&mut self, raw: RawField, ids: &mut BTreeSet<String>) -> Option<Field> {
        let id = raw.id.value.trim().to_string();
        if !valid_id(&id) {
            self.diags.push(self.file.at_span(
                &raw.id,
                format!("formulaire : identifiant de champ « {id} » invalide (minuscules, chiffres et _)"),
            ));
            return None;
        }
        if !ids.insert(id.clone()) {
            self.diags.push(self.file.at_span(
                &raw.id,
                format!("formulaire : le champ {id} figure deux fois dans le formulaire d’une même mesure"),
            ));
            return None;
        }
        let fact = match &raw.fait {
            None => None,
            Some(name) => {
                let n = name.value.trim();
                match self.rules.fact(n) {
                    None => {
                        self.diags.push(self.file.at_span(
                            name,
                            format!("formulaire : champ {id} : fait inconnu « {n} » (les faits sont déclarés dans regles.yaml)"),
                        ));
                        return None;
                    }
                    Some(i) if Some(i) == self.rules.date_fact() => {
                        self.diags.push(self.file.at_span(
                            name,
                            format!("formulaire : champ {id} : le fait {n} est la date de dépôt, que Guichet fixe lui-même"),
                        ));
                        return None;
                    }
                    Some(i) => {
                        let def = &self.rules.facts[i];
                        if !matches!(def.origin.as_str(), "demande" | "demandeur") {
                            self.diags.push(self.file.at_span(
                                name,
                                format!("formulaire : champ {id} : le fait {n} vient de « {} », pas du demandeur (origine demande ou demandeur attendue)", def.origin),
                            ));
                            return None;
                        }
                        Some(i)
                    }
                }
            }
        };
        let fact_def = fact.map(|i| &self.rules.facts[i]);
        let kind_name = raw.kind.value.trim();
        let kind = match kind_name {
            "texte" => FieldKind::Text,
            "texte_long" => FieldKind::LongText,
            "nombre" => FieldKind::Number,
            "montant" => FieldKind::Amount,
            "date" => FieldKind::Date,
            "booleen" => FieldKind::Boolean,
            "communes" => FieldKind::Communes,
            "courriel" => FieldKind::Email,
            "telephone" => FieldKind::Phone,
            "choix" => {
                let values = raw
                    .valeurs
                    .clone()
                    .or_else(|| fact_def.and_then(|d| d.allowed.clone()))
                    .unwrap_or_default();
                if values.is_empty() {
                    self.diags.push(self.file.at_span(
                        &raw.kind,
                        format!("formulaire : champ {id} : un choix donne ses valeurs (valeurs: [...]) ou lit un fait qui en a"),
                    ));
                    return None;
                }
                if let Some(allowed) = fact_def.and_then(|d| d.allowed.as_ref()) {
                    for v in values.iter().filter(|v| !allowed.contains(v)) {
                        self.diags.push(self.file.at_span(
                            &raw.kind,
                            format!("formulaire : champ {id} : la valeur « {v} » n’est pas permise par le fait {} ({})", fact_def.map_or("", |d| d.name.as_str()), allowed.join(", ")),
                        ));
                    }
                }
                FieldKind::Choice(values)
            }
            "liste" => {
                let items = raw.valeurs.clone().unwrap_or_default();
                if items.is_empty() {
                    self.diags.push(self.file.at_span(
                        &raw.kind,
                        format!("formulaire : champ {id} : une liste à cocher donne ses éléments (valeurs: [...])"),
                    ));
                    return None;
                }
                FieldKind::Checklist(items)
            }
            other => {
                self.diags.push(self.file.at_span(
                    &raw.kind,
                    format!("formulaire : champ {id} : type « {other} » inconnu (texte, texte_long, nombre, montant, date, booleen, choix, communes, courriel, telephone, liste)"),
                ));
                return None;
            }
        };
        if let Some(def) = fact_def {
            let compatible = kind.feeds().is_some_and(|t| t == def.ty);
            if !compatible {
                self.diags.push(self.file.at_span(
                    &raw.kind,
                    format!(
                        "formulaire : champ {id} : un champ « {kind_name} » ne peut pas renseigner le fait {} (de type {})",
                        def.name,
                        def.ty.label()
                    ),
                ));
                return None;
            }
        }
        Some(Field {
            id,
            label: raw.libelle,
            help: raw.aide,
            kind,
            required: raw.obligatoire,
            max_chars: raw.longueur_max,
            fact: fact_def.map(|d| d.name.clone()),
        })
    }
}

/// Compiles `formulaire` against the measures (`mesures` keys must be measures of the
/// catalogue) and the compiled rules' facts.
pub(crate) fn compile(
    raw: RawForm,
    measures: &[String],
    rules: &Rules,
    file: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Form {
    let mut ctx = Ctx { file, rules, diags };
    let mut common_ids = BTreeSet::new();
    let mut common_blocks = BTreeSet::new();
    let common: Vec<Block> = raw
        .blocs
        .into_iter()
        .map(|b| ctx.block(b, &mut common_ids, &mut common_blocks))
        .collect();
    let mut documents: Vec<DocumentKind> = Vec::new();
    for d in raw.pieces {
        let id = d.id.value.trim().to_string();
        if !valid_id(&id) {
            ctx.diags.push(file.at_span(
                &d.id,
                format!("formulaire : identifiant de pièce « {id} » invalide (minuscules, chiffres et _)"),
            ));
            continue;
        }
        if documents.iter().any(|k| k.id == id) {
            ctx.diags
                .push(file.at_span(&d.id, format!("formulaire : pièce en double : {id}")));
            continue;
        }
        documents.push(DocumentKind {
            id,
            label: d.libelle,
            description: d.description,
        });
    }
    let mut compiled = BTreeMap::new();
    for (measure, m) in raw.mesures {
        if !measures.contains(&measure) {
            ctx.diags.push(file.at(
                &["formulaire", "mesures", &measure],
                None,
                format!("formulaire : mesure inconnue « {measure} »"),
            ));
            continue;
        }
        let mut ids = common_ids.clone();
        let mut block_ids = common_blocks.clone();
        let blocks = m
            .blocs
            .into_iter()
            .map(|b| ctx.block(b, &mut ids, &mut block_ids))
            .collect();
        let mut requirements: Vec<DocumentRequirement> = Vec::new();
        for r in m.pieces {
            let id = r.piece.value.trim().to_string();
            if !documents.iter().any(|d| d.id == id) {
                ctx.diags.push(file.at_span(
                    &r.piece,
                    format!("formulaire : mesure {measure} : pièce inconnue « {id} » (déclarez-la sous formulaire.pieces)"),
                ));
                continue;
            }
            let mut regions = Vec::new();
            for reg in &r.regions {
                match RegionCode::parse(&reg.value) {
                    Ok(code) => regions.push(code.as_str().to_string()),
                    Err(e) => ctx
                        .diags
                        .push(file.at_span(reg, format!("formulaire : {e}"))),
                }
            }
            if requirements.iter().any(|q| q.document == id) {
                ctx.diags.push(file.at_span(
                    &r.piece,
                    format!("formulaire : mesure {measure} : la pièce {id} est demandée deux fois"),
                ));
                continue;
            }
            requirements.push(DocumentRequirement {
                document: id,
                required: r.obligatoire,
                regions,
            });
        }
        compiled.insert(
            measure,
            MeasureForm {
                blocks,
                documents: requirements,
            },
        );
    }
    Form {
        common,
        documents,
        measures: compiled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{itn7, itn7_files, Diagnostics, Programme};

    #[test]
    fn the_itn7_form_has_its_common_blocks_and_each_measure_its_own() {
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        let common: Vec<_> = p.form.common.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            common,
            [
                "projet",
                "situation",
                "objectifs",
                "impact",
                "calendrier",
                "contact"
            ]
        );
        let date_fin = p
            .form
            .common
            .iter()
            .flat_map(|b| &b.fields)
            .find(|f| f.fact.as_deref() == Some("date_fin"))
            .unwrap();
        assert_eq!(date_fin.kind, FieldKind::Date);
        // Démat.ADS: the attached communes, and the invoices.
        let blocks: Vec<_> = p.form.blocks_for("axe3.v1.dematads").collect();
        assert!(blocks.len() > common.len());
        assert!(blocks
            .iter()
            .flat_map(|b| &b.fields)
            .any(|f| f.kind == FieldKind::Communes
                && f.fact.as_deref() == Some("communes_rattachees")));
        let docs = |m: &str, r: Option<&str>| {
            p.form
                .documents_for(m, r)
                .map(|d| d.document.clone())
                .collect::<Vec<_>>()
        };
        assert!(docs("axe3.v1.dematads", Some("11")).contains(&"factures".to_string()));
        // PACA's annex 1 is asked in PACA only.
        assert!(docs("axe3.v1.expert", Some("93")).contains(&"annexe1_paca".to_string()));
        assert!(!docs("axe3.v1.expert", Some("11")).contains(&"annexe1_paca".to_string()));
        // Every measure of the catalogue is known to the form, and every document it asks
        // for is declared.
        for m in p.measures() {
            for d in p.form.documents_for(m.id.as_str(), Some("93")) {
                assert!(p.form.document(&d.document).is_some());
            }
        }
    }

    /// What the engine would report missing for a measure, the measure's form asks: an
    /// applicant who fills the form gets a verdict.
    #[test]
    fn the_itn7_form_asks_every_fact_the_engine_misses() {
        use crate::eval::Situation;
        use crate::Value;
        let p = itn7().unwrap_or_else(|d| panic!("{d}"));
        let mut checked = std::collections::BTreeSet::new();
        for kind in ["commune", "epci"] {
            let mut s = Situation {
                date: chrono::NaiveDate::from_ymd_opt(2021, 6, 1),
                ..Default::default()
            };
            for (name, v) in [
                ("type_demandeur", kind),
                ("nature_epci", "CA"),
                ("population", "600000"),
                ("region", "11"),
                ("couvre_departement", "oui"),
            ] {
                let i = p.rules.fact(name).unwrap();
                s.facts.insert(
                    name.to_string(),
                    Value::parse_literal(v, p.rules.facts[i].ty).unwrap(),
                );
            }
            s.expenses.push((
                "prestation".into(),
                guichet_domain::Cents::from_euros(10_000),
            ));
            for m in p.measures() {
                let id = m.id.as_str();
                let ev = p.evaluate(id, &s).unwrap();
                let asked: Vec<_> = p
                    .form
                    .blocks_for(id)
                    .flat_map(|b| &b.fields)
                    .filter_map(|f| f.fact.as_deref())
                    .collect();
                for missing in &ev.missing {
                    checked.insert(missing.nom.clone());
                    assert!(
                        asked.contains(&missing.nom.as_str()),
                        "{id} ({kind}) : le formulaire ne demande pas {}",
                        missing.nom
                    );
                }
            }
        }
        // The facts without a default that the engine asked for.
        assert!(
            checked.contains("date_fin") && checked.contains("labo"),
            "{checked:?}"
        );
    }

    fn with_form(edit: impl Fn(&str) -> String) -> Result<Programme, Diagnostics> {
        let files: Vec<_> = itn7_files()
            .into_iter()
            .map(|f| {
                if f.name == "programme.yaml" {
                    SourceFile::new(f.name.clone(), edit(&f.text))
                } else {
                    f
                }
            })
            .collect();
        Programme::load(&files)
    }

    #[test]
    fn fields_must_name_facts_the_applicant_gives_with_a_compatible_type() {
        let extra = "\n        - { id: essai_inconnu, libelle: x, type: nombre, fait: nombre_d_agents_inexistant }\
                     \n        - { id: essai_population, libelle: x, type: nombre, fait: population }\
                     \n        - { id: essai_type, libelle: x, type: texte_long, fait: date_fin }\
                     \n        - { id: essai_depot, libelle: x, type: date, fait: date_depot }\
                     \n        - { id: essai_choix, libelle: x, type: choix }\
                     \n        - { id: essai_genre, libelle: x, type: couleur }\
                     \n        - { id: titre, libelle: doublon, type: texte }";
        let original = itn7_files()
            .into_iter()
            .find(|f| f.name == "programme.yaml")
            .unwrap()
            .text;
        let anchor = "      champs:\n        - { id: titre,";
        assert!(original.contains(anchor));
        let edit = |t: &str| {
            t.replacen(
                anchor,
                &format!("      champs:{extra}\n        - {{ id: titre,"),
                1,
            )
        };
        let edited = edit(&original);
        let err = with_form(edit).unwrap_err();
        let msgs: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
        let at = |needle: &str, line_text: &str| {
            let line = edited.lines().position(|l| l.contains(line_text)).unwrap() + 1;
            assert!(
                msgs.iter().any(
                    |m| m.contains(needle) && m.starts_with(&format!("programme.yaml:{line}:"))
                ),
                "{needle} à la ligne {line} :\n{msgs:#?}"
            );
        };
        at(
            "fait inconnu « nombre_d_agents_inexistant »",
            "essai_inconnu",
        );
        at(
            "le fait population vient de « referentiel »",
            "essai_population",
        );
        at(
            "un champ « texte_long » ne peut pas renseigner le fait date_fin",
            "essai_type",
        );
        at("le fait date_depot est la date de dépôt", "essai_depot");
        at("un choix donne ses valeurs", "essai_choix");
        at("type « couleur » inconnu", "essai_genre");
        // The second `titre`, the block's own, is the one refused.
        at("le champ titre figure deux fois", "Titre du projet");
    }

    #[test]
    fn a_choice_offers_only_values_its_fact_allows() {
        let files: Vec<_> = itn7_files()
            .into_iter()
            .map(|f| match f.name.as_str() {
                "regles.yaml" => SourceFile::new(
                    f.name.clone(),
                    f.text.replacen(
                        "faits:\n",
                        "faits:\n  canal:\n    titre: Canal\n    type: texte\n    origine: demandeur\n    valeurs: [telephone, site]\n",
                        1,
                    ),
                ),
                "programme.yaml" => SourceFile::new(
                    f.name.clone(),
                    f.text.replacen(
                        "      champs:\n        - { id: titre,",
                        "      champs:\n        - { id: canal, libelle: x, type: choix, valeurs: [site, courrier], fait: canal }\n        - { id: titre,",
                        1,
                    ),
                ),
                _ => f,
            })
            .collect();
        let err = Programme::load(&files).unwrap_err();
        assert!(
            err.0.iter().any(|d| d.message.contains(
                "la valeur « courrier » n’est pas permise par le fait canal (telephone, site)"
            )),
            "{err}"
        );
        // Without its own values, a choice offers the fact's.
        let files: Vec<_> = files
            .into_iter()
            .map(|f| {
                let text = f.text.replace("valeurs: [site, courrier], ", "");
                SourceFile::new(f.name, text)
            })
            .collect();
        let p = Programme::load(&files).unwrap_or_else(|d| panic!("{d}"));
        let field = p.form.common[0]
            .fields
            .iter()
            .find(|f| f.id == "canal")
            .unwrap();
        assert_eq!(
            field.kind,
            FieldKind::Choice(vec!["telephone".into(), "site".into()])
        );
    }

    #[test]
    fn measures_and_documents_must_exist() {
        let err = with_form(|t| {
            t.replacen(
                "  mesures:\n    axe3.v1.expert:\n",
                "  mesures:\n    axe9:\n      pieces: [{ piece: devis }]\n    axe1:\n      pieces: [{ piece: bon_de_commande }, { piece: devis, regions: [\"1\"] }]\n    axe3.v1.expert:\n",
                1,
            )
        })
        .unwrap_err();
        let msgs: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
        let has = |n: &str| msgs.iter().any(|m| m.contains(n));
        assert!(has("formulaire : mesure inconnue « axe9 »"), "{msgs:#?}");
        assert!(has("pièce inconnue « bon_de_commande »"), "{msgs:#?}");
        assert!(has("code de région invalide : « 1 »"), "{msgs:#?}");
    }
}
