//! One rule group's evaluation loop: evaluation times aligned as
//! Prometheus aligns them (a per-group offset within the interval), rules
//! in order, results written, alerts sent, state published for the API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use strata_model::duration::now_ms;
use strata_rulefmt::RuleGroup;
use tokio_util::sync::CancellationToken;

use crate::config::RulerConfig;
use crate::metrics::RulerMetrics;
use crate::rules::{
    duration_ms, eval_alerting, eval_recording, restore_for_state, stale_all, to_write, AlertState,
    EvalContext, RuleQuerier, RuleState, RuleWriter,
};
use crate::store::GroupKey;

/// A group as the API shows it, as of its last evaluation.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub key: GroupKey,
    pub spec: RuleGroup,
    pub interval: Duration,
    pub rules: Vec<RuleState>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
}

/// What every group's loop shares.
pub struct GroupDeps {
    pub config: Arc<RulerConfig>,
    pub querier: Arc<dyn RuleQuerier>,
    pub writer: Arc<dyn RuleWriter>,
    pub notifier: Arc<strata_notifier::NotifierManager>,
    pub metrics: RulerMetrics,
    pub runtime: tokio::runtime::Handle,
}

/// The first evaluation time after `now_ms`: groups evaluate at
/// `offset + k * interval`, the offset derived from the group's identity so
/// that many groups with one interval spread over it.
pub fn next_evaluation(key: &GroupKey, interval_ms: i64, now_ms: i64) -> i64 {
    let interval_ms = interval_ms.max(1);
    let offset = i64::from(key.ring_token()) % interval_ms;
    let base = now_ms - (now_ms - offset).rem_euclid(interval_ms);
    // `base` is the last aligned time at or before now.
    base + interval_ms
}

pub struct GroupRunner {
    pub key: GroupKey,
    pub spec: RuleGroup,
    pub interval: Duration,
    pub rules: Vec<RuleState>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_seconds: f64,
    pub view: Arc<RwLock<Arc<GroupView>>>,
    /// Restore `for` state from `ALERTS_FOR_STATE` after the second
    /// evaluation (not when the state was carried over from the group
    /// before a change).
    needs_restore: bool,
}

impl GroupRunner {
    pub fn new(key: GroupKey, spec: RuleGroup, default_interval: Duration) -> Self {
        let interval = crate::rules::group_interval(&spec, default_interval);
        let rules: Vec<RuleState> = spec.rules.iter().cloned().map(RuleState::new).collect();
        let view = Arc::new(RwLock::new(Arc::new(GroupView {
            key: key.clone(),
            spec: spec.clone(),
            interval,
            rules: rules.clone(),
            last_evaluation_ms: None,
            evaluation_seconds: 0.0,
        })));
        Self {
            key,
            spec,
            interval,
            rules,
            last_evaluation_ms: None,
            evaluation_seconds: 0.0,
            view,
            needs_restore: true,
        }
    }

    /// Takes over the state of the rules `previous` (this group before a
    /// change) had unchanged, matched by name and labels as Prometheus
    /// does: their alerts, the series they wrote, their health.
    pub fn copy_state(&mut self, previous: &GroupView) {
        let mut carried = false;
        for rule in &mut self.rules {
            let Some(old) = previous
                .rules
                .iter()
                .find(|o| o.name() == rule.name() && o.spec.labels == rule.spec.labels)
            else {
                continue;
            };
            rule.active = old.active.clone();
            rule.written = old.written.clone();
            rule.restored = old.restored;
            rule.health = old.health;
            rule.last_error = old.last_error.clone();
            rule.last_evaluation_ms = old.last_evaluation_ms;
            rule.evaluation_seconds = old.evaluation_seconds;
            carried |= old.last_evaluation_ms.is_some();
        }
        if carried && previous.rules.iter().all(|r| r.restored) {
            self.needs_restore = false;
            for rule in &mut self.rules {
                rule.restored = true;
            }
        }
        self.last_evaluation_ms = previous.last_evaluation_ms;
        self.publish();
    }

    fn publish(&self) {
        *self.view.write() = Arc::new(GroupView {
            key: self.key.clone(),
            spec: self.spec.clone(),
            interval: self.interval,
            rules: self.rules.clone(),
            last_evaluation_ms: self.last_evaluation_ms,
            evaluation_seconds: self.evaluation_seconds,
        });
    }

