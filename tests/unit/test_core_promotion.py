"""Champion versus Challenger: the promotion decision table, and how the endpoint's traffic follows the aliases."""

from __future__ import annotations

import math

import pytest

from jobs.core.decisions import Decision, Route, promotion_decision, traffic_split

BUSINESS_THRESHOLD = {"roc_auc": 0.62, "log_loss": 0.60}
DECISION_TABLE = [
    # challenger, champion, metric, margin -> promote, reason
    # No champion yet: the business threshold decides.
    (0.70, None, "roc_auc", 0.0, True, "no champion yet: challenger roc_auc 0.7000 >= business threshold 0.6200"),
    (0.62, None, "roc_auc", 0.0, True, "no champion yet: challenger roc_auc 0.6200 >= business threshold 0.6200"),
    (0.61, None, "roc_auc", 0.0, False, "no champion yet: challenger roc_auc 0.6100 < business threshold 0.6200"),
    # Against a champion: at least as good, within the margin; ties promote.
    (0.71, 0.70, "roc_auc", 0.0, True, "challenger roc_auc 0.7100 >= champion 0.7000 - margin 0.0000"),
    (0.70, 0.70, "roc_auc", 0.0, True, "challenger roc_auc 0.7000 >= champion 0.7000 - margin 0.0000"),
    (0.69, 0.70, "roc_auc", 0.0, False, "challenger roc_auc 0.6900 < champion 0.7000 - margin 0.0000"),
    (0.69, 0.70, "roc_auc", 0.02, True, "challenger roc_auc 0.6900 >= champion 0.7000 - margin 0.0200"),
    (0.67, 0.70, "roc_auc", 0.02, False, "challenger roc_auc 0.6700 < champion 0.7000 - margin 0.0200"),
    # The business threshold is for the first model only: a better challenger replaces a weak champion.
    (0.60, 0.55, "roc_auc", 0.0, True, "challenger roc_auc 0.6000 >= champion 0.5500 - margin 0.0000"),
    # Lower is better for log loss.
    (0.45, 0.50, "log_loss", 0.0, True, "challenger log_loss 0.4500 <= champion 0.5000 + margin 0.0000"),
    (0.55, 0.50, "log_loss", 0.0, False, "challenger log_loss 0.5500 > champion 0.5000 + margin 0.0000"),
    (0.65, None, "log_loss", 0.0, False, "no champion yet: challenger log_loss 0.6500 > business threshold 0.6000"),
]


@pytest.mark.parametrize(
    ("challenger", "champion", "metric", "min_gain", "promote", "reason"),
    [
        (0.7050, 0.70, "roc_auc", 0.005, True, "challenger roc_auc 0.7050 >= champion 0.7000 + min_gain 0.0050"),
        (0.7049, 0.70, "roc_auc", 0.005, False, "challenger roc_auc 0.7049 < champion 0.7000 + min_gain 0.0050"),
        (0.44, 0.50, "log_loss", 0.05, True, "challenger log_loss 0.4400 <= champion 0.5000 - min_gain 0.0500"),
        (0.46, 0.50, "log_loss", 0.05, False, "challenger log_loss 0.4600 > champion 0.5000 - min_gain 0.0500"),
        # The first model is held to the business threshold, not to a gain over no one.
        (0.65, None, "roc_auc", 0.005, True, "no champion yet: challenger roc_auc 0.6500 >= business threshold 0.6200"),
    ],
)
def test_a_min_gain_promotes_only_a_clear_gain(challenger, champion, metric, min_gain, promote, reason):
    decision = promotion_decision(challenger, champion, metric, 0.0, BUSINESS_THRESHOLD[metric], min_gain=min_gain)

    assert decision == Decision(promote, reason)


@pytest.mark.parametrize(("challenger", "champion", "metric", "margin", "promote", "reason"), DECISION_TABLE)
def test_promotion_decision_table(challenger, champion, metric, margin, promote, reason):
    decision = promotion_decision(challenger, champion, metric, margin, BUSINESS_THRESHOLD[metric])

    assert decision == Decision(promote, reason)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.7, 0.7, "f1", 0.0, 0.6), "unknown metric 'f1'"),
        ((math.nan, 0.7, "roc_auc", 0.0, 0.6), "challenger roc_auc must be a number"),
        ((0.7, math.nan, "roc_auc", 0.0, 0.6), "champion roc_auc must be a number"),
        ((0.7, 0.7, "roc_auc", -0.1, 0.6), "margin and min_gain must be >= 0"),
        ((0.7, 0.7, "roc_auc", 0.0, 0.6, -0.1), "margin and min_gain must be >= 0"),
        ((0.7, 0.7, "roc_auc", 0.01, 0.6, 0.01), "margin and min_gain are both set"),
    ],
)
def test_promotion_decision_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        promotion_decision(*args)


def test_champion_takes_all_traffic_without_a_different_challenger():
    assert traffic_split("3", None, 10) == [Route("champion", "3", 100)]
    assert traffic_split("3", "3", 10) == [Route("champion", "3", 100)]
    assert traffic_split("3", "4", 0) == [Route("champion", "3", 100)]


def test_a_different_challenger_gets_its_share_of_traffic():
    assert traffic_split("3", "4", 10) == [Route("champion", "3", 90), Route("challenger", "4", 10)]


def test_nothing_is_served_without_a_champion():
    assert traffic_split(None, "4", 10) == []


def test_traffic_share_must_be_a_percentage():
    with pytest.raises(ValueError, match="challenger_percent must be 0..100, got 101"):
        traffic_split("3", "4", 101)
