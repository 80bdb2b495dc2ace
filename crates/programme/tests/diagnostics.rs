//! A broken programme file never crashes the loader: every problem comes back with its file,
//! line, column and a French message.

use guichet_programme::{Diagnostics, Programme, SourceFile, PROGRAMME_FILES};

/// The ITN7 programme files, read from the repository.
fn itn7_files() -> Vec<SourceFile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7");
    PROGRAMME_FILES
        .iter()
        .map(|name| {
            let text =
                std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            SourceFile::new(*name, text)
        })
        .collect()
}

/// The ITN7 files with one of them edited.
fn with_edit(file: &str, from: &str, to: &str) -> Vec<SourceFile> {
    let mut files = itn7_files();
    let f = files
        .iter_mut()
        .find(|f| f.name == file)
        .unwrap_or_else(|| panic!("{file}"));
    assert!(f.text.contains(from), "{from} absent de {file}");
    f.text = f.text.replacen(from, to, 1);
    files
}

fn errors(files: &[SourceFile]) -> Diagnostics {
    match Programme::load(files) {
        Ok(_) => panic!("le programme aurait dû être refusé"),
        Err(d) => d,
    }
}

fn line_of(files: &[SourceFile], file: &str, needle: &str) -> usize {
    let f = files.iter().find(|f| f.name == file).unwrap();
    let off = f.text.find(needle).unwrap();
    f.text[..off].matches('\n').count() + 1
}

