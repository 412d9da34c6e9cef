"""Inference benchmark: the batch scoring path (``jobs.scoring.score``) against in-process pyfunc ``predict`` and a
plain ``mlflow.pyfunc.spark_udf``, same rows, same model, one run; then the streaming job's seconds per micro-batch
and, when the online store is there, the publish job's items/s against dynalite.

    python -m bench.inference [--model NAME] [--rows N] [--rounds 2] [--stream-days N] [--no-publish] [--home DIR]

The model is the dev environment's (``--model`` names it), over the days of its data (its replay's ``FIRST_DAY`` ..
``LAST_DAY``, ``local.demo.replays``). Steps, in a temporary MLOPS_HOME (or ``--home``, kept and reused): ingest
the data with ``jobs.ingest``, build the feature tables with ``jobs.features``, train and register the model with
``jobs.train`` on its first ``TRAINING_DAYS`` days (``TRAINING_ROWS`` rows) and make it the champion; build the
candidate rows with the package's ``scoring_rows`` and ``jobs.scoring.split`` (the first ``--rows`` by event time)
and write them once to a Delta table, read back into one in-memory Spark DataFrame that every Spark measurement
starts from; its ``toPandas()`` through ``jobs.core.model.model_frame`` is the in-process frame.
Each method is warmed up on a small sample, then timed with ``time.perf_counter`` for ``--rounds`` rounds, the
methods alternating within a round; a Spark run is forced to completion by writing every output row to Spark's
``noop`` sink. Then ``--stream-days`` days of the streamed source land, a file a day (by default
``STREAM_MICRO_BATCHES`` micro-batches' worth of the environment's ``inference.max_files_per_trigger``), and
``jobs.streaming_inference.run_stream`` scores them (``available-now``) while a streaming query listener records
each micro-batch's duration. Last, ``jobs.publish`` publishes the streamed predictions to an in-memory dynalite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.platform import Platform

ENV = "dev"
TRAINING_DAYS = 90
TRAINING_ROWS = 30_000
WARMUP_ROWS = 2_000
STREAM_MICRO_BATCHES = 3
# The streaming section lands days from the first Monday this many days into the data on (later runs in a kept
# --home continue after the last landed day).
STREAM_OFFSET_DAYS = 153
# The table the benchmark's rows are materialized in (in the benchmark's own schema of the environment's catalog).
ROWS_TABLE = "{catalog}.bench.inference_rows"

IN_PROCESS = "in-process pyfunc predict"
SPARK_UDF = "mlflow spark_udf"
BATCH = "batch path (jobs.scoring.score)"
IN_PROCESS_ONE_THREAD = "in-process, 1 OpenMP thread"
IN_PROCESS_CHUNKS = "in-process, Arrow-batch-sized chunks"


@dataclass
class Timings:
    name: str
    rows: int
    seconds: list[float] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [self.rows / s for s in self.seconds]

    @property
    def best(self) -> float:
        return max(self.rates())

    @property
    def median(self) -> float:
        return statistics.median(self.rates())


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _step(label: str, action: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def to_noop(df: DataFrame) -> None:
    """Every row of ``df`` computed and discarded: Spark's ``noop`` sink writes all columns, so nothing is pruned."""
    df.write.format("noop").mode("overwrite").save()


@dataclass(frozen=True)
class Window:
    """The model's data days, and how many rows its scored source holds over them."""

    model: str
    first: date
    last: date
    rows: int

    @property
    def training(self) -> tuple[date, date]:
        return self.first, min(self.last, self.first + timedelta(days=TRAINING_DAYS - 1))

    @property
    def stream_start(self) -> date:
        day = self.first + timedelta(days=STREAM_OFFSET_DAYS)
        return day + timedelta(days=-day.weekday() % 7)


def data_window(model: str) -> Window:
    """The model's data days (its replay's) and its scored source's rows over them."""
    from jobs.platform.model import load_model
    from local.demo.replays import load_replay

    replay, package = load_replay(model), load_model(model)
    rows = len(package.load_sources(replay.first_day, replay.last_day)[package.scored_source])
    return Window(model, replay.first_day, replay.last_day, rows)


