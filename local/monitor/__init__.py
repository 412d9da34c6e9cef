"""The local quality monitor: Databricks Lakehouse Monitoring's ``inference_log`` metric tables, computed here.

``refresh_monitor(env, monitored)`` reads a monitored table (``spec.monitoring.monitored_tables``) and the baseline
table with delta-rs, and writes ``<table>_profile_metrics`` and ``<table>_drift_metrics`` as Delta tables, with
Lakehouse Monitoring's column names and meanings (docs/monitoring.md lists the schema and the differences). Metrics
are computed per granularity window, per model version and per slice (the whole table, and each value of each
slicing expression), for the model's monitored features plus its outputs and the label
(``MonitoredTable.monitored_columns``):

* profile rows (``log_type`` INPUT for the monitored table, BASELINE for the baseline table): counts, nulls, NaNs,
  zeros, distinct values, mean, standard deviation, quantiles, frequent items; on the ``:table`` rows the model
  quality of the labelled rows by the problem type (a classifier's accuracy, precision, recall, F1, ROC AUC, log
  loss and confusion matrix; a regressor's mean squared error, its root, mean absolute error, mean absolute
  percentage error and R²), null when the window has no label (unlabelled, never 0);
* drift rows: each window against the previous window (CONSECUTIVE) and against the baseline rows of the model
  version that scored it (BASELINE).

A refresh computes only the windows whose rows changed since the last refresh (new windows, and windows whose labels
arrived later), recognised by a per-window fingerprint kept in ``$MLOPS_HOME/monitoring/<table>.json``, plus the
CONSECUTIVE drift of the window after each of them. Refreshes of one table take turns (an exclusive lock,
``<table>.lock`` beside the state), and the state is replaced atomically.

The modules, one concern each (the arrows are imports):

    schema     the metric tables' Arrow schemas and the constants of what is measured
    windows    granularities, window starts, ``WindowKey``
    frame      the rows as numpy arrays, and their (slice, model version, window, slice value) groups
    stats      the numpy kernels: profiles, drift tests and distances, model quality (unit-tested against scipy)
    compute    one granularity's profile and drift rows, from frame + stats
    plan       fingerprints, the refresh plan, the state file
    store      Delta I/O (the only module that imports deltalake)
    refresh    ``refresh_monitor``: store -> plan -> compute -> store
    summaries  the metric tables read back per window (``mlops monitor``)
"""

from __future__ import annotations

from local.monitor.errors import MonitorError
from local.monitor.plan import lock_path, state_path
from local.monitor.refresh import RefreshResult, refresh_monitor
from local.monitor.schema import DRIFT_SCHEMA, PROFILE_SCHEMA
from local.monitor.summaries import WindowSummary, window_summaries
from local.monitor.windows import WindowKey, parse_granularity, shift_windows, window_starts

__all__ = [
    "DRIFT_SCHEMA",
    "PROFILE_SCHEMA",
    "MonitorError",
    "RefreshResult",
    "WindowKey",
    "WindowSummary",
    "lock_path",
    "parse_granularity",
    "refresh_monitor",
    "shift_windows",
    "state_path",
    "window_starts",
    "window_summaries",
]
