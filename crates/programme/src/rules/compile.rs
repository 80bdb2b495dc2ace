//! Compilation: the national rule set and one per territorial variant, names resolved, types
//! and nesting checked, problems collected with their place.

use super::*;

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

pub(crate) struct Inputs<'a> {
    pub rules_file: &'a SourceFile,
    pub params_file: &'a SourceFile,
    pub variants_file: &'a SourceFile,
    pub rules: RawRulesFile,
    pub params: RawParamsFile,
    pub variants: RawVariantsFile,
    /// Measures of the catalogue: id and whether a territory instructs it.
    pub measures: Vec<(String, bool)>,
}

/// Where a formula comes from, to locate its errors.
#[derive(Clone)]
pub(super) struct Origin<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) path: Vec<String>,
}

impl Origin<'_> {
    pub(super) fn diag(&self, near: Option<&str>, msg: impl Into<String>) -> Diagnostic {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.file.at(&path, near, msg)
    }
}

/// Where an entry comes from: the variant's file when the variant overrides it (its path under
/// `variantes: CODE:`), the national rules file otherwise.
pub(super) fn origin_of<'a>(
    overridden: bool,
    rf: &'a SourceFile,
    vf: &'a SourceFile,
    code: Option<&String>,
    path: &[&str],
) -> Origin<'a> {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    if overridden {
        let mut full = vec!["variantes".to_string(), code.cloned().unwrap_or_default()];
        full.extend(path);
        Origin {
            file: vf,
            path: full,
        }
    } else {
        Origin { file: rf, path }
    }
}

#[derive(Clone)]
pub(super) struct Pending<'a> {
    pub(super) name: String,
    pub(super) title: String,
    pub(super) expr: Result<Expr, ParseError>,
    pub(super) formula: String,
    pub(super) source: Option<String>,
    pub(super) origin: Origin<'a>,
    /// Which measure-only names (assiette, taux, taux_max) the formula may use.
    pub(super) context: Context,
    pub(super) expected: Option<Type>,
}

/// Which of a measure's own results a formula may read: each slot of a measure is computed
/// after the one before (the base, then the rate, then the maximum rate, then the amounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Context {
    /// A rule, a condition, an expense rule: none.
    Outside,
    /// The rate (`taux`): the base.
    Rate,
    /// The maximum rate: the base and the rate.
    RateMax,
    /// The amounts: the base and both rates.
    Amount,
}

/// A formula as a line of French for the trace (its YAML text if it does not parse: the
/// parse error is reported elsewhere).
pub(super) fn formula_text(y: &Yaml) -> String {
    Expr::from_yaml(y)
        .map(|e| e.render())
        .unwrap_or_else(|_| yaml_text(y))
}

pub(super) fn yaml_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        other => other.to_text(),
    }
}

/// A rule entry: a formula, or a table with `titre` (and `source`, `description`) around one.
pub(super) fn rule_entry(y: &Yaml) -> (Option<String>, Option<String>, Yaml) {
    if let Yaml::Mapping(m) = y {
        let has_meta = m.contains_key("titre");
        if has_meta {
            let mut rest = m.clone();
            let title = rest
                .remove("titre")
                .and_then(|v| v.as_str().map(str::to_string));
            let source = rest
                .remove("source")
                .and_then(|v| v.as_str().map(str::to_string));
            rest.remove("description");
            rest.remove("note");
            let formula = if rest.len() == 1 {
                rest.get("valeur").cloned().unwrap_or(Yaml::Mapping(rest))
            } else {
                Yaml::Mapping(rest)
            };
            return (title, source, formula);
        }
    }
    (None, None, y.clone())
}

pub(super) fn literal_of(y: &Yaml, ty: Type) -> Result<Value, String> {
    match y {
        Yaml::String(s) => Value::parse_literal(s, ty),
        Yaml::Number(n) => Value::parse_literal(&n.to_string(), ty),
        Yaml::Bool(b) if ty == Type::Booleen => Ok(Value::Booleen(*b)),
        other => Err(format!(
            "valeur invalide : « {} » ({} attendu)",
            yaml_text(other),
            ty.label()
        )),
    }
}

