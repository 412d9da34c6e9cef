"""The costly upper reference of the replay: a model retrained every week, the way the training job trains (the
window of ``retraining.window_days`` before the week, at most ``retraining.max_rows`` rows, the package's estimator
fitted by ``quality.fit_reference``), scored on the week's labelled rows.

It runs in a process of its own beside the replay (``python -m local.demo.references SPEC``), with one OpenMP thread, at
the lowest priority: the replay leaves most of a core idle while it waits on Spark, the gateway and DynamoDB, and the
reference's fits fill it.
The spec is a JSON file written by ``References.start_weekly``; the result is a JSON file of ``{week: figure}``
(the replay's ``QUALITY``, ``quality.model_quality``).

Beside it, in the replay's process: the never-retrained first champion, and what the loop served, scored on the same
labelled rows (``References``, ``score_loop``).
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

from local.demo import quality
from local.demo.config import ReplayConfig
from local.demo.records import WeekRecord
from local.demo.replays import ModelReplay, load_replay
from local.paths import mlops_home, table_path, work_dir

if TYPE_CHECKING:
    import pandas as pd

    from jobs.platform import Platform
    from spec.config import Environment

logger = logging.getLogger("local.demo.references")


@dataclass(frozen=True)
class ReferenceSpec:
    model: str  # whose estimator and quality figure
    examples: str  # a Parquet file of the window's labelled examples (the key, the features, the label)
    weeks: list[str]  # Mondays, ISO dates
    window_days: int
    max_rows: int
    seed: int
    out: str

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path


def weekly_reference(spec: ReferenceSpec) -> dict[str, float | None]:
    """Each week's quality figure of a model trained on the window just before it; None for a week without
    labelled rows or where the figure is undefined."""
    import pandas as pd

    replay = load_replay(spec.model)
    day = replay.spec.event_date
    examples = pd.read_parquet(spec.examples)
    examples[day] = pd.to_datetime(examples[day]).dt.date
    window = timedelta(days=spec.window_days)
    values: dict[str, float | None] = {}
    for text in spec.weeks:
        week = date.fromisoformat(text)
        test = examples[(examples[day] >= week) & (examples[day] < week + timedelta(days=7))]
        if test.empty:
            values[text] = None
            continue
        train = examples[(examples[day] < week) & (examples[day] >= week - window)]
        if len(train) > spec.max_rows:
            train = train.sample(spec.max_rows, random_state=spec.seed)
        values[text] = quality.model_quality(replay, quality.fit_reference(replay, train, spec.seed), test)
    return values


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
        """The weekly figures; a RuntimeError naming the log when the process failed or did not finish in time."""
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
        self.replay: ModelReplay = config.replay
        self._examples: pd.DataFrame | None = None

    def examples(self) -> pd.DataFrame:
        """Every labelled example of the replayed window, and of the retraining window before its first week (what
        the weekly reference trains on first), built by the training job's own join (computed once)."""
        if self._examples is not None:
            return self._examples.copy()
        from jobs.platform.model import load_model

        package = load_model(self.replay.name)
        model = package.spec
        tables = self.platform.tables
        retraining_window = self.config.replay_start - timedelta(days=self.env.retraining.window_days)
        examples = package.examples(
            {name: tables.read(self.env.source_table(name)) for name in model.sources},
            {name: tables.read(self.env.feature_table(name)) for name in model.feature_tables},
            min(self.config.start, max(self.config.first_day, retraining_window)),
            self.config.end,
        )
        # In a fixed order: Spark's row order after the join varies from run to run, and the weekly reference samples
        # its training rows from this frame.
        order = [*model.key_names, *model.event_time_in_rows]
        frame = examples.toPandas().sort_values(order, kind="stable")
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
            model=self.replay.name,
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
        """Each week's quality figure of the never-retrained first champion on its labelled rows, and the
        weekly-retrained reference's (``weekly``, by week; missing weeks stay None)."""
        import mlflow.sklearn

        from jobs.platform.registry import ModelRef

        examples = self.examples()
        examples["week"] = _week_of(examples[self.replay.spec.event_date])
        first = mlflow.sklearn.load_model(ModelRef(self.env.registered_model, first_champion).uri)
        for record in records:
            record.auc_weekly = weekly.get(record.week_start)
            test = examples[examples["week"] == date.fromisoformat(record.week_start)]
            if not test.empty:
                record.auc_never = quality.model_quality(self.replay, first, test)


def score_loop(env: Environment, replay: ModelReplay, records: list[WeekRecord]) -> None:
    """Each week's quality figure of what the loop served: the champion's predictions of the week's rows, labelled.

    Read with delta-rs, not through the tables port: the port gives Spark DataFrames, and a few columns of the
    window's predictions need no Spark."""
    from deltalake import DeltaTable

    from spec.columns import LABEL

    model = replay.spec
    columns = [model.event_date, LABEL, *model.outputs, "model_version", "source"]
    frame = DeltaTable(str(table_path(env.predictions_table))).to_pyarrow_table(columns=columns).to_pandas()
    frame = frame[frame[LABEL].notna()]
    frame["week"] = _week_of(frame[model.event_date])
    for record in records:
        mine = frame[frame["week"] == date.fromisoformat(record.week_start)]
        record.labelled = len(mine)
        if len(mine):
            record.auc_loop = quality.served_quality(replay, mine)


def _week_of(days: pd.Series) -> pd.Series:
    """The Monday of each day's Monday-to-Sunday week."""
    import pandas as pd

    return pd.to_datetime(days).dt.to_period("W-SUN").dt.start_time.dt.date


def lowest_priority() -> None:
    """The replay beside this process keeps the CPU it needs; this process takes what it leaves idle. Linux's idle
    scheduling class where there is one (it runs only when no other process wants the CPU), nice 19 elsewhere."""
    os.nice(19)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError) as e:
        logger.info("the idle scheduling class is not available here (%s): nice 19 only", e)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m local.demo.references SPEC.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lowest_priority()
    spec = ReferenceSpec(**json.loads(Path(args[0]).read_text()))
    started, cpu = time.perf_counter(), time.process_time()
    values = weekly_reference(spec)
    Path(spec.out).write_text(json.dumps(values))
    logger.info(
        "weekly-retraining reference: %s weeks in %.1f s (%.1f s of CPU)",
        len(values),
        time.perf_counter() - started,
        time.process_time() - cpu,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
