//! Regular expressions for the OpenAPI document, built from the running programme's bounds so
//! that a string matches exactly when the simulator's parser accepts it (amounts, counts,
//! dates). They use only what ECMA-262, Python's `re` and Rust's `regex` read alike: character
//! classes, `\uXXXX` escapes, groups and counted repetitions.

use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// Every character `char::is_whitespace` accepts: what `str::trim` and the amount parser drop.
pub const WS: &str =
    "[\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

/// A digit class `[a-b]` (or the digit alone).
fn class(lo: u8, hi: u8) -> String {
    if lo == hi {
        char::from(lo).to_string()
    } else {
        format!("[{}-{}]", char::from(lo), char::from(hi))
    }
}

/// `atom` followed by `sep`, repeated `n` times.
fn repeat(atom: &str, sep: &str, n: usize) -> String {
    match (n, sep.is_empty()) {
        (0, _) => String::new(),
        (1, _) => format!("{atom}{sep}"),
        (_, true) => format!("{atom}{{{n}}}"),
        (_, false) => format!("(?:{atom}{sep}){{{n}}}"),
    }
}

/// Digit strings of one length from `lo` to `hi` (same length, `lo <= hi`), each digit
/// followed by `sep`.
fn fixed_range(lo: &[u8], hi: &[u8], sep: &str) -> String {
    let (Some((&a, lo_rest)), Some((&b, hi_rest))) = (lo.split_first(), hi.split_first()) else {
        return String::new();
    };
    let n = lo_rest.len();
    if a == b {
        return format!(
            "{a}{sep}{}",
            fixed_range(lo_rest, hi_rest, sep),
            a = char::from(a)
        );
    }
    let lowest = lo_rest.iter().all(|&c| c == b'0');
    let highest = hi_rest.iter().all(|&c| c == b'9');
    let any = repeat("[0-9]", sep, n);
    let mut alts = Vec::new();
    let (first, last) = (
        if lowest { a } else { a + 1 },
        if highest { b } else { b - 1 },
    );
    if !lowest {
        alts.push(format!(
            "{}{sep}{}",
            char::from(a),
            fixed_range(lo_rest, &vec![b'9'; n], sep)
        ));
    }
    if first <= last {
        alts.push(format!("{}{sep}{any}", class(first, last)));
    }
    if !highest {
        alts.push(format!(
            "{}{sep}{}",
            char::from(b),
            fixed_range(&vec![b'0'; n], hi_rest, sep)
        ));
    }
    if alts.len() == 1 {
        alts.remove(0)
    } else {
        format!("(?:{})", alts.join("|"))
    }
}

/// The integers from 0 to `max`, written without leading zeros, each digit followed by `sep`.
pub fn up_to(max: u64, sep: &str) -> String {
    let top = max.to_string();
    let mut alts = Vec::new();
    for len in 1..=top.len() {
        let lo = if len == 1 {
            "0".to_string()
        } else {
            format!("1{}", "0".repeat(len - 1))
        };
        let hi = if len == top.len() {
            top.clone()
        } else {
            "9".repeat(len)
        };
        alts.push(fixed_range(lo.as_bytes(), hi.as_bytes(), sep));
    }
    format!("(?:{})", alts.join("|"))
}

/// An amount in euros as `Cents::parse_euros` reads it, at most `max_cents`: digits, a decimal
/// comma or point and at most two decimals, spaces anywhere (thousands separators), then
/// optionally `€`; leading zeros allowed.
pub fn amount(max_cents: i64) -> String {
    let w = format!("{WS}*");
    let max_cents = u64::try_from(max_cents).unwrap_or(0);
    let (euros, cents) = (max_cents / 100, max_cents % 100);
    let zeros = format!("(?:0{w})*");
    let mut alts = Vec::new();
    if euros > 0 {
        alts.push(format!(
            "{zeros}{}(?:[.,]{w}(?:[0-9]{w}){{0,2}})?",
            up_to(euros - 1, &w)
        ));
    }
    // The ceiling's own euros: only the decimals up to its cents.
    let mut decimals = Vec::new();
    for d in 0..=9u64 {
        if d * 10 <= cents {
            decimals.push(format!("{d}{w}"));
        }
        for e in 0..=9u64 {
            if d * 10 + e <= cents {
                decimals.push(format!("{d}{w}{e}{w}"));
            }
        }
    }
    let digits: String = euros
        .to_string()
        .chars()
        .map(|c| format!("{c}{w}"))
        .collect();
    alts.push(format!(
        "{zeros}{digits}(?:[.,]{w}(?:{})?)?",
        decimals.join("|")
    ));
    format!("^{w}(?:{})(?:€+{w})?$", alts.join("|"))
}

