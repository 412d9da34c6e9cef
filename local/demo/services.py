"""The processes `mlops demo` supervises, and the state it keeps for its run.

- its home, ``$MLOPS_HOME/demo``, cleared first (``prepare_home``), one demo at a time on it (``demo_lock``, an
  flock the kernel releases when the process ends);
- its services on free loopback ports (``start_services``): dynalite (DynamoDB, in memory), the webhook receiver the
  alerts post to, and prod's serving gateway in a process (and session) of its own; each process is recorded in
  ``services.json`` (pid and start time from /proc) as soon as it is spawned, so that a demo started after an
  interrupted one stops what it left running (``stop_leftovers``);
- its signals: SIGINT, SIGTERM and SIGHUP stop it cleanly, and a second one cannot interrupt the stopping;
- its terminal: the standard error (the JVM, MLflow, the jobs' logs) goes to ``demo.log`` (``quiet_terminal``,
  with dup2), the terminal keeps the progress and the events;
- what it changes in its process (handlers, environment), given back when it ends (``restored_process_state``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import site
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from local.demo import ReplayError
from local.files import LockHeld, exclusive_lock
from local.settings import HOME_ENV, SERVING_TOKEN_ENV

# Where `local` is imported from: a child `python -m cli.main` must import the same code (see package_pythonpath).
SOURCE_DIR = Path(__file__).resolve().parents[2]
SERVICES_FILE = "services.json"
GATEWAY_READY_SECONDS = 120.0


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


def prepare_home(home: Path) -> list[int]:
    """``home`` cleared and made again, after stopping what an interrupted demo left running there (their pids)."""
    stopped = stop_leftovers(home)
    shutil.rmtree(home, ignore_errors=True)
    if home.exists():
        raise ReplayError(f"could not clear {home} (an earlier demo's files): remove it and run again")
    home.mkdir(parents=True)
    return stopped


@contextmanager
def demo_lock(base: Path) -> Iterator[None]:
    """One demo at a time per MLOPS_HOME: ``local.files``' exclusive lock on ``demo.lock``, which the kernel releases
    when the process ends; a second demo is refused, naming the first one's pid."""
    with ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(base / "demo.lock", f"a demo on {base}", wait=False))
        except LockHeld as busy:
            pid = busy.holder.get("pid", "?")
            raise ReplayError(f"another demo is running on {base} (pid {pid}); wait for it or stop it") from None
        yield


@contextmanager
def quiet_terminal(log_file: Path) -> Iterator[None]:
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
    environ = {**os.environ, HOME_ENV: str(home), SERVING_TOKEN_ENV: token}
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


@dataclass(frozen=True)
class Services:
    """Where the demo's services answer, and the record of its processes."""

    gateway_url: str
    token: str
    webhook_url: str
    record: ServiceRecord


def start_services(services: ExitStack, home: Path, log_file: Path) -> Services:
    """dynalite, the webhook receiver and prod's serving gateway, each stopped when ``services`` closes, the
    environment variables that point the jobs at them set until then; once they stop, signals are ignored (the
    caller sets its handlers again) so that a second Ctrl-C cannot leave a process half-stopped."""
    from jobs.platform.notify import WEBHOOK_URL_ENV
    from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite
    from local.receiver import WebhookReceiver

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
    return Services(gateway_url=url, token=token, webhook_url=receiver.url, record=record)
