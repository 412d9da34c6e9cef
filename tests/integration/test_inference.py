"""Batch and streaming inference on the local engines: the Champion scores flights into the predictions table, a
re-run replaces its batch, a new Champion is used by the next run, malformed flights become rejects with their
reason, and a stream killed after writing a micro-batch (before its checkpoint) restarts with no row lost or twice.

One module registry: a champion trained on January 2013 (validation disabled: it is tested elsewhere), scoring
March. The tests share it and each reads only what it wrote (its own batch, its own landed days)."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from jobs import batch_inference, deploy, features, ingest, labels, streaming_inference, train, validate
from jobs.platform import build_platform
from jobs.platform.job import JobError
from jobs.platform.registry import CHAMPION, ModelRef
from local.landing import land_rows, landing_arrow_schema
from local.paths import table_path
from models.flight_delay.columns import FLIGHT_KEY, PREDICTION_COLUMNS, REJECT_COLUMNS
from models.flight_delay.sources import source_frames
from spec.columns import SHADOW_METADATA
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["dev"]
MODEL = ENV.registered_model


def table(name: str) -> pa.Table:
    return DeltaTable(str(table_path(name))).to_pyarrow_table()


def rows_of(name: str, column: str, value: str) -> pa.Table:
    found = table(name)
    return found.filter(pc.equal(found[column], value))


def ok(main, *args: str) -> None:
    assert main(["--env", ENV.name, *args]) == 0


@pytest.fixture(scope="module")
def champion(spark, mlops_home) -> str:
    """Flights and weather of January-March 2013, and a champion trained on January."""
    ok(ingest.main, "--start-date", "2013-01-01", "--end-date", "2013-03-31")
    ok(features.main)
    return register_champion("2013-01-31", 8000)


def register_champion(training_end: str, max_rows: int) -> str:
    """Train on January 2013 up to ``training_end``, record validation as disabled, and promote the version."""
    platform = build_platform(ENV)
    result = train.train(platform, date(2013, 1, 1), date.fromisoformat(training_end), max_rows)
    version = result.model.version
    ok(validate.main, "--model-uri", result.model.uri, "--run-mode", "disabled")
    if platform.registry.alias_version(CHAMPION) is None:
        ok(deploy.main, "--model-name", MODEL, "--model-version", version)
    else:
        platform.registry.set_alias(CHAMPION, version)  # a promotion, as the deploy job or the online decision makes
    return version


def scheduled_flights(start: str, end: str) -> int:
    flights, _ = source_frames(date.fromisoformat(start), date.fromisoformat(end))
    return len(flights)


def test_without_a_champion_scoring_is_a_clear_error_naming_what_to_run(mlops_home, caplog):
    staging = ENVIRONMENTS["staging"]
    with caplog.at_level(logging.ERROR, logger="jobs"):
        code = batch_inference.main(["--env", staging.name, "--start-date", "2013-03-01", "--end-date", "2013-03-01"])
    assert code == 1
    assert (
        f"{staging.registered_model} has no champion yet: nothing can be scored. Train and promote one first: "
        f"mlops run model-training --env {staging.name}"
    ) in caplog.text


def test_a_batch_scores_every_scheduled_flight_once_with_the_champion_version(champion):
    ok(batch_inference.main, "--start-date", "2013-03-04", "--end-date", "2013-03-05")

    batch = rows_of(ENV.predictions_table, "batch_id", "batch-2013-03-04-2013-03-05")
    assert batch.column_names == list(PREDICTION_COLUMNS)
    assert batch.num_rows == scheduled_flights("2013-03-04", "2013-03-05")  # cancelled flights are scored too
    keys = set(zip(*[batch[c].to_pylist() for c in FLIGHT_KEY], strict=True))
    assert len(keys) == batch.num_rows
    assert set(batch["model_version"].to_pylist()) == {champion}
    assert set(batch["model_alias"].to_pylist()) == {"champion"}
    assert set(batch["source"].to_pylist()) == {"batch"}
    probabilities = batch["probability"].to_pylist()
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert batch["prediction"].to_pylist() == [int(p > 0.5) for p in probabilities]


def test_running_a_batch_again_replaces_its_rows_in_one_commit(champion):
    ok(batch_inference.main, "--start-date", "2013-03-06", "--end-date", "2013-03-06")
    first = rows_of(ENV.predictions_table, "batch_id", "batch-2013-03-06-2013-03-06")
    version_before = DeltaTable(str(table_path(ENV.predictions_table))).version()

    ok(batch_inference.main, "--start-date", "2013-03-06", "--end-date", "2013-03-06")

    again = rows_of(ENV.predictions_table, "batch_id", "batch-2013-03-06-2013-03-06")
    assert again.num_rows == first.num_rows == scheduled_flights("2013-03-06", "2013-03-06")
    assert min(again["scored_at"].to_pylist()) > max(first["scored_at"].to_pylist())  # replaced, not kept
    # The batch's old rows out and its new rows in: one commit of the predictions table.
    assert DeltaTable(str(table_path(ENV.predictions_table))).version() == version_before + 1


def test_a_new_champion_is_used_by_the_next_run_without_a_code_change(champion):
    ok(batch_inference.main, "--start-date", "2013-03-07", "--end-date", "2013-03-07")
    before = set(rows_of(ENV.predictions_table, "batch_id", "batch-2013-03-07-2013-03-07")["model_version"].to_pylist())

    newer = register_champion("2013-01-24", 6000)
    ok(batch_inference.main, "--start-date", "2013-03-07", "--end-date", "2013-03-07")

    after = set(rows_of(ENV.predictions_table, "batch_id", "batch-2013-03-07-2013-03-07")["model_version"].to_pylist())
    assert before == {champion} and after == {newer} and newer != champion
    build_platform(ENV).registry.set_alias(CHAMPION, champion)  # the other tests score with the first champion


def test_two_jobs_staging_one_version_at_once_both_get_it_and_leave_no_partial_copy(champion, monkeypatch):
    import shutil
    import stat
    import threading

    import mlflow

    from jobs.scoring import stage_model

    platform = build_platform(ENV)
    ref = ModelRef(MODEL, champion)
    folder = Path(platform.work_dir) / "models" / MODEL
    shutil.rmtree(folder / champion, ignore_errors=True)
    # given: two jobs (the stream and the batch) both downloading the version at the same moment
    both_downloading = threading.Barrier(2, timeout=30)
    download = mlflow.artifacts.download_artifacts

    def in_step(**kwargs):
        both_downloading.wait()
        return download(**kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", in_step)
    staged, errors = [], []

    def stage() -> None:
        try:
            staged.append(stage_model(platform, ref))
        except Exception as error:  # noqa: BLE001 - the test's assertion shows it
            errors.append(error)

    threads = [threading.Thread(target=stage) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: each gets the staged folder, the model in it, and no staging copy is left beside it
    assert errors == []
    assert staged == [str(folder / champion)] * 2
    assert (folder / champion / "MLmodel").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    # and the folder is made as its parent was (readable by whoever reads the work folder), not private to one user
    assert stat.S_IMODE((folder / champion).stat().st_mode) == stat.S_IMODE(folder.stat().st_mode)


def test_malformed_flights_are_rejected_with_their_reason_and_the_rest_scored(champion):
    good = land_rows(ENV, date(2013, 3, 11), date(2013, 3, 11))[0]
    day = pq.read_table(good)
    bad = day.slice(0, 3).to_pylist()
    bad[0]["carrier"] = None
    bad[1]["distance"] = -5.0
    bad[2]["hour"] = 99
    from local.adapters import LocalLanding

    LocalLanding(good.parent).land(pa.Table.from_pylist(bad, schema=landing_arrow_schema(ENV.model)), "2013-03-11-bad")

    result = streaming_inference.run_stream(build_platform(ENV), "available-now")

    rejects = table(ENV.rejects_table)
    assert rejects.column_names == list(REJECT_COLUMNS)
    streamed = rejects.filter(pc.equal(rejects["source"], "stream"))
    assert sorted(streamed["reason"].to_pylist()) == [
        "distance missing or not positive",
        "flight key incomplete; carrier missing",  # the carrier is part of the flight key
        "scheduled hour missing or outside 0..23",
    ]
    assert (result.scored_rows, result.rejected_rows) == (day.num_rows, 3)


class KilledAfterWriting:
    """The tables port of a process killed right after a micro-batch's predictions were committed, before Spark
    recorded the micro-batch in its checkpoint."""

    def __init__(self, tables, batch_id: int) -> None:
        self._tables = tables
        self._batch_id = batch_id

    def __getattr__(self, name):
        return getattr(self._tables, name)

    def append_once(self, df, full_name, app_id, version):
        written = self._tables.append_once(df, full_name, app_id, version)
        if full_name == ENV.predictions_table and version == self._batch_id:
            raise RuntimeError(f"killed after writing micro-batch {version}")
        return written


def test_a_stream_killed_after_a_write_restarts_with_no_row_lost_and_none_twice(champion):
    # One landed day per micro-batch, so that three days make three micro-batches and the second can be killed.
    one_file = ENV.replace(inference={"max_files_per_trigger": 1})
    platform = dataclasses.replace(build_platform(ENV), env=one_file)
    start = DeltaTable(str(table_path(ENV.predictions_table))).transaction_version(streaming_inference.app_id(platform))
    land_rows(ENV, date(2013, 3, 12), date(2013, 3, 14))
    killed = dataclasses.replace(platform, tables=KilledAfterWriting(platform.tables, (start or 0) + 2))

    with pytest.raises(JobError, match=r"the stream stopped at a failed micro-batch; run it again to resume"):
        streaming_inference.run_stream(killed, "available-now")
    resumed = streaming_inference.run_stream(platform, "available-now")

    assert resumed.replayed_batches == [(start or 0) + 2]
    predictions = table(ENV.predictions_table)
    streamed = predictions.filter(pc.equal(predictions["source"], "stream"))
    days = [d.isoformat() for d in streamed["sched_date"].to_pylist()]
    landed = {d: days.count(d) for d in ("2013-03-12", "2013-03-13", "2013-03-14")}
    assert landed == {d: scheduled_flights(d, d) for d in landed}
    keys = list(zip(*[streamed[c].to_pylist() for c in FLIGHT_KEY], strict=True))
    assert len(keys) == len(set(keys))


def as_spark_connect_does(monkeypatch) -> None:
    """foreachBatch as under Spark Connect (Databricks serverless): the function is pickled when registered and
    Spark calls an unpickled copy of it (in another Python process there), so nothing it changes in itself or in
    what it closes over reaches the job's process."""
    import pickle

    from pyspark.serializers import CloudPickleSerializer
    from pyspark.sql.streaming.readwriter import DataStreamWriter

    register = DataStreamWriter.foreachBatch

    def foreach_batch(self, func):
        pickled = CloudPickleSerializer().dumps(func)
        return register(self, lambda batch, batch_id: pickle.loads(pickled)(batch, batch_id))

    monkeypatch.setattr(DataStreamWriter, "foreachBatch", foreach_batch)