/// A whole number from 0 to `max`, as the facts' number parser reads it, written without
/// leading zeros; spaces and `_` may separate thousands.
pub fn count(max: u64) -> String {
    let w = format!("{WS}*");
    let sep = format!("(?:{WS}|_)*");
    format!("^{w}{}$", up_to(max, &sep))
}

/// Calendar dates `AAAA-MM-JJ` from `first` to `last` (years 0000 to 9999).
pub fn dates(first: NaiveDate, last: NaiveDate) -> String {
    let floor = NaiveDate::from_ymd_opt(0, 1, 1).unwrap_or(first);
    let ceiling = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(last);
    let (first, last) = (first.max(floor), last.min(ceiling));
    // (first day, last day, years) -> months: the ranges the calendar shares.
    let mut by_days: BTreeMap<(u32, u32), BTreeMap<u32, Vec<i32>>> = BTreeMap::new();
    for year in first.year()..=last.year() {
        for month in 1..=12u32 {
            let Some(start) = NaiveDate::from_ymd_opt(year, month, 1) else {
                continue;
            };
            let end = start
                .checked_add_months(chrono::Months::new(1))
                .and_then(|d| d.pred_opt())
                .unwrap_or(start);
            let (lo, hi) = (start.max(first), end.min(last));
            if lo > hi {
                continue;
            }
            by_days
                .entry((lo.day(), hi.day()))
                .or_default()
                .entry(month)
                .or_default()
                .push(year);
        }
    }
    // Months that share both their days and their years are one alternative.
    let mut groups: BTreeMap<(u32, u32, Vec<i32>), Vec<u32>> = BTreeMap::new();
    for ((lo, hi), months) in by_days {
        for (month, years) in months {
            groups.entry((lo, hi, years)).or_default().push(month);
        }
    }
    let alts: Vec<String> = groups
        .into_iter()
        .map(|((lo, hi, years), months)| {
            let months: Vec<String> = months.iter().map(|m| format!("{m:02}")).collect();
            format!(
                "{}-(?:{})-{}",
                years_regex(&years),
                months.join("|"),
                fixed_range(
                    format!("{lo:02}").as_bytes(),
                    format!("{hi:02}").as_bytes(),
                    ""
                )
            )
        })
        .collect();
    format!("^(?:{})$", alts.join("|"))
}

/// Years (sorted) as runs of consecutive years.
fn years_regex(years: &[i32]) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for &y in years {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == y => *end = y,
            _ => runs.push((y, y)),
        }
    }
    let alts: Vec<String> = runs
        .iter()
        .map(|(a, b)| {
            fixed_range(
                format!("{a:04}").as_bytes(),
                format!("{b:04}").as_bytes(),
                "",
            )
        })
        .collect();
    format!("(?:{})", alts.join("|"))
}

/// `s` with the regular expressions' special characters escaped.
pub fn literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One of `values`, around spaces (the parser trims).
pub fn one_of(values: &[&str]) -> String {
    let w = format!("{WS}*");
    let alts: Vec<String> = values.iter().map(|v| literal(v)).collect();
    format!("^{w}(?:{}){w}$", alts.join("|"))
}

