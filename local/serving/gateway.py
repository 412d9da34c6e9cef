"""The local serving gateway: one environment's endpoint behind the Databricks Model Serving REST contract.

Routes (all but the probes need ``Authorization: Bearer <token>``):
    POST /serving-endpoints/{name}/invocations                         score; the traffic split picks the entity
    POST /serving-endpoints/{name}/served-models/{entity}/invocations  score on one served entity
    GET  /serving-endpoints/{name}, GET /api/2.0/serving-endpoints/{name}   config + state (Databricks shape)
    PUT  /api/2.0/serving-endpoints/{name}/config                      new served entities + routes (Databricks body)
    POST /serving-endpoints/{name}/reload                              re-read the deploy job's state file now
    GET  /health (process up), GET /ready (a config is live)

Request and error bodies are the pydantic models of ``local.serving.payload``. Every endpoint route passes the
``admitted`` dependency (401, 403, then 404); an ``HttpError`` or a body's ``ValidationError`` (400, naming the
field) becomes the error body in ``error_response``, the app's exception handler. Every invocation, failed ones
included (at the gate too), is a row of the inference table ``env.inference_table``
(``<catalog>.monitoring.<endpoint with _>_payload``, the name AI Gateway gives it on Databricks): the scoring
routes are ``InvocationRoute``s, which log each call and answer it with its request id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from mlflow.exceptions import MlflowException
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from local.serving.auth import Token
from local.serving.inference_log import InferenceLogger
from local.serving.payload import (
    ConfigUpdate,
    ErrorBody,
    InvocationRequest,
    PayloadError,
    declared_schema,
    request_error,
)
from local.serving.runtime import EndpointRuntime, LiveConfig, LoadedEntity, ModelLoader
from local.serving.state import EndpointState, StateError, inference_table_config, new_state, state_path
from spec.config import Environment
from spec.errors import MlopsError

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
    # Micro-batching of concurrent requests per served entity (0 turns it off): see local.serving.batching.
    max_batch_rows: int = 64
    # OpenMP threads per scoring thread (None: the libraries' default): see local.serving.runtime.ThreadLimitedPredict.
    model_openmp_threads: int | None = 1


class HttpError(MlopsError):
    """An answer other than 200, with Databricks' error code."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> bytes:
        return ErrorBody(error_code=self.error_code, message=self.message).model_dump_json().encode()


async def error_response(_: Request, error: HttpError | ValidationError) -> Response:
    """The app's exception handler: an ``HttpError`` as its status and body, a request body's ``ValidationError``
    as 400 ``BAD_REQUEST`` with ``request_error``'s message, which names the field."""
    if isinstance(error, ValidationError):
        error = HttpError(400, "BAD_REQUEST", request_error(error))
    return Response(content=error.body(), status_code=error.status, media_type=JSON)


async def admitted(request: Request, name: str) -> None:
    """The dependency of every endpoint route: the caller's token first (401/403), then the endpoint's name (404)."""
    gateway: Gateway = request.app.state.gateway
    gateway.authorize(request)
    gateway.check_endpoint(name)


