//! Series limits from the runtime overrides file: read on every push, so a
//! changed file applies to a tenant's next push without a restart.

use strata_ingester::{Ingester, IngesterConfig, IngesterMetrics, Limits};
use strata_overrides::{Overrides, RuntimeConfigFile, Snapshot};
use strata_remote_write::{encode_write_request, OwnedTimeSeries, Sample};

fn body(metric: &str, from: usize, to: usize) -> Vec<u8> {
    let series: Vec<OwnedTimeSeries> = (from..to)
        .map(|i| {
            OwnedTimeSeries::new(
                [
                    ("__name__".to_string(), metric.to_string()),
                    ("i".to_string(), i.to_string()),
                ],
                [Sample {
                    timestamp: 1,
                    value: 1.0,
                }],
            )
        })
        .collect();
    encode_write_request(&series, &[])
}

fn load(handle: &Overrides, text: &str) {
    handle.replace(Snapshot::new(
        RuntimeConfigFile::parse(text).unwrap(),
        String::new(),
        0,
    ));
}

#[test]
fn series_limits_follow_the_overrides_file() {
    let overrides = Overrides::new();
    let ing = Ingester::new(
        IngesterConfig {
            limits: Limits {
                max_series_per_tenant: 100,
                max_series_per_metric: 100,
                ..Limits::default()
            },
            ..IngesterConfig::default()
        },
        IngesterMetrics::default(),
    )
    .with_overrides(overrides.clone());
    load(
        &overrides,
        "overrides:\n  small:\n    max_series_per_tenant: 3\n    max_series_per_metric: 2\n",
    );
    assert_eq!(ing.limits_for("small").max_series_per_tenant, 3);
    assert_eq!(ing.limits_for("other").max_series_per_tenant, 100);

    let out = ing.push("small", &body("a", 0, 3)).unwrap();
    assert_eq!((out.appended, out.rejected), (2, 1));
    assert!(out.first_rejection.unwrap().contains("for one metric name"));
    let out = ing.push("small", &body("b", 0, 2)).unwrap();
    assert_eq!((out.appended, out.rejected), (1, 1));
    assert!(out.first_rejection.unwrap().contains("limit of 3 series"));
    // Another tenant keeps the static limits.
    assert_eq!(ing.push("other", &body("a", 0, 5)).unwrap().appended, 5);

    // Raised in the file: the next push creates the series.
    load(
        &overrides,
        "overrides:\n  small:\n    max_series_per_tenant: 10\n    max_series_per_metric: 5\n",
    );
    let out = ing.push("small", &body("a", 0, 5)).unwrap();
    // a0 and a1 held this sample already (silently accepted repeats).
    assert_eq!((out.appended, out.rejected), (3, 0));
    assert_eq!(ing.stats("small").series, 6);

    // Entry removed: the static limits again.
    load(&overrides, "overrides: {}\n");
    assert_eq!(ing.limits_for("small"), ing.config().limits);
}
