//! Accessibility statement, as required of public services (RGAA).

use super::{render, PageResult};
use crate::ctx::Ctx;
use crate::layout::{Crumb, Layout};
use askama::Template;
use axum::extract::State;
use guichet_app::App;

#[derive(Template)]
#[template(path = "pages/accessibilite.html")]
struct AccessibiliteTemplate {
    layout: Layout,
}

pub async fn page(State(app): State<App>, ctx: Ctx) -> PageResult {
    render(&AccessibiliteTemplate {
        layout: Layout::new(
            &ctx,
            &app,
            "/accessibilite",
            vec![Crumb::link("Accueil", "/"), Crumb::here("Accessibilité")],
        ),
    })
}
