//! Public home: what the programme is, its axes and measures, and where to start.

use super::{render, PageResult};
use crate::ctx::Ctx;
use crate::layout::Layout;
use askama::Template;
use axum::extract::State;
use guichet_app::App;

pub struct MeasureView {
    pub id: String,
    pub name: String,
    pub summary: String,
    pub instruction: &'static str,
    pub beneficiaries: String,
    pub window: Option<String>,
}

pub struct AxisView {
    pub name: String,
    pub envelope: Option<String>,
    pub pilot: String,
    pub measures: Vec<MeasureView>,
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomeTemplate {
    layout: Layout,
    fund: String,
    envelope: String,
    axes: Vec<AxisView>,
    logged_in: bool,
}

fn instruction_label(s: &str) -> &'static str {
    match s {
        "departement" => "Préfecture de département",
        "region" => "Préfecture de région",
        _ => "Instruction nationale",
    }
}

pub async fn page(State(app): State<App>, ctx: Ctx) -> PageResult {
    let p = &app.programme;
    let fmt = |d: chrono::NaiveDate| d.format("%d/%m/%Y").to_string();
    let axes = p
        .axes
        .iter()
        .map(|a| AxisView {
            name: a.name.clone(),
            envelope: a.envelope.map(|c| c.to_short_string()),
            pilot: a.pilot.clone(),
            measures: a
                .measures
                .iter()
                .map(|m| MeasureView {
                    id: m.id.as_str().to_string(),
                    name: m.name.clone(),
                    summary: m.summary.clone(),
                    instruction: instruction_label(&m.instruction),
                    beneficiaries: m.beneficiaries.clone(),
                    window: match (m.opens, m.closes) {
                        (Some(o), Some(c)) => Some(format!("Du {} au {}", fmt(o), fmt(c))),
                        (Some(o), None) => Some(format!("Depuis le {}", fmt(o))),
                        (None, Some(c)) => Some(format!("Jusqu’au {}", fmt(c))),
                        (None, None) => None,
                    },
                })
                .collect(),
        })
        .collect();
    render(&HomeTemplate {
        layout: Layout::new(&ctx, &app, "/", vec![]),
        fund: p.fund.clone(),
        envelope: p.envelope.to_short_string(),
        axes,
        logged_in: ctx.user().is_some(),
    })
}
