"""The local inference table: every request the gateway answers, appended to a Delta table in batches.

Columns follow the Databricks AI Gateway payload table where the meaning is the same (``databricks_request_id``,
``client_request_id``, ``request_date``, ``request_time``, ``status_code``, ``execution_duration_ms``, ``request``,
``response``) plus what a local reader needs without joining the endpoint config (endpoint, served entity, model
name and version). ``execution_duration_ms`` is a double here: local predictions take a few milliseconds.

Requests are queued by the serving threads and written by one background thread, every ``flush_interval`` seconds
or ``batch_size`` rows, whichever comes first. ``close()`` drains the queue; a batch that cannot be written after
retries is kept in a JSON-lines file next to the table, so no row is silently lost.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
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

    def close(self, timeout: float = 60.0) -> None:
        """Write everything queued so far, then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._thread is not None:
                self._queue.put(_STOP)
        if self._thread is None:
            self._drain_and_write()
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("inference log writer did not finish within %.0fs; rows may still be queued", timeout)

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
        if not rows:
            return
        from deltalake import write_deltalake

        table = pa.Table.from_pylist([{c: row.get(c) for c in COLUMNS} for row in rows], schema=SCHEMA)
        error: Exception | None = None
        for attempt in range(1, self._retries + 1):
            try:
                self.table_dir.parent.mkdir(parents=True, exist_ok=True)
                write_deltalake(str(self.table_dir), table, mode="append")
            except Exception as e:  # any failure is retried, then spilled: never dropped
                error = e
                logger.warning("inference log: writing %d rows failed (attempt %d): %s", len(rows), attempt, e)
                time.sleep(0.2 * attempt)
                continue
            with self._lock:
                self._written += len(rows)
            logger.debug("inference log: appended %d rows to %s", len(rows), self.table_dir)
            return
        spill = self.table_dir.parent / f"{self.table_dir.name}.unwritten-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.jsonl"
        with spill.open("w", encoding="utf-8") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row, default=str) + "\n")
        with self._lock:
            self._spilled += len(rows)
        logger.error(
            "inference log: %d rows could not be written to %s (%s); kept in %s",
            len(rows),
            self.table_dir,
            error,
            spill,
        )
