"""The local serving gateway: one environment's endpoint behind the Databricks Model Serving REST contract.

Routes (all but the probes need ``Authorization: Bearer <token>``):
    POST /serving-endpoints/{name}/invocations                         score; the traffic split picks the entity
    POST /serving-endpoints/{name}/served-models/{entity}/invocations  score on one served entity
    GET  /serving-endpoints/{name}, GET /api/2.0/serving-endpoints/{name}   config + state (Databricks shape)
    PUT  /api/2.0/serving-endpoints/{name}/config                      new served entities + routes (Databricks body)
    POST /serving-endpoints/{name}/reload                              re-read the deploy job's state file now
    GET  /health (process up), GET /ready (a config is live)

Every invocation, failed ones included, is a row of the inference table ``env.inference_table``
(``<catalog>.monitoring.<endpoint with _>_payload``, the name AI Gateway gives it on Databricks).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from mlflow.exceptions import MlflowException
from starlette.concurrency import run_in_threadpool

from infra.config import Environment
from jobs.serving.auth import Token
from jobs.serving.inference_log import InferenceLogger
from jobs.serving.payload import CLIENT_REQUEST_ID, PayloadError, decode
from jobs.serving.runtime import EndpointRuntime, LiveConfig, LoadedEntity, ModelLoader
from jobs.serving.state import (
    EndpointState,
    ServedEntity,
    StateError,
    inference_table_config,
    new_state,
    state_path,
)

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
JSON = "application/json"


@dataclass(frozen=True)
class GatewaySettings:
    env: Environment
    serving_dir: Path
    table_dir: Path
    token: Token
    poll_interval: float = 1.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    log_batch_size: int = 512
    log_flush_interval: float = 1.0
    # Micro-batching of concurrent requests per served entity (0 turns it off): see jobs.serving.batching.
    max_batch_rows: int = 64
    # OpenMP threads per scoring thread (None: the libraries' default): see jobs.serving.runtime.ThreadLimitedPredict.
    model_openmp_threads: int | None = 1


class HttpError(Exception):
    """An answer other than 200; ``entity`` is the served entity that handled the request, if one did."""

    def __init__(self, status: int, error_code: str, message: str, entity: LoadedEntity | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.entity = entity

    def body(self) -> bytes:
        return json.dumps({"error_code": self.error_code, "message": self.message}).encode()


def mlflow_model_loader(tracking_uri: str) -> ModelLoader:
    """Loads ``models:/<name>/<version>`` from the local MLflow registry at ``tracking_uri``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.pyfunc.load_model


def _predictions_json(raw: Any) -> bytes:
    from mlflow.pyfunc.scoring_server import predictions_to_json

    out = StringIO()
    predictions_to_json(raw, out)
    return out.getvalue().encode()