#[test]
fn the_shipped_programme_is_valid() {
    Programme::load(&itn7_files()).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn an_unknown_parameter_is_located() {
    let files = with_edit(
        "regles.yaml",
        "valeur: taux_axe3\n    source: \"[001]\"\n\n  taux_max_relation_usager",
        "valeur: taux_axe33\n    source: \"[001]\"\n\n  taux_max_relation_usager",
    );
    let d = errors(&files);
    let hit =
        d.0.iter()
            .find(|d| d.message.contains("nom inconnu « taux_axe33 »"))
            .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(hit.file, "regles.yaml");
    assert_eq!(hit.line, line_of(&files, "regles.yaml", "taux_axe33"));
    assert!(hit.column > 1);
}

#[test]
fn a_type_mismatch_is_reported() {
    let files = with_edit(
        "regles.yaml",
        "si: date_fin <= date_fin_max_projet",
        "si: date_fin <= seuil_population_axe2",
    );
    let d = errors(&files);
    assert!(
        d.0.iter()
            .any(|d| d.file == "regles.yaml" && d.message.contains("type incompatible : date")),
        "{d}"
    );
}

#[test]
fn a_cycle_is_reported() {
    let files = with_edit(
        "regles.yaml",
        "valeur: forfait_dematads_centre + forfait_dematads_par_commune * communes_retenues_dematads",
        "valeur: forfait_dematads_centre + forfait_dematads_par_commune * communes_retenues_dematads\n\n  boucle_a:\n    titre: A\n    valeur: boucle_b + 1\n  boucle_b:\n    titre: B\n    valeur: boucle_a + 1",
    );
    let d = errors(&files);
    assert!(d.0.iter().any(|d| d.message.contains("cycle")), "{d}");
}

#[test]
fn an_overlapping_grid_is_reported() {
    let files = with_edit(
        "regles.yaml",
        "  plafond_axe3:\n    titre: Plafond territorial de l’aide (axe 3)\n    valeur: non_applicable",
        "  plafond_axe3:\n    titre: Plafond territorial de l’aide (axe 3)\n    grille:\n      assiette: population\n      tranches:\n        - { jusqu'à: 15000, valeur: 10000 € }\n        - { à partir de: 15000, valeur: 20000 € }",
    );
    let d = errors(&files);
    let hit =
        d.0.iter()
            .find(|d| d.message.contains("se chevauchent"))
            .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(hit.file, "regles.yaml");
    assert!(hit.message.contains("15"), "{}", hit.message);
}

#[test]
fn a_gap_in_a_grid_is_reported_but_adjacent_counts_are_not() {
    let grid = |a: &str, b: &str| {
        with_edit(
            "regles.yaml",
            "  plafond_axe3:\n    titre: Plafond territorial de l’aide (axe 3)\n    valeur: non_applicable",
            &format!("  plafond_axe3:\n    titre: Plafond\n    grille:\n      assiette: population\n      tranches:\n        - {{ {a}, valeur: 10000 € }}\n        - {{ {b}, valeur: 20000 € }}"),
        )
    };
    let d = errors(&grid("jusqu'à: 15000", "à partir de: 15002"));
    assert!(d.0.iter().any(|d| d.message.contains("trou")), "{d}");
    Programme::load(&grid("jusqu'à: 15000", "à partir de: 15001"))
        .unwrap_or_else(|d| panic!("{d}"));
    Programme::load(&grid("jusqu'à: 15000", "au-delà de: 15000")).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn a_variant_overriding_a_missing_rule_is_reported() {
    let files = with_edit(
        "variantes.yaml",
        "      plafond_axe3:\n        titre: Plafond d’un projet",
        "      plafond_axe_3:\n        titre: Plafond d’un projet",
    );
    let d = errors(&files);
    let hit =
        d.0.iter()
            .find(|d| d.message.contains("plafond_axe_3"))
            .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(hit.file, "variantes.yaml");
    assert_eq!(hit.line, line_of(&files, "variantes.yaml", "plafond_axe_3"));
}

#[test]
fn broken_yaml_and_unknown_fields_are_located() {
    let d = errors(&with_edit(
        "parametres.yaml",
        "  taux_axe2:\n",
        "  taux_axe2:\n   - : :\n",
    ));
    assert!(
        d.0.iter()
            .any(|d| d.file == "parametres.yaml" && d.line > 1),
        "{d}"
    );
    let d = errors(&with_edit(
        "regles.yaml",
        "    origine: referentiel\n",
        "    origin: referentiel\n",
    ));
    assert!(
        d.0.iter().any(|d| d.message.contains("champ inconnu")),
        "{d}"
    );
    let d = errors(&with_edit(
        "parametres.yaml",
        "valeur: 50 %",
        "valeur: cinquante",
    ));
    assert!(
        d.0.iter().any(|d| d.message.contains("nombre invalide")),
        "{d}"
    );
}

#[test]
fn several_problems_are_all_reported() {
    let mut files = with_edit("regles.yaml", "si: labo = oui", "si: labo = 3");
    let v = files
        .iter_mut()
        .find(|f| f.name == "variantes.yaml")
        .unwrap();
    v.text = v
        .text
        .replacen("      forfait_expert:\n", "      forfait_experts:\n", 1);
    let d = errors(&files);
    assert!(d.0.len() >= 2, "{d}");
    assert!(d.0.iter().any(|d| d.file == "regles.yaml"), "{d}");
    assert!(d.0.iter().any(|d| d.file == "variantes.yaml"), "{d}");
}

#[test]
fn a_missing_file_is_named() {
    let files: Vec<SourceFile> = itn7_files()
        .into_iter()
        .filter(|f| f.name != "criteres.yaml")
        .collect();
    let d = errors(&files);
    assert!(d.to_string().contains("criteres.yaml"), "{d}");
}

#[test]
fn a_measure_without_its_conditions_is_reported() {
    let d = errors(&with_edit(
        "regles.yaml",
        "  axe4.aap:\n    conditions: [maturite_cyber]\n",
        "  axe4.aap:\n",
    ));
    assert!(
        d.0.iter()
            .any(|d| d.file == "regles.yaml"
                && d.message.contains("axe4.aap : « conditions » manquant")),
        "{d}"
    );
}

/// Formulas and rules nested thousands deep once overflowed the stack (the process aborted):
/// they are refused, at the offending entry.
#[test]
fn formulas_and_rules_nested_too_deep_are_refused_where_they_are() {
    let anchor = "\nregles:\n";
    let deep = [
        format!(
            "  trop_profonde: \"{}1{}\"\n",
            "(".repeat(5_000),
            ")".repeat(5_000)
        ),
        format!("  trop_profonde: \"{}1\"\n", "- ".repeat(5_000)),
        format!("  trop_profonde: \"1{}\"\n", " * 2".repeat(20_000)),
        format!(
            "  trop_profonde: \"{}1{}\"\n",
            "(".repeat(65),
            ")".repeat(65)
        ),
    ];
    // Tables and lists nested too deep are refused by the YAML reader itself.
    let mut mechanisms = String::from("1");
    for _ in 0..5_000 {
        mechanisms = format!("{{ somme: [{mechanisms}] }}");
    }
    let files = with_edit(
        "regles.yaml",
        anchor,
        &format!("{anchor}  trop_profonde: {mechanisms}\n"),
    );
    let d = errors(&files);
    assert!(
        d.0.iter().any(
            |d| d.message.contains("trop imbriquées : plus de 64 niveaux")
                && d.line == line_of(&files, "regles.yaml", "trop_profonde")
        ),
        "{d}"
    );
    for rule in deep {
        let files = with_edit("regles.yaml", anchor, &format!("{anchor}{rule}"));
        let d = errors(&files);
        let hit =
            d.0.iter()
                .find(|d| d.message.contains("formule trop imbriquée"))
                .unwrap_or_else(|| panic!("{d}"));
        assert_eq!(hit.file, "regles.yaml");
        assert_eq!(
            hit.line,
            line_of(&files, "regles.yaml", "trop_profonde"),
            "{d}"
        );
    }
    // Rules reading rules: the first of the chain is named.
    let chain: String = (0..3_000)
        .map(|i| format!("  chaine_{i}: chaine_{} + 1\n", i + 1))
        .chain(std::iter::once("  chaine_3000: 1\n".to_string()))
        .collect();
    let files = with_edit("regles.yaml", anchor, &format!("{anchor}{chain}"));
    let d = errors(&files);
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].message.contains("règles trop imbriquées"), "{d}");
    assert!(d.0[0].message.starts_with("chaine_0 :"), "{d}");
    assert_eq!(d.0[0].line, line_of(&files, "regles.yaml", "chaine_0:"));
}

