//! Binary operators: arithmetic, comparisons, set operators and vector
//! matching (`on`/`ignoring`, `group_left`/`group_right`).

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use strata_model::{Label, Labels, METRIC_NAME};

use crate::eval::{Builder, Evaluator, Steps, VSeries, Val};
use crate::QueryError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    pub fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }

    pub fn is_arithmetic(self) -> bool {
        !self.is_comparison() && !self.is_set()
    }
}

/// Applies `op`; for comparisons the value is `l` and the flag says
/// whether the comparison holds.
pub(crate) fn elem_binop(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, true),
    }
}

struct Matching {
    on: bool,
    labels: Vec<String>,
    card: VectorMatchCardinality,
    include: Vec<String>,
}

/// Label-set signature for matching: with `on`, only the listed labels;
/// otherwise every label except the listed ones and `__name__`.
fn signature(labels: &Labels, on: bool, names: &[String]) -> Vec<u8> {
    let mut sig = Vec::new();
    for l in labels.iter() {
        let keep = if on {
            names.contains(&l.name)
        } else {
            l.name != METRIC_NAME && !names.contains(&l.name)
        };
        if keep {
            sig.extend_from_slice(l.name.as_bytes());
            sig.push(0xff);
            sig.extend_from_slice(l.value.as_bytes());
            sig.push(0xff);
        }
    }
    sig
}

fn match_labels(labels: &Labels, on: bool, names: &[String]) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| {
                if on {
                    names.contains(&l.name)
                } else {
                    l.name != METRIC_NAME && !names.contains(&l.name)
                }
            })
            .cloned()
            .collect(),
    )
}

