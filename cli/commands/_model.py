"""The ``--model NAME`` option of the commands that are about a model (not a command module: ``cli.main`` skips
names starting with an underscore).

An environment runs one model for now (``Environment.model_name``): ``--model`` may be left out, and names that model
when given; any other name is an error that says which model the environment runs.
"""

from __future__ import annotations

import argparse

from spec.config import ENVIRONMENTS, Environment
from spec.errors import MlopsError


class ModelNotRun(MlopsError):
    """``--model`` names a model the environment does not run."""


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, metavar="NAME", help="the model (default: the one the environment runs)"
    )


def model_name(env: Environment, name: str | None) -> str:
    """``name``, or the environment's model when None; a ``ModelNotRun`` naming what the environment runs when it
    does not run ``name``."""
    if name is None or name == env.model_name:
        return env.model_name
    raise ModelNotRun(
        f"environment {env.name!r} does not run model {name!r}: it runs {env.model_name!r} (give --model "
        f"{env.model_name}, or leave --model out)"
    )


def environment(args: argparse.Namespace) -> Environment:
    """The environment of ``--env``, once ``--model`` (when given) is checked to be a model it runs."""
    env = ENVIRONMENTS[args.env]
    model_name(env, getattr(args, "model", None))
    return env
