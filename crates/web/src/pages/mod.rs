//! HTML pages, one module per page, templates under `templates/pages/` with the same names.

pub mod accessibilite;
pub mod admin;
pub mod collectivites;
pub mod connexion;
pub mod espace;
pub mod home;
pub mod impact;
pub mod jetons;
pub mod legal;
pub mod mesures;
pub mod mot_de_passe;
pub mod simulateur;
pub mod webhooks;

use crate::ctx::Ctx;
use crate::error::PageError;
use askama::Template;
use axum::response::Html;
use guichet_app::accounts::UserView;

pub type PageResult = Result<Html<String>, PageError>;

pub fn render<T: Template>(t: &T) -> PageResult {
    Ok(Html(t.render()?))
}

/// The logged-in user, or a detour through the login page.
pub fn require_user<'a>(ctx: &'a Ctx, path: &str) -> Result<&'a UserView, PageError> {
    ctx.user().ok_or_else(|| PageError::login(path))
}

/// French grouping of thousands: 65 911.
pub fn thousands(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!(
        "{sign}{}",
        guichet_domain::text::group_thousands(n.unsigned_abs())
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::thousands(65911), "65\u{202f}911");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1\u{202f}234\u{202f}567");
    }
}
