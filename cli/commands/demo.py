"""`mlops demo`: the README's main job. A year of MLOps on the real 2013 New York flights, on this machine.

1. every environment's stack is synthesized and summarized;
2. the local services start on free loopback ports: dynalite (DynamoDB), the webhook receiver the alerts post to,
   and the serving gateway for prod (its own process, as a user runs it); they stop at the end, on Ctrl-C or failure;
3. the model workflow runs in dev, then staging (a small slice), then prod (the first weeks of 2013);
4. prod lives through the rest of the year week by week (``local.replay``);
5. the report: ``index.html`` with its plots (in ``--report``, default ``$MLOPS_HOME/demo/report``), and a summary
   on the terminal.

Progress bars show the phase, the simulated week and the time left; events (alerts, retraining, promotions) are
printed as they happen; everything else (Spark, MLflow, the jobs' logs) goes to ``<home>/demo.log``. The demo keeps
its state in its own home, ``$MLOPS_HOME/demo`` (``.mlops/demo``), which it clears first: running it again, or after
an interrupted run, needs no cleanup. Nothing is looked up in, or written to, the package's own directory: an installed
``mlops`` finds dynalite on the PATH or in ``node_modules/.bin`` (``local.node_tools``).

Run in-process (``cli.main.main(["demo", ...])``), the command gives back what it changed for its run: the handlers of
SIGINT, SIGTERM and SIGHUP and the environment variables are restored when it returns or raises.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import date
from pathlib import Path

# Where `cli` is imported from: a child `python -m cli.main` must import the same code (see package_pythonpath).
SOURCE_DIR = Path(__file__).resolve().parents[2]
SERVICES_FILE = "services.json"
GATEWAY_READY_SECONDS = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="a year of MLOps on 2013's flights, replayed locally, with a report")
    demo.add_argument("--months", type=int, default=12, help="how many months of 2013 to live through (1..12)")
    demo.add_argument("--start", type=_month, default=date(2013, 1, 1), help="first month, YYYY-MM (default 2013-01)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the request sampling and the models")
    demo.add_argument("--requests-per-week", type=int, default=60, help="live requests sent to the gateway each week")
    demo.add_argument("--no-references", action="store_true", help="skip the never/weekly-retrained references")
    demo.add_argument(
        "--initial-weeks",
        type=int,
        default=None,
        help="weeks prod's first champion trains on, just before --start (default 8, as many as 2013 has); with "
        "--start 2013-01 the window's first weeks (default 8, at most half the window), the rest is replayed",
    )
    demo.add_argument(
        "--prod-only", action="store_true", help="skip the model workflow in dev and staging (a quicker look)"
    )
    demo.add_argument(
        "--report", type=Path, default=None, help="where the report goes (default: $MLOPS_HOME/demo/report)"
    )
    demo.set_defaults(func=_demo)


def _month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a month YYYY-MM, got {text!r}") from None


def demo_home() -> Path:
    """``$MLOPS_HOME/demo`` (``.mlops/demo`` in the working directory, as every local command's state)."""
    from local.paths import mlops_home

    return mlops_home() / "demo"


def preflight() -> list[str]:
    """What is missing to run the demo, each with its fix."""
    from local.node_tools import NodeToolNotFound, find_node_tool

    problems = []
    if shutil.which("java") is None:
        problems.append("java is not on PATH: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)")
    try:
        find_node_tool("dynalite")
    except NodeToolNotFound as missing:
        problems.append(str(missing))
    return problems


def package_pythonpath(environ: dict[str, str]) -> str | None:
    """PYTHONPATH for a child ``python -m cli.main`` started in another directory: ``SOURCE_DIR`` first when the
    interpreter would not search it anyway (a checkout run without an install), else PYTHONPATH as it is."""
    current = environ.get("PYTHONPATH")
    searched = {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages())}
    if SOURCE_DIR in searched:
        return current
    return os.pathsep.join([str(SOURCE_DIR), *([current] if current else [])])