def stream_rows_between(name: str, first: int, last: int) -> int:
    """Rows of ``name`` written by the stream's micro-batches ``first``..``last``."""
    written = table(name)
    ids = pa.array([f"stream-{n}" for n in range(first, last + 1)])
    return written.filter(pc.is_in(written["batch_id"], value_set=ids)).num_rows


def test_task_values_are_the_rows_the_run_wrote_when_spark_calls_a_pickled_copy_of_the_batch_function(
    champion, mlops_home, monkeypatch
):
    # given: eight landed days and a file of three malformed flights: two micro-batches (seven files per trigger),
    # with the micro-batch function pickled as Spark Connect does, and a task values file as in a job run
    as_spark_connect_does(monkeypatch)
    values_dir = mlops_home / "stream_task_values"
    monkeypatch.setenv("MLOPS_TASK_VALUES_DIR", str(values_dir))
    monkeypatch.setenv("MLOPS_TASK_KEY", "score")
    writer = streaming_inference.app_id(build_platform(ENV))
    tables = {ENV.predictions_table: writer, ENV.rejects_table: f"{writer}.rejects"}

    def last_batches() -> dict[str, int]:
        """The last micro-batch of the stream each table holds, from its Delta transaction (-1: none yet)."""
        last = {}
        for name, app in tables.items():
            path = str(table_path(name))
            done = DeltaTable(path).transaction_version(app) if DeltaTable.is_deltatable(path) else None
            last[name] = -1 if done is None else done
        return last

    before = last_batches()
    good = land_rows(ENV, date(2013, 3, 18), date(2013, 3, 25))
    bad = pq.read_table(good[0]).slice(0, 3).to_pylist()
    bad[0]["carrier"], bad[1]["distance"], bad[2]["hour"] = None, -5.0, 99
    from local.adapters import LocalLanding

    LocalLanding(good[0].parent).land(
        pa.Table.from_pylist(bad, schema=landing_arrow_schema(ENV.model)), "2013-03-18-bad"
    )

    # when
    ok(streaming_inference.main, "--trigger", "available-now")

    # then: the task values are the rows this run's micro-batches committed, no more, no fewer
    after = last_batches()
    assert after[ENV.predictions_table] - before[ENV.predictions_table] == 2
    scored = stream_rows_between(ENV.predictions_table, before[ENV.predictions_table] + 1, after[ENV.predictions_table])
    rejected = stream_rows_between(ENV.rejects_table, before[ENV.rejects_table] + 1, after[ENV.rejects_table])
    assert (scored, rejected) == (scheduled_flights("2013-03-18", "2013-03-25"), 3)
    values = json.loads((values_dir / "score.json").read_text())
    assert (values["scored_rows"], values["rejected_rows"]) == (scored, rejected)
    assert (values["batches"], values["replayed_batches"]) == (2, 0)


