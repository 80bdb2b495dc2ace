//! Type inference of formulas, and the cycles it finds.

use super::*;

/// Where the type inference of a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inference {
    NotYet,
    /// Being inferred: reaching it again is a cycle.
    InProgress,
    Done,
}

pub(super) fn infer_rule(
    i: usize,
    pending: &[Pending<'_>],
    nodes: &[Option<Node>],
    shared: &Shared<'_>,
    types: &mut Vec<Option<Type>>,
    state: &mut Vec<Inference>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Type> {
    if let Some(t) = types[i] {
        return Some(t);
    }
    if state[i] == Inference::InProgress {
        diags.push(pending[i].origin.diag(
            None,
            format!(
                "cycle : la règle « {} » dépend d’elle-même",
                pending[i].name
            ),
        ));
        return None;
    }
    if state[i] == Inference::Done {
        return None;
    }
    let Some(node) = nodes[i].as_ref() else {
        // Refused earlier (a name unknown, a formula that does not parse): no type, and no
        // cycle either for the rules that read it.
        state[i] = Inference::Done;
        return None;
    };
    state[i] = Inference::InProgress;
    let mut cx = TypeCx {
        pending,
        nodes,
        shared,
        types,
        state,
        diags,
        at: i,
    };
    let t = cx.infer(node);
    state[i] = Inference::Done;
    if let (Some(t), Some(expected)) = (t, pending[i].expected) {
        if t.unify(expected).is_none() {
            diags.push(pending[i].origin.diag(
                None,
                format!(
                    "{} : type incompatible, {} attendu mais la formule donne un {}",
                    pending[i].name,
                    expected.label(),
                    t.label()
                ),
            ));
        }
    }
    types[i] = t;
    t
}

pub(super) struct TypeCx<'a, 'b> {
    pub(super) pending: &'a [Pending<'b>],
    pub(super) nodes: &'a [Option<Node>],
    pub(super) shared: &'a Shared<'a>,
    pub(super) types: &'a mut Vec<Option<Type>>,
    pub(super) state: &'a mut Vec<Inference>,
    pub(super) diags: &'a mut Vec<Diagnostic>,
    pub(super) at: usize,
}

impl TypeCx<'_, '_> {
    pub(super) fn fail(&mut self, msg: String) -> Option<Type> {
        let p = &self.pending[self.at];
        self.diags
            .push(p.origin.diag(None, format!("{} : {msg}", p.name)));
        None
    }

    pub(super) fn infer(&mut self, n: &Node) -> Option<Type> {
        use Type::*;
        match n {
            Node::Const(v) => Some(v.type_of()),
            Node::Rule(r) => {
                let r = *r;
                let at = self.at;
                let t = infer_rule(
                    r,
                    self.pending,
                    self.nodes,
                    self.shared,
                    self.types,
                    self.state,
                    self.diags,
                );
                self.at = at;
                if t.is_none() && self.state[r] == Inference::InProgress {
                    return self.fail(format!(
                        "cycle entre « {} » et « {} »",
                        self.pending[at].name, self.pending[r].name
                    ));
                }
                t
            }
            Node::Param(p) => Some(self.shared.params[*p].ty),
            Node::Fact(f) => Some(self.shared.facts[*f].ty),
            Node::Builtin(b) => Some(match b {
                Builtin::CoutTotal | Builtin::Depense(_) | Builtin::Assiette => Montant,
                Builtin::Taux | Builtin::TauxMax => Nombre,
            }),
            Node::Neg(a) => {
                let t = self.infer(a)?;
                if matches!(t, Nombre | Montant | Any) {
                    Some(t)
                } else {
                    self.fail(format!("« - » devant un {}", t.label()))
                }
            }
            Node::In(a, items) => {
                let t = self.infer(a)?;
                for it in items {
                    if t.unify(it.type_of()).is_none() {
                        return self.fail(format!(
                            "« dans » compare un {} à « {} » ({})",
                            t.label(),
                            it,
                            it.type_of().label()
                        ));
                    }
                }
                Some(Booleen)
            }
            Node::Bin(op, a, b) => {
                let (ta, tb) = (self.infer(a)?, self.infer(b)?);
                let bad = |s: &mut Self| {
                    s.fail(format!(
                        "type incompatible : {} {} {}",
                        ta.label(),
                        op.symbol(),
                        tb.label()
                    ))
                };
                match op {
                    BinOp::And | BinOp::Or => {
                        if ta.unify(Booleen).is_some() && tb.unify(Booleen).is_some() {
                            Some(Booleen)
                        } else {
                            bad(self)
                        }
                    }
                    BinOp::Eq | BinOp::Ne => {
                        if ta.unify(tb).is_some() {
                            Some(Booleen)
                        } else {
                            bad(self)
                        }
                    }
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match ta.unify(tb) {
                        Some(Nombre | Montant | Date | Any) => Some(Booleen),
                        _ => bad(self),
                    },
                    BinOp::Add | BinOp::Sub => match ta.unify(tb) {
                        Some(t @ (Nombre | Montant | Any)) => Some(t),
                        _ => bad(self),
                    },
                    BinOp::Mul => match (ta, tb) {
                        (Nombre, Nombre) => Some(Nombre),
                        (Montant, Nombre) | (Nombre, Montant) => Some(Montant),
                        (Any, t) | (t, Any) if t != Date && t != Booleen && t != Texte => Some(t),
                        _ => bad(self),
                    },
                    BinOp::Div => match (ta, tb) {
                        (Nombre, Nombre) | (Montant, Montant) => Some(Nombre),
                        (Montant, Nombre) => Some(Montant),
                        (Any, t) | (t, Any) if t != Date && t != Booleen && t != Texte => Some(t),
                        _ => bad(self),
                    },
                }
            }
            Node::All(v) | Node::Any(v) => {
                for x in v {
                    let t = self.infer(x)?;
                    if t.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "une condition de la liste donne un {} au lieu d’un booléen",
                            t.label()
                        ));
                    }
                }
                Some(Booleen)
            }
            Node::Min(v) | Node::Max(v) | Node::Sum(v) => {
                let mut t = Any;
                for x in v {
                    let tx = self.infer(x)?;
                    t = match t.unify(tx) {
                        Some(u @ (Nombre | Montant | Date | Any)) => u,
                        _ => {
                            return self.fail(format!(
                                "valeurs de types différents dans une liste : {} et {}",
                                t.label(),
                                tx.label()
                            ))
                        }
                    };
                }
                if matches!(n, Node::Sum(_)) && t == Date {
                    return self.fail("on ne fait pas la somme de dates".into());
                }
                Some(t)
            }
            Node::Product(v) => {
                let mut montants = 0;
                for x in v {
                    match self.infer(x)? {
                        Nombre | Any => {}
                        Montant => montants += 1,
                        other => return self.fail(format!("« produit » d’un {}", other.label())),
                    }
                }
                match montants {
                    0 => Some(Nombre),
                    1 => Some(Montant),
                    _ => self.fail("« produit » de deux montants".into()),
                }
            }
            Node::Variations(branches, otherwise) => {
                let mut t = Any;
                for (c, v) in branches {
                    let tc = self.infer(c)?;
                    if tc.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "« si » d’une variation donne un {} au lieu d’un booléen",
                            tc.label()
                        ));
                    }
                    let tv = self.infer(v)?;
                    t = match t.unify(tv) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "les branches d’une variation n’ont pas le même type : {} et {}",
                                t.label(),
                                tv.label()
                            ))
                        }
                    };
                }
                if let Some(o) = otherwise {
                    let to = self.infer(o)?;
                    t = match t.unify(to) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "« sinon » n’a pas le type des autres branches : {} et {}",
                                t.label(),
                                to.label()
                            ))
                        }
                    };
                }
                Some(t)
            }
            Node::Grid(base, tranches) => {
                let tb = self.infer(base)?;
                let mut t = Any;
                for (lo, hi, v) in tranches {
                    for b in [lo, hi].into_iter().flatten() {
                        if tb.unify(b.value.type_of()).is_none() {
                            return self.fail(format!(
                                "borne « {} » ({}) comparée à une assiette de type {}",
                                b.value,
                                b.value.type_of().label(),
                                tb.label()
                            ));
                        }
                    }
                    let tv = self.infer(v)?;
                    t = match t.unify(tv) {
                        Some(u) => u,
                        None => {
                            return self.fail(format!(
                                "les tranches n’ont pas le même type : {} et {}",
                                t.label(),
                                tv.label()
                            ))
                        }
                    };
                }
                Some(t)
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                let t = self.infer(value)?;
                for c in [applicable, not_applicable].into_iter().flatten() {
                    let tc = self.infer(c)?;
                    if tc.unify(Booleen).is_none() {
                        return self.fail(format!(
                            "« applicable si » donne un {} au lieu d’un booléen",
                            tc.label()
                        ));
                    }
                }
                for c in [cap, floor].into_iter().flatten() {
                    let tc = self.infer(c)?;
                    if tc.unify(t).is_none() {
                        return self.fail(format!(
                            "plafond ou plancher de type {} sur une valeur de type {}",
                            tc.label(),
                            t.label()
                        ));
                    }
                }
                if rounding.is_some() && t.unify(Montant).is_none() {
                    return self.fail(format!(
                        "« arrondi » sur un {} (montant attendu)",
                        t.label()
                    ));
                }
                Some(t)
            }
        }
    }
}
