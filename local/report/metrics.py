"""Reading the quality monitor's metric tables (``<table>_profile_metrics``, ``<table>_drift_metrics``; Lakehouse
Monitoring's columns, spec/monitoring.py) with delta-rs, for the report and the dashboard.

The drift frame carries, per window and model version, the rows that version scored in the window, read from the
profile metric table by the drift alert's own rule (the whole-table ``:table`` INPUT row's ``count``): the figures
leave out a group the alert leaves out (``monitoring.min_window_rows``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from local.monitor.schema import DRIFT_SCHEMA, PROFILE_SCHEMA
from local.paths import table_path
from spec.config import ENVIRONMENTS, Environment
from spec.errors import MlopsError
from spec.monitoring import BASELINE, INPUT, MODEL_ID_COL, TABLE_COLUMN, MonitoredTable, monitored_tables

logger = logging.getLogger(__name__)

WEEK = "1 week"


class ReportError(MlopsError):
    """A metric table the report reads is not what the monitor writes; the message names it and what to run."""


def read_metric_table(full_name: str, columns: Sequence[str]) -> pd.DataFrame | None:
    """``window_start`` (the start of ``window``, naive UTC) and the ``columns`` of a monitor metric table; None when
    the table does not exist. A column the table lacks comes back all null."""
    from deltalake import DeltaTable

    path = table_path(full_name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path))
    present = {f.name for f in table.schema().fields}
    if "window" not in present:
        raise ReportError(f"{full_name} at {path} has no column 'window': not a monitor metric table")
    wanted = [c for c in dict.fromkeys(columns) if c in present and c != "window"]
    arrow = table.to_pyarrow_table(columns=["window", *wanted])
    frame = arrow.select(wanted).to_pandas()
    for name in columns:
        if name not in frame:
            frame[name] = None
    starts = pd.to_datetime(pd.Series(arrow.column("window").combine_chunks().field("start").to_pandas()))
    if starts.dt.tz is not None:
        starts = starts.dt.tz_convert("UTC").dt.tz_localize(None)
    frame.insert(0, "window_start", starts.to_numpy())
    return frame


def window_rows(profile: pd.DataFrame, *, granularity: str) -> pd.DataFrame:
    """Rows per window and model version as the drift alert counts them (spec/monitoring.py): the ``count`` of the
    profile's whole-table row (``column_name`` ':table', ``log_type`` INPUT, no slice). Columns ``window_start``,
    ``model_version``, ``rows``."""
    chosen = profile[
        (profile["column_name"] == TABLE_COLUMN)
        & (profile["log_type"] == INPUT)
        & (profile["granularity"] == granularity)
        & profile["slice_key"].isna()
    ]
    rows = chosen.groupby(["window_start", MODEL_ID_COL], as_index=False)["count"].max()
    return rows.rename(columns={"count": "rows"})


def drift_rows(
    frame: pd.DataFrame, *, drift_type: str, granularity: str, profile: pd.DataFrame, monitored: MonitoredTable
) -> pd.DataFrame:
    """The PSI of each monitored feature of ``monitored`` per window and model version, whole table, with the rows
    that version scored in the window (from ``profile``, the profile metric table; NaN without a profile row):
    ``window_start``, ``model_version``, ``column_name``, ``psi``, ``rows``, and ``alerted`` (the drift alert
    watches the column). Ordered as the model declares its features."""
    chosen = frame[
        (frame["granularity"] == granularity)
        & (frame["drift_type"] == drift_type)
        & frame["slice_key"].isna()
        & frame["column_name"].isin(monitored.features)
        & frame["population_stability_index"].notna()
    ]
    chosen = chosen.rename(columns={"population_stability_index": "psi"})
    chosen = chosen[["window_start", MODEL_ID_COL, "column_name", "psi"]]
    sized = chosen.merge(window_rows(profile, granularity=granularity), on=["window_start", MODEL_ID_COL], how="left")
    sized["rows"] = sized["rows"].astype(float)
    sized["alerted"] = sized["column_name"].isin(monitored.drift_alert_columns)
    order = sized["column_name"].map({name: i for i, name in enumerate(monitored.features)})
    sized = sized.assign(_order=order).sort_values(["_order", "window_start", MODEL_ID_COL], kind="stable")
    return sized.drop(columns="_order").reset_index(drop=True)


def _columns(schema, *names: str) -> tuple[str, ...]:
    """``names``, each checked against the monitor's own schema of the table (local.monitor.schema)."""
    unknown = [name for name in names if name not in schema.names]
    if unknown:
        raise ReportError(f"the monitor's metric tables have no column {unknown}: the report reads what it writes")
    return names


DRIFT_COLUMNS = _columns(
    DRIFT_SCHEMA, "granularity", MODEL_ID_COL, "slice_key", "column_name", "drift_type", "population_stability_index"
)
# What the report and the dashboard read of the profile metric table (model quality, label coverage, window sizes).
PROFILE_COLUMNS = _columns(
    PROFILE_SCHEMA, "granularity", MODEL_ID_COL, "log_type", "slice_key", "slice_value", "column_name", "count",
    "num_nulls", "accuracy_score", "roc_auc_score", "mean_average_error", "r2_score",
)  # fmt: skip


def load_drift(env: Environment | str) -> pd.DataFrame | None:
    """Baseline PSI per monitored feature of the predictions (batch and streaming), weekly windows, whole table, per
    model version, with the rows each version scored in the window (``drift_rows``' columns); None when the monitor has
    not written its metric tables yet."""
    env = ENVIRONMENTS[env] if isinstance(env, str) else env
    monitored = monitored_tables(env)[0]
    frame = read_metric_table(monitored.drift_metrics_table, DRIFT_COLUMNS)
    if frame is None:
        logger.info("report: no drift table %s yet; the report has no drift plot", monitored.drift_metrics_table)
        return None
    profile = read_metric_table(monitored.profile_metrics_table, PROFILE_COLUMNS)
    if profile is None:
        # The monitor writes both tables in one refresh: a drift table alone is a broken warehouse, not "no data".
        raise ReportError(
            f"{monitored.drift_metrics_table} exists but {monitored.profile_metrics_table} does not: the drift "
            f"plot needs the rows per window from it (run mlops monitor --env {env.name} --full)"
        )
    return drift_rows(frame, drift_type=BASELINE, granularity=WEEK, profile=profile, monitored=monitored)
