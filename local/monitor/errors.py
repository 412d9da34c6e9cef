"""The monitor's one error: a refresh it cannot do, with what to run first."""

from __future__ import annotations

from spec.errors import MlopsError


class MonitorError(MlopsError):
    """The monitor cannot refresh; the message names the table and what to run first."""
