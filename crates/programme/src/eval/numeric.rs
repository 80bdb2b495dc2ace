//! Numeric fast paths and money conversions: small decimals and rounding in integers (tests
//! compare them with `rust_decimal`), overflow as an error.

use super::*;

pub(super) fn as_rate(v: &Option<Value>) -> Option<Decimal> {
    match v {
        // Already without trailing zeros (most rates, written so): as is.
        Some(Value::Nombre(d)) if !d.is_zero() && (d.scale() == 0 || d.mantissa() % 10 != 0) => {
            Some(*d)
        }
        Some(Value::Nombre(d)) => Some(d.normalize()),
        _ => None,
    }
}

pub(super) fn overflow() -> EvalError {
    EvalError::Arithmetic("dépassement de capacité".into())
}

pub(super) fn to_cents(v: &Value) -> Option<Cents> {
    match v {
        // Whole cents: no fraction to drop.
        Value::Montant(d) if d.scale() == 0 => i64::try_from(d.mantissa()).ok().map(Cents::new),
        Value::Montant(d) => d.trunc().to_i64().map(Cents::new),
        _ => None,
    }
}

pub(super) fn round(d: Decimal, r: Rounding) -> Decimal {
    // A positive amount whose hundredth is exact (at most 26 decimals): the same result in
    // integers, without dividing decimals.
    if !d.is_sign_negative() && d.scale() <= 17 {
        // Most amounts: whole cents already, or a mantissa of 64 bits (divided in hardware,
        // not by the 128-bit routine).
        if d.scale() == 0 && matches!(r, Rounding::CentDown) {
            return d;
        }
        if let Ok(m) = u64::try_from(d.mantissa()) {
            let unit = 10u64.pow(d.scale());
            let q = match r {
                Rounding::CentDown => Some(m / unit),
                Rounding::EuroDown => (m / (unit * 100)).checked_mul(100),
                Rounding::EuroNearest => {
                    let euro = unit * 100;
                    (m / euro + u64::from(m % euro >= euro - m % euro)).checked_mul(100)
                }
            };
            if let Some(q) = q {
                return Decimal::from(q);
            }
        }
    }
    if !d.is_sign_negative() && d.scale() <= 26 {
        let (m, unit) = (d.mantissa(), 10i128.pow(d.scale()));
        let q = match r {
            Rounding::CentDown => m / unit,
            Rounding::EuroDown => m / (unit * 100) * 100,
            Rounding::EuroNearest => {
                let euro = unit * 100;
                (m / euro + i128::from(m % euro * 2 >= euro)) * 100
            }
        };
        if let Ok(v) = Decimal::try_from_i128_with_scale(q, 0) {
            return v;
        }
    }
    let hundred = Decimal::ONE_HUNDRED;
    match r {
        Rounding::CentDown => d.floor(),
        Rounding::EuroDown => (d / hundred).floor() * hundred,
        Rounding::EuroNearest => {
            (d / hundred)
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                * hundred
        }
    }
}

/// Sums, differences and products of non-negative decimals whose mantissas fit in 62 bits,
/// computed in integers: the decimal `rust_decimal` gives, same scale included (a test
/// compares them), without its general algorithm. `None`: not such a case.
pub(super) fn small_decimal(op: BinOp, x: Decimal, y: Decimal) -> Option<Decimal> {
    const LIMIT: i128 = 1 << 62;
    let (mx, my) = (x.mantissa(), y.mantissa());
    if !(0..LIMIT).contains(&mx) || !(0..LIMIT).contains(&my) {
        return None;
    }
    let (sx, sy) = (x.scale(), y.scale());
    match op {
        BinOp::Add if sx == sy => Decimal::try_from_i128_with_scale(mx + my, sx).ok(),
        BinOp::Sub if sx == sy && mx >= my => Decimal::try_from_i128_with_scale(mx - my, sx).ok(),
        BinOp::Mul if mx != 0 && my != 0 && sx + sy <= 28 => {
            Decimal::try_from_i128_with_scale(mx * my, sx + sy).ok()
        }
        _ => None,
    }
}

pub(super) fn arith(op: BinOp, a: &Value, b: &Value) -> R {
    use Value::*;
    let f = |x: Decimal, y: Decimal| -> Result<Decimal, EvalError> {
        if let Some(d) = small_decimal(op, x, y) {
            return Ok(d);
        }
        match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div => {
                if y.is_zero() {
                    return Err(EvalError::Arithmetic("division par zéro".into()));
                }
                x.checked_div(y)
            }
            _ => None,
        }
        .ok_or_else(overflow)
    };
    Ok(match (op, a, b) {
        (BinOp::Add | BinOp::Sub, Nombre(x), Nombre(y)) => Nombre(f(*x, *y)?),
        (BinOp::Add | BinOp::Sub, Montant(x), Montant(y)) => Montant(f(*x, *y)?),
        (BinOp::Mul, Nombre(x), Nombre(y)) => Nombre(f(*x, *y)?),
        (BinOp::Mul, Montant(x), Nombre(y)) | (BinOp::Mul, Nombre(y), Montant(x)) => {
            Montant(f(*x, *y)?)
        }
        (BinOp::Div, Nombre(x), Nombre(y)) | (BinOp::Div, Montant(x), Montant(y)) => {
            Nombre(f(*x, *y)?)
        }
        (BinOp::Div, Montant(x), Nombre(y)) => Montant(f(*x, *y)?),
        (op, a, b) => {
            return Err(EvalError::Arithmetic(format!(
                "opération impossible : {a} {} {b}",
                op.symbol()
            ))
            .into())
        }
    })
}
