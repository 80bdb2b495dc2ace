//! What the compiled rules tell about themselves: how deep they nest, what each depends on
//! (the date, the situation, the measure), which rules read each fact and the expenses.

use super::*;

/// Where a walk over the rules (which read one another) stands for one rule.
#[derive(Debug, Clone)]
pub(super) enum Visit<T> {
    NotYet,
    /// Being walked: reaching it again is a cycle.
    InProgress,
    Done(T),
}

/// How deep the evaluation of a rule may go: the levels of its formula and, through each rule
/// it reads, of theirs, down to the leaves. Checking, analysing and evaluating rules walk them
/// recursively: deeper, a programme could overflow the stack and abort the server; it is
/// refused at load. ITN7's deepest rule goes a dozen levels down.
pub const MAX_DEPTH: usize = 256;

/// The evaluation depth of each rule (see [`MAX_DEPTH`]); a rule without a node (refused
/// earlier) counts as a leaf, a rule read within a cycle (refused elsewhere) as nothing. Rules
/// are visited with a stack of their own, not by recursion: a chain of any length is measured.
pub(crate) fn evaluation_depths(nodes: &[Option<Node>]) -> Vec<usize> {
    pub(super) fn depth(n: &Node, rules: &[usize]) -> usize {
        match n {
            Node::Rule(j) => 1 + rules.get(*j).copied().unwrap_or(0),
            _ => {
                let mut d = 0;
                n.for_each_child(&mut |c| d = d.max(depth(c, rules)));
                d + 1
            }
        }
    }
    let reads: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            let mut out = Vec::new();
            if let Some(n) = n {
                n.for_each_rule(&mut |j| out.push(j));
            }
            out
        })
        .collect();
    let mut depths = vec![0; nodes.len()];
    let mut visit = vec![Visit::NotYet; nodes.len()];
    for root in 0..nodes.len() {
        if !matches!(visit[root], Visit::NotYet) {
            continue;
        }
        visit[root] = Visit::InProgress;
        let mut stack = vec![(root, 0usize)];
        while let Some((r, next)) = stack.last_mut() {
            let r = *r;
            if let Some(&j) = reads[r].get(*next) {
                *next += 1;
                if matches!(visit.get(j), Some(Visit::NotYet)) {
                    visit[j] = Visit::InProgress;
                    stack.push((j, 0));
                }
                continue;
            }
            depths[r] = nodes[r].as_ref().map_or(1, |n| depth(n, &depths));
            visit[r] = Visit::Done(());
            stack.pop();
        }
    }
    depths
}

/// What a rule's value depends on, from the least to the most: the date and the territory
/// alone (parameters, the filing date), the situation (other facts, expenses), or the measure
/// being evaluated (`assiette`, `taux`, `taux_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dependence {
    Date,
    Situation,
    Measure,
}

/// The rules that read each fact, directly or through other rules (by fact index), and those
/// that read the expenses (`cout_total`, a category's amount): when a situation follows
/// another, only they are computed again for the facts that changed. A rule in a cycle (a
/// programme refused at load) counts as reading everything.
pub(crate) fn readers(rules: &[RuleDef], facts: usize) -> (Vec<Vec<usize>>, Vec<usize>) {
    #[derive(Clone, Default)]
    struct Reads {
        facts: Vec<usize>,
        expenses: bool,
    }
    pub(super) fn node(n: &Node, out: &mut Reads, rule: &mut dyn FnMut(usize, &mut Reads)) {
        match n {
            Node::Fact(i) => out.facts.push(*i),
            Node::Builtin(Builtin::CoutTotal | Builtin::Depense(_)) => out.expenses = true,
            Node::Rule(i) => rule(*i, out),
            _ => n.for_each_child(&mut |c| node(c, out, rule)),
        }
    }
    pub(super) fn visit(
        i: usize,
        rules: &[RuleDef],
        facts: usize,
        state: &mut Vec<Visit<Reads>>,
    ) -> Reads {
        match state.get(i) {
            Some(Visit::Done(r)) => return r.clone(),
            Some(Visit::NotYet) => {}
            // In a cycle.
            _ => {
                return Reads {
                    facts: (0..facts).collect(),
                    expenses: true,
                }
            }
        }
        state[i] = Visit::InProgress;
        let mut out = Reads::default();
        if let Some(def) = rules.get(i) {
            node(&def.node, &mut out, &mut |j, out: &mut Reads| {
                let r = visit(j, rules, facts, state);
                out.facts.extend(r.facts);
                out.expenses |= r.expenses;
            });
        }
        out.facts.sort_unstable();
        out.facts.dedup();
        state[i] = Visit::Done(out.clone());
        out
    }
    let mut state = vec![Visit::NotYet; rules.len()];
    let mut by_fact = vec![Vec::new(); facts];
    let mut expenses = Vec::new();
    for i in 0..rules.len() {
        let r = visit(i, rules, facts, &mut state);
        for f in r.facts {
            if let Some(list) = by_fact.get_mut(f) {
                list.push(i);
            }
        }
        if r.expenses {
            expenses.push(i);
        }
    }
    (by_fact, expenses)
}

/// The [`Dependence`] of every rule; `date_fact`: the filing date's fact, which the date sets.
pub(crate) fn dependence(rules: &[RuleDef], date_fact: Option<usize>) -> Vec<Dependence> {
    use Dependence::*;
    struct Cx<'r> {
        rules: &'r [RuleDef],
        date_fact: Option<usize>,
        // A rule reached while in progress is in a cycle (reported elsewhere): counted as
        // depending on the measure.
        state: Vec<Visit<Dependence>>,
    }
    impl Cx<'_> {
        fn rule(&mut self, i: usize) -> Dependence {
            match self.state.get(i) {
                Some(Visit::NotYet) => {
                    self.state[i] = Visit::InProgress;
                    let rules = self.rules;
                    let d = rules.get(i).map_or(Measure, |r| self.node(&r.node));
                    self.state[i] = Visit::Done(d);
                    d
                }
                Some(Visit::Done(d)) => *d,
                _ => Measure,
            }
        }
        fn node(&mut self, n: &Node) -> Dependence {
            match n {
                Node::Const(_) | Node::Param(_) => Date,
                Node::Fact(i) if Some(*i) == self.date_fact => Date,
                Node::Fact(_) => Situation,
                Node::Builtin(b) => match b {
                    Builtin::Assiette | Builtin::Taux | Builtin::TauxMax => Measure,
                    Builtin::CoutTotal | Builtin::Depense(_) => Situation,
                },
                Node::Rule(i) => self.rule(*i),
                _ => {
                    let mut d = Date;
                    n.for_each_child(&mut |c| d = d.max(self.node(c)));
                    d
                }
            }
        }
    }
    let mut cx = Cx {
        rules,
        date_fact,
        state: vec![Visit::NotYet; rules.len()],
    };
    (0..rules.len()).map(|i| cx.rule(i)).collect()
}
