//! PromQL evaluation with Prometheus 3 semantics.
//!
//! The engine is synchronous and storage-agnostic: a caller first asks
//! [`Engine::select_requests`] which series data a query needs, loads it
//! (for the querier: from ingesters over gRPC), hands it over as a
//! [`Storage`], and evaluates with [`Engine::instant`] or [`Engine::range`].
//!
//! Evaluation is step-vectorised: the AST is walked once per query and
//! every node produces its values for all steps at once (see `eval`).
//! Semantics follow Prometheus 3: left-open range selectors, a left-open
//! lookback window, staleness markers, delayed `__name__` removal.
//!
//! Heavy work (range functions and selectors over many series, grouping,
//! aggregations over many steps, classic-histogram quantiles over many
//! groups) is split over up to [`Engine::parallelism`] threads and put
//! back together in order, so results are the same, bit for bit and in
//! the same order, as serial evaluation (see `parallel`).

mod aggregate;
mod binop;
mod eval;
mod functions;
pub mod fuzzing;
mod golit;
mod grouping;
pub mod mathfn;
pub mod memory;
mod numeric;
mod parallel;
mod plan;
pub mod promqltest;
pub mod rangefn;
#[cfg(test)]
mod tests;

pub use memory::{CancelFlag, CancelOnDrop, MemoryPool};
pub use parallel::DEFAULT_MIN_PARALLEL_WORK;
pub use plan::{parse, DEFAULT_SUBQUERY_STEP_MS, MAX_EXPR_DEPTH};

use std::sync::Arc;
use std::time::Duration;

use strata_model::{Labels, Matcher};
use thiserror::Error;

/// One series with its samples, oldest first (timestamps in ms): float
/// samples and native-histogram samples apart, as Prometheus keeps them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
    /// Native-histogram samples. Nothing produces them yet (the engine
    /// evaluates floats only); the API already writes them as Prometheus
    /// does.
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

impl Series {
    /// A series of float samples.
    pub fn floats(labels: Labels, samples: Vec<(i64, f64)>) -> Self {
        Series {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }
}

/// A native histogram with float counts (Prometheus's `FloatHistogram`):
/// exponential buckets of the given schema, counts absolute (not deltas).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    /// Resolution: bucket boundaries are powers of `2^(2^-schema)`.
    pub schema: i32,
    /// Observations in `[-zero_threshold, zero_threshold]` count in the
    /// zero bucket.
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<BucketSpan>,
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<BucketSpan>,
    pub negative_buckets: Vec<f64>,
}

/// A run of `length` consecutive buckets starting `offset` indexes after
/// the end of the previous span (the first span's offset is its index).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketSpan {
    pub offset: i32,
    pub length: u32,
}

/// Data a query needs: the series matching `matchers` with samples in
/// `[start_ms, end_ms]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectRequest {
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Samples of a stored series, oldest first, each timestamp once.
pub type SampleIter<'a> = Box<dyn Iterator<Item = Result<(i64, f64), StorageError>> + 'a>;

/// Where a stored series' samples come from. Implementations decode on
/// demand: only the part of the series in the range asked for, only when
/// evaluation reaches the series, one sample at a time.
pub trait SampleSource: Send + Sync {
    /// The samples with timestamps in `[mint, maxt]`.
    fn samples(&self, mint: i64, maxt: i64) -> SampleIter<'_>;
}

/// Samples already in memory, sorted by timestamp.
impl SampleSource for Vec<(i64, f64)> {
    fn samples(&self, mint: i64, maxt: i64) -> SampleIter<'_> {
        let from = self.partition_point(|s| s.0 < mint);
        let to = self.partition_point(|s| s.0 <= maxt);
        Box::new(self[from..to.max(from)].iter().map(|s| Ok(*s)))
    }
}

/// A series as storage holds it: its labels and where its samples are
/// read from when evaluation needs them.
#[derive(Clone)]
pub struct StoredSeries {
    pub labels: Labels,
    pub source: Arc<dyn SampleSource>,
}

impl StoredSeries {
    /// A series over samples in memory (sorted by timestamp).
    pub fn from_samples(labels: Labels, samples: Vec<(i64, f64)>) -> Self {
        StoredSeries {
            labels,
            source: Arc::new(samples),
        }
    }
}

impl std::fmt::Debug for StoredSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSeries")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// Where the engine reads series from.
pub trait Storage: Send + Sync {
    /// Series matching every matcher that may have samples in
    /// `[start_ms, end_ms]`. Their samples are read through
    /// [`StoredSeries::source`], so selecting decodes nothing.
    fn select(&self, request: &SelectRequest) -> Result<Vec<StoredSeries>, StorageError>;
}