# ---- after the flights: labels, served requests, Champion vs Challenger online -----------------------------------


def labelled(table_name: str, day: str) -> tuple[int, int]:
    """(rows of ``day``, rows of ``day`` with a label) in ``table_name``."""
    rows = table(table_name).to_pandas()
    mine = rows[rows["sched_date"].astype(str) == day]
    return len(mine), int(mine["label"].notna().sum())


def test_labels_arrive_only_for_flights_before_the_day_and_only_once(champion):
    from jobs import labels

    flights, _ = source_frames(date(2013, 3, 4), date(2013, 3, 5))
    arrived = flights[flights["arr_delay"].notna()]
    per_day = {d: int(((arrived["month"] == 3) & (arrived["day"] == d)).sum()) for d in (4, 5)}

    labels.label(build_platform(ENV), as_of=date(2013, 3, 5))

    assert (
        labelled(ENV.predictions_table, "2013-03-04")[1]
        == per_day[4]
        < labelled(ENV.predictions_table, "2013-03-04")[0]
    )
    assert labelled(ENV.predictions_table, "2013-03-05")[1] == 0
    rows = table(ENV.predictions_table).to_pandas()
    day = rows[(rows["sched_date"].astype(str) == "2013-03-04") & rows["label"].notna()]
    assert (day["label"] == (day["arr_delay"] > 15).astype(int)).all()
    first_labels = set(day["labeled_at"])

    again = labels.label(build_platform(ENV), as_of=date(2013, 3, 6))

    assert labelled(ENV.predictions_table, "2013-03-05")[1] == per_day[5]
    rows = table(ENV.predictions_table).to_pandas()
    still = rows[(rows["sched_date"].astype(str) == "2013-03-04") & rows["label"].notna()]
    assert set(still["labeled_at"]) == first_labels  # set once, never again
    assert again.labelled_predictions >= per_day[5]


