//! The impact page (`/admin/impact`): a draft of the programme, picked in the drafts directory,
//! against the programme in force, for administrators and regional coordinators.

use crate::common::{client, spawn_with, TestApp};
use guichet_domain::Role;
use std::path::{Path, PathBuf};

fn itn7_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programmes/itn7")
}

fn copy_itn7(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in guichet_programme::PROGRAMME_FILES {
        std::fs::copy(itn7_dir().join(name), to.join(name)).unwrap();
    }
}

fn edit(path: &Path, anchor: &str, replacement: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.matches(anchor).count(), 1, "{anchor}");
    std::fs::write(path, text.replacen(anchor, replacement, 1)).unwrap();
}

/// A drafts directory: `seuil-20000` (Île-de-France's full rate up to 20,000 inhabitants),
/// `casse` (does not load), `.cache` (hidden), a symbolic link to a valid folder, and a valid
/// folder *outside* it, next door.
fn drafts() -> PathBuf {
    let root = guichet_testkit::temp_dir();
    let dir = root.join("brouillons");
    copy_itn7(&dir.join("seuil-20000"));
    edit(
        &dir.join("seuil-20000/parametres.yaml"),
        "          valeur: 15000\n",
        "          valeur: 20000\n",
    );
    copy_itn7(&dir.join("casse"));
    edit(
        &dir.join("casse/parametres.yaml"),
        "          valeur: 15000\n",
        "          valeur: quinze mille\n",
    );
    copy_itn7(&dir.join(".cache"));
    copy_itn7(&root.join("ailleurs"));
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("ailleurs"), dir.join("lien")).unwrap();
    dir
}

async fn spawn_with_drafts() -> (TestApp, PathBuf) {
    let dir = drafts();
    let d = dir.clone();
    let t = spawn_with(move |c| c.brouillons_dir = Some(d)).await;
    (t, dir)
}

const REPORT: &str =
    "/admin/impact?brouillon=seuil-20000&mesure=axe3.v1.formation&cout=100000&date_depot=2021-06-01";

/// The communes of Île-de-France between 15,000 (excluded) and 20,000 inhabitants in the
/// fixture referential.
const BETWEEN: [(&str, &str); 7] = [
    ("78073", "Bois-d'Arcy"),
    ("95637", "Vauréal"),
    ("95323", "Jouy-le-Moutier"),
    ("78686", "Viroflay"),
    ("95476", "Osny"),
    ("95218", "Éragny"),
    ("78545", "Saint-Cyr-l'École"),
];

/// A page's status and its HTML, with the template engine's character references read back
/// (`&#39;` is `'`), so that names are searched as written.
async fn html(t: &TestApp, c: &reqwest::Client, path: &str) -> (u16, String) {
    let r = t.get_with(c, path).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let body = body
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#34;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    (status, body)
}

