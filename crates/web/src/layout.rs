//! What every page's frame needs: the user in the header, the main navigation for their role,
//! the breadcrumb, the CSRF token for the logout form, and the simulated-clock notice.

use crate::ctx::Ctx;
use guichet_app::App;
use guichet_domain::Role;

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
}

impl Layout {
    pub fn new(ctx: &Ctx, app: &App, path: &str, breadcrumb: Vec<Crumb>) -> Self {
        let mut nav: Vec<(&'static str, String)> = vec![
            ("Accueil", "/".into()),
            ("Simulateur", "/simulateur".into()),
            ("Collectivités", "/collectivites".into()),
        ];
        if let Some(u) = ctx.user() {
            nav.push(("Mon espace", "/espace".into()));
            match u.role {
                Role::Administrateur => {
                    nav.push(("Services", "/espace/services".into()));
                    nav.push(("Comptes", "/admin/utilisateurs".into()));
                    nav.push(("Journal d’audit", "/admin/journal".into()));
                    nav.push(("Impact", "/admin/impact".into()));
                }
                Role::Coordinateur => {
                    nav.push(("Services de la région", "/espace/services".into()));
                    nav.push(("Impact", "/admin/impact".into()));
                }
                Role::Instructeur | Role::Expert | Role::MembreComite => {
                    if let Some(s) = &u.service {
                        nav.push(("Mon service", format!("/espace/services/{}", s.id)));
                    }
                }
                Role::Demandeur => {}
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
        }
    }
}
