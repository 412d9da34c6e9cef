"""`mlops publish`, `mlops lookup` and `mlops dynamodb`: the online store (DynamoDB) on this machine.

`publish` and `lookup` use the local DynamoDB that ``MLOPS_DYNAMODB_ENDPOINT`` points at, or start dynalite (its
tables kept under ``$MLOPS_HOME/dynamodb``) for the duration of the command. `dynamodb` keeps one running in the
foreground for other commands and the local workflow runner.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS

TASK_KEY = "publish"


def register(subparsers: argparse._SubParsersAction) -> None:
    publish = subparsers.add_parser(
        "publish", help="publish the latest prediction per key to the local online store (DynamoDB)"
    )
    publish.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(publish)
    publish.add_argument("--full", action="store_true", help="republish every prediction, not only the new ones")
    publish.set_defaults(func=_publish)

    lookup = subparsers.add_parser("lookup", help="print one item of the local online store as JSON")
    lookup.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(lookup)
    lookup.add_argument(
        "--key",
        required=True,
        help="the item's key: the values of the model's online key (ModelSpec.online_key), in its order, joined by '#'",
    )
    lookup.set_defaults(func=_lookup)

    dynamodb = subparsers.add_parser("dynamodb", help="run the local DynamoDB (dynalite) until Ctrl-C")
    dynamodb.add_argument("--port", type=int, default=None, help="loopback port (default: a free one)")
    dynamodb.add_argument("--in-memory", action="store_true", help="keep the tables in memory, not in $MLOPS_HOME")
    dynamodb.set_defaults(func=_dynamodb)


@contextmanager
def local_dynamodb() -> Iterator[str]:
    """The endpoint of the running local DynamoDB, or of a dynalite started until the block ends (exported as
    ``MLOPS_DYNAMODB_ENDPOINT`` meanwhile, for the job's platform)."""
    from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite, dynalite_dir
    from local.settings import local_settings

    running = local_settings().dynamodb_endpoint
    if running:
        yield running
        return
    with Dynalite(dynalite_dir()) as dynalite:
        os.environ[DYNAMODB_ENDPOINT_ENV] = dynalite.endpoint_url
        try:
            yield dynalite.endpoint_url
        finally:
            del os.environ[DYNAMODB_ENDPOINT_ENV]


@contextmanager
def task_values_file() -> Iterator[Path]:
    """Where the job's task values land, read back as the local workflow runner reads them."""
    from local.settings import TASK_KEY_ENV, TASK_VALUES_DIR_ENV

    saved = {name: os.environ.get(name) for name in (TASK_VALUES_DIR_ENV, TASK_KEY_ENV)}
    with tempfile.TemporaryDirectory(prefix="mlops-publish-") as folder:
        os.environ[TASK_VALUES_DIR_ENV], os.environ[TASK_KEY_ENV] = folder, TASK_KEY
        try:
            yield Path(folder) / f"{TASK_KEY}.json"
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def summary(env_name: str, values: dict, model: str | None = None) -> str:
    table = ENVIRONMENTS[env_name].with_model(model).online_table_name
    return (
        f"published {values['published_items']} items to {table} ({values['kept_newer']} kept newer, "
        f"{values['unchanged']} unchanged); watermark {values['watermark'] or 'none'}"
    )


def _publish(args: argparse.Namespace) -> int:
    from jobs import publish
    from local.dynalite import DynaliteError

    env = environment(args)
    argv = ["--env", args.env, "--model", env.model_name, *(["--full"] if args.full else [])]
    try:
        with local_dynamodb(), task_values_file() as values_path:
            code = publish.main(argv)
            values = json.loads(values_path.read_text()) if values_path.exists() else {}
    except DynaliteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if code == 0:
        print(summary(args.env, values, env.model_name))
    return code


def item_json(item: dict) -> str:
    """An item as JSON: DynamoDB numbers as JSON numbers (integers stay integers)."""

    def number(value: object) -> int | float:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(item, default=number, sort_keys=True)


def _lookup(args: argparse.Namespace) -> int:
    from jobs.platform.online_store import OnlineStoreError
    from local.dynalite import DynaliteError, local_online_store

    env = environment(args)
    try:
        with local_dynamodb():
            item = local_online_store(env).get(args.key)
    except (DynaliteError, OnlineStoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if item is None:
        online_key = "#".join(env.model.online_key)
        print(f"no item with key {args.key!r} ({online_key}) in {env.online_table_name}", file=sys.stderr)
        return 1
    print(item_json(item))
    return 0


def _dynamodb(args: argparse.Namespace) -> int:
    import signal

    from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite, DynaliteError, dynalite_dir

    try:
        dynalite = Dynalite(None if args.in_memory else dynalite_dir(), port=args.port).start()
    except DynaliteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"export {DYNAMODB_ENDPOINT_ENV}={dynalite.endpoint_url}   # Ctrl-C stops it", flush=True)
    # A plain `kill` ends the command through the same `finally` as Ctrl-C, so dynalite never outlives it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        dynalite.stop()
    return 0
