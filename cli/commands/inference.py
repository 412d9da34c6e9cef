"""`mlops land` drops a day's rows of the model's streamed source where the streaming job reads them; `mlops stream`
runs that job.

Batch scoring is a workflow: `mlops run batch-inference --env ENV --param start_date=... --param end_date=...`.
"""

from __future__ import annotations

import argparse
from datetime import date

from cli.commands._model import add_model_option, environment
from spec.config import ENVIRONMENTS


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    land = subparsers.add_parser("land", help="land a day's rows of the model's streamed source for the streaming job")
    land.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(land)
    land.add_argument("--date", required=True, type=_date, help="the (first) day, YYYY-MM-DD")
    land.add_argument("--to-date", type=_date, help="the last day, inclusive (default: --date)")
    land.set_defaults(func=_land)
    stream = subparsers.add_parser("stream", help="score the landed rows with the champion (streaming-inference)")
    stream.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    add_model_option(stream)
    stream.add_argument(
        "--available-now", action="store_true", help="process what has landed, then stop (default: run until Ctrl-C)"
    )
    stream.add_argument("--interval", default="10 seconds", help="micro-batch interval when running continuously")
    stream.set_defaults(func=_stream)


def _land(args: argparse.Namespace) -> int:
    from local.landing import land_rows

    files = land_rows(environment(args), args.date, args.to_date or args.date)
    for path in files:
        print(path)
    return 0


def _stream(args: argparse.Namespace) -> int:
    from jobs.streaming_inference import main

    env = environment(args)
    trigger = "available-now" if args.available_now else "continuous"
    return main(["--env", args.env, "--model", env.model_name, "--trigger", trigger, "--interval", args.interval])
