"""Time windows: granularities ("1 day", "1 week", ...), each timestamp's window start, and ``WindowKey``, the one
name of a (granularity, model version, window) that plans, results and the state file use.

Windows are aligned in UTC: minutes, hours and days on the Unix epoch, weeks on Mondays (``WEEK_ORIGIN_US``), months
on calendar months. Starts are microseconds since the epoch in numpy arrays (whole seconds, so a window code fits one
integer, see ``window_codes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from local.monitor.errors import MonitorError
from spec.config import GRANULARITIES

# Weekly windows start on Mondays 00:00 UTC (1970-01-05 was a Monday), as Spark's date_trunc('week') does.
WEEK_ORIGIN_US = 4 * 86_400 * 1_000_000
US = 1_000_000
# A window code: (model version code) x WINDOW_CODE_VERSION + (start in seconds); seconds since 1970 stay below it
# until the year 36812.
WINDOW_CODE_VERSION = 1 << 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 7 * 86_400}
_GRANULARITY = re.compile(r"^(\d+) (minute|hour|day|week|month)s?$")


def parse_granularity(text: str) -> tuple[int, str]:
    """ "1 day" -> (1, "day"); a clear error for anything Lakehouse Monitoring does not take."""
    match = _GRANULARITY.match(text.strip())
    if text not in GRANULARITIES or match is None:
        raise MonitorError(f"granularity {text!r} is not one of {', '.join(GRANULARITIES)}")
    return int(match.group(1)), match.group(2)


def window_starts(ts_us: np.ndarray, granularity: str) -> np.ndarray:
    """The start (microseconds since the epoch, UTC) of the window of each timestamp."""
    count, unit = parse_granularity(granularity)
    if unit == "month":
        months = ts_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        return ((months // count) * count).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    step = count * _UNIT_SECONDS[unit] * US
    anchor = WEEK_ORIGIN_US if unit == "week" else 0
    return anchor + ((ts_us - anchor) // step) * step


def shift_windows(starts_us: np.ndarray, granularity: str, by: int) -> np.ndarray:
    """Window starts moved ``by`` windows (-1: the previous window, 1: the next)."""
    count, unit = parse_granularity(granularity)
    if unit == "month":
        months = starts_us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64) + by * count
        return months.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)
    return starts_us + by * count * _UNIT_SECONDS[unit] * US


def window_codes(version: np.ndarray, start_us: np.ndarray) -> np.ndarray:
    """(model version code, window start) as one integer: the version above the start's seconds."""
    return version * WINDOW_CODE_VERSION + start_us // US


@dataclass(frozen=True, order=True)
class WindowKey:
    """One window of one model version at one granularity."""

    granularity: str
    model_version: str
    start: datetime

    @classmethod
    def at(cls, granularity: str, model_version: str, start_us: int) -> WindowKey:
        return cls(granularity, model_version, _EPOCH + timedelta(microseconds=int(start_us)))

    @property
    def start_us(self) -> int:
        """The start in microseconds since the epoch (exact: no float on the way)."""
        return (self.start - _EPOCH) // timedelta(microseconds=1)

    def shifted(self, by: int) -> WindowKey:
        """The same model version's window ``by`` windows later (earlier when negative)."""
        moved = shift_windows(np.asarray([self.start_us], dtype=np.int64), self.granularity, by)
        return WindowKey.at(self.granularity, self.model_version, int(moved[0]))
