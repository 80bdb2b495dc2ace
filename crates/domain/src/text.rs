//! Text folding for search: lower case, accents removed, punctuation turned into single spaces,
//! so that "Saint-Ouen-l'Aumône", "saint ouen l aumone" and "SAINT OUEN L'AUMONE" compare equal.

use unicode_normalization::UnicodeNormalization;

pub fn fold(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for ch in input.nfd() {
        if unicode_normalization::char::is_combining_mark(ch) {
            continue;
        }
        let mapped: &str = match ch {
            'œ' | 'Œ' => "oe",
            'æ' | 'Æ' => "ae",
            'ß' => "ss",
            _ => "",
        };
        if !mapped.is_empty() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push_str(mapped);
            continue;
        }
        if ch.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// French grouping of thousands with a narrow no-break space: 65 911.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folds_accents_case_and_punctuation() {
        assert_eq!(fold("Saint-Ouen-l'Aumône"), "saint ouen l aumone");
        assert_eq!(fold("  ÉVRY--Courcouronnes "), "evry courcouronnes");
        assert_eq!(fold("Cœuvres-et-Valsery"), "coeuvres et valsery");
        assert_eq!(fold("95127"), "95127");
    }
}
