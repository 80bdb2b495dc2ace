//! Typed values of the rules engine. Amounts are exact decimals of euro cents (a rate times an
//! amount may fall between two cents until the programme's rounding rule applies); rates and
//! counts are exact decimals; nothing is ever a float.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::fmt;
use std::sync::Arc;

/// The static type of an expression, checked when a programme is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A unitless exact decimal: counts, populations, rates.
    Nombre,
    /// Money, in cents.
    Montant,
    Date,
    Booleen,
    Texte,
    /// `non_applicable` alone: compatible with any type.
    Any,
}

impl Type {
    pub fn label(self) -> &'static str {
        match self {
            Type::Nombre => "nombre",
            Type::Montant => "montant",
            Type::Date => "date",
            Type::Booleen => "booléen",
            Type::Texte => "texte",
            Type::Any => "non applicable",
        }
    }

    /// The type two branches share, if any.
    pub fn unify(self, other: Type) -> Option<Type> {
        match (self, other) {
            (Type::Any, t) | (t, Type::Any) => Some(t),
            (a, b) if a == b => Some(a),
            _ => None,
        }
    }

    pub fn parse(unit: &str) -> Option<Type> {
        Some(match unit {
            "nombre" | "habitants" | "communes" | "%" | "taux" => Type::Nombre,
            "€" | "montant" => Type::Montant,
            "date" => Type::Date,
            "booleen" | "booléen" => Type::Booleen,
            "texte" => Type::Texte,
            _ => return None,
        })
    }
}

/// A value computed by the engine.
///
/// `repr(u64)`: the tag takes a whole word and every payload starts on the next one, so a
/// value is copied word by word (the default layout packs the tag and a boolean in the first
/// bytes and the compiler then copies values in unaligned pieces, which stalls: about a third
/// of a rules sweep's time).
#[derive(Debug, Clone, PartialEq)]
#[repr(u64)]
pub enum Value {
    Nombre(Decimal),
    /// Cents, possibly fractional before rounding.
    Montant(Decimal),
    Date(NaiveDate),
    Booleen(bool),
    Texte(Arc<str>),
    /// The rule does not apply here (Publicodes' `non applicable`): ignored by `le minimum de`,
    /// zero in a `somme`, no cap in `plafond`.
    NonApplicable,
    /// A fact the situation does not give: the result cannot be established.
    Absent,
}

impl Value {
    pub fn type_of(&self) -> Type {
        match self {
            Value::Nombre(_) => Type::Nombre,
            Value::Montant(_) => Type::Montant,
            Value::Date(_) => Type::Date,
            Value::Booleen(_) => Type::Booleen,
            Value::Texte(_) => Type::Texte,
            Value::NonApplicable | Value::Absent => Type::Any,
        }
    }

    pub fn text(s: &str) -> Value {
        Value::Texte(Arc::from(s))
    }

    pub fn euros(euros: i64) -> Value {
        Value::Montant(Decimal::from(euros) * Decimal::ONE_HUNDRED)
    }

    /// Parses a literal written for a parameter of the given type: `15000`, `50 %`, `0.8`,
    /// `5000 €`, `4 000,50 €`, `2022-10-31`, `oui`/`non`, or any text.
    pub fn parse_literal(input: &str, ty: Type) -> Result<Value, String> {
        let s = input.trim();
        match ty {
            Type::Nombre => parse_number(s).map(Value::Nombre),
            Type::Montant => parse_euros(s).map(Value::Montant),
            Type::Date => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Value::Date)
                .map_err(|_| format!("date invalide : « {s} » (AAAA-MM-JJ attendu)")),
            Type::Booleen => match s {
                "oui" | "true" => Ok(Value::Booleen(true)),
                "non" | "false" => Ok(Value::Booleen(false)),
                _ => Err(format!("booléen invalide : « {s} » (oui ou non attendu)")),
            },
            Type::Texte => Ok(Value::text(s)),
            Type::Any => Err("type indéterminé".into()),
        }
    }

    /// Machine form for JSON and test comparisons: rates and numbers as decimal strings, money
    /// as integer cents when whole.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nombre(d) => serde_json::Value::String(d.normalize().to_string()),
            // Whole cents as an integer (the mantissa of its whole part, normalised to scale 0); fractional cents, or more than 64 bits hold, as a decimal string,
            // never a saturated or rescaled figure.
            Value::Montant(c) => match i64::try_from(c.trunc().normalize().mantissa()) {
                Ok(n) if c.fract().is_zero() => serde_json::json!(n),
                _ => serde_json::Value::String(c.normalize().to_string()),
            },
            Value::Date(d) => serde_json::Value::String(iso_date(*d)),
            Value::Booleen(b) => serde_json::Value::Bool(*b),
            Value::Texte(t) => serde_json::Value::String(t.to_string()),
            Value::NonApplicable | Value::Absent => serde_json::Value::Null,
        }
    }
}

