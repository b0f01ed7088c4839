//! Per-sample math, date functions, and quantile helpers.
