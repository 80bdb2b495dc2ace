//! Who may see what. One table, one row per (resource, route, role and territory, expected
//! status): a new scoped route adds rows, not code. Every row is checked over HTTP; the
//! application's use cases are also called directly with a principal (the unscoped reads the
//! review found), and the SQL translation of each scope is compared with the domain's rule on
//! every collectivité and service of the fixture referential.

use crate::common::{admin, client, fixtures_npm_dir, spawn_app, TestApp, PASSWORD};
use guichet_app::accounts::{service_scope, NewUser};
use guichet_app::audit::Actor;
use guichet_app::Error as AppError;
use guichet_domain::access::ServiceTarget;
use guichet_domain::{CollectiviteKind, CollectiviteRef, Principal, Role, Vintage};
use serde_json::Value;
use std::collections::HashMap;

/// The people of the table: a role and where it acts.
const PERSONAS: [(&str, Role, Option<&str>, &[&str]); 11] = [
    ("administrateur", Role::Administrateur, None, &[]),
    (
        "coordinateur région:11",
        Role::Coordinateur,
        Some("region:11"),
        &[],
    ),
    (
        "coordinateur région:93",
        Role::Coordinateur,
        Some("region:93"),
        &[],
    ),
    ("instructeur 95", Role::Instructeur, Some("95"), &[]),
    ("instructeur 78", Role::Instructeur, Some("78"), &[]),
    ("instructeur DINUM", Role::Instructeur, Some("DINUM"), &[]),
    ("expert 95", Role::Expert, Some("95"), &[]),
    ("membre-comite 95", Role::MembreComite, Some("95"), &[]),
    (
        "demandeur commune:95127",
        Role::Demandeur,
        None,
        &["commune:95127"],
    ),
    (
        "demandeur commune:78646",
        Role::Demandeur,
        None,
        &["commune:78646"],
    ),
    ("demandeur région:11", Role::Demandeur, None, &["region:11"]),
];

