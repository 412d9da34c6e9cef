"""The online decision's statistics: the paired tests on labelled shadow rows (a classifier's ROC AUC by a paired
bootstrap, a regressor's per-row loss by a paired t-test) and what the decision makes of them: promote, retire, ramp,
wait, and the minimum and maximum samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from jobs.core.decisions import online_decision
from jobs.core.paired_test import bootstrap_auc, compare, paired_loss_test

RULES = dict(min_sample=1000, max_sample=20000, alpha=0.05, current_percent=10, ramp_step_percent=10,
             max_share_percent=50)  # fmt: skip


def classified(n: int, champion_noise: float, challenger_noise: float, seed: int = 1):
    """Labels and two classifiers' probabilities of the same rows: more noise ranks worse."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    signal = label * 0.4 + 0.3
    champion = np.clip(signal + rng.normal(0, champion_noise, n), 0, 1)
    challenger = np.clip(signal + rng.normal(0, challenger_noise, n), 0, 1)
    return label, champion, challenger


def regressed(n: int, champion_noise: float, challenger_noise: float, seed: int = 2):
    rng = np.random.default_rng(seed)
    label = rng.gamma(2.0, 10.0, n)
    return label, label + rng.normal(0, champion_noise, n), label + rng.normal(0, challenger_noise, n)


def decide(comparison, sample=None, **changes):
    return online_decision(comparison, sample=comparison.sample if sample is None else sample, **{**RULES, **changes})


# ---- the tests themselves -------------------------------------------------------------------------------------


def test_the_bootstrap_auc_is_sklearns_with_ties_and_the_same_seed_gives_the_same_answer():
    label, champion, challenger = classified(3000, 0.3, 0.25)
    champion = np.round(champion, 2)  # ties, counted half as roc_auc_score counts them

    first = bootstrap_auc(label, champion, challenger, resamples=300, seed=7, alpha=0.05)
    again = bootstrap_auc(label, champion, challenger, resamples=300, seed=7, alpha=0.05)

    assert first.champion == pytest.approx(roc_auc_score(label, champion), abs=1e-12)
    assert first.challenger == pytest.approx(roc_auc_score(label, challenger), abs=1e-12)
    assert first == again
    assert first.test == "paired bootstrap of the ROC AUC difference (300 resamples, seed 7)"
    assert first.ci_low < first.difference < first.ci_high


def test_the_t_test_is_scipys_paired_one_sided_test_on_the_per_row_loss():
    label, champion, challenger = regressed(800, 10.0, 9.0)

    result = paired_loss_test(label, champion, challenger, metric="mean_absolute_error", alpha=0.05)

    gain = np.abs(champion - label) - np.abs(challenger - label)
    expected = stats.ttest_1samp(gain, 0.0, alternative="greater")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_better == pytest.approx(expected.pvalue)
    assert result.p_worse == pytest.approx(1 - expected.pvalue)
    assert result.champion == pytest.approx(np.abs(champion - label).mean())
    assert result.difference == pytest.approx(gain.mean())
    assert result.test == "paired one-sided t-test on per-row absolute error"
    assert paired_loss_test(label, champion, challenger, metric="root_mean_squared_error", alpha=0.05).test == (
        "paired one-sided t-test on per-row squared error"
    )


@pytest.mark.parametrize("problem_type", ["classification", "regression"])
def test_a_significantly_better_challenger_is_promoted(problem_type):
    if problem_type == "classification":
        rows, metric = classified(3000, 0.35, 0.2), "roc_auc"
    else:
        rows, metric = regressed(3000, 12.0, 8.0), "mean_absolute_error"

    comparison = compare(problem_type, metric, *rows, alpha=0.05, resamples=500, seed=7)
    decision = decide(comparison)

    assert comparison.p_better < 0.05 and comparison.difference > 0
    assert (decision.action, decision.challenger_percent) == ("promote", 100)
    assert decision.reason.startswith("significantly better at 0.05: ")
    assert f"on 3000 paired rows: {metric} challenger" in decision.reason


