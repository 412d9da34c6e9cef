"""The validation decision: metadata, metric gates (absolute and versus the Champion) and slices."""

from __future__ import annotations

import pytest

from jobs.core.contract import REQUIRED_VERSION_TAGS, lineage_tables, lineage_tag, lineage_value, tag_value
from jobs.core.decisions import (
    FAILED,
    PASSED,
    MetricGate,
    ValidationOutcome,
    metadata_problems,
    roc_auc_gates,
    validation_decision,
)
from jobs.core.evaluation import SliceMetric

LINEAGE = (lineage_tag("dev.raw.flights"), lineage_tag("dev.features.weather_hourly"))
REQUIRED = (*REQUIRED_VERSION_TAGS, *LINEAGE)
ALL_TAGS = {tag: "x" for tag in REQUIRED}
GOOD_SLICES = [SliceMetric("origin", "EWR", 400, 0.7), SliceMetric("carrier", "UA", 300, 0.66)]


def test_without_a_champion_there_is_only_the_absolute_gate():
    assert roc_auc_gates(0.62, 0.05, None) == [MetricGate("min_roc_auc", "roc_auc", 0.62, "roc_auc must be >= 0.6200")]


def test_with_a_champion_the_candidate_may_drop_at_most_the_relative_margin():
    gates = roc_auc_gates(0.62, 0.05, 0.70)

    assert [g.name for g in gates] == ["min_roc_auc", "vs_champion"]
    assert gates[1].threshold == pytest.approx(0.665)
    assert gates[1].description == "roc_auc must be >= 0.6650 (champion 0.7000 - 5%)"


def test_a_gate_includes_its_bound_and_never_passes_a_missing_value():
    floor = MetricGate("min_roc_auc", "roc_auc", 0.62, "roc_auc must be >= 0.6200")
    ceiling = MetricGate("max_log_loss", "log_loss", 0.6, "log_loss must be <= 0.6000", greater_is_better=False)

    assert [floor.passes(v) for v in (0.63, 0.62, 0.61, float("nan"))] == [True, True, False, False]
    assert [ceiling.passes(v) for v in (0.59, 0.6, 0.61, float("nan"))] == [True, True, False, False]


def test_metadata_problems_name_what_is_missing():
    assert metadata_problems(has_signature=True, description="A model.", tags=ALL_TAGS, required_tags=REQUIRED) == []
    tags = dict(ALL_TAGS, lineage_raw_flights="", test_end=" ")

    problems = metadata_problems(has_signature=False, description="  ", tags=tags, required_tags=REQUIRED)

    assert problems == [
        "model has no signature",
        "model version has no description",
        "model version lacks the tags test_end, lineage_raw_flights",
    ]


def test_everything_fine_passes():
    outcome = validation_decision(
        metadata_problems=[], metric_failures=[], slices=GOOD_SLICES, min_slice_rows=200, slice_bound=0.55
    )

    assert outcome == ValidationOutcome(PASSED, ("metadata, metric gates and 2 slices with >= 200 rows passed",))
    assert outcome.passed


def test_every_failure_is_a_reason():
    outcome = validation_decision(
        metadata_problems=["model has no signature"],
        metric_failures=["roc_auc must be >= 0.6200, got 0.5100"],
        slices=[*GOOD_SLICES, SliceMetric("carrier", "EV", 250, 0.5)],
        min_slice_rows=200,
        slice_bound=0.55,
    )

    assert outcome.status == FAILED
    assert not outcome.passed
    assert outcome.reasons == (
        "model has no signature",
        "roc_auc must be >= 0.6200, got 0.5100",
        "slice carrier=EV (250 rows): roc_auc 0.5000 < 0.5500",
    )
    assert outcome.summary() == "; ".join(outcome.reasons)


def test_a_single_failed_slice_fails_validation():
    outcome = validation_decision(
        metadata_problems=[],
        metric_failures=[],
        slices=[SliceMetric("origin", "JFK", 200, 0.549)],
        min_slice_rows=200,
        slice_bound=0.55,
    )

    assert outcome == ValidationOutcome(FAILED, ("slice origin=JFK (200 rows): roc_auc 0.5490 < 0.5500",))


def test_minimum_slice_rows_must_be_positive():
    with pytest.raises(ValueError, match="min_slice_rows must be >= 1"):
        validation_decision(metadata_problems=[], metric_failures=[], slices=[], min_slice_rows=0, slice_bound=0.5)


def test_long_reasons_are_cut_to_fit_a_tag():
    assert tag_value("short") == "short"
    cut = tag_value("x" * 1000)
    assert len(cut) == 250
    assert cut.endswith("…")


def test_positive_rate_gap_compares_the_shares_of_late_flights():
    from jobs.core.evaluation import positive_rate_gap

    assert positive_rate_gap([1, 0, 0, 0], [1, 1, 0, 0]) == 0.25
    assert positive_rate_gap([0, 1], [1, 0]) == 0.0
    with pytest.raises(ValueError, match="need as many predictions as targets, got 2 and 3"):
        positive_rate_gap([0, 1], [1, 0, 1])


def test_lineage_is_one_tag_per_table_with_its_delta_version():
    tags = {
        lineage_tag("dev.raw.flights"): lineage_value("dev.raw.flights", 3),
        lineage_tag("dev.features.weather_hourly"): lineage_value("dev.features.weather_hourly", 0),
        "test_end": "2013-03-31",
    }

    assert list(tags)[:2] == ["lineage_raw_flights", "lineage_features_weather_hourly"]
    assert tags["lineage_raw_flights"] == "dev.raw.flights@v3"
    assert lineage_tables(tags) == {"dev.raw.flights": 3, "dev.features.weather_hourly": 0}
    with pytest.raises(ValueError, match=r"lineage tag lineage_raw_x='dev.raw.x' is not <table>@v<version>"):
        lineage_tables({"lineage_raw_x": "dev.raw.x"})
    with pytest.raises(ValueError, match="a lineage table is catalog.schema.name, got 'flights'"):
        lineage_tag("flights")