/// (resource, route, persona, expected status). `{CODE}` in a route stands for the id of the
/// service of that code; "anonyme" is a visitor without a session.
///
/// A région's own space belongs to regional and national services only: a département's
/// instructor does not see the région's agents, though the région touches its département.
///
/// The instruction workspace (`/instruction…`) is for those who instruct
/// (`Action::InstructDossiers`: instructors, coordinators, administrators): everyone else is
/// refused there before any dossier is looked up (so an unknown number is 403 for them too),
/// the applicant of Cergy included, who will read the dossier in their own space. Inside it,
/// a dossier is seen by the services that instruct it (`{dossier-cergy}`: a Cergy dossier filed
/// to the Val-d'Oise prefecture), their région's coordinator and the administrators; the
/// national directorate does not instruct it. An empty queue is still a 200.
///
/// Filing (`/espace/dossiers…`) is for applicants (`Action::FileDossiers`), each seeing their
/// own collectivités' dossiers only: Cergy's dossier is Cergy's agent's, not the région's
/// agent's (a région is no party to a commune's dossier). The API's list is everyone's (each
/// sees what their scope holds, possibly nothing); one dossier there is seen as on the pages.
#[rustfmt::skip]
const ROWS: &[(&str, &str, &str, u16)] = &[
    ("service pref-95", "/espace/services/{pref-95}", "administrateur", 200),
    ("service pref-95", "/espace/services/{pref-95}", "coordinateur région:11", 200),
    ("service pref-95", "/espace/services/{pref-95}", "coordinateur région:93", 403),
    ("service pref-95", "/espace/services/{pref-95}", "instructeur 95", 200),
    ("service pref-95", "/espace/services/{pref-95}", "instructeur 78", 403),
    ("service pref-95", "/espace/services/{pref-95}", "instructeur DINUM", 403),
    ("service pref-95", "/espace/services/{pref-95}", "expert 95", 200),
    ("service pref-95", "/espace/services/{pref-95}", "membre-comite 95", 200),
    ("service pref-95", "/espace/services/{pref-95}", "demandeur commune:95127", 403),
    ("service pref-95", "/espace/services/{pref-95}", "demandeur commune:78646", 403),
    ("service pref-95", "/espace/services/{pref-95}", "demandeur région:11", 403),
    ("service pref-95", "/espace/services/{pref-95}", "anonyme", 303),
    ("service pref-95", "/api/v1/services/{pref-95}", "administrateur", 200),
    ("service pref-95", "/api/v1/services/{pref-95}", "coordinateur région:11", 200),
    ("service pref-95", "/api/v1/services/{pref-95}", "coordinateur région:93", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "instructeur 95", 200),
    ("service pref-95", "/api/v1/services/{pref-95}", "instructeur 78", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "instructeur DINUM", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "expert 95", 200),
    ("service pref-95", "/api/v1/services/{pref-95}", "membre-comite 95", 200),
    ("service pref-95", "/api/v1/services/{pref-95}", "demandeur commune:95127", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "demandeur commune:78646", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "demandeur région:11", 403),
    ("service pref-95", "/api/v1/services/{pref-95}", "anonyme", 401),
    ("service pref-78", "/espace/services/{pref-78}", "administrateur", 200),
    ("service pref-78", "/espace/services/{pref-78}", "coordinateur région:11", 200),
    ("service pref-78", "/espace/services/{pref-78}", "coordinateur région:93", 403),
    ("service pref-78", "/espace/services/{pref-78}", "instructeur 95", 403),
    ("service pref-78", "/espace/services/{pref-78}", "instructeur 78", 200),
    ("service pref-78", "/espace/services/{pref-78}", "instructeur DINUM", 403),
    ("service pref-78", "/espace/services/{pref-78}", "expert 95", 403),
    ("service pref-78", "/espace/services/{pref-78}", "membre-comite 95", 403),
    ("service pref-78", "/espace/services/{pref-78}", "demandeur commune:95127", 403),
    ("service pref-78", "/espace/services/{pref-78}", "demandeur commune:78646", 403),
    ("service pref-78", "/espace/services/{pref-78}", "demandeur région:11", 403),
    ("service pref-78", "/espace/services/{pref-78}", "anonyme", 303),
    ("service pref-78", "/api/v1/services/{pref-78}", "administrateur", 200),
    ("service pref-78", "/api/v1/services/{pref-78}", "coordinateur région:11", 200),
    ("service pref-78", "/api/v1/services/{pref-78}", "coordinateur région:93", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "instructeur 95", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "instructeur 78", 200),
    ("service pref-78", "/api/v1/services/{pref-78}", "instructeur DINUM", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "expert 95", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "membre-comite 95", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "demandeur commune:95127", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "demandeur commune:78646", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "demandeur région:11", 403),
    ("service pref-78", "/api/v1/services/{pref-78}", "anonyme", 401),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "administrateur", 200),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "coordinateur région:11", 200),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "coordinateur région:93", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "instructeur 95", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "instructeur 78", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "instructeur DINUM", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "expert 95", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "membre-comite 95", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "demandeur commune:95127", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "demandeur commune:78646", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "demandeur région:11", 403),
    ("service pref-reg-11", "/espace/services/{pref-reg-11}", "anonyme", 303),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "administrateur", 200),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "coordinateur région:11", 200),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "coordinateur région:93", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "instructeur 95", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "instructeur 78", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "instructeur DINUM", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "expert 95", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "membre-comite 95", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "demandeur commune:95127", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "demandeur commune:78646", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "demandeur région:11", 403),
    ("service pref-reg-11", "/api/v1/services/{pref-reg-11}", "anonyme", 401),
    ("service pref-13", "/espace/services/{pref-13}", "administrateur", 200),
    ("service pref-13", "/espace/services/{pref-13}", "coordinateur région:11", 403),
    ("service pref-13", "/espace/services/{pref-13}", "coordinateur région:93", 200),
    ("service pref-13", "/espace/services/{pref-13}", "instructeur 95", 403),
    ("service pref-13", "/espace/services/{pref-13}", "instructeur 78", 403),
    ("service pref-13", "/espace/services/{pref-13}", "instructeur DINUM", 403),
    ("service pref-13", "/espace/services/{pref-13}", "expert 95", 403),
    ("service pref-13", "/espace/services/{pref-13}", "membre-comite 95", 403),
    ("service pref-13", "/espace/services/{pref-13}", "demandeur commune:95127", 403),
    ("service pref-13", "/espace/services/{pref-13}", "demandeur commune:78646", 403),
    ("service pref-13", "/espace/services/{pref-13}", "demandeur région:11", 403),
    ("service pref-13", "/espace/services/{pref-13}", "anonyme", 303),
    ("service pref-13", "/api/v1/services/{pref-13}", "administrateur", 200),
    ("service pref-13", "/api/v1/services/{pref-13}", "coordinateur région:11", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "coordinateur région:93", 200),
    ("service pref-13", "/api/v1/services/{pref-13}", "instructeur 95", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "instructeur 78", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "instructeur DINUM", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "expert 95", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "membre-comite 95", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "demandeur commune:95127", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "demandeur commune:78646", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "demandeur région:11", 403),
    ("service pref-13", "/api/v1/services/{pref-13}", "anonyme", 401),
    ("service DINUM", "/espace/services/{DINUM}", "administrateur", 200),
    ("service DINUM", "/espace/services/{DINUM}", "coordinateur région:11", 403),
    ("service DINUM", "/espace/services/{DINUM}", "coordinateur région:93", 403),
    ("service DINUM", "/espace/services/{DINUM}", "instructeur 95", 403),
    ("service DINUM", "/espace/services/{DINUM}", "instructeur 78", 403),
    ("service DINUM", "/espace/services/{DINUM}", "instructeur DINUM", 200),
    ("service DINUM", "/espace/services/{DINUM}", "expert 95", 403),
    ("service DINUM", "/espace/services/{DINUM}", "membre-comite 95", 403),
    ("service DINUM", "/espace/services/{DINUM}", "demandeur commune:95127", 403),
    ("service DINUM", "/espace/services/{DINUM}", "demandeur commune:78646", 403),
    ("service DINUM", "/espace/services/{DINUM}", "demandeur région:11", 403),
    ("service DINUM", "/espace/services/{DINUM}", "anonyme", 303),
    ("service DINUM", "/api/v1/services/{DINUM}", "administrateur", 200),
    ("service DINUM", "/api/v1/services/{DINUM}", "coordinateur région:11", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "coordinateur région:93", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "instructeur 95", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "instructeur 78", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "instructeur DINUM", 200),
    ("service DINUM", "/api/v1/services/{DINUM}", "expert 95", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "membre-comite 95", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "demandeur commune:95127", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "demandeur commune:78646", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "demandeur région:11", 403),
    ("service DINUM", "/api/v1/services/{DINUM}", "anonyme", 401),
    ("service inconnu", "/espace/services/999999", "administrateur", 404),
    ("service inconnu", "/espace/services/999999", "coordinateur région:11", 404),
    ("service inconnu", "/espace/services/999999", "coordinateur région:93", 404),
    ("service inconnu", "/espace/services/999999", "instructeur 95", 404),
    ("service inconnu", "/espace/services/999999", "instructeur 78", 404),
    ("service inconnu", "/espace/services/999999", "instructeur DINUM", 404),
    ("service inconnu", "/espace/services/999999", "expert 95", 404),
    ("service inconnu", "/espace/services/999999", "membre-comite 95", 404),
    ("service inconnu", "/espace/services/999999", "demandeur commune:95127", 404),
    ("service inconnu", "/espace/services/999999", "demandeur commune:78646", 404),
    ("service inconnu", "/espace/services/999999", "demandeur région:11", 404),
    ("service inconnu", "/espace/services/999999", "anonyme", 303),
    ("service inconnu", "/api/v1/services/999999", "administrateur", 404),
    ("service inconnu", "/api/v1/services/999999", "coordinateur région:11", 404),
    ("service inconnu", "/api/v1/services/999999", "coordinateur région:93", 404),
    ("service inconnu", "/api/v1/services/999999", "instructeur 95", 404),
    ("service inconnu", "/api/v1/services/999999", "instructeur 78", 404),
    ("service inconnu", "/api/v1/services/999999", "instructeur DINUM", 404),
    ("service inconnu", "/api/v1/services/999999", "expert 95", 404),
    ("service inconnu", "/api/v1/services/999999", "membre-comite 95", 404),
    ("service inconnu", "/api/v1/services/999999", "demandeur commune:95127", 404),
    ("service inconnu", "/api/v1/services/999999", "demandeur commune:78646", 404),
    ("service inconnu", "/api/v1/services/999999", "demandeur région:11", 404),
    ("service inconnu", "/api/v1/services/999999", "anonyme", 401),
    ("commune Cergy", "/espace/collectivites/commune/95127", "administrateur", 200),
    ("commune Cergy", "/espace/collectivites/commune/95127", "coordinateur région:11", 200),
    ("commune Cergy", "/espace/collectivites/commune/95127", "coordinateur région:93", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "instructeur 95", 200),
    ("commune Cergy", "/espace/collectivites/commune/95127", "instructeur 78", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "instructeur DINUM", 200),
    ("commune Cergy", "/espace/collectivites/commune/95127", "expert 95", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "membre-comite 95", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "demandeur commune:95127", 200),
    ("commune Cergy", "/espace/collectivites/commune/95127", "demandeur commune:78646", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "demandeur région:11", 403),
    ("commune Cergy", "/espace/collectivites/commune/95127", "anonyme", 303),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "administrateur", 200),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "coordinateur région:11", 200),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "coordinateur région:93", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "instructeur 95", 200),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "instructeur 78", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "instructeur DINUM", 200),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "expert 95", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "membre-comite 95", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "demandeur commune:95127", 200),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "demandeur commune:78646", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "demandeur région:11", 403),
    ("commune Cergy", "/api/v1/collectivites/commune/95127/agents", "anonyme", 401),
    ("commune Versailles", "/espace/collectivites/commune/78646", "administrateur", 200),
    ("commune Versailles", "/espace/collectivites/commune/78646", "coordinateur région:11", 200),
    ("commune Versailles", "/espace/collectivites/commune/78646", "coordinateur région:93", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "instructeur 95", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "instructeur 78", 200),
    ("commune Versailles", "/espace/collectivites/commune/78646", "instructeur DINUM", 200),
    ("commune Versailles", "/espace/collectivites/commune/78646", "expert 95", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "membre-comite 95", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "demandeur commune:95127", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "demandeur commune:78646", 200),
    ("commune Versailles", "/espace/collectivites/commune/78646", "demandeur région:11", 403),
    ("commune Versailles", "/espace/collectivites/commune/78646", "anonyme", 303),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "administrateur", 200),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "coordinateur région:11", 200),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "coordinateur région:93", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "instructeur 95", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "instructeur 78", 200),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "instructeur DINUM", 200),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "expert 95", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "membre-comite 95", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "demandeur commune:95127", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "demandeur commune:78646", 200),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "demandeur région:11", 403),
    ("commune Versailles", "/api/v1/collectivites/commune/78646/agents", "anonyme", 401),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "administrateur", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "coordinateur région:11", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "coordinateur région:93", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "instructeur 95", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "instructeur 78", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "instructeur DINUM", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "expert 95", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "membre-comite 95", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "demandeur commune:95127", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "demandeur commune:78646", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "demandeur région:11", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/espace/collectivites/epci/249500109", "anonyme", 303),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "administrateur", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "coordinateur région:11", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "coordinateur région:93", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "instructeur 95", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "instructeur 78", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "instructeur DINUM", 200),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "expert 95", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "membre-comite 95", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "demandeur commune:95127", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "demandeur commune:78646", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "demandeur région:11", 403),
    ("EPCI Cergy-Pontoise, 95 et 78", "/api/v1/collectivites/epci/249500109/agents", "anonyme", 401),
    ("commune Marseille", "/espace/collectivites/commune/13055", "administrateur", 200),
    ("commune Marseille", "/espace/collectivites/commune/13055", "coordinateur région:11", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "coordinateur région:93", 200),
    ("commune Marseille", "/espace/collectivites/commune/13055", "instructeur 95", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "instructeur 78", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "instructeur DINUM", 200),
    ("commune Marseille", "/espace/collectivites/commune/13055", "expert 95", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "membre-comite 95", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "demandeur commune:95127", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "demandeur commune:78646", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "demandeur région:11", 403),
    ("commune Marseille", "/espace/collectivites/commune/13055", "anonyme", 303),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "administrateur", 200),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "coordinateur région:11", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "coordinateur région:93", 200),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "instructeur 95", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "instructeur 78", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "instructeur DINUM", 200),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "expert 95", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "membre-comite 95", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "demandeur commune:95127", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "demandeur commune:78646", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "demandeur région:11", 403),
    ("commune Marseille", "/api/v1/collectivites/commune/13055/agents", "anonyme", 401),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "administrateur", 200),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "coordinateur région:11", 200),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "coordinateur région:93", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "instructeur 95", 200),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "instructeur 78", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "instructeur DINUM", 200),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "expert 95", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "membre-comite 95", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "demandeur commune:95127", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "demandeur commune:78646", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "demandeur région:11", 403),
    ("département Val-d'Oise", "/espace/collectivites/departement/95", "anonyme", 303),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "administrateur", 200),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "coordinateur région:11", 200),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "coordinateur région:93", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "instructeur 95", 200),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "instructeur 78", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "instructeur DINUM", 200),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "expert 95", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "membre-comite 95", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "demandeur commune:95127", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "demandeur commune:78646", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "demandeur région:11", 403),
    ("département Val-d'Oise", "/api/v1/collectivites/departement/95/agents", "anonyme", 401),
    ("région Île-de-France", "/espace/collectivites/region/11", "administrateur", 200),
    ("région Île-de-France", "/espace/collectivites/region/11", "coordinateur région:11", 200),
    ("région Île-de-France", "/espace/collectivites/region/11", "coordinateur région:93", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "instructeur 95", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "instructeur 78", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "instructeur DINUM", 200),
    ("région Île-de-France", "/espace/collectivites/region/11", "expert 95", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "membre-comite 95", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "demandeur commune:95127", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "demandeur commune:78646", 403),
    ("région Île-de-France", "/espace/collectivites/region/11", "demandeur région:11", 200),
    ("région Île-de-France", "/espace/collectivites/region/11", "anonyme", 303),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "administrateur", 200),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "coordinateur région:11", 200),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "coordinateur région:93", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "instructeur 95", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "instructeur 78", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "instructeur DINUM", 200),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "expert 95", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "membre-comite 95", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "demandeur commune:95127", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "demandeur commune:78646", 403),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "demandeur région:11", 200),
    ("région Île-de-France", "/api/v1/collectivites/region/11/agents", "anonyme", 401),
    ("commune inconnue", "/espace/collectivites/commune/99999", "administrateur", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "coordinateur région:11", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "coordinateur région:93", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "instructeur 95", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "instructeur 78", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "instructeur DINUM", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "expert 95", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "membre-comite 95", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "demandeur commune:95127", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "demandeur commune:78646", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "demandeur région:11", 404),
    ("commune inconnue", "/espace/collectivites/commune/99999", "anonyme", 303),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "administrateur", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "coordinateur région:11", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "coordinateur région:93", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "instructeur 95", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "instructeur 78", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "instructeur DINUM", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "expert 95", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "membre-comite 95", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "demandeur commune:95127", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "demandeur commune:78646", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "demandeur région:11", 404),
    ("commune inconnue", "/api/v1/collectivites/commune/99999/agents", "anonyme", 401),
    ("mon espace", "/espace", "administrateur", 200),
    ("mon espace", "/espace", "coordinateur région:11", 200),
    ("mon espace", "/espace", "coordinateur région:93", 200),
    ("mon espace", "/espace", "instructeur 95", 200),
    ("mon espace", "/espace", "instructeur 78", 200),
    ("mon espace", "/espace", "instructeur DINUM", 200),
    ("mon espace", "/espace", "expert 95", 200),
    ("mon espace", "/espace", "membre-comite 95", 200),
    ("mon espace", "/espace", "demandeur commune:95127", 200),
    ("mon espace", "/espace", "demandeur commune:78646", 200),
    ("mon espace", "/espace", "demandeur région:11", 200),
    ("mon espace", "/espace", "anonyme", 303),
    ("annuaire des services", "/espace/services", "administrateur", 200),
    ("annuaire des services", "/espace/services", "coordinateur région:11", 200),
    ("annuaire des services", "/espace/services", "coordinateur région:93", 200),
    ("annuaire des services", "/espace/services", "instructeur 95", 200),
    ("annuaire des services", "/espace/services", "instructeur 78", 200),
    ("annuaire des services", "/espace/services", "instructeur DINUM", 200),
    ("annuaire des services", "/espace/services", "expert 95", 200),
    ("annuaire des services", "/espace/services", "membre-comite 95", 200),
    ("annuaire des services", "/espace/services", "demandeur commune:95127", 403),
    ("annuaire des services", "/espace/services", "demandeur commune:78646", 403),
    ("annuaire des services", "/espace/services", "demandeur région:11", 403),
    ("annuaire des services", "/espace/services", "anonyme", 303),
    ("comptes", "/admin/utilisateurs", "administrateur", 200),
    ("comptes", "/admin/utilisateurs", "coordinateur région:11", 403),
    ("comptes", "/admin/utilisateurs", "coordinateur région:93", 403),
    ("comptes", "/admin/utilisateurs", "instructeur 95", 403),
    ("comptes", "/admin/utilisateurs", "instructeur 78", 403),
    ("comptes", "/admin/utilisateurs", "instructeur DINUM", 403),
    ("comptes", "/admin/utilisateurs", "expert 95", 403),
    ("comptes", "/admin/utilisateurs", "membre-comite 95", 403),
    ("comptes", "/admin/utilisateurs", "demandeur commune:95127", 403),
    ("comptes", "/admin/utilisateurs", "demandeur commune:78646", 403),
    ("comptes", "/admin/utilisateurs", "demandeur région:11", 403),
    ("comptes", "/admin/utilisateurs", "anonyme", 303),
    ("journal d’audit", "/admin/journal", "administrateur", 200),
    ("journal d’audit", "/admin/journal", "coordinateur région:11", 403),
    ("journal d’audit", "/admin/journal", "coordinateur région:93", 403),
    ("journal d’audit", "/admin/journal", "instructeur 95", 403),
    ("journal d’audit", "/admin/journal", "instructeur 78", 403),
    ("journal d’audit", "/admin/journal", "instructeur DINUM", 403),
    ("journal d’audit", "/admin/journal", "expert 95", 403),
    ("journal d’audit", "/admin/journal", "membre-comite 95", 403),
    ("journal d’audit", "/admin/journal", "demandeur commune:95127", 403),
    ("journal d’audit", "/admin/journal", "demandeur commune:78646", 403),
    ("journal d’audit", "/admin/journal", "demandeur région:11", 403),
    ("journal d’audit", "/admin/journal", "anonyme", 303),
    ("file de travaux", "/admin/travaux", "administrateur", 200),
    ("file de travaux", "/admin/travaux", "coordinateur région:11", 403),
    ("file de travaux", "/admin/travaux", "coordinateur région:93", 403),
    ("file de travaux", "/admin/travaux", "instructeur 95", 403),
    ("file de travaux", "/admin/travaux", "instructeur 78", 403),
    ("file de travaux", "/admin/travaux", "instructeur DINUM", 403),
    ("file de travaux", "/admin/travaux", "expert 95", 403),
    ("file de travaux", "/admin/travaux", "membre-comite 95", 403),
    ("file de travaux", "/admin/travaux", "demandeur commune:95127", 403),
    ("file de travaux", "/admin/travaux", "demandeur commune:78646", 403),
    ("jetons d’API", "/admin/jetons", "administrateur", 200),
    ("jetons d’API", "/admin/jetons", "coordinateur région:11", 403),
    ("jetons d’API", "/admin/jetons", "coordinateur région:93", 403),
    ("jetons d’API", "/admin/jetons", "instructeur 95", 403),
    ("jetons d’API", "/admin/jetons", "instructeur 78", 403),
    ("jetons d’API", "/admin/jetons", "instructeur DINUM", 403),
    ("jetons d’API", "/admin/jetons", "expert 95", 403),
    ("jetons d’API", "/admin/jetons", "membre-comite 95", 403),
    ("jetons d’API", "/admin/jetons", "demandeur commune:95127", 403),
    ("jetons d’API", "/admin/jetons", "demandeur commune:78646", 403),
    ("jetons d’API", "/admin/jetons", "demandeur région:11", 403),
    ("jetons d’API", "/admin/jetons", "anonyme", 303),
    ("webhooks", "/admin/webhooks", "administrateur", 200),
    ("webhooks", "/admin/webhooks", "coordinateur région:11", 403),
    ("webhooks", "/admin/webhooks", "coordinateur région:93", 403),
    ("webhooks", "/admin/webhooks", "instructeur 95", 403),
    ("webhooks", "/admin/webhooks", "instructeur 78", 403),
    ("webhooks", "/admin/webhooks", "instructeur DINUM", 403),
    ("webhooks", "/admin/webhooks", "expert 95", 403),
    ("webhooks", "/admin/webhooks", "membre-comite 95", 403),
    ("webhooks", "/admin/webhooks", "demandeur commune:95127", 403),
    ("webhooks", "/admin/webhooks", "demandeur commune:78646", 403),
    ("webhooks", "/admin/webhooks", "demandeur région:11", 403),
    ("webhooks", "/admin/webhooks", "anonyme", 303),
    ("file de travaux", "/admin/travaux", "demandeur région:11", 403),
    ("file de travaux", "/admin/travaux", "anonyme", 303),
    ("impact d’un brouillon", "/admin/impact", "administrateur", 200),
    ("impact d’un brouillon", "/admin/impact", "coordinateur région:11", 200),
    ("impact d’un brouillon", "/admin/impact", "coordinateur région:93", 200),
    ("impact d’un brouillon", "/admin/impact", "instructeur 95", 403),
    ("impact d’un brouillon", "/admin/impact", "instructeur 78", 403),
    ("impact d’un brouillon", "/admin/impact", "instructeur DINUM", 403),
    ("impact d’un brouillon", "/admin/impact", "expert 95", 403),
    ("impact d’un brouillon", "/admin/impact", "membre-comite 95", 403),
    ("impact d’un brouillon", "/admin/impact", "demandeur commune:95127", 403),
    ("impact d’un brouillon", "/admin/impact", "demandeur commune:78646", 403),
    ("impact d’un brouillon", "/admin/impact", "demandeur région:11", 403),
    ("impact d’un brouillon", "/admin/impact", "anonyme", 303),    ("file d’instruction", "/instruction", "administrateur", 200),
    ("file d’instruction", "/instruction", "coordinateur région:11", 200),
    ("file d’instruction", "/instruction", "coordinateur région:93", 200),
    ("file d’instruction", "/instruction", "instructeur 95", 200),
    ("file d’instruction", "/instruction", "instructeur 78", 200),
    ("file d’instruction", "/instruction", "instructeur DINUM", 200),
    ("file d’instruction", "/instruction", "expert 95", 403),
    ("file d’instruction", "/instruction", "membre-comite 95", 403),
    ("file d’instruction", "/instruction", "demandeur commune:95127", 403),
    ("file d’instruction", "/instruction", "demandeur commune:78646", 403),
    ("file d’instruction", "/instruction", "demandeur région:11", 403),
    ("file d’instruction", "/instruction", "anonyme", 303),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "administrateur", 200),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "coordinateur région:11", 200),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "coordinateur région:93", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "instructeur 95", 200),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "instructeur 78", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "instructeur DINUM", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "expert 95", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "membre-comite 95", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "demandeur commune:95127", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "demandeur commune:78646", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "demandeur région:11", 403),
    ("dossier de Cergy, instruit par pref-95", "/instruction/dossiers/{dossier-cergy}", "anonyme", 303),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "administrateur", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "coordinateur région:11", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "coordinateur région:93", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "instructeur 95", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "instructeur 78", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "instructeur DINUM", 404),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "expert 95", 403),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "membre-comite 95", 403),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "demandeur commune:95127", 403),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "demandeur commune:78646", 403),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "demandeur région:11", 403),
    ("dossier inconnu", "/instruction/dossiers/ITN7-95-2021-09999", "anonyme", 303),    ("mes dossiers", "/espace/dossiers", "administrateur", 403),
    ("mes dossiers", "/espace/dossiers", "coordinateur région:11", 403),
    ("mes dossiers", "/espace/dossiers", "coordinateur région:93", 403),
    ("mes dossiers", "/espace/dossiers", "instructeur 95", 403),
    ("mes dossiers", "/espace/dossiers", "instructeur 78", 403),
    ("mes dossiers", "/espace/dossiers", "instructeur DINUM", 403),
    ("mes dossiers", "/espace/dossiers", "expert 95", 403),
    ("mes dossiers", "/espace/dossiers", "membre-comite 95", 403),
    ("mes dossiers", "/espace/dossiers", "demandeur commune:95127", 200),
    ("mes dossiers", "/espace/dossiers", "demandeur commune:78646", 200),
    ("mes dossiers", "/espace/dossiers", "demandeur région:11", 200),
    ("mes dossiers", "/espace/dossiers", "anonyme", 303),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "administrateur", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "coordinateur région:11", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "coordinateur région:93", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "instructeur 95", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "instructeur 78", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "instructeur DINUM", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "expert 95", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "membre-comite 95", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "demandeur commune:95127", 200),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "demandeur commune:78646", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "demandeur région:11", 403),
    ("dossier de Cergy, côté collectivité", "/espace/dossiers/{dossier-cergy-id}", "anonyme", 303),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "administrateur", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "coordinateur région:11", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "coordinateur région:93", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "instructeur 95", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "instructeur 78", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "instructeur DINUM", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "expert 95", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "membre-comite 95", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "demandeur commune:95127", 200),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "demandeur commune:78646", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "demandeur région:11", 403),
    ("récépissé du dossier de Cergy", "/espace/dossiers/{dossier-cergy-id}/recepisse", "anonyme", 303),
    ("dossiers visibles (API)", "/api/v1/dossiers", "administrateur", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "coordinateur région:11", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "coordinateur région:93", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "instructeur 95", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "instructeur 78", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "instructeur DINUM", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "expert 95", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "membre-comite 95", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "demandeur commune:95127", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "demandeur commune:78646", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "demandeur région:11", 200),
    ("dossiers visibles (API)", "/api/v1/dossiers", "anonyme", 401),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "administrateur", 200),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "coordinateur région:11", 200),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "coordinateur région:93", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "instructeur 95", 200),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "instructeur 78", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "instructeur DINUM", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "expert 95", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "membre-comite 95", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "demandeur commune:95127", 200),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "demandeur commune:78646", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "demandeur région:11", 403),
    ("dossier de Cergy (API)", "/api/v1/dossiers/{dossier-cergy}", "anonyme", 401),
];

