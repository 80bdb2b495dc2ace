//! What every page's frame needs: the user in the header, the main navigation for their role,
//! the breadcrumb, the CSRF token for the logout form, and the simulated-clock notice.

use crate::ctx::Ctx;
use guichet_app::App;
use guichet_domain::Area;

pub struct NavItem {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

impl Crumb {
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Self {
        Crumb {
            label: label.into(),
            href: Some(href.into()),
        }
    }
    pub fn here(label: impl Into<String>) -> Self {
        Crumb {
            label: label.into(),
            href: None,
        }
    }
}

pub struct NavUser {
    pub name: String,
    pub role_label: &'static str,
}

pub struct Layout {
    pub user: Option<NavUser>,
    pub csrf: String,
    pub clock_notice: Option<String>,
    pub nav: Vec<NavItem>,
    pub breadcrumb: Vec<Crumb>,
    pub programme_name: String,
    /// Where the DSFR is linked from: its versioned prefix (`/dsfr/<version>`).
    pub dsfr: &'static str,
}

impl Layout {
    pub fn new(ctx: &Ctx, app: &App, path: &str, breadcrumb: Vec<Crumb>) -> Self {
        let mut nav: Vec<(&'static str, String)> = vec![
            ("Accueil", "/".into()),
            ("Mesures", "/mesures".into()),
            ("Simulateur", "/simulateur".into()),
            ("Collectivités", "/collectivites".into()),
        ];
        if let Some(u) = ctx.user() {
            nav.push(("Mon espace", "/espace".into()));
            // The areas come from the principal's scope, the same value the reads apply.
            for area in u.scope.areas() {
                nav.push(match area {
                    Area::AllServices => ("Services", "/espace/services".into()),
                    Area::RegionServices => ("Services de la région", "/espace/services".into()),
                    Area::OwnService(id) => ("Mon service", format!("/espace/services/{id}")),
                    Area::Instruction => ("Instruction", "/instruction".into()),
                    Area::Dossiers => ("Mes dossiers", "/espace/dossiers".into()),
                    Area::Accounts => ("Comptes", "/admin/utilisateurs".into()),
                    Area::AuditLog => ("Journal d’audit", "/admin/journal".into()),
                    Area::Jobs => ("Travaux", "/admin/travaux".into()),
                    Area::ApiTokens => ("Jetons d’API", "/admin/jetons".into()),
                    Area::Webhooks => ("Webhooks", "/admin/webhooks".into()),
                    Area::Impact => ("Impact", "/admin/impact".into()),
                });
            }
        }
        // The longest matching prefix is the current section.
        let current = nav
            .iter()
            .filter(|(_, href)| {
                if href == "/" {
                    path == "/"
                } else {
                    path == href || path.starts_with(&format!("{href}/"))
                }
            })
            .map(|(_, href)| href.clone())
            .max_by_key(String::len);
        Layout {
            user: ctx.user().map(|u| NavUser {
                name: u.user.display_name.clone(),
                role_label: u.role.label(),
            }),
            csrf: ctx.csrf.clone(),
            clock_notice: ctx.clock_notice.clone(),
            nav: nav
                .into_iter()
                .map(|(label, href)| NavItem {
                    current: current.as_ref() == Some(&href),
                    label,
                    href,
                })
                .collect(),
            breadcrumb,
            programme_name: app.programme.name.clone(),
            dsfr: crate::assets::dsfr_prefix(),
        }
    }
}