@contextmanager
def restored_process_state(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    """The handlers of ``signals`` and the whole environment as they were, once the block ends (returns or raises):
    the demo sets handlers, its home and its services' addresses, and the jobs it runs in-process export variables
    (task values, MLflow's experiment); called in-process, none of it may outlive the command."""
    handlers = {signum: signal.getsignal(signum) for signum in signals}
    environ = dict(os.environ)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            # None: a handler not installed from Python, which Python cannot put back; the default is the closest.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        for name, value in environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, names one
    process for good, even after the pid is reused. None when there is no such process (or it is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return None if fields[0] == "Z" else int(fields[19])


class ServiceRecord:
    """The demo's own processes as ``$MLOPS_HOME/demo/services.json`` (each one's pid and start time, written as soon
    as it is spawned): what stop_leftovers needs to find them again after a demo that could not stop them."""

    def __init__(self, home: Path) -> None:
        self.path = home / SERVICES_FILE
        self.processes: dict[str, dict[str, int | None]] = {}

    def add(self, name: str, pid: int) -> None:
        self.processes[name] = {"pid": pid, "start": process_start(pid)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.processes))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def stop_leftovers(home: Path, timeout: float = 15.0) -> list[int]:
    """Processes an interrupted demo left running (recorded in its services file, same pid and start time):
    stopped, and waited for, before starting over."""
    record = home / SERVICES_FILE
    try:
        services = json.loads(record.read_text())
        recorded = [(int(s["pid"]), s["start"]) for s in services.values()]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    alive = [(pid, start) for pid, start in recorded if start is not None and process_start(pid) == start]
    for pid, _ in alive:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout

    def running() -> list[int]:  # the same processes: a pid reused meanwhile is someone else's
        return [pid for pid, start in alive if process_start(pid) == start]

    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in running():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [pid for pid, _ in alive]


@contextmanager
def demo_lock(base: Path):
    """One demo at a time per MLOPS_HOME: an exclusive flock the kernel releases when the process ends."""
    import fcntl

    base.mkdir(parents=True, exist_ok=True)
    handle = (base / "demo.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise SystemExit(
            f"mlops demo: another demo is running on {base} (pid {holder}); wait for it or stop it"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        handle.close()


@contextmanager
def quiet_terminal(log_file: Path):
    """Everything written to the standard error (the JVM's Spark warnings, MLflow, the jobs' logs) goes to
    ``log_file``; the terminal keeps the progress and the events (written to the standard output)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handle = log_file.open("a", buffering=1)
    saved_stderr = os.dup(2)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    file_handler = logging.StreamHandler(handle)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [file_handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    sys.stderr.flush()
    os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        root.handlers, root.level = saved_handlers, saved_level
        logging.captureWarnings(False)
        handle.close()


def start_gateway(
    services: ExitStack, home: Path, env_name: str, token: str, log_file: Path, record: ServiceRecord
) -> str:
    """The serving gateway in its own process (and session: a Ctrl-C at the terminal reaches the demo, which stops it
    with one SIGINT, not the gateway twice) on a free loopback port, recorded as soon as it is spawned and stopped
    when ``services`` closes (also when it never came up); its URL once it answers /health."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_SERVING_TOKEN": token}
    pythonpath = package_pythonpath(environ)
    if pythonpath:
        environ["PYTHONPATH"] = pythonpath
    log = services.enter_context(log_file.open("a"))
    process = subprocess.Popen(
        # The replay waits for each week's requests to reach the inference table: write it every 0.2 s.
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--env",
            env_name,
            "--port",
            str(port),
            "--log-flush-interval",
            "0.2",
        ],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,  # never the package's directory: whatever the gateway writes beside it lands in the demo's home
        start_new_session=True,
    )
    services.callback(stop_process, process)
    record.add("gateway", process.pid)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + GATEWAY_READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the serving gateway exited with code {process.returncode}: see {log_file}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        time.sleep(0.3)
    raise RuntimeError(f"the serving gateway did not answer within {GATEWAY_READY_SECONDS:.0f} s: see {log_file}")


def set_environ(services: ExitStack, name: str, value: str) -> None:
    """``os.environ[name] = value`` until ``services`` closes, then what it was."""
    previous = os.environ.get(name)
    os.environ[name] = value
    services.callback(lambda: os.environ.pop(name, None) if previous is None else os.environ.update({name: previous}))


