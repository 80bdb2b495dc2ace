//! HTML pages, one module per page, templates under `templates/pages/` with the same names.

pub mod accessibilite;
pub mod admin;
pub mod collectivites;
pub mod connexion;
pub mod decisions;
pub mod depot;
pub mod espace;
pub mod home;
pub mod impact;
pub mod instruction;
pub mod jetons;
pub mod legal;
pub mod messages;
pub mod mesures;
pub mod mot_de_passe;
pub mod pieces;
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

/// Euros as a form shows them back for editing: `12000` or `12000,50` (no grouping, so that
/// the value parses again as typed).
pub fn euros_input(c: guichet_domain::Cents) -> String {
    let n = c.get();
    let sign = if n < 0 { "-" } else { "" };
    let (euros, cents) = (n.unsigned_abs() / 100, n.unsigned_abs() % 100);
    if cents == 0 {
        format!("{sign}{euros}")
    } else {
        format!("{sign}{euros},{cents:02}")
    }
}

/// French grouping of thousands: 65 911.
pub fn thousands(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!(
        "{sign}{}",
        guichet_domain::text::group_thousands(n.unsigned_abs())
    )
}

/// Appends `text` escaped as askama escapes it (`&#34;` `&#38;` `&#39;` `&#60;` `&#62;`), for
/// HTML that a page writes itself and shows with `|safe`: straight into the `String`, runs of
/// plain text copied whole.
pub fn push_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0;
    // Sixteen bytes at a time, compared together (no early exit): most of a French sentence
    // has nothing to escape.
    let chunks = bytes.chunks_exact(16);
    let tail = bytes.len() - chunks.remainder().len();
    for (k, chunk) in chunks.enumerate() {
        let mut hit = 0u8;
        for &b in chunk {
            hit |= u8::from(needs_escape(b));
        }
        if hit != 0 {
            escape_from(out, text, k * 16, k * 16 + 16, &mut plain);
        }
    }
    escape_from(out, text, tail, bytes.len(), &mut plain);
    out.push_str(text.get(plain..).unwrap_or_default());
}

/// Escapes the special bytes of `text[from..to]`, writing what precedes each from `plain` on.
fn escape_from(out: &mut String, text: &str, from: usize, to: usize, plain: &mut usize) {
    for (i, &b) in text
        .as_bytes()
        .get(from..to)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let entity = match b {
            b'"' => "&#34;",
            b'&' => "&#38;",
            b'\'' => "&#39;",
            b'<' => "&#60;",
            b'>' => "&#62;",
            _ => continue,
        };
        out.push_str(text.get(*plain..from + i).unwrap_or_default());
        out.push_str(entity);
        *plain = from + i + 1;
    }
}

#[inline(always)]
fn needs_escape(b: u8) -> bool {
    (b == b'"') | (b == b'&') | (b == b'\'') | (b == b'<') | (b == b'>')
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_as_askama_does() {
        let text = "a <b> & \"c\" l'été ’ é, plus de seize octets sans rien à échapper, puis <i>";
        let mut mine = String::from("x");
        super::push_escaped(&mut mine, text);
        let theirs = askama::filters::escape(text, askama::filters::Html)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(mine, format!("x{theirs}"));
        let mut plain = String::new();
        super::push_escaped(&mut plain, "");
        assert_eq!(plain, "");
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(super::thousands(65911), "65\u{202f}911");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1\u{202f}234\u{202f}567");
    }
}
