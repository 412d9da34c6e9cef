"""The names the jobs, the model, the serving payloads, the monitors and the stacks agree on: columns of the examples,
of the model's input and of the predictions (with their SQL types). Plain constants, no Spark: the model, the gateway,
the stacks and the runtime-compatibility check import them freely. One module, so no test has to keep two equal.
"""

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

# Predictions (the batch and streaming inference jobs): the flight key, the score and where it came from.
PREDICTION = "prediction"
PROBABILITY = "probability"
PREDICTION_METADATA = ("model_name", "model_version", "model_alias", "scored_at", "batch_id", "source")
# Set by the labels job once the flight has arrived (null until then, and for flights that never arrive).
LABEL_COLUMNS = (LABEL, "arr_delay", "labeled_at")
# The model's inputs ride along (what the quality monitor profiles); carrier, origin and dest are in the key.
SCORED_FEATURES = tuple(c for c in FEATURE_COLUMNS if c not in FLIGHT_KEY)
PREDICTION_COLUMNS = (
    *FLIGHT_KEY,
    SCHEDULED_DEPARTURE,
    *SCORED_FEATURES,
    PREDICTION,
    PROBABILITY,
    *PREDICTION_METADATA,
    *LABEL_COLUMNS,
)
# Flights that could not be scored: the key, what was wrong, and the batch that met them.
REJECT_REASON = "reason"
REJECT_COLUMNS = (*FLIGHT_KEY, REJECT_REASON, "batch_id", "source", "rejected_at")

# What a landed flight file carries (the streaming job's source): the schedule only, nothing measured after
# departure, so nothing can leak into a streamed prediction. Spark reads the files with this schema.
SCHEDULE_COLUMNS = (
    "year", "month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time",
    "carrier", "flight", "tailnum", "origin", "dest", "distance", "time_hour",
)  # fmt: skip
LANDING_SCHEMA = (
    "year long, month long, day long, hour long, minute long, sched_dep_time long, sched_arr_time long, "
    "carrier string, flight long, tailnum string, origin string, dest string, distance double, time_hour timestamp"
)

# The predictions' SQL types: the stack declares the monitored tables (predictions, served requests) and their
# baseline with them (spec.monitoring.MONITORED_TABLE_COLUMNS); the jobs write Spark values of these types.
_SQL_TYPES = {
    "sched_date": "DATE",
    "flight": "BIGINT",
    "time_hour": "TIMESTAMP",
    SCHEDULED_DEPARTURE: "TIMESTAMP",
    PREDICTION: "INT",
    PROBABILITY: "DOUBLE",
    "scored_at": "TIMESTAMP",
    LABEL: "INT",
    "arr_delay": "DOUBLE",
    "labeled_at": "TIMESTAMP",
    **{name: "STRING" for name in (*CATEGORICAL_FEATURES, *PREDICTION_METADATA) if name != "scored_at"},
    **{name: "DOUBLE" for name in NUMERIC_FEATURES},
}
PREDICTION_COLUMN_TYPES = tuple((name, _SQL_TYPES[name]) for name in PREDICTION_COLUMNS)
