"""The serving gateway's inference-log writer (local/serving/inference_log.py) when its Delta writes fail: every
request the gateway answered ends in the table or in a spill file beside it that an error names, once; none is
lost, none is written twice, and ``close()`` counts what is not in the table."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import deltalake
import pytest
from deltalake import DeltaTable

from local.serving.inference_log import InferenceLogger
from tests.faults.conftest import lost_and_doubled

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ROWS = 60


def request_row(i: int) -> dict:
    now = datetime.now(UTC)
    return {
        "databricks_request_id": f"req-{i:03d}",
        "client_request_id": None,
        "request_date": now.date(),
        "request_time": now,
        "endpoint_name": "flight-delay",
        "served_entity_name": "champion",
        "model_name": "dev.ml.flight_delay",
        "model_version": "1",
        "status_code": 200,
        "execution_duration_ms": 2.0,
        "request": json.dumps({"dataframe_records": [{"carrier": "UA"}]}),
        "response": json.dumps({"predictions": [0]}),
    }


def where_rows_went(table_dir: Path) -> tuple[list[str], list[str]]:
    """Request ids in the table, and in the spill files beside it."""
    in_table = []
    if DeltaTable.is_deltatable(str(table_dir)):
        in_table = DeltaTable(str(table_dir)).to_pyarrow_table(columns=["databricks_request_id"]).column(0).to_pylist()
    spilled = [
        json.loads(line)["databricks_request_id"]
        for spill in sorted(table_dir.parent.glob(f"{table_dir.name}.unwritten-*.jsonl"))
        for line in spill.read_text().splitlines()
    ]
    return in_table, spilled


def failing_writes(monkeypatch, fail: Callable[[int], str | None]) -> list[str]:
    """delta-rs' ``write_deltalake`` as the writer sees it, failing where ``fail(call number)`` says: "before" (the
    disk is full: nothing committed) or "after" (the commit landed, then the call failed: a post-commit step)."""
    real = deltalake.write_deltalake
    calls: list[str] = []

    def write(*args, **kwargs):
        calls.append(fail(len(calls) + 1) or "ok")
        if calls[-1] == "before":
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        result = real(*args, **kwargs)
        if calls[-1] == "after":
            raise OSError(errno.ENOSPC, "No space left on device (injected, after the commit)")
        return result

    monkeypatch.setattr(deltalake, "write_deltalake", write)
    return calls


def serve(log: InferenceLogger, rows: int) -> None:
    log.start()
    for i in range(rows):
        log.log(request_row(i))


def test_a_writer_whose_disk_is_full_spills_the_rows_and_says_so_and_loses_none(tmp_path, monkeypatch, fault, caplog):
    row = fault("inference-log writer: Delta append fails (disk full)")
    # given: the table's appends fail for the second batch and all its retries (the disk is full), then work again
    calls = failing_writes(monkeypatch, lambda n: "before" if 2 <= n <= 4 else None)
    table_dir = tmp_path / "warehouse" / "payload"
    log = InferenceLogger(table_dir, batch_size=20, flush_interval=0.05, write_retries=3)

    # when: the gateway logs 60 requests and shuts down
    serve(log, ROWS)
    unwritten = log.close(timeout=30)

    # then: the failed batch is in a spill file an error names, the rest in the table, each row once
    if "before" in calls:
        row.injected()
    in_table, spilled = where_rows_went(table_dir)
    lost, doubled = lost_and_doubled([r["databricks_request_id"] for r in map(request_row, range(ROWS))],
                                     in_table + spilled)  # fmt: skip
    stats = log.stats()
    row.record(survived=unwritten == len(spilled) > 0 and stats["pending"] == 0, lost=lost, doubled=doubled,
               note=f"{len(spilled)} rows spilled and reported by close()")  # fmt: skip
    assert calls.count("before") == 3
    assert (lost, doubled) == (0, 0)
    assert unwritten == len(spilled) == stats["spilled"] > 0 and stats["pending"] == 0
    assert any("could not be written" in m and "kept in" in m for m in caplog.messages)


def test_a_write_that_committed_and_then_failed_is_not_written_twice(tmp_path, monkeypatch, fault):
    row = fault("inference-log writer: append commits, then the call fails")
    # given: the second append commits its rows and then fails (a step after the commit: a checkpoint, a cleanup)
    calls = failing_writes(monkeypatch, lambda n: "after" if n == 2 else None)
    table_dir = tmp_path / "warehouse" / "payload"
    log = InferenceLogger(table_dir, batch_size=20, flush_interval=0.05, write_retries=3)

    # when
    serve(log, ROWS)
    unwritten = log.close(timeout=30)

    # then: the retry finds its rows committed and does not append them again
    if "after" in calls:
        row.injected()
    in_table, spilled = where_rows_went(table_dir)
    lost, doubled = lost_and_doubled([r["databricks_request_id"] for r in map(request_row, range(ROWS))],
                                     in_table + spilled)  # fmt: skip
    row.record(survived=unwritten == 0, lost=lost, doubled=doubled, note=f"{len(in_table)} rows in the table")
    assert "after" in calls
    assert (lost, doubled) == (0, 0)
    assert unwritten == 0 and spilled == []
