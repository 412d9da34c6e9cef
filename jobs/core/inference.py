"""What scoring decides, as pure column expressions: whether a model's row can be scored (and if not, why), and the
class a probability stands for."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from spec.model import ModelSpec

# A classifier's decision threshold, as its predict() applies it (argmax of two classes: 0.5 exactly is class 0).
POSITIVE_ABOVE = 0.5
# The name the training job still imports (jobs/train.py is converted separately).
LATE_ABOVE = POSITIVE_ABOVE


def key_noun(spec: ModelSpec) -> str:
    """What the platform's messages call one value of the model's key: ``sale_key`` -> "sale key"."""
    return spec.key_name.replace("_", " ")


def _missing(column: str) -> Column:
    value = F.col(column)
    return value.isNull() | (F.trim(value.cast("string")) == "")


def _missing_number(column: str) -> Column:
    value = F.col(column)
    return value.isNull() | F.isnan(value.cast("double"))


def reject_reason(spec: ModelSpec, model_checks: Sequence[tuple[Column, str]] = ()) -> Column:
    """Null when the row can be scored; otherwise every problem, joined by "; ".

    The platform's checks: a part of the key missing ("<key> incomplete"), a non-optional feature missing
    ("<feature> missing"); then the model's own checks (``row_checks`` of its package), in their order. A numeric
    feature's missing value is usually part of a model's range check ("price missing or not positive"): the
    platform names it only when none of the model's checks rejects the row, so a reason is never said twice."""
    required = [f for f in spec.features if not f.optional]
    key_incomplete = reduce(operator.or_, [_missing(c) for c in spec.key_names])
    platform = [(key_incomplete, f"{key_noun(spec)} incomplete")]
    platform += [(_missing(f.name), f"{f.name} missing") for f in required if f.kind == "categorical"]
    model = [F.when(failed, F.lit(text)) for failed, text in model_checks]
    model_reasons = F.concat_ws("; ", *model) if model else F.lit("")
    numeric = [
        F.when(_missing_number(f.name) & (model_reasons == ""), F.lit(f"{f.name} missing"))
        for f in required
        if f.kind == "numeric"
    ]
    reasons = [F.when(failed, F.lit(text)) for failed, text in platform] + numeric + model
    joined = F.concat_ws("; ", *reasons)
    return F.when(joined == "", F.lit(None).cast("string")).otherwise(joined)
