"""Metrics overall and per slice (origin, carrier), with the minimum row count."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from jobs.core.decisions import slice_problems
from jobs.core.evaluation import SliceMetric, classification_metrics, roc_auc, slice_metrics
from models.flight_delay.spec import SPEC


def test_classification_metrics_on_a_small_example():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])

    metrics = classification_metrics(y, p)

    assert metrics["roc_auc"] == 0.75  # 3 of the 4 (positive, negative) pairs are ordered right
    assert metrics["accuracy"] == 0.5
    assert metrics["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))
    assert (metrics["rows"], metrics["positive_rate"]) == (4.0, 0.5)


def test_roc_auc_is_undefined_with_one_class():
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.8])) is None
    assert math.isnan(classification_metrics(np.array([0, 0]), np.array([0.2, 0.8]))["roc_auc"])


def test_metrics_reject_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="same length"):
        classification_metrics(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="no rows"):
        classification_metrics(np.array([]), np.array([]))


def frame_and_predictions():
    # EWR: perfectly ranked (auc 1.0); JFK: reversed (auc 0.0); LGA: 2 rows only.
    frame = pd.DataFrame(
        {
            "origin": ["EWR"] * 4 + ["JFK"] * 4 + ["LGA"] * 2,
            "carrier": ["UA", "UA", "AA", "AA", "UA", "UA", "AA", "AA", "B6", "B6"],
        }
    )
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.8, 0.2, 0.5, 0.5])
    return frame, y, p


def test_slice_metrics_per_value_with_at_least_min_rows():
    frame, y, p = frame_and_predictions()

    slices = slice_metrics(frame, y, p, SPEC.validation.slices, min_rows=3)

    assert slices == [
        SliceMetric("origin", "EWR", 4, 1.0),
        SliceMetric("origin", "JFK", 4, 0.0),
        SliceMetric("carrier", "AA", 4, 0.5),
        SliceMetric("carrier", "UA", 4, 0.5),
    ]
    assert slices[0].metric_key == "slice_roc_auc.origin.EWR"


def test_a_slice_with_one_class_has_no_roc_auc():
    frame, y, p = frame_and_predictions()

    slices = slice_metrics(frame, y, p, ("origin",), min_rows=1)

    assert SliceMetric("origin", "LGA", 2, None) in slices


def test_slice_metrics_reject_an_unknown_column_and_a_bad_minimum():
    frame, y, p = frame_and_predictions()
    with pytest.raises(ValueError, match="no slice column 'dest'"):
        slice_metrics(frame, y, p, ("dest",))
    with pytest.raises(ValueError, match="min_rows must be >= 1"):
        slice_metrics(frame, y, p, ("origin",), min_rows=0)


def test_slice_check_flags_only_big_enough_slices_below_the_floor():
    slices = [
        SliceMetric("origin", "EWR", 500, 0.70),
        SliceMetric("origin", "JFK", 500, 0.54),
        SliceMetric("carrier", "OO", 20, 0.10),  # too few rows to judge
        SliceMetric("carrier", "HA", 300, None),  # one class only: nothing to judge
    ]

    assert slice_problems(slices, min_rows=200, bound=0.55) == ["slice origin=JFK (500 rows): roc_auc 0.5400 < 0.5500"]