def ignore_signals() -> None:
    """While the demo stops: a second Ctrl-C must not leave a process half-stopped."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def stop_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # the gateway flushes its inference log on a graceful stop
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_on_signal(signum: int, frame: object) -> None:
    # The first signal stops the demo; the ones after it must not interrupt the stopping (a process left running).
    ignore_signals()
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """Stop cleanly on Ctrl-C, SIGTERM and SIGHUP (a closed terminal), even when started in the background (a
    non-interactive shell starts background commands with SIGINT ignored, and the demo's processes would inherit
    that)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_on_signal)


def _demo(args: argparse.Namespace) -> int:
    from cli.main import console as cli_console

    console = cli_console()
    problems = preflight()
    if problems:
        for problem in problems:
            console.print(f"[red]mlops demo: {problem}[/red]")
        return 2
    try:
        from local.replay import ReplayConfig

        config = ReplayConfig(
            start=args.start,
            months=args.months,
            seed=args.seed,
            requests_per_week=args.requests_per_week,
            references=not args.no_references,
            initial_weeks=args.initial_weeks,
            promotion_path=() if args.prod_only else ("dev", "staging"),
        )
    except ValueError as error:
        raise SystemExit(f"mlops demo: {error}") from error

    home = demo_home()
    with restored_process_state(STOP_SIGNALS):
        stop_on_signals()
        try:
            with demo_lock(home.parent):
                return _demo_in(console, args, config, home)
        except KeyboardInterrupt:
            console.print(
                f"[yellow]mlops demo: interrupted; the services it started are stopped; logs in {home}[/yellow]"
            )
            return 130


def _demo_in(console, args: argparse.Namespace, config, home: Path) -> int:
    stopped = stop_leftovers(home)
    if stopped:
        console.print(f"stopped {len(stopped)} process(es) an interrupted demo left running")
    shutil.rmtree(home, ignore_errors=True)
    if home.exists():
        raise SystemExit(f"mlops demo: could not clear {home} (an earlier demo's files): remove it and run again")
    home.mkdir(parents=True)
    os.environ["MLOPS_HOME"] = str(home)
    log_file = home / "demo.log"
    started = time.perf_counter()
    phases: dict[str, float] = {}

    console.rule("1. Infrastructure: every environment as Terraform JSON")
    t0 = time.perf_counter()
    with quiet_terminal(log_file):
        summaries = _synth_summaries()
    phases["infrastructure"] = round(time.perf_counter() - t0, 1)
    for line in summaries:
        console.print(line)

    console.rule("2. The lifecycle: dev -> staging -> prod, then 2013 week by week in prod")
    console.print(f"services on 127.0.0.1; logs of Spark, MLflow and the jobs in {log_file}")
    result = _lifecycle_with_progress(console, home, config, log_file)
    stop_on_signals()  # the services' shutdown ignored them
    if result is None:
        return 1
    result.phases = {**phases, **result.phases}

    console.rule("3. The report")
    report_dir = home / "report" if args.report is None else args.report
    t0 = time.perf_counter()
    with quiet_terminal(log_file):
        _write_report(result, report_dir)
        result.phases["report"] = round(time.perf_counter() - t0, 1)
        result.wall_seconds = round(time.perf_counter() - started, 1)
        # Once more with the report's own time and the wall time (the page only; the plots stay).
        index = _write_report(result, report_dir, plots=False)
    _print_summary(console, result, index, home)
    return 0