struct People {
    clients: HashMap<&'static str, reqwest::Client>,
    principals: HashMap<&'static str, Principal>,
}

async fn people(t: &TestApp) -> People {
    let mut clients = HashMap::new();
    let mut principals = HashMap::new();
    for (name, role, service, collectivites) in PERSONAS {
        let email = format!(
            "{}@matrice.test",
            name.replace([' ', ':'], "-").replace('é', "e")
        );
        let (id, _) = t
            .app
            .accounts()
            .create_user(
                NewUser {
                    email: email.clone(),
                    display_name: format!("Personne {name}"),
                    role,
                    service: service.map(|s| ServiceTarget::parse(s).unwrap()),
                    collectivites: collectivites
                        .iter()
                        .map(|c| CollectiviteRef::parse(c).unwrap())
                        .collect(),
                },
                Actor::Cli,
            )
            .await
            .unwrap();
        t.app
            .sessions()
            .set_password(id, PASSWORD, Actor::Cli)
            .await
            .unwrap();
        clients.insert(name, t.login_as(&email).await);
        principals.insert(
            name,
            t.app.accounts().user_view(id).await.unwrap().principal,
        );
    }
    clients.insert("anonyme", client());
    People {
        clients,
        principals,
    }
}

async fn service_ids(t: &TestApp) -> HashMap<String, i64> {
    t.app
        .accounts()
        .ensure_service(&ServiceTarget::parse("13").unwrap(), Actor::Cli)
        .await
        .unwrap();
    t.app
        .accounts()
        .visible_services(&admin())
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.code, s.id))
        .collect()
}

