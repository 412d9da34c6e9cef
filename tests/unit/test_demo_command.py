"""`mlops demo` called in-process (`cli.main.main(["demo", ...])`), its slow parts replaced by fakes (the synthesis,
dynalite, the gateway, the replay): the command gives back the signal handlers and the environment it changed, on
every way out; the report goes under MLOPS_HOME. And where the Node tools are looked up (`local.node_tools`)."""

from __future__ import annotations

import json
import os
import signal
import site
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

import local.dynalite
from cli.commands import demo
from cli.main import main
from local import node_tools
from local.demo import ReplayError, lifecycle, loop, services
from local.dynalite import Dynalite, DynaliteError
from local.node_tools import NODE_PACKAGES, NodeToolNotFound, checkout_root, find_node_tool

ROOT = Path(__file__).resolve().parents[2]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What the fake replay sets, as the real one's in-process tasks do (task values through the environment).
TASK_KEY = "MLOPS_TASK_KEY"


def _caller_handler(signum: int, frame: object) -> None:
    raise AssertionError(f"the caller's handler got signal {signum}: the demo's handler should have")


class FakeDynalite:
    """In place of the dynalite process: an endpoint, no process."""

    def __init__(self, path: Path | None = None) -> None:
        self.pid = None
        self.endpoint_url = "http://127.0.0.1:9"

    def __enter__(self) -> FakeDynalite:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def fake_replay(outcome: str, configs: list | None = None) -> type:
    class FakeReplay:
        def __init__(self, config, **kwargs) -> None:
            self.config = config
            if configs is not None:
                configs.append(config)

        def initial_training(self) -> None:
            os.environ[TASK_KEY] = "train"

        def replay(self):
            if outcome == "fails":
                raise ReplayError("week 2013-03-04: labels failed (an injected fault)")
            if outcome == "interrupted":
                signal.raise_signal(signal.SIGHUP)  # a closed terminal
                raise AssertionError("SIGHUP did not stop the demo")
            # "disk full": the report cannot be written (see demo_run)
            return SimpleNamespace(phases={"replay": 1.0}, wall_seconds=0.0, env=outcome)

    return FakeReplay


@pytest.fixture
def demo_run(tmp_path, monkeypatch):
    """The demo with fakes for its slow parts, under ``tmp_path/home``; the caller's handlers are ``_caller_handler``
    on SIGINT, SIGTERM and SIGHUP. Yields a function: outcome -> (exit code, or the error that escaped the command;
    the report directories written)."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    for name in ("MLOPS_DYNAMODB_ENDPOINT", "MLOPS_NOTIFY_WEBHOOK_URL", TASK_KEY, "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(services, "preflight", lambda: [])
    monkeypatch.setattr(demo, "_synth_summaries", lambda: ["prod: 0 resources"])
    monkeypatch.setattr(services, "start_gateway", lambda stack, home, env, token, log, record: "http://127.0.0.1:9")
    monkeypatch.setattr(demo, "_print_summary", lambda console, result, index, home: None)
    monkeypatch.setattr(local.dynalite, "Dynalite", FakeDynalite)
    reports: list[Path] = []

    def write_report(result, report_dir: Path, *, plots: bool = True) -> Path:
        if result.env == "disk full":
            raise OSError(28, "No space left on device")
        reports.append(report_dir)
        return report_dir / "index.html"

    monkeypatch.setattr(lifecycle, "write_report", write_report)
    saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _caller_handler)

    def run(outcome: str, *options: str, configs: list | None = None):
        monkeypatch.setattr(loop, "Replay", fake_replay(outcome, configs))
        try:
            return main(["demo", "--prod-only", "--no-references", *options]), reports
        except Exception as error:
            return error, reports

    try:
        yield run
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def changed_variables(before: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    after = dict(os.environ)
    return {
        name: (before.get(name), after.get(name))
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    }


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("succeeds", 0), ("fails", 1), ("interrupted", 130), ("disk full", "OSError: [Errno 28] No space left on device")],
)
def test_the_demo_restores_the_signal_handlers_and_the_environment(demo_run, outcome, expected):
    # Given the caller's own handlers and environment
    before = dict(os.environ)
    # When the demo runs in-process and ends this way (an error it does not handle reaches the caller)
    code, _ = demo_run(outcome)
    # Then it returns its exit code, and what it changed is as it was: no handler of its own, no MLOPS_HOME/demo,
    # no service address, no task value left behind
    assert (code if isinstance(code, int) else f"{type(code).__name__}: {code}") == expected
    handlers = {signal.Signals(signum).name: signal.getsignal(signum) for signum in STOP_SIGNALS}
    not_restored = {name: handler for name, handler in handlers.items() if handler is not _caller_handler}
    assert {"handlers": not_restored, "environment": changed_variables(before)} == {"handlers": {}, "environment": {}}


def test_the_report_goes_under_mlops_home_by_default_and_where_asked_otherwise(demo_run, tmp_path, monkeypatch):
    code, reports = demo_run("succeeds")
    assert code == 0
    assert reports == [tmp_path / "home" / "demo" / "report"] * 2
    asked = tmp_path / "elsewhere"
    reports.clear()
    monkeypatch.setattr(loop, "Replay", fake_replay("succeeds"))
    assert main(["demo", "--prod-only", "--no-references", "--report", str(asked)]) == 0
    assert reports == [asked] * 2


def test_the_gateway_imports_the_demo_s_code_from_any_working_directory(monkeypatch):
    # From a checkout (not a site-packages directory): the checkout goes first on the child's PYTHONPATH ...
    assert services.SOURCE_DIR == ROOT
    assert services.package_pythonpath({}) == str(ROOT)
    assert services.package_pythonpath({"PYTHONPATH": "/opt/extra"}) == os.pathsep.join([str(ROOT), "/opt/extra"])
    # ... installed: site-packages is searched anyway, PYTHONPATH stays as it is
    monkeypatch.setattr(services, "SOURCE_DIR", Path(site.getsitepackages()[0]).resolve())
    assert services.package_pythonpath({"PYTHONPATH": "/opt/extra"}) == "/opt/extra"
    assert services.package_pythonpath({}) is None


@pytest.mark.parametrize(
    ("options", "training", "weeks"),
    [
        # The default: the first champion trains on January's first weeks, the rest of the year is replayed.
        ((), ("2013-01-01", "2013-02-24"), ("2013-02-25", "2013-12-23", 44)),
        # April and May: trained on the eight weeks before April, exactly the whole weeks of April and May replayed.
        (("--start", "2013-04", "--months", "2"), ("2013-02-04", "2013-03-31"), ("2013-04-01", "2013-05-20", 8)),
        # One month: January's first half trains, its last two weeks are replayed.
        (("--months", "1"), ("2013-01-01", "2013-01-13"), ("2013-01-14", "2013-01-21", 2)),
    ],
)
def test_the_window_options_reach_the_replay_as_they_say(demo_run, options, training, weeks):
    configs: list = []
    code, _ = demo_run("succeeds", *options, configs=configs)
    assert code == 0
    [config] = configs
    replayed = config.weeks()
    assert tuple(d.isoformat() for d in config.training_window) == training
    assert (replayed[0].isoformat(), replayed[-1].isoformat(), len(replayed)) == weeks


def test_a_window_with_nothing_left_to_replay_is_refused_before_anything_starts(demo_run, tmp_path, capsys):
    configs: list = []
    code, _ = demo_run("succeeds", "--months", "1", "--initial-weeks", "4", configs=configs)
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "mlops demo: 1 month(s) from 2013-01-01 leave no whole week to replay after 4 weeks of initial training "
        "inside the window (the data has nothing before 2013-01-01): more months, or at most 3 initial weeks"
    )
    assert configs == [] and not (tmp_path / "home" / "demo").exists()


# --- Node tools ------------------------------------------------------------------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """A working directory without node_modules, an empty PATH, no checkout: no Node tool anywhere."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(node_tools, "checkout_root", lambda: None)
    return tmp_path


