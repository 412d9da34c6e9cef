"""The production loop's steps under faults, in the order they run after a champion is promoted: streaming
inference killed after its first micro-batch's commit, publishing to DynamoDB killed after its first chunk of items,
DynamoDB (dynalite) stopped in the middle of a publish, the labels job killed after its first commit, a monitor
refresh killed after its first metric table was replaced, and two refreshes of one table at once. Each killed step
runs in a process of its own that SIGKILLs itself at that point (``tests.faults.killed``); the re-run runs here.
After it, the tables are counted by key against what a clean run writes: 0 lost, 0 doubled.

Small data: eight landed files of 40 flights each (two micro-batches: the stream reads seven files per trigger)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from jobs import labels, publish, streaming_inference
from jobs.platform import build_platform
from jobs.platform.job import JobError
from jobs.platform.online_store import DynamoDBOnlineStore
from local.dynalite import DYNAMODB_ENDPOINT_ENV
from local.paths import table_path
from spec.config import ENVIRONMENTS
from tests.faults.conftest import DEV_NAME, LABELS_AS_OF, lost_and_doubled, run_killed

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ENV = ENVIRONMENTS[DEV_NAME]
STREAM_KEY = ("carrier", "flight", "origin", "dest", "time_hour")
PREDICTION_KEY = ("sched_date", "carrier", "flight", "origin")
FILES, FLIGHTS_PER_FILE = 8, 40
LANDED_DAYS = [date(2013, 1, d) for d in range(15, 23)]
AS_OF = date.fromisoformat(LABELS_AS_OF)
SERVED = 30


def table(name: str, columns: list[str] | None = None) -> pa.Table:
    return DeltaTable(str(table_path(name))).to_pyarrow_table(columns=columns)


def keys(rows: pa.Table, columns) -> list[tuple]:
    return list(zip(*(rows.column(c).to_pylist() for c in columns), strict=True))


def streamed(name: str) -> pa.Table:
    rows = table(name)
    return rows.filter(pc.equal(rows["source"], "stream"))


@pytest.fixture(scope="module")
def landed(champion) -> pa.Table:
    """Eight files of 40 flights (one per day of January 15-22) in the landing folder: what the stream reads."""
    from local.adapters import LocalLanding
    from local.landing import landing_arrow_schema
    from local.paths import landing_dir
    from models.flight_delay.columns import SCHEDULE_COLUMNS
    from models.flight_delay.sources import source_frames

    flights, _ = source_frames(LANDED_DAYS[0], LANDED_DAYS[-1])
    landing = LocalLanding(landing_dir(ENV.name, ENV.model.stream_source))
    files = []
    for day in LANDED_DAYS:
        rows = flights[(flights["month"] == day.month) & (flights["day"] == day.day)].head(FLIGHTS_PER_FILE)
        file = pa.Table.from_pandas(rows[list(SCHEDULE_COLUMNS)].reset_index(drop=True), preserve_index=False)
        landing.land(file.cast(landing_arrow_schema(ENV.model)), day.isoformat())
        files.append(file.cast(landing_arrow_schema(ENV.model)))
    return pa.concat_tables(files)


@pytest.fixture(scope="module")
def dynalite(champion, session_dynalite):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DYNAMODB_ENDPOINT_ENV, session_dynalite.endpoint_url)
        yield session_dynalite


def test_a_stream_killed_after_its_first_micro_batch_commit_resumes_with_every_flight_once(
    landed, pending_kills, fault
):
    row = fault("killed: streaming inference (after micro-batch 0's commit)")
    # given: the stream killed right after micro-batch 0's predictions were committed, before Spark's checkpoint
    # recorded the micro-batch
    pending_kills["stream"].run()
    row.injected()
    killed_rows = streamed(ENV.predictions_table).num_rows

    # when: it runs again
    result = streaming_inference.run_stream(build_platform(ENV), "available-now")

    # then: micro-batch 0 was replayed and skipped, micro-batch 1 scored: every landed flight once, scored or rejected
    found = keys(streamed(ENV.predictions_table), STREAM_KEY)
    if DeltaTable.is_deltatable(str(table_path(ENV.rejects_table))):
        found += keys(streamed(ENV.rejects_table), STREAM_KEY)
    lost, doubled = lost_and_doubled(keys(landed, STREAM_KEY), found)
    row.record(survived=result.replayed_batches == [0], lost=lost, doubled=doubled,
               note=f"{killed_rows} rows committed before the kill, {result.scored_rows} after")  # fmt: skip
    assert 0 < killed_rows < FILES * FLIGHTS_PER_FILE
    assert result.replayed_batches == [0]
    assert (lost, doubled) == (0, 0)


def latest_predictions() -> dict[tuple, tuple]:
    """The item each flight must have in the online store: its latest prediction (one per online key)."""
    rows = table(ENV.predictions_table)
    latest: dict[tuple, tuple] = {}
    for r in rows.to_pylist():
        key = tuple(r[c].isoformat() if c == "sched_date" else r[c] for c in PREDICTION_KEY)
        if key not in latest or r["scored_at"] > latest[key][0]:
            latest[key] = (r["scored_at"], r["probability"], r["model_version"])
    return latest


def store_items(store: DynamoDBOnlineStore) -> list[tuple[tuple, tuple]]:
    pages = store.client.get_paginator("scan").paginate(TableName=store.table_name)
    items = []
    for page in pages:
        for item in page["Items"]:
            key = (item["sched_date"], item["carrier"], int(item["flight"]), item["origin"])
            items.append((key, (float(item["probability"]), item["model_version"])))
    return items


def online_lost_and_doubled(store: DynamoDBOnlineStore) -> tuple[int, int]:
    """Counted by item: a flight without its latest prediction in the store is lost (missing, or an older one);
    an item beyond one per flight with predictions is doubled."""
    expected = [(key, (p, v)) for key, (_, p, v) in latest_predictions().items()]
    return lost_and_doubled(expected, store_items(store))


def publish_log_rows(env) -> int:
    path = str(table_path(env.publish_log_table))
    return DeltaTable(path).to_pyarrow_table().num_rows if DeltaTable.is_deltatable(path) else 0


def test_a_publish_killed_after_its_first_chunk_publishes_every_item_once_when_run_again(
    dynalite, pending_kills, fault
):
    row = fault("killed: publish to DynamoDB (after the first 100 items)")
    # given: mlops-publish killed right after its first chunk of items was written
    pending_kills["publish"].run()
    row.injected()
    platform = build_platform(ENV)
    store = platform.online_store()
    before, logged_before = store.count(), publish_log_rows(ENV)

    # when
    result = publish.publish(platform)

    # then: every flight's latest prediction is in the store once; the killed run never moved the watermark
    lost, doubled = online_lost_and_doubled(store)
    row.record(survived=logged_before == 0 and publish_log_rows(ENV) == 1, lost=lost, doubled=doubled,
               note=f"{before} items written before the kill, {result.counts.unchanged} found unchanged")  # fmt: skip
    assert 0 < before < len(latest_predictions())
    assert (logged_before, publish_log_rows(ENV)) == (0, 1)
    assert result.counts.unchanged == before and result.counts.written == len(latest_predictions()) - before
    assert (lost, doubled) == (0, 0)


def test_dynalite_stopped_in_the_middle_of_a_publish_then_restarted_gets_every_item_once(dynalite, fault, spark):
    row = fault("dynalite stopped in the middle of a publish, restarted")
    # given: an environment of its own (its own catalog and DynamoDB table, one attempt per request) holding the
    # stream's predictions
    env = ENV.replace(catalog="faults_stop", online_store={"table_name": "faults-stop", "max_attempts": 1})
    platform = build_platform(env)
    platform.tables.write(build_platform(ENV).tables.read(ENV.predictions_table), env.predictions_table)
    real_put_chunk = DynamoDBOnlineStore._put_chunk
    chunks = []

    def put_chunk_then_stop(self, chunk, pool):
        counts = real_put_chunk(self, chunk, pool)
        chunks.append(len(chunk))
        if len(chunks) == 1:
            dynalite.stop()  # the server goes away with the first chunk written and the rest to come
        return counts

    # when: the server stops after the first chunk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoDBOnlineStore, "_put_chunk", put_chunk_then_stop)
        with pytest.raises(JobError) as failed:
            publish.publish(platform)
    row.injected()
    # then: a clear message; nothing marked published
    message = str(failed.value)
    clear = "publishing to the online store failed" in message and "the next run publishes these rows again" in message
    assert publish_log_rows(env) == 0

    # when: the server is back (a new process on the same files) and the publish runs again
    dynalite.port = None
    dynalite.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DYNAMODB_ENDPOINT_ENV, dynalite.endpoint_url)
        platform = build_platform(env)
        result = publish.publish(platform)
        store = platform.online_store()
        expected = [(key, (p, v)) for key, (_, p, v) in latest_predictions().items()]
        lost, doubled = lost_and_doubled(expected, store_items(store))
    row.record(survived=clear and publish_log_rows(env) == 1, lost=lost, doubled=doubled,
               note=f"{result.counts.unchanged} items kept from before the stop")  # fmt: skip
    assert clear, message
    assert result.counts.unchanged == chunks[0] == 100
    assert publish_log_rows(env) == 1
    assert (lost, doubled) == (0, 0)
    # the module's other tests use the restarted server
    import os

    os.environ[DYNAMODB_ENDPOINT_ENV] = dynalite.endpoint_url


def served_requests(champion_version: str) -> list[dict]:
    """Requests the gateway answered for landed flights (one record each, named by the flight's key)."""
    import json

    import mlflow.sklearn
    import pandas as pd

    from jobs.core.model import model_frame, predict_proba
    from jobs.core.requests import key_id
    from jobs.platform.registry import ModelRef
    from jobs.scoring import stage_model
    from models.flight_delay.columns import FEATURE_COLUMNS
    from models.flight_delay.features import flight_features

    platform = build_platform(ENV)
    tables = platform.tables
    rows = (
        flight_features(
            tables.read(ENV.source_table("flights")),
            tables.read(ENV.feature_table("weather_hourly")),
            LANDED_DAYS[0],
            LANDED_DAYS[-1],
        )
        .limit(SERVED)
        .toPandas()
    )
    records = [{c: (None if pd.isna(r[c]) else r[c]) for c in FEATURE_COLUMNS} for _, r in rows.iterrows()]
    model = mlflow.sklearn.load_model(stage_model(platform, ModelRef(ENV.registered_model, champion_version)))
    answers = (predict_proba(model, model_frame(ENV.model, pd.DataFrame(records))) > 0.5).astype(int).tolist()
    now = datetime.now(UTC)
    return [
        {
            "databricks_request_id": f"req-{i}",
            "client_request_id": key_id(ENV.model, r),
            "request_date": now.date(),
            "request_time": now,
            "endpoint_name": ENV.endpoint_name,
            "served_entity_name": "champion",
            "model_name": ENV.registered_model,
            "model_version": champion_version,
            "status_code": 200,
            "execution_duration_ms": 2.0,
            "request": json.dumps({"dataframe_records": [record]}, default=str),
            "response": json.dumps({"predictions": [answer]}),
        }
        for i, ((_, r), record, answer) in enumerate(zip(rows.iterrows(), records, answers, strict=True))
    ]


def arrived(prediction_keys: list[tuple]) -> set[tuple]:
    """The flights among ``prediction_keys`` (FLIGHT_KEY tuples) that arrived: what the labels job must label."""
    from models.flight_delay.columns import FLIGHT_KEY

    flights = table(ENV.source_table("flights"))
    done = flights.filter(pc.is_valid(flights["arr_delay"]))
    wanted = set(prediction_keys)
    by_key = {
        (r["time_hour"], r["carrier"], r["flight"], r["origin"], r["dest"])
        for r in done.select(["time_hour", "carrier", "flight", "origin", "dest"]).to_pylist()
    }
    index = {c: i for i, c in enumerate(FLIGHT_KEY)}
    return {k for k in wanted if (k[index["time_hour"]], k[index["carrier"]], k[index["flight"]], k[index["origin"]],
                                  k[index["dest"]]) in by_key}  # fmt: skip


def test_a_labels_job_killed_after_its_first_commit_labels_everything_once_when_run_again(
    champion, landed, pending_kills, fault
):
    from local.monitor import refresh_monitor
    from local.serving.inference_log import InferenceLogger
    from models.flight_delay.columns import FLIGHT_KEY

    row = fault("killed: labels job (after unpacking the served requests)")
    # given: the predictions' monitor refreshed before any label arrived (the refresh test below starts from it)
    refresh_monitor(ENV, predictions_monitor())
    # and requests the endpoint answered, and the labels job killed right after it committed the served table
    requests = served_requests(champion.version)
    log = InferenceLogger(table_path(ENV.inference_table), flush_interval=0.05)
    log.start()
    for request in requests:
        log.log(request)
    assert log.close() == 0
    pending_kills["labels"].run()
    row.injected()
    served_before = table(ENV.served_table).num_rows

    # when
    result = labels.label(build_platform(ENV), as_of=AS_OF)

    # then: each served request unpacked once; each scored flight that arrived labelled, once
    served = table(ENV.served_table)
    lost_s, doubled_s = lost_and_doubled([r["databricks_request_id"] for r in requests],
                                         served["batch_id"].to_pylist())  # fmt: skip
    predictions = table(ENV.predictions_table)
    all_keys = keys(predictions, FLIGHT_KEY)
    labelled = predictions.filter(pc.is_valid(predictions["label"]))
    lost_l, doubled_l = lost_and_doubled(sorted(arrived(all_keys)), keys(labelled, FLIGHT_KEY))
    doubled_p = len(all_keys) - len(set(all_keys))
    row.record(survived=result.served_rows == 0 and result.labelled_predictions > 0, lost=lost_s + lost_l,
               doubled=doubled_s + doubled_l + doubled_p,
               note=f"{served_before} served rows before the kill; {len(labelled)} predictions labelled")  # fmt: skip
    assert served_before == len(requests)
    assert result.served_rows == 0  # the killed run's unpacking is kept, not repeated
    assert (lost_s, doubled_s, lost_l, doubled_l, doubled_p) == (0, 0, 0, 0, 0)


def metric_keys(monitored) -> tuple[list[tuple], list[tuple]]:
    """The profile rows (with their count) and the drift rows of ``monitored``'s metric tables, by key."""
    from spec.monitoring import MODEL_ID_COL

    key = ("granularity", MODEL_ID_COL, "column_name", "slice_key", "slice_value")
    profile = table(monitored.profile_metrics_table)
    drift = table(monitored.drift_metrics_table)

    def rows(t: pa.Table, kind: str, extra: tuple[str, ...]) -> list[tuple]:
        starts = pc.struct_field(t["window"], "start").to_pylist()
        columns = [t[c].to_pylist() for c in (*key, kind, *extra)]
        return [(*values, start) for *values, start in zip(*columns, starts, strict=True)]

    return rows(profile, "log_type", ("count",)), rows(drift, "drift_type", ())


def predictions_monitor():
    from spec.monitoring import monitored_tables

    (monitored,) = [m for m in monitored_tables(ENV) if m.table == ENV.predictions_table]
    return monitored


def test_a_monitor_refresh_killed_after_its_first_metric_table_recomputes_what_it_missed(champion, landed, fault):
    from jobs import refresh_monitors
    from local.monitor import refresh_monitor, state_path

    row = fault("killed: monitor refresh (after the profile table, before the state)")
    monitored = predictions_monitor()
    # given: a refresh killed right after it replaced the predictions' profile metrics (the drift table and the
    # state not yet written), after the labels had changed its windows since the last refresh
    state_before = state_path(monitored).read_text() if state_path(monitored).exists() else None
    # (delta-rs is given the table's folder: .../<catalog>/<schema>/<table>)
    profile_folder = "/".join(monitored.profile_metrics_table.split("."))
    run_killed("deltalake:write_deltalake", 1, profile_folder, "mlops-refresh-monitors", "--env", ENV.name)
    row.injected()
    state_after_kill = state_path(monitored).read_text() if state_path(monitored).exists() else None

    # when: the daily job's refresh runs again
    refresh_monitors.refresh(build_platform(ENV))
    rerun = metric_keys(monitored)
    # and a clean refresh of every window, to compare with
    refresh_monitor(ENV, monitored, full=True)
    clean = metric_keys(monitored)

    lost_p, doubled_p = lost_and_doubled(clean[0], rerun[0])
    lost_d, doubled_d = lost_and_doubled(clean[1], rerun[1])
    row.record(survived=state_after_kill == state_before, lost=lost_p + lost_d, doubled=doubled_p + doubled_d,
               note=f"{len(clean[0])} profile and {len(clean[1])} drift rows compared with a full refresh")  # fmt: skip
    assert state_after_kill == state_before  # the kill came before the state: the re-run planned from the old one
    assert len(clean[0]) > 0 and len(clean[1]) > 0
    assert (lost_p, doubled_p, lost_d, doubled_d) == (0, 0, 0, 0)


def test_two_refreshes_of_one_table_at_once_take_turns(champion, landed, fault):
    from local.monitor import refresh_monitor, state_path

    row = fault("two monitor refreshes of one table at once")
    monitored = predictions_monitor()
    # given: no state (every window to compute) and two refreshes started together
    state_path(monitored).unlink()
    start = threading.Barrier(2)
    results, errors = [], []

    def refresh() -> None:
        start.wait()
        try:
            results.append(refresh_monitor(ENV, monitored))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    row.injected()
    after = metric_keys(monitored)
    refresh_monitor(ENV, monitored, full=True)
    clean = metric_keys(monitored)

    # then: one computed every window, the other waited and found them done (interleaved, both would compute all)
    computed = sorted(len(r.computed) for r in results)
    lost_p, doubled_p = lost_and_doubled(clean[0], after[0])
    lost_d, doubled_d = lost_and_doubled(clean[1], after[1])
    row.record(survived=not errors and computed[0] == 0 < computed[1], lost=lost_p + lost_d,
               doubled=doubled_p + doubled_d, note=f"windows computed by each: {computed}")  # fmt: skip
    assert not errors, errors
    assert computed[0] == 0 < computed[1]
    assert (lost_p, doubled_p, lost_d, doubled_d) == (0, 0, 0, 0)
