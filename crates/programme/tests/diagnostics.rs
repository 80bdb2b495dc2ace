//! A broken programme file never crashes the loader: every problem comes back with its file,
//! line, column and a French message.

use guichet_programme::{itn7_files, Diagnostics, Programme, SourceFile};

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