#[tokio::test]
async fn an_administrator_sees_who_the_draft_changes_and_exports_them() {
    let (t, dir) = spawn_with_drafts().await;
    let admin = t
        .user("admin@impact.test", Role::Administrateur, None, &[])
        .await;
    let c = t.login_as(&admin).await;

    let (status, page) = html(&t, &c, "/admin/impact").await;
    assert_eq!(status, 200);
    assert!(page.contains("<option value=\"seuil-20000\""), "{page}");
    assert!(page.contains("<option value=\"casse\""));
    assert!(!page.contains(".cache"), "hidden folders are not offered");
    assert!(
        !page.contains("value=\"lien\""),
        "symbolic links are not offered"
    );
    assert!(page.contains("href=\"/admin/impact\""), "in the navigation");

    let (status, page) = html(&t, &c, REPORT).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Impact du brouillon « seuil-20000 »"),
        "{page}"
    );
    assert!(page.contains("Demandeurs dont la réponse change"), "{page}");
    assert!(page.contains("Région 11 Île-de-France"), "{page}");
    assert!(page.contains("Dossiers déposés : aucun"), "{page}");
    for (code, name) in BETWEEN {
        assert!(page.contains(&format!("commune:{code}")), "{code}");
        assert!(page.contains(name), "{name}");
    }
    // Just above the band (20,692 inhabitants): unchanged.
    assert!(
        !page.contains("commune:78126"),
        "La Celle-Saint-Cloud ne change pas"
    );
    assert!(
        page.contains("+50\u{202f}000,00\u{a0}€"),
        "each gains 50,000 €"
    );
    assert!(
        !page.contains(&dir.display().to_string()),
        "no server path on the page"
    );

    // The export lists every changed applicant, with its gain in cents.
    let export = t
        .get_with(
            &c,
            "/admin/impact/export.csv?brouillon=seuil-20000&mesure=axe3.v1.formation&cout=100000&date_depot=2021-06-01",
        )
        .await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        export.headers()["content-disposition"],
        "attachment; filename=\"impact-seuil-20000.csv\""
    );
    let csv = export.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0]
        .trim_start_matches('\u{feff}')
        .starts_with("mesure;reference;nom;"));
    let communes: Vec<&&str> = lines[1..]
        .iter()
        .filter(|l| l.contains(";commune;"))
        .collect();
    assert_eq!(communes.len(), BETWEEN.len(), "{csv}");
    for (code, _) in BETWEEN {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(";commune:{code};")))
            .unwrap_or_else(|| panic!("{code} absent de l’export :\n{csv}"));
        assert!(line.contains(";0.5;1;"), "{line}");
        assert!(line.contains(";5000000;10000000;5000000;"), "{line}");
    }
}

#[tokio::test]
async fn a_coordinator_sees_only_their_region() {
    let (t, _) = spawn_with_drafts().await;
    let idf = t
        .user(
            "coord.idf@impact.test",
            Role::Coordinateur,
            Some("region:11"),
            &[],
        )
        .await;
    let paca = t
        .user(
            "coord.paca@impact.test",
            Role::Coordinateur,
            Some("region:93"),
            &[],
        )
        .await;
    let c = t.login_as(&idf).await;
    let (status, page) = html(&t, &c, REPORT).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Périmètre : Île-de-France"), "{page}");
    for (code, _) in BETWEEN {
        assert!(page.contains(&format!("commune:{code}")), "{code}");
    }
    assert!(!page.contains("commune:13055"), "Marseille is not theirs");

    let c = t.login_as(&paca).await;
    let (status, page) = html(&t, &c, REPORT).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Périmètre : Provence-Alpes-Côte d'Azur"),
        "{page}"
    );
    assert!(
        page.contains("Demandeurs dont la réponse change : 0"),
        "{page}"
    );
    for (code, _) in BETWEEN {
        assert!(!page.contains(&format!("commune:{code}")), "{code}");
    }
    let csv = t
        .get_with(
            &c,
            "/admin/impact/export.csv?brouillon=seuil-20000&mesure=axe3.v1.formation&cout=100000&date_depot=2021-06-01",
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1, "the header only:\n{csv}");
}

