"""What the gateway serves right now, and the zero-downtime swap to a new config.

A ``LiveConfig`` is immutable: its models are loaded before it is built, and a request takes a reference to the
live config once, at its start. Swapping is one reference assignment, so a new config takes traffic only after all
its models loaded, requests under way finish on the config they started with, and a config that fails to load
never replaces the one serving (the failure is logged and reported in the endpoint's state).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.serving.batching import MicroBatcher
from local.serving.payload import InputSpec
from local.serving.router import WeightedRouter
from local.serving.state import EndpointState, ServedEntity, StateError, read_state, write_state

if TYPE_CHECKING:
    from mlflow.types import Schema

logger = logging.getLogger(__name__)

ModelLoader = Callable[[str], Any]


class ThreadLimitedPredict:
    """``predict`` with the OpenMP libraries limited to ``threads`` in each thread that calls it.

    Every Python thread that runs an OpenMP region keeps a team of OpenMP threads of its own. The server scores on
    a pool of worker threads (idle ones live 10 s), so after a burst of concurrent requests there are many teams and
    more OpenMP threads than CPUs, and libgomp then barely spins before its threads sleep: a histogram
    gradient-boosting ``predict`` (one parallel region per tree) wakes a sleeping team for every tree. On the first
    model this project served (2 CPUs), one row took 5.06 ms instead of 2.37 ms once seven other threads had predicted,
    and 2.35 ms in either case with one OpenMP thread. Requests are still scored in parallel, across threads; a
    prediction does not depend on how many threads computed it.

    OpenMP's thread count is a per-thread setting (``omp_set_num_threads``), so it is set once in each calling
    thread, on its first call; other threads of the process keep their own."""

    def __init__(self, predict: Callable[..., Any], threads: int) -> None:
        from threadpoolctl import ThreadpoolController

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._predict = predict
        self._threads = threads
        self._openmp = ThreadpoolController().select(user_api="openmp")  # the libraries the loaded model uses
        self._limited = threading.local()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self._limited, "done", False):
            self._openmp.limit(limits=self._threads)
            self._limited.done = True
        return self._predict(*args, **kwargs)


@dataclass(frozen=True)
class LoadedEntity:
    entity: ServedEntity
    model: Any
    spec: InputSpec
    accepts_params: bool
    batcher: MicroBatcher | None = field(default=None, repr=False)
    # The model's predict as the gateway calls it (see ``ThreadLimitedPredict``); ``model.predict`` when None.
    limited_predict: Callable[..., Any] | None = field(default=None, repr=False)

    def predict(self, data: Any, **kwargs: Any) -> Any:
        return (self.limited_predict or self.model.predict)(data, **kwargs)


@dataclass(frozen=True)
class LiveConfig:
    state: EndpointState
    version: int
    entities: tuple[LoadedEntity, ...]
    loaded_at_ms: int
    router: WeightedRouter = field(repr=False)

    def pick(self) -> LoadedEntity:
        return self.entities[self.router.choose()]

    def entity(self, name: str) -> LoadedEntity | None:
        return next((e for e in self.entities if e.entity.name == name), None)


def _accepts_params(model: Any) -> bool:
    import inspect

    try:
        return "params" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        return False


def _input_schema(model: Any) -> Any:
    metadata = getattr(model, "metadata", None)
    return metadata.get_input_schema() if metadata is not None else None


def load_live_config(
    state: EndpointState,
    version: int,
    load_model: ModelLoader,
    previous: LiveConfig | None = None,
    *,
    max_batch_rows: int = 0,
    openmp_threads: int | None = None,
    declared_schema: Schema | None = None,
) -> LiveConfig:
    """Load every served entity's model (reusing those the previous config already holds), then build the config.

    A model logged without a signature is read against ``declared_schema`` (the model's declaration, see
    ``local.serving.payload.declared_schema``) when given.

    ``max_batch_rows`` > 0 turns on micro-batching (see ``local.serving.batching``) for each entity.
    ``openmp_threads`` limits OpenMP in the threads that predict (see ``ThreadLimitedPredict``); None leaves it."""
    reusable = {e.entity.model_uri: e for e in previous.entities} if previous is not None else {}
    loaded = []
    for entity in state.served_entities:
        if (old := reusable.get(entity.model_uri)) is not None:
            model = old.model
        else:
            logger.info("loading %s for served entity %s", entity.model_uri, entity.name)
            try:
                model = load_model(entity.model_uri)
            except Exception as e:
                raise RuntimeError(f"served entity {entity.name!r}: could not load {entity.model_uri}: {e}") from e
        limited = ThreadLimitedPredict(model.predict, openmp_threads) if openmp_threads is not None else None
        predict = limited or model.predict
        batcher = MicroBatcher(predict, max_rows=max_batch_rows) if max_batch_rows > 0 else None
        loaded.append(
            LoadedEntity(
                entity,
                model,
                InputSpec(_input_schema(model) or declared_schema),
                _accepts_params(model),
                batcher,
                limited,
            )
        )
    return LiveConfig(
        state=state,
        version=version,
        entities=tuple(loaded),
        loaded_at_ms=int(time.time() * 1000),
        router=WeightedRouter([e.traffic_percent for e in state.served_entities]),
    )


@dataclass(frozen=True)
class UpdateResult:
    ok: bool
    message: str


class EndpointRuntime:
    """Holds the live config of one endpoint, reloads it from the state file, and describes it."""

    def __init__(
        self,
        env_name: str,
        endpoint: str,
        state_file: Path,
        load_model: ModelLoader,
        *,
        max_batch_rows: int = 0,
        openmp_threads: int | None = None,
        declared_schema: Schema | None = None,
    ) -> None:
        if openmp_threads is not None and openmp_threads < 1:
            raise ValueError(f"openmp_threads must be >= 1 or None, got {openmp_threads}")
        self.env_name = env_name
        self._declared_schema = declared_schema
        self._max_batch_rows = max_batch_rows
        self._openmp_threads = openmp_threads
        self.endpoint = endpoint
        self.state_file = state_file
        self._load_model = load_model
        self._live: LiveConfig | None = None
        self._reload_lock = threading.Lock()
        self._version = 0
        self._created_ms = int(time.time() * 1000)
        self._updated_ms = self._created_ms
        self._config_update = "NOT_UPDATING"
        self._pending: EndpointState | None = None
        self._last_error: str | None = None
        self._seen_file: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def live(self) -> LiveConfig | None:
        return self._live

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def _file_key(self) -> tuple[int, int, int] | None:
        try:
            st = self.state_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self, reason: str) -> UpdateResult:
        """Read the state file and, when it differs from what is live, load it and swap it in."""
        with self._reload_lock:
            self._seen_file = self._file_key()
            try:
                state = read_state(self.state_file)
            except FileNotFoundError:
                if self._live is None:
                    return UpdateResult(False, self.no_champion_message())
                logger.warning("state file %s disappeared; still serving config %d", self.state_file, self._version)
                return UpdateResult(False, f"state file {self.state_file} is missing; the live config keeps serving")
            except StateError as e:
                return self._failed(None, str(e))
            return self._apply(state, reason)

    def update(self, state: EndpointState) -> UpdateResult:
        """Load ``state`` and swap it in, then write it to the state file (atomically): the admin API's path.

        The file is written only once the config serves, so a config that fails to load is never what a restart
        (or the watcher) reads back: the file keeps the config that is live."""
        with self._reload_lock:
            result = self._apply(state, "config update request")
            if result.ok:
                write_state(self.state_file, state)
                self._seen_file = self._file_key()
            return result

    def _apply(self, state: EndpointState, reason: str) -> UpdateResult:
        if (state.env, state.endpoint) != (self.env_name, self.endpoint):
            return self._failed(
                state,
                f"{self.state_file} is for endpoint {state.endpoint!r} in env {state.env!r}; this gateway serves "
                f"{self.endpoint!r} in env {self.env_name!r}",
            )
        live = self._live
        if live is not None and live.state.served_entities == state.served_entities:
            self._config_update, self._pending, self._last_error = "NOT_UPDATING", None, None
            return UpdateResult(True, f"config {live.version} already serves this state")
        self._config_update, self._pending = "IN_PROGRESS", state
        started = time.perf_counter()
        try:
            new = load_live_config(
                state,
                self._version + 1,
                self._load_model,
                previous=live,
                max_batch_rows=self._max_batch_rows,
                openmp_threads=self._openmp_threads,
                declared_schema=self._declared_schema,
            )
        except Exception as e:
            return self._failed(state, str(e))
        self._live = new  # the swap: requests that already hold the old config finish on it
        self._version = new.version
        self._updated_ms = new.loaded_at_ms
        self._config_update, self._pending, self._last_error = "NOT_UPDATING", None, None
        summary = ", ".join(
            f"{e.name}={e.model_name}/{e.model_version} ({e.traffic_percent}%)" for e in state.served_entities
        )
        logger.info(
            "endpoint %s: config %d live after %.0f ms (%s): %s",
            self.endpoint,
            new.version,
            (time.perf_counter() - started) * 1000,
            reason,
            summary,
        )
        return UpdateResult(True, f"config {new.version} is live: {summary}")

    def _failed(self, state: EndpointState | None, message: str) -> UpdateResult:
        self._config_update, self._pending, self._last_error = "UPDATE_FAILED", state, message
        self._updated_ms = int(time.time() * 1000)
        serving = f"config {self._version} keeps serving" if self._live is not None else "nothing is served yet"
        logger.error("endpoint %s: config update failed, %s: %s", self.endpoint, serving, message)
        return UpdateResult(False, message)

    def no_champion_message(self) -> str:
        return (
            f"endpoint {self.endpoint!r} in env {self.env_name!r} has no champion yet: no state file at "
            f"{self.state_file}. Train and promote a model; the deploy job then writes that file."
        )

    # Watching the state file: polling its (mtime, size, inode) is enough for a file replaced atomically.
    def watch(self, interval: float) -> None:
        if self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, args=(interval,), name="state-file-watcher", daemon=True)
        self._watcher.start()

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            key = self._file_key()
            if key is not None and key != self._seen_file:
                self.reload("state file changed")

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None

    def describe(self, *, ai_gateway: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """The endpoint in the shape of Databricks' ``GET /api/2.0/serving-endpoints/{name}``."""
        live = self._live
        body: dict[str, Any] = {
            "name": self.endpoint,
            "id": f"local-{self.env_name}-{self.endpoint}",
            "creator": "mlops serve",
            "creation_timestamp": self._created_ms,
            "last_updated_timestamp": self._updated_ms,
            "state": {"ready": "READY" if live is not None else "NOT_READY", "config_update": self._config_update},
            "ai_gateway": ai_gateway,
            "tags": [{"key": "environment", "value": self.env_name}],
        }
        if live is not None:
            body["config"] = _config_body(live.state, live.version, "DEPLOYMENT_READY", "")
        if self._pending is not None or self._last_error is not None:
            deployment = "DEPLOYMENT_FAILED" if self._config_update == "UPDATE_FAILED" else "DEPLOYMENT_CREATING"
            pending = (
                _config_body(self._pending, self._version + 1, deployment, self._last_error or "")
                if (self._pending is not None)
                else {"config_version": self._version + 1, "served_entities": []}
            )
            pending["start_time"] = self._updated_ms
            body["pending_config"] = pending
        body["local_gateway"] = {"state_file": str(self.state_file), "last_update_error": self._last_error, **extra}
        return body


def _config_body(state: EndpointState, version: int, deployment: str, message: str) -> dict[str, Any]:
    return {
        "config_version": version,
        "served_entities": [
            {
                "name": e.name,
                "entity_name": e.model_name,
                "entity_version": e.model_version,
                "state": {"deployment": deployment, "deployment_state_message": message},
            }
            for e in state.served_entities
        ],
        "traffic_config": {
            "routes": [
                {"served_entity_name": e.name, "traffic_percentage": e.traffic_percent} for e in state.served_entities
            ]
        },
    }
