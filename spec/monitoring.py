"""What is monitored and what the alerts ask, by name: one source for the stack's quality monitors and SQL alerts, the
local monitor, the local SQL warehouse and the retraining check.

Two tables of an environment's model are monitored as Lakehouse Monitoring ``inference_log`` tables: the predictions
of the batch and streaming jobs, and the requests the serving endpoint answered (its inference table, unpacked by the
labels job: one row per scored request). Both get their labels (``label`` and the model's label details) from the
labels job once the labels are known. What is model-specific comes from the environment's model
(``spec.model.ModelSpec``): the timestamp column (its ``event_time``), the problem type (classification or
regression, as data profiling names them), the monitored features, the drift alert's columns and the tables' columns.
The monitor writes ``<table>_profile_metrics`` and ``<table>_drift_metrics`` to the environment's monitoring schema;
the alert queries read them.

An alert query returns one row; its column ``triggered`` is 1 when the alert's condition holds (the metric breached
its threshold in at least ``alert_breaches`` of the last ``alert_windows`` windows, the latest one included) and 0
otherwise, with the numbers it decided on beside it. The model-quality alert reads the ROC AUC of a classifier and
the mean absolute error of a regressor. The text is written here once, in Databricks SQL: the stack synthesizes it
into ``databricks_alert_v2.query_text`` and the local warehouse runs the same text (transpiled to DuckDB's dialect
by sqlglot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from spec.base import ConfigError
from spec.columns import LABEL, PREDICTION, PROBABILITY
from spec.config import Environment
from spec.model import ModelSpec

MODEL_ID_COL = "model_version"
PREDICTION_COL = PREDICTION
PREDICTION_PROBA_COL = PROBABILITY
LABEL_COL = LABEL
# Data profiling's ``problem_type`` of an ``inference_log`` monitor, by the model's problem type.
PROBLEM_TYPES: Mapping[str, str] = {
    "classification": "PROBLEM_TYPE_CLASSIFICATION",
    "regression": "PROBLEM_TYPE_REGRESSION",
}
# A regressor's quality metrics on the whole-table rows of the profile metric table, as data profiling names its
# columns: the mean squared error, its root, the mean absolute error (the column is named ``mean_average_error``),
# the mean absolute percentage error and R². (A classifier's: accuracy_score, precision, recall, f1_score,
# roc_auc_score, log_loss, confusion_matrix.)
REGRESSION_METRICS = (
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_average_error",
    "mean_absolute_percentage_error",
    "r2_score",
)
# Lakehouse Monitoring's drift types (the drift metric table's `drift_type`): a window against the baseline table, and
# against the window before it; and the profile's `log_type` of the monitored rows. One place for the monitor, the
# alerts, the dashboard and the report.
INPUT = "INPUT"
BASELINE = "BASELINE"
CONSECUTIVE = "CONSECUTIVE"
# Lakehouse Monitoring's name for the whole table in `column_name` (model quality metrics live on these rows).
TABLE_COLUMN = ":table"

AlertKind = Literal["feature_drift", "model_quality"]


@dataclass(frozen=True)
class MonitoredTable:
    """One table under a quality monitor, where its metric tables go, and what of its model it watches: the timestamp
    column, the problem type, the monitored features, the drift alert's columns, and the table's columns with their
    SQL types (declared by the stack, written by the jobs; the baseline has the same)."""

    table: str
    baseline_table: str
    output_schema: str
    slicing_exprs: tuple[str, ...]
    granularities: tuple[str, ...]
    timestamp_col: str
    problem_type: str  # "classification" or "regression" (``PROBLEM_TYPES`` has data profiling's names)
    features: tuple[str, ...]
    drift_alert_columns: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    # The mean absolute error a version of the model must not exceed to be deployed (its declaration's validation
    # threshold, if it has one): the quality alert's bound when config sets none.
    declared_max_error: float | None = None

    @property
    def short_name(self) -> str:
        return self.table.split(".")[2]

    @property
    def profile_metrics_table(self) -> str:
        return f"{self.output_schema}.{self.short_name}_profile_metrics"

    @property
    def drift_metrics_table(self) -> str:
        return f"{self.output_schema}.{self.short_name}_drift_metrics"

    @property
    def is_classifier(self) -> bool:
        return self.problem_type == "classification"

    @property
    def profiling_problem_type(self) -> str:
        """``PROBLEM_TYPE_CLASSIFICATION`` or ``PROBLEM_TYPE_REGRESSION``: the monitor's ``problem_type``."""
        return PROBLEM_TYPES[self.problem_type]

    @property
    def prediction_proba_col(self) -> str | None:
        """The probability of the positive class: a classifier's; a regressor has none."""
        return PREDICTION_PROBA_COL if self.is_classifier else None

    @property
    def outputs(self) -> tuple[str, ...]:
        return (PREDICTION_COL, PREDICTION_PROBA_COL) if self.is_classifier else (PREDICTION_COL,)

    @property
    def monitored_columns(self) -> tuple[str, ...]:
        """What the monitor profiles: the monitored features, the model's outputs and the label."""
        return (*self.features, *self.outputs, LABEL_COL)

    @property
    def class_columns(self) -> tuple[str, ...]:
        """Columns holding classes (profiled as numbers, compared as categories): a classifier's prediction and
        label; a regressor's are plain numbers."""
        return (PREDICTION_COL, LABEL_COL) if self.is_classifier else ()


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