def test_a_node_tool_is_found_on_the_path_first(nowhere):
    on_path = executable(nowhere / "bin" / "dynalite")
    executable(nowhere / "work" / "node_modules" / ".bin" / "dynalite")
    assert find_node_tool("dynalite") == on_path


def test_then_in_the_working_directory_then_in_the_checkout(nowhere, monkeypatch):
    checkout = nowhere / "checkout"
    in_checkout = executable(checkout / "node_modules" / ".bin" / "cdktn")
    monkeypatch.setattr(node_tools, "checkout_root", lambda: checkout)
    assert find_node_tool("cdktn") == in_checkout
    in_work = executable(nowhere / "work" / "node_modules" / ".bin" / "cdktn")
    assert find_node_tool("cdktn") == in_work


def test_a_missing_node_tool_names_where_it_was_looked_for_and_what_to_install(nowhere):
    with pytest.raises(NodeToolNotFound) as missing:
        find_node_tool("dynalite")
    assert str(missing.value) == (
        f"dynalite is not installed: it is not on the PATH, nor in {nowhere}/work/node_modules/.bin. Install it with "
        "`npm install dynalite@4.0.0` (Node 20 or later) and put its node_modules/.bin on the PATH, or run "
        "`make setup` in the project checkout"
    )
    with pytest.raises(DynaliteError) as not_started:
        Dynalite().start()
    assert str(not_started.value) == str(missing.value)
    assert str(missing.value) in services.preflight()


def test_the_checkout_is_found_when_the_package_runs_from_one_and_the_pins_are_package_json_s():
    assert checkout_root() == ROOT
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert NODE_PACKAGES == {"dynalite": f"dynalite@{pinned['dynalite']}", "cdktn": f"cdktn-cli@{pinned['cdktn-cli']}"}


def test_a_second_demo_on_one_home_is_refused_naming_the_first(tmp_path):
    from local.demo import ReplayError
    from local.demo.services import demo_lock

    with demo_lock(tmp_path):
        with pytest.raises(ReplayError, match=rf"another demo is running on {tmp_path} \(pid {os.getpid()}\)"):
            with demo_lock(tmp_path):
                pytest.fail("two demos ran on one home")
    with demo_lock(tmp_path):  # released: the next demo runs
        pass
