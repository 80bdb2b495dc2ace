//! The real 2021 and 2026 vintages, from the npm packages installed by `npm ci`. With CI set, the
//! packages must be there; elsewhere the test says it cannot run and fails too, so that a
//! missing install step is never mistaken for a pass.

use crate::common::spawn_with_npm_dir;
use serde_json::Value;
use std::path::PathBuf;

#[tokio::test]
async fn the_real_2021_vintage_has_35059_communes_and_cergy_first() {
    let npm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules");
    assert!(
        npm.join("decoupage-administratif-2021/package.json")
            .exists(),
        "paquets npm absents : lancez « npm ci » (le script de test le fait)"
    );
    let t = spawn_with_npm_dir(npm).await;
    let imports = t.app.referentiel().imports().await.unwrap();
    let y2021 = imports.iter().find(|i| i.vintage == 2021).unwrap();
    assert_eq!(y2021.communes, 35_059);
    assert_eq!(y2021.source, "@etalab/decoupage-administratif@1.1.1");
    let body: Value = t
        .get("/api/v1/collectivites?q=cergy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["resultats"][0]["nom"], "Cergy");
    assert_eq!(body["resultats"][0]["population"], 65_911);
    let paris: Value = t
        .get("/api/v1/collectivites/region/11?millesime=2021")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paris["nom"], "Île-de-France");
    assert!(paris["populations"][0]["population"].as_i64().unwrap() > 12_000_000);
}
