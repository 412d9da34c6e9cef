"""How a model package says how `mlops demo` replays it: its optional ``models/<name>/replay.py``.

The demo's loop is the platform's (the graphs, the gateway, the monitors, the retraining); what it needs that is
about one model is the package's replay module, which defines:

``FIRST_DAY``, ``LAST_DAY``
    the days of the model's data a replay can cover (``datetime.date``): a window is whole months inside them.
``requests(rows) -> iterable of (client_request_id, record)``
    the live requests a client sends about scored rows (a pandas frame of the predictions table's key, event time
    and features), one a row, in the rows' order: the id the labels job knows the answer by, and the record sent.
``fit_reference(examples, seed) -> model``
    a model of the package's estimator trained on labelled examples (pandas) as the training job trains: the
    weekly-retrained reference.
``model_quality(model, examples) -> float | None``
    the weekly quality figure of a model (the reference, or the first champion loaded from the registry) on
    labelled examples; None when it is undefined.
``served_quality(rows) -> float | None``
    the same figure for what the loop served: labelled rows of the predictions table with the model's outputs.

and optionally ``ROWS`` (what the report calls a row, default "rows") and ``QUALITY`` (the figure's name, default
the model's primary validation metric).

``load_replay`` checks these are there, so a package without them fails before any service starts, with a
``ReplayError`` naming the model and what to add.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import spec.config  # noqa: F401  (first: spec.model imported before spec.config is a circular import)
from local.demo import ReplayError
from spec.model import MODELS_PACKAGE, ModelSpec, load_model_spec

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = {
    "FIRST_DAY": "the first day of the model's data (a datetime.date)",
    "LAST_DAY": "the last day of the model's data (a datetime.date)",
    "requests": "requests(rows) -> iterable of (client_request_id, record)",
    "fit_reference": "fit_reference(examples, seed) -> a fitted model",
    "model_quality": "model_quality(model, examples) -> float | None",
    "served_quality": "served_quality(rows) -> float | None",
}


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

    def requests(self, rows: pd.DataFrame) -> Iterable[tuple[str, dict[str, Any]]]:
        return self.module.requests(rows)

    def fit_reference(self, examples: pd.DataFrame, seed: int) -> Any:
        return self.module.fit_reference(examples, seed)

    def model_quality(self, model: Any, examples: pd.DataFrame) -> float | None:
        return self.module.model_quality(model, examples)

    def served_quality(self, rows: pd.DataFrame) -> float | None:
        return self.module.served_quality(rows)


@cache
def load_replay(name: str) -> ModelReplay:
    """Model ``name``'s replay; a ``ReplayError`` naming the model and what is missing when it has none (a model
    that does not exist is the ``ConfigError`` of ``load_model_spec``)."""
    spec = load_model_spec(name)
    module_name = f"{MODELS_PACKAGE}.{name}.replay"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ReplayError(
            f"model {name!r} has no replay ({MODELS_PACKAGE}/{name}/replay.py): the demo replays a model whose "
            f"package says how (see local/demo/replays.py: {', '.join(REQUIRED)})"
        ) from None
    missing = [f"{attr} ({what})" for attr, what in REQUIRED.items() if not hasattr(module, attr)]
    if missing:
        raise ReplayError(f"model {name!r}: {MODELS_PACKAGE}/{name}/replay.py must define " + "; ".join(missing))
    days = (module.FIRST_DAY, module.LAST_DAY)
    if not all(type(d) is date for d in days) or days[0] > days[1]:
        raise ReplayError(
            f"model {name!r}: FIRST_DAY and LAST_DAY of {MODELS_PACKAGE}/{name}/replay.py must be dates, the first "
            f"not after the last, got {days[0]!r} and {days[1]!r}"
        )
    not_callable = [a for a in REQUIRED if not a.isupper() and not callable(getattr(module, a))]
    if not_callable:
        raise ReplayError(f"model {name!r}: {not_callable} of {MODELS_PACKAGE}/{name}/replay.py must be functions")
    return ModelReplay(spec, module)
