"""The local inference table: every request the gateway answers, appended to a Delta table in batches.

Columns follow the Databricks AI Gateway payload table where the meaning is the same (``databricks_request_id``,
``client_request_id``, ``request_date``, ``request_time``, ``status_code``, ``execution_duration_ms``, ``request``,
``response``) plus what a local reader needs without joining the endpoint config (endpoint, served entity, model
name and version). ``execution_duration_ms`` is a double here: local predictions take a few milliseconds.

Requests are queued by the serving threads and written by one background thread, every ``flush_interval`` seconds
or ``batch_size`` rows, whichever comes first. ``close()`` drains the queue; a batch that cannot be written after
retries, and a row that does not fit the schema, is kept in a JSON-lines file next to the table (an error names the
file and the row count), so no row is silently lost. A failing batch never stops the writer: it goes on with the next.
A retry never writes a batch twice: each commit carries the writer's id and the batch's number, and a write that
failed after its commit landed is found in the table's log instead of being appended again.
``close()`` returns how many rows are not in the table (spilled, or lost because even the spill file could not be
written); the gateway logs a non-zero count as an error.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

logger = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        pa.field("databricks_request_id", pa.string(), nullable=False),
        pa.field("client_request_id", pa.string()),
        pa.field("request_date", pa.date32(), nullable=False),
        pa.field("request_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("endpoint_name", pa.string(), nullable=False),
        pa.field("served_entity_name", pa.string()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("status_code", pa.int32(), nullable=False),
        pa.field("execution_duration_ms", pa.float64(), nullable=False),
        pa.field("request", pa.string()),
        pa.field("response", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)

_STOP = object()


class InferenceLogger:
    """Appends rows (mappings with the ``SCHEMA`` columns) to the Delta table at ``table_dir``."""

    def __init__(
        self,
        table_dir: Path,
        *,
        batch_size: int = 512,
        flush_interval: float = 1.0,
        write_retries: int = 3,
    ) -> None:
        if batch_size < 1 or flush_interval <= 0:
            raise ValueError("batch_size must be >= 1 and flush_interval > 0")
        self.table_dir = table_dir
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retries = write_retries
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._accepted = 0
        self._written = 0
        self._spilled = 0
        self._closed = False
        # Each batch's commit carries (writer id, batch number): a retry finds out whether the failed write landed.
        self._writer_id = f"inference-log-{uuid.uuid4().hex}"
        self._batches = 0
        self._append_lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
        self._thread.start()

    def log(self, row: Mapping[str, Any]) -> None:
        """Queue one row; never blocks on I/O. Rows logged after ``close()`` are written synchronously."""
        # Checking ``_closed`` and queueing under one lock, which ``close()`` holds while it queues the stop
        # sentinel: a row is either queued before the sentinel (the writer drains it) or sees ``_closed``.
        with self._lock:
            self._accepted += 1
            closed = self._closed
            if not closed:
                self._queue.put(row)  # SimpleQueue.put never blocks
        if closed:
            self._write([dict(row)])

    def close(self, timeout: float = 60.0) -> int:
        """Write everything queued so far, then stop the writer thread. Returns how many of the rows accepted so far
        are not in the table: spilled to a file beside it, lost (an error said why), or still queued (the writer
        did not finish within ``timeout``)."""
        with self._lock:
            already = self._closed
            self._closed = True
            if not already and self._thread is not None:
                self._queue.put(_STOP)
        if already:
            return self._unwritten()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("inference log writer did not finish within %.0fs; rows may still be queued", timeout)
                return self._unwritten()
        # The writer has stopped (or never ran): whatever it left in the queue is written here. After a normal stop
        # nothing is left; a writer that died of a bug leaves its queue, which is not lost with it.
        self._drain_and_write()
        return self._unwritten()

    def _unwritten(self) -> int:
        with self._lock:
            return self._accepted - self._written

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "accepted": self._accepted,
                "written": self._written,
                "spilled": self._spilled,
                "pending": self._accepted - self._written - self._spilled,
            }

    def _run(self) -> None:
        batch: list[Mapping[str, Any]] = []
        deadline = time.monotonic() + self._flush_interval
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            stopping = item is _STOP
            if item is not None and not stopping:
                batch.append(item)
                rows, stopping = self._drain(self._batch_size - len(batch))
                batch.extend(rows)
            if stopping:
                # Nothing follows the sentinel: close() queues it under the lock, after which log() writes itself.
                self._write(batch)
                return
            if len(batch) >= self._batch_size or time.monotonic() >= deadline:
                self._write(batch)
                batch = []
                deadline = time.monotonic() + self._flush_interval

    def _drain(self, limit: int | None = None) -> tuple[list[Mapping[str, Any]], bool]:
        """Up to ``limit`` queued rows without waiting, and whether the stop sentinel came next (it is consumed)."""
        rows: list[Mapping[str, Any]] = []
        while limit is None or len(rows) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return rows, True
            rows.append(item)
        return rows, False

    def _drain_and_write(self) -> None:
        self._write(self._drain()[0])

    def _write(self, rows: list[Mapping[str, Any]]) -> None:
        """Append ``rows``, retrying; spill what cannot be converted or appended. Never raises: the writer thread
        must outlive any batch (a row neither written nor spilled stays pending, and ``close()`` reports it)."""
        if not rows:
            return
        try:
            table, rejected = self._convert(rows)
        except Exception as e:  # a bug in the conversion's own fallback: the batch is kept whole
            table, rejected = None, [(row, e) for row in rows]
        if rejected:
            reasons = sorted({f"{type(e).__name__}: {e}" for _, e in rejected})
            self._spill([row for row, _ in rejected], "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else ""))
        if table is not None:
            self._append(table)

    def _convert(self, rows: list[Mapping[str, Any]]) -> tuple[pa.Table | None, list[tuple[Any, Exception]]]:
        """The rows as an Arrow table of ``SCHEMA``, and the rows that do not convert with the reason. One row
        that does not fit (a value of another type, not a mapping) must not take its batch's other rows with it."""
        try:
            return pa.Table.from_pylist([_record(row) for row in rows], schema=SCHEMA), []
        except Exception:
            logger.debug("inference log: a batch of %d rows does not convert; converting it row by row", len(rows))
        tables: list[pa.Table] = []
        rejected: list[tuple[Any, Exception]] = []
        for row in rows:
            try:
                tables.append(pa.Table.from_pylist([_record(row)], schema=SCHEMA))
            except Exception as e:
                rejected.append((row, e))
        return (pa.concat_tables(tables) if tables else None), rejected

    def _append(self, table: pa.Table) -> None:
        """Append ``table`` as one commit that carries this writer's id and the batch's number (a Delta transaction
        identifier, as the streaming job's appends do). A write can fail after its commit landed (a step of delta-rs
        after the commit, a lost answer from the file system): before a retry the table's log says whether the batch
        is in, so a retry never appends it a second time. Appends of one writer are made one at a time, in order."""
        from deltalake import CommitProperties, Transaction, write_deltalake

        with self._append_lock:
            self._batches += 1
            number = self._batches
            properties = CommitProperties(app_transactions=[Transaction(app_id=self._writer_id, version=number)])
            error: Exception | None = None
            for attempt in range(1, self._retries + 1):
                if attempt > 1 and self._committed(number):
                    logger.warning("inference log: the failed write of %d rows had committed; not retried",
                                   table.num_rows)  # fmt: skip
                    break
                try:
                    self.table_dir.parent.mkdir(parents=True, exist_ok=True)
                    write_deltalake(str(self.table_dir), table, mode="append", commit_properties=properties)
                except Exception as e:  # any failure is retried, then spilled: never dropped
                    error = e
                    logger.warning("inference log: writing %d rows failed (attempt %d): %s", table.num_rows, attempt, e)
                    time.sleep(0.2 * attempt)
                    continue
                break
            else:
                if not self._committed(number):
                    self._spill(table.to_pylist(), f"writing to {self.table_dir} failed {self._retries} times: {error}")
                    return
        with self._lock:
            self._written += table.num_rows
        logger.debug("inference log: appended %d rows to %s", table.num_rows, self.table_dir)

    def _committed(self, number: int) -> bool:
        """Whether this writer's batch ``number`` is in the table (its log records the writer's latest batch)."""
        from deltalake import DeltaTable

        try:
            if not DeltaTable.is_deltatable(str(self.table_dir)):
                return False
            done = DeltaTable(str(self.table_dir)).transaction_version(self._writer_id)
        except Exception as e:  # the table cannot be read either: the batch is taken as not written
            logger.warning("inference log: cannot read %s to check a failed write: %s", self.table_dir, e)
            return False
        return done is not None and done >= number

    def _spill(self, rows: list[Any], reason: str) -> None:
        """Keep ``rows`` in a JSON-lines file of their own beside the table, and say so; if even that fails, say that
        they are lost (they stay counted as pending)."""
        name = f"{self.table_dir.name}.unwritten-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
        spill = self.table_dir.parent / name
        try:
            spill.parent.mkdir(parents=True, exist_ok=True)
            with spill.open("x", encoding="utf-8") as f:
                for row in rows:
                    f.write(_json_line(row) + "\n")
        except Exception as e:
            logger.error(
                "inference log: %d rows could not be kept: not in %s (%s), and the spill file %s failed too (%s)",
                len(rows),
                self.table_dir,
                reason,
                spill,
                e,
            )
            return
        with self._lock:
            self._spilled += len(rows)
        logger.error("inference log: %d rows could not be written to %s (%s); kept in %s",
                     len(rows), self.table_dir, reason, spill)  # fmt: skip


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    return {c: row.get(c) for c in COLUMNS}


def _json_line(row: Any) -> str:
    """The row as one JSON line; values JSON lacks as their text, and anything else as its ``repr``."""
    try:
        return json.dumps(dict(row), default=str)
    except Exception:
        return json.dumps({"unreadable_row": repr(row)})
