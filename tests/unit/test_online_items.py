"""The online store's contract without a server: the item layout, the write plan, the client's retry config, the
publish window and the local store's configuration error."""

from __future__ import annotations

import sys
import types
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from jobs import publish
from jobs.platform.online_store import (
    KEY_PLACEHOLDER,
    NEWER_CONDITION,
    OnlineStoreError,
    WriteCounts,
    check_distinct_keys,
    chunked,
    client_config,
    databricks_online_store,
    iso_millis,
    online_key,
    plan,
    probability_number,
    row_fields,
)
from jobs.platform.online_store import to_item as spec_to_item
from local.dynalite import local_online_store
from models.flight_delay.spec import SPEC
from spec.config import ENVIRONMENTS


def to_item(row: dict) -> dict:
    """The flight model's item of ``row``."""
    return spec_to_item(SPEC, row)


def flight_key(*parts) -> str:
    return online_key(SPEC, dict(zip(SPEC.online_key, parts, strict=True)))


# 2024-05-01T10:00:00Z and 2013-03-04T15:00:00Z as epoch milliseconds.
SCORED_AT_MS = 1714557600000
TIME_HOUR_MS = 1362409200000


def row(**overrides) -> dict:
    values = {
        "sched_date": date(2013, 3, 4),
        "carrier": "UA",
        "flight": 1545,
        "origin": "EWR",
        "dest": "IAH",
        "time_hour_ms": TIME_HOUR_MS,
        "sched_departure_ms": TIME_HOUR_MS + 15 * 60_000,
        "prediction": 1,
        "probability": 0.73,
        "model_name": "dev.ml.flight_delay",
        "model_version": "3",
        "model_alias": "champion",
        "scored_at_ms": SCORED_AT_MS,
        "batch_id": "batch-2024-05-01",
        "source": "batch",
    }
    values.update(overrides)
    return values


def test_the_row_fields_are_what_to_item_reads():
    assert list(row()) == list(row_fields(SPEC))


def test_a_flight_key_is_date_carrier_flight_origin():
    assert flight_key(date(2013, 3, 4), "UA", 1545, "EWR") == "2013-03-04#UA#1545#EWR"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (
            (date(2013, 3, 4), "U#A", 1545, "EWR"),
            "flight key part 'carrier' must be a non-empty string without '#', got 'U#A'",
        ),
        ((date(2013, 3, 4), "UA", 1545, ""), "flight key part 'origin' must be a non-empty string without '#', got ''"),
        (("2013-03-04", "UA", 1545, "EWR"), "flight key part 'sched_date' must be a date, got '2013-03-04'"),
        (
            (date(2013, 3, 4), "UA", -1, "EWR"),
            "flight key part 'flight' must be a non-negative integer, got -1",
        ),
    ],
)
def test_a_flight_key_with_a_bad_part_is_a_value_error_naming_it(parts, message):
    with pytest.raises(ValueError) as error:
        flight_key(*parts)
    assert str(error.value) == message


def test_an_item_has_the_documented_layout():
    assert to_item(row()) == {
        "flight_key": "2013-03-04#UA#1545#EWR",
        "sched_date": "2013-03-04",
        "carrier": "UA",
        "flight": 1545,
        "origin": "EWR",
        "dest": "IAH",
        "time_hour": "2013-03-04T15:00:00.000Z",
        "sched_departure": "2013-03-04T15:15:00.000Z",
        "prediction": 1,
        "probability": Decimal("0.73"),
        "model_name": "dev.ml.flight_delay",
        "model_version": "3",
        "model_alias": "champion",
        "scored_at_ms": 1714557600000,
        "scored_at": "2024-05-01T10:00:00.000Z",
        "batch_id": "batch-2024-05-01",
        "source": "batch",
    }


def test_optional_attributes_without_a_value_are_left_out():
    item = to_item(row(model_alias=None, sched_departure_ms=None, batch_id="", source=None))
    assert sorted(item) == [
        "carrier",
        "dest",
        "flight",
        "flight_key",
        "model_name",
        "model_version",
        "origin",
        "prediction",
        "probability",
        "sched_date",
        "scored_at",
        "scored_at_ms",
        "time_hour",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"probability": None, "scored_at_ms": None},
            "prediction row (sched_date=datetime.date(2013, 3, 4), carrier='UA', flight=1545, origin='EWR') has no "
            "value for probability, scored_at_ms",
        ),
        (
            {"prediction": 2},
            "prediction row (sched_date=datetime.date(2013, 3, 4), carrier='UA', flight=1545, origin='EWR'): "
            "prediction must be 0 or 1, got 2",
        ),
        ({"probability": float("nan")}, "probability must be a finite number, got nan"),
        ({"probability": 1.5}, "probability must be between 0 and 1, got 1.5"),
    ],
)
def test_an_invalid_row_is_a_value_error_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as error:
        to_item(row(**overrides))
    assert str(error.value) == message


def test_probabilities_are_the_shortest_decimal_of_the_double():
    assert [probability_number(p) for p in (0.1, 1 / 3, 0.0, 1.0)] == [
        Decimal("0.1"),
        Decimal("0.3333333333333333"),
        Decimal("0.0"),
        Decimal("1.0"),
    ]


def test_instants_are_iso_utc_to_the_millisecond():
    assert [iso_millis(ms) for ms in (0, 1714557600123, -1)] == [
        "1970-01-01T00:00:00.000Z",
        "2024-05-01T10:00:00.123Z",
        "1969-12-31T23:59:59.999Z",
    ]


@pytest.mark.parametrize(
    ("stored", "action"), [(None, "insert"), (999, "replace"), (1000, "unchanged"), (1001, "kept_newer")]
)
def test_the_write_plan_never_replaces_an_item_at_least_as_new(stored, action):
    assert plan(1000, stored) == action


