//! Evaluating one group's rules as Prometheus does: recording rules write
//! their results under a new name, alerting rules move alerts through
//! pending → firing → resolved and write `ALERTS` and `ALERTS_FOR_STATE`;
//! series a rule stopped producing get a staleness marker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use strata_model::{Label, Labels, STALE_NAN_BITS};
use strata_promql::Value;
use strata_remote_write::{OwnedTimeSeries, Sample};
use strata_rulefmt::{Rule, RuleGroup};

/// Reads for rule evaluation: one instant query of the tenant's data.
#[async_trait::async_trait]
pub trait RuleQuerier: Send + Sync + 'static {
    async fn query(&self, tenant: &str, expr: &str, t_ms: i64) -> Result<Value, String>;
}

/// Writes of rule results (recorded series, `ALERTS`, staleness markers).
#[async_trait::async_trait]
pub trait RuleWriter: Send + Sync + 'static {
    async fn write(&self, tenant: &str, series: Vec<OwnedTimeSeries>) -> Result<(), String>;
}

/// How long a resolved alert is kept (and re-sent as resolved).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Alert {
    /// The alert's identity: the result's labels without `__name__`, the
    /// rule's labels and `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub valid_until_ms: i64,
    pub keep_firing_since_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// One rule and what evaluation remembers of it.
#[derive(Clone, Debug)]
pub struct RuleState {
    pub spec: Rule,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
    /// Alerts by the fingerprint of their labels.
    pub active: HashMap<u64, Alert>,
    /// `ALERTS` and `ALERTS_FOR_STATE` are written only once `for` state
    /// was restored (or needed no restoring), as in Prometheus.
    pub restored: bool,
    /// Series written at the last evaluation (staleness markers for those
    /// that disappear).
    pub written: HashSet<Labels>,
}

impl RuleState {
    pub fn new(spec: Rule) -> Self {
        Self {
            spec,
            health: Health::Unknown,
            last_error: None,
            last_evaluation_ms: None,
            evaluation_seconds: 0.0,
            active: HashMap::new(),
            restored: false,
            written: HashSet::new(),
        }
    }

    pub fn is_alerting(&self) -> bool {
        self.spec.alert.is_some()
    }

    pub fn name(&self) -> &str {
        self.spec
            .alert
            .as_deref()
            .or(self.spec.record.as_deref())
            .unwrap_or("")
    }

    /// The alert state Prometheus shows for the rule: the highest of its
    /// alerts'.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            match (a.state, s) {
                (AlertState::Firing, _) => return AlertState::Firing,
                (AlertState::Pending, _) => s = AlertState::Pending,
                _ => {}
            }
        }
        s
    }
}

/// What a rule's evaluation needs besides the rule.
pub struct EvalContext<'a> {
    pub tenant: &'a str,
    pub querier: &'a dyn RuleQuerier,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    /// `query` in templates: runs on the blocking pool, so it may block.
    pub template_query: Option<Arc<dyn strata_template::QueryFunc + Send + Sync>>,
}

/// The samples to write after a rule's evaluation.
pub type Output = Vec<(Labels, f64)>;

/// Converts a query result to the vector a rule works on (a scalar is a
/// one-sample vector without labels, as in Prometheus).
fn to_vector(value: Value, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
    match value {
        Value::Vector(v) => Ok(v
            .into_iter()
            .filter(|s| s.histogram.is_none())
            .map(|s| (s.labels, s.v))
            .collect()),
        Value::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
        Value::String { .. } => Err("rule result is not a vector or scalar: string".into()),
        Value::Matrix(_) => {
            let _ = t_ms;
            Err("rule result is not a vector or scalar: range vector".into())
        }
    }
}

fn set_label(labels: &mut Vec<Label>, name: &str, value: &str) {
    labels.retain(|l| l.name != name);
    if !value.is_empty() {
        labels.push(Label::new(name, value));
    }
}

fn sorted(mut labels: Vec<Label>) -> Labels {
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    Labels::from_sorted(labels)
}

