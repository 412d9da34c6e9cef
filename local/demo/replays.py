"""How a model package says how `mlops demo` replays it: its optional ``models/<name>/replay.py``.

The demo's loop is the platform's (the graphs, the gateway, the monitors, the retraining, the references retrained
with the package's own estimator); what it needs that only the model knows is in the package's replay module:

``FIRST_DAY``, ``LAST_DAY`` (required)
    the days of the model's data a replay can cover (``datetime.date``): a window is whole months inside them.
``ROWS`` (optional, default "rows")
    what the report calls one of the model's rows.
``QUALITY`` (optional, default the model's ``validation.primary_metric``)
    the weekly quality figure the loop and the references are compared on: a metric of the model's problem type
    (``spec.model.METRICS``).
``requests(rows) -> iterable of (client_request_id, record)`` (optional)
    the live requests a client sends about scored rows (a pandas frame of the predictions table's key, event time
    and features), one a row, in the rows' order. Without it, a client sends the features it knows
    (``ModelSpec.client_features``) named by the row's key (``local.demo.traffic.request_id``).

``load_replay`` checks the module, so a package without one (or with a wrong one) fails before any service starts,
with a ``ReplayError`` naming the model and what to write.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import spec.config  # noqa: F401  (first: spec.model imported before spec.config is a circular import)
from local.demo import ReplayError
from spec.model import METRICS, MODELS_PACKAGE, ModelSpec, load_model_spec

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = {
    "FIRST_DAY": "the first day of the model's data (a datetime.date)",
    "LAST_DAY": "the last day of the model's data (a datetime.date)",
}

Requests = Callable[["pd.DataFrame"], Iterable[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class ModelReplay:
    """A model's replay: its declaration and its replay module (see the module's docstring)."""

    spec: ModelSpec
    module: ModuleType

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def first_day(self) -> date:
        return self.module.FIRST_DAY

    @property
    def last_day(self) -> date:
        return self.module.LAST_DAY

    @property
    def rows(self) -> str:
        return getattr(self.module, "ROWS", "rows")

    @property
    def quality(self) -> str:
        return getattr(self.module, "QUALITY", self.spec.validation.primary_metric)

    @property
    def requests(self) -> Requests | None:
        """The package's own ``requests``, or None (the demo's default then)."""
        return getattr(self.module, "requests", None)


@cache
def load_replay(name: str) -> ModelReplay:
    """Model ``name``'s replay; a ``ReplayError`` naming the model and what is missing when it has none or it is
    wrong (a model that does not exist is the ``ConfigError`` of ``load_model_spec``)."""
    spec = load_model_spec(name)
    module_name = f"{MODELS_PACKAGE}.{name}.replay"
    where = f"{MODELS_PACKAGE}/{name}/replay.py"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ReplayError(
            f"model {name!r} has no replay ({where}): the demo replays a model whose package says how; define "
            f"{', '.join(REQUIRED)} there (see local/demo/replays.py)"
        ) from None
    missing = [f"{attr} ({what})" for attr, what in REQUIRED.items() if not hasattr(module, attr)]
    if missing:
        raise ReplayError(f"model {name!r}: {where} must define " + "; ".join(missing))
    days = (module.FIRST_DAY, module.LAST_DAY)
    if not all(type(d) is date for d in days) or days[0] > days[1]:
        raise ReplayError(
            f"model {name!r}: FIRST_DAY and LAST_DAY of {where} must be dates, the first not after the last, got "
            f"{days[0]!r} and {days[1]!r}"
        )
    replay = ModelReplay(spec, module)
    known = METRICS[spec.problem_type]
    if replay.quality not in known:
        raise ReplayError(
            f"model {name!r}: QUALITY of {where} is {replay.quality!r}, not a metric of a {spec.problem_type} model: "
            f"write one of {list(known)}"
        )
    if hasattr(module, "requests") and not callable(module.requests):
        raise ReplayError(f"model {name!r}: requests of {where} must be a function requests(rows)")
    return replay
