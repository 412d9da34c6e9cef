"""dynalite, a DynamoDB server (Node, pinned in package.json), for the online store on this machine.

``Dynalite`` starts it on a loopback port (a free one unless told), persisted under ``$MLOPS_HOME/dynamodb`` unless
asked to keep the tables in memory, waits until it answers ListTables, and stops it (terminate, then kill after a
timeout); it is a context manager. Whoever starts it tells the jobs where it is with ``MLOPS_DYNAMODB_ENDPOINT``,
which ``local_online_store`` (the local platform's online store) reads; credentials are dummies, dynalite ignores
them.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from jobs.platform.online_store import Credentials, DynamoDBOnlineStore, OnlineStore, OnlineStoreError
from local.node_tools import NodeToolNotFound, find_node_tool
from local.paths import mlops_home
from local.settings import DYNAMODB_ENDPOINT_ENV, local_settings
from spec.errors import MlopsError

if TYPE_CHECKING:
    from spec.config import Environment

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOCAL_CREDENTIALS = Credentials("local", "local")
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0
_POLL_SECONDS = 0.1


class DynaliteError(MlopsError):
    """dynalite cannot be started; the message says why and what to do."""


def dynalite_dir() -> Path:
    """Where the local DynamoDB keeps its tables (LevelDB), next to the rest of the local state."""
    return mlops_home() / "dynamodb"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_is_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


class Dynalite:
    """A dynalite process on ``127.0.0.1:<port>``; ``path`` None keeps its tables in memory. ``executable`` None
    finds dynalite when it starts (``local.node_tools``: the PATH, then ``node_modules/.bin``)."""

    def __init__(
        self,
        path: Path | None = None,
        port: int | None = None,
        executable: Path | None = None,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        self.path = path
        self.port = port
        self.executable = executable
        self.start_timeout = start_timeout
        self._process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The dynalite process's pid while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise DynaliteError("dynalite is not started")
        return f"http://{HOST}:{self.port}"

    def start(self) -> Dynalite:
        if self._process is not None:
            raise DynaliteError(f"dynalite already runs at {self.endpoint_url}")
        self._check_executable()
        if self.port is not None and port_is_taken(self.port):
            raise DynaliteError(
                f"port {HOST}:{self.port} is taken: stop what listens there, or choose another port (or none: "
                "a free one is picked)"
            )
        self.port = self.port or free_port()
        self._process = self._spawn()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        logger.info("dynalite listening at %s (%s)", self.endpoint_url, self.path or "in memory")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "dynalite (pid %s) ignored SIGTERM for %ss: killing it", process.pid, STOP_TIMEOUT_SECONDS
                )
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Dynalite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_executable(self) -> None:
        if self.executable is None:
            try:
                self.executable = find_node_tool("dynalite")
            except NodeToolNotFound as e:
                raise DynaliteError(str(e)) from e
        elif not self.executable.exists():
            raise DynaliteError(f"dynalite is not installed ({self.executable} is missing): run make setup")

    def _spawn(self) -> subprocess.Popen:
        command = [str(self.executable), "--host", HOST, "--port", str(self.port)]
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            command += ["--path", str(self.path)]
        # Its output goes to a file read back when it fails to start: a pipe nobody reads could fill and block it.
        self._log = tempfile.TemporaryFile(prefix="dynalite-")
        try:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        except OSError as e:
            raise DynaliteError(
                f"cannot run {self.executable} ({e}): it needs Node 20 on the PATH; run make setup"
            ) from e

    def _wait_until_ready(self) -> None:
        store = local_store_at(self.endpoint_url, max_attempts=1)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise DynaliteError(self._exit_message(self._process.returncode))
            if _answers(store):
                return
            if time.monotonic() > deadline:
                raise DynaliteError(
                    f"dynalite did not answer ListTables at {self.endpoint_url} within {self.start_timeout}s: "
                    f"{self._output()}"
                )
            time.sleep(_POLL_SECONDS)

    def _exit_message(self, code: int) -> str:
        output = self._output()
        if "LEVEL_DATABASE_NOT_OPEN" in output or "LOCK" in output:
            return (
                f"dynalite could not open its tables under {self.path}: another dynalite holds them (a running "
                f"`mlops dynamodb`?). Export the {DYNAMODB_ENDPOINT_ENV} it printed, or stop it"
            )
        return f"dynalite exited with code {code} before answering on {self.endpoint_url}: {output}"

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-2000:] or "(no output)"


def _answers(store: DynamoDBOnlineStore) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.client.list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True


def local_store_at(
    endpoint_url: str, table_name: str = "unused", max_attempts: int | None = None, partition_key: str = "row_key"
) -> DynamoDBOnlineStore:
    """A boto3 store on a local endpoint with the default settings (and ``max_attempts`` when given), its items keyed
    by ``partition_key``."""
    from spec.config import OnlineStore as OnlineStoreSettings

    settings = OnlineStoreSettings(create_table=True, endpoint_url=endpoint_url)
    if max_attempts is not None:
        settings = settings.replace(max_attempts=max_attempts)
    return DynamoDBOnlineStore.connect(
        table_name, settings, LOCAL_CREDENTIALS, endpoint_url, partition_key=partition_key
    )


def local_online_store(env: Environment, environ: Mapping[str, str] | None = None) -> OnlineStore:
    """The environment's table in the local DynamoDB that ``MLOPS_DYNAMODB_ENDPOINT`` points at; created on first
    use (``create_table`` is always on here)."""
    endpoint = local_settings(environ).dynamodb_endpoint or env.online_store.endpoint_url
    if not endpoint:
        raise OnlineStoreError(
            f"{DYNAMODB_ENDPOINT_ENV} is not set: start the local DynamoDB with `mlops dynamodb` and export the "
            f"variable it prints, or run `mlops publish --env {env.name}`, which starts one for its duration"
        )
    settings = env.online_store.replace(endpoint_url=endpoint, create_table=True)
    return DynamoDBOnlineStore.connect(
        env.online_table_name, settings, LOCAL_CREDENTIALS, endpoint, partition_key=env.model.key_name
    )
