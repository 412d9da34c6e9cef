"""The local endpoint for one client call from a job: the serving gateway started in this process on a free
loopback port, the request sent over HTTP with the bearer token as any client sends it, then the gateway stopped.

On Databricks the endpoint is always up and a job queries it (``jobs.platform.serving.DatabricksServing.query``).
Here nothing serves while a job runs unless a person started ``mlops serve``, so the local serving adapter brings the
endpoint up for the call: the same gateway (``local.serving.gateway``), the same state file the deploy job wrote, the
same inference table. Stopping it flushes the inference log, so the request's row is in the table when this returns.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

from spec.config import Environment

logger = logging.getLogger(__name__)

READY_SECONDS = 120.0


class EndpointCallError(RuntimeError):
    """The local endpoint did not come up or did not answer 200; the message says which and why."""


def query_endpoint(env: Environment, body: dict[str, Any], *, timeout: float = 60.0) -> list[Any]:
    """The ``predictions`` the local endpoint of ``env`` answers to ``body`` (a Databricks invocations body)."""
    import httpx
    import uvicorn

    from local.paths import mlops_home
    from local.serving.auth import client_token
    from local.serving.gateway import build_gateway, create_app

    gateway = build_gateway(env, log_flush_interval=0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(gateway), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    # Not the main thread: uvicorn installs no signal handlers there, and should_exit stops it gracefully.
    thread = threading.Thread(target=server.run, name=f"gateway-{env.endpoint_name}", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, thread)
        token = client_token(mlops_home() / "serving").value
        response = httpx.post(
            f"{base}/serving-endpoints/{env.endpoint_name}/invocations",
            content=json.dumps(body, default=str),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    if response.status_code != 200:
        raise EndpointCallError(f"endpoint {env.endpoint_name} answered {response.status_code}: {response.text}")
    return list(response.json().get("predictions") or [])


def _wait_ready(base: str, thread: threading.Thread) -> None:
    """Until the gateway answers; then it is ready (the models load before it answers) or says why not."""
    import httpx

    deadline = time.monotonic() + READY_SECONDS
    while True:
        if not thread.is_alive():
            raise EndpointCallError(f"the local gateway at {base} stopped before it answered")
        try:
            answer = httpx.get(f"{base}/ready", timeout=2)
            break
        except httpx.HTTPError as error:
            if time.monotonic() > deadline:
                raise EndpointCallError(
                    f"the local gateway at {base} did not answer in {READY_SECONDS:.0f} s: {error}"
                ) from error
        time.sleep(0.2)
    if answer.status_code != 200:
        raise EndpointCallError(f"the local endpoint is not ready: {answer.json().get('message', answer.text)}")
