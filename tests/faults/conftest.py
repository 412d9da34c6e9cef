"""The fault-injection suite's shared state: one MLOPS_HOME for the session with a champion trained in it (by a
model workflow that is first killed half-way, then run again: that is the suite's first fault), the report every
fault test adds its row to, and helpers to run a step in a process that is killed in the middle.

The report (``fault-report.txt`` in pytest's base temporary directory, or where ``MLOPS_FAULT_REPORT`` says; `make
bench-faults` prints it) has one line per fault: whether it was injected, whether the step survived it, and the rows
lost and doubled, counted by key in the real tables after the re-run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import _OUTSIDE_STATE
from tests.faults.killed import WARM_ENV

ROOT = Path(__file__).resolve().parents[2]
REPORT_ENV = "MLOPS_FAULT_REPORT"
KILL_TIMEOUT_SECONDS = 300


@dataclass
class FaultRow:
    fault: str
    injected: bool = False
    survived: bool = False
    lost: int | None = None
    doubled: int | None = None
    note: str = ""

    def line(self) -> str:
        def count(value: int | None) -> str:
            return "-" if value is None else str(value)

        yes = {True: "yes", False: "no"}
        return (
            f"{self.fault:<68} injected={yes[self.injected]:<3} survived={yes[self.survived]:<3} "
            f"lost={count(self.lost):<4} doubled={count(self.doubled):<4} {self.note}"
        ).rstrip()


class FaultRecorder:
    """What one test records about its fault. ``survived`` is what the test saw; a test that fails afterwards
    turns it into "no" (the teardown knows)."""

    def __init__(self, rows: list[FaultRow], name: str) -> None:
        self.row = FaultRow(name)
        rows.append(self.row)

    def injected(self) -> None:
        self.row.injected = True

    def record(self, *, survived: bool, lost: int | None = None, doubled: int | None = None, note: str = "") -> None:
        self.row.survived, self.row.lost, self.row.doubled, self.row.note = survived, lost, doubled, note


def report_path(base: Path) -> Path:
    return Path(os.environ.get(REPORT_ENV) or base / "fault-report.txt")


@pytest.fixture(scope="session")
def fault_rows(tmp_path_factory) -> Iterator[list[FaultRow]]:
    rows: list[FaultRow] = []
    yield rows
    path = report_path(tmp_path_factory.getbasetemp())
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"{'fault':<68} injected     survived     lost      doubled"
    path.write_text("\n".join([header, *(row.line() for row in rows)]) + "\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"fault_{report.when}", report)
    return report


@pytest.fixture
def fault(request, fault_rows) -> Iterator[Callable[[str], FaultRecorder]]:
    """``fault(name)``: a new row of the report for a fault this test injects."""
    recorders: list[FaultRecorder] = []

    def start(name: str) -> FaultRecorder:
        recorders.append(FaultRecorder(fault_rows, name))
        return recorders[-1]

    yield start
    call = getattr(request.node, "fault_call", None)
    if call is None or not call.passed:
        for recorder in recorders:
            recorder.row.survived = False
            recorder.row.note = (recorder.row.note + " (the test failed)").strip()


@pytest.fixture(scope="session")
def fault_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault_home")


@pytest.fixture(scope="module", autouse=True)
def _in_fault_home(fault_home) -> Iterator[Path]:
    """Every fault test (and module fixture) runs in the session's MLOPS_HOME, with nothing pointing elsewhere."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(fault_home))
        for name in _OUTSIDE_STATE:
            patch.delenv(name, raising=False)
        yield fault_home


@dataclass(frozen=True)
class Killed:
    returncode: int
    output: str


def _check_killed(code: int, output: str, what: str) -> Killed:
    assert code == -9, f"the process was to be killed after {what} but exited with {code}: {output[-3000:]}"
    assert "fault injection: SIGKILL" in output
    return Killed(code, output)


def _kill_argv(target: str, calls: int, match: str, command: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "tests.faults.killed", target, str(calls), match, "--", *command]


def run_killed(target: str, calls: int, match: str, *command: str, extra_env: dict | None = None) -> Killed:
    """Run ``command`` (a console script and its arguments) in a process of its own that SIGKILLs itself after the
    ``calls``-th return of ``target`` (see ``tests.faults.killed``); the process must have been killed, not have
    ended by itself."""
    env = {**os.environ, **(extra_env or {})}
    argv = _kill_argv(target, calls, match, command)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=KILL_TIMEOUT_SECONDS)
    return _check_killed(done.returncode, done.stdout + done.stderr, f"call {calls} of {target}")