/// `15000`, `0.5`, `50 %`, `12,5 %`.
pub fn parse_number(s: &str) -> Result<Decimal, String> {
    let bad = || format!("nombre invalide : « {s} »");
    let (body, percent) = match s.strip_suffix('%') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let cleaned: String = body
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\u{a0}' && *c != '_')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    if cleaned.is_empty() {
        return Err(bad());
    }
    let d: Decimal = cleaned.parse().map_err(|_| bad())?;
    Ok(if percent { d / Decimal::ONE_HUNDRED } else { d })
}

/// Euros to cents: `5000 €`, `4 000,50`, `12 345.67 €`.
pub fn parse_euros(s: &str) -> Result<Decimal, String> {
    let body = s.trim().trim_end_matches('€').trim();
    let d = parse_number(body).map_err(|_| format!("montant invalide : « {s} »"))?;
    if d.scale() > 2 {
        return Err(format!(
            "montant invalide : « {s} » (deux décimales au plus)"
        ));
    }
    Ok(d * Decimal::ONE_HUNDRED)
}

fn group(int: &str) -> String {
    let mut out = String::with_capacity(int.len() + int.len() / 3 * 3);
    push_grouped(&mut out, int);
    out
}

/// Appends ASCII digits grouped by three with narrow no-break spaces.
fn push_grouped(out: &mut String, int: &str) {
    let n = int.len();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
}

/// Appends [`french_decimal`]'s text.
fn push_french_decimal(out: &mut String, d: Decimal) {
    use fmt::Write;
    let d = d.normalize();
    if d.is_sign_negative() && !d.is_zero() {
        out.push('-');
    }
    // The digits on the stack: a decimal has at most 29 digits, a point and no sign here.
    let mut digits = Digits::default();
    if write!(digits, "{}", d.abs()).is_err() {
        let s = d.abs().to_string();
        let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
        push_grouped(out, int);
        if !frac.is_empty() {
            out.push(',');
            out.push_str(frac);
        }
        return;
    }
    let s = digits.as_str();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    push_grouped(out, int);
    if !frac.is_empty() {
        out.push(',');
        out.push_str(frac);
    }
}

/// A small text buffer on the stack; writing past its end fails.
struct Digits {
    buf: [u8; 64],
    len: usize,
}