    /// Evaluates until `stop`; with `deleted` set on return, writes
    /// staleness markers for everything the group wrote.
    pub async fn run(
        mut self,
        deps: Arc<GroupDeps>,
        stop: CancellationToken,
        deleted: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let interval_ms = duration_ms(self.interval).max(1);
        let mut next = next_evaluation(&self.key, interval_ms, now_ms());
        let labels = deps.metrics.group_labels(&self.key);
        let mut iterations = 0u64;
        loop {
            let wait = Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let started = Instant::now();
            self.evaluate(&deps, next).await;
            iterations += 1;
            // As Prometheus: `for` state is restored after the second
            // evaluation, so recording rules it may depend on have run.
            if iterations == 2 && self.needs_restore {
                self.restore(&deps).await;
            }
            self.evaluation_seconds = started.elapsed().as_secs_f64();
            self.last_evaluation_ms = Some(next);
            self.publish();
            deps.metrics
                .group_evaluated(&labels, self.evaluation_seconds);
            next += interval_ms;
            let now = now_ms();
            if now >= next + interval_ms {
                let missed = (now - next) / interval_ms;
                deps.metrics.group_missed(&labels, missed as u64);
                next += missed * interval_ms;
            }
        }
        if deleted.load(std::sync::atomic::Ordering::SeqCst) {
            let t = now_ms();
            let mut series = Vec::new();
            for rule in &self.rules {
                series.extend(stale_all(&rule.written, t));
            }
            if !series.is_empty() {
                if let Err(e) = deps.writer.write(&self.key.tenant, series).await {
                    tracing::warn!(group = %self.key, error = %e, "writing staleness markers of a deleted group failed");
                }
            }
        }
        deps.metrics.forget_group(&labels);
    }

    fn context<'a>(&'a self, deps: &'a GroupDeps) -> EvalContext<'a> {
        EvalContext {
            tenant: &self.key.tenant,
            querier: deps.querier.as_ref(),
            external_labels: &deps.config.external_labels,
            external_url: &deps.config.external_url,
            template_query: Some(Arc::new(TemplateQuery {
                tenant: self.key.tenant.clone(),
                querier: deps.querier.clone(),
                runtime: deps.runtime.clone(),
            })),
        }
    }

    async fn restore(&mut self, deps: &GroupDeps) {
        let now = now_ms();
        let mut rules = std::mem::take(&mut self.rules);
        {
            let ctx = self.context(deps);
            for rule in rules.iter_mut().filter(|r| r.is_alerting()) {
                match restore_for_state(
                    rule,
                    &ctx,
                    now,
                    deps.config.for_outage_tolerance,
                    deps.config.for_grace_period,
                )
                .await
                {
                    Ok(n) if n > 0 => {
                        tracing::info!(group = %self.key, rule = rule.name(), alerts = n, "restored the for state of alerts")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        rule.restored = true;
                        tracing::warn!(group = %self.key, rule = rule.name(), error = %e, "restoring the for state failed");
                    }
                }
            }
        }
        for rule in rules.iter_mut() {
            rule.restored = true;
        }
        self.rules = rules;
    }