def test_labels_look_back_a_bounded_number_of_days(champion):
    # The streamed flights of 2013-03-12..14 (above) have no label yet.
    from jobs import labels

    assert [labelled(ENV.predictions_table, f"2013-03-{d}")[1] for d in (12, 13, 14)] == [0, 0, 0]

    labels.label(build_platform(ENV), as_of=date(2013, 3, 15), lookback_days=2)

    assert labelled(ENV.predictions_table, "2013-03-12")[1] == 0  # before the lookback: not read
    assert all(labelled(ENV.predictions_table, f"2013-03-{d}")[1] > 0 for d in (13, 14))

    labels.label(build_platform(ENV), as_of=date(2013, 3, 15))

    assert labelled(ENV.predictions_table, "2013-03-12")[1] > 0
    with pytest.raises(SystemExit):
        labels.parse_args(["--env", "dev", "--lookback-days", "0"])


def serve(platform, records: list[dict], keys: list[str], version: str) -> None:
    """What the gateway logs for one-record requests answered by ``version``: the inference table's rows."""
    import json as _json
    from datetime import UTC, datetime

    import mlflow.sklearn

    from jobs.core.model import model_frame, predict_proba
    from jobs.scoring import stage_model
    from local.serving.inference_log import InferenceLogger

    model = mlflow.sklearn.load_model(stage_model(platform, ModelRef(MODEL, version)))
    answers = (predict_proba(model, model_frame(ENV.model, pd.DataFrame(records))) > 0.5).astype(int).tolist()
    log = InferenceLogger(table_path(ENV.inference_table), flush_interval=0.1)
    log.start()
    now = datetime.now(UTC)
    for i, (record, key, answer) in enumerate(zip(records, keys, answers, strict=True)):
        log.log(
            {
                "databricks_request_id": f"req-{version}-{key}-{i}",
                "client_request_id": key,
                "request_date": now.date(),
                "request_time": now,
                "endpoint_name": ENV.endpoint_name,
                "served_entity_name": "champion" if version == champion_version(platform) else "challenger",
                "model_name": MODEL,
                "model_version": version,
                "status_code": 200,
                "execution_duration_ms": 2.0,
                "request": _json.dumps({"dataframe_records": [record]}),
                "response": _json.dumps({"predictions": [answer]}),
            }
        )
    log.close()


