"""The local runtime's file primitives, one of each: an atomic replace and an exclusive lock.

Every local state file (monitor state, serving state, runs, task values, landed files) is written through
``replacing``, so a reader sees the old file or the new one, never half of one, and a crash leaves no partial file
under the real name. Every lock (a monitor's refresh, an environment's retraining, the demo) is ``exclusive_lock``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spec.errors import MlopsError

logger = logging.getLogger(__name__)


class StateFileError(MlopsError):
    """A local state file cannot be read (not JSON: written half by something else, or damaged)."""


def read_json(path: Path, what: str) -> object:
    """The JSON document at ``path`` (``FileNotFoundError`` when there is none); a ``StateFileError`` naming the
    file and ``what`` it holds when it is not JSON, never a bare decoding error or a guess."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StateFileError(
            f"{what} at {path} is not valid JSON ({error}; {len(text)} bytes): it was cut short or damaged. "
            "Move it aside to start that state afresh"
        ) from error


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (unique, so concurrent writers never share it) for the block to write; when
    the block ends without an error it is flushed to disk and renamed over ``path``, else it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomically(path: Path, document: object, **dumps: Any) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    options = {"indent": 2, "sort_keys": True, **dumps}
    write_text_atomically(path, json.dumps(document, **options))


class LockHeld(MlopsError):
    """The lock is held by another holder and the caller asked not to wait; ``holder`` says who, as far as known."""

    def __init__(self, path: Path, what: str, holder: Mapping[str, Any]) -> None:
        self.path = path
        self.holder = dict(holder)
        who = ", ".join(f"{k} {v}" for k, v in self.holder.items()) or "holder unknown"
        super().__init__(f"{what} is already in progress ({who}; lock {path})")


def lock_holder(path: Path) -> dict[str, Any]:
    """Who the lock file says holds it: pid, host, since (empty when free or never taken)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return {}
    if not text:
        return {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"file": text[:200]}
    return holder if isinstance(holder, dict) else {"file": text[:200]}


def _holder_once_written(path: Path, patience: float = 1.0) -> dict[str, Any]:
    """The holder, waiting briefly for it to write its name: a holder writes it right after taking the lock, so a
    caller refused in between would otherwise say "holder unknown"."""
    deadline = time.monotonic() + patience
    while not (holder := lock_holder(path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder


@contextmanager
def exclusive_lock(
    path: Path, what: str, *, wait: bool = True, clock: Any = lambda: datetime.now(UTC)
) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` while the block runs.

    If another holder has it: wait for it (``wait=True``; ``what``, say "the refresh of the monitor on x.y.z", is
    logged) or raise ``LockHeld`` naming the holder. The kernel releases the lock when its holder ends, however it
    ends, so a crashed holder never blocks the next one. A flock belongs to the open file, so two threads of one
    process exclude each other as two processes do. The file says who holds it (pid, host, since) and is emptied on
    release, never deleted: a deleted lock file could be locked by one holder while another creates and locks a new
    one under the same name. A file still naming a holder when the lock is free was left by a holder that crashed:
    it is logged and taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockHeld(path, what, _holder_once_written(path)) from None
            logger.info("waiting for %s to finish elsewhere (lock %s)", what, path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        stale = lock_holder(path)
        if stale:
            logger.warning("lock of %s left by a holder that ended without releasing it (%s): taken over", what, stale)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": clock().isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