@dataclass(frozen=True)
class Prepared:
    model_uri: str
    model_path: str  # staged by jobs.scoring.stage_model
    trained_here: bool  # False: a kept home's champion, reused
    rows: DataFrame  # the materialized candidate rows


def prepare(platform: Platform, window: Window, rows: int) -> Prepared:
    """The model and the materialized rows, built with the project's jobs; what a kept home already holds (the
    model's data and its feature tables, a champion) is reused."""
    from deltalake import DeltaTable

    from jobs import features, ingest, train
    from jobs.platform.model import load_model
    from jobs.platform.registry import CHAMPION, ModelRef
    from jobs.scoring import split, stage_model
    from local.tables import LocalTables

    env, tables = platform.env, platform.tables
    package = load_model(window.model)
    model = package.spec
    source = env.source_table(package.scored_source)
    source_path = LocalTables.path(source)
    has_data = DeltaTable.is_deltatable(str(source_path)) and _delta_rows(source_path) == window.rows
    if not has_data:
        _step(
            f"ingest {window.first}..{window.last} (jobs.ingest)",
            lambda: ingest.ingest(platform, window.first, window.last),
        )
    if not has_data or not all(tables.exists(env.feature_table(name)) for name in model.feature_tables):
        _step("feature tables (jobs.features)", lambda: features.build_features(platform))
    registry = platform.registry
    version = registry.alias_version(CHAMPION)
    trained_here = version is None
    if trained_here:
        training_start, training_end = window.training
        result = _step(
            f"train on {training_start}..{training_end}, {TRAINING_ROWS} rows (jobs.train)",
            lambda: train.train(platform, training_start, training_end, TRAINING_ROWS),
        )
        version = result.model.version
        registry.set_alias(CHAMPION, version)
    ref = ModelRef(registry.model_name, version)
    model_path = _step("stage the model (jobs.scoring.stage_model)", lambda: stage_model(platform, ref))

    def materialize() -> None:
        candidates = package.scoring_rows(
            tables.read(source),
            {name: tables.read(env.feature_table(name)) for name in model.feature_tables},
            window.first,
            window.last,
        )
        valid, _ = split(candidates, model, package.row_checks())
        if rows < window.rows:
            valid = valid.orderBy(model.event_time).limit(rows)
        tables.write(valid, rows_table(platform))

    _step(f"candidate rows of {window.first}..{window.last} -> {rows_table(platform)}", materialize)
    return Prepared(ref.uri, model_path, trained_here, tables.read(rows_table(platform)))


def rows_table(platform: Platform) -> str:
    return ROWS_TABLE.format(catalog=platform.env.catalog)


def _delta_rows(path: Path) -> int:
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pyarrow_dataset().count_rows()


def measure(platform: Platform, model_uri: str, model_path: str, rows_df: DataFrame, rounds: int) -> list[Timings]:
    """The three methods on the same rows, alternating within each round, after one warm-up each; and, for reading
    the reference, its predict again with one OpenMP thread (as the Spark workers predict) and over chunks of Spark's
    Arrow batch size (as the Spark workers get the rows)."""
    import mlflow
    from pyspark.sql import functions as F
    from threadpoolctl import threadpool_limits

    from jobs.core.model import model_frame
    from jobs.scoring import score

    spec = platform.env.model
    features = spec.feature_names
    spark = platform.spark
    count = rows_df.count()
    pandas_rows = rows_df.toPandas()
    frame = model_frame(spec, pandas_rows)
    if len(frame) != count:
        raise RuntimeError(f"the pandas frame has {len(frame)} rows, the Spark DataFrame {count}")
    model = mlflow.pyfunc.load_model(model_uri)
    # A classifier answers a class, a regressor a number.
    result_type = "long" if platform.env.model.is_classifier else "double"
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type)
    # The udf the way its documentation shows it: the model's input columns by name, in a struct.
    with_udf = rows_df.withColumn("prediction", udf(F.struct(*features)))
    scored = score(rows_df, model_path, spec)
    warmup = rows_df.sample(fraction=min(1.0, WARMUP_ROWS / count), seed=13)  # a few rows of every partition

    chunk = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))

    def one_openmp_thread() -> None:
        with threadpool_limits(limits=1, user_api="openmp"):
            model.predict(frame)

    def in_chunks() -> None:
        for start in range(0, len(frame), chunk):
            model.predict(frame.iloc[start : start + chunk])

    methods: dict[str, Callable[[], object]] = {
        IN_PROCESS: lambda: model.predict(frame),
        SPARK_UDF: lambda: to_noop(with_udf),
        BATCH: lambda: to_noop(scored),
        IN_PROCESS_ONE_THREAD: one_openmp_thread,
        IN_PROCESS_CHUNKS: in_chunks,
    }
    model.predict(frame.head(WARMUP_ROWS))
    to_noop(warmup.withColumn("prediction", udf(F.struct(*features))))
    to_noop(score(warmup, model_path, spec))
    with threadpool_limits(limits=1, user_api="openmp"):
        model.predict(frame.head(WARMUP_ROWS))
    timings = {name: Timings(name, count) for name in methods}
    for round_number in range(1, rounds + 1):
        for name, action in methods.items():
            timings[name].seconds.append(_timed(action))
        print(
            f"  round {round_number}: " + ", ".join(f"{name} {timings[name].seconds[-1]:.2f} s" for name in methods),
            flush=True,
        )
    return list(timings.values())


