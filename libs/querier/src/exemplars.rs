//! `/api/v1/query_exemplars`: the exemplars of every series a PromQL
//! expression selects, read from the ingesters that hold them.
//!
//! As Prometheus, the expression is only used for its selectors (all of
//! them, wherever they appear; `offset`, `@` and ranges are ignored): a
//! series is included when it matches any selector and has exemplars in
//! `[start, end]` (both optional, inclusive). Each selector is read from its
//! replication set like a `series` request, and the replicas' answers are
//! merged: an exemplar (labels, value, timestamp) stored by several
//! replicas appears once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use promql_parser::label::MatchOp as PqlMatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use strata_model::{Labels, MatchOp, Matcher, METRIC_NAME};
use strata_proto::ingester::{ExemplarQueryRequest, MatcherSet};

use crate::error::{ApiError, QuerierError};
use crate::format::{push_float, push_labels, push_timestamp};
use crate::ingesters::{labels_from_pb, matchers_to_pb, tenant_request, IngesterQuerier};
use crate::params::{time_param, Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::Querier;

pub use strata_model::{Exemplar, SeriesExemplars};

/// Identity of an exemplar across replicas, in the order answers list
/// them: by time first.
type ExemplarKey = (i64, u64, Labels);

impl IngesterQuerier {
    /// Exemplars in `[start_ms, end_ms]` of the series matching any of
    /// `matcher_sets`, merged across replicas, sorted by series labels and
    /// each series' exemplars by time.
    pub async fn exemplars(
        &self,
        tenant: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, QuerierError> {
        let reads = matcher_sets.iter().map(|matchers| async move {
            let set = self.replication_set(tenant, matchers)?;
            let request = ExemplarQueryRequest {
                start_ms,
                end_ms,
                matcher_sets: vec![MatcherSet {
                    matchers: matchers_to_pb(matchers),
                }],
            };
            self.fan_out(tenant, &set, move |mut client, tenant_value| {
                let req = tenant_request(request.clone(), tenant_value);
                Box::pin(async move { Ok(client.query_exemplars(req).await?.into_inner().series) })
            })
            .await
        });
        let answers = futures::future::try_join_all(reads).await?;
        let mut merged: BTreeMap<Labels, BTreeSet<ExemplarKey>> = BTreeMap::new();
        for series in answers.into_iter().flatten().flatten() {
            let exemplars = merged.entry(labels_from_pb(series.labels)).or_default();
            for e in series.exemplars {
                // Ingesters filter by time already; a replica answering
                // outside the range must not widen it.
                if e.timestamp < start_ms || e.timestamp > end_ms {
                    continue;
                }
                exemplars.insert((e.timestamp, e.value.to_bits(), labels_from_pb(e.labels)));
            }
        }
        Ok(merged
            .into_iter()
            .filter(|(_, exemplars)| !exemplars.is_empty())
            .map(|(labels, exemplars)| SeriesExemplars {
                labels,
                exemplars: exemplars
                    .into_iter()
                    .map(|(timestamp, bits, labels)| Exemplar {
                        labels,
                        value: f64::from_bits(bits),
                        timestamp,
                    })
                    .collect(),
            })
            .collect())
    }
}

/// Answers a `query_exemplars` request for `tenant` with the JSON of its
/// `data`: parameters and errors as Prometheus's API.
pub(crate) async fn query_exemplars(
    querier: &Querier,
    tenant: &str,
    params: &Params,
) -> Result<String, ApiError> {
    let start_ms = time_param(params, "start", MIN_TIME_MS)?;
    let end_ms = time_param(params, "end", MAX_TIME_MS)?;
    if end_ms < start_ms {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let matcher_sets = selectors(params.get("query"))?;
    if matcher_sets.is_empty() {
        // Prometheus answers 204 without a body here; an empty list is the
        // same answer in the shape every client parses.
        return Ok("[]".to_string());
    }
    let timeout: Duration = querier.config().timeout;
    let read = querier
        .ingesters()
        .exemplars(tenant, start_ms, end_ms, &matcher_sets);
    let series = match tokio::time::timeout(timeout, read).await {
        Ok(result) => result?,
        Err(_) => return Err(QuerierError::Timeout("query execution".into()).into()),
    };
    let mut data = String::new();
    push_exemplar_data(&mut data, &series);
    Ok(data)
}

/// The matcher sets of every selector of `query`, without repeats.
/// Syntax errors are `bad_data` with the parser's message, as Prometheus
/// reports them for this endpoint.
fn selectors(query: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    if query.trim().is_empty() {
        return Err(ApiError::bad_data(
            "1:1: parse error: no expression found in input",
        ));
    }
    let expr = strata_promql::parse(query).map_err(|e| ApiError::bad_data(e.to_string()))?;
    let mut sets: Vec<Vec<Matcher>> = Vec::new();
    // An explicit stack: the depth of the tree is the client's choice.
    let mut pending: Vec<&Expr> = vec![&expr];
    while let Some(e) = pending.pop() {
        match e {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
            Expr::VectorSelector(vs) => add_sets(vs, &mut sets)?,
            Expr::MatrixSelector(ms) => add_sets(&ms.vs, &mut sets)?,
            Expr::Subquery(sq) => pending.push(&sq.expr),
            Expr::Paren(p) => pending.push(&p.expr),
            Expr::Unary(u) => pending.push(&u.expr),
            Expr::Binary(b) => {
                pending.push(&b.rhs);
                pending.push(&b.lhs);
            }
            Expr::Aggregate(a) => {
                pending.push(&a.expr);
                if let Some(p) = &a.param {
                    pending.push(p);
                }
            }
            Expr::Call(c) => pending.extend(c.args.args.iter().rev().map(|a| a.as_ref())),
        }
    }
    Ok(sets)
}

/// Adds the matcher sets of a selector: one, or one per alternative of
/// promql-parser's `{a="x" or b="y"}`.
fn add_sets(vs: &VectorSelector, sets: &mut Vec<Vec<Matcher>>) -> Result<(), ApiError> {
    let convert = |m: &promql_parser::label::Matcher| -> Result<Matcher, ApiError> {
        let op = match &m.op {
            PqlMatchOp::Equal => MatchOp::Equal,
            PqlMatchOp::NotEqual => MatchOp::NotEqual,
            PqlMatchOp::Re(_) => MatchOp::RegexMatch,
            PqlMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        Matcher::new(op, m.name.as_str(), m.value.as_str())
            .map_err(|e| ApiError::bad_data(e.to_string()))
    };
    let mut base = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        let named = vs.matchers.matchers.iter().any(|m| {
            m.name == METRIC_NAME && matches!(m.op, PqlMatchOp::Equal) && &m.value == name
        });
        if !named {
            base.push(
                Matcher::new(MatchOp::Equal, METRIC_NAME, name.as_str())
                    .map_err(|e| ApiError::bad_data(e.to_string()))?,
            );
        }
    }
    for m in &vs.matchers.matchers {
        base.push(convert(m)?);
    }
    let mut found = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        found.push(base);
    } else {
        for alternative in &vs.matchers.or_matchers {
            let mut set = base.clone();
            for m in alternative {
                set.push(convert(m)?);
            }
            found.push(set);
        }
    }
    for set in found {
        if !sets.contains(&set) {
            sets.push(set);
        }
    }
    Ok(())
}

/// Appends Prometheus's exemplar query result:
/// `[{"seriesLabels":{...},"exemplars":[{"labels":{...},"value":"6","timestamp":1600096945.479}]}]`.
fn push_exemplar_data(out: &mut String, series: &[SeriesExemplars]) {
    out.push('[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"seriesLabels\":");
        push_labels(out, &s.labels);
        out.push_str(",\"exemplars\":[");
        for (j, e) in s.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"labels\":");
            push_labels(out, &e.labels);
            out.push_str(",\"value\":\"");
            push_float(out, e.value);
            out.push_str("\",\"timestamp\":");
            push_timestamp(out, e.timestamp);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(query: &str) -> Vec<Vec<String>> {
        selectors(query)
            .unwrap()
            .iter()
            .map(|set| {
                set.iter()
                    .map(|m| format!("{}{}{:?}", m.name, m.op.as_str(), m.value))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_selector_of_the_expression() {
        assert_eq!(texts("up"), [["__name__=\"up\""]]);
        assert_eq!(
            texts(
                "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m)) \
                 / on(job) group_left max_over_time(up{job=\"api\"}[1h:1m]) + up"
            ),
            [
                vec!["__name__=\"http_requests_total\"", "code=~\"5..\""],
                vec!["__name__=\"up\"", "job=\"api\""],
                vec!["__name__=\"up\""],
            ]
        );
        assert_eq!(
            texts("topk(3, {job=\"a\"}) or label_replace(x, \"a\", \"b\", \"c\", \"d\")"),
            [vec!["job=\"a\""], vec!["__name__=\"x\""]]
        );
        // The same selector twice is asked for once; no selector, nothing.
        assert_eq!(texts("up + up"), [["__name__=\"up\""]]);
        assert!(texts("1 + 2").is_empty());
        assert!(texts("vector(1)").is_empty());
    }

    #[test]
    fn syntax_errors_are_bad_data_with_the_parser_message() {
        for query in ["", "  ", "sum(", "up{", "{}"] {
            let e = selectors(query).unwrap_err();
            assert_eq!(e.typ, crate::ErrorType::BadData, "{query}");
            assert!(!e.message.starts_with("invalid parameter"), "{}", e.message);
        }
    }

    #[test]
    fn json_shape_follows_prometheus() {
        let series = [SeriesExemplars {
            labels: Labels::from_pairs([("__name__", "m"), ("job", "a")]),
            exemplars: vec![
                Exemplar {
                    labels: Labels::from_pairs([("trace_id", "abc")]),
                    value: 6.0,
                    timestamp: 1_600_096_945_479,
                },
                Exemplar {
                    labels: Labels::from_pairs([("trace_id", "d\"e")]),
                    value: 0.5,
                    timestamp: 1_600_096_946_000,
                },
            ],
        }];
        let mut out = String::new();
        push_exemplar_data(&mut out, &series);
        assert_eq!(
            out,
            "[{\"seriesLabels\":{\"__name__\":\"m\",\"job\":\"a\"},\"exemplars\":[\
             {\"labels\":{\"trace_id\":\"abc\"},\"value\":\"6\",\"timestamp\":1600096945.479},\
             {\"labels\":{\"trace_id\":\"d\\\"e\"},\"value\":\"0.5\",\"timestamp\":1600096946}]}]"
        );
        let mut out = String::new();
        push_exemplar_data(&mut out, &[]);
        assert_eq!(out, "[]");
    }
}