/// Limits and semantics of evaluation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Most bytes of points a query may hold at once (0: no limit but
    /// `max_samples`); see [`memory`].
    pub max_bytes: usize,
    /// Shared by the queries of a process: what they may hold together.
    pub memory_pool: Option<Arc<MemoryPool>>,
    /// Stops evaluation when set (the client went away).
    pub cancel: Option<CancelFlag>,
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_bytes: 0,
            memory_pool: None,
            cancel: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A query result, as Prometheus's API returns them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// One sample per series at the evaluation time.
    Vector(Vec<VectorSample>),
    Matrix(Vec<Series>),
}

/// One sample of an instant vector: a float `v`, or a native histogram
/// when `histogram` is set (then `v` is unused).
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub histogram: Option<Arc<FloatHistogram>>,
}

impl VectorSample {
    /// A float sample.
    pub fn float(labels: Labels, t: i64, v: f64) -> Self {
        VectorSample {
            labels,
            t,
            v,
            histogram: None,
        }
    }
}

/// Warnings and infos a query produced, with Prometheus's wording
/// (`PromQL warning: …`, `PromQL info: …`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// A result with the annotations evaluation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    pub value: Value,
    pub annotations: Annotations,
}

/// Most points per series a range query may produce (Prometheus's API
/// limit).
pub const MAX_RANGE_POINTS: i64 = 11_000;

/// Errors, with the Prometheus API error type each maps to.
#[derive(Debug, Error)]
pub enum QueryError {
    /// `bad_data`: the query does not parse or is not valid.
    #[error("{0}")]
    BadData(String),
    /// `execution`: evaluation failed.
    #[error("{0}")]
    Execution(String),
    /// `timeout`.
    #[error("query timed out in {0}")]
    Timeout(String),
    /// `execution`, Prometheus's message for the sample limit.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(String),
    /// `execution`: a memory budget (the query's or the process's) would be
    /// exceeded; the message names it.
    #[error("{0}")]
    MemoryLimit(String),
    /// `canceled`: the client went away.
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// `unavailable`: storage could not answer.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

impl QueryError {
    /// The `errorType` of Prometheus's API.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_)
            | QueryError::TooManySamples(_)
            | QueryError::MemoryLimit(_) => "execution",
            QueryError::Canceled(_) => "canceled",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "unavailable",
        }
    }
}

pub struct Engine {
    options: EngineOptions,
    par: parallel::Par,
}

