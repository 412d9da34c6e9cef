"""A regression model's declaration built in the tests (no package under models/): the monitors, the alerts and the
stack's monitor are checked against it, beside the flight-delay classifier. Its rows are rides of a bike-share
scheme: the label is the ride's duration in minutes, known the day after."""

from __future__ import annotations

from spec.model import Column, Feature, ModelSpec, ValidationSpec

REGRESSOR = ModelSpec(
    name="ride_minutes",
    problem_type="regression",
    description="the minutes a ride takes",
    sources=("rides",),
    key=(
        Column(name="ride_date", type="DATE"),
        Column(name="station", type="STRING"),
        Column(name="ride_id", type="BIGINT"),
    ),
    event_date="ride_date",
    event_time="started_at",
    features=(
        Feature(name="station", kind="categorical"),
        Feature(name="bike_type", kind="categorical"),
        Feature(name="distance_km", kind="numeric"),
        Feature(name="hour", kind="numeric"),
        Feature(name="temperature", kind="numeric", optional=True),
    ),
    label_details=(Column(name="ended_at", type="TIMESTAMP"),),
    label_delay_days=1,
    validation=ValidationSpec(primary_metric="mean_absolute_error", thresholds={"mean_absolute_error": 8.0}),
    monitored_features=("station", "distance_km", "hour", "temperature"),
    drift_features=("distance_km", "temperature", "prediction"),
    slicing_exprs=("station",),
    online_key=("ride_date", "station", "ride_id"),
    request_example={"station": "S1", "bike_type": "electric", "distance_km": 2.5, "hour": 8.0, "temperature": 12.0},
)
