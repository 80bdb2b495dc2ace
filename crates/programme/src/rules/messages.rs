//! Condition messages: their `{nom}` resolved once, at load.

use super::*;

/// A piece of a message whose `{nom}` show values: text as written, or what to read.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Param(usize),
    Rule(usize),
    Fact(usize),
}

/// Splits a message at its `{nom}`, each name resolved as the evaluation reads it: a parameter,
/// else a rule of the set, else a fact; an unknown name, or a `{` left open, stays as written.
pub(crate) fn message_pieces(
    msg: &str,
    params: &[ParamDef],
    rules: &[RuleDef],
    facts: &HashMap<String, usize>,
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = msg;
    while let Some(start) = rest.find('{') {
        text.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let piece = if let Some(i) = params.iter().position(|p| p.name == name) {
            Some(Piece::Param(i))
        } else if let Some(i) = rules.iter().position(|r| r.name == name) {
            Some(Piece::Rule(i))
        } else {
            facts.get(name).map(|&i| Piece::Fact(i))
        };
        match piece {
            Some(p) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(p);
            }
            None => text.push_str(&rest[start..start + end + 2]),
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}