impl Default for Digits {
    fn default() -> Self {
        Digits {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Digits {
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A decimal in French: `15 000`, `0,5`, `65 911`.
pub fn french_decimal(d: Decimal) -> String {
    let mut out = String::with_capacity(16);
    push_french_decimal(&mut out, d);
    out
}

/// Cents in French: `5 000 €` when whole euros, `1 234,56 €` otherwise.
pub fn french_money(cents: Decimal) -> String {
    let euros = cents / Decimal::ONE_HUNDRED;
    let euros = euros.normalize();
    if euros.fract().is_zero() {
        let mut out = String::with_capacity(20);
        push_french_decimal(&mut out, euros);
        out.push_str("\u{a0}€");
        out
    } else {
        let rounded = euros.round_dp(4);
        let s = format!("{:.2}", rounded);
        let d: Decimal = s.parse().unwrap_or(rounded);
        let int = d.trunc().abs().to_string();
        let frac = s.split_once('.').map(|(_, f)| f).unwrap_or("00");
        let sign = if d.is_sign_negative() { "-" } else { "" };
        format!("{sign}{},{frac}\u{a0}€", group(&int))
    }
}

/// A rate in French: `50 %`, `100 %`, `12,5 %`.
pub fn french_rate(rate: Decimal) -> String {
    let mut out = String::with_capacity(12);
    push_french_decimal(&mut out, rate * Decimal::ONE_HUNDRED);
    out.push_str("\u{a0}%");
    out
}

/// `2021-06-01`, as chrono writes it, without a format string to parse.
fn iso_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    let (day, month, year) = (d.day(), d.month(), d.year());
    if !(0..=9999).contains(&year) {
        return d.to_string();
    }
    let y = year.unsigned_abs();
    let digits = [
        y / 1000,
        y / 100 % 10,
        y / 10 % 10,
        y % 10,
        10,
        month / 10,
        month % 10,
        10,
        day / 10,
        day % 10,
    ];
    digits
        .iter()
        .map(|&n| {
            if n == 10 {
                '-'
            } else {
                char::from(b'0' + n as u8)
            }
        })
        .collect()
}

/// `01/06/2021`.
pub fn french_date(d: NaiveDate) -> String {
    let mut out = String::with_capacity(10);
    push_french_date(&mut out, d);
    out
}

/// Appends [`french_date`]'s text: `%d/%m/%Y` without a format string to parse.
pub fn push_french_date(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    let (day, month, year) = (d.day(), d.month(), d.year());
    if (0..=9999).contains(&year) {
        fn two(out: &mut String, n: u32) {
            out.push(char::from(b'0' + (n / 10 % 10) as u8));
            out.push(char::from(b'0' + (n % 10) as u8));
        }
        let y = year.unsigned_abs();
        two(out, day);
        out.push('/');
        two(out, month);
        out.push('/');
        two(out, y / 100);
        two(out, y % 100);
    } else {
        use fmt::Write;
        let _ = write!(out, "{}", d.format("%d/%m/%Y"));
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nombre(d) => f.write_str(&french_decimal(*d)),
            Value::Montant(c) => f.write_str(&french_money(*c)),
            Value::Date(d) => f.write_str(&french_date(*d)),
            Value::Booleen(true) => f.write_str("oui"),
            Value::Booleen(false) => f.write_str("non"),
            Value::Texte(t) => f.write_str(t),
            Value::NonApplicable => f.write_str("non applicable"),
            Value::Absent => f.write_str("non renseigné"),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_raw_amount_is_its_number_of_cents_whatever_its_scale() {
        use serde_json::json;
        // 50 000 € computed as 5 000 000.00 cents (scale 2): 5 000 000, not 50 000.
        assert_eq!(
            Value::Montant(Decimal::new(500_000_000, 2)).to_json(),
            json!(5_000_000)
        );
        assert_eq!(
            Value::Montant(Decimal::from(8_800_000_000i64)).to_json(),
            json!(8_800_000_000i64)
        );
        assert_eq!(
            Value::Montant(Decimal::new(12345, 1)).to_json(),
            json!("1234.5")
        );
        // Beyond 64 bits: the exact figure, not a saturated one.
        let huge = Decimal::from(i64::MAX) * Decimal::from(4);
        assert_eq!(Value::Montant(huge).to_json(), json!(huge.to_string()));
    }

    use super::*;

    #[test]
    fn literals() {
        assert_eq!(
            Value::parse_literal("50 %", Type::Nombre),
            Ok(Value::Nombre(Decimal::new(5, 1)))
        );
        assert_eq!(
            Value::parse_literal("4 000,50 €", Type::Montant),
            Ok(Value::Montant(Decimal::from(400_050)))
        );
        assert!(Value::parse_literal("4,555 €", Type::Montant).is_err());
        assert!(Value::parse_literal("2022-02-30", Type::Date).is_err());
        assert!(Value::parse_literal("peut-être", Type::Booleen).is_err());
    }

    #[test]
    fn french_display() {
        assert_eq!(
            french_money(Decimal::from(1_600_000)),
            "16\u{202f}000\u{a0}€"
        );
        assert_eq!(
            french_money(Decimal::from(123_456)),
            "1\u{202f}234,56\u{a0}€"
        );
        assert_eq!(french_rate(Decimal::new(5, 1)), "50\u{a0}%");
        assert_eq!(french_decimal(Decimal::from(65911)), "65\u{202f}911");
    }

    #[test]
    fn dates_and_decimals_written_by_hand_are_what_format_strings_wrote() {
        let days = [
            (1, 1, 1),
            (0, 1, 1),
            (-1, 12, 31),
            (9, 2, 3),
            (99, 10, 10),
            (999, 7, 4),
            (2021, 6, 1),
            (2022, 12, 31),
            (9999, 12, 31),
            (10_000, 1, 1),
        ];
        for (y, m, d) in days {
            let Some(date) = NaiveDate::from_ymd_opt(y, m, d) else {
                panic!("{y}-{m}-{d}");
            };
            assert_eq!(french_date(date), date.format("%d/%m/%Y").to_string());
            assert_eq!(iso_date(date), date.to_string());
        }
        // The grouping and the decimal comma, as `french_decimal` wrote them from `to_string`.
        let by_string = |d: Decimal| {
            let d = d.normalize();
            let s = d.abs().to_string();
            let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
            let sign = if d.is_sign_negative() && !d.is_zero() {
                "-"
            } else {
                ""
            };
            let frac = if frac.is_empty() {
                String::new()
            } else {
                format!(",{frac}")
            };
            format!("{sign}{}{frac}", group(int))
        };
        for d in [
            Decimal::ZERO,
            Decimal::new(-0, 2),
            Decimal::new(5, 1),
            Decimal::new(-123_456_789, 3),
            Decimal::from(65911),
            Decimal::from(1_000_000),
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(1, 28),
        ] {
            assert_eq!(french_decimal(d), by_string(d), "{d:?}");
        }
    }
}
