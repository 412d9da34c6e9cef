"""The local runtime's one atomic replace and one lock (local.files)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from local.files import LockHeld, exclusive_lock, lock_holder, replacing, write_json_atomically
from spec.errors import MlopsError


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomically(target, {"version": 1})
    with pytest.raises(OSError, match="disk full"):
        with replacing(target) as tmp:
            tmp.write_text('{"version": 2, "half')
            raise OSError(28, "disk full")
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_two_writers_of_one_file_never_share_a_temporary_name(tmp_path):
    target = tmp_path / "state.json"
    with replacing(target) as first, replacing(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer block ends last: its content is the file's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_held_lock_refuses_a_caller_that_will_not_wait_and_names_the_holder(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    with exclusive_lock(path, "the refresh of x"):
        assert lock_holder(path)["pid"] > 0
        with pytest.raises(LockHeld, match=r"the refresh of x is already in progress \(pid \d+") as refused:
            with exclusive_lock(path, "the refresh of x", wait=False):
                pytest.fail("a second holder entered the lock")
        assert isinstance(refused.value, MlopsError) and refused.value.path == path
    assert lock_holder(path) == {}, "a released lock names no holder"


def test_a_waiting_caller_enters_once_the_holder_leaves(tmp_path):
    path, order = tmp_path / "x.lock", []
    entered = threading.Event()

    def second() -> None:
        with exclusive_lock(path, "x"):
            order.append("second")

    with exclusive_lock(path, "x"):
        waiter = threading.Thread(target=second)
        waiter.start()
        entered.wait(0.3)
        order.append("first")
    waiter.join(10)
    assert order == ["first", "second"]


def test_a_lock_file_left_by_a_crashed_holder_is_taken_over(tmp_path, caplog):
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"pid": 999999, "host": "gone", "since": "2013-01-01T00:00:00+00:00"}))
    with exclusive_lock(path, "a retraining of dev", wait=False):
        assert lock_holder(path)["host"] != "gone"
    assert "left by a holder that ended without releasing it" in caplog.text
    assert Path(path).exists(), "the lock file is never deleted"