pub(crate) fn compile(inputs: Inputs<'_>) -> Result<Rules, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let rf = inputs.rules_file;
    let pf = inputs.params_file;
    let vf = inputs.variants_file;
    let rounding = Rounding::parse(&inputs.rules.arrondi).unwrap_or_else(|| {
        diags.push(rf.at(
            &["arrondi"],
            None,
            format!(
                "arrondi inconnu : « {} » (centime inférieur, euro inférieur, euro le plus proche)",
                inputs.rules.arrondi
            ),
        ));
        Rounding::CentDown
    });

    // Categories.
    let categories: Vec<Category> = inputs
        .rules
        .categories_depenses
        .iter()
        .map(|c| Category {
            id: c.id.clone(),
            label: c.libelle.clone(),
        })
        .collect();

    // Facts.
    let mut facts = Vec::new();
    for (name, f) in &inputs.rules.faits {
        let Some(ty) = Type::parse(&f.ty) else {
            diags.push(rf.at(
                &["faits", name, "type"],
                Some(&f.ty),
                format!(
                    "fait « {name} » : type inconnu « {} » (nombre, montant, date, booleen, texte)",
                    f.ty
                ),
            ));
            continue;
        };
        if !["referentiel", "base", "demande", "demandeur"].contains(&f.origine.as_str()) {
            diags.push(rf.at(
                &["faits", name, "origine"],
                Some(&f.origine),
                format!(
                    "fait « {name} » : origine inconnue « {} » (referentiel, base, demande ou demandeur)",
                    f.origine
                ),
            ));
        }
        let default = match &f.defaut {
            None => None,
            Some(y) => match literal_of(y, ty) {
                Ok(v) => Some(v),
                Err(e) => {
                    diags.push(rf.at(
                        &["faits", name, "defaut"],
                        None,
                        format!("fait « {name} » : valeur par défaut {e}"),
                    ));
                    None
                }
            },
        };
        let _ = &f.description;
        facts.push(FactDef {
            name: name.clone(),
            title: f.titre.clone(),
            ty,
            question: f.question.clone(),
            default,
            origin: f.origine.clone(),
            allowed: f.valeurs.clone(),
        });
    }
    let fact_index: HashMap<String, usize> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), i))
        .collect();
    let selector = match fact_index.get(&inputs.rules.variantes_selon) {
        Some(&i) => i,
        None => {
            diags.push(rf.at(
                &["variantes_selon"],
                None,
                format!(
                    "« variantes_selon » désigne un fait inconnu : « {} »",
                    inputs.rules.variantes_selon
                ),
            ));
            0
        }
    };
    let filing = &inputs.rules.fait_date_de_depot;
    let date_fact = match fact_index.get(filing) {
        Some(&i) if facts[i].ty == Type::Date => Some(i),
        Some(&i) => {
            diags.push(rf.at(
                &["fait_date_de_depot"],
                None,
                format!(
                    "« fait_date_de_depot » désigne le fait « {filing} », de type {} : une date est attendue",
                    facts[i].ty.label()
                ),
            ));
            None
        }
        None => {
            diags.push(rf.at(
                &["fait_date_de_depot"],
                None,
                format!("« fait_date_de_depot » désigne un fait inconnu : « {filing} » (la date de dépôt, de type date)"),
            ));
            None
        }
    };

    // Parameters.
    let variant_codes: Vec<&String> = inputs.variants.variantes.keys().collect();
    let mut params = Vec::new();
    for (name, p) in &inputs.params.parametres {
        let Some(ty) = Type::parse(&p.unite) else {
            diags.push(pf.at(
                &["parametres", name, "unite"],
                Some(&p.unite),
                format!(
                    "paramètre « {name} » : unité inconnue « {} » (nombre, habitants, communes, %, €, date, booleen, texte)",
                    p.unite
                ),
            ));
            continue;
        };
        let _ = &p.description;
        let versions = |list: &[RawParamValue],
                        path: &[&str],
                        diags: &mut Vec<Diagnostic>|
         -> Vec<ParamVersion> {
            let mut out: Vec<ParamVersion> = Vec::new();
            for v in list {
                match literal_of(&v.valeur, ty) {
                    Ok(value) => {
                        if out.iter().any(|o| o.since == v.depuis) {
                            diags.push(pf.at(
                                path,
                                Some(&v.depuis.to_string()),
                                format!(
                                    "paramètre « {name} » : deux valeurs à la même date ({})",
                                    v.depuis
                                ),
                            ));
                        }
                        if v.source.trim().is_empty() {
                            diags.push(pf.at(
                                path,
                                None,
                                format!("paramètre « {name} » : chaque valeur cite sa source"),
                            ));
                        }
                        out.push(ParamVersion {
                            since: v.depuis,
                            value,
                            source: v.source.clone(),
                        })
                    }
                    Err(e) => diags.push(pf.at(
                        path,
                        Some(&yaml_text(&v.valeur)),
                        format!("paramètre « {name} » : {e}"),
                    )),
                }
            }
            out.sort_by_key(|v| v.since);
            out
        };
        let national = versions(&p.valeurs, &["parametres", name], &mut diags);
        let mut variants = BTreeMap::new();
        for (code, list) in &p.variantes {
            if !variant_codes.contains(&code) {
                diags.push(pf.at(
                    &["parametres", name, "variantes", code],
                    None,
                    format!(
                        "paramètre « {name} » : variante « {code} » inconnue (variantes déclarées : {})",
                        variant_codes
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            }
            variants.insert(
                code.clone(),
                versions(list, &["parametres", name, "variantes", code], &mut diags),
            );
        }
        params.push(ParamDef {
            name: name.clone(),
            title: p.titre.clone(),
            unit: p.unite.clone(),
            ty,
            national,
            variants,
        });
    }

    // Names must be unique across facts, parameters, rules and the engine's own names.
    let mut builtins: Vec<(String, Builtin)> = vec![
        ("cout_total".into(), Builtin::CoutTotal),
        ("assiette".into(), Builtin::Assiette),
        ("taux".into(), Builtin::Taux),
        ("taux_max".into(), Builtin::TauxMax),
    ];
    for (i, c) in categories.iter().enumerate() {
        builtins.push((expense_name(&c.id), Builtin::Depense(i)));
    }
    for p in &params {
        if fact_index.contains_key(&p.name) || builtins.iter().any(|b| b.0 == p.name) {
            diags.push(pf.at(
                &["parametres", &p.name],
                None,
                format!(
                    "nom déjà utilisé par un fait ou par le moteur : « {} »",
                    p.name
                ),
            ));
        }
    }
    for name in inputs.rules.regles.keys() {
        if fact_index.contains_key(name)
            || builtins.iter().any(|b| &b.0 == name)
            || params.iter().any(|p| &p.name == name)
        {
            diags.push(rf.at(
                &["regles", name],
                None,
                format!("nom déjà utilisé par un fait, un paramètre ou le moteur : « {name} »"),
            ));
        }
    }

    // Variants must only override what exists.
    for (code, v) in &inputs.variants.variantes {
        let mut overrides_nothing = |section: &str, what: &str, name: &str| {
            diags.push(vf.at(
                &["variantes", code, section, name],
                None,
                format!(
                    "variante {code} : {what} « {name} » n’existe pas dans le programme national"
                ),
            ))
        };
        for name in v
            .regles
            .keys()
            .filter(|n| !inputs.rules.regles.contains_key(*n))
        {
            overrides_nothing("regles", "la règle", name);
        }
        for name in v
            .conditions
            .keys()
            .filter(|n| !inputs.rules.conditions.contains_key(*n))
        {
            overrides_nothing("conditions", "la condition", name);
        }
        for id in v
            .mesures
            .keys()
            .filter(|n| !inputs.rules.mesures.contains_key(*n))
        {
            overrides_nothing("mesures", "la mesure", id);
        }
        for (regime, cats) in &v.depenses {
            match inputs.rules.depenses.get(regime) {
                None => diags.push(vf.at(
                    &["variantes", code, "depenses", regime],
                    None,
                    format!("variante {code} : le régime de dépenses « {regime} » n’existe pas dans le programme national"),
                )),
                Some(_) => {
                    for cat in cats.keys() {
                        if !categories.iter().any(|c| &c.id == cat) {
                            diags.push(vf.at(
                                &["variantes", code, "depenses", regime, cat],
                                None,
                                format!("variante {code} : catégorie de dépense inconnue « {cat} »"),
                            ));
                        }
                    }
                }
            }
        }
    }

    for (id, m) in &inputs.rules.mesures {
        if m.conditions.is_none() {
            diags.push(rf.at(
                &["mesures", id],
                None,
                format!("mesure {id} : « conditions » manquant (une liste, vide si la mesure n’en pose aucune)"),
            ));
        }
    }

    // Catalogue and rules name the same measures.
    for (id, _) in &inputs.measures {
        if !inputs.rules.mesures.contains_key(id) {
            diags.push(rf.at(
                &["mesures"],
                None,
                format!("la mesure « {id} » du catalogue (programme.yaml) n’a pas de règles"),
            ));
        }
    }
    for id in inputs.rules.mesures.keys() {
        if !inputs.measures.iter().any(|(m, _)| m == id) {
            diags.push(rf.at(
                &["mesures", id],
                None,
                format!("mesure « {id} » absente du catalogue (programme.yaml)"),
            ));
        }
    }

    // Problems so far leave the rest checkable (an override of a missing name is ignored):
    // go on, so that one run reports everything.
    let shared = Shared {
        facts: &facts,
        fact_index: &fact_index,
        params: &params,
        builtins: &builtins,
        categories: &categories,
        date_fact,
    };
    let national = build_rule_set(&shared, &inputs, None, &mut diags);
    let mut variants = Vec::new();
    for code in inputs.variants.variantes.keys() {
        variants.push(build_rule_set(&shared, &inputs, Some(code), &mut diags));
    }
    if !diags.is_empty() {
        // The same mistake in a national rule shows once per territory: keep one.
        let mut seen = std::collections::HashSet::new();
        diags.retain(|d| seen.insert(d.clone()));
        return Err(diags);
    }
    let mut facts_by_name: Vec<(String, usize)> =
        fact_index.iter().map(|(n, &i)| (n.clone(), i)).collect();
    facts_by_name.sort();
    Ok(Rules {
        rounding,
        selector,
        categories,
        facts,
        params,
        national,
        variants,
        date_fact,
        fact_index,
        facts_by_name,
    })
}

pub(super) struct Shared<'a> {
    pub(super) facts: &'a [FactDef],
    pub(super) fact_index: &'a HashMap<String, usize>,
    pub(super) params: &'a [ParamDef],
    pub(super) builtins: &'a [(String, Builtin)],
    pub(super) categories: &'a [Category],
    pub(super) date_fact: Option<usize>,
}

pub(super) fn build_rule_set<'a>(
    shared: &Shared<'_>,
    inputs: &Inputs<'a>,
    code: Option<&String>,
    diags: &mut Vec<Diagnostic>,
) -> RuleSet {
    let rf = inputs.rules_file;
    let vf = inputs.variants_file;
    let variant = code.and_then(|c| inputs.variants.variantes.get(c));
    let mut pending: Vec<Pending<'a>> = Vec::new();
    let mut push = |p: Pending<'a>| -> usize {
        pending.push(p);
        pending.len() - 1
    };

    // Named rules, with the variant's overrides.
    let mut rule_ids: HashMap<String, usize> = HashMap::new();
    for (name, y) in &inputs.rules.regles {
        let over = variant.and_then(|v| v.regles.get(name));
        let origin = origin_of(over.is_some(), rf, vf, code, &["regles", name]);
        let y = over.unwrap_or(y);
        let (title, source, formula) = rule_entry(y);
        let id = push(Pending {
            name: name.clone(),
            title: title.unwrap_or_else(|| name.replace('_', " ")),
            expr: Expr::from_yaml(&formula),
            formula: formula_text(&formula),
            source,
            origin,
            context: Context::Outside,
            expected: None,
        });
        rule_ids.insert(name.clone(), id);
    }

    // Conditions.
    let mut conditions = Vec::new();
    let mut condition_ids: HashMap<String, usize> = HashMap::new();
    for (name, c) in &inputs.rules.conditions {
        let over = variant.and_then(|v| v.conditions.get(name));
        let over_si = over.and_then(|o| o.si.as_ref());
        let origin = origin_of(over_si.is_some(), rf, vf, code, &["conditions", name]);
        let si = over_si.unwrap_or(&c.si);
        let message = over
            .and_then(|o| o.message.clone())
            .unwrap_or_else(|| c.message.clone());
        let source = over
            .and_then(|o| o.source.clone())
            .or_else(|| c.source.clone());
        let rule = push(Pending {
            name: format!("condition {name}"),
            title: message.clone(),
            expr: Expr::from_yaml(si),
            formula: formula_text(si),
            source: source.clone(),
            origin,
            context: Context::Outside,
            expected: Some(Type::Booleen),
        });
        condition_ids.insert(name.clone(), conditions.len());
        conditions.push(ConditionDef {
            name: name.clone(),
            code: over
                .and_then(|o| o.motif.clone())
                .unwrap_or_else(|| c.motif.clone()),
            message,
            source,
            rule,
        });
    }

    // Expense regimes.
    let mut regimes: HashMap<String, Vec<ExpenseRule>> = HashMap::new();
    for (regime, cats) in &inputs.rules.depenses {
        let mut list = Vec::new();
        for (ci, cat) in shared.categories.iter().enumerate() {
            let over = variant
                .and_then(|v| v.depenses.get(regime))
                .and_then(|m| m.get(&cat.id));
            let origin = origin_of(over.is_some(), rf, vf, code, &["depenses", regime, &cat.id]);
            let entry = match over.or_else(|| cats.get(&cat.id)) {
                Some(e) => e,
                None => {
                    diags.push(rf.at(
                        &["depenses", regime],
                        None,
                        format!(
                            "régime de dépenses « {regime} » : la catégorie « {} » n’est pas traitée (eligible, {{ exclue: … }} ou {{ eligible si: … }})",
                            cat.id
                        ),
                    ));
                    continue;
                }
            };
            for key in cats.keys() {
                if !shared.categories.iter().any(|c| &c.id == key) {
                    diags.push(rf.at(
                        &["depenses", regime, key],
                        None,
                        format!("régime « {regime} » : catégorie de dépense inconnue « {key} »"),
                    ));
                }
            }
            let mut rule = ExpenseRule {
                category: ci,
                eligible_if: None,
                always: false,
                excluded_message: String::new(),
                cap: None,
                cap_message: None,
            };
            match entry {
                Yaml::String(s) if s == "eligible" => rule.always = true,
                Yaml::Mapping(m) => {
                    for (k, v) in m.iter() {
                        let k = k.as_str().unwrap_or_default();
                        match k {
                            "exclue" => {
                                rule.excluded_message = v.as_str().unwrap_or_default().to_string()
                            }
                            "sinon" => {
                                rule.excluded_message = v.as_str().unwrap_or_default().to_string()
                            }
                            "message plafond" => {
                                rule.cap_message = v.as_str().map(str::to_string)
                            }
                            "eligible si" => {
                                rule.eligible_if = Some(push(Pending {
                                    name: format!("{regime}.{}.eligible", cat.id),
                                    title: format!("{} éligible", cat.label),
                                    expr: Expr::from_yaml(v),
                                    formula: formula_text(v),
                                    source: None,
                                    origin: origin.clone(),
                                    context: Context::Outside,
                                    expected: Some(Type::Booleen),
                                }))
                            }
                            "plafond" => {
                                rule.cap = Some(push(Pending {
                                    name: format!("{regime}.{}.plafond", cat.id),
                                    title: format!("Plafond des dépenses « {} »", cat.label),
                                    expr: Expr::from_yaml(v),
                                    formula: formula_text(v),
                                    source: None,
                                    origin: origin.clone(),
                                    context: Context::Outside,
                                    expected: Some(Type::Montant),
                                }))
                            }
                            other => diags.push(origin.diag(
                                Some(other),
                                format!(
                                    "régime « {regime} », « {} » : clé inconnue « {other} » (exclue, eligible si, sinon, plafond, message plafond)",
                                    cat.id
                                ),
                            )),
                        }
                    }
                    if rule.eligible_if.is_some() && rule.excluded_message.is_empty() {
                        diags.push(origin.diag(
                            None,
                            format!("régime « {regime} », « {} » : « eligible si » demande un message « sinon »", cat.id),
                        ));
                    }
                    if rule.eligible_if.is_none() && rule.cap.is_none() && rule.excluded_message.is_empty() {
                        diags.push(origin.diag(
                            None,
                            format!("régime « {regime} », « {} » : indiquez eligible, exclue, eligible si ou plafond", cat.id),
                        ));
                    }
                    rule.always = rule.eligible_if.is_none() && rule.excluded_message.is_empty();
                }
                other => diags.push(origin.diag(
                    None,
                    format!(
                        "régime « {regime} », « {} » : « {} » n’est pas une règle de dépense (eligible, {{ exclue: … }}, {{ eligible si: …, sinon: … }}, {{ plafond: … }})",
                        cat.id,
                        yaml_text(other)
                    ),
                )),
            }
            list.push(rule);
        }
        regimes.insert(regime.clone(), list);
    }

    // Measures.
    let mut measures = Vec::new();
    for (id, territorial) in &inputs.measures {
        let Some(m) = inputs.rules.mesures.get(id) else {
            continue;
        };
        let over = variant.and_then(|v| v.mesures.get(id));
        let origin_for = |overridden: bool, slot: &str| {
            origin_of(overridden, rf, vf, code, &["mesures", id, slot])
        };
        let cond_names = over
            .and_then(|o| o.conditions.clone())
            .or_else(|| m.conditions.clone())
            .unwrap_or_default();
        let overridden_conditions = over.is_some_and(|o| o.conditions.is_some());
        let mut conds = Vec::new();
        for c in &cond_names {
            match condition_ids.get(c) {
                Some(&ci) => conds.push(ci),
                None => diags.push(
                    origin_for(overridden_conditions, "conditions")
                        .diag(Some(c), format!("mesure {id} : condition inconnue « {c} »")),
                ),
            }
        }
        let regime_name = over
            .and_then(|o| o.depenses.clone())
            .or_else(|| m.depenses.clone());
        let expenses = match regime_name {
            None => None,
            Some(r) => match regimes.get(&r) {
                Some(list) => Some((r.clone(), list.clone())),
                None => {
                    diags.push(
                        origin_for(over.is_some_and(|o| o.depenses.is_some()), "depenses").diag(
                            Some(&r),
                            format!("mesure {id} : régime de dépenses inconnu « {r} »"),
                        ),
                    );
                    None
                }
            },
        };
        let mut slot = |name: &str,
                        label: &str,
                        base: Option<&Yaml>,
                        overridden: Option<&Yaml>,
                        ctx: Context,
                        ty: Type|
         -> Option<usize> {
            let (y, origin) = match (overridden, base) {
                (Some(o), _) => (o, origin_for(true, name)),
                (None, Some(b)) => (b, origin_for(false, name)),
                (None, None) => return None,
            };
            Some(push(Pending {
                name: format!("{id} : {name}"),
                title: label.to_string(),
                expr: Expr::from_yaml(y),
                formula: formula_text(y),
                source: None,
                origin,
                context: ctx,
                expected: Some(ty),
            }))
        };
        let rate = slot(
            "taux",
            "Taux de financement proposé",
            m.taux.as_ref(),
            over.and_then(|o| o.taux.as_ref()),
            Context::Rate,
            Type::Nombre,
        );
        let rate_max = slot(
            "taux max",
            "Taux maximal que l’instructeur peut accorder",
            m.taux_max.as_ref(),
            over.and_then(|o| o.taux_max.as_ref()),
            Context::RateMax,
            Type::Nombre,
        );
        let default_amount = Yaml::String("assiette * taux".into());
        let default_max = Yaml::String("assiette * taux_max".into());
        let has_base = expenses.is_some() && rate.is_some();
        let amount = slot(
            "montant",
            "Montant proposé",
            m.montant.as_ref().or(if has_base {
                Some(&default_amount)
            } else {
                None
            }),
            over.and_then(|o| o.montant.as_ref()),
            Context::Amount,
            Type::Montant,
        );
        let amount_max = slot(
            "montant max",
            "Montant maximal",
            m.montant_max
                .as_ref()
                .or(if has_base && rate_max.is_some() {
                    Some(&default_max)
                } else {
                    None
                }),
            over.and_then(|o| o.montant_max.as_ref()),
            Context::Amount,
            Type::Montant,
        );
        let exclusion = over
            .and_then(|o| o.exclue.clone())
            .or_else(|| m.exclue.clone())
            .map(|e| (e.motif, e.message));
        // Every category retained in full (`cout_total`): the base is the total cost.
        let whole_cost = expenses.as_ref().is_some_and(|(_, regime)| {
            (0..shared.categories.len()).all(|c| {
                regime
                    .iter()
                    .any(|r| r.category == c && r.always && r.cap.is_none())
                    && regime.iter().filter(|r| r.category == c).count() == 1
            })
        });
        measures.push(MeasureRules {
            id: id.clone(),
            territorial: *territorial,
            conditions: conds,
            expenses,
            whole_cost,
            rate,
            rate_max,
            amount,
            amount_max,
            exclusion,
        });
    }

    // Resolve names, then check types and cycles.
    let mut resolved: Vec<Option<Node>> = Vec::with_capacity(pending.len());
    for p in &pending {
        match &p.expr {
            Err(e) => {
                diags.push(
                    p.origin
                        .diag(Some(&e.near), format!("{} : {}", p.name, e.message)),
                );
                resolved.push(None);
            }
            Ok(expr) => match resolve(expr, shared, &rule_ids, p) {
                Ok(n) => resolved.push(Some(n)),
                Err(d) => {
                    diags.push(d);
                    resolved.push(None);
                }
            },
        }
    }
    // Rules reading rules reading rules… thousands deep would overflow the stack wherever they
    // are walked (types, dependences, evaluation): refused, and cut off before those walks.
    let depths = evaluation_depths(&resolved);
    let too_deep = |i: usize| depths.get(i).is_some_and(|&d| d > MAX_DEPTH);
    let mut read_by_too_deep = vec![false; pending.len()];
    for (i, node) in resolved.iter().enumerate() {
        if let (true, Some(node)) = (too_deep(i), node) {
            node.for_each_rule(&mut |j| {
                if let Some(r) = read_by_too_deep.get_mut(j) {
                    *r = true;
                }
            });
        }
    }
    for i in 0..pending.len() {
        if too_deep(i) && !read_by_too_deep[i] {
            diags.push(pending[i].origin.diag(
                None,
                format!(
                    "{} : règles trop imbriquées : son calcul passe par {} niveaux de formules et de règles (au plus {MAX_DEPTH})",
                    pending[i].name, depths[i]
                ),
            ));
        }
    }
    for (i, node) in resolved.iter_mut().enumerate() {
        if too_deep(i) {
            *node = None;
        }
    }
    let mut types: Vec<Option<Type>> = vec![None; pending.len()];
    let mut state = vec![Inference::NotYet; pending.len()];
    for i in 0..pending.len() {
        let _ = infer_rule(
            i, &pending, &resolved, shared, &mut types, &mut state, diags,
        );
    }
    let params = shared
        .params
        .iter()
        .map(|p| {
            code.and_then(|c| p.variants.get(c))
                .cloned()
                .unwrap_or_else(|| p.national.clone())
        })
        .collect();
    let rules: Vec<RuleDef> = pending
        .into_iter()
        .zip(resolved)
        .zip(types)
        .map(|((p, node), ty)| RuleDef {
            name: p.name,
            title: p.title,
            formula: p.formula,
            source: p.source,
            ty: ty.unwrap_or(Type::Any),
            node: node.unwrap_or(Node::Const(Value::NonApplicable)),
        })
        .collect();
    let messages = conditions
        .iter()
        .map(|c| message_pieces(&c.message, shared.params, &rules, shared.fact_index))
        .collect();
    let titles = rules
        .iter()
        .map(|r| {
            if r.title.contains('{') {
                message_pieces(&r.title, shared.params, &rules, shared.fact_index)
            } else {
                Vec::new()
            }
        })
        .collect();
    let dependence = dependence(&rules, shared.date_fact);
    let (fact_readers, expense_readers) = readers(&rules, shared.facts.len());
    // Rules written alike (the default amount `assiette * taux` of several measures, say) are
    // one: the first of them.
    let mut first: HashMap<Structure, usize> = HashMap::new();
    let same_as = rules
        .iter()
        .enumerate()
        .map(|(i, r)| *first.entry(Structure::of(r.ty, &r.node)).or_insert(i))
        .collect();
    RuleSet {
        code: code.cloned(),
        name: variant
            .map(|v| v.nom.clone())
            .unwrap_or_else(|| "National".to_string()),
        source: variant.map(|v| v.source.clone()),
        rules,
        conditions,
        measures,
        params,
        messages,
        titles,
        dependence,
        same_as,
        fact_readers,
        expense_readers,
    }
}