/// Evaluates a recording rule at `t_ms`: the samples to write.
pub async fn eval_recording(
    rule: &Rule,
    limit: usize,
    ctx: &EvalContext<'_>,
    t_ms: i64,
) -> Result<Output, String> {
    let name = rule.record.as_deref().unwrap_or_default();
    let vector = to_vector(ctx.querier.query(ctx.tenant, &rule.expr, t_ms).await?, t_ms)?;
    let mut out = Vec::with_capacity(vector.len());
    let mut seen = HashSet::with_capacity(vector.len());
    for (labels, v) in vector {
        let mut l = labels.into_vec();
        set_label(&mut l, "__name__", name);
        for (k, val) in &rule.labels {
            set_label(&mut l, k, val);
        }
        let l = sorted(l);
        if !seen.insert(l.fingerprint()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn labels_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// Expands one template as Prometheus does: an error becomes the text.
fn expand(
    name: &str,
    text: &str,
    data: &strata_template::AlertTemplateData<'_>,
    query: Option<&dyn strata_template::QueryFunc>,
) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    match strata_template::expand_alert(name, text, data, query) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {}>", e.prometheus_message(name)),
    }
}

/// One result sample of an alerting rule, its labels and annotations
/// expanded.
struct Firing {
    labels: Labels,
    annotations: BTreeMap<String, String>,
    value: f64,
}

/// Expands the rule's labels and annotations for every result sample (on
/// the blocking pool when a template may run `query`).
async fn expand_alerts(
    rule: &Rule,
    vector: Vec<(Labels, f64)>,
    ctx: &EvalContext<'_>,
) -> Result<Vec<Firing>, String> {
    let alertname = rule.alert.clone().unwrap_or_default();
    let templated = rule
        .labels
        .values()
        .chain(rule.annotations.values())
        .any(|t| t.contains("{{"));
    let work = {
        let rule_labels = rule.labels.clone();
        let annotations = rule.annotations.clone();
        let external_labels = ctx.external_labels.clone();
        let external_url = ctx.external_url.to_string();
        let query = ctx.template_query.clone();
        move || {
            let mut out = Vec::with_capacity(vector.len());
            for (labels, value) in vector {
                let map = labels_map(&labels);
                let data = strata_template::AlertTemplateData {
                    labels: &map,
                    external_labels: &external_labels,
                    external_url: &external_url,
                    value,
                };
                let q = query
                    .as_deref()
                    .map(|q| q as &dyn strata_template::QueryFunc);
                let mut l: Vec<Label> = labels
                    .into_vec()
                    .into_iter()
                    .filter(|l| l.name != "__name__")
                    .collect();
                for (k, text) in &rule_labels {
                    let v = expand(&format!("__alert_{alertname}"), text, &data, q);
                    set_label(&mut l, k, &v);
                }
                set_label(&mut l, "alertname", &alertname);
                let annotations = annotations
                    .iter()
                    .map(|(k, text)| {
                        (
                            k.clone(),
                            expand(&format!("__alert_{alertname}"), text, &data, q),
                        )
                    })
                    .collect();
                out.push(Firing {
                    labels: sorted(l),
                    annotations,
                    value,
                });
            }
            out
        }
    };
    if templated {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| format!("expanding templates failed: {e}"))
    } else {
        Ok(work())
    }
}

