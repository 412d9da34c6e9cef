"""The airport-delay model's error: bad input to its data code (a window backwards, rows that lack a column)."""

from __future__ import annotations

from spec.errors import MlopsError


class AirportDelayDataError(MlopsError):
    """The data handed to the airport-delay model cannot give its rows; the message says what is wrong."""
