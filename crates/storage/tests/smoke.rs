//! Migrations and a round trip through the query layer on SQLite (and PostgreSQL when
//! GUICHET_TEST_PG_URL names a server).

use guichet_storage::{accounts, audit, Db};

async fn exercise(db: &Db) {
    db.migrate().await.unwrap();
    // Idempotent: a second run applies nothing.
    assert!(db.migrate().await.unwrap().is_empty());
    let mut conn = db.pool().acquire().await.unwrap();
    let (svc, created) = accounts::ensure_service(
        &mut conn,
        &accounts::NewService {
            code: "pref-95",
            kind: "prefecture-departementale",
            name: "Préfecture du Val-d'Oise",
            territory_code: "95",
            region_code: Some("11"),
        },
        "2021-06-01T07:00:00.000000Z",
    )
    .await
    .unwrap();
    assert!(created);
    let id = accounts::insert_user(
        &mut conn,
        "a@example.fr",
        "A",
        "instructeur",
        Some(svc.id),
        "2021-06-01T07:00:00.000000Z",
    )
    .await
    .unwrap();
    let dup = accounts::insert_user(
        &mut conn,
        "a@example.fr",
        "A",
        "instructeur",
        Some(svc.id),
        "2021-06-01T07:00:00.000000Z",
    )
    .await;
    assert!(dup.unwrap_err().is_conflict());
    let u = accounts::find_user(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(u.service_id, Some(svc.id));
    let seq = audit::append(
        &mut conn,
        &audit::NewEntry {
            at: "t",
            actor: "cli",
            action: "x",
            object_type: "u",
            object_id: "1",
            before: None,
            after: Some("{}"),
        },
    )
    .await
    .unwrap();
    assert_eq!(seq, 1);
    let p = audit::page(&mut conn, 0, 10).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].computed_hash(), p[0].hash);
}

#[tokio::test]
async fn sqlite_round_trip() {
    let dir = std::env::temp_dir().join(format!("guichet-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/db.sqlite", dir.display());
    let db = Db::connect(&url, 2).await.unwrap();
    exercise(&db).await;
}

#[tokio::test]
async fn postgres_round_trip() {
    let Ok(base) = std::env::var("GUICHET_TEST_PG_URL") else {
        return;
    };
    let admin = Db::connect(&base, 1).await.unwrap();
    let name = format!("guichet_smoke_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let db = Db::connect(&url, 2).await.unwrap();
    exercise(&db).await;
}