def champion_version(platform) -> str:
    return platform.registry.alias_version(CHAMPION)


def test_served_requests_are_unpacked_with_the_probability_of_the_version_that_answered(champion):
    from jobs import labels
    from jobs.core.requests import key_id
    from models.flight_delay.features import flight_features

    feature_columns = ENV.model.feature_names

    platform = build_platform(ENV)
    tables = platform.tables
    day = flight_features(
        tables.read(ENV.source_table("flights")),
        tables.read(ENV.feature_table("weather_hourly")),
        date(2013, 3, 8),
        date(2013, 3, 8),
    )
    rows = day.limit(40).toPandas()
    records = [{c: (None if pd.isna(r[c]) else r[c]) for c in feature_columns} for _, r in rows.iterrows()]
    keys = [key_id(ENV.model, r) for _, r in rows.iterrows()]
    serve(platform, records, keys, champion)

    result = labels.label(platform, as_of=date(2013, 3, 9))

    served = table(ENV.served_table).to_pandas()
    assert result.served_rows == len(served) == 40
    assert set(served["model_version"]) == {champion} and set(served["source"]) == {"serving"}
    assert sorted(served["flight"]) == sorted(rows["flight"])
    assert (served["prediction"] == (served["probability"] > 0.5).astype(int)).all()  # replayed = answered
    assert served["label"].notna().sum() == result.labelled_served > 0


