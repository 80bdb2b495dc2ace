//! The job queue seen by the administrator: a failing job backs off, dies after its attempts,
//! is listed on /admin/travaux with its error, and is retried from there (CSRF-checked,
//! audited) until done.

use crate::common::spawn_app;
use guichet_app::jobs::{Job, JobError, Registry, DEAD, DONE, PENDING};
use guichet_app::App;
use guichet_domain::Role;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flaky {
    dossier: String,
}

impl Job for Flaky {
    const KIND: &'static str = "test.capricieux";
    const MAX_ATTEMPTS: i64 = 3;
}

#[tokio::test]
async fn a_dead_job_is_shown_to_the_administrator_and_retried_from_the_page() {
    let t = spawn_app().await;
    let admin = t
        .user("admin@exemple.fr", Role::Administrateur, None, &[])
        .await;
    let applicant = t.applicant().await;
    let failing = Arc::new(AtomicBool::new(true));
    let mut registry = Registry::standard(&t.app);
    let flag = failing.clone();
    registry.register(move |_app: App, j: Flaky| {
        let failing = flag.load(Ordering::SeqCst);
        async move {
            if failing {
                Err(JobError::Retry(format!(
                    "entrepôt de documents injoignable pour {}",
                    j.dossier
                )))
            } else {
                Ok(())
            }
        }
    });
    t.restart_workers(registry, 2).await;
    let id = {
        let mut conn = guichet_app::testing::db(&t.app)
            .pool()
            .acquire()
            .await
            .unwrap();
        t.app
            .enqueue(
                &mut conn,
                &Flaky {
                    dossier: "D-2021-0042".into(),
                },
            )
            .await
            .unwrap()
    };
    t.app.wake_workers();

    // Three attempts, 30 s then 60 s apart, then dead.
    for (attempt, delay) in [(1, 30), (2, 60)] {
        t.settle().await;
        let j = t.app.jobs().get(id).await.unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.attempts), (PENDING, attempt));
        t.app.clock.advance(chrono::Duration::seconds(delay + 1));
        t.app.wake_workers();
    }
    t.settle().await;
    let j = t.app.jobs().get(id).await.unwrap().unwrap();
    assert_eq!((j.state.as_str(), j.attempts), (DEAD, 3));

    // Only the administrator sees the page.
    let anonymous = t.get("/admin/travaux").await;
    assert_eq!(anonymous.status(), 303);
    let c = t.login_as(&applicant).await;
    assert_eq!(t.get_with(&c, "/admin/travaux").await.status(), 403);
    let csrf = t.csrf(&c, "/espace").await;
    let r = t
        .post_form(
            &c,
            &format!("/admin/travaux/{id}/relancer"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 403, "un demandeur ne relance rien");

    let a = t.login_as(&admin).await;
    let html = t.get_with(&a, "/admin/travaux").await.text().await.unwrap();
    assert!(html.contains("Travaux en échec définitif"), "{html}");
    assert!(html.contains("test.capricieux"), "{html}");
    assert!(
        html.contains(
            "entrepôt de documents injoignable pour D-2021-0042 (abandon après 3 tentatives)"
        ),
        "{html}"
    );
    assert!(html.contains("En échec définitif : 1"), "{html}");
    assert!(html.contains(&format!("action=\"/admin/travaux/{id}/relancer\"")));
    assert!(html.contains("Relancer<span class=\"fr-sr-only\"> le travail n°"));

    // Without the form's token, the retry is refused and nothing moves.
    let r = t
        .post_form(&a, &format!("/admin/travaux/{id}/relancer"), &[])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(t.app.jobs().get(id).await.unwrap().unwrap().state, DEAD);

    // The cause is fixed; the administrator retries it: it runs at once and is done.
    failing.store(false, Ordering::SeqCst);
    let csrf = crate::common::csrf_in(&html).unwrap();
    let r = t
        .post_form(
            &a,
            &format!("/admin/travaux/{id}/relancer"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("/admin/travaux?relance={id}"));
    t.settle().await;
    let j = t.app.jobs().get(id).await.unwrap().unwrap();
    assert_eq!(j.state, DONE);
    assert_eq!(j.attempts, 1, "les essais repartent de zéro");
    let html = t.get_with(&a, &location).await.text().await.unwrap();
    assert!(html.contains(&format!("Le travail n° {id} est remis dans la file")));
    assert!(html.contains("Aucun travail en échec définitif."), "{html}");

    // Retrying a job that is not dead is a conflict, explained.
    let r = t
        .post_form(
            &a,
            &format!("/admin/travaux/{id}/relancer"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("en échec définitif"));
    let r = t
        .post_form(&a, "/admin/travaux/999999/relancer", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 404);

    // The retry is in the audit log, by the administrator.
    let journal = t.get_with(&a, "/admin/journal").await.text().await.unwrap();
    assert!(journal.contains("travail.relance"), "{journal}");
    assert!(journal.contains(&format!("travail {id}")), "{journal}");
}
