"""The ``--model NAME`` option of the commands that are about a model (not a command module: ``cli.main`` skips
names starting with an underscore).

An environment runs the models config lists for it (``MODELS`` in spec/config/environments.py). ``--model`` may be
left out when it runs one; with several, a command about a model must say which, and a name the environment does
not run is an error that lists the ones it runs.
"""

from __future__ import annotations

import argparse

from spec.config import ENVIRONMENTS, Environment
from spec.errors import MlopsError


class ModelNotRun(MlopsError):
    """``--model`` names a model the environment does not run, or is missing where it runs several."""


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="the model (one of the environment's models; may be left out when it runs one)",
    )


def scoped(env: Environment, name: str | None) -> Environment:
    """``env`` as its model ``name`` sees it (its only model when None); a ``ModelNotRun`` naming the models it runs
    when it does not run ``name``, or when it runs several and ``name`` is None."""
    runs = ", ".join(env.model_names)
    if name is None:
        if len(env.model_names) > 1:
            raise ModelNotRun(f"environment {env.name!r} runs several models ({runs}): say which with --model NAME")
        return env.with_model(env.model_names[0])
    if name not in env.model_names:
        raise ModelNotRun(f"environment {env.name!r} does not run model {name!r}: it runs {runs} (give --model NAME)")
    return env.with_model(name)


def model_name(env: Environment, name: str | None) -> str:
    """The model ``--model`` means in ``env`` (see ``scoped``)."""
    return scoped(env, name).model_name


def environment(args: argparse.Namespace) -> Environment:
    """The environment of ``--env`` as the model of ``--model`` sees it."""
    return scoped(ENVIRONMENTS[args.env], getattr(args, "model", None))