/// Evaluates an alerting rule at `t_ms`, updating its alerts; the
/// `ALERTS`/`ALERTS_FOR_STATE` samples to write.
pub async fn eval_alerting(
    state: &mut RuleState,
    limit: usize,
    ctx: &EvalContext<'_>,
    t_ms: i64,
) -> Result<Output, String> {
    let rule = state.spec.clone();
    let vector = to_vector(ctx.querier.query(ctx.tenant, &rule.expr, t_ms).await?, t_ms)?;
    let firing = expand_alerts(&rule, vector, ctx).await?;
    let hold_ms = duration_ms(rule.for_);
    let keep_firing_ms = duration_ms(rule.keep_firing_for);

    let mut result_fps = HashSet::with_capacity(firing.len());
    for f in firing {
        let fp = f.labels.fingerprint();
        if !result_fps.insert(fp) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
        match state.active.get_mut(&fp) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = f.value;
                a.annotations = f.annotations;
            }
            _ => {
                state.active.insert(
                    fp,
                    Alert {
                        labels: f.labels,
                        annotations: f.annotations,
                        state: AlertState::Pending,
                        value: f.value,
                        active_at_ms: t_ms,
                        fired_at_ms: None,
                        resolved_at_ms: None,
                        last_sent_ms: None,
                        valid_until_ms: 0,
                        keep_firing_since_ms: None,
                    },
                );
            }
        }
    }

    let mut out = Vec::new();
    let mut active_or_pending = 0usize;
    let restored = state.restored;
    state.active.retain(|fp, a| {
        if !result_fps.contains(fp) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && keep_firing_ms > 0 {
                let since = *a.keep_firing_since_ms.get_or_insert(t_ms);
                keep_firing = t_ms - since < keep_firing_ms;
            }
            // Pending alerts vanish; resolved ones are kept a while so
            // the resolution is sent.
            if a.state == AlertState::Pending
                || a.resolved_at_ms
                    .is_some_and(|r| t_ms - r > RESOLVED_RETENTION_MS)
            {
                return false;
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at_ms = Some(t_ms);
            }
            if !keep_firing {
                return true;
            }
        } else {
            a.keep_firing_since_ms = None;
        }
        active_or_pending += 1;
        if a.state == AlertState::Pending && t_ms - a.active_at_ms >= hold_ms {
            a.state = AlertState::Firing;
            a.fired_at_ms = Some(t_ms);
        }
        if restored {
            out.push((alert_series(&a.labels, "ALERTS", Some(a.state)), 1.0));
            out.push((
                alert_series(&a.labels, "ALERTS_FOR_STATE", None),
                (a.active_at_ms / 1000) as f64,
            ));
        }
        true
    });
    if limit > 0 && active_or_pending > limit {
        state.active.clear();
        return Err(format!(
            "exceeded limit of {limit} with {active_or_pending} alerts"
        ));
    }
    Ok(out)
}

/// `ALERTS{alertstate=...}` or `ALERTS_FOR_STATE` for an alert.
fn alert_series(labels: &Labels, name: &str, state: Option<AlertState>) -> Labels {
    let mut l = labels.clone().into_vec();
    set_label(&mut l, "__name__", name);
    if let Some(s) = state {
        set_label(&mut l, "alertstate", s.as_str());
    }
    sorted(l)
}