    /// Evaluates every rule in order at `t_ms`.
    pub async fn evaluate(&mut self, deps: &GroupDeps, t_ms: i64) {
        let query_t = t_ms - self.spec.query_offset.map(duration_ms).unwrap_or(0);
        let limit = self.spec.limit;
        let mut rules = std::mem::take(&mut self.rules);
        {
            let ctx = self.context(deps);
            for rule in rules.iter_mut() {
                let started = Instant::now();
                let result = if rule.is_alerting() {
                    eval_alerting(rule, limit, &ctx, query_t).await
                } else {
                    let spec = rule.spec.clone();
                    eval_recording(&spec, limit, &ctx, query_t).await
                };
                deps.metrics.rule_evaluated(&self.key.tenant);
                let result = match result {
                    Ok(out) => {
                        let series = to_write(&out, query_t, &mut rule.written);
                        if series.is_empty() {
                            Ok(())
                        } else {
                            deps.writer
                                .write(&self.key.tenant, series)
                                .await
                                .map_err(|e| format!("writing the rule's results: {e}"))
                        }
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => {
                        rule.health = crate::rules::Health::Ok;
                        rule.last_error = None;
                    }
                    Err(e) => {
                        deps.metrics.rule_failed(&self.key.tenant);
                        tracing::debug!(group = %self.key, rule = rule.name(), error = %e, "rule evaluation failed");
                        rule.health = crate::rules::Health::Err;
                        rule.last_error = Some(e);
                    }
                }
                if rule.is_alerting() {
                    self.send_alerts(deps, rule, t_ms);
                }
                rule.last_evaluation_ms = Some(t_ms);
                rule.evaluation_seconds = started.elapsed().as_secs_f64();
            }
        }
        self.rules = rules;
    }

    /// Sends the rule's alerts that are due, as Prometheus's `sendAlerts`:
    /// firing ones every `resend_delay`, resolved ones once more.
    fn send_alerts(&self, deps: &GroupDeps, rule: &mut RuleState, t_ms: i64) {
        let resend_ms = duration_ms(deps.config.resend_delay);
        let delta = resend_ms.max(duration_ms(self.interval));
        let generator_url = generator_url(&deps.config.external_url, &rule.spec.expr);
        let mut batch = Vec::new();
        for a in rule.active.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let due = match (a.resolved_at_ms, a.last_sent_ms) {
                (Some(r), Some(s)) if r > s => true,
                (_, None) => true,
                (_, Some(s)) => s + resend_ms < t_ms,
            };
            if !due {
                continue;
            }
            a.last_sent_ms = Some(t_ms);
            a.valid_until_ms = t_ms + 4 * delta;
            let ends = a.resolved_at_ms.unwrap_or(a.valid_until_ms);
            batch.push(strata_notifier::Alert {
                labels: a
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                annotations: a.annotations.clone(),
                starts_at: system_time(a.fired_at_ms.unwrap_or(a.active_at_ms)),
                ends_at: Some(system_time(ends)),
                generator_url: generator_url.clone(),
            });
        }
        if !batch.is_empty() {
            deps.notifier.send(&self.key.tenant, batch);
        }
    }
}

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `<external_url>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links
/// alerts to their expression.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        query_escape(expr)
    )
}

/// Percent-encoding of a URL query value (space as `+`), as Go's
/// `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `query` in templates: blocks its (blocking-pool) thread on the ruler's
/// querier.
struct TemplateQuery {
    tenant: String,
    querier: Arc<dyn RuleQuerier>,
    runtime: tokio::runtime::Handle,
}

