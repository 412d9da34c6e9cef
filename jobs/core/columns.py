"""The names the jobs, the model and the serving payloads agree on: columns of the examples and of the model's
input. Plain constants, no Spark: the model, the gateway and the runtime-compatibility check import them freely."""

from __future__ import annotations

# Flights -> examples (jobs.core.data).
LABEL = "label"
ARRIVAL_DELAY_THRESHOLD_MINUTES = 15
SCHEDULED_DATE = "sched_date"
# Scheduled departure hour (UTC timestamp, on the hour): part of the flight key.
DEPARTURE_HOUR = "time_hour"
# Exact scheduled departure (UTC timestamp, to the minute): the time of the point-in-time join with hourly weather.
SCHEDULED_DEPARTURE = "sched_departure"
# Columns that identify a flight: the key of predictions, labels and deterministic samples; never features.
FLIGHT_KEY = ("sched_date", "carrier", "flight", "origin", "dest", "time_hour")

# Weather features (jobs.core.features).
WEATHER_KEY = ("origin", "time_hour")
WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
FEATURE_TIME = "feature_time_hour"

# The model's input (jobs.core.model): what is known at scheduled departure.
CATEGORICAL_FEATURES = ("carrier", "origin", "dest")
NUMERIC_FEATURES = ("distance", "sched_hour", "month", "day_of_week", *WEATHER_FEATURES)
FEATURE_COLUMNS = (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)
