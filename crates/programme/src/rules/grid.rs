//! Grids (`grille`): comparing bounds, and tranches that neither overlap nor leave a gap.

use super::*;

/// Compares two constants of one type (numbers, amounts or dates).
pub(crate) fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Nombre(x), Value::Nombre(y)) | (Value::Montant(x), Value::Montant(y)) => {
            // The same scale (most comparisons: whole numbers, cents): the mantissas say it.
            Some(if x.scale() == y.scale() {
                x.mantissa().cmp(&y.mantissa())
            } else {
                x.cmp(y)
            })
        }
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// The tranches of a grid must not overlap, nor leave a gap between them.
pub(super) fn check_grid(
    tranches: Vec<(&Option<Bound>, &Option<Bound>)>,
    p: &Pending<'_>,
) -> Result<(), Diagnostic> {
    use std::cmp::Ordering::*;
    let fail = |m: String| Err(p.origin.diag(Some("tranches"), format!("{} : {m}", p.name)));
    for (i, (lo, hi)) in tranches.iter().enumerate() {
        if let (Some(l), Some(h)) = (lo, hi) {
            match cmp_values(&l.value, &h.value) {
                None => return fail(format!("tranche {} : bornes de types différents", i + 1)),
                Some(Greater) => {
                    return fail(format!(
                        "tranche {} : borne basse au-dessus de la borne haute",
                        i + 1
                    ))
                }
                Some(Equal) if !(l.inclusive && h.inclusive) => {
                    return fail(format!("tranche {} : vide", i + 1))
                }
                _ => {}
            }
        }
        if i == 0 {
            continue;
        }
        let (_, prev_hi) = tranches[i - 1];
        let Some(ph) = prev_hi else {
            return fail(format!(
                "la tranche {} n’a pas de borne haute : les tranches suivantes la chevauchent",
                i
            ));
        };
        let Some(l) = lo else {
            return fail(format!(
                "la tranche {} n’a pas de borne basse : elle chevauche la tranche {}",
                i + 1,
                i
            ));
        };
        match cmp_values(&ph.value, &l.value) {
            None => return fail(format!("tranches {} et {} : bornes de types différents", i, i + 1)),
            Some(Equal) => {
                if ph.inclusive && l.inclusive {
                    return fail(format!(
                        "les tranches {} et {} se chevauchent : la valeur {} est dans les deux (utilisez « au-delà de » pour l’une)",
                        i,
                        i + 1,
                        l.value
                    ));
                }
                if !ph.inclusive && !l.inclusive {
                    return fail(format!(
                        "trou entre les tranches {} et {} : la valeur {} n’est dans aucune",
                        i,
                        i + 1,
                        l.value
                    ));
                }
            }
            Some(Greater) => {
                return fail(format!(
                    "les tranches {} et {} se chevauchent (la tranche {} commence à {}, avant la fin de la tranche {})",
                    i,
                    i + 1,
                    i + 1,
                    l.value,
                    i
                ))
            }
            Some(Less) => {
                // Adjacent integers (jusqu'à 15000 / à partir de 15001) leave no gap for counts.
                let adjacent_counts = matches!(
                    (&ph.value, &l.value),
                    (Value::Nombre(a), Value::Nombre(b))
                        if ph.inclusive && l.inclusive && a.fract().is_zero() && b.fract().is_zero()
                            && *b - *a == rust_decimal::Decimal::ONE
                );
                if !adjacent_counts {
                    return fail(format!(
                        "trou entre les tranches {} et {} (de {} à {})",
                        i,
                        i + 1,
                        ph.value,
                        l.value
                    ));
                }
            }
        }
    }
    Ok(())
}