def log_inference(rows: list[dict]) -> None:
    """Rows of the serving endpoint's inference table, as the gateway logs them (answered with HTTP 200)."""
    from datetime import UTC, datetime

    from local.serving.inference_log import InferenceLogger

    log = InferenceLogger(table_path(ENV.inference_table), flush_interval=0.1)
    log.start()
    now = datetime.now(UTC)
    for row in rows:
        log.log(
            {
                "client_request_id": None,
                "request_date": now.date(),
                "request_time": now,
                "endpoint_name": ENV.endpoint_name,
                "served_entity_name": "champion",
                "model_name": MODEL,
                "model_version": "1",
                "status_code": 200,
                "execution_duration_ms": 2.0,
                **row,
            }
        )
    log.close()


def test_served_requests_that_cannot_be_unpacked_are_rejected_once_with_the_reason(champion, caplog):
    from jobs import labels
    from jobs.core.requests import key_id
    from models.flight_delay.features import flight_features

    feature_columns = ENV.model.feature_names

    # given: beside one good served request, four that the endpoint answered but that cannot be unpacked
    platform = build_platform(ENV)
    tables = platform.tables
    day = flight_features(
        tables.read(ENV.source_table("flights")),
        tables.read(ENV.feature_table("weather_hourly")),
        date(2013, 3, 7),
        date(2013, 3, 7),
    )
    row = next(day.limit(1).toPandas().iterrows())[1]
    record, key = {c: (None if pd.isna(row[c]) else row[c]) for c in feature_columns}, key_id(ENV.model, row)
    serve(platform, [record], [key], champion)
    two_records = json.dumps({"dataframe_records": [record, record]}, default=str)
    malformed = {
        "bad-json": ("{not json", json.dumps({"predictions": [1]})),
        "bad-response": (json.dumps({"dataframe_records": [record]}, default=str), json.dumps({"error": "boom"})),
        "bad-count": (two_records, json.dumps({"predictions": [1]})),
        "bad-answer": (json.dumps({"dataframe_records": [record]}, default=str), json.dumps({"predictions": ["late"]})),
    }
    log_inference(
        [
            {"databricks_request_id": request_id, "request": request, "response": response}
            for request_id, (request, response) in malformed.items()
        ]
    )

    def warned(caplog) -> set[str]:
        return {r for r in malformed if any(r in m for m in caplog.messages)}

    # when: the labels job runs, then runs again
    with caplog.at_level(logging.WARNING, logger="jobs.labels"):
        first = labels.label(build_platform(ENV), as_of=date(2013, 3, 9))
        warned_first = warned(caplog)
        caplog.clear()
        again = labels.label(build_platform(ENV), as_of=date(2013, 3, 9))
        warned_again = warned(caplog)

    # then: each was warned about once, not on every run, and is recorded once with its reason and the time
    assert warned_first == set(malformed)
    assert warned_again == set()
    assert (first.served_rows, first.served_rejected) == (1, 4)
    assert (again.served_rows, again.served_rejected) == (0, 0)
    rejects = table(ENV.served_rejects_table).to_pandas().set_index("databricks_request_id")
    assert sorted(rejects.index) == sorted(malformed)
    assert rejects.loc["bad-json", "reason"].startswith("cannot be unpacked: JSONDecodeError")
    assert rejects.loc["bad-response", "reason"] == (
        "cannot be unpacked: ValueError: response body has no predictions list"
    )
    assert rejects.loc["bad-count", "reason"] == "2 records but 1 answers"
    assert rejects.loc["bad-answer", "reason"].startswith("cannot be unpacked: ValueError: invalid literal for int()")
    assert rejects["rejected_at"].notna().all() and rejects["request_time"].notna().all()
    # ... and the good request beside them was unpacked once
    served = table(ENV.served_table).to_pandas()
    assert (served["batch_id"] == f"req-{champion}-{key}-0").sum() == 1
    assert not served["batch_id"].isin(list(malformed)).any()


