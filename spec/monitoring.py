"""What is monitored and what the alerts ask, by name: one source for the stack's quality monitors and SQL alerts, the
local monitor, the local SQL warehouse and the retraining check.

Two tables are monitored as Lakehouse Monitoring ``inference_log`` tables (problem type classification): the
predictions of the batch and streaming jobs, and the requests the serving endpoint answered (its inference table,
unpacked by the labels job: one row per scored flight). Both get their labels (``label``, ``arr_delay``) from the
labels job once the flights have arrived. The monitor writes ``<table>_profile_metrics`` and
``<table>_drift_metrics`` to the environment's monitoring schema; the alert queries read them.

An alert query returns one row; its column ``triggered`` is 1 when the alert's condition holds (the metric breached
its threshold in at least ``alert_breaches`` of the last ``alert_windows`` windows, the latest one included) and 0
otherwise, with the numbers it decided on beside it. The text is written here once, in Databricks SQL: the stack
synthesizes it into ``databricks_alert_v2.query_text`` and the local warehouse runs the same text (transpiled to
DuckDB's dialect by sqlglot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from spec.config import Environment
from spec.model import load_model_spec

TIMESTAMP_COL = "sched_departure"
MODEL_ID_COL = "model_version"
PREDICTION_COL = "prediction"
PREDICTION_PROBA_COL = "probability"
LABEL_COL = "label"
PROBLEM_TYPE = "PROBLEM_TYPE_CLASSIFICATION"
# TRANSITION (issue 17): the one model's columns, until every reader takes them from its environment's model.
_MODEL = load_model_spec("flight_delay")
# The model's inputs, as the monitor profiles them.
MONITORED_FEATURES = _MODEL.monitored
# What the drift alert watches (the model's declaration says which and why).
DRIFT_ALERT_COLUMNS = _MODEL.drift_features
# Lakehouse Monitoring's drift types (the drift metric table's `drift_type`): a window against the baseline table, and
# against the window before it; and the profile's `log_type` of the monitored rows. One place for the monitor, the
# alerts, the dashboard and the report.
INPUT = "INPUT"
BASELINE = "BASELINE"
CONSECUTIVE = "CONSECUTIVE"
# Lakehouse Monitoring's name for the whole table in `column_name` (model quality metrics live on these rows).
TABLE_COLUMN = ":table"
# The columns of the monitored tables (predictions, served requests) and of the baseline, with their SQL types:
# declared by the stack, written by the jobs.
MONITORED_TABLE_COLUMNS = _MODEL.prediction_column_types

AlertKind = Literal["feature_drift", "model_quality"]


@dataclass(frozen=True)
class MonitoredTable:
    """One table under a quality monitor, and where its metric tables go."""

    table: str
    baseline_table: str
    output_schema: str
    slicing_exprs: tuple[str, ...]
    granularities: tuple[str, ...]

    @property
    def short_name(self) -> str:
        return self.table.split(".")[2]

    @property
    def profile_metrics_table(self) -> str:
        return f"{self.output_schema}.{self.short_name}_profile_metrics"

    @property
    def drift_metrics_table(self) -> str:
        return f"{self.output_schema}.{self.short_name}_drift_metrics"


@dataclass(frozen=True)
class AlertSpec:
    """A SQL alert: its query, and the column the alert compares (``triggered`` > 0)."""

    name: str
    kind: AlertKind
    monitored: MonitoredTable
    query_text: str
    description: str
    # Whether the retraining graph's check runs this alert's query to decide on retraining.
    starts_retraining: bool
    source_column: str = "triggered"


def monitored_tables(env: Environment) -> tuple[MonitoredTable, ...]:
    schema = f"{env.catalog}.monitoring"
    common = dict(
        baseline_table=env.baseline_table,
        output_schema=schema,
        slicing_exprs=env.monitoring.slicing_exprs,
        granularities=env.monitoring.granularities,
    )
    return (MonitoredTable(env.predictions_table, **common), MonitoredTable(env.served_table, **common))


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _decide(value: str, breach: str, env: Environment) -> str:
    """The last ``alert_windows`` windows of ``windows`` (window_start, value) and the verdict on them."""
    m = env.monitoring
    return f"""recent AS (
  SELECT window_start, {value}, ROW_NUMBER() OVER (ORDER BY window_start DESC) AS recency
  FROM windows
)
SELECT
  CAST(COUNT(*) AS INT) AS windows,
  CAST(COUNT_IF({breach}) AS INT) AS breaches,
  MAX(CASE WHEN recency = 1 THEN {value} END) AS latest_{value},
  MAX(CASE WHEN recency = 1 THEN window_start END) AS latest_window,
  CASE WHEN COUNT_IF({breach}) >= {m.alert_breaches} AND MAX(CASE WHEN recency = 1 AND {breach} THEN 1 ELSE 0 END) = 1
    THEN 1 ELSE 0 END AS triggered
