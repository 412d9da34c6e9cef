"""The costly upper reference of the year's replay: a model retrained every week, the way the training job trains
(the window of ``retraining.window_days`` before the week, at most ``retraining.max_rows`` rows, the last fifth of
the days held out), scored on the week's labelled flights.

It runs in a process of its own beside the replay (``python -m local.references SPEC``), with one OpenMP thread, at
the lowest priority: the replay leaves most of a core idle while it waits on Spark, the gateway and DynamoDB, and the
reference's fits fill it.
The spec is a JSON file written by ``Replay``; the result is a JSON file of ``{week: roc_auc}``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

logger = logging.getLogger("local.references")


@dataclass(frozen=True)
class ReferenceSpec:
    examples: str  # a Parquet file of the year's labelled examples (sched_date, the features, the label)
    weeks: list[str]  # Mondays, ISO dates
    window_days: int
    max_rows: int
    seed: int
    out: str

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path


def weekly_reference(spec: ReferenceSpec) -> dict[str, float | None]:
    """Each week's ROC AUC of a model trained on the window just before it."""
    import numpy as np
    import pandas as pd

    from jobs.core.data import held_out_start
    from jobs.core.evaluation import roc_auc
    from jobs.core.model import build_model, labels, model_frame, predict_proba
    from jobs.train import TEST_FRACTION
    from spec.columns import LABEL, SCHEDULED_DATE

    examples = pd.read_parquet(spec.examples)
    examples[SCHEDULED_DATE] = pd.to_datetime(examples[SCHEDULED_DATE]).dt.date
    window = timedelta(days=spec.window_days)
    aucs: dict[str, float | None] = {}
    for text in spec.weeks:
        week = date.fromisoformat(text)
        test = examples[(examples[SCHEDULED_DATE] >= week) & (examples[SCHEDULED_DATE] < week + timedelta(days=7))]
        if test.empty or test[LABEL].nunique() < 2:
            aucs[text] = None
            continue
        train = examples[(examples[SCHEDULED_DATE] < week) & (examples[SCHEDULED_DATE] >= week - window)]
        if len(train) > spec.max_rows:
            train = train.sample(spec.max_rows, random_state=spec.seed)
        # As the training job: the last fifth of the days is its test period, not trained on.
        first_test_day = held_out_start(train.groupby(SCHEDULED_DATE).size().to_dict(), TEST_FRACTION)
        train = train[train[SCHEDULED_DATE] < first_test_day]
        model = build_model(spec.seed).fit(model_frame(train), labels(train))
        value = roc_auc(np.asarray(labels(test), dtype=int), predict_proba(model, model_frame(test)))
        aucs[text] = None if value is None else round(value, 4)
    return aucs


class ReferenceProcess:
    """``weekly_reference`` in a child process; ``result()`` waits for it. Stopped with ``stop()`` (also on errors:
    use it as a context manager)."""

    def __init__(self, spec_file: Path, log_file: Path) -> None:
        self.spec = ReferenceSpec(**json.loads(spec_file.read_text()))
        environ = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._log = log_file.open("a")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.references", str(spec_file)],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> ReferenceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def result(self, timeout: float = 1800.0) -> dict[str, float | None]:
        """The weekly ROC AUCs; a RuntimeError naming the log when the process failed or did not finish in time."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(
                f"the weekly-retraining reference did not finish within {timeout:.0f} s: see {self._log.name}"
            ) from None
        self._log.close()
        if code != 0:
            raise RuntimeError(f"the weekly-retraining reference failed (exit code {code}): see {self._log.name}")
        return json.loads(Path(self.spec.out).read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m local.references SPEC.json", file=sys.stderr)
        return 2
    # The lowest priority: the replay beside it keeps the CPU it needs, this process takes what it leaves idle.
    os.nice(19)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = ReferenceSpec(**json.loads(Path(args[0]).read_text()))
    started, cpu = time.perf_counter(), time.process_time()
    aucs = weekly_reference(spec)
    Path(spec.out).write_text(json.dumps(aucs))
    logger.info(
        "weekly-retraining reference: %s weeks in %.1f s (%.1f s of CPU)",
        len(aucs),
        time.perf_counter() - started,
        time.process_time() - cpu,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
