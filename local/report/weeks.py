"""The replay's data (``report_data.json``) as the report reads it: one row per week, the events, the thresholds.

The replay's JSON may lack keys or hold nulls (weeks without labels have null ROC AUCs, a week without requests has
null latencies): a missing number is NaN here, drawn as a gap, never as 0.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from spec.config import ENVIRONMENTS, Monitoring

logger = logging.getLogger(__name__)

# The three retraining policies the replay compares: (column of report_data.json, label, colour).
POLICIES = (
    ("auc_loop", "the loop", "tab:blue"),
    ("auc_never", "never retrained", "tab:gray"),
    ("auc_weekly", "retrained every week", "tab:orange"),
)
NUMERIC_WEEK_FIELDS = (
    "auc_loop", "auc_never", "auc_weekly", "labelled", "scored_stream", "scored_batch", "rejected",
    "served_requests", "served_errors", "served_p50_ms", "served_p95_ms", "published", "challenger_percent",
)  # fmt: skip
TEXT_WEEK_FIELDS = ("champion", "challenger", "new_version", "validation", "online_decision", "retrain_reason")
FLAG_WEEK_FIELDS = ("retrained", "promoted")


def weeks_frame(data: dict[str, Any]) -> pd.DataFrame:
    """``data["weeks"]`` as one row per week, sorted by ``week_start`` (a Timestamp): numbers as floats (NaN when
    missing or null), versions and decisions as text or None, flags as booleans, ``alerts`` as a dict."""
    records = [w for w in (data.get("weeks") or []) if isinstance(w, dict)]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(index=pd.RangeIndex(0))
    out = pd.DataFrame(index=frame.index)
    out["week_start"] = pd.to_datetime(frame.get("week_start", pd.Series(dtype=object)), errors="coerce")
    for name in NUMERIC_WEEK_FIELDS:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(float) if name in frame else np.nan
    for name in TEXT_WEEK_FIELDS:
        values = frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)
        out[name] = [None if _missing(v) else str(v) for v in values]
    for name in FLAG_WEEK_FIELDS:
        out[name] = [v is True for v in frame[name]] if name in frame else False
    alerts = frame["alerts"] if "alerts" in frame else [None] * len(frame)
    out["alerts"] = [a if isinstance(a, dict) else {} for a in alerts]
    undated = out["week_start"].isna()
    if undated.any():
        logger.warning("report: %d week(s) without a valid week_start left out", int(undated.sum()))
    return out[~undated].sort_values("week_start").reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def events(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The replay's events (retraining, promotion, rollback, ...), each a dict; anything else left out."""
    return [e for e in (data.get("events") or []) if isinstance(e, dict)]


def monitoring(data: dict[str, Any]) -> Monitoring:
    """The thresholds of the replayed environment (the defaults when the data names none we know)."""
    env = ENVIRONMENTS.get(str(data.get("env")))
    return env.monitoring if env is not None else Monitoring()


def second_half_start(data: dict[str, Any], weeks: pd.DataFrame) -> pd.Timestamp | None:
    """The middle of the replayed period (from ``start`` / ``end``, else from the weeks)."""
    start = pd.to_datetime(data.get("start"), errors="coerce")
    end = pd.to_datetime(data.get("end"), errors="coerce")
    if pd.isna(start) and len(weeks):
        start = weeks["week_start"].min()
    if pd.isna(end) and len(weeks):
        end = weeks["week_start"].max() + timedelta(days=6)
    if pd.isna(start) or pd.isna(end):
        return None
    return (start + (end - start) / 2).normalize()
