"""Adaptive micro-batching: requests that arrive while a model is busy are scored together in one ``predict``.

A pyfunc ``predict`` has a fixed cost (schema enforcement, pipeline dispatch) that dwarfs the per-row cost for
small inputs: for the first model this project served, 8 rows take about as long as 1. Requests combine without a worker
thread: the request that finds the model idle predicts in its own thread (no hand-off, so a lone request costs what
a direct ``predict`` costs); requests that arrive meanwhile queue up, and when the running ``predict`` ends the
first of them is woken to score everything queued (up to ``max_rows`` rows) in one call, and so on. No request
waits for a batch to fill, and none runs more than the batches up to and including its own.

Only valid for models whose output for a row does not depend on the other rows (true of scikit-learn estimators);
the gateway disables it with ``max_rows=0``. If a batched ``predict`` fails or its output cannot be split by rows,
each request is scored on its own, so one bad request never fails the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


class _Item:
    __slots__ = ("frame", "columns", "done", "result", "error", "finished")

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = tuple(frame.columns)  # read here, in the request's thread, not under the batcher's lock
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False


def _split(raw: Any, sizes: list[int]) -> list[Any] | None:
    """``raw`` cut into consecutive pieces of ``sizes`` rows, or None when it is not row-aligned."""
    total = sum(sizes)
    if isinstance(raw, np.ndarray | pd.DataFrame | pd.Series | list) and len(raw) == total:
        pieces, start = [], 0
        for size in sizes:
            if isinstance(raw, pd.DataFrame | pd.Series):
                pieces.append(raw.iloc[start : start + size].reset_index(drop=True))
            else:
                pieces.append(raw[start : start + size])
            start += size
        return pieces
    return None


class MicroBatcher:
    def __init__(self, predict: Callable[[Any], Any], *, max_rows: int = 64) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self._predict = predict
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._queue: list[_Item] = []
        self._busy = False

    def predict(self, frame: pd.DataFrame) -> Any:
        """``predict(frame)``, possibly together with other requests' frames; raises what ``predict`` raised."""
        item = _Item(frame)
        with self._lock:
            self._queue.append(item)
            lead = not self._busy
            self._busy = True
        if not lead:
            item.done.wait()
        if not item.finished:  # this thread leads (first, or woken as successor): score up to its own request
            try:
                while not item.finished:
                    with self._lock:
                        batch = self._take()
                    self._run(batch)
            finally:
                with self._lock:
                    if self._queue:
                        self._queue[0].done.set()  # the successor leads from here
                    else:
                        self._busy = False
        if item.error is not None:
            raise item.error
        return item.result

    def _take(self) -> list[_Item]:
        """The queue's head and the requests behind it with the same columns, up to ``max_rows`` rows."""
        columns = self._queue[0].columns
        batch, rest, rows = [], [], 0
        for item in self._queue:
            if item.columns == columns and (not batch or rows + len(item.frame) <= self._max_rows):
                batch.append(item)
                rows += len(item.frame)
            else:
                rest.append(item)
        self._queue = rest
        return batch

    def _run(self, batch: list[_Item]) -> None:
        pieces = None
        if len(batch) > 1:
            try:
                raw = self._predict(pd.concat([i.frame for i in batch], ignore_index=True))
                pieces = _split(raw, [len(i.frame) for i in batch])
            except Exception:  # some request in the batch is bad: score each alone so only that one fails
                pieces = None
        if pieces is None:
            pieces = []
            for item in batch:
                try:
                    pieces.append(self._predict(item.frame))
                except Exception as e:
                    item.error = e
                    pieces.append(None)
        for item, piece in zip(batch, pieces, strict=True):
            item.result = piece
            item.finished = True
            item.done.set()
