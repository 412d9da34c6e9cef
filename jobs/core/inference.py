"""What scoring decides, as pure column expressions: whether a flight can be scored (and if not, why), and the
prediction a probability stands for."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from models.flight_delay.columns import CATEGORICAL_FEATURES, FLIGHT_KEY

# The model's decision threshold, as its predict() applies it (argmax of two classes: 0.5 exactly is on time).
LATE_ABOVE = 0.5


def _missing(column: str) -> Column:
    value = F.col(column)
    return value.isNull() | (F.trim(value.cast("string")) == "")


def reject_reason() -> Column:
    """Null when the row can be scored; otherwise every problem, joined by "; ". The weather columns are optional
    (the model scores missing weather); the flight key and the schedule's features are not."""
    checks = [
        (F.greatest(*[_missing(c).cast("int") for c in FLIGHT_KEY]) == 1, "flight key incomplete"),
        *[(_missing(c), f"{c} missing") for c in CATEGORICAL_FEATURES],
        (
            F.col("distance").isNull() | F.isnan(F.col("distance")) | (F.col("distance") <= 0),
            "distance missing or not positive",
        ),
        (~F.coalesce(F.col("sched_hour").between(0, 23), F.lit(False)), "scheduled hour missing or outside 0..23"),
        (~F.coalesce(F.col("month").between(1, 12), F.lit(False)), "month missing or outside 1..12"),
        (F.col("day_of_week").isNull(), "scheduled date invalid"),
    ]
    reasons = [F.when(failed, F.lit(text)) for failed, text in checks]
    joined = F.concat_ws("; ", *reasons)
    return F.when(joined == "", F.lit(None).cast("string")).otherwise(joined)