#[tokio::test]
async fn other_roles_are_refused_and_visitors_sent_to_log_in() {
    let (t, _) = spawn_with_drafts().await;
    let r = client().get(t.url(REPORT)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/connexion"));
    let r = client()
        .get(t.url("/admin/impact/export.csv?brouillon=seuil-20000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    for (email, role, service, collectivites) in [
        ("instr@impact.test", Role::Instructeur, Some("95"), vec![]),
        ("expert@impact.test", Role::Expert, Some("95"), vec![]),
        (
            "agent@impact.test",
            Role::Demandeur,
            None,
            vec!["commune:95127"],
        ),
    ] {
        let email = t.user(email, role, service, &collectivites).await;
        let c = t.login_as(&email).await;
        let (status, page) = html(&t, &c, REPORT).await;
        assert_eq!(status, 403, "{email}");
        assert!(!page.contains("commune:78073"), "{email}");
        let r = t
            .get_with(&c, "/admin/impact/export.csv?brouillon=seuil-20000")
            .await;
        assert_eq!(r.status(), 403, "{email}");
        let (_, espace) = html(&t, &c, "/espace").await;
        assert!(
            !espace.contains("href=\"/admin/impact\""),
            "{email}: not in the menu"
        );
    }
}

#[tokio::test]
async fn only_a_listed_draft_is_ever_loaded() {
    let (t, _) = spawn_with_drafts().await;
    let admin = t
        .user("admin@impact.test", Role::Administrateur, None, &[])
        .await;
    let c = t.login_as(&admin).await;
    // A folder outside the drafts directory, reached by a relative path, by a symbolic link,
    // or by a hidden name: refused, and nothing is compared.
    for name in [
        "../ailleurs",
        "..%2Failleurs",
        "lien",
        ".cache",
        "/etc",
        "seuil-20000/",
    ] {
        let (status, page) = html(
            &t,
            &c,
            &format!("/admin/impact?brouillon={name}&cout=100000&date_depot=2021-06-01"),
        )
        .await;
        assert_eq!(status, 200, "{name}");
        assert!(page.contains("brouillon inconnu"), "{name}: {page}");
        assert!(
            !page.contains("Demandeurs dont la réponse change"),
            "{name}"
        );
        let r = t
            .get_with(&c, &format!("/admin/impact/export.csv?brouillon={name}"))
            .await;
        assert_eq!(r.status(), 400, "{name}");
    }
    // A draft that does not load: its diagnostics, paths relative to the drafts directory.
    let (status, page) = html(&t, &c, "/admin/impact?brouillon=casse").await;
    assert_eq!(status, 200);
    assert!(page.contains("Le brouillon ne se charge pas"), "{page}");
    assert!(page.contains("<code>casse/parametres.yaml:"), "{page}");
    // Bad fields get their message beside them.
    let (_, page) = html(
        &t,
        &c,
        "/admin/impact?brouillon=seuil-20000&cout=beaucoup&date_depot=2021-06-01",
    )
    .await;
    assert!(page.contains("id=\"cout-erreur\""), "{page}");
    let (_, page) = html(
        &t,
        &c,
        "/admin/impact?brouillon=seuil-20000&date_depot=juin",
    )
    .await;
    assert!(page.contains("id=\"date_depot-erreur\""), "{page}");
}

#[tokio::test]
async fn without_a_drafts_directory_the_page_says_how_to_configure_one() {
    let t = crate::common::spawn_app().await;
    let admin = t
        .user("admin@impact.test", Role::Administrateur, None, &[])
        .await;
    let c = t.login_as(&admin).await;
    let (status, page) = html(&t, &c, "/admin/impact?brouillon=seuil-20000").await;
    assert_eq!(status, 200);
    assert!(page.contains("GUICHET_BROUILLONS_DIR"), "{page}");
    assert!(!page.contains("Demandeurs dont la réponse change"));
}

#[tokio::test]
async fn many_changes_are_paginated() {
    let dir = guichet_testkit::temp_dir().join("brouillons");
    // A draft that sets axe 3's rate to 90 % everywhere (in Île-de-France too, whatever the
    // population): every applicant changes on the axe 3 volet 1 measures, more than a page.
    copy_itn7(&dir.join("tout"));
    edit(
        &dir.join("tout/parametres.yaml"),
        "          valeur: 15000\n",
        "          valeur: 100000000\n",
    );
    edit(
        &dir.join("tout/parametres.yaml"),
        "        valeur: 100 %\n        source: \"[001] « Le financement accordé",
        "        valeur: 90 %\n        source: \"[001] « Le financement accordé",
    );
    let d = dir.clone();
    let t = spawn_with(move |c| c.brouillons_dir = Some(d)).await;
    let admin = t
        .user("admin@impact.test", Role::Administrateur, None, &[])
        .await;
    let c = t.login_as(&admin).await;
    let (status, page) = html(
        &t,
        &c,
        "/admin/impact?brouillon=tout&cout=100000&date_depot=2021-06-01",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Lignes 1 à 100"), "{page}");
    let next = "/admin/impact?brouillon=tout&cout=100000&date_depot=2021-06-01&page=2#demandeurs";
    assert!(page.contains(next), "{page}");
    let (_, page2) = html(
        &t,
        &c,
        "/admin/impact?brouillon=tout&cout=100000&date_depot=2021-06-01&page=2",
    )
    .await;
    assert!(page2.contains("Lignes 101 à"), "{page2}");
    assert!(page2.contains("Précédents"));
}