impl strata_template::QueryFunc for TemplateQuery {
    fn query(&self, expr: &str) -> Result<Vec<strata_template::QuerySample>, String> {
        let t = now_ms();
        let value = self
            .runtime
            .block_on(self.querier.query(&self.tenant, expr, t))?;
        let samples = match value {
            strata_promql::Value::Vector(v) => v
                .into_iter()
                .map(|s| strata_template::QuerySample {
                    labels: s
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect::<BTreeMap<_, _>>(),
                    value: s.v,
                })
                .collect(),
            strata_promql::Value::Scalar { v, .. } => vec![strata_template::QuerySample {
                labels: BTreeMap::new(),
                value: v,
            }],
            _ => return Err("query in a template must return a vector or scalar".into()),
        };
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_times_are_aligned_to_the_group_offset() {
        let key = GroupKey::new("t", "ns", "g");
        let offset = i64::from(key.ring_token()) % 10_000;
        for now in [0i64, 1, 9_999, 10_000, 123_456_789] {
            let next = next_evaluation(&key, 10_000, now);
            assert!(next > now && next <= now + 10_000, "{now} -> {next}");
            assert_eq!(next.rem_euclid(10_000), offset, "{now} -> {next}");
        }
    }

    #[test]
    fn a_changed_group_keeps_the_state_of_its_unchanged_rules() {
        let key = GroupKey::new("t", "ns", "g");
        let old_spec = strata_rulefmt::parse_rule_group(
            "name: g\nrules:\n- alert: A\n  expr: up == 0\n  for: 5m\n- record: r\n  expr: sum(up)\n",
        )
        .unwrap();
        let mut old = GroupRunner::new(key.clone(), old_spec, Duration::from_secs(60));
        old.rules[0].active.insert(
            1,
            crate::rules::Alert {
                labels: strata_model::Labels::from_pairs([("alertname", "A")]),
                annotations: BTreeMap::new(),
                state: AlertState::Pending,
                value: 0.0,
                active_at_ms: 1_000,
                fired_at_ms: None,
                resolved_at_ms: None,
                last_sent_ms: None,
                valid_until_ms: 0,
                keep_firing_since_ms: None,
            },
        );
        for rule in &mut old.rules {
            rule.restored = true;
            rule.last_evaluation_ms = Some(5_000);
        }
        old.publish();
        let previous = old.view.read().clone();
        // The alert gets an annotation, the recording rule new labels.
        let new_spec = strata_rulefmt::parse_rule_group(
            "name: g\nrules:\n- alert: A\n  expr: up == 0\n  for: 5m\n  annotations:\n    x: y\n- record: r\n  expr: sum(up)\n  labels:\n    a: b\n",
        )
        .unwrap();
        let mut new = GroupRunner::new(key, new_spec, Duration::from_secs(60));
        new.copy_state(&previous);
        assert_eq!(new.rules[0].active.len(), 1, "the alert carried over");
        assert_eq!(new.rules[0].active[&1].active_at_ms, 1_000);
        assert_eq!(
            new.rules[1].last_evaluation_ms, None,
            "a changed rule starts afresh"
        );
        assert!(!new.needs_restore);
    }

    /// Fails queries naming `bad`, and answers the rest with one sample.
    struct Reads;

    #[async_trait::async_trait]
    impl RuleQuerier for Reads {
        async fn query(
            &self,
            _tenant: &str,
            expr: &str,
            t_ms: i64,
        ) -> Result<strata_promql::Value, String> {
            if expr.contains("bad") {
                return Err("storage unavailable".into());
            }
            Ok(strata_promql::Value::Vector(vec![
                strata_promql::VectorSample {
                    labels: strata_model::Labels::from_pairs([("job", "x")]),
                    t: t_ms,
                    v: 1.0,
                    histogram: None,
                },
            ]))
        }
    }

    /// Records writes; refuses those of tenant `full`.
    #[derive(Default)]
    struct Writes(parking_lot::Mutex<Vec<strata_remote_write::OwnedTimeSeries>>);

    #[async_trait::async_trait]
    impl RuleWriter for Writes {
        async fn write(
            &self,
            tenant: &str,
            series: Vec<strata_remote_write::OwnedTimeSeries>,
        ) -> Result<(), String> {
            if tenant == "full" {
                return Err("429 ingestion rate limit".into());
            }
            self.0.lock().extend(series);
            Ok(())
        }
    }

    #[tokio::test]
    async fn failures_are_shown_per_rule_and_the_group_goes_on() {
        let writes = Arc::new(Writes::default());
        let deps = GroupDeps {
            config: Arc::new(RulerConfig::default()),
            querier: Arc::new(Reads),
            writer: writes.clone(),
            notifier: Arc::new(
                strata_notifier::NotifierManager::new(
                    strata_notifier::NotifierConfig::default(),
                    strata_notifier::NotifierMetrics::default(),
                )
                .unwrap(),
            ),
            metrics: RulerMetrics::default(),
            runtime: tokio::runtime::Handle::current(),
        };
        let spec = strata_rulefmt::parse_rule_group(
            "name: g\nquery_offset: 10s\nrules:\n- record: a\n  expr: bad_metric\n- record: b\n  expr: up\n",
        )
        .unwrap();
        let mut g = GroupRunner::new(
            GroupKey::new("t", "ns", "g"),
            spec.clone(),
            Duration::from_secs(60),
        );
        g.evaluate(&deps, 100_000).await;
        assert_eq!(g.rules[0].health, crate::rules::Health::Err);
        assert_eq!(
            g.rules[0].last_error.as_deref(),
            Some("storage unavailable")
        );
        assert_eq!(g.rules[1].health, crate::rules::Health::Ok);
        let written = writes.0.lock().clone();
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[0].labels,
            vec![
                ("__name__".to_string(), "b".to_string()),
                ("job".to_string(), "x".to_string())
            ]
        );
        // Written at the evaluation time less query_offset.
        assert_eq!(written[0].samples[0].timestamp, 90_000);
        // A write the distributor refuses is the rule's error too.
        let mut g = GroupRunner::new(
            GroupKey::new("full", "ns", "g"),
            spec,
            Duration::from_secs(60),
        );
        g.evaluate(&deps, 100_000).await;
        assert_eq!(g.rules[1].health, crate::rules::Health::Err);
        assert!(
            g.rules[1]
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("429"),
            "{:?}",
            g.rules[1].last_error
        );
    }

    #[test]
    fn generator_urls_escape_the_expression() {
        assert_eq!(
            generator_url("http://x/prometheus/", "up == 0"),
            "http://x/prometheus/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }
}