pub(super) fn resolve(
    e: &Expr,
    shared: &Shared<'_>,
    rules: &HashMap<String, usize>,
    p: &Pending<'_>,
) -> Result<Node, Diagnostic> {
    let r = |x: &Expr| resolve(x, shared, rules, p);
    let all = |v: &[Expr]| v.iter().map(r).collect::<Result<Vec<_>, _>>();
    let bx = |x: &Expr| r(x).map(Box::new);
    let opt = |x: &Option<Box<Expr>>| x.as_deref().map(bx).transpose();
    Ok(match e {
        Expr::Const(v) => Node::Const(v.clone()),
        Expr::Ref(name) => {
            if let Some(&i) = rules.get(name) {
                Node::Rule(i)
            } else if let Some(i) = shared.params.iter().position(|q| &q.name == name) {
                Node::Param(i)
            } else if let Some(&i) = shared.fact_index.get(name) {
                Node::Fact(i)
            } else if let Some((_, b)) = shared.builtins.iter().find(|(n, _)| n == name) {
                let needed = match b {
                    Builtin::Assiette => Context::Rate,
                    Builtin::Taux => Context::RateMax,
                    Builtin::TauxMax => Context::Amount,
                    _ => Context::Outside,
                };
                if p.context < needed {
                    return Err(p.origin.diag(
                        Some(name),
                        format!(
                            "{} : « {name} » n’est utilisable que dans les formules d’une mesure (taux, taux max, montant, montant max), après son calcul",
                            p.name
                        ),
                    ));
                }
                Node::Builtin(*b)
            } else {
                return Err(p.origin.diag(
                    Some(name),
                    format!(
                        "{} : nom inconnu « {name} » (ni règle, ni paramètre, ni fait)",
                        p.name
                    ),
                ));
            }
        }
        Expr::Bin(op, a, b) => Node::Bin(*op, bx(a)?, bx(b)?),
        Expr::Neg(a) => Node::Neg(bx(a)?),
        Expr::In(a, items) => Node::In(bx(a)?, items.clone()),
        Expr::All(v) => Node::All(all(v)?),
        Expr::Any(v) => Node::Any(all(v)?),
        Expr::Min(v) => Node::Min(all(v)?),
        Expr::Max(v) => Node::Max(all(v)?),
        Expr::Sum(v) => Node::Sum(all(v)?),
        Expr::Product(v) => Node::Product(all(v)?),
        Expr::Variations(b, o) => Node::Variations(
            b.iter()
                .map(|(c, v)| Ok((r(c)?, r(v)?)))
                .collect::<Result<Vec<_>, Diagnostic>>()?,
            opt(o)?,
        ),
        Expr::Grid(base, tranches) => {
            check_grid(tranches.iter().map(|t| (&t.lower, &t.upper)).collect(), p)?;
            Node::Grid(
                bx(base)?,
                tranches
                    .iter()
                    .map(|t| Ok((t.lower.clone(), t.upper.clone(), r(&t.value)?)))
                    .collect::<Result<Vec<_>, Diagnostic>>()?,
            )
        }
        Expr::Modified {
            value,
            applicable,
            not_applicable,
            cap,
            floor,
            rounding,
        } => Node::Modified {
            value: bx(value)?,
            applicable: opt(applicable)?,
            not_applicable: opt(not_applicable)?,
            cap: opt(cap)?,
            floor: opt(floor)?,
            rounding: *rounding,
        },
    })
}
