"""How a window of examples is cut for training: a deterministic sample by key, and the held-out test period (the
last whole days of the window)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def deterministic_sample(df: DataFrame, max_rows: int, seed: int, key: Sequence[str]) -> DataFrame:
    """At most ``max_rows`` rows, chosen by a hash of the key: the same rows on every run and cluster."""
    from pyspark.sql import functions as F

    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    if not key:
        raise ValueError("a deterministic sample needs the key's columns, got none")
    order = F.xxhash64(*[F.col(c) for c in key], F.lit(seed))
    return df.withColumn("_sample_order", order).orderBy("_sample_order").limit(max_rows).drop("_sample_order")


def held_out_start(daily_rows: Mapping[date, int], test_fraction: float) -> date:
    """The first date of the held-out test period: the latest date such that the days from it on hold at least
    ``test_fraction`` of the rows, and at least one earlier day is left for training."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    days = sorted(d for d, n in daily_rows.items() if n > 0)
    if len(days) < 2:
        raise ValueError(f"a time-based split needs rows on at least 2 days, got {len(days)}")
    total = sum(daily_rows[d] for d in days)
    held_out = 0
    for i in range(len(days) - 1, 0, -1):
        held_out += daily_rows[days[i]]
        if held_out >= test_fraction * total:
            return days[i]
    return days[1]