def monitored_tables(env: Environment, model: ModelSpec | None = None) -> tuple[MonitoredTable, ...]:
    """The predictions and the served requests of ``env``'s model (``model``: another declaration for the same
    environment's tables, say a model built in a test)."""
    model = env.model if model is None else model
    schema = f"{env.catalog}.monitoring"
    slicing = env.monitoring.slicing_exprs
    common = dict(
        baseline_table=env.baseline_table,
        output_schema=schema,
        slicing_exprs=model.slicing_exprs if slicing is None else slicing,
        granularities=env.monitoring.granularities,
        timestamp_col=model.event_time,
        problem_type=model.problem_type,
        features=model.monitored,
        drift_alert_columns=model.drift_features,
        columns=model.prediction_column_types,
        declared_max_error=model.validation.thresholds.get("mean_absolute_error"),
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
-- {m.min_window_rows} rows in a window does not count: a handful of rows is not a distribution).
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
    AND d.column_name IN ({_quoted(monitored.drift_alert_columns)})
  GROUP BY d.`window`.start
),
{_decide("worst_psi", f"worst_psi > {m.max_drift_psi}", env)}
"""


@dataclass(frozen=True)
class QualityRule:
    """What the model-quality alert compares, by problem type: a column of the whole-table profile rows, the worst
    value over the model versions of a window (``aggregate``), and the breach (``comparison`` against
    ``threshold``)."""

    metric: str  # the profile metric table's column
    value: str  # the query's name for a window's value
    aggregate: Literal["MIN", "MAX"]
    comparison: Literal["<", ">"]
    threshold: float
    what: str  # how a person names the metric
    config_field: str

    @property
    def breach(self) -> str:
        return f"{self.value} {self.comparison} {self.threshold}"

    def description(self, table: str) -> str:
        moved = "fell below" if self.comparison == "<" else "rose above"
        return f"{self.what} of {table} {moved} {self.threshold}"


def quality_rule(env: Environment, monitored: MonitoredTable) -> QualityRule:
    """The model-quality alert's rule for ``monitored``'s problem type: a classifier's ROC AUC below
    ``monitoring.min_roc_auc``, a regressor's mean absolute error above ``monitoring.max_mean_absolute_error``, or,
    when config sets none, above the bound its declaration's validation puts on it (a ConfigError naming the field
    when neither does)."""
    m = env.monitoring
    if monitored.is_classifier:
        if m.max_mean_absolute_error is not None:
            _config_error(
                env,
                "monitoring.max_mean_absolute_error",
                f"is set ({m.max_mean_absolute_error}) but the model is a classifier: its quality alert reads the "
                "ROC AUC (monitoring.min_roc_auc); remove the field",
            )
        return QualityRule("roc_auc_score", "roc_auc", "MIN", "<", m.min_roc_auc, "ROC AUC", "monitoring.min_roc_auc")
    bound = m.max_mean_absolute_error if m.max_mean_absolute_error is not None else monitored.declared_max_error
    if bound is None:
        _config_error(
            env,
            "monitoring.max_mean_absolute_error",
            "is required for a regression model whose declaration puts no validation threshold on "
            "mean_absolute_error: its quality alert fires when the mean absolute error of the labelled rows rises "
            "above it; set it in the label's units (e.g. monitoring.max_mean_absolute_error=15.0)",
        )
    return QualityRule(
        "mean_average_error",
        "mean_absolute_error",
        "MAX",
        ">",
        bound,
        "mean absolute error",
        "monitoring.max_mean_absolute_error",
    )


def _config_error(env: Environment, field: str, problem: str) -> None:
    raise ConfigError(f"environment {env.name!r}: field {field!r} {problem}", [(field, problem)])


def model_quality_query(env: Environment, monitored: MonitoredTable) -> str:
    m = env.monitoring
    rule = quality_rule(env, monitored)
    return f"""-- Model quality of {monitored.table}: the {rule.what} of the labelled rows of each window, for the model
-- that scored them ({m.alert_granularity} windows; a model with fewer than {m.min_labelled_rows} labels in a window
-- does not count: its {rule.what} says too little).
WITH labelled AS (
  SELECT `window`.start AS window_start, {MODEL_ID_COL}, `count` - num_nulls AS labels
  FROM {monitored.profile_metrics_table}
  WHERE column_name = '{LABEL_COL}'
    AND log_type = 'INPUT'
    AND granularity = '{m.alert_granularity}'
    AND slice_key IS NULL
),
quality AS (
  SELECT `window`.start AS window_start, {MODEL_ID_COL}, {rule.metric}
  FROM {monitored.profile_metrics_table}
  WHERE column_name = '{TABLE_COLUMN}'
    AND log_type = 'INPUT'
    AND granularity = '{m.alert_granularity}'
    AND slice_key IS NULL
    AND {rule.metric} IS NOT NULL
),
windows AS (
  SELECT q.window_start, {rule.aggregate}(q.{rule.metric}) AS {rule.value}
  FROM quality q
  JOIN labelled l ON q.window_start = l.window_start AND q.{MODEL_ID_COL} = l.{MODEL_ID_COL}
  WHERE l.labels >= {m.min_labelled_rows}
  GROUP BY q.window_start
),
{_decide(rule.value, rule.breach, env)}
"""


def alerts(env: Environment, model: ModelSpec | None = None) -> tuple[AlertSpec, ...]:
    """Every alert of ``env`` (its model, or ``model``): drift and quality of the predictions (these start
    retraining), and the same two on the served requests (people hear of them; the online Champion/Challenger
    decision acts on served traffic)."""
    specs = []
    for monitored, retrains in zip(monitored_tables(env, model), (True, False), strict=True):
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
                description=quality_rule(env, monitored).description(monitored.table),
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
