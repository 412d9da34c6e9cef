"""A stand-in Databricks workspace on a loopback port, for contract tests of the real adapters.

No workspace can be reached from here, so this fake answers the REST calls the project's Databricks adapters make,
over real HTTP: the Unity Catalog model registry as MLflow's ``databricks-uc`` store speaks it
(``/api/2.0/mlflow/unity-catalog/...``), Model Serving and Lakeflow Jobs as databricks-sdk speaks them
(``/api/2.0/serving-endpoints``, ``/api/2.2/jobs``).
The clients under test are the real ``mlflow.MlflowClient`` and ``databricks.sdk.WorkspaceClient``, configured by
``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN``; the fake keeps state (aliases, tags, endpoint config) and records every
call (method, path, JSON body) for the test to assert on. Only the routes the adapters use are implemented: any other
call is a 501 the test will see.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "dapi-contract-test"


@dataclass
class RegisteredModel:
    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    # version -> tags
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Endpoint:
    name: str
    served_entities: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Job:
    """A deployed job; ``outcome`` is how each of its runs ends: a result state (``SUCCESS``, ``FAILED``, ...), or
    ``None`` for a run that never ends (until it is cancelled)."""

    job_id: int
    name: str
    outcome: str | None = "SUCCESS"
    # Polls of a run before it reports its end (it is RUNNING until then).
    polls_to_finish: int = 1
    # False: the caller lacks CAN_MANAGE_RUN on it (run-now answers 403).
    may_run: bool = True


@dataclass
class JobRun:
    run_id: int
    job: Job
    job_parameters: dict[str, str]
    polls: int = 0
    cancelled: bool = False


class FakeWorkspace:
    def __init__(self) -> None:
        self.models: dict[str, RegisteredModel] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, JobRun] = {}
        self.calls: list[tuple[str, str, dict | None]] = []
        self._lock = threading.Lock()

    # What the tests read: the calls of one API, without the SDK's host-metadata probes.
    def api_calls(self, prefix: str = "/api/") -> list[tuple[str, str, dict | None]]:
        return [c for c in self.calls if c[1].startswith(prefix)]

    def handle(self, method: str, url: str, body: dict | None) -> tuple[int, dict]:
        with self._lock:
            self.calls.append((method, url, body))
            parsed = urlparse(url)
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            path = parsed.path
            if path == "/.well-known/databricks-config":
                return 404, {"error_code": "NOT_FOUND", "message": "no host metadata"}
            if path.startswith("/api/2.0/mlflow/unity-catalog/"):
                return self._registry(method, path.removeprefix("/api/2.0/mlflow/unity-catalog/"), query, body or {})
            if path.startswith("/api/2.0/serving-endpoints/"):
                return self._serving(method, path.removeprefix("/api/2.0/serving-endpoints/"), body or {})
            if path.startswith("/api/2.2/jobs/"):
                return self._jobs(method, path.removeprefix("/api/2.2/jobs/"), query, body or {})
            return 501, {"error_code": "NOT_IMPLEMENTED", "message": f"{method} {path} is not faked"}

    def _model(self, name: str) -> RegisteredModel | None:
        return self.models.get(name)

    def _registry(self, method: str, route: str, query: dict, body: dict) -> tuple[int, dict]:
        name = query.get("name") or body.get("name", "")
        model = self._model(name)
        if model is None:
            return 404, {"error_code": "NOT_FOUND", "message": f"Registered model '{name}' does not exist."}
        if (method, route) == ("GET", "registered-models/get"):
            aliases = [{"alias": a, "version": v} for a, v in sorted(model.aliases.items())]
            return 200, {"registered_model": {"name": model.name, "aliases": aliases}}
        if (method, route) == ("POST", "registered-models/alias"):
            model.aliases[body["alias"]] = str(body["version"])
            return 200, {}
        if (method, route) == ("DELETE", "registered-models/alias"):
            model.aliases.pop(body["alias"], None)
            return 200, {}
        version = query.get("version") or str(body.get("version", ""))
        if version not in model.versions:
            return 404, {"error_code": "NOT_FOUND", "message": f"Model version {name}/{version} does not exist."}
        if (method, route) == ("GET", "model-versions/get"):
            tags = [{"key": k, "value": v} for k, v in sorted(model.versions[version].items())]
            return 200, {"model_version": {"name": name, "version": version, "tags": tags, "status": "READY"}}
        if (method, route) == ("POST", "model-versions/set-tag"):
            model.versions[version][body["key"]] = body["value"]
            return 200, {}
        return 501, {"error_code": "NOT_IMPLEMENTED", "message": f"{method} unity-catalog/{route} is not faked"}

    def _serving(self, method: str, route: str, body: dict) -> tuple[int, dict]:
        name, _, rest = route.partition("/")
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Endpoint {name} does not exist."}
        if method == "PUT" and rest == "config":
            endpoint.served_entities = body.get("served_entities", [])
            endpoint.routes = (body.get("traffic_config") or {}).get("routes", [])
        elif not (method == "GET" and rest == ""):
            return 501, {"error_code": "NOT_IMPLEMENTED", "message": f"{method} serving-endpoints/{route} is not faked"}
        # Updates complete at once here: the SDK's waiter sees NOT_UPDATING on its first poll.
        return 200, {
            "name": endpoint.name,
            "id": f"id-{endpoint.name}",
            "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
            "config": {"served_entities": endpoint.served_entities, "traffic_config": {"routes": endpoint.routes}},
        }

    def add_job(
        self, name: str, outcome: str | None = "SUCCESS", polls_to_finish: int = 1, may_run: bool = True
    ) -> Job:
        job = Job(1000 + len(self.jobs), name, outcome=outcome, polls_to_finish=polls_to_finish, may_run=may_run)
        self.jobs[job.job_id] = job
        return job

    def _jobs(self, method: str, route: str, query: dict, body: dict) -> tuple[int, dict]:
        if (method, route) == ("GET", "list"):
            # The API filters by exact name; a list without a name (every job) is not needed by the callers.
            named = [j for j in self.jobs.values() if j.name == query.get("name")]
            return 200, {"jobs": [{"job_id": j.job_id, "settings": {"name": j.name}} for j in named], "has_more": False}
        if (method, route) == ("POST", "run-now"):
            job = self.jobs.get(int(body.get("job_id", 0)))
            if job is None:
                return 400, {
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": f"Job {body.get('job_id')} does not exist.",
                }
            if not job.may_run:
                return 403, {
                    "error_code": "PERMISSION_DENIED",
                    "message": f"User does not have Run permission on job {job.job_id}.",
                }
            run = JobRun(run_id=5000 + len(self.runs), job=job, job_parameters=body.get("job_parameters") or {})
            self.runs[run.run_id] = run
            return 200, {"run_id": run.run_id, "number_in_job": run.run_id}
        run = self.runs.get(int(query.get("run_id") or body.get("run_id") or 0))
        if run is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run does not exist."}
        if (method, route) == ("GET", "runs/get"):
            run.polls += 1
            return 200, self._run_json(run)
        if (method, route) == ("POST", "runs/cancel"):
            run.cancelled = True
            return 200, {}
        return 501, {"error_code": "NOT_IMPLEMENTED", "message": f"{method} jobs/{route} is not faked"}

    @staticmethod
    def _run_json(run: JobRun) -> dict:
        if run.cancelled:
            state = {"life_cycle_state": "TERMINATED", "result_state": "CANCELED", "state_message": "cancelled"}
        elif run.job.outcome is None or run.polls < run.job.polls_to_finish:
            state = {"life_cycle_state": "RUNNING", "state_message": "In run"}
        else:
            message = "" if run.job.outcome == "SUCCESS" else f"Task validate failed with message: {run.job.outcome}"
            state = {"life_cycle_state": "TERMINATED", "result_state": run.job.outcome, "state_message": message}
        return {
            "run_id": run.run_id,
            "job_id": run.job.job_id,
            "run_page_url": f"https://workspace.example/jobs/{run.job.job_id}/runs/{run.run_id}",
            "state": state,
        }


def _handler(workspace: FakeWorkspace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                status, answer = 401, {"error_code": "UNAUTHENTICATED", "message": "bad or missing token"}
            else:
                status, answer = workspace.handle(self.command, self.path, json.loads(raw) if raw else None)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:  # quiet: the test asserts on workspace.calls
            pass

    return Handler


@contextmanager
def running(workspace: FakeWorkspace) -> Iterator[str]:
    """Serve ``workspace`` on 127.0.0.1 until the block ends; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(workspace))
    thread = threading.Thread(target=server.serve_forever, name="fake-workspace", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def signed_in(workspace: FakeWorkspace, monkeypatch: Any) -> Iterator[FakeWorkspace]:
    """Serve ``workspace`` and point the databricks-sdk at it with its token (``monkeypatch`` undoes the environment),
    clearing any profile or OAuth client of the machine so that nothing signs in elsewhere."""
    with running(workspace) as url:
        for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DATABRICKS_HOST", url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        yield workspace
