"""The metric tables' layout: Lakehouse Monitoring's ``<table>_profile_metrics`` and ``<table>_drift_metrics`` as
Arrow schemas, and the constants that define what the monitor measures.

One place for every reader and writer of the metric tables (the monitor, the report, the dashboard, the benchmark):
docs/monitoring.md describes each column. No engine here: Arrow types and names only.
"""

from __future__ import annotations

import pyarrow as pa

from spec.monitoring import MODEL_ID_COL, REGRESSION_METRICS

# Bump when a metric's definition changes: the next refresh then recomputes every window (and monitor_version).
LOGIC_VERSION = 1
PROFILE_QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
# Population stability index: 10 bins cut at the reference's deciles (see ``stats.numeric_drift``).
PSI_BINS = 10
PSI_FLOOR = 1e-4
FREQUENT_ITEMS = 20
# What is profiled (the model's monitored features, its outputs and the label) and which columns hold classes
# (profiled as numbers, compared as categories) come with the monitored table: ``MonitoredTable.monitored_columns``,
# ``MonitoredTable.class_columns``.
# Rows of the monitored table that say when they changed: a window's fingerprint takes their latest value.
CHANGE_COLUMNS = ("scored_at", "labeled_at")

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
# A column's ``data_type`` in the metric tables: Spark SQL's name of its Arrow type.
SPARK_TYPES = {
    pa.string(): "string", pa.large_string(): "string", pa.float64(): "double", pa.float32(): "float",
    pa.int64(): "bigint", pa.int32(): "int", pa.int16(): "smallint", pa.int8(): "tinyint", pa.bool_(): "boolean",
}  # fmt: skip

WINDOW_TYPE = pa.struct([("start", TIMESTAMP_TYPE), ("end", TIMESTAMP_TYPE)])
AVERAGED_TYPE = pa.struct(
    [("one_vs_all", pa.map_(pa.string(), pa.float64())), ("macro", pa.float64()), ("weighted", pa.float64())]
)
TEST_TYPE = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
PROFILE_SCHEMA = pa.schema(
    [
        ("window", WINDOW_TYPE),
        ("granularity", pa.string()),
        (MODEL_ID_COL, pa.string()),
        ("log_type", pa.string()),
        ("logging_table_commit_version", pa.int32()),
        ("monitor_version", pa.int64()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("count", pa.int64()),
        ("num_nulls", pa.int64()),
        ("avg", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("stddev", pa.float64()),
        ("median", pa.float64()),
        ("quantiles", pa.list_(pa.float64())),
        ("distinct_count", pa.int64()),
        ("num_zeros", pa.int64()),
        ("num_nan", pa.int64()),
        ("min_length", pa.float64()),
        ("max_length", pa.float64()),
        ("avg_length", pa.float64()),
        ("percent_null", pa.float64()),
        ("percent_zeros", pa.float64()),
        ("percent_nan", pa.float64()),
        ("percent_distinct", pa.float64()),
        ("frequent_items", pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
        ("non_null_columns", pa.list_(pa.string())),
        ("accuracy_score", pa.float64()),
        ("precision", AVERAGED_TYPE),
        ("recall", AVERAGED_TYPE),
        ("f1_score", AVERAGED_TYPE),
        ("roc_auc_score", pa.float64()),
        ("log_loss", pa.float64()),
        (
            "confusion_matrix",
            pa.list_(pa.struct([("prediction", pa.string()), ("label", pa.string()), ("count", pa.int64())])),
        ),
        # A regressor's quality (a classifier's rows leave them null, as a regressor's leave the columns above).
        *((name, pa.float64()) for name in REGRESSION_METRICS),
    ]
)
DRIFT_SCHEMA = pa.schema(
    [
        ("window", WINDOW_TYPE),
        ("granularity", pa.string()),
        (MODEL_ID_COL, pa.string()),
        ("monitor_version", pa.int64()),
        ("slice_key", pa.string()),
        ("slice_value", pa.string()),
        ("column_name", pa.string()),
        ("data_type", pa.string()),
        ("window_cmp", WINDOW_TYPE),
        ("drift_type", pa.string()),
        ("count_delta", pa.int64()),
        ("avg_delta", pa.float64()),
        ("percent_null_delta", pa.float64()),
        ("percent_zeros_delta", pa.float64()),
        ("percent_distinct_delta", pa.float64()),
        ("non_null_columns_delta", pa.struct([("added", pa.int32()), ("missing", pa.int32())])),
        ("js_distance", pa.float64()),
        ("ks_test", TEST_TYPE),
        ("wasserstein_distance", pa.float64()),
        ("population_stability_index", pa.float64()),
        ("chi_squared_test", TEST_TYPE),
        ("tv_distance", pa.float64()),
        ("l_infinity_distance", pa.float64()),
    ]
)