def _versions(*distributions: str) -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in distributions)


def driver_omp_threads() -> str:
    """The OpenMP thread count of this process (the in-process reference), as threadpoolctl reads it."""
    from threadpoolctl import threadpool_info

    return ", ".join(sorted({str(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "openmp"}))


def worker_omp_threads(spark) -> str:
    """OMP_NUM_THREADS as the Spark Python workers see it."""
    import pandas as pd

    def report(batches):
        for _ in batches:
            pass
        yield pd.DataFrame({"omp": [os.environ.get("OMP_NUM_THREADS", "unset")]})

    found = spark.range(2).repartition(2).mapInPandas(report, "omp string").toPandas()["omp"]
    return ", ".join(sorted(set(found)))


@dataclass(frozen=True)
class MicroBatch:
    batch_id: int
    seconds: float
    add_batch_seconds: float
    rows: int = 0  # scored + rejected, read from the tables (a progress event counts a row once per read of it)


def stream_section(platform: Platform, window: Window, days: int) -> tuple[list[MicroBatch], float, int]:
    """Land ``days`` days of the streamed source, run the streaming job (available-now) and read each micro-batch's
    progress. Returns (micro-batches, wall seconds of ``run_stream``, scored rows)."""
    from pyspark.sql.streaming import StreamingQueryListener

    from jobs.streaming_inference import run_stream
    from local.landing import land_rows

    landed = sorted(day for day in map(_landed_day, Path(platform.landing.path).glob("*.parquet")) if day)
    first = max(landed[-1] + timedelta(days=1), window.stream_start) if landed else window.stream_start
    last = first + timedelta(days=days - 1)
    if last > window.last:
        raise RuntimeError(
            f"this home has landed rows up to {first - timedelta(days=1)}: {days} more days would go past "
            f"{window.last}; use another --home"
        )
    files = land_rows(platform.env, first, last)
    print(f"  landed {len(files)} files ({first}..{last}) in {platform.landing.path}", flush=True)
    query_name = f"{platform.env.name}_streaming_inference"
    progress: list[MicroBatch] = []

    class Progress(StreamingQueryListener):
        def onQueryStarted(self, event) -> None:
            pass

        def onQueryProgress(self, event) -> None:
            p = event.progress
            if p.name == query_name and p.numInputRows > 0:
                progress.append(MicroBatch(p.batchId, p.batchDuration / 1000, p.durationMs.get("addBatch", 0) / 1000))

        def onQueryIdle(self, event) -> None:
            pass

        def onQueryTerminated(self, event) -> None:
            pass

    spark = platform.spark
    listener = Progress()
    spark.streams.addListener(listener)
    try:
        started = time.perf_counter()
        result = run_stream(platform, "available-now")
        wall = time.perf_counter() - started
        deadline = time.monotonic() + 30
        while len(progress) < result.batches and time.monotonic() < deadline:
            time.sleep(0.1)  # the listener bus delivers progress events asynchronously
    finally:
        spark.streams.removeListener(listener)
    if result.replayed_batches:
        raise RuntimeError(f"micro-batches {result.replayed_batches} were replays: their timing is not a scoring run")
    env = platform.env
    rows = _stream_rows(env.predictions_table) + _stream_rows(env.rejects_table)
    batches = [replace(b, rows=rows[f"stream-{b.batch_id}"]) for b in sorted(progress, key=lambda b: b.batch_id)]
    return batches, wall, result.scored_rows


def _landed_day(path: Path) -> date | None:
    try:
        return date.fromisoformat(path.stem)
    except ValueError:
        return None  # not a day file of land_rows


def _stream_rows(table: str) -> Counter[str]:
    """Rows per ``batch_id`` that the streaming job wrote to ``table``."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from local.tables import LocalTables

    path = LocalTables.path(table)
    if not DeltaTable.is_deltatable(str(path)):
        return Counter()
    written = DeltaTable(str(path)).to_pyarrow_table(columns=["batch_id", "source"])
    streamed = written.filter(pc.equal(written["source"], "stream"))["batch_id"].to_pylist()
    return Counter(streamed)


def publish_section(platform: Platform) -> str:
    """The publish job against an in-memory dynalite: the items/s line, or why it was skipped."""
    try:
        from jobs.publish import publish
        from local.dynalite import DYNAMODB_ENDPOINT_ENV, Dynalite, DynaliteError
    except ImportError as e:
        return f"publish: skipped, the online store code is not importable ({e})"
    from jobs.platform.job import JobError

    try:
        with Dynalite(path=None) as dynamodb:
            previous = os.environ.get(DYNAMODB_ENDPOINT_ENV)
            os.environ[DYNAMODB_ENDPOINT_ENV] = dynamodb.endpoint_url
            try:
                started = time.perf_counter()
                result = publish(platform)
                seconds = time.perf_counter() - started
            finally:
                if previous is None:
                    os.environ.pop(DYNAMODB_ENDPOINT_ENV, None)
                else:
                    os.environ[DYNAMODB_ENDPOINT_ENV] = previous
    except (DynaliteError, JobError) as e:
        return f"publish: skipped, the publish job failed ({e})"
    counts = result.counts
    return (
        f"publish (jobs.publish.publish to dynalite in memory, one run, Spark read + DynamoDB writes): "
        f"{result.items:,} items from {result.rows_read:,} prediction rows in {seconds:.2f} s = "
        f"{result.items / seconds:,.0f} items/s ({counts.written:,} written, {counts.kept_newer:,} kept newer, "
        f"{counts.unchanged:,} unchanged)"
    )


def run(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="bench-inference-"))
    os.environ["MLOPS_HOME"] = str(home)
    from jobs.platform import build_platform
    from spec.config import ENVIRONMENTS

    env = ENVIRONMENTS[ENV]
    if args.model not in (None, env.model_name):
        raise SystemExit(f"bench.inference: environment {ENV!r} runs model {env.model_name!r}, not {args.model!r}")
    window = data_window(env.model_name)
    rows = window.rows if args.rows is None else args.rows
    if not WARMUP_ROWS <= rows <= window.rows:
        raise SystemExit(
            f"bench.inference: --rows must be between {WARMUP_ROWS:,} and {window.rows:,} (the rows of "
            f"{window.model}'s data)"
        )

    load_before = os.getloadavg()
    print(f"MLOPS_HOME={home}; 1-minute load average before the run {load_before[0]:.2f}", flush=True)
    started = time.perf_counter()
    try:
        platform = build_platform(env)
        print("setup (the project's jobs):", flush=True)
        prepared = prepare(platform, window, rows)
        spark = platform.spark
        print("measuring:", flush=True)
        results = measure(platform, prepared.model_uri, prepared.model_path, prepared.rows, args.rounds)
        print("streaming:", flush=True)
        files_per_trigger = platform.env.inference.max_files_per_trigger
        stream_days = args.stream_days or STREAM_MICRO_BATCHES * files_per_trigger
        batches, stream_wall, streamed = stream_section(platform, window, stream_days)
        publish_line = publish_section(platform) if args.publish else "publish: skipped (--no-publish)"
        partitions = prepared.rows.rdd.getNumPartitions()
        arrow_batch = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
        omp = worker_omp_threads(spark)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    reference, udf, batch, one_thread, chunks = results

    print()
    print(
        f"machine: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Spark {spark.version} "
        f"{spark.sparkContext.master}, {_versions('mlflow', 'scikit-learn', 'pandas', 'pyarrow')}; "
        f"1-minute load average {load_before[0]:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after it; {time.perf_counter() - started:.0f} s in all"
    )
    print(
        f"rows: {reference.rows:,} candidate rows of {window.first}..{window.last} (scoring_rows + split), written "
        f"once to {rows_table(platform)} and read back: one in-memory Spark DataFrame of {partitions} partitions for "
        "both Spark methods; its toPandas() -> model_frame is the in-process frame"
    )
    print(
        f"model: {prepared.model_uri} ("
        + (
            f"champion; trained by this run on {window.training[0]}..{window.training[1]}, {TRAINING_ROWS:,} rows"
            if prepared.trained_here
            else "the kept home's champion"
        )
        + "); "
        f"Spark methods forced to completion by writing every output row to Spark's noop sink "
        f"(df.write.format('noop')); Arrow batches of {arrow_batch} rows; Spark Python workers' "
        f"OMP_NUM_THREADS={omp}; the in-process reference uses the OpenMP default ({driver_omp_threads()} threads here)"
    )
    print(f"rounds: {args.rounds}, the methods alternating within a round, each warmed up once before")
    print(f"{'method':<44} {'best rows/s':>12} {'median rows/s':>14} {'median ratio':>13}")
    for timing in (reference, udf, batch):
        print(
            f"{timing.name:<44} {timing.best:>12,.0f} {timing.median:>14,.0f} "
            f"{timing.median / reference.median:>12.2f}x"
        )
    notes = [(one_thread, "the reference's predict with one OpenMP thread"), (chunks, f"{arrow_batch} rows a predict")]
    for timing, note in notes:
        print(
            f"{timing.name:<44} {timing.best:>12,.0f} {timing.median:>14,.0f} "
            f"{timing.median / reference.median:>12.2f}x   (for reading the reference: {note})"
        )
    if batches:
        seconds = [b.seconds for b in batches]
        rows = [b.rows for b in batches]
        print(
            f"streaming (run_stream available-now, {stream_days} landed days, at most {files_per_trigger} per "
            f"micro-batch (inference.max_files_per_trigger): {len(batches)} micro-batches, "
            f"{streamed:,} rows scored, {stream_wall:.1f} s wall incl. query start): per micro-batch "
            f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s (foreachBatch: median "
            f"{statistics.median(b.add_batch_seconds for b in batches):.2f} s); rows per micro-batch median "
            f"{statistics.median(rows):,.0f}, min {min(rows):,}, max {max(rows):,}"
        )
    else:
        print("streaming: no micro-batch progress was reported")
    print(publish_line)
    print(f"target: batch >= 0.50x in-process: {'met' if batch.median / reference.median >= 0.5 else 'MISSED'}")
    print(f"ratio batch/in-process with 1 OpenMP thread: {batch.median / one_thread.median:.2f}")
    print(f"ratio batch/in-process in chunks of {arrow_batch} rows: {batch.median / chunks.median:.2f}")
    print(f"ratio batch/in-process: {batch.median / reference.median:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", metavar="NAME", help=f"the model (default: the one {ENV} runs)")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows scored by each method (default and at most: all the data's)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per method")
    parser.add_argument(
        "--stream-days",
        type=int,
        help=f"days landed for the streaming section (default: {STREAM_MICRO_BATCHES} micro-batches' worth)",
    )
    parser.add_argument(
        "--no-publish", dest="publish", action="store_false", help="skip the publish section (dynalite)"
    )
    parser.add_argument("--home", help="MLOPS_HOME to use and keep (reuses its data and its champion)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.stream_days is not None and args.stream_days < 1):
        parser.error("--rounds and --stream-days must be >= 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