/// Restores the `for` state of a rule's pending alerts from
/// `ALERTS_FOR_STATE` written before (by this ruler before a restart, or
/// by the replica that evaluated the group before), as Prometheus's
/// `RestoreForState` does.
pub async fn restore_for_state(
    state: &mut RuleState,
    ctx: &EvalContext<'_>,
    now_ms: i64,
    outage_tolerance: Duration,
    grace_period: Duration,
) -> Result<usize, String> {
    let hold_ms = duration_ms(state.spec.for_);
    let grace_ms = duration_ms(grace_period);
    if state.active.is_empty() || hold_ms < grace_ms {
        state.restored = true;
        return Ok(0);
    }
    let alertname = state.spec.alert.clone().unwrap_or_default();
    let expr = format!(
        "ALERTS_FOR_STATE{{alertname=\"{}\"}}[{}ms]",
        escape_label_value(&alertname),
        duration_ms(outage_tolerance).max(1)
    );
    let value = ctx.querier.query(ctx.tenant, &expr, now_ms).await?;
    let Value::Matrix(series) = value else {
        return Err("restoring for state: the query did not return a range vector".into());
    };
    let mut last: HashMap<u64, (i64, f64)> = HashMap::new();
    for s in series {
        let Some(&(t, v)) = s
            .samples
            .iter()
            .rev()
            .find(|(_, v)| v.to_bits() != STALE_NAN_BITS)
        else {
            continue;
        };
        let l: Vec<Label> = s
            .labels
            .into_vec()
            .into_iter()
            .filter(|l| l.name != "__name__")
            .collect();
        last.insert(sorted(l).fingerprint(), (t, v));
    }
    let mut restored = 0;
    for (fp, a) in state.active.iter_mut() {
        let Some(&(down_at_ms, active_at_s)) = last.get(fp) else {
            continue;
        };
        let previous_active_ms = (active_at_s * 1000.0) as i64;
        let spent = down_at_ms - previous_active_ms;
        let remaining = hold_ms - spent;
        a.active_at_ms = if remaining <= 0 {
            // It was firing: it fires again at the next evaluation.
            previous_active_ms
        } else if remaining < grace_ms {
            now_ms + grace_ms - hold_ms
        } else {
            previous_active_ms + (now_ms - down_at_ms)
        };
        restored += 1;
    }
    state.restored = true;
    Ok(restored)
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Remote-write series for `samples` at `t_ms`, plus staleness markers for
/// what `previous` had and `samples` lacks; `previous` becomes the new set.
pub fn to_write(
    samples: &Output,
    t_ms: i64,
    previous: &mut HashSet<Labels>,
) -> Vec<OwnedTimeSeries> {
    let mut out = Vec::with_capacity(samples.len());
    let mut now: HashSet<Labels> = HashSet::with_capacity(samples.len());
    for (labels, v) in samples {
        out.push(series(labels, t_ms, *v));
        now.insert(labels.clone());
    }
    for gone in previous.iter().filter(|l| !now.contains(*l)) {
        out.push(series(gone, t_ms, f64::from_bits(STALE_NAN_BITS)));
    }
    *previous = now;
    out
}

/// Staleness markers for every series a rule wrote last (its group was
/// deleted).
pub fn stale_all(previous: &HashSet<Labels>, t_ms: i64) -> Vec<OwnedTimeSeries> {
    previous
        .iter()
        .map(|l| series(l, t_ms, f64::from_bits(STALE_NAN_BITS)))
        .collect()
}

fn series(labels: &Labels, t_ms: i64, value: f64) -> OwnedTimeSeries {
    OwnedTimeSeries {
        labels: labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
        samples: vec![Sample {
            timestamp: t_ms,
            value,
        }],
        ..OwnedTimeSeries::default()
    }
}

/// The group's effective interval.
pub fn group_interval(group: &RuleGroup, default: Duration) -> Duration {
    group.interval.filter(|d| !d.is_zero()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use strata_promql::VectorSample;

    /// Answers every query with the vector it is set to.
    #[derive(Default)]
    struct FakeQuerier {
        answer: Mutex<Vec<(Labels, f64)>>,
        history: Mutex<Vec<Series>>,
        queries: Mutex<Vec<(String, i64)>>,
    }

    use strata_promql::Series;

    #[async_trait::async_trait]
    impl RuleQuerier for FakeQuerier {
        async fn query(&self, _tenant: &str, expr: &str, t_ms: i64) -> Result<Value, String> {
            self.queries.lock().push((expr.to_string(), t_ms));
            if expr.starts_with("ALERTS_FOR_STATE") {
                return Ok(Value::Matrix(self.history.lock().clone()));
            }
            Ok(Value::Vector(
                self.answer
                    .lock()
                    .iter()
                    .map(|(l, v)| VectorSample {
                        labels: l.clone(),
                        t: t_ms,
                        v: *v,
                        histogram: None,
                    })
                    .collect(),
            ))
        }
    }

    fn rule(yaml: &str) -> Rule {
        let group = strata_rulefmt::parse_rule_group(&format!("name: g\nrules:\n{yaml}"))
            .expect("rule parses");
        group.rules.into_iter().next().expect("one rule")
    }

    fn ctx<'a>(q: &'a FakeQuerier, ext: &'a BTreeMap<String, String>) -> EvalContext<'a> {
        EvalContext {
            tenant: "t",
            querier: q,
            external_labels: ext,
            external_url: "http://strata",
            template_query: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[tokio::test]
    async fn recording_rules_rename_relabel_and_refuse_duplicates() {
        let q = FakeQuerier::default();
        *q.answer.lock() = vec![
            (
                labels(&[("__name__", "x"), ("job", "a"), ("drop", "me")]),
                1.0,
            ),
            (labels(&[("__name__", "x"), ("job", "b")]), 2.0),
        ];
        let ext = BTreeMap::new();
        let r =
            rule("  - record: job:x\n    expr: x\n    labels:\n      env: prod\n      drop: ''\n");
        let out = eval_recording(&r, 0, &ctx(&q, &ext), 1000).await.unwrap();
        assert_eq!(
            out,
            vec![
                (
                    labels(&[("__name__", "job:x"), ("env", "prod"), ("job", "a")]),
                    1.0
                ),
                (
                    labels(&[("__name__", "job:x"), ("env", "prod"), ("job", "b")]),
                    2.0
                ),
            ]
        );
        let err = eval_recording(&r, 1, &ctx(&q, &ext), 1000)
            .await
            .unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 series");
        *q.answer.lock() = vec![
            (labels(&[("__name__", "x"), ("job", "a")]), 1.0),
            (labels(&[("__name__", "x"), ("job", "b")]), 2.0),
        ];
        let r = rule("  - record: job:x\n    expr: x\n    labels:\n      job: same\n");
        let err = eval_recording(&r, 0, &ctx(&q, &ext), 1000)
            .await
            .unwrap_err();
        assert!(err.contains("same labelset"), "{err}");
    }

    #[tokio::test]
    async fn staleness_markers_follow_disappearing_series() {
        let mut previous = HashSet::new();
        let a = labels(&[("__name__", "r"), ("x", "a")]);
        let b = labels(&[("__name__", "r"), ("x", "b")]);
        let w = to_write(
            &vec![(a.clone(), 1.0), (b.clone(), 2.0)],
            1000,
            &mut previous,
        );
        assert_eq!(w.len(), 2);
        let w = to_write(&vec![(a.clone(), 1.0)], 2000, &mut previous);
        assert_eq!(w.len(), 2);
        let stale = w
            .iter()
            .find(|s| s.labels.contains(&("x".into(), "b".into())))
            .unwrap();
        assert_eq!(stale.samples[0].value.to_bits(), STALE_NAN_BITS);
        assert_eq!(stale.samples[0].timestamp, 2000);
        assert_eq!(to_write(&vec![], 3000, &mut previous).len(), 1);
        assert!(previous.is_empty());
    }

    #[tokio::test]
    async fn alerts_go_pending_firing_and_resolve() {
        let q = FakeQuerier::default();
        let ext = BTreeMap::from([("region".to_string(), "eu".to_string())]);
        let mut state = RuleState::new(rule(
            "  - alert: Hot\n    expr: t > 30\n    for: 2s\n    labels:\n      severity: '{{ if gt $value 50.0 }}page{{ else }}ticket{{ end }}'\n    annotations:\n      summary: '{{ $labels.room }} at {{ $value }} in {{ $externalLabels.region }}'\n",
        ));
        state.restored = true;
        *q.answer.lock() = vec![(labels(&[("__name__", "t"), ("room", "lab")]), 40.0)];
        let c = ctx(&q, &ext);
        let out = eval_alerting(&mut state, 0, &c, 1000).await.unwrap();
        assert_eq!(state.state(), AlertState::Pending);
        let alert = state.active.values().next().unwrap().clone();
        assert_eq!(
            alert.labels,
            labels(&[
                ("alertname", "Hot"),
                ("room", "lab"),
                ("severity", "ticket")
            ])
        );
        assert_eq!(alert.annotations["summary"], "lab at 40 in eu");
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].0,
            labels(&[
                ("__name__", "ALERTS"),
                ("alertname", "Hot"),
                ("alertstate", "pending"),
                ("room", "lab"),
                ("severity", "ticket")
            ])
        );
        assert_eq!(out[1].1, 1.0, "ALERTS_FOR_STATE holds activeAt in seconds");
        eval_alerting(&mut state, 0, &c, 2000).await.unwrap();
        assert_eq!(state.state(), AlertState::Pending);
        let out = eval_alerting(&mut state, 0, &c, 3000).await.unwrap();
        assert_eq!(state.state(), AlertState::Firing);
        assert!(out[0].0.get("alertstate") == Some("firing"));
        // The condition clears: resolved, kept for the resolved
        // notification, no ALERTS sample.
        q.answer.lock().clear();
        let out = eval_alerting(&mut state, 0, &c, 4000).await.unwrap();
        assert!(out.is_empty());
        assert_eq!(state.state(), AlertState::Inactive);
        let a = state.active.values().next().unwrap();
        assert_eq!(a.resolved_at_ms, Some(4000));
        // Long after, it is forgotten.
        eval_alerting(&mut state, 0, &c, 4000 + RESOLVED_RETENTION_MS + 1)
            .await
            .unwrap();
        assert!(state.active.is_empty());
    }

    #[tokio::test]
    async fn pending_alerts_vanish_and_keep_firing_for_holds() {
        let q = FakeQuerier::default();
        let ext = BTreeMap::new();
        let mut state = RuleState::new(rule(
            "  - alert: A\n    expr: up == 0\n    for: 1s\n    keep_firing_for: 3s\n",
        ));
        state.restored = true;
        let c = ctx(&q, &ext);
        *q.answer.lock() = vec![(labels(&[("job", "x")]), 0.0)];
        eval_alerting(&mut state, 0, &c, 0).await.unwrap();
        q.answer.lock().clear();
        eval_alerting(&mut state, 0, &c, 500).await.unwrap();
        assert!(
            state.active.is_empty(),
            "a pending alert that clears is dropped"
        );
        *q.answer.lock() = vec![(labels(&[("job", "x")]), 0.0)];
        eval_alerting(&mut state, 0, &c, 1000).await.unwrap();
        eval_alerting(&mut state, 0, &c, 2000).await.unwrap();
        assert_eq!(state.state(), AlertState::Firing);
        q.answer.lock().clear();
        for t in [3000, 4000, 5000] {
            eval_alerting(&mut state, 0, &c, t).await.unwrap();
            assert_eq!(state.state(), AlertState::Firing, "kept firing at {t}");
        }
        eval_alerting(&mut state, 0, &c, 6000).await.unwrap();
        assert_eq!(state.state(), AlertState::Inactive);
        // The limit counts active alerts.
        *q.answer.lock() = vec![
            (labels(&[("job", "x")]), 0.0),
            (labels(&[("job", "y")]), 0.0),
        ];
        let err = eval_alerting(&mut state, 1, &c, 7000).await.unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(state.active.is_empty());
    }

    #[tokio::test]
    async fn for_state_is_restored_from_alerts_for_state() {
        let q = FakeQuerier::default();
        let ext = BTreeMap::new();
        let mut state = RuleState::new(rule("  - alert: A\n    expr: up == 0\n    for: 10m\n"));
        let c = ctx(&q, &ext);
        *q.answer.lock() = vec![(labels(&[("job", "x")]), 0.0)];
        let now = 10_000_000;
        let out = eval_alerting(&mut state, 0, &c, now).await.unwrap();
        assert!(out.is_empty(), "no ALERTS before the state is restored");
        // Pending since now-5m until it went down 1m ago.
        *q.history.lock() = vec![Series::floats(
            labels(&[
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "A"),
                ("job", "x"),
            ]),
            vec![(now - 60_000, ((now - 300_000) / 1000) as f64)],
        )];
        let n = restore_for_state(
            &mut state,
            &c,
            now,
            Duration::from_secs(3600),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
        let a = state.active.values().next().unwrap();
        // Spent 4m pending before going down; the minute it was down does
        // not count.
        assert_eq!(a.active_at_ms, now - 300_000 + 60_000);
        assert!(state.restored);
        let out = eval_alerting(&mut state, 0, &c, now + 1000).await.unwrap();
        assert_eq!(out.len(), 2);
        let q_text = &q.queries.lock()[1].0;
        assert!(
            q_text.starts_with("ALERTS_FOR_STATE{alertname=\"A\"}[3600000ms]"),
            "{q_text}"
        );
    }
}