/// Cores this process may run on.
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Engine {
    /// An engine that splits heavy work over every available core (see
    /// [`Engine::with_parallelism`]).
    pub fn new(options: EngineOptions) -> Self {
        Self {
            options,
            par: parallel::Par {
                threads: available_cores(),
                min_work: parallel::DEFAULT_MIN_PARALLEL_WORK,
            },
        }
    }

    /// Most threads one query uses: heavy work (a range function or a
    /// selector over many series, an aggregation over many steps) is split
    /// into that many parts, evaluated at once and put back together in
    /// order, so results are the same as serial evaluation. 0 means every
    /// available core, 1 serial evaluation; more than the available cores
    /// is capped to them. Work under [`DEFAULT_MIN_PARALLEL_WORK`] units
    /// (series × steps) is never split.
    ///
    /// (A method rather than an [`EngineOptions`] field, so that callers
    /// building the options field by field keep compiling.)
    pub fn with_parallelism(mut self, threads: usize) -> Self {
        let cores = available_cores();
        self.par.threads = if threads == 0 {
            cores
        } else {
            threads.min(cores)
        };
        self
    }

    /// Splits every split-able piece of work into `parts` parts, however
    /// small it is and whatever the number of cores: for tests that check
    /// parallel evaluation gives the same answers as serial evaluation.
    #[doc(hidden)]
    pub fn with_forced_parts(mut self, parts: usize) -> Self {
        self.par = parallel::Par {
            threads: parts.max(1),
            min_work: 0,
        };
        self
    }

    /// Threads one query may use (see [`Engine::with_parallelism`]).
    pub fn parallelism(&self) -> usize {
        self.par.threads
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn evaluator<'a>(
        &self,
        storage: &'a dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> eval::Evaluator<'a> {
        let mut ev = eval::Evaluator::new(storage, &self.options, start_ms, end_ms);
        ev.invalid_literals = golit::invalid_utf8_literals(query);
        ev.par = self.par;
        ev
    }

    /// The data a query evaluated over `[start_ms, end_ms]` needs (an
    /// instant query has `start_ms == end_ms`). For a range query the
    /// requests cover every step, whatever the step is.
    pub fn select_requests(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SelectRequest>, QueryError> {
        let expr = plan::parse(query)?;
        let lookback = plan::duration_ms(&self.options.lookback_delta);
        let mut out = Vec::new();
        plan::collect_requests(
            &expr, start_ms, end_ms, start_ms, end_ms, lookback, &mut out,
        )?;
        Ok(out)
    }

    pub fn instant(
        &self,
        storage: &dyn Storage,
        query: &str,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        self.instant_query(storage, query, time_ms).map(|o| o.value)
    }

    /// Evaluates at `start_ms, start_ms + step_ms, …, ≤ end_ms`; the result
    /// is a matrix (or an error for string results, as Prometheus).
    pub fn range(
        &self,
        storage: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.range_query(storage, query, start_ms, end_ms, step_ms)
            .map(|o| o.value)
    }

    /// [`Engine::instant`] with the annotations (warnings and infos).
    pub fn instant_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        let expr = plan::parse(query)?;
        let mut ev = self.evaluator(storage, query, time_ms, time_ms);
        let val = ev.eval(&expr, &eval::Steps::single(time_ms))?;
        let value = match val {
            eval::Val::Scalar(v) => Value::Scalar {
                t: time_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            },
            eval::Val::Str(s) => Value::String { t: time_ms, v: s },
            eval::Val::Vector(vs) => {
                let mut out = Vec::with_capacity(vs.len());
                for s in vs {
                    if let Some(v) = s.vals.first().copied().flatten() {
                        let labels = if s.drop_name {
                            eval::without_name(&s.labels)
                        } else {
                            s.labels
                        };
                        out.push(VectorSample::float(labels, time_ms, v));
                    }
                }
                let mut seen = std::collections::HashSet::new();
                if !out.iter().all(|s| seen.insert(&s.labels)) {
                    return Err(eval::dup_labelset_error());
                }
                Value::Vector(out)
            }
            eval::Val::Matrix(ms) => {
                let mut out: Vec<Series> = ms
                    .into_iter()
                    .map(|s| {
                        let labels = if s.drop_name {
                            eval::without_name(&s.labels)
                        } else {
                            s.labels
                        };
                        Series::floats(labels, s.samples)
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                if out.windows(2).any(|w| w[0].labels == w[1].labels) {
                    return Err(eval::dup_labelset_error());
                }
                Value::Matrix(out)
            }
        };
        Ok(QueryOutput {
            value,
            annotations: ev.annotations,
        })
    }

    /// [`Engine::range`] with the annotations (warnings and infos).
    pub fn range_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end_ms - start_ms) / step_ms >= MAX_RANGE_POINTS {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        let expr = plan::parse(query)?;
        match expr.value_type() {
            promql_parser::parser::value::ValueType::Vector | promql_parser::parser::value::ValueType::Scalar => {}
            promql_parser::parser::value::ValueType::Matrix => {
                return Err(QueryError::BadData(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
            promql_parser::parser::value::ValueType::String => {
                return Err(QueryError::BadData(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                ))
            }
        }
        let steps = eval::Steps {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        let mut ev = self.evaluator(storage, query, start_ms, end_ms);
        let val = ev.eval(&expr, &steps)?;
        let series: Vec<eval::VSeries> = match val {
            eval::Val::Scalar(v) => vec![eval::VSeries {
                labels: Labels::default(),
                drop_name: false,
                vals: v.into_iter().map(Some).collect(),
            }],
            eval::Val::Vector(vs) => vs,
            other => {
                return Err(QueryError::BadData(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                other.type_name()
            )))
            }
        };
        // Delayed name removal; series that end up with the same labels are
        // merged unless they have values at the same step.
        let mut merged: Vec<Series> = Vec::with_capacity(series.len());
        let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
        for s in series {
            let labels = if s.drop_name {
                eval::without_name(&s.labels)
            } else {
                s.labels
            };
            let samples: Vec<(i64, f64)> = s
                .vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (steps.ts(i), v)))
                .collect();
            if samples.is_empty() {
                continue;
            }
            match index.get(&labels) {
                Some(&i) => {
                    let target = &mut merged[i].samples;
                    let expected = target.len() + samples.len();
                    target.extend(samples);
                    target.sort_by_key(|p| p.0);
                    target.dedup_by_key(|p| p.0);
                    if target.len() != expected {
                        return Err(eval::dup_labelset_error());
                    }
                }
                None => {
                    index.insert(labels.clone(), merged.len());
                    merged.push(Series::floats(labels, samples));
                }
            }
        }
        merged.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryOutput {
            value: Value::Matrix(merged),
            annotations: ev.annotations,
        })
    }
}
