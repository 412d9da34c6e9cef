"""A full disk under the Delta writer, and local state files cut short (a monitor's state, the serving endpoint's
state, a workflow run's record, a task's values): a clear error naming what is wrong, or a safe recovery; never a
silent wrong result, never a half-written commit."""

from __future__ import annotations

import errno
import logging
from datetime import date
from pathlib import Path

import deltalake
import pytest
from deltalake import DeltaTable

from jobs import batch_inference
from local.files import StateFileError
from local.paths import table_path
from models.flight_delay.sources import source_frames
from spec.config import ENVIRONMENTS
from tests.faults.conftest import DEV_NAME, lost_and_doubled

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ENV = ENVIRONMENTS[DEV_NAME]
KEY = ("carrier", "flight", "origin", "dest", "time_hour")


def cut_short(path: Path) -> str:
    """Keep the first half of the file, as a writer that died (or a disk that filled) half-way leaves it."""
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return text


def batch_rows(day: str) -> list[tuple]:
    """The keys of the predictions of the batch that scored ``day``."""
    import pyarrow.compute as pc

    rows = DeltaTable(str(table_path(ENV.predictions_table))).to_pyarrow_table()
    mine = rows.filter(pc.equal(rows["batch_id"], f"batch-{day}-{day}"))
    return list(zip(*(mine.column(c).to_pylist() for c in KEY), strict=True))


def scheduled(day: str) -> list[tuple]:
    flights, _ = source_frames(date.fromisoformat(day), date.fromisoformat(day))
    return list(zip(*(flights[c].tolist() for c in KEY), strict=True))


