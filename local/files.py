"""Small file helpers for the local adapters."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def write_json_atomically(path: Path, document: object) -> None:
    """Write then rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` while the block runs, waiting for its holder if another has it.

    The kernel releases the lock when its holder ends, however it ends, so a crashed holder never blocks the next
    one. A flock belongs to the open file, so two threads of one process exclude each other as two processes do. The
    file is created once and never deleted: a deleted lock file could be locked by one holder while another creates
    and locks a new one under the same name. ``what`` (say, "the refresh of the monitor on x.y.z") is logged when the
    lock has to be waited for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for %s to finish elsewhere (lock %s)", what, path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