def _lifecycle_with_progress(console, home: Path, config, log_file: Path):
    """The replay under a progress display, inside the services it needs; None when it failed (said on the
    console). Ctrl-C or SIGTERM stop it: the services are stopped on the way out."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from local.replay import ReplayError

    with (
        ExitStack() as services,
        Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            # The standard error goes to the log (quiet_terminal), not above the bars.
            redirect_stderr=False,
        ) as progress,
    ):
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int, label: str) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, label=label)
            progress.update(tasks[phase], completed=done, total=total, label=label)

        def on_event(event) -> None:
            colour = {"alert": "yellow", "promotion": "green", "validation_failed": "red", "rollback": "red"}.get(
                event.kind, "cyan"
            )
            progress.console.print(f"[{colour}]{event.week_start} {event.kind:<17}[/{colour}] {event.message}")

        services.enter_context(quiet_terminal(log_file))
        try:
            result = _run_lifecycle(services, home, config, log_file, on_progress, on_event)
        except Exception as error:  # the traceback goes to the log; the person gets one line and where to look
            logging.getLogger("cli.demo").exception("the demo stopped")
            progress.stop()
            kind = "" if isinstance(error, ReplayError) else f"{type(error).__name__}: "
            console.print(f"[red]mlops demo: {kind}{error}[/red]")
            console.print(f"the traceback and the jobs' logs: {log_file}")
            return None
    return result


def _synth_summaries() -> list[str]:
    from cli.commands.infra import synthesize
    from infra.summary import load_stacks, summarize

    lines = []
    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        for name, stack in load_stacks(synthesize(Path(tmp))).items():
            summary = summarize(name, stack)
            counts = summary.resource_counts
            lines.append(
                f"{name}: {sum(counts.values())} resources: {counts.get('databricks_job', 0)} jobs, "
                f"{counts.get('databricks_quality_monitor', 0)} quality monitors, "
                f"{counts.get('databricks_alert_v2', 0)} SQL alerts, {counts.get('databricks_grants', 0)} grants"
            )
    return lines


def _run_lifecycle(services: ExitStack, home: Path, config, log_file: Path, on_progress, on_event):
    from jobs.platform.notify import WEBHOOK_URL_ENV
    from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite
    from local.receiver import WebhookReceiver
    from local.replay import Replay

    record = ServiceRecord(home)
    services.callback(record.remove)  # registered first, so removed last: after every process it names stopped
    # In memory: the demo's online store lives as long as the demo (and writes faster than on disk).
    dynalite = services.enter_context(Dynalite(None))
    if dynalite.pid is not None:
        record.add("dynalite", dynalite.pid)
    set_environ(services, DYNAMODB_ENDPOINT_ENV, dynalite.endpoint_url)
    # The jobs' notifications (a failed validation, say) go to the demo's receiver, never to a webhook of the shell's.
    receiver = services.enter_context(WebhookReceiver(home / "webhook.jsonl"))
    set_environ(services, WEBHOOK_URL_ENV, receiver.url)
    token = secrets.token_urlsafe(24)
    url = start_gateway(services, home, "prod", token, log_file, record)
    services.callback(ignore_signals)  # the last registered runs first when the services are stopped
    replay = Replay(
        config,
        gateway_url=url,
        token=token,
        webhook_url=receiver.url,
        progress=on_progress,
        on_event=on_event,
        on_spawn=record.add,
    )
    replay.initial_training()
    return replay.replay()


def _write_report(result, report_dir: Path, *, plots: bool = True) -> Path:
    """report_data.json, then the PNGs (``plots``) and index.html from it."""
    from local.replay import write_report_data
    from local.report import load_drift, render_index, render_report
    from spec.config import ENVIRONMENTS

    data_file = write_report_data(result, report_dir / "report_data.json")
    data = json.loads(data_file.read_text())
    if not plots:
        return render_index(data, report_dir)
    return render_report(data, report_dir, drift=load_drift(ENVIRONMENTS[result.env]))


def _print_summary(console, result, index: Path, home: Path) -> None:
    from rich.table import Table

    from local.report import summary_rows

    table = Table(title="A year of MLOps on 2013's flights", show_header=False)
    table.add_column("what")
    table.add_column("measured")
    data = json.loads(json.dumps(result.to_json(), default=str))
    for label, value in summary_rows(data):
        table.add_row(label, value)
    console.print(table)
    console.print(f"report: {index}")
    console.print(f"MLflow: {result.paths.get('mlflow_ui', '')}")
    console.print(f"Delta tables: {result.paths.get('warehouse', '')}")
    console.print(f"dashboard: {result.paths.get('dashboard', '')}")
    console.print(f"the jobs' logs: {home / 'demo.log'}")