fn intern(ids: &mut HashMap<Vec<u8>, usize>, sig: Vec<u8>) -> usize {
    let next = ids.len();
    *ids.entry(sig).or_insert(next)
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr, st: &Steps) -> Result<Val, QueryError> {
        let op_name = b.op.to_string();
        let op = Op::parse(&op_name).ok_or_else(|| {
            QueryError::BadData(format!("unsupported binary operator {op_name:?}"))
        })?;
        let modifier = b.modifier.as_ref();
        let return_bool = modifier.is_some_and(|m| m.return_bool);
        if modifier.is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some()) {
            return Err(QueryError::BadData(
                "fill modifiers for binary operations are not supported".into(),
            ));
        }
        let lhs = self.eval(&b.lhs, st)?;
        let rhs = self.eval(&b.rhs, st)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                if op.is_set() {
                    return Err(QueryError::BadData(format!(
                        "set operator {op_name:?} not allowed in binary scalar expression"
                    )));
                }
                Ok(Val::Scalar(
                    l.iter()
                        .zip(r.iter())
                        .map(|(&l, &r)| {
                            let (v, keep) = elem_binop(op, l, r);
                            if op.is_comparison() {
                                if keep {
                                    1.0
                                } else {
                                    0.0
                                }
                            } else {
                                v
                            }
                        })
                        .collect(),
                ))
            }
            (Val::Vector(l), Val::Scalar(r)) => self.vector_scalar(op, l, &r, false, return_bool),
            (Val::Scalar(l), Val::Vector(r)) => self.vector_scalar(op, r, &l, true, return_bool),
            (Val::Vector(l), Val::Vector(r)) => {
                let (on, labels) = match modifier.and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                    Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                    None => (false, Vec::new()),
                };
                let card = modifier
                    .map(|m| m.card.clone())
                    .unwrap_or(VectorMatchCardinality::OneToOne);
                let include = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
                let m = Matching {
                    on,
                    labels,
                    card,
                    include,
                };
                self.vector_vector(op, l, r, &m, return_bool, st.len())
            }
            (l, r) => Err(QueryError::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    fn vector_scalar(
        &mut self,
        op: Op,
        mut vs: Vec<VSeries>,
        s: &[f64],
        scalar_left: bool,
        return_bool: bool,
    ) -> Result<Val, QueryError> {
        if op.is_set() {
            return Err(QueryError::BadData(format!(
                "set operator {op:?} not allowed in binary scalar expression"
            )));
        }
        for series in &mut vs {
            self.tick()?;
            series.drop_name |= op.is_arithmetic() || return_bool;
            for (i, cell) in series.vals.iter_mut().enumerate() {
                let Some(v) = *cell else { continue };
                let (l, r) = if scalar_left { (s[i], v) } else { (v, s[i]) };
                let (value, keep) = elem_binop(op, l, r);
                *cell = if return_bool {
                    Some(if keep { 1.0 } else { 0.0 })
                } else if !keep {
                    None
                } else if op.is_comparison() {
                    Some(v)
                } else {
                    Some(value)
                };
            }
        }
        Ok(Val::Vector(crate::eval::prune(vs)))
    }

    fn vector_vector(
        &mut self,
        op: Op,
        lhs: Vec<VSeries>,
        rhs: Vec<VSeries>,
        m: &Matching,
        return_bool: bool,
        n: usize,
    ) -> Result<Val, QueryError> {
        let mut ids = HashMap::new();
        let lsig: Vec<usize> = lhs
            .iter()
            .map(|s| intern(&mut ids, signature(&s.labels, m.on, &m.labels)))
            .collect();
        let rsig: Vec<usize> = rhs
            .iter()
            .map(|s| intern(&mut ids, signature(&s.labels, m.on, &m.labels)))
            .collect();
        let nsig = ids.len();
        if op.is_set() {
            return self.set_op(op, lhs, rhs, &lsig, &rsig, nsig, n);
        }
        if matches!(m.card, VectorMatchCardinality::ManyToMany) {
            return Err(QueryError::BadData(
                "many-to-many only allowed for set operators".into(),
            ));
        }
        let swap = matches!(m.card, VectorMatchCardinality::OneToMany(_));
        let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
        let (many, one, msig, osig) = if swap {
            (&rhs, &lhs, &rsig, &lsig)
        } else {
            (&lhs, &rhs, &lsig, &rsig)
        };
        let mut one_at: Vec<Option<usize>> = vec![None; nsig];
        let mut touched: Vec<usize> = Vec::new();
        let mut matched_stamp: Vec<usize> = vec![0; nsig];
        let mut inserted: HashSet<(usize, usize)> = HashSet::new();
        let mut pair_slot: HashMap<(usize, usize), usize> = HashMap::new();
        let mut builder = Builder::new(n);
        for i in 0..n {
            self.tick()?;
            touched.clear();
            inserted.clear();
            for (k, s) in one.iter().enumerate() {
                if s.vals[i].is_none() {
                    continue;
                }
                let sg = osig[k];
                if let Some(prev) = one_at[sg] {
                    for t in &touched {
                        one_at[*t] = None;
                    }
                    let side = if swap { "left" } else { "right" };
                    return Err(QueryError::Execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        match_labels(&s.labels, m.on, &m.labels),
                        s.labels,
                        one[prev].labels
                    )));
                }
                one_at[sg] = Some(k);
                touched.push(sg);
            }
            if touched.is_empty() {
                continue;
            }
            let mut failure: Option<QueryError> = None;
            for (k, s) in many.iter().enumerate() {
                let Some(mv) = s.vals[i] else { continue };
                let sg = msig[k];
                let Some(o) = one_at[sg] else { continue };
                let Some(ov) = one[o].vals[i] else { continue };
                let (vl, vr) = if swap { (ov, mv) } else { (mv, ov) };
                let (value, keep) = elem_binop(op, vl, vr);
                let slot = match pair_slot.get(&(k, o)) {
                    Some(slot) => *slot,
                    None => {
                        let labels = result_labels(&s.labels, &one[o].labels, m);
                        let drop = s.drop_name || op.is_arithmetic() || return_bool;
                        let slot = builder.slot(&mut self.memory, labels, drop)?;
                        pair_slot.insert((k, o), slot);
                        slot
                    }
                };
                // Matching errors count even for elements a comparison
                // filters out (as Prometheus 3).
                if one_to_one {
                    if matched_stamp[sg] == i + 1 {
                        failure = Some(QueryError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                                .into(),
                        ));
                        break;
                    }
                    matched_stamp[sg] = i + 1;
                } else if !inserted.insert((sg, slot)) {
                    failure = Some(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                    break;
                }
                let value = if return_bool {
                    if keep {
                        1.0
                    } else {
                        0.0
                    }
                } else if !keep {
                    continue;
                } else {
                    value
                };
                if let Err(e) = builder.put(slot, i, value) {
                    failure = Some(e);
                    break;
                }
            }
            for t in &touched {
                one_at[*t] = None;
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(Val::Vector(builder.finish()))
    }

    #[allow(clippy::too_many_arguments)]
    fn set_op(
        &mut self,
        op: Op,
        lhs: Vec<VSeries>,
        rhs: Vec<VSeries>,
        lsig: &[usize],
        rsig: &[usize],
        nsig: usize,
        n: usize,
    ) -> Result<Val, QueryError> {
        let mut stamp = vec![0usize; nsig];
        match op {
            Op::And | Op::Unless => {
                let mut out = lhs;
                for i in 0..n {
                    self.tick()?;
                    for (k, s) in rhs.iter().enumerate() {
                        if s.vals[i].is_some() {
                            stamp[rsig[k]] = i + 1;
                        }
                    }
                    for (k, s) in out.iter_mut().enumerate() {
                        let present = stamp[lsig[k]] == i + 1;
                        if present != (op == Op::And) {
                            s.vals[i] = None;
                        }
                    }
                }
                Ok(Val::Vector(crate::eval::prune(out)))
            }
            _ => {
                let mut builder = Builder::new(n);
                let lslots: Vec<usize> = lhs
                    .iter()
                    .map(|s| builder.slot(&mut self.memory, s.labels.clone(), s.drop_name))
                    .collect::<Result<_, _>>()?;
                let rslots: Vec<usize> = rhs
                    .iter()
                    .map(|s| builder.slot(&mut self.memory, s.labels.clone(), s.drop_name))
                    .collect::<Result<_, _>>()?;
                for i in 0..n {
                    self.tick()?;
                    for (k, s) in lhs.iter().enumerate() {
                        if let Some(v) = s.vals[i] {
                            stamp[lsig[k]] = i + 1;
                            builder.put(lslots[k], i, v)?;
                        }
                    }
                    for (k, s) in rhs.iter().enumerate() {
                        if let Some(v) = s.vals[i] {
                            if stamp[rsig[k]] != i + 1 {
                                builder.put(rslots[k], i, v)?;
                            }
                        }
                    }
                }
                Ok(Val::Vector(builder.finish()))
            }
        }
    }
}

/// Labels of a vector-matching result: the "many" side's labels, reduced
/// to the matching labels for one-to-one matching, plus the `group_x`
/// labels copied from the "one" side.
fn result_labels(many: &Labels, one: &Labels, m: &Matching) -> Labels {
    let mut labels: Vec<Label> = many.iter().cloned().collect();
    if matches!(m.card, VectorMatchCardinality::OneToOne) {
        if m.on {
            labels.retain(|l| m.labels.contains(&l.name));
        } else {
            labels.retain(|l| !m.labels.contains(&l.name));
        }
    }
    for name in &m.include {
        labels.retain(|l| &l.name != name);
        if let Some(v) = one.get(name) {
            labels.push(Label::new(name.clone(), v));
        }
    }
    labels.sort();
    Labels::from_sorted(labels)
}
