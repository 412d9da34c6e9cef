"""Champion vs Challenger on the same labelled rows (shadow scoring): a paired statistical test per problem type.

Both versions scored every row, so the comparison is paired: the variance of the difference is far smaller than
that of two independent samples, which is what lets a week of traffic decide.

- classification: the ROC AUC difference (Challenger - Champion) by a paired bootstrap: ``resamples`` resamples of
  the rows with replacement, drawn with a fixed ``seed`` (the same rows give the same answer), both AUCs computed on
  each. One-sided p-values: the share of resamples where the difference is <= 0 (against "better") or >= 0
  (against "worse"), with the +1 correction so a p-value is never 0. The interval is the percentile interval.
- regression: the per-row losses of the primary metric (absolute error for ``mean_absolute_error``, squared error
  otherwise) by a paired one-sided t-test on their differences (Champion's loss - Challenger's: positive is better);
  with hundreds of rows the t distribution is the normal one in all but name, and it holds for a skewed loss by the
  central limit theorem. The interval is the t interval of the mean difference.

Either way ``difference`` is "how much better the Challenger is", in the metric's units (positive: better), and the
interval is the two-sided ``1 - 2 * alpha`` one, so it excludes 0 exactly when a one-sided test at ``alpha`` is
significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.core.evaluation import greater_is_better

BOOTSTRAP = "paired bootstrap of the ROC AUC difference"
T_TEST = "paired one-sided t-test on per-row {loss}"


@dataclass(frozen=True)
class PairedComparison:
    """The result of comparing the Challenger with the Champion on ``sample`` labelled rows both scored."""

    test: str  # what was run, with its parameters
    metric: str  # the metric compared: roc_auc, mean_absolute_error, ...
    champion: float  # the metric of each on the rows
    challenger: float
    difference: float  # how much better the Challenger is (positive: better), in the metric's units
    statistic: float  # the test's statistic: the AUC difference (bootstrap), t (t-test)
    p_better: float  # one-sided p-value against "the Challenger is not better"
    p_worse: float  # one-sided p-value against "the Challenger is not worse"
    ci_low: float  # the difference's interval (two-sided, 1 - 2 * alpha)
    ci_high: float
    sample: int

    def describe(self) -> str:
        return (
            f"{self.test} on {self.sample} paired rows: {self.metric} challenger {self.challenger:.4f} vs champion "
            f"{self.champion:.4f}, better by {self.difference:+.4f} (CI {self.ci_low:+.4f}..{self.ci_high:+.4f}), "
            f"p(better) {self.p_better:.4f}, p(worse) {self.p_worse:.4f}"
        )


def _check_pairs(label: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(a, dtype="float64") for a in (label, champion, challenger))
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise ValueError(f"paired rows need as many labels as scores, got {[len(a) for a in arrays]}")
    if any(np.isnan(a).any() for a in arrays):
        raise ValueError("paired rows must not hold a missing label or score: select the labelled rows first")
    return arrays


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    return alpha


def _auc_on_groups(groups: np.ndarray, positive: np.ndarray, n_groups: int) -> float:
    """ROC AUC from each row's rank group (rows with the same score share one) and its class: the share of
    (positive, negative) pairs ordered right, ties counted half."""
    pos = np.bincount(groups[positive], minlength=n_groups).astype("float64")
    neg = np.bincount(groups[~positive], minlength=n_groups).astype("float64")
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def bootstrap_auc(
    label: np.ndarray, champion: np.ndarray, challenger: np.ndarray, *, resamples: int, seed: int, alpha: float
) -> PairedComparison:
    """The ROC AUC difference of two classifiers' probabilities on the same rows, by a paired bootstrap."""
    label, champion, challenger = _check_pairs(label, champion, challenger)
    alpha = _check_alpha(alpha)
    if resamples < 100:
        raise ValueError(f"resamples must be >= 100 for a p-value to mean anything, got {resamples}")
    positive = label == 1
    if positive.all() or not positive.any():
        raise ValueError("ROC AUC needs both classes among the paired rows")
    # Ranked once: a resample only reweights the rows, the order of the scores is the same.
    champion_groups = np.unique(champion, return_inverse=True)[1]
    challenger_groups = np.unique(challenger, return_inverse=True)[1]
    n, g1, g2 = len(label), champion_groups.max() + 1, challenger_groups.max() + 1
    auc_champion = _auc_on_groups(champion_groups, positive, g1)
    auc_challenger = _auc_on_groups(challenger_groups, positive, g2)
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, n, n)
        drawn = positive[rows]
        differences[i] = _auc_on_groups(challenger_groups[rows], drawn, g2) - _auc_on_groups(
            champion_groups[rows], drawn, g1
        )
    differences = differences[~np.isnan(differences)]  # a resample with one class only (tiny samples)
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    kept = len(differences)
    return PairedComparison(
        test=f"{BOOTSTRAP} ({resamples} resamples, seed {seed})",
        metric="roc_auc",
        champion=auc_champion,
        challenger=auc_challenger,
        difference=auc_challenger - auc_champion,
        statistic=auc_challenger - auc_champion,
        p_better=float((np.sum(differences <= 0) + 1) / (kept + 1)),
        p_worse=float((np.sum(differences >= 0) + 1) / (kept + 1)),
        ci_low=float(low),
        ci_high=float(high),
        sample=n,
    )