def test_a_labels_run_whose_task_ended_writes_nothing_in_either_of_its_two_threads(champion, tmp_path):
    from jobs import labels
    from local.adapters import RunEndedError, TaskContext, task_context

    # given: a request to unpack (one that cannot be: its reject is the served chain's write), and the run's task
    # ended (the runner timed it out)
    log_inference([{"databricks_request_id": "after-the-end", "request": "{not json", "response": "{}"}])
    rejects_before = version_of(ENV.served_rejects_table)
    task = TaskContext("run-ended", "labels", tmp_path)
    task.end("timed out", wait_seconds=1)

    # when: the labels job runs in that task
    def run() -> None:
        labels.label(build_platform(ENV), as_of=date(2013, 3, 9))

    with pytest.raises(RunEndedError, match="timed out"):
        task_context(task).run(run)

    # then: the thread that unpacks served requests worked for the task too: it was refused, nothing was written
    assert version_of(ENV.served_rejects_table) == rejects_before


def version_of(name: str) -> int | None:
    path = str(table_path(name))
    return DeltaTable(path).version() if DeltaTable.is_deltatable(path) else None


def test_shadow_rows_only_beside_a_challenger_only_the_champion_published_and_the_decision_recorded(champion):
    from jobs import online_decision, publish
    from jobs.promotion import promote

    platform = build_platform(ENV)
    registry = platform.registry
    # A version that passes validation takes the alias challenger; earlier tests made such versions champions.
    registry.delete_alias("challenger")
    shadow_name = ENV.shadow_predictions_table

    def shadow_rows_of(batch_id: str) -> pd.DataFrame:
        if not DeltaTable.is_deltatable(str(table_path(shadow_name))):
            return pd.DataFrame(columns=["batch_id"])
        rows = table(shadow_name).to_pandas()
        return rows[rows["batch_id"] == batch_id]

    # given no challenger: a batch writes no shadow row
    ok(batch_inference.main, "--start-date", "2013-03-26", "--end-date", "2013-03-26")
    assert shadow_rows_of("batch-2013-03-26-2013-03-26").empty

    # when a challenger exists: the batch and the stream score each row with it too, beside the champion
    challenger = register_challenger(platform)
    batch = batch_inference.score_batch(platform, date(2013, 3, 27), date(2013, 3, 28))
    before = {b for b in table(ENV.predictions_table).to_pandas()["batch_id"] if b.startswith("stream-")}
    land_rows(ENV, date(2013, 3, 29), date(2013, 3, 29))
    stream = streaming_inference.run_stream(platform, "available-now")

    # then: one shadow row per predicted row, same key and batch, the challenger's version beside the champion's
    assert (batch.shadow_version, batch.shadow_rows) == (challenger, batch.scored_rows)
    assert (stream.shadow_version, stream.shadow_rows) == (challenger, stream.scored_rows) and stream.scored_rows > 0
    predictions = table(ENV.predictions_table).to_pandas()
    shadow = table(shadow_name).to_pandas()
    streamed = {b for b in predictions["batch_id"] if b.startswith("stream-")} - before
    assert streamed
    for batch_id in ["batch-2013-03-27-2013-03-28", *streamed]:
        mine, theirs = shadow[shadow["batch_id"] == batch_id], predictions[predictions["batch_id"] == batch_id]
        key = sorted(map(tuple, theirs[list(FLIGHT_KEY)].astype(str).to_numpy()))
        assert sorted(map(tuple, mine[list(FLIGHT_KEY)].astype(str).to_numpy())) == key
        assert set(mine["model_version"]) <= {challenger} and set(mine["champion_version"]) <= {champion}
        assert set(theirs["model_version"]) <= {champion}
    assert list(shadow.columns) == [*FLIGHT_KEY, "prediction", "probability", *SHADOW_METADATA]
    # ... and only the champion's predictions are what publishing reads: the shadow rows never reach the store
    version = platform.tables.version(ENV.predictions_table)
    latest = publish.latest_per_key(publish.window(platform, ENV.predictions_table, version, None), ENV.model)
    published = {r["model_version"] for r in latest.select("model_version").distinct().collect()}
    assert champion in published and challenger not in published

    # when the flights are labelled and the decision runs (a small minimum sample: three days of flights)
    labels.label(platform, as_of=date(2013, 3, 30))
    small = dataclasses.replace(platform, env=ENV.replace(online_evaluation={"min_paired_rows": 100}))
    decision = online_decision.decide(small)

    # then: the test, its statistic, p-value, interval and sample are on the challenger's version
    pairs = online_decision.paired_rows(platform, champion, challenger)
    labelled_shadow = predictions[predictions["model_version"] == champion].merge(
        shadow[shadow["model_version"] == challenger], on=[*FLIGHT_KEY, "batch_id", "source"]
    )
    assert len(pairs) > 1000 and len(pairs) <= len(labelled_shadow)
    tags = registry.version_tags(ModelRef(MODEL, challenger))
    assert tags["online_decision"] == online_decision.DONE[decision.action]
    assert tags["online_test"] == "paired bootstrap of the ROC AUC difference (1000 resamples, seed 7)"
    assert (tags["online_sample"], tags["online_champion_version"]) == (str(len(pairs)), champion)
    low, high = (float(v) for v in tags["online_ci"].split(".."))
    assert low <= float(tags["online_statistic"]) <= high and 0 < float(tags["online_p_value"]) <= 0.5
    assert decision.reason.split(": ", 1)[1].startswith(f"paired bootstrap of the ROC AUC difference (1000 resamples, "
                                                        f"seed 7) on {len(pairs)} paired rows")  # fmt: skip

    # the champion and no challenger again, for the tests after this one
    if registry.alias_version(CHAMPION) != champion:
        promote(platform, ModelRef(MODEL, champion))
    registry.delete_alias("challenger")


