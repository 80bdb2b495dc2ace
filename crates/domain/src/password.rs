//! Password policy (ANSSI-inspired: length over complexity rules).

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("le mot de passe doit comporter au moins {MIN_LENGTH} caractères")]
    TooShort,
    #[error("le mot de passe ne doit pas dépasser {MAX_LENGTH} caractères")]
    TooLong,
    #[error("le mot de passe ne peut pas être composé d’un seul caractère répété")]
    Repetitive,
}

pub fn check(password: &str) -> Result<(), PasswordPolicyError> {
    let count = password.chars().count();
    if count < MIN_LENGTH {
        return Err(PasswordPolicyError::TooShort);
    }
    if count > MAX_LENGTH {
        return Err(PasswordPolicyError::TooLong);
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(PasswordPolicyError::Repetitive);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length() {
        assert_eq!(check("court"), Err(PasswordPolicyError::TooShort));
        assert_eq!(
            check("aaaaaaaaaaaaaa"),
            Err(PasswordPolicyError::Repetitive)
        );
        assert_eq!(check("correct cheval batterie"), Ok(()));
        assert_eq!(check(&"x".repeat(300)), Err(PasswordPolicyError::TooLong));
    }
}