class Gateway:
    def __init__(self, settings: GatewaySettings, load_model: ModelLoader) -> None:
        self.settings = settings
        self.env = settings.env
        self.endpoint = settings.env.serving.endpoint_name
        self.runtime = EndpointRuntime(
            self.env.name,
            self.endpoint,
            state_path(settings.serving_dir, self.env.name, self.endpoint),
            load_model,
            max_batch_rows=settings.max_batch_rows,
            openmp_threads=settings.model_openmp_threads,
        )
        self.inference_log = InferenceLogger(
            settings.table_dir, batch_size=settings.log_batch_size, flush_interval=settings.log_flush_interval
        )
        self._started = False

    # Lifecycle: models load before the server accepts requests (uvicorn runs the lifespan first).
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.inference_log.start()
        result = self.runtime.reload("startup")
        if not result.ok:
            logger.warning("%s", result.message)
        self.runtime.watch(self.settings.poll_interval)
        logger.info(
            "serving endpoint %s (env %s); state file %s; inference table %s at %s; token from %s",
            self.endpoint,
            self.env.name,
            self.runtime.state_file,
            self.env.inference_table,
            self.settings.table_dir,
            self.settings.token.source,
        )

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.runtime.stop()
        self.inference_log.close()
        logger.info("inference log closed: %s", self.inference_log.stats())

    # Auth: 401 without credentials, 403 with wrong ones.
    def authorize(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise HttpError(
                401, "UNAUTHENTICATED", "missing Authorization header; send 'Authorization: Bearer <token>'"
            )
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise HttpError(401, "UNAUTHENTICATED", "the Authorization header must be 'Bearer <token>'")
        if not self.settings.token.matches(presented.strip()):
            raise HttpError(403, "PERMISSION_DENIED", "invalid token for this serving endpoint")

    def check_endpoint(self, name: str) -> None:
        if name != self.endpoint:
            raise HttpError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"serving endpoint {name!r} does not exist; this gateway serves {self.endpoint!r} ({self.env.name})",
            )

    def admit(self, request: Request, name: str) -> None:
        """Every endpoint route's gate: the caller's token first (401/403), then the endpoint's name (404)."""
        self.authorize(request)
        self.check_endpoint(name)

    async def read_body(self, request: Request) -> bytes:
        limit = self.settings.max_payload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, "REQUEST_LIMIT_EXCEEDED", f"request body is {declared} bytes; the limit is {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, "REQUEST_LIMIT_EXCEEDED", f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def score(self, live: LiveConfig, body: bytes, entity_name: str | None) -> tuple[LoadedEntity | None, bytes, str]:
        """Decode, route, validate and predict; returns the entity, the response body and the client request id.

        Raises ``HttpError`` for anything the caller must see as an error (the entity is attached for the log)."""
        request = decode_or_400(body)
        client_id = request.get(CLIENT_REQUEST_ID)
        if entity_name is None:
            served = live.pick()
        else:
            served = live.entity(entity_name)
            if served is None:
                names = ", ".join(e.entity.name for e in live.entities)
                raise HttpError(
                    404, "RESOURCE_DOES_NOT_EXIST", f"served entity {entity_name!r} does not exist; served: {names}"
                )
        try:
            data = served.spec.parse(request)
            params = request.get("params")
            if params is not None and served.accepts_params:
                raw = served.predict(data, params=params)
            elif served.batcher is not None and isinstance(data, pd.DataFrame):
                raw = served.batcher.predict(data)
            else:
                raw = served.predict(data)
        except PayloadError as e:
            raise HttpError(400, "BAD_REQUEST", str(e), served) from e
        except (MlflowException, ValueError, TypeError, KeyError) as e:
            # As in MLflow's scoring server: the model refusing the data is the caller's error.
            message = e.message if isinstance(e, MlflowException) else f"{type(e).__name__}: {e}"
            raise HttpError(400, "BAD_REQUEST", f"the model rejected the input: {message}", served) from e
        except Exception as e:
            logger.exception("served entity %s failed", served.entity.name)
            raise HttpError(500, "INTERNAL_ERROR", f"the model failed: {type(e).__name__}: {e}", served) from e
        return served, _predictions_json(raw), client_id

    async def invoke(self, request: Request, name: str, entity_name: str | None = None) -> Response:
        started = time.perf_counter()
        now = datetime.now(UTC)
        request_id = uuid.uuid4().hex
        body: bytes | None = None
        served: LoadedEntity | None = None
        client_id: str | None = None
        try:
            self.admit(request, name)
            body = await self.read_body(request)
            live = self.runtime.live
            if live is None:
                raise HttpError(503, "TEMPORARILY_UNAVAILABLE", self.runtime.no_champion_message())
            served, content, client_id = await run_in_threadpool(self.score, live, body, entity_name)
            status = 200
        except HttpError as e:
            served = e.entity
            status, content = e.status, e.body()
        except Exception as e:  # still answered and logged: the gateway keeps serving
            logger.exception("request %s failed", request_id)
            status, content = 500, HttpError(500, "INTERNAL_ERROR", f"{type(e).__name__}: {e}").body()
        headers = {"x-request-id": request_id}
        if served is not None:
            headers.update(
                {
                    "served-model-name": served.entity.name,
                    "x-model-name": served.entity.model_name,
                    "x-model-version": served.entity.model_version,
                }
            )
        duration_ms = (time.perf_counter() - started) * 1000
        self.inference_log.log(
            {
                "databricks_request_id": request_id,
                "client_request_id": client_id,
                "request_date": now.date(),
                "request_time": now,
                "endpoint_name": name,
                "served_entity_name": served.entity.name if served else None,
                "model_name": served.entity.model_name if served else None,
                "model_version": served.entity.model_version if served else None,
                "status_code": status,
                "execution_duration_ms": duration_ms,
                "request": body.decode("utf-8", errors="replace") if body is not None else None,
                "response": content.decode("utf-8", errors="replace"),
            }
        )
        return Response(content=content, status_code=status, media_type=JSON, headers=headers)

    def describe(self) -> dict[str, Any]:
        return self.runtime.describe(
            ai_gateway={"inference_table_config": inference_table_config(self.env)},
            extra={"inference_table": self.env.inference_table, "inference_log": self.inference_log.stats()},
        )

    def state_from_config_body(self, body: bytes) -> EndpointState:
        """A Databricks ``PUT .../config`` body (served_entities + traffic_config) as the deploy job's state."""
        try:
            config = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HttpError(400, "BAD_REQUEST", f"request body is not valid JSON: {e}") from e
        if not isinstance(config, dict) or not isinstance(config.get("served_entities"), list):
            raise HttpError(400, "BAD_REQUEST", "expected a JSON object with a 'served_entities' list")
        routes = (
            config.get("traffic_config", {}).get("routes") if isinstance(config.get("traffic_config"), dict) else None
        )
        entities = config["served_entities"]
        if routes is None and len(entities) == 1:
            routes = [{"served_entity_name": entities[0].get("name"), "traffic_percentage": 100}]
        if not isinstance(routes, list):
            raise HttpError(400, "BAD_REQUEST", "expected 'traffic_config.routes' when serving several entities")
        percent = {r.get("served_entity_name"): r.get("traffic_percentage") for r in routes if isinstance(r, dict)}
        try:
            served = []
            for e in entities:
                if not isinstance(e, dict) or not all(k in e for k in ("name", "entity_name", "entity_version")):
                    raise StateError("each served entity needs name, entity_name and entity_version")
                if e["name"] not in percent:
                    raise StateError(f"served entity {e['name']!r} has no route in traffic_config")
                traffic = percent[e["name"]]
                if isinstance(traffic, bool) or not isinstance(traffic, int):
                    raise StateError(f"traffic_percentage of {e['name']!r} must be an integer")
                served.append(ServedEntity(str(e["name"]), str(e["entity_name"]), str(e["entity_version"]), traffic))
            unknown = sorted(set(percent) - {s.name for s in served}, key=str)
            if unknown:
                raise StateError(f"routes name unknown served entities: {unknown}")
            return new_state(self.env.name, self.endpoint, served)
        except StateError as e:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", str(e)) from e