@pytest.mark.parametrize("problem_type", ["classification", "regression"])
def test_a_significantly_worse_challenger_is_retired(problem_type):
    if problem_type == "classification":
        rows, metric = classified(3000, 0.2, 0.35), "roc_auc"
    else:
        rows, metric = regressed(3000, 8.0, 12.0), "mean_absolute_error"

    comparison = compare(problem_type, metric, *rows, alpha=0.05, resamples=500, seed=7)
    decision = decide(comparison)

    assert comparison.p_worse < 0.05 and comparison.difference < 0
    assert (decision.action, decision.challenger_percent) == ("retire", 0)
    assert decision.reason.startswith("significantly worse at 0.05: ")


@pytest.mark.parametrize("problem_type", ["classification", "regression"])
def test_a_challenger_ahead_but_not_significantly_is_ramped_then_waits_at_the_largest_share(problem_type):
    # given: two versions of nearly the same quality, the challenger a little ahead on these rows
    if problem_type == "classification":
        rows, metric = classified(1500, 0.3, 0.299, seed=2), "roc_auc"
    else:
        rows, metric = regressed(1500, 10.0, 9.98, seed=4), "mean_absolute_error"
    comparison = compare(problem_type, metric, *rows, alpha=0.05, resamples=500, seed=7)
    assert comparison.difference > 0 and comparison.p_better >= 0.05 and comparison.p_worse >= 0.05

    ramped = decide(comparison)
    at_the_top = decide(comparison, current_percent=50)

    assert (ramped.action, ramped.challenger_percent) == ("ramp", 20)
    assert ramped.reason.startswith("promising, share 10% -> 20%: ")
    assert (at_the_top.action, at_the_top.challenger_percent) == ("wait", 50)
    assert at_the_top.reason.startswith("not significant yet: ")


def test_not_significantly_better_after_the_maximum_sample_retires_and_behind_waits_before_it():
    label, champion, challenger = classified(1500, 0.3, 0.299, seed=2)
    close = compare("classification", "roc_auc", label, champion, challenger, alpha=0.05, resamples=500, seed=7)

    retired = decide(close, max_sample=1500)

    assert (retired.action, retired.challenger_percent) == ("retire", 0)
    assert retired.reason.startswith("not significantly better after 1500 rows: ")
    # The same two versions the other way round: the challenger a little behind, not significantly.
    behind = compare("classification", "roc_auc", label, challenger, champion, alpha=0.05, resamples=500, seed=7)
    assert behind.difference < 0 and behind.p_worse >= 0.05
    assert decide(behind).action == "wait"


def test_below_the_minimum_sample_the_decision_waits_whatever_the_rows_say():
    clear = compare("classification", "roc_auc", *classified(999, 0.35, 0.1), alpha=0.05, resamples=200, seed=7)
    assert clear.p_better < 0.05

    waiting = decide(clear)
    no_test = online_decision(None, sample=0, **RULES)

    assert (waiting.action, waiting.challenger_percent) == ("wait", 10)
    assert waiting.reason == "999 labelled shadow rows, fewer than the 1000 the test needs"
    assert (no_test.action, no_test.reason) == ("wait", "0 labelled shadow rows, fewer than the 1000 the test needs")
    assert decide(clear, min_sample=999).action == "promote"


def test_bad_input_is_a_clear_error():
    label, champion, challenger = classified(200, 0.3, 0.3)
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_auc(np.ones(200), champion, challenger, resamples=100, seed=1, alpha=0.05)
    with pytest.raises(ValueError, match="as many labels as scores"):
        bootstrap_auc(label[:-1], champion, challenger, resamples=100, seed=1, alpha=0.05)
    with pytest.raises(ValueError, match="missing label or score"):
        bootstrap_auc(np.where(label == 1, np.nan, 0.0), champion, challenger, resamples=100, seed=1, alpha=0.05)
    with pytest.raises(ValueError, match="alpha must be in"):
        paired_loss_test(label, champion, challenger, metric="mean_absolute_error", alpha=0.5)
    with pytest.raises(ValueError, match="problem_type must be"):
        compare("ranking", "ndcg", label, champion, challenger, alpha=0.05, resamples=100, seed=1)
    with pytest.raises(ValueError, match="min_sample <= max_sample"):
        online_decision(None, sample=0, **{**RULES, "max_sample": 10})
