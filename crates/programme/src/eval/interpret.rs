//! The interpreter: rule values (kept, or computed and kept), facts, parameters and formula
//! nodes, with the explanation's steps when asked.

use super::*;

impl<'a> Ev<'a> {
    pub(super) fn rule(&mut self, i: usize) -> R {
        let set = self.set;
        let class = set
            .dependence
            .get(i)
            .copied()
            .unwrap_or(Dependence::Measure);
        // With an explanation, each rule shows under its own name.
        let slot = match (&self.trace, set.same_as.get(i)) {
            (None, Some(&same)) => same,
            _ => i,
        };
        let m = &self.s.memo[slot];
        if m.stamp == self.s.memo_epochs[class as usize] {
            let v = m.value.clone();
            let (a, (ms, me), (es, ee)) = (m.arena, m.missing, m.effects);
            if ms == me && es == ee {
                return Ok(v);
            }
            let arena = &self.s.arenas[a as usize];
            self.s
                .missing
                .extend_from_slice(arena.missing.get(ms..me).unwrap_or_default());
            for k in es..ee {
                if let Some(&e) = self.s.arenas[a as usize].effects.get(k) {
                    self.effect(e);
                }
            }
            return Ok(v);
        }
        self.compute_rule(i, slot, class)
    }

    /// A rule's value, computed (and kept for as long as what it depends on stays).
    #[inline(never)]
    pub(super) fn compute_rule(&mut self, i: usize, slot: usize, class: Dependence) -> R {
        let set = self.set;
        let def = &set.rules[i];
        let notes_from = self.s.notes.len();
        let missing_from = self.s.missing.len();
        let effects_from = self.s.effects.len();
        let v = self.eval(&def.node)?;
        let a = match set.dependence.get(i) {
            Some(Dependence::Date) => ArenaKind::Date,
            _ => ArenaKind::Situation,
        };
        let arena = &mut self.s.arenas[a as usize];
        let ms = arena.missing.len();
        arena
            .missing
            .extend_from_slice(self.s.missing.get(missing_from..).unwrap_or_default());
        let es = arena.effects.len();
        arena
            .effects
            .extend_from_slice(self.s.effects.get(effects_from..).unwrap_or_default());
        // Field by field, in place: no temporary `Memo` to copy.
        let (me, ee) = (arena.missing.len(), arena.effects.len());
        let m = &mut self.s.memo[slot];
        m.value.clone_from(&v);
        m.arena = a;
        m.missing = (ms, me);
        m.effects = (es, ee);
        m.stamp = self.s.memo_epochs[class as usize];
        if self.trace.is_some() {
            let notes: Vec<String> = self.s.notes.drain(notes_from..).collect();
            let kind = if def.name.starts_with("condition ") {
                StepKind::Condition
            } else {
                StepKind::Regle
            };
            let display = match (&v, def.ty) {
                // `to_lowercase().starts_with("taux")` without the copy: no other letter
                // lowers to these four.
                (Value::Nombre(d), _)
                    if def
                        .title
                        .get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case("taux")) =>
                {
                    french_rate(*d)
                }
                (Value::Booleen(b), _) if kind == StepKind::Condition => {
                    if *b { "respectée" } else { "non respectée" }.to_string()
                }
                (Value::Absent, _) => "à préciser".to_string(),
                _ => v.to_string(),
            };
            // A condition's title is its message, whose `{nom}` show values.
            let title = if def.title.contains('{') {
                match set.titles.get(i) {
                    Some(pieces) if !pieces.is_empty() => {
                        let mut out = String::with_capacity(def.title.len() + 16);
                        self.read_pieces(pieces, Some(&mut out))?;
                        out
                    }
                    _ => self.interpolate(&def.title)?,
                }
            } else {
                def.title.clone()
            };
            self.step(Step {
                kind,
                name: def.name.clone(),
                title,
                display,
                raw: v.clone(),
                formula: Some(def.formula.clone()),
                detail: if notes.is_empty() {
                    None
                } else {
                    Some(notes.join(" ; "))
                },
                source: def.source.clone(),
                since: None,
            });
        }
        Ok(v)
    }

    /// A node's value, borrowed when it is a constant, a fact or a parameter: comparing it
    /// then copies nothing (nor counts references to its text).
    pub(super) fn operand(&mut self, n: &'a Node) -> Result<Cow<'a, Value>, Box<EvalError>> {
        Ok(match n {
            Node::Const(v) => Cow::Borrowed(v),
            Node::Fact(i) => Cow::Borrowed(self.fact_ref(*i)),
            Node::Param(i) => Cow::Borrowed(self.param_ref(*i)),
            Node::Builtin(b) => Cow::Owned(self.builtin(*b)),
            Node::Rule(i) => Cow::Owned(self.rule(*i)?),
            _ => Cow::Owned(self.eval(n)?),
        })
    }

    pub(super) fn param(&mut self, i: usize) -> Value {
        self.param_ref(i).clone()
    }

    pub(super) fn param_ref(&mut self, i: usize) -> &'a Value {
        let set: &'a RuleSet = self.set;
        let versions = &set.params[i];
        let date = self.sit.date;
        let found = versions.iter().rev().find(|v| v.since <= date);
        let v = found.map(|f| &f.value).unwrap_or(&NON_APPLICABLE);
        if found.is_none() && !versions.is_empty() {
            self.effect(Effect::NotInForce(i));
        }
        if self.trace.is_some() && self.s.param_seen[i] != self.s.seen_epoch {
            self.s.param_seen[i] = self.s.seen_epoch;
            let def = &self.rules.params[i];
            let display = match (&v, def.ty) {
                (Value::Nombre(d), Type::Nombre) if def.unit == "%" => french_rate(*d),
                _ => v.to_string(),
            };
            let step = Step {
                kind: StepKind::Parametre,
                name: def.name.clone(),
                title: def.title.clone(),
                display,
                raw: v.clone(),
                formula: None,
                detail: if found.is_none() {
                    Some(if versions.is_empty() {
                        format!("sans valeur en {}", self.set.name)
                    } else {
                        "pas encore en vigueur à cette date".to_string()
                    })
                } else {
                    None
                },
                source: found.map(|f| f.source.clone()),
                since: found.map(|f| f.since),
            };
            self.step(step);
        }
        v
    }

    /// A presumed fact or a parameter not in force read again through a rule's [`Memo`] (or
    /// a parameter read now): it counts as a fresh reading would.
    pub(super) fn effect(&mut self, e: Effect) {
        self.s.effects.push(e);
        match e {
            Effect::Presumed(i) => {
                // Read before in this measure, as any fact of a rule computed in it: the trace
                // already shows it.
                if self.s.fact_seen[i] != self.s.seen_epoch {
                    self.s.fact_seen[i] = self.s.seen_epoch;
                    self.s.assumed.push(i);
                }
            }
            Effect::NotInForce(i) => {
                if !self.s.not_in_force.contains(&i) {
                    self.s.not_in_force.push(i);
                }
            }
        }
    }

    pub(super) fn fact(&mut self, i: usize) -> Value {
        self.fact_ref(i).clone()
    }

    pub(super) fn fact_ref(&mut self, i: usize) -> &'a Value {
        let (rules, sit): (&'a Rules, &'a Prepared) = (self.rules, self.sit);
        let def = &rules.facts[i];
        let (v, assumed) = match &sit.facts[i] {
            Some(v) => (v, false),
            None => match &def.default {
                Some(d) => (d, true),
                None => (&ABSENT, false),
            },
        };
        if matches!(v, Value::Absent) {
            self.s.missing.push(i);
        }
        if assumed {
            self.s.effects.push(Effect::Presumed(i));
        }
        if self.s.fact_seen[i] != self.s.seen_epoch {
            self.s.fact_seen[i] = self.s.seen_epoch;
            if assumed {
                self.s.assumed.push(i);
            }
            if self.trace.is_some() {
                let step = Step {
                    kind: StepKind::Fait,
                    name: def.name.clone(),
                    title: def.title.clone(),
                    display: v.to_string(),
                    raw: v.clone(),
                    formula: None,
                    detail: if assumed {
                        Some("valeur présumée, faute de réponse".into())
                    } else {
                        None
                    },
                    source: Some(
                        match def.origin.as_str() {
                            "referentiel" => "référentiel territorial du programme",
                            "base" => "dossiers enregistrés dans Guichet",
                            "demande" => "demande",
                            _ => "déclaration du demandeur",
                        }
                        .to_string(),
                    ),
                    since: None,
                };
                self.step(step);
            }
        }
        v
    }

    pub(super) fn builtin(&mut self, b: Builtin) -> Value {
        match b {
            Builtin::CoutTotal => Value::Montant(self.sit.total),
            Builtin::Depense(c) => Value::Montant(self.sit.by_category[c]),
            Builtin::Assiette => self.base.clone().unwrap_or(Value::NonApplicable),
            Builtin::Taux => self.rate.clone().unwrap_or(Value::NonApplicable),
            Builtin::TauxMax => self.rate_max.clone().unwrap_or(Value::NonApplicable),
        }
    }

    /// A node's value. The common nodes are here, the mechanisms in [`Ev::mechanism`]: a
    /// small function whose calls are cheap, most nodes being leaves and operators.
    pub(super) fn eval(&mut self, n: &'a Node) -> R {
        match n {
            Node::Const(v) => Ok(v.clone()),
            Node::Rule(i) => self.rule(*i),
            Node::Param(i) => Ok(self.param(*i)),
            Node::Fact(i) => Ok(self.fact(*i)),
            Node::Builtin(b) => Ok(self.builtin(*b)),
            Node::Bin(op, a, b) => self.binary(*op, a, b),
            _ => self.mechanism(n),
        }
    }

    #[inline(never)]
    pub(super) fn mechanism(&mut self, n: &'a Node) -> R {
        Ok(match n {
            Node::Const(_)
            | Node::Rule(_)
            | Node::Param(_)
            | Node::Fact(_)
            | Node::Builtin(_)
            | Node::Bin(..) => return self.eval(n),
            Node::Neg(a) => match self.eval(a)? {
                Value::Nombre(d) => Value::Nombre(-d),
                Value::Montant(d) => Value::Montant(-d),
                other => other,
            },
            Node::In(a, items) => {
                let v = self.operand(a)?;
                match &*v {
                    Value::Absent | Value::NonApplicable => v.into_owned(),
                    v => Value::Booleen(items.contains(v)),
                }
            }
            Node::All(list) => {
                let mut absent = false;
                let from = self.s.missing.len();
                for x in list {
                    let start = self.s.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(false) => {
                            // Settled by this one: what the others lack does not matter.
                            self.s.missing.drain(from..start);
                            return Ok(Value::Booleen(false));
                        }
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    Value::Booleen(true)
                }
            }
            Node::Any(list) => {
                let mut absent = false;
                let mut any_applicable = false;
                let from = self.s.missing.len();
                for x in list {
                    let start = self.s.missing.len();
                    match self.eval(x)? {
                        Value::Booleen(true) => {
                            // Settled by this one: what the others lack does not matter.
                            self.s.missing.drain(from..start);
                            return Ok(Value::Booleen(true));
                        }
                        Value::Booleen(false) => any_applicable = true,
                        Value::Absent => absent = true,
                        _ => {}
                    }
                }
                if absent {
                    Value::Absent
                } else if any_applicable {
                    Value::Booleen(false)
                } else {
                    Value::NonApplicable
                }
            }
            Node::Min(list) | Node::Max(list) => {
                let is_min = matches!(n, Node::Min(_));
                let mut best: Option<Value> = None;
                let mut absent = false;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => absent = true,
                        Value::NonApplicable => {}
                        v => {
                            best = Some(match best {
                                None => v,
                                Some(b) => {
                                    let ord =
                                        cmp_values(&v, &b).unwrap_or(std::cmp::Ordering::Equal);
                                    if (is_min && ord.is_lt()) || (!is_min && ord.is_gt()) {
                                        v
                                    } else {
                                        b
                                    }
                                }
                            })
                        }
                    }
                }
                if absent {
                    Value::Absent
                } else {
                    best.unwrap_or(Value::NonApplicable)
                }
            }
            Node::Sum(list) => {
                let mut acc: Option<Value> = None;
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent => return Ok(Value::Absent),
                        Value::NonApplicable => {}
                        v => {
                            acc = Some(match acc {
                                None => v,
                                Some(a) => arith(BinOp::Add, &a, &v)?,
                            })
                        }
                    }
                }
                acc.unwrap_or(Value::NonApplicable)
            }
            Node::Product(list) => {
                let mut acc = Value::Nombre(Decimal::ONE);
                for x in list {
                    let v = self.eval(x)?;
                    match v {
                        Value::Absent | Value::NonApplicable => return Ok(v),
                        v => acc = arith(BinOp::Mul, &acc, &v)?,
                    }
                }
                acc
            }
            Node::Variations(branches, otherwise) => {
                for (c, v) in branches {
                    match self.eval(c)? {
                        Value::Booleen(true) => return self.eval(v),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Value::NonApplicable,
                }
            }
            Node::Grid(base, tranches) => {
                let b = self.eval(base)?;
                if matches!(b, Value::Absent | Value::NonApplicable) {
                    return Ok(b);
                }
                let inside = |bound: &Option<Bound>, lower: bool| match bound {
                    None => true,
                    Some(bd) => match cmp_values(&b, &bd.value) {
                        Some(o) => {
                            if lower {
                                o.is_gt() || (bd.inclusive && o.is_eq())
                            } else {
                                o.is_lt() || (bd.inclusive && o.is_eq())
                            }
                        }
                        None => false,
                    },
                };
                for (lo, hi, v) in tranches {
                    if inside(lo, true) && inside(hi, false) {
                        return self.eval(v);
                    }
                }
                Value::NonApplicable
            }
            Node::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                if let Some(c) = applicable {
                    match self.eval(c)? {
                        Value::Booleen(false) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                if let Some(c) = not_applicable {
                    match self.eval(c)? {
                        Value::Booleen(true) => return Ok(Value::NonApplicable),
                        Value::Absent => return Ok(Value::Absent),
                        _ => {}
                    }
                }
                let mut v = self.eval(value)?;
                if matches!(v, Value::Absent | Value::NonApplicable) {
                    return Ok(v);
                }
                if let Some(c) = cap {
                    let c = self.eval(c)?;
                    if let Some(std::cmp::Ordering::Greater) = cmp_values(&v, &c) {
                        if self.trace.is_some() {
                            self.note(format!("plafonné : {v} ramené à {c}"));
                        }
                        v = c;
                    }
                }
                if let Some(f) = floor {
                    let f = self.eval(f)?;
                    if let Some(std::cmp::Ordering::Less) = cmp_values(&v, &f) {
                        if self.trace.is_some() {
                            self.note(format!("plancher : {v} porté à {f}"));
                        }
                        v = f;
                    }
                }
                if let (Some(r), Value::Montant(d)) = (rounding, &v) {
                    let rd = round(*d, *r);
                    if rd != *d && self.trace.is_some() {
                        self.note(r.label().to_string());
                    }
                    v = Value::Montant(rd);
                }
                v
            }
        })
    }

    pub(super) fn binary(&mut self, op: BinOp, a: &'a Node, b: &'a Node) -> R {
        let from = self.s.missing.len();
        let va = self.operand(a)?;
        // Short-circuits: a false condition settles `et`, a true one settles `ou`.
        match (op, &*va) {
            (BinOp::And, Value::Booleen(false)) => return Ok(Value::Booleen(false)),
            (BinOp::Or, Value::Booleen(true)) => return Ok(Value::Booleen(true)),
            _ => {}
        }
        let mid = self.s.missing.len();
        let vb = self.operand(b)?;
        let settles = |y: bool| (op == BinOp::And && !y) || (op == BinOp::Or && y);
        match op {
            BinOp::And | BinOp::Or => Ok(match (va.into_owned(), vb.into_owned()) {
                (Value::Booleen(x), Value::Booleen(y)) => {
                    Value::Booleen(if op == BinOp::And { x && y } else { x || y })
                }
                // The known side settles it: the unknown side's missing facts do not matter.
                (Value::Absent, Value::Booleen(y)) if settles(y) => {
                    self.s.missing.drain(from..mid);
                    Value::Booleen(y)
                }
                (Value::Booleen(y), Value::Absent) if settles(y) => {
                    self.s.missing.truncate(mid);
                    Value::Booleen(y)
                }
                (Value::Absent, _) | (_, Value::Absent) => Value::Absent,
                (Value::NonApplicable, v) | (v, Value::NonApplicable) => v,
                _ => Value::NonApplicable,
            }),
            _ => {
                if matches!(*va, Value::Absent) || matches!(*vb, Value::Absent) {
                    return Ok(Value::Absent);
                }
                if matches!(*va, Value::NonApplicable) || matches!(*vb, Value::NonApplicable) {
                    return Ok(Value::NonApplicable);
                }
                match op {
                    BinOp::Eq => Ok(Value::Booleen(*va == *vb)),
                    BinOp::Ne => Ok(Value::Booleen(*va != *vb)),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        let o = cmp_values(&va, &vb).ok_or_else(|| {
                            EvalError::Arithmetic(format!("comparaison impossible : {va} et {vb}"))
                        })?;
                        Ok(Value::Booleen(match op {
                            BinOp::Lt => o.is_lt(),
                            BinOp::Le => o.is_le(),
                            BinOp::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }))
                    }
                    _ => arith(op, &va, &vb),
                }
            }
        }
    }
}