def loss_name(metric: str) -> str:
    """The per-row loss whose mean a regressor's primary metric is (or which orders models as it does)."""
    return "absolute error" if metric == "mean_absolute_error" else "squared error"


def paired_loss_test(
    label: np.ndarray, champion: np.ndarray, challenger: np.ndarray, *, metric: str, alpha: float
) -> PairedComparison:
    """Two regressors on the same rows: a paired one-sided t-test on the per-row loss differences."""
    from scipy import stats

    label, champion, challenger = _check_pairs(label, champion, challenger)
    alpha = _check_alpha(alpha)
    n = len(label)
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 rows, got {n}")
    absolute = loss_name(metric) == "absolute error"
    loss_champion = np.abs(champion - label) if absolute else (champion - label) ** 2
    loss_challenger = np.abs(challenger - label) if absolute else (challenger - label) ** 2
    gain = loss_champion - loss_challenger  # positive: the Challenger's loss is lower
    mean, sd = float(gain.mean()), float(gain.std(ddof=1))
    if sd == 0.0:
        # Identical losses on every row (the same model twice): no evidence either way, unless they differ by a
        # constant, which is all the evidence there is.
        t = 0.0 if mean == 0.0 else float(np.sign(mean) * np.inf)
        half = 0.0
    else:
        se = sd / np.sqrt(n)
        t = mean / se
        half = float(stats.t.ppf(1 - alpha, n - 1) * se)
    p_better = float(stats.t.sf(t, n - 1)) if np.isfinite(t) else float(t < 0)
    p_worse = float(stats.t.cdf(t, n - 1)) if np.isfinite(t) else float(t > 0)

    def metric_of(loss: np.ndarray) -> float:
        value = float(loss.mean())
        if metric == "root_mean_squared_error":
            return float(np.sqrt(value))
        if metric == "r2_score":
            total = float(((label - label.mean()) ** 2).sum())
            return 1.0 - float(loss.sum()) / total if total else float("nan")
        return value

    value_champion, value_challenger = metric_of(loss_champion), metric_of(loss_challenger)
    higher = greater_is_better(metric)
    return PairedComparison(
        test=T_TEST.format(loss=loss_name(metric)),
        metric=metric,
        champion=value_champion,
        challenger=value_challenger,
        # In the metric's units where they are the loss's (MAE, MSE); the t-test decides on the losses either way.
        difference=(value_challenger - value_champion) if higher else (value_champion - value_challenger),
        statistic=t,
        p_better=p_better,
        p_worse=p_worse,
        ci_low=mean - half,
        ci_high=mean + half,
        sample=n,
    )


def compare(
    problem_type: str,
    metric: str,
    label: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    alpha: float,
    resamples: int,
    seed: int,
) -> PairedComparison:
    """The test for ``problem_type``: a classifier's probabilities by the bootstrap of ROC AUC, a regressor's values
    by the t-test on its primary ``metric``'s per-row loss."""
    if problem_type == "classification":
        return bootstrap_auc(label, champion, challenger, resamples=resamples, seed=seed, alpha=alpha)
    if problem_type == "regression":
        return paired_loss_test(label, champion, challenger, metric=metric, alpha=alpha)
    raise ValueError(f"problem_type must be 'classification' or 'regression', got {problem_type!r}")