fn route(template: &str, ids: &HashMap<String, i64>) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(a), Some(b)) => {
            let code = &template[a + 1..b];
            let id = ids.get(code).unwrap_or_else(|| panic!("service {code}"));
            format!("{}{id}{}", &template[..a], &template[b + 1..])
        }
        _ => template.to_string(),
    }
}

#[tokio::test]
async fn every_role_sees_its_territory_and_nothing_else() {
    let t = spawn_app().await;
    let people = people(&t).await;
    let ids = service_ids(&t).await;
    let cergy_dossier = crate::instruction::filed_dossier(
        &t,
        &people.principals["demandeur commune:95127"],
        "95127",
        "Portail citoyen de Cergy",
    )
    .await;
    let cergy_id = t
        .app
        .dossiers()
        .by_number(&admin(), &cergy_dossier)
        .await
        .unwrap()
        .row
        .id
        .to_string();
    // Every persona has a row for every route: a new persona or route cannot be half-covered.
    let mut per_route: HashMap<&str, usize> = HashMap::new();
    for (_, r, _, _) in ROWS {
        *per_route.entry(r).or_default() += 1;
    }
    for (r, n) in &per_route {
        assert_eq!(
            *n,
            PERSONAS.len() + 1,
            "{r} : une ligne par personne et l’anonyme"
        );
    }
    let mut failures = Vec::new();
    for (resource, template, persona, expected) in ROWS {
        let c = &people.clients[persona];
        let path = route(
            &template
                .replace("{dossier-cergy-id}", &cergy_id)
                .replace("{dossier-cergy}", &cergy_dossier),
            &ids,
        );
        let got = t.get_with(c, &path).await.status().as_u16();
        if got != *expected {
            failures.push(format!(
                "{resource} : {persona} GET {path} → {got}, attendu {expected}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn lists_hold_only_what_the_scope_allows() {
    let t = spawn_app().await;
    let people = people(&t).await;
    let codes = |v: Value| -> Vec<String> {
        let mut c: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"].as_str().unwrap().to_string())
            .collect();
        c.sort();
        c
    };
    for (persona, expected) in [
        ("instructeur 95", vec!["pref-95"]),
        (
            "coordinateur région:11",
            vec!["pref-78", "pref-95", "pref-reg-11"],
        ),
        ("demandeur commune:95127", vec![]),
    ] {
        let body: Value = t
            .get_with(&people.clients[persona], "/api/v1/services")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(codes(body), expected, "{persona}");
    }
    let html = t
        .get_with(&people.clients["instructeur 95"], "/espace")
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
    // The collectivités of the territory that have agents, filtered in SQL: Cergy for the
    // Val-d'Oise, not Versailles, nor the région (its space is not the département's).
    assert!(
        html.contains("href=\"/espace/collectivites/commune/95127\""),
        "{html}"
    );
    assert!(!html.contains("/espace/collectivites/commune/78646"));
    assert!(!html.contains("/espace/collectivites/region/11"));
    let html = t
        .get_with(&people.clients["coordinateur région:11"], "/espace")
        .await
        .text()
        .await
        .unwrap();
    for href in ["commune/95127", "commune/78646", "region/11"] {
        assert!(
            html.contains(&format!("/espace/collectivites/{href}")),
            "{href}"
        );
    }
}

/// The use cases enforce access themselves, whoever calls them: the members of a service and
/// the agents of a collectivité are refused outside the principal's scope.
#[tokio::test]
async fn use_cases_refuse_reads_outside_the_scope() {
    let t = spawn_app().await;
    let people = people(&t).await;
    let ids = service_ids(&t).await;
    let p = |name: &str| people.principals[name].clone();
    let forbidden = |r: Result<_, AppError>| matches!(r, Err(AppError::Forbidden));

    // Service members.
    let i95 = p("instructeur 95");
    assert!(forbidden(
        t.app
            .accounts()
            .service_details(&i95, ids["pref-78"])
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        t.app
            .accounts()
            .service_details(&i95, ids["pref-reg-11"])
            .await
            .map(|_| ())
    ));
    let own = t
        .app
        .accounts()
        .service_details(&i95, ids["pref-95"])
        .await
        .unwrap();
    assert!(own
        .members
        .iter()
        .all(|m| m.service_id == Some(ids["pref-95"])));
    assert!(own
        .members
        .iter()
        .any(|m| m.email == "instructeur-95@matrice.test"));
    let cergy = p("demandeur commune:95127");
    assert!(forbidden(
        t.app
            .accounts()
            .service_details(&cergy, ids["pref-95"])
            .await
            .map(|_| ())
    ));
    assert!(matches!(
        t.app.accounts().service_details(&i95, 999_999).await,
        Err(AppError::NotFound(_))
    ));

    // Collectivité agents.
    let versailles = CollectiviteRef::parse("commune:78646").unwrap();
    let idf = CollectiviteRef::parse("region:11").unwrap();
    assert!(forbidden(
        t.app
            .accounts()
            .collectivite_space(&i95, &versailles)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        t.app
            .accounts()
            .collectivite_space(&i95, &idf)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        t.app
            .accounts()
            .collectivite_space(&cergy, &versailles)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        t.app
            .accounts()
            .collectivite_space(&p("expert 95"), &versailles)
            .await
            .map(|_| ())
    ));
    let space = t
        .app
        .accounts()
        .collectivite_space(&p("coordinateur région:11"), &idf)
        .await
        .unwrap();
    assert_eq!(
        space
            .members
            .iter()
            .map(|m| m.email.as_str())
            .collect::<Vec<_>>(),
        ["demandeur-region-11@matrice.test"]
    );
    assert!(!t
        .app
        .accounts()
        .may_view_collectivite(&i95, &idf)
        .await
        .unwrap());

    // Administration.
    assert!(forbidden(t.app.accounts().list(&i95).await.map(|_| ())));
    assert!(forbidden(
        t.app
            .audit()
            .log(&p("coordinateur région:11"), 10)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        t.app.accounts().service_directory(&cergy).await.map(|_| ())
    ));
    assert_eq!(
        t.app.accounts().list(&admin()).await.unwrap().len(),
        PERSONAS.len()
    );
}

/// Storage's SQL translation of a scope and the domain's rule answer alike for every persona,
/// every collectivité and every service of the fixture referential.
#[tokio::test]
async fn the_sql_scope_agrees_with_the_domain_rule() {
    let t = spawn_app().await;
    let people = people(&t).await;
    service_ids(&t).await;
    let data = fixtures_npm_dir().join("decoupage-administratif-2021/data");
    let read = |file: &str| -> Vec<Value> {
        serde_json::from_str(&std::fs::read_to_string(data.join(file)).unwrap()).unwrap()
    };
    let mut refs = Vec::new();
    for (file, kind) in [
        ("communes.json", CollectiviteKind::Commune),
        ("epci.json", CollectiviteKind::Epci),
        ("departements.json", CollectiviteKind::Departement),
        ("regions.json", CollectiviteKind::Region),
    ] {
        for entry in read(file) {
            if kind == CollectiviteKind::Commune && entry["type"] != "commune-actuelle" {
                continue;
            }
            refs.push(CollectiviteRef::new(kind, entry["code"].as_str().unwrap()).unwrap());
        }
    }
    assert!(refs.len() > 40, "{} collectivités", refs.len());
    let all_services = t.app.accounts().visible_services(&admin()).await.unwrap();
    let mut checked = 0;
    for (name, principal) in &people.principals {
        let scope = principal.scope();
        for r in &refs {
            let footprint = t
                .app
                .referentiel()
                .collectivite_details(Vintage::Y2021, r)
                .await
                .unwrap()
                .footprint;
            assert_eq!(
                t.app
                    .accounts()
                    .may_view_collectivite(principal, r)
                    .await
                    .unwrap(),
                scope.sees_collectivite(r, &footprint),
                "{name} / {r}"
            );
            checked += 1;
        }
        let mut sql: Vec<i64> = t
            .app
            .accounts()
            .visible_services(principal)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        let mut domain: Vec<i64> = all_services
            .iter()
            .filter(|s| scope.sees_service(&service_scope(s).unwrap()))
            .map(|s| s.id)
            .collect();
        sql.sort();
        domain.sort();
        assert_eq!(sql, domain, "{name}");
    }
    assert!(checked > 400);
}
