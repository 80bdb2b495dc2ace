//! Who may see what: for each role and territory, every scoped page and API route answers 200,
//! 403 or 404 as it must. An instructor of Val-d'Oise never sees Yvelines data.

use crate::common::{client, spawn_app, TestApp};
use guichet_app::audit::Actor;
use guichet_domain::access::ServiceTarget;
use guichet_domain::Role;
use serde_json::Value;

const USERS: [&str; 10] = [
    "admin",
    "coord-idf",
    "coord-paca",
    "instr-95",
    "instr-78",
    "instr-dinum",
    "expert-95",
    "comite-95",
    "demandeur-cergy",
    "demandeur-versailles",
];

async fn people(t: &TestApp) -> Vec<reqwest::Client> {
    let specs: [(Role, Option<&str>, &[&str]); 10] = [
        (Role::Administrateur, None, &[]),
        (Role::Coordinateur, Some("region:11"), &[]),
        (Role::Coordinateur, Some("region:93"), &[]),
        (Role::Instructeur, Some("95"), &[]),
        (Role::Instructeur, Some("78"), &[]),
        (Role::Instructeur, Some("DINUM"), &[]),
        (Role::Expert, Some("95"), &[]),
        (Role::MembreComite, Some("95"), &[]),
        (Role::Demandeur, None, &["commune:95127"]),
        (Role::Demandeur, None, &["commune:78646"]),
    ];
    let mut clients = Vec::new();
    for (name, (role, service, collectivites)) in USERS.iter().zip(specs) {
        let email = t
            .user(
                &format!("{name}@matrice.test"),
                role,
                service,
                collectivites,
            )
            .await;
        clients.push(t.login_as(&email).await);
    }
    clients
}

async fn service_id(t: &TestApp, code: &str) -> i64 {
    t.app
        .services()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.code == code)
        .map(|s| s.id)
        .unwrap_or_else(|| panic!("service {code}"))
}

#[tokio::test]
async fn every_role_sees_its_territory_and_nothing_else() {
    let t = spawn_app().await;
    let clients = people(&t).await;
    t.app
        .ensure_service(&ServiceTarget::parse("13").unwrap(), Actor::Cli)
        .await
        .unwrap();
    let s95 = service_id(&t, "pref-95").await;
    let s78 = service_id(&t, "pref-78").await;
    let s11 = service_id(&t, "pref-reg-11").await;
    let s13 = service_id(&t, "pref-13").await;
    let dinum = service_id(&t, "DINUM").await;
    //                                                    admin coord coord  i95  i78 idinum e95  c95 dCergy dVers
    //                                                          IdF   PACA
    let scoped: Vec<(String, [u16; 10])> = vec![
        (
            format!("/espace/services/{s95}"),
            [200, 200, 403, 200, 403, 403, 200, 200, 403, 403],
        ),
        (
            format!("/espace/services/{s78}"),
            [200, 200, 403, 403, 200, 403, 403, 403, 403, 403],
        ),
        (
            format!("/espace/services/{s11}"),
            [200, 200, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            format!("/espace/services/{s13}"),
            [200, 403, 200, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            format!("/espace/services/{dinum}"),
            [200, 403, 403, 403, 403, 200, 403, 403, 403, 403],
        ),
        ("/espace/services/999999".to_string(), [404; 10]),
        (
            "/espace/collectivites/commune/95127".to_string(),
            [200, 200, 403, 200, 403, 200, 403, 403, 200, 403],
        ),
        (
            "/espace/collectivites/commune/78646".to_string(),
            [200, 200, 403, 403, 200, 200, 403, 403, 403, 200],
        ),
        // CA de Cergy-Pontoise straddles Val-d'Oise and Yvelines (Maurecourt, 78380 is a member):
        // both départements' instructors see it.
        (
            "/espace/collectivites/epci/249500109".to_string(),
            [200, 200, 403, 200, 200, 200, 403, 403, 403, 403],
        ),
        (
            "/espace/collectivites/commune/13055".to_string(),
            [200, 403, 200, 403, 403, 200, 403, 403, 403, 403],
        ),
        ("/espace/collectivites/commune/99999".to_string(), [404; 10]),
    ];
    let pages_only: Vec<(&str, [u16; 10])> = vec![
        ("/espace", [200; 10]),
        (
            "/espace/services",
            [200, 200, 200, 200, 200, 200, 200, 200, 403, 403],
        ),
        (
            "/admin/utilisateurs",
            [200, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "/admin/journal",
            [200, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        ),
    ];
    let mut failures = Vec::new();
    let anonymous = client();
    let api_path = |page: &str| {
        if let Some(rest) = page.strip_prefix("/espace/services/") {
            format!("/api/v1/services/{rest}")
        } else {
            format!(
                "/api/v1/collectivites/{}/agents",
                page.trim_start_matches("/espace/collectivites/")
            )
        }
    };
    for (path, expected) in &scoped {
        for (i, c) in clients.iter().enumerate() {
            let got = t.get_with(c, path).await.status().as_u16();
            if got != expected[i] {
                failures.push(format!(
                    "{} GET {path}: {got}, attendu {}",
                    USERS[i], expected[i]
                ));
            }
            let api = api_path(path);
            let got = t.get_with(c, &api).await.status().as_u16();
            if got != expected[i] {
                failures.push(format!(
                    "{} GET {api}: {got}, attendu {}",
                    USERS[i], expected[i]
                ));
            }
        }
        assert_eq!(
            t.get_with(&anonymous, path).await.status(),
            303,
            "anonyme {path}"
        );
        assert_eq!(
            t.get_with(&anonymous, &api_path(path)).await.status(),
            401,
            "anonyme API {path}"
        );
    }
    for (path, expected) in &pages_only {
        for (i, c) in clients.iter().enumerate() {
            let got = t.get_with(c, path).await.status().as_u16();
            if got != expected[i] {
                failures.push(format!(
                    "{} GET {path}: {got}, attendu {}",
                    USERS[i], expected[i]
                ));
            }
        }
        assert_eq!(
            t.get_with(&anonymous, path).await.status(),
            303,
            "anonyme {path}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Lists are filtered too, not only the detail pages.
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"].as_str().unwrap().to_string())
            .collect()
    };
    let i95: Value = t
        .get_with(&clients[3], "/api/v1/services")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(i95), ["pref-95"]);
    let coord: Value = t
        .get_with(&clients[1], "/api/v1/services")
        .await
        .json()
        .await
        .unwrap();
    let mut coord = names(coord);
    coord.sort();
    assert_eq!(coord, ["pref-78", "pref-95", "pref-reg-11"]);
    let cergy: Value = t
        .get_with(&clients[8], "/api/v1/services")
        .await
        .json()
        .await
        .unwrap();
    assert!(names(cergy).is_empty());
    let html = t
        .get_with(&clients[3], "/espace")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Préfecture du Val-d&#x27;Oise")
            || html.contains("Préfecture du Val-d&#39;Oise")
    );
    assert!(
        !html.contains("Yvelines"),
        "rien des Yvelines dans l’espace d’un instructeur du Val-d’Oise"
    );
}