def register_challenger(platform) -> str:
    """A second version, PASSED (validation disabled), holding the alias challenger beside the champion."""
    result = train.train(platform, date(2013, 1, 1), date(2013, 1, 20), 5000)
    ok(validate.main, "--model-uri", result.model.uri, "--run-mode", "disabled")
    assert platform.registry.alias_version("challenger") == result.model.version
    return result.model.version


def test_staging_folders_of_killed_downloads_are_removed_when_a_version_is_staged(champion):
    """A download killed with its task leaves its staging folder (its ``finally`` never ran): the next staging of a
    version of the model removes those made more than ``STALE_STAGING`` ago, and leaves a newer one, maybe a download
    under way, alone."""
    import os
    import shutil
    import time

    from jobs.scoring import STALE_STAGING, stage_model

    platform = build_platform(ENV)
    folder = Path(platform.work_dir) / "models" / MODEL
    shutil.rmtree(folder / champion, ignore_errors=True)
    # given: a killed download's folder, made long enough ago (the time is in its name; its mtime is now), another
    # named before the time was in the name (judged by its mtime), and one under way
    old = int(time.time() - STALE_STAGING.total_seconds() - 60)
    killed = folder / f".{champion}.staging-{old}-{'a' * 32}"
    (killed / "artifacts").mkdir(parents=True)
    (killed / "artifacts" / "model.pkl").write_bytes(b"half of a model")
    killed_before = folder / f".{champion}.staging-{'b' * 32}"
    killed_before.mkdir()
    os.utime(killed_before, (old, old))
    under_way = folder / f".{champion}.staging-{int(time.time()) - 60}-{'c' * 32}"
    under_way.mkdir()

    staged = stage_model(platform, ModelRef(MODEL, champion))

    assert (Path(staged) / "MLmodel").exists()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [under_way.name]
    shutil.rmtree(under_way)