FROM recent
WHERE recency <= {m.alert_windows}"""


def feature_drift_query(env: Environment, monitored: MonitoredTable) -> str:
    m = env.monitoring
    return f"""-- Drift of {monitored.table}: the largest population stability index of a watched column against the
-- training data of the model that scored the window ({m.alert_granularity} windows; a model that scored fewer than
-- {m.min_window_rows} flights in a window does not count: a few late-evening flights are not a distribution).
WITH sized AS (
  SELECT `window`.start AS window_start, {MODEL_ID_COL}
  FROM {monitored.profile_metrics_table}
  WHERE column_name = '{TABLE_COLUMN}'
    AND log_type = 'INPUT'
    AND granularity = '{m.alert_granularity}'
    AND slice_key IS NULL
    AND `count` >= {m.min_window_rows}
),
windows AS (
  SELECT d.`window`.start AS window_start, MAX(d.population_stability_index) AS worst_psi
  FROM {monitored.drift_metrics_table} d
  JOIN sized s ON d.`window`.start = s.window_start AND d.{MODEL_ID_COL} = s.{MODEL_ID_COL}
  WHERE d.drift_type = 'BASELINE'
    AND d.granularity = '{m.alert_granularity}'
    AND d.slice_key IS NULL
    AND d.column_name IN ({_quoted(DRIFT_ALERT_COLUMNS)})
  GROUP BY d.`window`.start
),
{_decide("worst_psi", f"worst_psi > {m.max_drift_psi}", env)}
"""


def model_quality_query(env: Environment, monitored: MonitoredTable) -> str:
    m = env.monitoring
    return f"""-- Model quality of {monitored.table}: the ROC AUC of the labelled flights of each window, for the model
-- that scored them ({m.alert_granularity} windows; a model with fewer than {m.min_labelled_rows} labels in a window
-- does not count: its ROC AUC says too little).
WITH labelled AS (
  SELECT `window`.start AS window_start, {MODEL_ID_COL}, `count` - num_nulls AS labels
  FROM {monitored.profile_metrics_table}
  WHERE column_name = '{LABEL_COL}'
    AND log_type = 'INPUT'
    AND granularity = '{m.alert_granularity}'
    AND slice_key IS NULL
),
quality AS (
  SELECT `window`.start AS window_start, {MODEL_ID_COL}, roc_auc_score
  FROM {monitored.profile_metrics_table}
  WHERE column_name = '{TABLE_COLUMN}'
    AND log_type = 'INPUT'
    AND granularity = '{m.alert_granularity}'
    AND slice_key IS NULL
    AND roc_auc_score IS NOT NULL
),
windows AS (
  SELECT q.window_start, MIN(q.roc_auc_score) AS roc_auc
  FROM quality q
  JOIN labelled l ON q.window_start = l.window_start AND q.{MODEL_ID_COL} = l.{MODEL_ID_COL}
  WHERE l.labels >= {m.min_labelled_rows}
  GROUP BY q.window_start
),
{_decide("roc_auc", f"roc_auc < {m.min_roc_auc}", env)}
"""


def alerts(env: Environment) -> tuple[AlertSpec, ...]:
    """Every alert of ``env``: drift and quality of the predictions (these start retraining), and the same two on
    the served requests (people hear of them; the online Champion/Challenger decision acts on served traffic)."""
    specs = []
    for monitored, retrains in zip(monitored_tables(env), (True, False), strict=True):
        stem = monitored.short_name
        specs.append(
            AlertSpec(
                name=f"{stem}_feature_drift",
                kind="feature_drift",
                monitored=monitored,
                query_text=feature_drift_query(env, monitored),
                description=f"input features of {monitored.table} drifted from the training data",
                starts_retraining=retrains,
            )
        )
        specs.append(
            AlertSpec(
                name=f"{stem}_model_quality",
                kind="model_quality",
                monitored=monitored,
                query_text=model_quality_query(env, monitored),
                description=f"ROC AUC of {monitored.table} fell below {env.monitoring.min_roc_auc}",
                starts_retraining=retrains,
            )
        )
    return tuple(specs)


def describe_alert_row(details: Mapping[str, Any]) -> str:
    """An alert query's result row as a person reads it: ``windows=4, breaches=2, latest_worst_psi=0.540,
    latest_window=2013-07-01`` (numbers to 3 decimals, a midnight timestamp as its date)."""
    parts = []
    for name, value in details.items():
        if isinstance(value, float):
            shown = f"{value:.3f}"
        elif isinstance(value, datetime) and value.time() == time(0):
            shown = value.date().isoformat()
        elif isinstance(value, date | datetime):
            shown = value.isoformat()
        else:
            shown = str(value)
        parts.append(f"{name}={shown}")
    return ", ".join(parts)
