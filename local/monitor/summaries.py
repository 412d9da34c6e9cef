"""The metric tables read back: one summary per window and model version, what `mlops monitor` prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from local.monitor import store
from local.monitor.errors import MonitorError
from local.monitor.schema import DRIFT_SCHEMA, PROFILE_SCHEMA
from spec.monitoring import BASELINE, INPUT, LABEL_COL, MODEL_ID_COL, TABLE_COLUMN, MonitoredTable

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class WindowSummary:
    """One window of one model version, whole table: what `mlops monitor` prints."""

    granularity: str
    start: datetime
    model_version: str
    rows: int
    labelled_rows: int
    roc_auc: float | None  # a classifier's (None for a regressor, or unlabelled)
    worst_psi: float | None
    worst_psi_column: str | None
    mean_absolute_error: float | None = None  # a regressor's (None for a classifier, or unlabelled)


def window_summaries(monitored: MonitoredTable, granularity: str) -> list[WindowSummary]:
    """Per window and model version (whole table, ``granularity``): rows, labelled rows, the model quality (a
    classifier's ROC AUC, a regressor's mean absolute error; None when unlabelled) and the largest baseline PSI of
    the drift alert's columns."""
    import pandas as pd

    profile = store.read_metrics(monitored.profile_metrics_table, PROFILE_SCHEMA)
    drift = store.read_metrics(monitored.drift_metrics_table, DRIFT_SCHEMA)
    if profile is None:
        raise MonitorError(f"{monitored.profile_metrics_table} does not exist yet: run mlops monitor first")
    frame = _rows(profile, granularity, "log_type", INPUT)
    table_rows = frame[frame["column_name"] == TABLE_COLUMN]
    labels = frame[frame["column_name"] == LABEL_COL].set_index(["start", MODEL_ID_COL])
    psi = None
    if drift is not None:
        d = _rows(drift, granularity, "drift_type", BASELINE)
        d = d[d["column_name"].isin(monitored.drift_alert_columns) & d["population_stability_index"].notna()]
        if len(d):
            psi = d.loc[d.groupby(["start", MODEL_ID_COL])["population_stability_index"].idxmax()]
            psi = psi.set_index(["start", MODEL_ID_COL])
    out = []
    for row in table_rows.sort_values(["start", MODEL_ID_COL]).to_dict(orient="records"):
        key = (row["start"], row[MODEL_ID_COL])
        label = labels.loc[key] if key in labels.index else None
        worst = psi.loc[key] if psi is not None and key in psi.index else None
        out.append(
            WindowSummary(
                granularity=granularity,
                start=row["start"].to_pydatetime(),
                model_version=key[1],
                rows=int(row["count"]),
                labelled_rows=int(label["count"] - label["num_nulls"]) if label is not None else 0,
                roc_auc=None if pd.isna(row["roc_auc_score"]) else float(row["roc_auc_score"]),
                worst_psi=None if worst is None else float(worst["population_stability_index"]),
                worst_psi_column=None if worst is None else str(worst["column_name"]),
                mean_absolute_error=None if pd.isna(row["mean_average_error"]) else float(row["mean_average_error"]),
            )
        )
    return out


def _rows(table: pa.Table, granularity: str, kind_column: str, kind: str) -> pd.DataFrame:
    mask = pc.and_(
        pc.and_(pc.equal(table.column("granularity"), granularity), pc.equal(table.column(kind_column), kind)),
        pc.is_null(table.column("slice_key")),
    )
    chosen = table.filter(mask)
    frame = chosen.drop_columns(["window"]).to_pandas()
    frame["start"] = chosen.column("window").combine_chunks().field("start").to_pandas()
    return frame
