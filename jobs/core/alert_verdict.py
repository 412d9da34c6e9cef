"""The verdict on one run of a SQL alert's query: the one rule that the local alerts (``local.alerts``) and the
retraining check (``jobs.check_retraining``) both apply, so the two can never disagree on what a row means.

States:
    OK         the query returned a row whose ``source_column`` (``triggered``) is 0 (or less)
    TRIGGERED  ``triggered`` > 0: the condition of spec/monitoring.py holds
    ERROR      the query failed, returned no row, no such column, NULL, NaN or a non-number: never OK, never
               "does not hold": nobody can say whether the condition holds

Pure: rows (or the query's error) in, a ``Verdict`` out; running the query is the caller's (a ``Sql`` port's
``query``, passed in). A legitimately empty metric table is not an ERROR: the alert queries aggregate, so they return
one row with ``windows`` = 0 and ``triggered`` = 0, which is OK with the reason "no window to judge yet".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spec.monitoring import AlertSpec

OK, TRIGGERED, ERROR = "OK", "TRIGGERED", "ERROR"
NO_WINDOW_YET = "no window to judge yet (0 windows in the metric table)"


@dataclass(frozen=True)
class Verdict:
    """What one run of an alert's query says: the state, the compared value (None unless OK or TRIGGERED), the
    query's other columns, and why (always set for ERROR)."""

    state: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def holds(self) -> bool:
        return self.state == TRIGGERED

    @property
    def is_error(self) -> bool:
        return self.state == ERROR


def judge(spec: AlertSpec, rows: Sequence[Mapping[str, Any]]) -> Verdict:
    """The state the rows of ``spec``'s query put the alert in: the first row's ``source_column`` > 0 is TRIGGERED,
    0 (or less) is OK; no row, no such column, NULL, NaN or a non-number is ERROR with the reason."""
    column = spec.source_column
    if not rows:
        return Verdict(ERROR, None, {}, "the query returned no row")
    row = dict(rows[0])
    details = {k: v for k, v in row.items() if k != column}
    if column not in row:
        return Verdict(ERROR, None, details, f"the query returned no column {column!r} (columns: {', '.join(row)})")
    raw = row[column]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return Verdict(ERROR, None, details, f"{column} is {raw!r}, not a number")
    value = float(raw)
    if math.isnan(value):  # compares false both ways: neither OK nor TRIGGERED can be said
        return Verdict(ERROR, None, details, f"{column} is NaN")
    if value > 0:
        return Verdict(TRIGGERED, value, details)
    return Verdict(OK, value, details, NO_WINDOW_YET if details.get("windows") == 0 else None)


def run_alert_query(spec: AlertSpec, query: Callable[[str], Sequence[Mapping[str, Any]]]) -> Verdict:
    """Run the alert's query exactly as written with ``query`` (a ``Sql`` port's ``query``) and judge its rows; a
    query that fails (a ValueError, as the port raises: a missing table, a syntax error) is ERROR with the reason."""
    try:
        rows = query(spec.query_text)
    except ValueError as error:
        return Verdict(ERROR, None, {}, str(error))
    return judge(spec, rows)
