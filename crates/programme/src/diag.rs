//! Diagnostics of programme files: every problem with its file, line and column, in French.
//!
//! The YAML parser (serde-saphyr) reports positions of syntax and type errors itself. Problems found later (an
//! unknown name, a type mismatch, a cycle) are located by searching the file's text: first the
//! line of the key that defines the offending entry, then the offending text after it.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{} : {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// All the problems of a programme, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// One programme file held in memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map(|nl| before[nl + 1..].chars().count())
            .unwrap_or_else(|| before.chars().count())
            + 1;
        (line, col)
    }

    /// Offset of the key `path[last]` reached through the keys before it, each searched
    /// after the previous one (`["mesures", "axe2.api", "taux"]`).
    pub fn find_key(&self, path: &[&str]) -> Option<usize> {
        let mut from = 0;
        let mut found = None;
        for key in path {
            let mut at = None;
            for quoted in [
                format!("{key}:"),
                format!("'{key}':"),
                format!("\"{key}\":"),
            ] {
                let mut search = from;
                while let Some(rel) = self.text[search..].find(&quoted) {
                    let pos = search + rel;
                    let line_start = self.text[..pos].rfind('\n').map(|n| n + 1).unwrap_or(0);
                    let prefix = &self.text[line_start..pos];
                    if prefix.chars().all(|c| c == ' ' || c == '-') {
                        at = Some(at.map_or(pos, |a: usize| a.min(pos)));
                        break;
                    }
                    search = pos + quoted.len();
                }
            }
            let pos = at?;
            from = pos;
            found = Some(pos);
        }
        found
    }

    /// A diagnostic at the key path, pointing at `near` when it appears shortly after.
    pub fn at(&self, path: &[&str], near: Option<&str>, message: impl Into<String>) -> Diagnostic {
        let mut offset = if path.is_empty() {
            Some(0)
        } else {
            self.find_key(path)
        }
        .or_else(|| {
            // The last keys may be implicit (defaults): fall back to the longest found prefix.
            (1..path.len())
                .rev()
                .find_map(|n| self.find_key(&path[..n]))
        });
        if let (Some(start), Some(needle)) = (offset, near.filter(|n| !n.is_empty())) {
            // Past the key itself (whose name may contain the word), then the word whole.
            let from = self.text[start..]
                .find(':')
                .map(|c| start + c + 1)
                .unwrap_or(start);
            if let Some(at) = self.find_word(from, needle) {
                offset = Some(at);
            }
        }
        let (line, column) = offset.map(|o| self.position(o)).unwrap_or((1, 1));
        Diagnostic {
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A diagnostic at the position the parser gave a value (`serde_saphyr::Spanned`).
    pub fn at_span<T>(
        &self,
        span: &serde_saphyr::Spanned<T>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.name.clone(),
            line: to_usize(span.referenced.line()),
            column: to_usize(span.referenced.column()),
            message: message.into(),
        }
    }

    /// A diagnostic at the first occurrence of `anchor` (a line's text), pointing at `near`
    /// when it appears shortly after.
    pub fn after(
        &self,
        anchor: &str,
        near: Option<&str>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let start = self.text.find(anchor).unwrap_or(0);
        let mut offset = start;
        if let Some(needle) = near.filter(|n| !n.is_empty()) {
            let mut end = (start + 4000).min(self.text.len());
            while !self.text.is_char_boundary(end) {
                end -= 1;
            }
            if let Some(rel) = self.text[start..end].find(needle) {
                offset = start + rel;
            }
        }
        let (line, column) = self.position(offset);
        Diagnostic {
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The first occurrence of `needle` within 4,000 bytes after `from`, preferring one that
    /// stands as a whole word (a name inside a longer name is not it).
    fn find_word(&self, from: usize, needle: &str) -> Option<usize> {
        let mut end = (from + 4000).min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let window = &self.text[from..end];
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let whole = window.match_indices(needle).find(|(i, _)| {
            let before = window[..*i].chars().next_back();
            let after = window[i + needle.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        });
        whole
            .map(|(i, _)| from + i)
            .or_else(|| window.find(needle).map(|i| from + i))
    }

    /// A YAML reading error, at the position the parser reports.
    pub fn yaml_error(&self, e: &serde_saphyr::Error) -> Diagnostic {
        let (line, column) = e
            .location()
            .map(|l| (to_usize(l.line()), to_usize(l.column())))
            .unwrap_or((1, 1));
        let msg = e.without_snippet().to_string();
        // The parser may append the position, already given.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Diagnostic {
            file: self.name.clone(),
            line,
            column,
            message: format!("YAML invalide : {}", translate_serde(&msg)),
        }
    }
}

/// A position of the parser (1-based) as a `usize`; 1 when none.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(1).max(1)
}

/// serde's messages in French, for the common cases a programme officer meets.
fn translate_serde(msg: &str) -> String {
    // A path of the offending value may come first: `faits.type_demandeur: unknown…`.
    if let Some((path, rest)) = msg.split_once(": ") {
        if !path.contains(' ') && !rest.is_empty() {
            return format!("{path} : {}", translate_serde(rest));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let (field, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return format!(
            "champ inconnu {field}{}",
            if expected.is_empty() {
                String::new()
            } else {
                format!(" (attendu : {})", expected.replace("one of ", ""))
            }
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return format!("champ obligatoire absent : {rest}");
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        return format!("type invalide : {rest}");
    }
    if msg.contains("recursion limit exceeded") || msg.starts_with("budget breached: Depth") {
        return format!(
            "tables et listes trop imbriquées : plus de {} niveaux",
            crate::yaml::MAX_YAML_DEPTH
        );
    }
    if msg.contains("duplicate entry") {
        return format!("clé en double ({msg})");
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return format!("clé en double : {key}");
    }
    if let Some(what) = msg.strip_prefix("expected ") {
        let what = match what {
            "mapping start" => "une table (clé: valeur)",
            "sequence start" => "une liste",
            "string scalar" => "un texte",
            other => other,
        };
        return format!("{what} attendu(e) ici");
    }
    if let Some(ty) = msg.strip_prefix("invalid ") {
        if matches!(
            ty,
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64"
        ) {
            return "nombre entier attendu".into();
        }
    }
    if msg == "input is out of range" {
        return "valeur hors limites (une date qui n’existe pas ?)".into();
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_text() {
        let f = SourceFile::new(
            "regles.yaml",
            "regles:\n  a: 1\n  taux:\n    valeur: popul * 2\nmesures:\n  taux: 3\n",
        );
        let d = f.at(&["regles", "taux"], Some("popul"), "nom inconnu");
        assert_eq!((d.line, d.column), (4, 13));
        let d = f.at(&["mesures", "taux"], None, "x");
        assert_eq!((d.line, d.column), (6, 3));
        assert_eq!(d.to_string(), "regles.yaml:6:3 : x");
    }
}