def test_the_conditional_put_only_replaces_an_older_item():
    # The partition key attribute by placeholder (the model names it: a DynamoDB reserved word is allowed).
    assert (NEWER_CONDITION, KEY_PLACEHOLDER) == ("attribute_not_exists(#key) OR scored_at_ms < :new", "#key")


def test_items_go_in_chunks_of_at_most_100_distinct_keys():
    items = [{"flight_key": f"k{i}"} for i in range(250)]
    assert [len(chunk) for chunk in chunked(items)] == [100, 100, 50]
    assert check_distinct_keys(items[:3], "flight_key") == ["k0", "k1", "k2"]
    with pytest.raises(ValueError) as error:
        check_distinct_keys([{"flight_key": "a"}, {"flight_key": "b"}, {"flight_key": "a"}], "flight_key")
    assert str(error.value) == "items share the flight keys ['a']: publish one item (the latest) per key"


def test_write_counts_add_up():
    total = WriteCounts(inserted=2, replaced=1, kept_newer=3) + WriteCounts(replaced=1, unchanged=4)
    assert (total, total.written) == (WriteCounts(inserted=2, replaced=2, kept_newer=3, unchanged=4), 4)


@pytest.mark.parametrize("env", list(ENVIRONMENTS.values()), ids=list(ENVIRONMENTS))
def test_the_client_retries_as_configured(env):
    config = client_config(env.online_store)
    assert (config.retries, config.region_name, config.connect_timeout, config.read_timeout) == (
        {"mode": "adaptive", "total_max_attempts": 8},
        "us-east-1",
        5,
        30,
    )


def test_the_publish_window_starts_a_lookback_before_the_watermark():
    watermark = datetime(2024, 5, 1, 10, tzinfo=UTC)
    lookback = timedelta(minutes=120)
    assert publish.window_start(watermark, lookback, full=False) == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert publish.window_start(watermark, lookback, full=True) is None
    assert publish.window_start(None, lookback, full=False) is None


def test_micros_round_trip_in_utc():
    instant = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert publish.to_micros(instant) == 1714557600123456
    assert publish.from_micros(1714557600123456) == instant


def test_the_publish_arguments_default_to_an_incremental_run_with_two_hours_of_lookback():
    args = publish.parse_args(["--env", "prod"])
    assert (args.env, args.full, args.lookback_minutes) == ("prod", False, 120)
    with pytest.raises(SystemExit):
        publish.parse_args(["--env", "prod", "--lookback-minutes", "-5"])


def test_the_local_store_without_an_endpoint_says_how_to_start_one():
    with pytest.raises(OnlineStoreError) as error:
        local_online_store(ENVIRONMENTS["dev"], environ={})
    assert str(error.value) == (
        "MLOPS_DYNAMODB_ENDPOINT is not set: start the local DynamoDB with `mlops dynamodb` and export the variable "
        "it prints, or run `mlops publish --env dev`, which starts one for its duration"
    )


def test_the_local_store_creates_the_environments_table_at_the_given_endpoint():
    store = local_online_store(ENVIRONMENTS["prod"], environ={"MLOPS_DYNAMODB_ENDPOINT": "http://127.0.0.1:1"})
    assert (store.table_name, store.where, store.settings.create_table, store.client.meta.endpoint_url) == (
        "prod-flight-delay-predictions",
        "http://127.0.0.1:1",
        True,
        "http://127.0.0.1:1",
    )


class FakeSecrets:
    """``dbutils.secrets`` of a Databricks compute: the values of one scope, and what was asked."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: list[tuple[str, str]] = []

    def get(self, scope: str, key: str) -> str:
        self.asked.append((scope, key))
        if key not in self.values:
            raise RuntimeError(f"Secret does not exist with scope: {scope} and key: {key}")
        return self.values[key]


def fake_dbutils(monkeypatch, secrets: FakeSecrets) -> None:
    runtime = types.ModuleType("databricks.sdk.runtime")
    runtime.dbutils = types.SimpleNamespace(secrets=secrets)
    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", runtime)


def test_on_databricks_the_access_key_comes_from_the_environments_secret_scope(monkeypatch):
    secrets = FakeSecrets({"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "not-in-code"})
    fake_dbutils(monkeypatch, secrets)
    store = databricks_online_store(ENVIRONMENTS["prod"])()
    credentials = store.client._get_credentials()
    assert secrets.asked == [
        ("mlops-online-store", "aws_access_key_id"),
        ("mlops-online-store", "aws_secret_access_key"),
    ]
    assert (credentials.access_key, credentials.secret_key) == ("AKIDEXAMPLE", "not-in-code")
    assert (store.table_name, store.where, store.client.meta.endpoint_url, store.client.meta.config.retries) == (
        "prod-flight-delay-predictions",
        "AWS region us-east-1",
        "https://dynamodb.us-east-1.amazonaws.com",
        {"mode": "adaptive", "total_max_attempts": 8},
    )


def test_on_databricks_a_missing_secret_says_where_to_put_it(monkeypatch):
    fake_dbutils(monkeypatch, FakeSecrets({"aws_access_key_id": "AKIDEXAMPLE"}))
    with pytest.raises(OnlineStoreError) as error:
        databricks_online_store(ENVIRONMENTS["staging"])()
    assert str(error.value) == (
        "cannot read the secret 'aws_secret_access_key' of the secret scope 'mlops-online-store' (Secret does not "
        "exist with scope: mlops-online-store and key: aws_secret_access_key): put the online store's AWS access key "
        "there (databricks secrets put-secret mlops-online-store aws_secret_access_key) and grant the job's principal "
        "READ on the scope"
    )
