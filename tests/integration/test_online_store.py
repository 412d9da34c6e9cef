"""Publishing to the online store end to end: predictions written to the local Delta table, the publish job on local
Spark, the items in dynalite (a real DynamoDB server, started once for the module, in memory, stopped after).

Each test works in an environment of its own (a copy of dev with its own catalog and DynamoDB table), except the
ones that go through `mlops-publish --env dev` and the CLI: the first test publishes dev's predictions, and the
later dev tests (unreachable store, no endpoint, the CLI) start from there, in file order.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from cli.main import main as mlops
from jobs import publish
from jobs.platform import Platform, build_platform
from jobs.platform.job import JobError
from jobs.platform.online_store import DynamoDBOnlineStore, OnlineStoreError, WriteCounts, to_item
from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite, DynaliteError, local_online_store, local_store_at
from spec.config import ENVIRONMENTS, Environment

pytestmark = pytest.mark.integration

DEV = ENVIRONMENTS["dev"]
T1 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
FIXED_NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MILLIS = {
    T1: 1714557600000,
    T1 + timedelta(hours=1): 1714561200000,
    T2: 1714644000000,
    T2 + timedelta(hours=1): 1714647600000,
}


@pytest.fixture(scope="module")
def dynalite(mlops_home):
    """One in-memory dynalite for the module, its endpoint exported as the local platform expects it."""
    with Dynalite(path=None) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(DYNAMODB_ENDPOINT_ENV, server.endpoint_url)
        yield server


@pytest.fixture(scope="module")
def tables(spark, mlops_home):
    from local.spark import local_spark
    from local.tables import LocalTables

    return LocalTables(local_spark)


def isolated(name: str, **store) -> Environment:
    """dev with its own catalog (predictions table, publish log) and its own DynamoDB table."""
    settings = {"table_name": name.replace("_", "-"), **store}
    return DEV.replace(catalog=name, online_store=settings)


def prediction(flight: int, scored_at: datetime, probability: float = 0.25, **overrides) -> dict:
    hour = datetime(2013, 3, 4, 15, tzinfo=UTC)
    values = {
        "sched_date": date(2013, 3, 4),
        "carrier": "UA",
        "flight": flight,
        "origin": "EWR",
        "dest": "IAH",
        "time_hour": hour,
        "sched_departure": hour + timedelta(minutes=15),
        "prediction": int(probability >= 0.5),
        "probability": probability,
        "model_name": "dev.ml.flight_delay",
        "model_version": "1",
        "model_alias": "champion",
        "scored_at": scored_at,
        "batch_id": f"batch-{scored_at:%Y%m%d%H}" if scored_at else "batch-unknown",
        "source": "batch",
    }
    values.update(overrides)
    return values


def expected_item(flight: int, scored_at: datetime, probability: float = 0.25, **overrides) -> dict:
    """The item as DynamoDB gives it back, written out by hand (numbers come back as Decimal)."""
    item = {
        "flight_key": f"2013-03-04#UA#{flight}#EWR",
        "sched_date": "2013-03-04",
        "carrier": "UA",
        "flight": Decimal(flight),
        "origin": "EWR",
        "dest": "IAH",
        "time_hour": "2013-03-04T15:00:00.000Z",
        "sched_departure": "2013-03-04T15:15:00.000Z",
        "prediction": Decimal(int(probability >= 0.5)),
        "probability": Decimal(repr(probability)),
        "model_name": "dev.ml.flight_delay",
        "model_version": "1",
        "model_alias": "champion",
        "scored_at_ms": Decimal(MILLIS[scored_at]),
        "scored_at": scored_at.isoformat().replace("+00:00", ".000Z"),
        "batch_id": f"batch-{scored_at:%Y%m%d%H}",
        "source": "batch",
    }
    item.update(overrides)
    return item


def publish_item(flight: int, scored_at: datetime) -> dict:
    """The item the publisher makes of ``prediction(flight, scored_at)``."""
    row = prediction(flight, scored_at)
    millis = {name: int(row[name].timestamp() * 1000) for name in ("time_hour", "sched_departure", "scored_at")}
    return to_item(DEV.model, {**row, **{f"{name}_ms": value for name, value in millis.items()}})


def write_predictions(spark, tables, env: Environment, rows: list[dict]) -> int:
    from pyspark.sql.types import (
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    types = {
        "sched_date": DateType(),
        "flight": LongType(),
        "time_hour": TimestampType(),
        "sched_departure": TimestampType(),
        "prediction": IntegerType(),
        "probability": DoubleType(),
        "scored_at": TimestampType(),
    }
    columns = list(prediction(0, T1))
    schema = StructType([StructField(name, types.get(name, StringType()), True) for name in columns])
    frame = spark.createDataFrame([tuple(row[name] for name in columns) for row in rows], schema)
    return tables.write(frame, env.predictions_table, mode="append").version


def publish_log(spark, tables, env: Environment) -> list[dict]:
    """The publish log without published_at, oldest first; instants as ISO text (no time zone of this process)."""
    from pyspark.sql import functions as F

    if not tables.exists(env.publish_log_table):
        return []
    frame = tables.read(env.publish_log_table).orderBy("published_at", "predictions_version")
    instants = {name: F.date_format(name, "yyyy-MM-dd'T'HH:mm:ssXXX").alias(name) for name in ("watermark", "since")}
    columns = [instants.get(name, F.col(name)) for name in frame.columns if name != "published_at"]
    return [row.asDict() for row in frame.select(*columns).collect()]


def log_row(watermark: str, since: str | None, rows_read: int, items: int, written: int, **rest) -> dict:
    values = {
        "watermark": watermark,
        "since": since,
        "full": False,
        "rows_read": rows_read,
        "items": items,
        "items_written": written,
        "items_kept_newer": 0,
        "items_unchanged": 0,
    }
    values.update(rest)
    return values


def platform_with(env: Environment, store: Callable[[], DynamoDBOnlineStore] | None = None) -> Platform:
    platform = build_platform(env)
    return platform if store is None else replace(platform, online_store=store)


def run(env: Environment, **kwargs) -> tuple[publish.PublishResult, dict]:
    platform = platform_with(env)
    result = publish.publish(platform, clock=lambda: FIXED_NOW, **kwargs)
    return result, platform.task_values.values


def scan(store: DynamoDBOnlineStore) -> list[dict]:
    pages = store.client.get_paginator("scan").paginate(TableName=store.table_name)
    return sorted((item for page in pages for item in page["Items"]), key=lambda item: item["flight_key"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mlops_publish_writes_the_latest_prediction_per_flight(spark, tables, dynalite, mlops_home):
    # Given flight 1545 scored twice, 1546 once, 1547 twice at the same instant (batch b wins the tie)
    rows = [
        prediction(1545, T1, 0.2),
        prediction(1545, T1 + timedelta(hours=1), 0.8),
        prediction(1546, T1, 0.4),
        prediction(1547, T1, 0.3, batch_id="a"),
        prediction(1547, T1, 0.6, batch_id="b"),
    ]
    version = write_predictions(spark, tables, DEV, rows)
    values_dir = mlops_home / "task_values"
    # When
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_TASK_VALUES_DIR", str(values_dir))
        patch.setenv("MLOPS_TASK_KEY", "publish")
        code = publish.main(["--env", "dev"])
    # Then
    store = local_online_store(DEV)
    assert code == 0
    assert json.loads((values_dir / "publish.json").read_text()) == {
        "published_items": 3,
        "kept_newer": 0,
        "unchanged": 0,
        "watermark": "2024-05-01T11:00:00+00:00",
    }
    assert store.count() == 3
    assert [store.get(f"2013-03-04#UA#{flight}#EWR") for flight in (1545, 1546, 1547)] == [
        expected_item(1545, T1 + timedelta(hours=1), 0.8),
        expected_item(1546, T1, 0.4),
        expected_item(1547, T1, 0.6, batch_id="b"),
    ]
    assert store.get("2013-03-04#UA#9999#EWR") is None
    assert publish_log(spark, tables, DEV) == [
        log_row("2024-05-01T11:00:00Z", None, 5, 3, 3, predictions_version=version, online_table=store.table_name)
    ]


def test_an_older_prediction_never_replaces_a_newer_one_and_a_newer_one_does(dynalite):
    env = isolated("online_order")
    store = local_online_store(env)
    store.ensure_table()
    newer, older, newest = (publish_item(1545, when) for when in (T2, T1, T2 + timedelta(hours=1)))

    key = "2013-03-04#UA#1545#EWR"

    assert store.put_latest([newer]) == WriteCounts(inserted=1)
    assert store.put_latest([older]) == WriteCounts(kept_newer=1)
    assert store.get(key) == expected_item(1545, T2)
    assert store.put_latest([newest]) == WriteCounts(replaced=1)
    assert store.get(key) == expected_item(1545, T2 + timedelta(hours=1))
    assert store.put_latest([newest]) == WriteCounts(unchanged=1)
    assert store.count() == 1


def test_an_item_dynamodb_refuses_is_a_clear_error_and_nothing_is_written(dynalite):
    # The client does not validate parameters (a publish's time goes to it otherwise): DynamoDB does, and says why.
    env = isolated("online_refused")
    store = local_online_store(env)
    store.ensure_table()
    valid = publish_item(1546, T1)
    refused = {**publish_item(1545, T1), "flight_key": ""}  # an empty key attribute
    reason = r"online-refused.*\(BatchGetItem\) failed.*ValidationException.*empty string"

    with pytest.raises(OnlineStoreError, match=reason):
        store.put_latest([valid, refused])
    # the chunk fails as a whole, before any write: not even the valid item is in the table
    assert store.count() == 0 and store.get(valid["flight_key"]) is None


def test_dynamodb_checks_the_condition_when_a_newer_item_lands_between_read_and_write(dynalite):
    # Given a stored item at T1, and another writer that puts one at T2 just before our conditional put
    env = isolated("online_race")
    store = local_online_store(env)
    store.ensure_table()
    store.put_latest([publish_item(1545, T1)])
    racer = local_online_store(env)
    newer = publish_item(1545, T2)

    def another_writer_first(**_) -> None:
        store.client.meta.events.unregister("before-call.dynamodb.PutItem", another_writer_first)
        racer.client.put_item(TableName=racer.table_name, Item=newer)

    store.client.meta.events.register("before-call.dynamodb.PutItem", another_writer_first)
    # When we publish a prediction newer than what we read (T1) but older than the racer's (T2)
    counts = store.put_latest([publish_item(1545, T1 + timedelta(hours=1))])
    # Then the condition refused it
    assert counts == WriteCounts(kept_newer=1)
    assert store.get(newer["flight_key"]) == newer


def test_a_publisher_of_older_predictions_keeps_the_newer_items_and_a_newer_one_replaces_them(spark, tables, dynalite):
    # Two publishers of one DynamoDB table, as the batch and the streaming jobs are: one has newer predictions
    newer = isolated("online_two_newer", table_name="online-two")
    older = isolated("online_two_older", table_name="online-two")
    write_predictions(spark, tables, newer, [prediction(flight, T2, 0.9) for flight in (1, 2, 3)])
    write_predictions(spark, tables, older, [prediction(flight, T1, 0.1) for flight in (1, 2, 3, 4)])
    first, _ = run(newer)
    # When the one with older predictions publishes after it
    second, values = run(older)
    # Then the newer items stay; only the flight the other never published is written
    assert (first.counts, second.counts) == (WriteCounts(inserted=3), WriteCounts(inserted=1, kept_newer=3))
    assert values == {"published_items": 1, "kept_newer": 3, "unchanged": 0, "watermark": "2024-05-01T10:00:00+00:00"}
    assert scan(local_online_store(newer)) == [
        *(expected_item(flight, T2, 0.9) for flight in (1, 2, 3)),
        expected_item(4, T1, 0.1),
    ]
    # And a full republish of the older publisher changes nothing, while newer predictions of it replace the items
    again, _ = run(older, full=True)
    write_predictions(spark, tables, older, [prediction(flight, T2 + timedelta(hours=1), 0.55) for flight in (1, 2)])
    latest, _ = run(older)
    # (the lookback re-reads the older publisher's rows at its watermark: 3 kept newer, 1 unchanged)
    assert (again.counts, latest.counts) == (
        WriteCounts(kept_newer=3, unchanged=1),
        WriteCounts(replaced=2, kept_newer=1, unchanged=1),
    )
    assert [item["probability"] for item in scan(local_online_store(newer))] == [
        Decimal("0.55"),
        Decimal("0.55"),
        Decimal("0.9"),
        Decimal("0.1"),
    ]


def test_a_rerun_after_a_failure_half_way_publishes_everything(spark, tables, dynalite):
    # Given 250 flights, and a store that becomes unreachable after two BatchWriteItem requests (50 items)
    from botocore.exceptions import EndpointConnectionError

    env = isolated("online_rerun", max_attempts=2)
    write_predictions(spark, tables, env, [prediction(flight, T1, flight / 1000) for flight in range(250)])
    failing = local_online_store(env)
    sent = []

    def unreachable_after_two(**_) -> None:
        sent.append(1)
        if len(sent) > 2:
            raise EndpointConnectionError(endpoint_url=failing.where)

    failing.client.meta.events.register("before-send.dynamodb.BatchWriteItem", unreachable_after_two)
    # When the first run fails
    with pytest.raises(JobError) as error:
        publish.publish(platform_with(env, lambda: failing), clock=lambda: FIXED_NOW)
    # Then it says so, and nothing is marked published
    assert str(error.value) == (
        f"publishing to the online store failed: DynamoDB table 'dev-online-rerun' ({failing.where}): writing new "
        f"items (BatchWriteItem) failed (adaptive retries, at most 2 attempts): Could not connect to the endpoint "
        f'URL: "{failing.where}". Nothing was marked published (the watermark stays at none (nothing published '
        "yet)): the next run publishes these rows again"
    )
    assert (len(sent), local_online_store(env).count(), publish_log(spark, tables, env)) == (4, 50, [])
    # When it runs again against the working store
    result, values = run(env)
    # Then every flight is there, exactly as one clean publish writes them
    reference = isolated("online_reference")
    write_predictions(spark, tables, reference, [prediction(flight, T1, flight / 1000) for flight in range(250)])
    run(reference)
    assert result.counts == WriteCounts(inserted=200, unchanged=50)
    assert values == {
        "published_items": 200,
        "kept_newer": 0,
        "unchanged": 50,
        "watermark": "2024-05-01T10:00:00+00:00",
    }
    published = scan(local_online_store(env))
    assert len(published) == 250
    assert published == scan(local_online_store(reference))
    assert published[0] == expected_item(0, T1, 0.0)


def test_the_watermark_makes_the_next_runs_publish_only_new_rows(spark, tables, dynalite):
    env = isolated("online_watermark")
    table = "dev-online-watermark"
    # Given flights 1-10 published at T1
    write_predictions(spark, tables, env, [prediction(flight, T1, 0.2) for flight in range(1, 11)])
    first, _ = run(env)
    # When flights 6-15 are scored a day later (6-10 again, 11-15 for the first time)
    second_version = write_predictions(spark, tables, env, [prediction(flight, T2, 0.7) for flight in range(6, 16)])
    second, values = run(env)
    # Then the second run writes those 10 only; the rows at the watermark are re-read (the lookback) and unchanged
    assert (first.rows_read, first.counts) == (10, WriteCounts(inserted=10))
    assert (second.since, second.rows_read, second.counts) == (
        T1 - timedelta(hours=2),
        20,
        WriteCounts(inserted=5, replaced=5, unchanged=5),
    )
    assert values == {"published_items": 10, "kept_newer": 0, "unchanged": 5, "watermark": "2024-05-02T10:00:00+00:00"}
    assert scan(local_online_store(env)) == sorted(
        [expected_item(flight, T1, 0.2) for flight in range(1, 6)]
        + [expected_item(flight, T2, 0.7) for flight in range(6, 16)],
        key=lambda item: item["flight_key"],
    )
    # And a third day's run no longer reads the first day's rows at all
    third_version = write_predictions(spark, tables, env, [prediction(16, T2 + timedelta(days=1), 0.7)])
    third, _ = run(env)
    assert (third.rows_read, third.counts) == (11, WriteCounts(inserted=1, unchanged=10))
    assert publish_log(spark, tables, env) == [
        log_row("2024-05-01T10:00:00Z", None, 10, 10, 10, predictions_version=0, online_table=table),
        log_row(
            "2024-05-02T10:00:00Z",
            "2024-05-01T08:00:00Z",
            20,
            15,
            10,
            items_unchanged=5,
            predictions_version=second_version,
            online_table=table,
        ),
        log_row(
            "2024-05-03T10:00:00Z",
            "2024-05-02T08:00:00Z",
            11,
            11,
            1,
            items_unchanged=10,
            predictions_version=third_version,
            online_table=table,
        ),
    ]


def test_no_commit_since_the_last_publish_or_no_row_after_the_watermark_is_a_noop(spark, tables, dynalite):
    env = isolated("online_noop")
    write_predictions(spark, tables, env, [prediction(flight, T1) for flight in range(1, 4)])
    run(env)
    # The predictions table did not change since: nothing is read
    same, values = run(env)
    assert (same.predictions_version, same.rows_read, same.counts, same.logged) == (0, 0, WriteCounts(), False)
    assert values == {"published_items": 0, "kept_newer": 0, "unchanged": 0, "watermark": "2024-05-01T10:00:00+00:00"}
    # A commit of rows scored before the watermark, and no lookback: no row after the watermark
    write_predictions(spark, tables, env, [prediction(4, T1 - timedelta(minutes=5))])
    behind, values = run(env, lookback=timedelta(0))
    assert (behind.predictions_version, behind.since, behind.rows_read, behind.logged) == (1, T1, 0, False)
    assert values == {"published_items": 0, "kept_newer": 0, "unchanged": 0, "watermark": "2024-05-01T10:00:00+00:00"}
    assert [row["rows_read"] for row in publish_log(spark, tables, env)] == [3]


def test_rows_committed_behind_the_watermark_within_the_lookback_are_published(spark, tables, dynalite):
    env = isolated("online_lookback")
    write_predictions(spark, tables, env, [prediction(1, T2)])
    run(env)
    # A scoring run stamped these before the watermark but committed them after the publish
    write_predictions(
        spark,
        tables,
        env,
        [prediction(2, T2 - timedelta(minutes=30)), prediction(3, T2 - timedelta(hours=3))],
    )
    late, values = run(env)
    published = {item["flight"] for item in scan(local_online_store(env))}
    assert (late.rows_read, late.counts, published) == (2, WriteCounts(inserted=1, unchanged=1), {1, 2})
    assert values["watermark"] == "2024-05-02T10:00:00+00:00"


def test_an_empty_or_missing_predictions_table_is_a_successful_noop(spark, tables, dynalite):
    env = isolated("online_empty")
    missing, values = run(env)
    assert (missing.predictions_version, missing.rows_read, missing.logged) == (None, 0, False)
    assert values == {"published_items": 0, "kept_newer": 0, "unchanged": 0, "watermark": ""}
    write_predictions(spark, tables, env, [])
    empty, values = run(env)
    assert (empty.predictions_version, empty.rows_read, empty.logged) == (0, 0, False)
    assert values == {"published_items": 0, "kept_newer": 0, "unchanged": 0, "watermark": ""}
    # The store was never touched: no table was created
    tables_there = local_online_store(env).client.list_tables()["TableNames"]
    assert "dev-online-empty" not in tables_there
    assert publish_log(spark, tables, env) == []


def test_invalid_rows_fail_the_run_before_anything_is_written(spark, tables, dynalite):
    env = isolated("online_invalid")
    version = write_predictions(
        spark, tables, env, [prediction(1, T1), prediction(2, T1, model_version=None), prediction(3, None)]
    )
    with pytest.raises(JobError) as error:
        run(env)
    assert str(error.value) == (
        f"2 of 3 rows of online_invalid.ml.flight_delay_predictions (version {version}) scored since the start cannot "
        "be published (a flight key part, prediction, probability, model or scored_at missing, a prediction other "
        "than 0/1 or a probability outside [0, 1]): fix the scoring job's output; nothing was written"
    )
    assert "dev-online-invalid" not in local_online_store(env).client.list_tables()["TableNames"]


def test_an_unreachable_store_fails_the_job_with_a_clear_error(caplog, spark, tables, dynalite):
    # The dev predictions table (first test) holds rows; DynamoDB is at a port where nothing listens
    before = publish_log(spark, tables, DEV)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.ERROR, logger="jobs"):
        patch.setenv(DYNAMODB_ENDPOINT_ENV, endpoint)
        code = publish.main(["--env", "dev", "--full"])
    assert code == 1
    assert [record.getMessage() for record in caplog.records if record.name == "jobs"] == [
        f"mlops-publish failed: publishing to the online store failed: DynamoDB table 'dev-flight-delay-predictions' "
        f"({endpoint}): describing the table (DescribeTable) failed (adaptive retries, at most 8 attempts): Could "
        f'not connect to the endpoint URL: "{endpoint}/". Nothing was marked published (the watermark stays at '
        "2024-05-01T11:00:00+00:00): the next run publishes these rows again"
    ]
    assert publish_log(spark, tables, DEV) == before


def test_throttling_beyond_botocores_retries_fails_with_a_clear_error(spark, tables, dynalite):
    # Given DynamoDB answering every BatchWriteItem with a throttling error
    from botocore.awsrequest import AWSResponse

    env = isolated("online_throttled", max_attempts=3)
    write_predictions(spark, tables, env, [prediction(flight, T1) for flight in range(30)])
    store = local_online_store(env)
    attempts = []

    class Body:
        def stream(self, **_):
            yield json.dumps({"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded"}).encode()

    def throttled(request, **_) -> AWSResponse:
        attempts.append(request.url)
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Body())

    store.client.meta.events.register("before-send.dynamodb.BatchWriteItem", throttled)
    # When
    with pytest.raises(JobError) as error:
        publish.publish(platform_with(env, lambda: store), clock=lambda: FIXED_NOW)
    # Then botocore tried max_attempts times, and the error says what failed and that nothing was marked published
    assert len(attempts) == 3
    assert str(error.value) == (
        f"publishing to the online store failed: DynamoDB table 'dev-online-throttled' ({store.where}): writing new "
        "items (BatchWriteItem) failed (adaptive retries, at most 3 attempts): An error occurred "
        "(ProvisionedThroughputExceededException) when calling the BatchWriteItem operation (reached max retries: 2): "
        "Rate exceeded. Nothing was marked published (the watermark stays at none (nothing published yet)): the next "
        "run publishes these rows again"
    )
    assert publish_log(spark, tables, env) == []


def test_without_an_endpoint_the_job_says_how_to_start_the_local_dynamodb(caplog, spark, tables, dynalite):
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.ERROR, logger="jobs"):
        patch.delenv(DYNAMODB_ENDPOINT_ENV)
        code = publish.main(["--env", "dev", "--full"])
    assert code == 1
    assert [record.getMessage() for record in caplog.records if record.name == "jobs"] == [
        "mlops-publish failed: publishing to the online store failed: MLOPS_DYNAMODB_ENDPOINT is not set: start the "
        "local DynamoDB with `mlops dynamodb` and export the variable it prints, or run `mlops publish --env dev`, "
        "which starts one for its duration. Nothing was marked published (the watermark stays at "
        "2024-05-01T11:00:00+00:00): the next run publishes these rows again"
    ]


def test_the_cli_starts_dynalite_for_publish_and_lookup_and_keeps_the_tables(capsys, spark, tables, dynalite):
    # No endpoint exported: each command starts dynalite on $MLOPS_HOME/dynamodb and stops it when it is done
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(DYNAMODB_ENDPOINT_ENV)
        published = mlops(["publish", "--env", "dev", "--model", "flight_delay", "--full"])
        published_out = capsys.readouterr().out
        found = mlops(["lookup", "--env", "dev", "--model", "flight_delay", "--key", "2013-03-04#UA#1547#EWR"])
        found_out = capsys.readouterr().out
        missing = mlops(["lookup", "--env", "dev", "--model", "flight_delay", "--key", "2013-03-04#UA#9999#EWR"])
        missing_err = capsys.readouterr().err
        exported_after = os.environ.get(DYNAMODB_ENDPOINT_ENV)
    assert (published, found, missing) == (0, 0, 1)
    assert published_out == (
        "published 3 items to dev-flight-delay-predictions (0 kept newer, 0 unchanged); watermark "
        "2024-05-01T11:00:00+00:00\n"
    )
    assert json.loads(found_out) == {
        **expected_item(1547, T1, 0.6, batch_id="b"),
        "flight": 1547,
        "prediction": 1,
        "probability": 0.6,
        "scored_at_ms": MILLIS[T1],
    }
    assert missing_err == (
        "no item with key '2013-03-04#UA#9999#EWR' (sched_date#carrier#flight#origin) in dev-flight-delay-predictions\n"
    )
    assert exported_after is None


def test_dynalite_refuses_a_taken_port_and_a_missing_install(tmp_path, dynalite):
    with pytest.raises(DynaliteError) as taken:
        Dynalite(port=dynalite.port).start()
    assert str(taken.value) == (
        f"port 127.0.0.1:{dynalite.port} is taken: stop what listens there, or choose another port (or none: a free "
        "one is picked)"
    )
    with pytest.raises(DynaliteError) as missing:
        Dynalite(executable=tmp_path / "node_modules" / ".bin" / "dynalite").start()
    assert str(missing.value) == (
        f"dynalite is not installed ({tmp_path}/node_modules/.bin/dynalite is missing): run make setup"
    )


def test_dynalite_persists_its_tables_and_stops_for_good(tmp_path):
    path = tmp_path / "dynamodb"
    with Dynalite(path) as first:
        store = local_store_at(first.endpoint_url, "persisted", partition_key="flight_key")
        store.ensure_table()
        store.put_latest([publish_item(1545, T1)])
        endpoint = first.endpoint_url
    with pytest.raises(OnlineStoreError) as stopped:
        local_store_at(endpoint, "persisted", max_attempts=1).count()
    assert str(stopped.value) == (
        f"DynamoDB table 'persisted' ({endpoint}): counting the items (Scan) failed (adaptive retries, at most 1 "
        f'attempts): Could not connect to the endpoint URL: "{endpoint}/"'
    )
    with Dynalite(path) as second:
        assert local_store_at(second.endpoint_url, "persisted", partition_key="flight_key").get(
            "2013-03-04#UA#1545#EWR"
        ) == expected_item(1545, T1)


def throttle_batch_writes(store: DynamoDBOnlineStore, times: int) -> list[int]:
    """DynamoDB leaving every item of the next ``times`` BatchWriteItem requests unprocessed, as it does under
    throttling (dynalite never throttles): the request's own items come back as UnprocessedItems, nothing is written.
    The list counts the requests sent."""
    from botocore.awsrequest import AWSResponse

    sent: list[int] = []

    def throttled(params, **_):
        sent.append(1)
        if len(sent) > times:
            return None
        return AWSResponse("http://dynalite", 200, {}, None), {
            "UnprocessedItems": json.loads(params["body"])["RequestItems"]
        }

    store.client.meta.events.register("before-call.dynamodb.BatchWriteItem", throttled)
    return sent


def test_unprocessed_batch_writes_are_sent_again_after_a_growing_back_off(dynalite):
    env = isolated("online_throttled")
    store = local_online_store(env)
    store.ensure_table()
    waits: list[float] = []
    store.sleep = waits.append
    sent = throttle_batch_writes(store, times=3)
    items = [publish_item(1500 + n, T1) for n in range(30)]  # two requests: 25 items, then 5

    assert store.put_latest(items) == WriteCounts(inserted=30)
    assert store.count() == 30 and store.get(items[-1]["flight_key"]) == expected_item(1529, T1)
    # the first request three times throttled, then written; the second written at once
    assert len(sent) == 5
    assert len(waits) == 3 and all(0 <= wait <= 0.05 * 2**n for n, wait in enumerate(waits))


def test_items_still_unprocessed_after_the_last_attempt_are_a_clear_error(dynalite):
    env = isolated("online_throttled_out", max_attempts=3)
    store = local_online_store(env)
    store.ensure_table()
    waits: list[float] = []
    store.sleep = waits.append
    sent = throttle_batch_writes(store, times=100)

    reason = r"online-throttled-out.*2 of 2 items were left unprocessed.*3 BatchWriteItem requests"
    with pytest.raises(OnlineStoreError, match=reason):
        store.put_latest([publish_item(1545, T1), publish_item(1546, T1)])
    assert len(sent) == 3 and len(waits) == 2
    assert store.count() == 0