class PendingKill:
    """A process to be killed in the middle of ``command``, started ahead of time: it starts its Spark session and
    waits; ``run()`` lets it go and returns once it was killed (``tests.faults.killed``, warm mode)."""

    def __init__(self, target: str, calls: int, match: str, *command: str, extra_env: dict | None = None) -> None:
        self.what = f"call {calls} of {target}"
        self._output = tempfile.TemporaryFile()
        env = {**os.environ, **(extra_env or {}), WARM_ENV: "1"}
        self.process = subprocess.Popen(
            _kill_argv(target, calls, match, command),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def run(self) -> Killed:
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()
        code = self.process.wait(timeout=KILL_TIMEOUT_SECONDS)
        self._output.seek(0)
        return _check_killed(code, self._output.read().decode(errors="replace"), self.what)

    def discard(self) -> None:
        """Let a process that was not run end (it exits when its stdin closes); kill it if it does not."""
        if self.process.poll() is None:
            if not self.process.stdin.closed:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


def lost_and_doubled(expected: Iterable[tuple], found: Iterable[tuple]) -> tuple[int, int]:
    """Counted by key: rows of ``expected`` missing from ``found``, and rows of ``found`` beyond what ``expected``
    holds of their key (a key found twice where it is expected once, or a key nobody expected)."""
    want, have = Counter(expected), Counter(found)
    lost = sum(max(0, n - have[key]) for key, n in want.items())
    doubled = sum(max(0, n - want[key]) for key, n in have.items())
    return lost, doubled


# --- the session's champion: a model workflow killed after its first commit, then run again ----------------------

DEV_NAME = "dev"
# Three weeks of flights: the champion trains on the first two and a half, the suite scores the last days.
TRAINING = {
    "start_date": "2013-01-01",
    "end_date": "2013-01-24",
    "training_start": "2013-01-01",
    "training_end": "2013-01-17",
    "max_rows": "4000",
}


@dataclass(frozen=True)
class Champion:
    """What the killed workflow left, and the re-run that trained the champion."""

    killed: Killed
    left_flights: bool
    left_weather: bool
    run: object  # local.runner.WorkflowRun
    version: str
    killed_seconds: float
    rerun_seconds: float


LABELS_AS_OF = "2013-01-25"
PRODUCTION_LOOP = "test_production_loop.py"


@pytest.fixture(scope="session")
def session_dynalite(fault_home) -> Iterator[object]:
    """dynalite keeping its tables on disk under the session's MLOPS_HOME, so that a restarted server has them."""
    from local.dynalite import Dynalite

    server = Dynalite(path=fault_home / "dynamodb").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pending_kills(request, fault_home) -> Iterator[dict[str, PendingKill]]:
    """The processes the suite kills in the middle of a step, started together at the session's start (each waits,
    its Spark session started, until its test lets it go): the model workflow, and, when the production loop's
    tests run, the stream, the publish and the labels job."""
    from local.dynalite import DYNAMODB_ENDPOINT_ENV
    from spec.config import ENVIRONMENTS

    env = ENVIRONMENTS[DEV_NAME]
    params = [arg for name, value in TRAINING.items() for arg in ("--param", f"{name}={value}")]
    pending: dict[str, PendingKill] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(fault_home))
        for name in _OUTSIDE_STATE:
            patch.delenv(name, raising=False)
        try:
            pending["workflow"] = PendingKill(
                "local.tables:LocalTables.write", 1, env.source_table("flights"),
                "mlops", "run", "model-training", "--env", env.name, "--model", env.model_name, *params,
            )  # fmt: skip
            if any(item.path.name == PRODUCTION_LOOP for item in request.session.items):
                endpoint = request.getfixturevalue("session_dynalite").endpoint_url
                pending["stream"] = PendingKill(
                    "local.tables:LocalTables.append_once", 1, env.predictions_table,
                    "mlops-score-stream", "--env", env.name, "--trigger", "available-now",
                )  # fmt: skip
                pending["publish"] = PendingKill(
                    "jobs.platform.online_store:DynamoDBOnlineStore._put_chunk", 1, "",
                    "mlops-publish", "--env", env.name, extra_env={DYNAMODB_ENDPOINT_ENV: endpoint},
                )  # fmt: skip
                pending["labels"] = PendingKill(
                    "local.tables:LocalTables.write", 1, env.served_table,
                    "mlops-labels", "--env", env.name, "--as-of", LABELS_AS_OF,
                )  # fmt: skip
        except BaseException:
            for process in pending.values():
                process.discard()
            raise
    yield pending
    for process in pending.values():
        process.discard()


@pytest.fixture(scope="session")
def champion(fault_home, pending_kills) -> Champion:
    from jobs.platform import build_platform
    from jobs.platform.registry import CHAMPION
    from local.runner import LocalRunner
    from local.spark import local_spark
    from local.tables import LocalTables
    from spec.config import ENVIRONMENTS

    env = ENVIRONMENTS[DEV_NAME]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(fault_home))
        for name in _OUTSIDE_STATE:
            patch.delenv(name, raising=False)
        local_spark()  # this process's Spark starts while the killed processes start theirs
        # given: `mlops run model-training` killed right after the ingest task committed the flights table
        started = time.monotonic()
        killed = pending_kills["workflow"].run()
        tables = LocalTables(local_spark)
        left_flights, left_weather = (
            tables.exists(env.source_table("flights")),
            tables.exists(env.source_table("weather")),
        )
        killed_seconds, started = time.monotonic() - started, time.monotonic()
        # when: the workflow runs again
        run = LocalRunner(env).run("model-training", TRAINING)
        rerun_seconds = time.monotonic() - started
        version = build_platform(env).registry.alias_version(CHAMPION)
    return Champion(killed, left_flights, left_weather, run, version, killed_seconds, rerun_seconds)
