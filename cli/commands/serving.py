"""`mlops serve` and `mlops predict`: the local serving gateway and a client for it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the local serving gateway for an environment's endpoint (Databricks REST contract)"
    )
    serve.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--max-batch-rows",
        type=int,
        default=64,
        help="score concurrent requests together up to this many rows (0: one predict per request)",
    )
    serve.add_argument(
        "--log-flush-interval",
        type=float,
        default=1.0,
        help="seconds between writes of the inference table (default 1.0)",
    )
    serve.set_defaults(func=_serve)

    predict = subparsers.add_parser("predict", help="send a JSON request to the local serving gateway")
    predict.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(predict)
    body = predict.add_mutually_exclusive_group(required=True)
    body.add_argument("--json", type=Path, dest="json_file", help="request body file ('-' reads standard input)")
    body.add_argument(
        "--example", action="store_true", help="send the model's request example (ModelSpec.request_example)"
    )
    predict.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    predict.add_argument("--timeout", type=float, default=30.0)
    predict.set_defaults(func=_predict)


def _serve(args: argparse.Namespace) -> int:
    from local.serving.gateway import serve

    if args.max_batch_rows < 0:
        print("error: --max-batch-rows must be >= 0", file=sys.stderr)
        return 2
    if not args.log_flush_interval > 0:
        print("error: --log-flush-interval must be > 0", file=sys.stderr)
        return 2
    env = environment(args)
    try:
        serve(
            env,
            host=args.host,
            port=args.port,
            max_batch_rows=args.max_batch_rows,
            log_flush_interval=args.log_flush_interval,
        )
    except KeyboardInterrupt:
        # uvicorn re-raises Ctrl-C after its graceful shutdown (requests finished, inference log flushed).
        pass
    return 0


def _predict(args: argparse.Namespace) -> int:
    import httpx

    from local.paths import mlops_home
    from local.serving.auth import client_token

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise for a person
    env = environment(args)
    if args.example:
        body = json.dumps(request_example(env)).encode()
    elif str(args.json_file) == "-":
        body = sys.stdin.buffer.read()
    else:
        body = args.json_file.read_bytes()
    token = client_token(mlops_home() / "serving")
    url = f"{args.url.rstrip('/')}/serving-endpoints/{env.endpoint_name}/invocations"
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"Authorization": f"Bearer {token.value}", "Content-Type": "application/json"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as e:
        print(f"error: could not reach the gateway at {url}: {e}", file=sys.stderr)
        return 2
    served = response.headers.get("served-model-name")
    if served:
        print(
            f"# {response.status_code} from {served} ({response.headers.get('x-model-name')} "
            f"v{response.headers.get('x-model-version')})",
            file=sys.stderr,
        )
    try:
        print(json.dumps(response.json(), indent=2))
    except json.JSONDecodeError:
        print(response.text)
    return 0 if response.is_success else 1


def request_example(env) -> dict:
    """The endpoint's example request: the model's ``request_example`` as one record."""
    return {"dataframe_records": [dict(env.model.request_example)]}
