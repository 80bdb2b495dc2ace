//! Migrations and a round trip through the query layer, on the backend the suite runs against.

use guichet_storage::{accounts, audit, Db};

#[tokio::test]
async fn migrations_apply_once_and_queries_round_trip() {
    let dir = guichet_testkit::temp_dir();
    let db = Db::connect(&guichet_testkit::fresh_database_url(&dir).await, 2)
        .await
        .unwrap();
    assert!(!db.migrate().await.unwrap().is_empty());
    // Idempotent: a second run applies nothing.
    assert!(db.migrate().await.unwrap().is_empty());
    let mut conn = db.pool().acquire().await.unwrap();
    let now = "2021-06-01T07:00:00.000000Z";
    let new = accounts::NewService {
        code: "pref-95",
        kind: guichet_domain::ServiceKind::PrefectureDepartementale,
        name: "Préfecture du Val-d'Oise",
        territory_code: "95",
        region_code: Some("11"),
    };
    let (svc, created) = accounts::ensure_service(&mut conn, &new, now)
        .await
        .unwrap();
    assert!(created);
    let (again, created) = accounts::ensure_service(&mut conn, &new, now)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, svc.id);
    let id = accounts::insert_user(
        &mut *conn,
        "a@exemple.fr",
        "A",
        guichet_domain::Role::Instructeur,
        Some(svc.id),
        now,
    )
    .await
    .unwrap();
    let dup = accounts::insert_user(
        &mut *conn,
        "a@exemple.fr",
        "A",
        guichet_domain::Role::Instructeur,
        Some(svc.id),
        now,
    )
    .await;
    assert!(dup.unwrap_err().is_conflict());
    let u = accounts::find_user(&mut *conn, id).await.unwrap().unwrap();
    assert_eq!(u.service_id, Some(svc.id));
    for n in 1..=3 {
        let entry = audit::NewEntry {
            at: now,
            actor: "cli",
            action: "essai",
            object_type: "utilisateur",
            object_id: "1",
            before: None,
            after: Some("{}"),
        };
        assert_eq!(audit::append(&mut conn, &entry).await.unwrap(), n);
    }
    let page = audit::page(&mut *conn, 0, 10).await.unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[1].prev_hash, page[0].hash);
    assert!(page.iter().all(|r| r.computed_hash() == r.hash));
}

#[tokio::test]
async fn a_malformed_url_is_explained() {
    let e = Db::connect("pas une url", 1).await.unwrap_err().to_string();
    assert!(e.contains("DATABASE_URL invalide"), "{e}");
    let e = Db::connect("mysql://localhost/x", 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("non pris en charge"), "{e}");
}