/// Just within the limits, a programme loads and is evaluated with its explanation on a
/// thread of 2 MB of stack (what the server's threads have), in a debug build.
#[test]
fn a_programme_nested_to_the_limits_is_evaluated_on_a_small_stack() {
    use guichet_programme::Situation;
    let parens = format!("{}1{}", "(".repeat(60), ")".repeat(60));
    // Each rule of the chain reads the next through a mechanism (the interpreter's largest
    // frames), 2 levels per rule: 254 levels with the last one's.
    let mut chain: String = (0..126)
        .map(|i| {
            format!(
                "  chaine_{i}:\n    valeur: chaine_{}\n    plafond: 1000000\n",
                i + 1
            )
        })
        .collect();
    chain.push_str(&format!("  chaine_126: \"{parens} + 1\"\n"));
    let files = with_edit("regles.yaml", "\nregles:\n", &format!("\nregles:\n{chain}"));
    let files = {
        let mut files = files;
        let f = files.iter_mut().find(|f| f.name == "regles.yaml").unwrap();
        // A condition of Axe 1 reads the whole chain.
        let from = "    conditions: [periode_axe1";
        assert!(f.text.contains(from));
        f.text = f.text.replacen(from, &format!("{from}, profonde"), 1);
        f.text = f.text.replacen(
            "\nconditions:\n",
            "\nconditions:\n  profonde:\n    motif: profonde\n    message: profonde\n    si: chaine_0 > 0\n\n",
            1,
        );
        files
    };
    let p = Programme::load(&files).unwrap_or_else(|d| panic!("{d}"));
    let ev = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut s = Situation {
                date: chrono::NaiveDate::from_ymd_opt(2021, 6, 1),
                ..Default::default()
            };
            s.facts.insert(
                "type_demandeur".into(),
                guichet_programme::Value::text("region"),
            );
            p.evaluate("axe1", &s).map(|e| e.trace.len())
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(ev.unwrap() > 120);
}

/// The filing date's fact is the programme's to name, and must be a date.
#[test]
fn the_filing_date_fact_is_named_by_the_programme() {
    for (name, says) in [
        ("population", "de type nombre : une date est attendue"),
        ("date_de_depot", "fait inconnu : « date_de_depot »"),
    ] {
        let files = with_edit(
            "regles.yaml",
            "fait_date_de_depot: date_depot",
            &format!("fait_date_de_depot: {name}"),
        );
        let d = errors(&files);
        let hit =
            d.0.iter()
                .find(|d| d.message.contains(says))
                .unwrap_or_else(|| panic!("{d}"));
        assert_eq!(
            hit.line,
            line_of(&files, "regles.yaml", "fait_date_de_depot:")
        );
    }
}
