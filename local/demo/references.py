"""The costly upper reference of the year's replay: a model retrained every week, the way the training job trains
(the window of ``retraining.window_days`` before the week, at most ``retraining.max_rows`` rows, the last fifth of
the days held out), scored on the week's labelled flights.

It runs in a process of its own beside the replay (``python -m local.demo.references SPEC``), with one OpenMP thread, at
the lowest priority: the replay leaves most of a core idle while it waits on Spark, the gateway and DynamoDB, and the
reference's fits fill it.
The spec is a JSON file written by ``References.start_weekly``; the result is a JSON file of ``{week: roc_auc}``.

Beside it, in the replay's process: the never-retrained first champion, and what the loop served, scored on the same
labelled flights (``References``, ``score_loop``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from local.demo.config import YEAR_START, ReplayConfig
from local.demo.records import WeekRecord
from local.paths import mlops_home, table_path, work_dir

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from jobs.platform import Platform
    from spec.config import Environment

logger = logging.getLogger("local.demo.references")


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

    from jobs.core.evaluation import roc_auc
    from jobs.core.model import labels, model_frame, predict_proba
    from jobs.train import TEST_FRACTION
    from models.flight_delay.data import held_out_start
    from models.flight_delay.estimator import build_estimator as build_model
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
            [sys.executable, "-m", "local.demo.references", str(spec_file)],
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


class References:
    """The labelled examples of the replayed window, and the two references computed on them: the first champion
    never retrained, and a model retrained every week (``ReferenceProcess``)."""

    def __init__(self, env: Environment, platform: Platform, config: ReplayConfig) -> None:
        self.env = env
        self.platform = platform
        self.config = config
        self._examples: pd.DataFrame | None = None

    def examples(self) -> pd.DataFrame:
        """Every labelled example of the replayed window, and of the retraining window before its first week (what
        the weekly reference trains on first), built by the training job's own join (computed once)."""
        if self._examples is not None:
            return self._examples.copy()
        from models.flight_delay.features import flight_examples
        from spec.columns import FLIGHT_KEY, SCHEDULED_DEPARTURE

        tables = self.platform.tables
        retraining_window = self.config.replay_start - timedelta(days=self.env.retraining.window_days)
        examples = flight_examples(
            tables.read(self.env.flights_table),
            tables.read(self.env.weather_features_table),
            min(self.config.start, max(YEAR_START, retraining_window)),
            self.config.end,
        )
        # In a fixed order: Spark's row order after the join varies from run to run, and the weekly reference samples
        # its training rows from this frame.
        frame = examples.toPandas().sort_values([*FLIGHT_KEY, SCHEDULED_DEPARTURE], kind="stable")
        self._examples = frame.reset_index(drop=True)
        return self._examples.copy()

    def start_weekly(self, weeks: list[date], on_spawn: Callable[[str, int], None]) -> ReferenceProcess:
        """The examples to a Parquet file, and the process that retrains on them every week (``on_spawn`` is told
        its pid)."""
        folder = work_dir(self.env.name) / "references"
        folder.mkdir(parents=True, exist_ok=True)
        examples = folder / "examples.parquet"
        self.examples().to_parquet(examples)
        spec = ReferenceSpec(
            examples=str(examples),
            weeks=[w.isoformat() for w in weeks],
            window_days=self.env.retraining.window_days,
            max_rows=self.env.retraining.max_rows,
            seed=self.config.seed,
            out=str(folder / "weekly.json"),
        )
        process = ReferenceProcess(spec.write(folder / "spec.json"), mlops_home() / "references.log")
        on_spawn("reference", process.process.pid)
        return process

    def score(self, records: list[WeekRecord], first_champion: str, weekly: dict[str, float | None]) -> None:
        """Each week's ROC AUC of the never-retrained first champion on its labelled flights, and the
        weekly-retrained reference's (``weekly``, by week; missing weeks stay None)."""
        import mlflow.sklearn
        import pandas as pd

        from jobs.core.model import labels, model_frame, predict_proba
        from jobs.platform.registry import ModelRef
        from spec.columns import LABEL

        examples = self.examples()
        examples["week"] = pd.to_datetime(examples["sched_date"]).dt.to_period("W-SUN").dt.start_time.dt.date
        first = mlflow.sklearn.load_model(ModelRef(self.env.registered_model, first_champion).uri)
        for record in records:
            record.auc_weekly = weekly.get(record.week_start)
            test = examples[examples["week"] == date.fromisoformat(record.week_start)]
            if not test.empty and test[LABEL].nunique() == 2:
                record.auc_never = auc(labels(test), predict_proba(first, model_frame(test)))


def score_loop(env: Environment, records: list[WeekRecord]) -> None:
    """Each week's ROC AUC of what the loop served: the champion's predictions of the week's flights, labelled.

    Read with delta-rs, as before the move, not through the tables port: the port gives Spark DataFrames, and three
    columns of the year's predictions need no Spark."""
    import pandas as pd
    from deltalake import DeltaTable

    from spec.columns import LABEL, PROBABILITY

    frame = (
        DeltaTable(str(table_path(env.predictions_table)))
        .to_pyarrow_table(columns=["sched_date", LABEL, PROBABILITY, "model_version", "source"])
        .to_pandas()
    )
    frame = frame[frame[LABEL].notna()]
    frame["week"] = pd.to_datetime(frame["sched_date"]).dt.to_period("W-SUN").dt.start_time.dt.date
    for record in records:
        mine = frame[frame["week"] == date.fromisoformat(record.week_start)]
        record.labelled = len(mine)
        if len(mine):
            record.auc_loop = auc(mine[LABEL].to_numpy(), mine[PROBABILITY].to_numpy())


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC to four places (None when it is undefined: one class only)."""
    import numpy as np

    from jobs.core.evaluation import roc_auc

    value = roc_auc(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    return None if value is None else round(value, 4)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m local.demo.references SPEC.json", file=sys.stderr)
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