def decode_or_400(body: bytes) -> dict[str, Any]:
    try:
        return decode(body)
    except PayloadError as e:
        raise HttpError(400, "BAD_REQUEST", str(e)) from e


def _error(e: HttpError) -> Response:
    return Response(content=e.body(), status_code=e.status, media_type=JSON)


def create_app(gateway: Gateway) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(gateway.start)
        try:
            yield
        finally:
            await run_in_threadpool(gateway.stop)

    app = FastAPI(title=f"mlops serving gateway ({gateway.env.name})", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gateway

    @app.post("/serving-endpoints/{name}/invocations")
    async def invocations(name: str, request: Request) -> Response:
        return await gateway.invoke(request, name)

    @app.post("/serving-endpoints/{name}/served-models/{entity}/invocations")
    async def entity_invocations(name: str, entity: str, request: Request) -> Response:
        return await gateway.invoke(request, name, entity)

    async def get_endpoint(name: str, request: Request) -> Response:
        try:
            gateway.admit(request, name)
        except HttpError as e:
            return _error(e)
        return JSONResponse(gateway.describe())

    app.get("/serving-endpoints/{name}")(get_endpoint)
    app.get("/api/2.0/serving-endpoints/{name}")(get_endpoint)

    @app.put("/api/2.0/serving-endpoints/{name}/config")
    async def update_config(name: str, request: Request) -> Response:
        try:
            gateway.admit(request, name)
            state = gateway.state_from_config_body(await gateway.read_body(request))
        except HttpError as e:
            return _error(e)
        result = await run_in_threadpool(gateway.runtime.update, state)
        if not result.ok:
            return _error(HttpError(409, "UPDATE_FAILED", result.message))
        return JSONResponse(gateway.describe())

    @app.post("/serving-endpoints/{name}/reload")
    async def reload(name: str, request: Request) -> Response:
        try:
            gateway.admit(request, name)
        except HttpError as e:
            return _error(e)
        result = await run_in_threadpool(gateway.runtime.reload, "reload request")
        if not result.ok:
            status = 503 if gateway.runtime.live is None and gateway.runtime.last_error is None else 409
            return _error(
                HttpError(status, "UPDATE_FAILED" if status == 409 else "TEMPORARILY_UNAVAILABLE", result.message)
            )
        return JSONResponse(gateway.describe())

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        live = gateway.runtime.live
        if live is None:
            return JSONResponse({"ready": False, "message": gateway.runtime.no_champion_message()}, status_code=503)
        return JSONResponse({"ready": True, "config_version": live.version})

    return app


def build_gateway(env: Environment, *, token: Token | None = None, **overrides: Any) -> Gateway:
    """The gateway for ``env`` on the local state under ``$MLOPS_HOME`` (token, registry, inference table)."""
    from jobs.local.paths import mlflow_tracking_uri, mlops_home, table_path
    from jobs.serving.auth import server_token

    serving_dir = mlops_home() / "serving"
    settings = GatewaySettings(
        env=env,
        serving_dir=serving_dir,
        table_dir=table_path(env.inference_table),
        token=token or server_token(serving_dir),
        **overrides,
    )
    return Gateway(settings, mlflow_model_loader(mlflow_tracking_uri()))


def serve(
    env: Environment, host: str = "127.0.0.1", port: int = 8080, *, log_level: str = "info", **overrides: Any
) -> None:
    """Run the gateway with uvicorn until interrupted; in-flight requests finish and the inference log is flushed.

    ``overrides`` are ``GatewaySettings`` fields (e.g. ``max_batch_rows=0``)."""
    import uvicorn

    gateway = build_gateway(env, **overrides)
    config = uvicorn.Config(create_app(gateway), host=host, port=port, log_level=log_level, access_log=False)
    uvicorn.Server(config).run()