@dataclass
class Invocation:
    """One call of a scoring route, filled in as it gets through: what its inference table row records."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    body: bytes | None = None
    client_request_id: str | None = None
    served: LoadedEntity | None = None


class InvocationRoute(APIRoute):
    """A scoring route. Each call, whatever becomes of it (401 at the gate, 400, 503, a crash), is answered with
    its ``x-request-id`` (and the served entity's headers once one is picked) and logged by ``Gateway.record``.
    The route's dependencies run inside the handler wrapped here, so the gate's refusals are logged too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_and_log(request: Request) -> Response:
            call = request.state.invocation = Invocation()
            try:
                response = await handle(request)
            except (HttpError, ValidationError) as e:
                response = await error_response(request, e)
            except Exception as e:  # still answered and logged: the gateway keeps serving
                logger.exception("request %s failed", call.request_id)
                response = await error_response(request, HttpError(500, "INTERNAL_ERROR", f"{type(e).__name__}: {e}"))
            return request.app.state.gateway.record(call, request.path_params["name"], response)

        return handle_and_log


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
        self.endpoint = settings.env.endpoint_name
        self.runtime = EndpointRuntime(
            self.env.name,
            self.endpoint,
            state_path(settings.serving_dir, self.env.name, self.endpoint),
            load_model,
            max_batch_rows=settings.max_batch_rows,
            openmp_threads=settings.model_openmp_threads,
            declared_schema=declared_schema(self.env.model),
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
        unwritten = self.inference_log.close()
        stats = self.inference_log.stats()
        if unwritten:
            logger.error(
                "inference log closed: %d of %d rows are not in the inference table %s (%d spilled to files beside "
                "it, named in the errors above; the rest lost or still queued): %s",
                unwritten, stats["accepted"], self.settings.table_dir, stats["spilled"], stats,
            )  # fmt: skip
        else:
            logger.info("inference log closed: %s", stats)

    # The gate (see ``admitted``): 401 without credentials, 403 with wrong ones, then 404 for another endpoint.
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

    def score(self, live: LiveConfig, call: Invocation, entity_name: str | None) -> bytes:
        """Validate, route, read and predict ``call.body``; the response body. Records the client's request id and
        the served entity on ``call`` as soon as they are known, so that a failed call's log row has them too.

        Raises ``ValidationError`` for a body outside the contract, ``HttpError`` for anything else the caller must
        see as an error."""
        request = InvocationRequest.model_validate_json(call.body or b"")
        call.client_request_id = request.client_request_id
        if entity_name is None:
            served = live.pick()
        else:
            served = live.entity(entity_name)
            if served is None:
                names = ", ".join(e.entity.name for e in live.entities)
                raise HttpError(
                    404, "RESOURCE_DOES_NOT_EXIST", f"served entity {entity_name!r} does not exist; served: {names}"
                )
        call.served = served
        try:
            data = served.spec.parse(request)
            if request.params is not None and served.accepts_params:
                raw = served.predict(data, params=request.params)
            elif served.batcher is not None and isinstance(data, pd.DataFrame):
                raw = served.batcher.predict(data)
            else:
                raw = served.predict(data)
        except PayloadError as e:
            raise HttpError(400, "BAD_REQUEST", str(e)) from e
        except (MlflowException, ValueError, TypeError, KeyError) as e:
            # As in MLflow's scoring server: the model refusing the data is the caller's error.
            message = e.message if isinstance(e, MlflowException) else f"{type(e).__name__}: {e}"
            raise HttpError(400, "BAD_REQUEST", f"the model rejected the input: {message}") from e
        except Exception as e:
            logger.exception("served entity %s failed", served.entity.name)
            raise HttpError(500, "INTERNAL_ERROR", f"the model failed: {type(e).__name__}: {e}") from e
        return _predictions_json(raw)

    async def invoke(self, request: Request, entity_name: str | None = None) -> Response:
        """A scoring route's work, past the gate: the call is ``request.state.invocation`` (see ``InvocationRoute``)."""
        call: Invocation = request.state.invocation
        call.body = await self.read_body(request)
        live = self.runtime.live
        if live is None:
            raise HttpError(503, "TEMPORARILY_UNAVAILABLE", self.runtime.no_champion_message())
        content = await run_in_threadpool(self.score, live, call, entity_name)
        return Response(content=content, media_type=JSON)

    def record(self, call: Invocation, endpoint_name: str, response: Response) -> Response:
        """``response`` with the call's headers, once the call is a row of the inference table."""
        response.headers["x-request-id"] = call.request_id
        served = call.served
        if served is not None:
            response.headers.update(
                {
                    "served-model-name": served.entity.name,
                    "x-model-name": served.entity.model_name,
                    "x-model-version": served.entity.model_version,
                }
            )
        duration_ms = (time.perf_counter() - call.started) * 1000
        self.inference_log.log(
            {
                "databricks_request_id": call.request_id,
                "client_request_id": call.client_request_id,
                "request_date": call.at.date(),
                "request_time": call.at,
                "endpoint_name": endpoint_name,
                "served_entity_name": served.entity.name if served else None,
                "model_name": served.entity.model_name if served else None,
                "model_version": served.entity.model_version if served else None,
                "status_code": response.status_code,
                "execution_duration_ms": duration_ms,
                "request": call.body.decode("utf-8", errors="replace") if call.body is not None else None,
                "response": bytes(response.body).decode("utf-8", errors="replace"),
            }
        )
        return response

    def describe(self) -> dict[str, Any]:
        return self.runtime.describe(
            ai_gateway={"inference_table_config": inference_table_config(self.env)},
            extra={
                "inference_table": self.env.inference_table,
                "inference_log": self.inference_log.stats(),
                # What a client sends and gets back, from the model's declaration: its example request, and whether
                # it answers a class (classification) or a number (regression).
                "model": {
                    "name": self.env.model_name,
                    "problem_type": self.env.model.problem_type,
                    "request_example": {"dataframe_records": [dict(self.env.model.request_example)]},
                },
            },
        )

    def state_from(self, update: ConfigUpdate) -> EndpointState:
        """A ``PUT .../config`` body as the deploy job's state (400 ``INVALID_PARAMETER_VALUE`` if it cannot be)."""
        try:
            return new_state(self.env.name, self.endpoint, update.entities())
        except StateError as e:
            raise HttpError(400, "INVALID_PARAMETER_VALUE", str(e)) from e


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
    app.add_exception_handler(HttpError, error_response)
    app.add_exception_handler(ValidationError, error_response)
    gate = [Depends(admitted)]

    async def invocations(request: Request) -> Response:
        return await gateway.invoke(request)

    async def entity_invocations(entity: str, request: Request) -> Response:
        return await gateway.invoke(request, entity)

    for path, endpoint in (
        ("/serving-endpoints/{name}/invocations", invocations),
        ("/serving-endpoints/{name}/served-models/{entity}/invocations", entity_invocations),
    ):
        app.router.add_api_route(
            path, endpoint, methods=["POST"], dependencies=gate, route_class_override=InvocationRoute
        )

    @app.get("/serving-endpoints/{name}", dependencies=gate)
    @app.get("/api/2.0/serving-endpoints/{name}", dependencies=gate)
    async def get_endpoint() -> Response:
        return JSONResponse(gateway.describe())

    @app.put("/api/2.0/serving-endpoints/{name}/config", dependencies=gate)
    async def update_config(request: Request) -> Response:
        state = gateway.state_from(ConfigUpdate.model_validate_json(await gateway.read_body(request)))
        result = await run_in_threadpool(gateway.runtime.update, state)
        if not result.ok:
            raise HttpError(409, "UPDATE_FAILED", result.message)
        return JSONResponse(gateway.describe())

    @app.post("/serving-endpoints/{name}/reload", dependencies=gate)
    async def reload() -> Response:
        result = await run_in_threadpool(gateway.runtime.reload, "reload request")
        if not result.ok:
            if gateway.runtime.live is None and gateway.runtime.last_error is None:
                raise HttpError(503, "TEMPORARILY_UNAVAILABLE", result.message)
            raise HttpError(409, "UPDATE_FAILED", result.message)
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
    from local.paths import mlflow_tracking_uri, mlops_home, table_path
    from local.serving.auth import server_token

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
    """Run the gateway with uvicorn until interrupted; requests under way finish and the inference log is flushed.

    ``overrides`` are ``GatewaySettings`` fields (e.g. ``max_batch_rows=0``)."""
    import uvicorn

    gateway = build_gateway(env, **overrides)
    config = uvicorn.Config(create_app(gateway), host=host, port=port, log_level=log_level, access_log=False)
    uvicorn.Server(config).run()
