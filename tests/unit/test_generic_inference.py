"""The scoring side read from a model's declaration, not from the flight model: a small regression model built here
(a key of a date, an integer, a string and an instant; no probability) goes through the request ids, the reject
reasons, the scored schema, the predictions' rows and the online store's items, and the flight model's formats stay
what they were."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from jobs.core.requests import key_id, parse_key_id
from jobs.platform.online_store import online_key, row_fields, to_item
from jobs.scoring import prediction_rows, reject_rows, scored_schema, split
from models.flight_delay.spec import SPEC as FLIGHTS
from spec.model import Column, Feature, ModelSpec, ValidationSpec

SALES = ModelSpec(
    name="store_sales",
    problem_type="regression",
    description="units a store sells in an hour",
    sources=("sales",),
    key=(
        Column(name="day", type="DATE"),
        Column(name="store", type="INT"),
        Column(name="region", type="STRING"),
        Column(name="opened", type="TIMESTAMP"),
    ),
    key_name="sale_key",
    event_date="day",
    event_time="hour_start",
    features=(
        Feature(name="region", kind="categorical"),
        Feature(name="promo", kind="categorical"),
        Feature(name="price", kind="numeric"),
        Feature(name="temperature", kind="numeric", optional=True),
    ),
    label_details=(Column(name="units", type="DOUBLE"),),
    label_delay_days=3,
    validation=ValidationSpec(primary_metric="mean_absolute_error", thresholds={"mean_absolute_error": 5.0}),
    drift_features=("price", "prediction"),
    online_key=("store", "day"),
    request_example={"region": "north", "promo": "none", "price": 2.5},
)
KEY = {"day": date(2024, 5, 1), "store": 12, "region": "north", "opened": datetime(2024, 5, 1, 9, 30)}
# 2024-05-01T09:30Z, 2024-05-01T10:00Z and 2024-05-02T08:00Z as epoch milliseconds.
OPENED_MS, HOUR_MS, SCORED_MS = 1714555800000, 1714557600000, 1714636800000


# ---- request ids ---------------------------------------------------------------------------------------------------


def test_the_flight_models_request_id_is_byte_identical_and_reads_back_typed():
    flight = {
        "sched_date": date(2013, 3, 4),
        "carrier": "UA",
        "flight": 1545,
        "origin": "EWR",
        "dest": "ORD",
        "time_hour": datetime(2013, 3, 4, 15),
    }
    assert key_id(FLIGHTS, flight) == "2013-03-04#UA#1545#EWR#ORD#2013-03-04T15:00Z"
    assert parse_key_id(FLIGHTS, "2013-03-04#UA#1545#EWR#ORD#2013-03-04T15:00Z") == flight


def test_a_request_id_encodes_the_key_parts_in_order_by_their_types_and_reads_back_typed():
    text = key_id(SALES, KEY)
    assert text == "2024-05-01#12#north#2024-05-01T09:30Z"
    parsed = parse_key_id(SALES, text)
    assert parsed == KEY
    assert [type(parsed[c]) for c in SALES.key_names] == [date, int, str, datetime]


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "2024-05-01#12#north",  # a part short
        "2024-05-01#12#north#2024-05-01T09:30Z#x",  # a part too many
        "2024-05-01#twelve#north#2024-05-01T09:30Z",  # not an integer
        "2024-02-30#12#north#2024-05-01T09:30Z",  # no such day
        "2024-05-01#12##2024-05-01T09:30Z",  # an empty string part
        "2024-05-01#12#north#2024-05-01 09:30",  # not an instant to the minute
    ],
)
def test_a_text_that_is_not_one_of_the_models_keys_reads_as_none(text):
    assert parse_key_id(SALES, text) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"region": "no#rth"}, "key part 'region' must be a non-empty string without '#', got 'no#rth'"),
        ({"store": None}, "key part 'store' is missing: a request about a row names every part of its key"),
    ],
)
def test_a_key_that_cannot_be_a_request_id_is_a_value_error_naming_the_part(overrides, message):
    with pytest.raises(ValueError) as error:
        key_id(SALES, {**KEY, **overrides})
    assert str(error.value) == message


# ---- the online store's items ---------------------------------------------------------------------------------------


def sales_row(**overrides) -> dict:
    values = {
        "day": date(2024, 5, 1),
        "store": 12,
        "region": "north",
        "opened_ms": OPENED_MS,
        "hour_start_ms": HOUR_MS,
        "prediction": 41.25,
        "model_name": "dev.ml.store_sales",
        "model_version": "2",
        "model_alias": "champion",
        "scored_at_ms": SCORED_MS,
        "batch_id": "batch-2024-05-01-2024-05-01",
        "source": "batch",
    }
    values.update(overrides)
    return values


def test_a_regressors_row_fields_are_its_key_event_time_prediction_and_metadata():
    assert list(sales_row()) == list(row_fields(SALES))


def test_a_regressors_item_is_keyed_by_its_online_key_typed_and_has_no_probability():
    assert to_item(SALES, sales_row()) == {
        "sale_key": "12#2024-05-01",
        "day": "2024-05-01",
        "store": 12,
        "region": "north",
        "opened": "2024-05-01T09:30:00.000Z",
        "hour_start": "2024-05-01T10:00:00.000Z",
        "prediction": Decimal("41.25"),
        "model_name": "dev.ml.store_sales",
        "model_version": "2",
        "model_alias": "champion",
        "scored_at_ms": SCORED_MS,
        "scored_at": "2024-05-02T08:00:00.000Z",
        "batch_id": "batch-2024-05-01-2024-05-01",
        "source": "batch",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prediction": None}, "prediction row (store=12, day=datetime.date(2024, 5, 1)) has no value for prediction"),
        ({"prediction": float("inf")}, "prediction must be a finite number, got inf"),
        ({"store": -3}, "sale key part 'store' must be a non-negative integer, got -3"),
        ({"day": "2024-05-01"}, "sale key part 'day' must be a date, got '2024-05-01'"),
    ],
)
def test_an_invalid_regressor_row_is_a_value_error_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as error:
        to_item(SALES, sales_row(**overrides))
    assert str(error.value) == message


def test_an_online_key_joins_the_declared_parts_in_their_order():
    assert online_key(SALES, sales_row()) == "12#2024-05-01"
    assert online_key(FLIGHTS, {"sched_date": date(2013, 3, 4), "carrier": "UA", "flight": 1, "origin": "JFK"}) == (
        "2013-03-04#UA#1#JFK"
    )


# ---- scoring ---------------------------------------------------------------------------------------------------------


def test_the_scored_schema_has_the_declared_types_a_regressor_a_double_prediction_and_no_probability():
    assert scored_schema(SALES) == (
        "day date, store int, region string, opened timestamp, hour_start timestamp, promo string, price double, "
        "temperature double, prediction double"
    )
    # The flight model's, as the scoring job declared it before the interface.
    assert scored_schema(FLIGHTS) == (
        "sched_date date, carrier string, flight long, origin string, dest string, time_hour timestamp, "
        "sched_departure timestamp, distance double, sched_hour double, month double, day_of_week double, "
        "temp double, dewp double, humid double, wind_speed double, precip double, pressure double, visib double, "
        "prediction int, probability double"
    )


CANDIDATES = (
    "day date, store int, region string, opened timestamp, hour_start timestamp, promo string, price double, "
    "temperature double"
)


def candidate(**overrides) -> tuple:
    values = {
        "day": date(2024, 5, 1),
        "store": 12,
        "region": "north",
        "opened": datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        "hour_start": datetime(2024, 5, 1, 10, tzinfo=UTC),
        "promo": "none",
        "price": 2.5,
        "temperature": None,  # optional: scored without it
    }
    values.update(overrides)
    return tuple(values.values())


def test_rows_missing_a_key_part_or_a_required_feature_are_rejected_with_the_platforms_and_the_models_reasons(spark):
    from pyspark.sql import functions as F

    rows = spark.createDataFrame(
        [
            candidate(store=1),
            candidate(store=2, region=None),
            candidate(store=3, promo=" "),
            candidate(store=4, price=None),
            candidate(store=5, price=-1.0),
            candidate(store=6, price=float("nan"), promo=None),
        ],
        CANDIDATES,
    )
    checks = [(F.col("price") < 0, "price negative"), (F.col("store") > 100, "store unknown")]

    valid, rejected = split(rows, SALES, checks)

    assert [r["store"] for r in valid.collect()] == [1]
    assert {r["store"]: r["reason"] for r in rejected.collect()} == {
        2: "sale key incomplete; region missing",
        3: "promo missing",
        4: "price missing",
        5: "price negative",
        6: "promo missing; price missing",
    }


def test_a_models_check_that_rejects_a_row_says_why_instead_of_the_platforms_missing_number(spark):
    from pyspark.sql import functions as F

    rows = spark.createDataFrame([candidate(price=None)], CANDIDATES)
    checks = [(F.col("price").isNull() | (F.col("price") <= 0), "price missing or not positive")]

    _, rejected = split(rows, SALES, checks)

    assert [r["reason"] for r in rejected.collect()] == ["price missing or not positive"]


def test_a_regressors_prediction_and_reject_rows_have_the_declared_columns_and_types(spark):
    from jobs.platform.registry import ModelRef

    at = datetime(2024, 5, 2, 8, tzinfo=UTC)
    scored = spark.createDataFrame([(*candidate(), 41.25)], scored_schema(SALES))
    predictions = prediction_rows(
        scored, SALES, ModelRef("dev.ml.store_sales", "2"), batch_id="b", source="batch", at=at
    )
    rejected = spark.createDataFrame([(*candidate(), "price missing")], f"{CANDIDATES}, reason string")
    rejects = reject_rows(rejected, SALES, batch_id="b", source="batch", at=at)

    spark_types = {"date": "DATE", "int": "INT", "string": "STRING", "timestamp": "TIMESTAMP", "double": "DOUBLE"}
    assert [(f.name, spark_types[f.dataType.simpleString()]) for f in predictions.schema] == list(
        SALES.prediction_column_types
    )
    row = predictions.first()
    assert (row["prediction"], row["label"], row["units"], row["labeled_at"], row["model_version"]) == (
        41.25,
        None,
        None,
        None,
        "2",
    )
    assert "probability" not in predictions.columns
    assert rejects.columns == list(SALES.reject_columns)
    assert [r["reason"] for r in rejects.collect()] == ["price missing"]


def test_a_key_of_one_part_is_checked_too_and_the_default_key_name_says_row_key(spark):
    declared = SALES.model_dump()
    declared.pop("key_name")
    one_part = ModelSpec.model_validate(
        {**declared, "key": [{"name": "day", "type": "DATE"}], "online_key": ["day"], "event_time": "opened"}
    )
    rows = spark.createDataFrame(
        [(None, datetime(2024, 5, 1, 9, tzinfo=UTC), "north", "none", 2.5, None)],
        "day date, opened timestamp, region string, promo string, price double, temperature double",
    )

    _, rejected = split(rows, one_part, [])

    assert (one_part.key_name, [r["reason"] for r in rejected.collect()]) == ("row_key", ["row key incomplete"])


# ---- labels ----------------------------------------------------------------------------------------------------------


def served(request: dict, response: dict) -> SimpleNamespace:
    """An inference table row, as the labels job reads it."""
    return SimpleNamespace(request=json.dumps(request), response=json.dumps(response))


def test_a_regressors_served_answers_are_numbers_and_a_classifiers_are_classes():
    from jobs.labels import unpack_request

    records = [{"region": "north", "promo": "none", "price": 2.5}, {"region": "south", "promo": "x", "price": 1.0}]
    request = served({"dataframe_records": records}, {"predictions": [41.25, 7]})

    assert unpack_request(request, SALES) == (records, [41.25, 7.0])
    assert unpack_request(request, FLIGHTS)[1] == [41, 7]  # int() of a class, as the flight model's labels job did
    with pytest.raises(ValueError) as error:
        unpack_request(served({"dataframe_records": records[:1]}, {"predictions": ["many"]}), SALES)
    assert str(error.value) == "cannot be unpacked: ValueError: could not convert string to float: 'many'"


def test_labels_are_looked_up_from_the_day_they_are_due_for_the_same_number_of_days():
    from jobs.labels import default_lookback_days

    # The flight model's label is known the next day: 14 days of lookback, as before the interface.
    assert (default_lookback_days(FLIGHTS), default_lookback_days(SALES)) == (14, 16)


def test_a_served_answer_is_about_the_records_event_time_else_the_keys_instant_else_the_request_time():
    import pandas as pd

    from jobs.labels import served_event_time

    opened, hour, asked = (pd.Timestamp(f"2024-05-01T{h}:00Z") for h in ("09", "10", "11"))
    frame = pd.DataFrame({"opened": [opened], "scored_at": [asked]})
    assert served_event_time(SALES, frame).tolist() == [opened]  # the key's TIMESTAMP part
    assert served_event_time(SALES, frame.assign(hour_start=[hour])).tolist() == [hour]  # sent by the client
    no_instant = ModelSpec.model_validate(
        {**SALES.model_dump(), "key": [{"name": "day", "type": "DATE"}], "online_key": ["day"]}
    )
    assert served_event_time(no_instant, frame).tolist() == [asked]


def test_when_both_of_the_labels_jobs_threads_fail_the_second_failure_is_logged_not_lost(monkeypatch, caplog):
    import logging

    from jobs import labels

    platform = SimpleNamespace(env=SimpleNamespace(predictions_table="p", served_table="s"))

    def unpack_fails(platform, now):
        raise RuntimeError("the inference table cannot be read")

    def labels_fail(platform, table, as_of, now, lookback_days):
        raise RuntimeError(f"cannot label {table}")

    monkeypatch.setattr(labels, "unpack_served", unpack_fails)
    monkeypatch.setattr(labels, "apply_labels", labels_fail)
    with caplog.at_level(logging.ERROR, logger="jobs.labels"), pytest.raises(RuntimeError, match="cannot label p"):
        labels.label(platform, as_of=date(2013, 3, 9))
    assert "the served requests' chain failed too: the inference table cannot be read" in caplog.text
