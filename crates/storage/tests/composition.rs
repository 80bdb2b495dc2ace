//! Storage that composes: atomic attempt counts, write transactions under contention,
//! optimistic versions, typed rows that refuse corrupt values, constraint violations mapped once.
//! On the backend the suite runs against (SQLite, or PostgreSQL with GUICHET_TEST_DATABASE).

use guichet_domain::{Role, ServiceKind};
use guichet_storage::accounts::{self, AttemptRule, NewService};
use guichet_storage::sql::{current_version, versioned_update};
use guichet_storage::{Db, StorageError};
use sea_query::Value;

const NOW: &str = "2021-06-01T07:00:00.000000Z";
const CUTOFF: &str = "2021-06-01T06:00:00.000000Z";
const LOCK: &str = "2021-06-01T07:01:00.000000Z";

async fn fresh(max_connections: u32) -> Db {
    let dir = guichet_testkit::temp_dir();
    let db = Db::connect(
        &guichet_testkit::fresh_database_url(&dir).await,
        max_connections,
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    db
}

fn rule(limit: i64) -> AttemptRule<'static> {
    AttemptRule {
        limit,
        window_cutoff: CUTOFF,
        locks: [LOCK; 5],
    }
}

#[tokio::test]
async fn twenty_parallel_attempts_are_each_counted_once() {
    let db = fresh(8).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            accounts::count_attempt(&db, "ip:192.0.2.1", NOW, &rule(100))
                .await
                .unwrap()
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.allowed);
        counts.push(a.count);
    }
    counts.sort();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<i64>>(),
        "each count seen once"
    );
    assert_eq!(
        accounts::attempt_count(&db, "ip:192.0.2.1").await.unwrap(),
        20
    );
}

#[tokio::test]
async fn a_parallel_burst_gets_exactly_the_limit_through() {
    let db = fresh(8).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            accounts::count_attempt(&db, "paire:a@exemple.fr|192.0.2.1", NOW, &rule(5))
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        let a = t.await.unwrap();
        if a.allowed {
            allowed += 1;
        } else {
            assert_eq!(a.locked_until.as_deref(), Some(LOCK));
        }
    }
    assert_eq!(allowed, 5);
    // Refused attempts are not counted.
    assert_eq!(
        accounts::attempt_count(&db, "paire:a@exemple.fr|192.0.2.1")
            .await
            .unwrap(),
        5
    );
    // After the lock, the next attempt gets through and sets the next delay.
    let later = AttemptRule {
        limit: 5,
        window_cutoff: CUTOFF,
        locks: [
            "2021-06-01T07:03:00.000000Z",
            "2021-06-01T07:04:00.000000Z",
            "2021-06-01T07:05:00.000000Z",
            "2021-06-01T07:06:00.000000Z",
            "2021-06-01T07:07:00.000000Z",
        ],
    };
    let a = accounts::count_attempt(
        &db,
        "paire:a@exemple.fr|192.0.2.1",
        "2021-06-01T07:02:00.000000Z",
        &later,
    )
    .await
    .unwrap();
    assert!(a.allowed);
    assert_eq!(a.count, 6);
    assert_eq!(
        a.locked_until.as_deref(),
        Some("2021-06-01T07:04:00.000000Z"),
        "second delay"
    );
}

#[tokio::test]
async fn read_then_write_transactions_wait_for_each_other() {
    let db = fresh(8).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                let mut tx = db.begin_write().await?;
                // SQLite: the IMMEDIATE transaction holds the write lock from its start.
                // PostgreSQL: the row lock is asked for by the read that decides the write.
                let read = match db.backend() {
                    guichet_storage::Backend::Sqlite => "SELECT seq FROM audit_head WHERE id = 1",
                    guichet_storage::Backend::Postgres => {
                        "SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"
                    }
                };
                let seq: i64 = sqlx::query_scalar(read).fetch_one(&mut *tx).await?;
                sqlx::query("UPDATE audit_head SET seq = $1 WHERE id = 1")
                    .bind(seq + 1)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok::<(), StorageError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("no busy error");
    }
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(seq, 64, "no lost update");
}

async fn a_service(db: &Db) -> i64 {
    let mut conn = db.acquire().await.unwrap();
    accounts::ensure_service(
        &mut conn,
        &NewService {
            code: "pref-95",
            kind: ServiceKind::PrefectureDepartementale,
            name: "Préfecture du Val-d'Oise",
            territory_code: "95",
            region_code: Some("11"),
        },
        NOW,
    )
    .await
    .unwrap()
    .0
    .id
}

#[tokio::test]
async fn a_versioned_update_refuses_to_overwrite_an_unseen_change() {
    let db = fresh(2).await;
    let id = a_service(&db).await;
    let seen = current_version(&db, "services", id).await.unwrap();
    assert_eq!(seen, Some(0));
    let v = versioned_update(
        &db,
        "services",
        id,
        0,
        vec![("name", Value::from("Préfecture renommée"))],
        "ce service",
    )
    .await
    .unwrap();
    assert_eq!(v, 1);
    // A second writer that read version 0 is refused, and its change is not written.
    let e = versioned_update(
        &db,
        "services",
        id,
        0,
        vec![("name", Value::from("Autre nom"))],
        "ce service",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StorageError::Stale("ce service")), "{e:?}");
    assert!(e.to_string().contains("modifié entre-temps"), "{e}");
    let s = accounts::find_service(&db, id).await.unwrap().unwrap();
    assert_eq!(s.name, "Préfecture renommée");
}

#[tokio::test]
async fn a_corrupt_timestamp_or_an_unknown_role_is_an_error_not_a_default() {
    let db = fresh(2).await;
    let id = accounts::insert_user(&db, "a@exemple.fr", "A", Role::Demandeur, None, NOW)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = 'pirate' WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
    let e = accounts::find_user(&db, id).await.unwrap_err();
    assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
    assert!(e.to_string().contains("pirate"), "{e}");

    sqlx::query("UPDATE users SET role = 'demandeur', created_at = 'hier' WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
    let e = accounts::find_user(&db, id).await.unwrap_err();
    assert!(e.to_string().contains("horodatage illisible"), "{e}");
}

#[tokio::test]
async fn constraint_violations_become_typed_errors_with_a_french_message() {
    let db = fresh(2).await;
    let service = a_service(&db).await;
    accounts::insert_user(
        &db,
        "a@exemple.fr",
        "A",
        Role::Instructeur,
        Some(service),
        NOW,
    )
    .await
    .unwrap();
    let e = accounts::insert_user(&db, "a@exemple.fr", "B", Role::Instructeur, None, NOW)
        .await
        .unwrap_err();
    match &e {
        StorageError::Conflict(v) => {
            assert_eq!(v.constraint, "users_email_key");
            assert!(v.message.contains("un compte existe déjà"));
        }
        other => panic!("{other:?}"),
    }
    let e = accounts::insert_user(&db, "b@exemple.fr", "B", Role::Instructeur, Some(9999), NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::ForeignKey(_)), "{e:?}");
    assert!(e.to_string().contains("n’existe pas"), "{e}");
}