def test_a_full_disk_while_a_batch_writes_fails_clearly_commits_nothing_and_the_rerun_completes(
    champion, fault, monkeypatch, caplog
):
    row = fault("full disk under the Delta writer (batch inference)")
    # given: the predictions table holds a scored day
    assert batch_inference.main(["--env", ENV.name, "--start-date", "2013-01-23", "--end-date", "2013-01-23"]) == 0
    path = table_path(ENV.predictions_table)
    version, rows = DeltaTable(str(path)).version(), DeltaTable(str(path)).to_pyarrow_table().num_rows
    real = deltalake.write_deltalake
    full_disk = []

    def write(table_or_uri, data, *args, **kwargs):
        if str(table_or_uri) == str(path) and not full_disk:
            # the disk fills while the data file is written: half a file is left, the commit never happens
            import pyarrow.parquet as pq

            stray = path / "part-00000-fault-injected.parquet"
            pq.write_table(data.slice(0, max(1, data.num_rows // 2)), stray)
            stray.write_bytes(stray.read_bytes()[:100])
            full_disk.append(stray)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table_or_uri, data, *args, **kwargs)

    # when: the next day's batch runs out of disk
    monkeypatch.setattr(deltalake, "write_deltalake", write)
    with caplog.at_level(logging.ERROR, logger="jobs"):
        code = batch_inference.main(["--env", ENV.name, "--start-date", "2013-01-24", "--end-date", "2013-01-24"])
    if full_disk:
        row.injected()

    # then: a clear message, and the table as it was (its log never saw the half-written file)
    expected_message = (
        f"mlops-score-batch failed: writing table {ENV.predictions_table} (replace where "
        "batch_id = 'batch-2013-01-24-2013-01-24') failed: [Errno 28] No space left on device; nothing was "
        f"committed (it stays at version {version}); run the step again once the cause is fixed"
    )
    clear = code == 1 and expected_message in caplog.messages
    unchanged = DeltaTable(str(path)).version() == version and DeltaTable(str(path)).to_pyarrow_table().num_rows == rows

    # when: the disk has room again and the batch runs again
    monkeypatch.setattr(deltalake, "write_deltalake", real)
    rerun = batch_inference.main(["--env", ENV.name, "--start-date", "2013-01-24", "--end-date", "2013-01-24"])
    lost, doubled = lost_and_doubled(scheduled("2013-01-24"), batch_rows("2013-01-24"))
    lost_0, doubled_0 = lost_and_doubled(scheduled("2013-01-23"), batch_rows("2013-01-23"))
    row.record(survived=clear and unchanged and rerun == 0, lost=lost + lost_0, doubled=doubled + doubled_0,
               note=f"table stayed at version {version} with {rows} rows")  # fmt: skip
    assert clear, caplog.messages
    assert unchanged
    assert rerun == 0 and (lost, doubled, lost_0, doubled_0) == (0, 0, 0, 0)


def test_a_monitor_state_cut_short_is_a_clear_error_naming_the_file(champion, fault):
    from local.monitor import refresh_monitor, state_path
    from spec.monitoring import monitored_tables

    row = fault("corrupt state file: monitor state (cut short)")
    (monitored,) = [m for m in monitored_tables(ENV) if m.table == ENV.predictions_table]
    refresh_monitor(ENV, monitored)
    path = state_path(monitored)
    profile = str(table_path(monitored.profile_metrics_table))
    before = DeltaTable(profile).version()
    cut_short(path)
    row.injected()

    with pytest.raises(StateFileError) as failed:
        refresh_monitor(ENV, monitored)

    message = str(failed.value)
    clear = f"the state of the monitor on {monitored.table} at {path} is not valid JSON" in message
    untouched = DeltaTable(profile).version() == before
    row.record(survived=clear and untouched, note="refused, naming the file; metric tables untouched")
    assert clear, message
    assert untouched
    # moved aside, as the message says: the next refresh recomputes every window
    path.rename(path.with_suffix(".damaged"))
    assert refresh_monitor(ENV, monitored).written


def test_a_serving_state_cut_short_keeps_the_live_config_serving_and_says_why(champion, fault):
    from local.paths import mlflow_tracking_uri, mlops_home
    from local.serving.gateway import mlflow_model_loader
    from local.serving.runtime import EndpointRuntime
    from local.serving.state import state_path

    row = fault("corrupt state file: serving endpoint state (cut short)")
    # given: the gateway's runtime serving the champion from the state file the deploy job wrote
    path = state_path(mlops_home() / "serving", ENV.name, ENV.endpoint_name)
    runtime = EndpointRuntime(ENV.name, ENV.endpoint_name, path, mlflow_model_loader(mlflow_tracking_uri()))
    assert runtime.reload("start").ok
    live = runtime.live
    whole = cut_short(path)
    row.injected()
    try:
        # when: the watcher reads the file cut short
        result = runtime.reload("state file changed")
    finally:
        path.write_text(whole)

    # then: the update is refused, naming the file; the champion keeps serving
    clear = not result.ok and str(path) in result.message and "not valid JSON" in result.message
    row.record(survived=clear and runtime.live is live, note="the live config keeps serving")
    assert clear, result.message
    assert runtime.live is live and runtime.last_error == result.message


def test_a_run_record_cut_short_is_a_clear_error_naming_the_file(champion, fault):
    from local.paths import runs_dir
    from local.runner import load_run

    row = fault("corrupt state file: workflow run record run.json (cut short)")
    run_id = champion.run.run_id
    path = runs_dir() / run_id / "run.json"
    whole = cut_short(path)
    row.injected()
    try:
        with pytest.raises(StateFileError) as failed:
            load_run(run_id)
    finally:
        path.write_text(whole)
    clear = f"the record of run {run_id} at {path} is not valid JSON" in str(failed.value)
    row.record(survived=clear, note="refused, naming the file")
    assert clear, str(failed.value)
    assert load_run(run_id).status == "SUCCESS"


def test_task_values_cut_short_fail_their_task_and_no_dependant_runs_on_them(fault, tmp_path):
    from local.adapters import current_task
    from local.runner import LocalRunner
    from spec.workflows import Dependency, JobGraph, Task, WheelTask

    row = fault("corrupt state file: task values (cut short)")
    # given: a graph whose first task leaves its task values file cut short, and a second task that reads them
    graph = JobGraph(
        name="values",
        description="a task hands a value to the next",
        tasks=(
            Task("produce", WheelTask("produce", ("--env", ENV.name))),
            Task(
                "consume",
                WheelTask("consume", ("--threshold", "{{tasks.produce.values.threshold}}")),
                depends_on=(Dependency("produce"),),
            ),
        ),
    )
    called = []

    def executor(entry_point: str, argv: list[str]) -> int:
        called.append((entry_point, argv))
        if entry_point == "produce":
            current_task().values_file.parent.mkdir(parents=True, exist_ok=True)
            current_task().values_file.write_text('{"threshold": 0.')  # a writer that died half-way
            row.injected()
        return 0

    # when
    run = LocalRunner(ENV, graphs={"values": graph}, executor=executor, home=tmp_path).run("values")

    # then: the producer fails, naming its file; the consumer never runs on a value nobody wrote
    produce, consume = run.tasks["produce"], run.tasks["consume"]
    clear = produce.status == "FAILED" and "the task values of produce at" in (produce.error or "")
    row.record(survived=clear and consume.status == "UPSTREAM_FAILED" and len(called) == 1,
               note="the task fails naming the file; its dependant does not run")  # fmt: skip
    assert clear, produce.error
    assert (run.status, consume.status, [c[0] for c in called]) == ("FAILED", "UPSTREAM_FAILED", ["produce"])