/// A collectivité as the simulator reads it, in its canonical spelling: `commune:` and an INSEE
/// code, `epci:` and nine digits, `departement:` or `region:` and a code, or `groupement:` and
/// at least two different such members joined by `+` (a negative lookahead with a
/// back-reference refuses a member given twice).
pub fn applicant() -> String {
    let w = format!("{WS}*");
    let reference = "(?:commune:(?:[0-9]{2}|2[AB])[0-9]{3}|epci:[0-9]{9}\
                     |departement:(?:0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5]|97[0-9])\
                     |region:[0-9]{2})";
    let reference = reference.replace(' ', "");
    format!(
        "^{w}(?:{reference}|groupement:(?!(?:{reference}\\+)*({reference})\\+(?:{reference}\\+)*\\1(?:\\+|{w}$)){reference}(?:\\+{reference})+){w}$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_domain::Cents;

    fn re(p: &str) -> regex::Regex {
        regex::Regex::new(p).expect("regex")
    }

    #[test]
    fn whitespace_is_what_rust_trims() {
        let w = re(&format!("^{WS}$"));
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(w.is_match(&c.to_string()), c.is_whitespace(), "{c:?}");
        }
    }

    #[test]
    fn integer_ranges_are_exact() {
        for max in [
            0u64,
            7,
            9,
            10,
            19,
            88,
            100,
            999,
            1000,
            4096,
            88_000_000 / 997,
        ] {
            let r = re(&format!("^{}$", up_to(max, "")));
            for n in 0..=(max * 2 + 20) {
                assert_eq!(r.is_match(&n.to_string()), n <= max, "{n} <= {max}");
            }
            assert!(!r.is_match("01"));
        }
    }

    #[test]
    fn the_amount_pattern_is_the_parser() {
        let max = Cents::new(8_800_000_000);
        let r = re(&amount(max.get()));
        let samples = [
            "0",
            "00",
            "1",
            "12,5",
            "12.50",
            "12,555",
            "1 234,56 €",
            "1\u{202f}234,56\u{a0}€",
            "88000000",
            "88000000,00",
            "88000000.0",
            "88000000,01",
            "88000001",
            "87999999,99",
            "088000000",
            "880000000",
            "-3",
            "+3",
            "abc",
            "",
            " ",
            "€",
            "5€€",
            "5 € ",
            "5€ €",
            "5.",
            ".5",
            "5..",
            "5,,",
            "5.,1",
            "1e3",
            "٣",
            "12 3 4",
            "\t7\n",
            "7\u{85}",
            "7\u{feff}",
            "9999999999999999999999",
            "0000000000000000000000000001",
        ];
        for s in samples {
            let parsed = Cents::parse_euros(s).is_ok_and(|c| c <= max);
            assert_eq!(r.is_match(s), parsed, "« {s} »");
        }
        // With cents in the ceiling.
        let r = re(&amount(12_345));
        for (s, ok) in [
            ("123,45", true),
            ("123,4", true),
            ("123,46", false),
            ("123,5", false),
            ("122,99", true),
        ] {
            assert_eq!(r.is_match(s), ok, "{s}");
        }
    }

    #[test]
    fn the_count_pattern_is_whole_numbers_up_to_the_ceiling() {
        let r = re(&count(1_000_000_000));
        for (s, ok) in [
            ("0", true),
            ("31", true),
            (" 31 ", true),
            ("1 000", true),
            ("1_000", true),
            ("1000000000", true),
            ("1000000001", false),
            ("-1", false),
            ("3.5", false),
            ("", false),
        ] {
            assert_eq!(r.is_match(s), ok, "{s}");
        }
    }

    #[test]
    fn the_date_pattern_is_the_calendar_within_the_bounds() {
        let (first, last) = (
            NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2100, 12, 31).unwrap(),
        );
        let r = re(&dates(first, last));
        let mut d = NaiveDate::from_ymd_opt(1999, 12, 1).unwrap();
        while d < NaiveDate::from_ymd_opt(2101, 2, 1).unwrap() {
            assert_eq!(r.is_match(&d.to_string()), first <= d && d <= last, "{d}");
            d = d.succ_opt().unwrap();
        }
        for s in [
            "2021-02-29",
            "2100-02-29",
            "2021-13-01",
            "2021-00-10",
            "2021-04-31",
            "2021-6-1",
            " 2021-06-01",
        ] {
            assert!(!r.is_match(s), "{s}");
        }
        assert!(r.is_match("2000-02-29") && r.is_match("2096-02-29"));
        // Bounds inside a month.
        let r = re(&dates(
            NaiveDate::from_ymd_opt(2021, 3, 15).unwrap(),
            NaiveDate::from_ymd_opt(2022, 3, 10).unwrap(),
        ));
        for (s, ok) in [
            ("2021-03-14", false),
            ("2021-03-15", true),
            ("2021-12-31", true),
            ("2022-02-28", true),
            ("2022-03-10", true),
            ("2022-03-11", false),
        ] {
            assert_eq!(r.is_match(s), ok, "{s}");
        }
    }
}
