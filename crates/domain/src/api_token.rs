//! API tokens: what a token lets its holder do. A token belongs to one service and reads (or
//! reads and writes) what that service's instructors may; it is not an account.

use std::fmt;

/// A token's reach (`--portee`): reading only, or reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    Lecture,
    Ecriture,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("portée de jeton inconnue : « {0} » (lecture ou ecriture)")]
pub struct UnknownTokenScope(pub String);

impl TokenScope {
    pub const ALL: [TokenScope; 2] = [TokenScope::Lecture, TokenScope::Ecriture];

    pub fn slug(self) -> &'static str {
        match self {
            TokenScope::Lecture => "lecture",
            TokenScope::Ecriture => "ecriture",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TokenScope::Lecture => "lecture",
            TokenScope::Ecriture => "lecture et écriture",
        }
    }

    /// Accepts `lecture`, `ecriture` or `écriture`, in any case.
    pub fn parse(input: &str) -> Result<TokenScope, UnknownTokenScope> {
        match input.trim().to_lowercase().as_str() {
            "lecture" => Ok(TokenScope::Lecture),
            "ecriture" | "écriture" => Ok(TokenScope::Ecriture),
            _ => Err(UnknownTokenScope(input.trim().to_string())),
        }
    }

    /// Whether a request that changes something (any method but GET, HEAD, OPTIONS) is allowed.
    pub fn permits_writes(self) -> bool {
        self == TokenScope::Ecriture
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_french_spellings_and_nothing_else() {
        assert_eq!(TokenScope::parse("lecture"), Ok(TokenScope::Lecture));
        assert_eq!(TokenScope::parse(" Écriture "), Ok(TokenScope::Ecriture));
        assert_eq!(TokenScope::parse("ecriture"), Ok(TokenScope::Ecriture));
        assert!(TokenScope::parse("admin").is_err());
        assert!(TokenScope::parse("").is_err());
        for s in TokenScope::ALL {
            assert_eq!(TokenScope::parse(s.slug()), Ok(s));
        }
        assert!(!TokenScope::Lecture.permits_writes());
        assert!(TokenScope::Ecriture.permits_writes());
    }
}
