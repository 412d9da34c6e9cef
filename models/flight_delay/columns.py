"""The flight-delay model's own column names, beside its declaration (spec.py): what its data code builds."""

from __future__ import annotations

from models.flight_delay.spec import SPEC, WEATHER_FEATURES

ARRIVAL_DELAY_THRESHOLD_MINUTES = 15
SCHEDULED_DATE = "sched_date"
# Scheduled departure hour (UTC timestamp, on the hour): part of the flight key.
DEPARTURE_HOUR = "time_hour"
# Exact scheduled departure (UTC timestamp, to the minute): the time of the point-in-time join with hourly weather.
SCHEDULED_DEPARTURE = SPEC.event_time
FLIGHT_KEY = SPEC.key_names
ARRIVAL_DELAY = "arr_delay"

# Weather features (features.py).
WEATHER_KEY = ("origin", "time_hour")
FEATURE_TIME = "feature_time_hour"
CATEGORICAL_FEATURES = SPEC.categorical_features
NUMERIC_FEATURES = SPEC.numeric_features
FEATURE_COLUMNS = SPEC.feature_names

# What a landed flight file carries (the streaming job's source): the schedule only, nothing measured after
# departure, so nothing can leak into a streamed prediction.
SCHEDULE_COLUMNS = tuple(c.name for c in SPEC.landing_columns)

__all__ = [
    "ARRIVAL_DELAY",
    "ARRIVAL_DELAY_THRESHOLD_MINUTES",
    "CATEGORICAL_FEATURES",
    "DEPARTURE_HOUR",
    "FEATURE_COLUMNS",
    "FEATURE_TIME",
    "FLIGHT_KEY",
    "NUMERIC_FEATURES",
    "SCHEDULED_DATE",
    "SCHEDULED_DEPARTURE",
    "SCHEDULE_COLUMNS",
    "WEATHER_FEATURES",
    "WEATHER_KEY",
]

# The platform's tables of this model, as the declaration derives them.
SCORED_FEATURES = SPEC.scored_features
LABEL_COLUMNS = SPEC.label_columns
PREDICTION_COLUMNS = SPEC.prediction_columns
PREDICTION_COLUMN_TYPES = SPEC.prediction_column_types
REJECT_COLUMNS = SPEC.reject_columns
LANDING_SCHEMA = SPEC.landing_schema
__all__ += [
    "LABEL_COLUMNS",
    "LANDING_SCHEMA",
    "PREDICTION_COLUMNS",
    "PREDICTION_COLUMN_TYPES",
    "REJECT_COLUMNS",
    "SCORED_FEATURES",
]
