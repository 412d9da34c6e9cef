"""Quality-monitor benchmark: the local monitor (local.monitor) at two sizes, and Evidently's DataDriftPreset on the
same comparison, with both tools' drift verdicts.

    python -m bench.monitor [--sizes 150000,300000] [--repeats 2] [--home DIR] [-v]

Steps:

1. Rows: every row of prod's model's sources (its package's ``load_sources``), with the features its
   ``scoring_rows`` computes (point in time) and the labels its ``labels`` gives, as the jobs build them; the
   model's estimator (``build_estimator``) trained on a sample of the labelled rows of January-February (by event
   time) scores them all: the predictions table (model version 1, its inputs alongside, as the scoring jobs write
   it) and the baseline table (January-February's labelled rows, scored by the same model) in a temporary
   MLOPS_HOME.
2. Scaling: the predictions table holds the first N rows (by event time) for each size; a full refresh (prod's
   monitor configuration: "1 day" and "1 week" windows, the model's slices, its monitored features plus its outputs
   and the label) is timed, best of ``--repeats``. Cost should grow about linearly: the ratio
   time(largest) / time(smallest) is printed against size ratio x 1.1.
3. Same comparison, both tools: July's rows against the baseline, the monitored features. The monitor refreshes a
   predictions table holding July only, with one "1 month" window and no slices (profile and drift metrics, read
   and written as Delta tables: all of it is timed). Evidently 0.7.23 runs in its own virtualenv
   (``.mlops/bench-venv/evidently-0.7.23``, created once) in a subprocess, on the same rows passed as Parquet files;
   its ``Dataset.from_pandas`` and ``Report([DataDriftPreset()]).run`` are timed after a warm-up run, best of
   ``--repeats``. Rows/s counts the rows both sides compare: July's plus the baseline's.
4. Verdicts: Evidently's default test per column (more than 1000 reference rows: Wasserstein distance normed by the
   reference's standard deviation for numeric columns with more than 5 distinct values, Jensen-Shannon distance
   otherwise; drift when >= 0.1) is applied to the monitor's own metrics (``wasserstein_distance`` / the baseline
   profile's ``stddev``, ``js_distance``), and the columns each tool calls drifted are compared. The monitor's alert
   rule (population stability index > ``max_drift_psi``) is printed beside them.

The last line is ``speedup vs evidently: X.XX`` (the monitor's rows/s over Evidently's on the same comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ENV = "prod"
EVIDENTLY = "evidently==0.7.23"
# Evidently 0.7.23 imports pandas internals that pandas 3 removed; its venv gets the project's own versions of
# these, so both tools run the same numerics.
SHARED = ("pandas", "numpy", "scipy", "pyarrow")
REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".mlops" / "bench-venv" / "evidently-0.7.23"
TRAIN_ROWS = 20_000
THRESHOLD = 0.1  # Evidently's default for Wasserstein (normed) and Jensen-Shannon (js_distance)
POSITIVE_ABOVE = 0.5  # a classifier's prediction is 1 above this probability, as the scoring jobs decide
JULY = 7


def _log(message: str) -> None:
    print(message, flush=True)


# --- Rows ---------------------------------------------------------------------------------------------------------


def build_rows(env, seed: int = 13):
    """(predictions, baseline) in the predictions table's layout of ``env``'s model, sorted by event time."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F
    from sklearn.utils.class_weight import compute_sample_weight
    from threadpoolctl import threadpool_limits

    from jobs.platform.model import load_model
    from local.spark import local_spark

    package = load_model(env.model_name)
    spec = package.spec
    key = list(spec.key_names)
    spark = local_spark()
    sources = {name: spark.createDataFrame(frame) for name, frame in package.load_sources(None, None).items()}
    features = package.build_features(sources)
    scored = package.scoring_rows(sources[package.scored_source], features)
    first, last = scored.agg(F.min(spec.event_date), F.max(spec.event_date)).first()
    labels = package.labels(sources, first, last).dropDuplicates(key)
    rows = scored.join(labels, on=key, how="left").toPandas()
    types = dict(spec.prediction_column_types)
    for column in rows.columns:
        if types.get(column) == "TIMESTAMP" and rows[column].dt.tz is None:
            rows[column] = rows[column].dt.tz_localize("UTC")
    rows = rows.sort_values([spec.event_time, *key], kind="stable", ignore_index=True)
    frame = _model_frame(rows, spec)
    months = rows[spec.event_time].dt.month.to_numpy()
    winter = np.flatnonzero((months <= 2) & rows["label"].notna().to_numpy())
    train = np.random.default_rng(seed).choice(winter, size=min(TRAIN_ROWS, len(winter)), replace=False)
    y = rows["label"].to_numpy()[train]
    estimator = package.build_estimator(seed=seed)
    with threadpool_limits(limits=2):
        if spec.is_classifier:
            y = y.astype("int64")
            # Balanced classes, as training weighs them (a pipeline's last step takes the weights).
            weights = {f"{estimator.steps[-1][0]}__sample_weight": compute_sample_weight("balanced", y)}
            model = estimator.fit(frame.iloc[train], y, **weights)
            classes = list(model.classes_)
            probability = model.predict_proba(frame)[:, classes.index(1)]
        else:
            model = estimator.fit(frame.iloc[train], y.astype("float64"))
            prediction = model.predict(frame)
    at = pd.Timestamp(datetime(2014, 1, 1, tzinfo=UTC))
    out = rows[[*key, *spec.event_time_in_rows]].copy()
    for column in spec.scored_features:
        out[column] = frame[column].to_numpy()
    if spec.is_classifier:
        out["prediction"] = (probability > POSITIVE_ABOVE).astype("int32")
        out["probability"] = probability
    else:
        out["prediction"] = prediction.astype("float64")
    out["model_name"], out["model_version"], out["model_alias"] = env.registered_model, "1", "champion"
    out["scored_at"], out["batch_id"], out["source"] = at, "batch-bench", "batch"
    label = rows["label"].to_numpy(dtype="float64")
    out["label"] = pd.array(label, dtype="Float64").astype("Int32") if spec.is_classifier else label
    for column in spec.label_detail_names:
        out[column] = rows[column].to_numpy()
    out["labeled_at"] = pd.Series(at, index=out.index).where(rows["label"].notna())
    out = out[list(spec.prediction_columns)]
    baseline = out.iloc[winter].copy()
    baseline["model_alias"], baseline["source"], baseline["batch_id"] = "training", "training", "baseline-v1"
    return out, baseline.reset_index(drop=True)


def _model_frame(rows, spec):
    """The estimator's input, as the platform gives it: the features, categoricals as strings, numerics as float64
    (missing = NaN)."""
    import pandas as pd

    frame = pd.DataFrame(index=rows.index)
    for column in spec.categorical_features:
        frame[column] = rows[column].astype("string").fillna("").astype(object)
    for column in spec.numeric_features:
        frame[column] = pd.to_numeric(rows[column], errors="coerce").astype("float64")
    return frame.reset_index(drop=True)


def _write(full_name: str, frame, column_types) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from local.paths import table_path

    path = table_path(full_name)
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # The declared SQL types where pandas' own differ (a classifier's INT label and prediction).
    ints = {name for name, sql in column_types if sql == "INT"}
    schema = pa.schema([f.with_type(pa.int32()) if f.name in ints else f for f in table.schema])
    write_deltalake(str(path), table.cast(schema), mode="overwrite")


# --- The monitor --------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """The best wall-clock and the best CPU time of repeated runs (each best of its own)."""

    wall: float = float("inf")
    cpu: float = float("inf")
    result: object = None

    def add(self, wall: float, cpu: float, result: object = None) -> None:
        if wall < self.wall:
            self.wall, self.result = wall, result
        self.cpu = min(self.cpu, cpu)


def refresh_once(env, monitored, measured: Measured) -> None:
    """A full refresh (the fingerprint state dropped first: every window is computed), timed."""
    from local.monitor import refresh_monitor, state_path

    state_path(monitored).unlink(missing_ok=True)
    cpu = time.process_time()
    result = refresh_monitor(env, monitored, full=True)
    measured.add(result.seconds, time.process_time() - cpu, result)


def monitor_verdicts(monitored, reference, current, features) -> dict[str, dict]:
    """Evidently's default decision applied to the monitor's BASELINE drift metrics of the one window."""
    import pandas as pd
    from deltalake import DeltaTable

    from local.paths import table_path
    from spec.monitoring import BASELINE

    drift = DeltaTable(str(table_path(monitored.drift_metrics_table))).to_pandas()
    profile = DeltaTable(str(table_path(monitored.profile_metrics_table))).to_pandas()
    drift = drift[(drift["drift_type"] == BASELINE) & drift["slice_key"].isna()].set_index("column_name")
    base = profile[(profile["log_type"] == BASELINE) & profile["slice_key"].isna()].set_index("column_name")
    out = {}
    for column in features:
        row = drift.loc[column]
        categorical = reference[column].dtype == object
        distinct = pd.concat([reference[column], current[column]]).nunique()
        if categorical or distinct <= 5:
            method, value = "Jensen-Shannon distance", float(row["js_distance"])
        else:
            method, value = (
                "Wasserstein (normed)",
                float(row["wasserstein_distance"]) / float(base.loc[column, "stddev"]),
            )
        psi = row["population_stability_index"]
        out[column] = {
            "method": method,
            "value": value,
            "drift": value >= THRESHOLD,
            "psi": None if pd.isna(psi) else float(psi),
        }
    return out


# --- Evidently, in its own virtualenv -----------------------------------------------------------------------------


def evidently_python() -> Path:
    """The benchmark's Evidently virtualenv, created on first use (pip from the package index)."""
    from importlib.metadata import version

    pins = [EVIDENTLY, *(f"{name}=={version(name)}" for name in SHARED)]
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if python.exists() and marker.exists() and marker.read_text().split() == pins:
        return python
    _log(f"creating {VENV} with {' '.join(pins)} (once)")
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins], check=True)
    marker.write_text("\n".join(pins))
    return python


def run_evidently(reference, current, numerical, categorical, repeats: int, workdir: Path) -> dict:
    reference_path, current_path, out = workdir / "reference.parquet", workdir / "current.parquet", workdir / "ev.json"
    reference.to_parquet(reference_path, index=False)
    current.to_parquet(current_path, index=False)
    spec = {"numerical": list(numerical), "categorical": list(categorical), "repeats": repeats}
    command = [str(evidently_python()), str(Path(__file__).resolve()), "--evidently-worker",
               str(reference_path), str(current_path), str(out), json.dumps(spec)]  # fmt: skip
    # Evidently's own numpy warnings (a correlation over constant columns) are not the benchmark's business.
    subprocess.run(command, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.read_text())


def evidently_worker(reference_path: str, current_path: str, out_path: str, spec_json: str) -> None:
    """Runs inside the Evidently virtualenv: no project import."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently import __version__ as evidently_version
    from evidently.presets import DataDriftPreset

    spec = json.loads(spec_json)
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    definition = DataDefinition(numerical_columns=spec["numerical"], categorical_columns=spec["categorical"])

    def run(ref, cur):
        cur_dataset = Dataset.from_pandas(cur, data_definition=definition)
        ref_dataset = Dataset.from_pandas(ref, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur_dataset, ref_dataset)

    run(reference.head(2000), current.head(2000))  # imports and first-call costs, as the monitor's warm-up
    timings, cpu = [], []
    for _ in range(spec["repeats"]):
        started, cpu_started = time.perf_counter(), time.process_time()
        snapshot = run(reference, current)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    columns, drifted_count = {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            drifted_count = metric["value"]["count"]
        elif config["type"].endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            # p-value tests drift below the threshold, distances at or above it
            drift = value < threshold if "p_value" in config["method"] else value >= threshold
            columns[config["column"]] = {"method": config["method"], "threshold": threshold, "value": value,
                                         "drift": drift}  # fmt: skip
    Path(out_path).write_text(
        json.dumps(
            {
                "seconds": min(timings),
                "timings": timings,
                "cpu": min(cpu),
                "columns": columns,
                "drifted_count": drifted_count,
                "version": evidently_version,
            }
        )  # fmt: skip
    )


# --- The run ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    os.environ["MLOPS_HOME"] = str(home)
    import logging

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    from spec.config import ENVIRONMENTS
    from spec.monitoring import monitored_tables

    env = ENVIRONMENTS[ENV]
    load_before = os.getloadavg()[0]
    _log(f"MLOPS_HOME={home}; load average before the run {load_before:.2f}")
    evidently_python()  # created (once) before anything is timed

    started = time.perf_counter()
    predictions, baseline = build_rows(env)
    columns = env.model.prediction_column_types
    event_time = env.model.event_time
    _log(
        f"rows: {len(predictions):,} scored rows ({int(predictions['label'].notna().sum()):,} labelled), "
        f"baseline {len(baseline):,} January-February labelled rows; model trained on {TRAIN_ROWS:,} of them "
        f"({time.perf_counter() - started:.0f}s, Spark feature join included)"
    )
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if sizes[-1] > len(predictions):
        raise SystemExit(f"bench.monitor: --sizes asks for {sizes[-1]} rows; the sources have {len(predictions)}")
    features = list(env.model.monitored)
    july = predictions[predictions[event_time].dt.month == JULY]
    # One catalog per measurement (its own tables and fingerprint state), so the runs can alternate: the machine's
    # other load then weighs on every size alike.
    setups = {"warm-up": predictions.iloc[:5000], **{size: predictions.iloc[:size] for size in sizes}, "july": july}
    targets = {}
    for name, rows in setups.items():
        catalog_env = env.replace(catalog=f"bench_{str(name).replace('-', '_')}")
        _write(catalog_env.baseline_table, baseline, columns)
        _write(catalog_env.predictions_table, rows, columns)
        monitored = monitored_tables(catalog_env)[0]
        if name == "july":
            monitored = replace(monitored, granularities=("1 month",), slicing_exprs=())
        targets[name] = (catalog_env, monitored)
    refresh_once(*targets["warm-up"], Measured())  # imports and first calls
    scaling = {size: Measured() for size in sizes}
    same = Measured()
    for _ in range(args.repeats):
        for size in sizes:
            refresh_once(*targets[size], scaling[size])
        refresh_once(*targets["july"], same)
    for size in sizes:
        result = scaling[size].result
        first, last = predictions[event_time].iloc[0], predictions[event_time].iloc[size - 1]
        _log(
            f"monitor, full refresh of {size:,} rows ({first:%Y-%m-%d} to {last:%Y-%m-%d}): "
            f"{scaling[size].wall:.2f}s = {size / scaling[size].wall:,.0f} rows/s (CPU {scaling[size].cpu:.2f}s); "
            f"{result.windows} windows, {result.profile_rows:,} profile rows, {result.drift_rows:,} drift rows"
        )

    # The same comparison for both tools: July against the baseline.
    compared = len(july) + len(baseline)
    ours = monitor_verdicts(targets["july"][1], baseline, july, features)
    categorical = [c for c in features if baseline[c].dtype == object]
    numerical = [c for c in features if c not in categorical]
    workdir = Path(tempfile.mkdtemp(prefix="bench-monitor-evidently-"))
    theirs = run_evidently(baseline[features], july[features], numerical, categorical, args.repeats, workdir)
    shutil.rmtree(workdir, ignore_errors=True)

    timings = ", ".join(f"{t:.2f}s" for t in theirs["timings"])
    _log("")
    _log(
        f"same comparison: July ({len(july):,} rows) against the baseline ({len(baseline):,}), "
        f"{len(features)} features; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Evidently "
        f"{theirs['version']} (best of {args.repeats} after a warm-up: {timings})"
    )
    _log(f"{'column':<12} {'monitor (Evidently rule)':<36} {'drift':<6} {'monitor PSI':>12} "
         f"{'Evidently':<38} {'drift':<6}")  # fmt: skip
    differ = []
    for column in features:
        mine, other = ours[column], theirs["columns"][column]
        psi = "-" if mine["psi"] is None else f"{mine['psi']:.3f}"
        mine_text = f"{mine['method']} {mine['value']:.4f}"
        other_text = f"{other['method']} {other['value']:.4f}"
        _log(
            f"{column:<12} {mine_text:<36} {'yes' if mine['drift'] else 'no':<6} {psi:>12} {other_text:<38} "
            f"{'yes' if other['drift'] else 'no':<6}"
        )
        if mine["drift"] != other["drift"]:
            differ.append(column)
    our_drifted = [c for c in features if ours[c]["drift"]]
    their_drifted = [c for c in features if theirs["columns"][c]["drift"]]
    psi_drifted = [c for c in features if ours[c]["psi"] is not None and ours[c]["psi"] > env.monitoring.max_drift_psi]
    _log(f"drifted, monitor (Evidently's rule, threshold {THRESHOLD}): {len(our_drifted)} {our_drifted}")
    _log(f"drifted, Evidently DataDriftPreset (its defaults, threshold {THRESHOLD}): {len(their_drifted)} "
         f"{their_drifted}")  # fmt: skip
    _log(f"drifted, monitor alert rule (population_stability_index > {env.monitoring.max_drift_psi}): "
         f"{len(psi_drifted)} {psi_drifted}")  # fmt: skip
    _log(f"same verdicts: {'yes, on all ' + str(len(features)) + ' columns' if not differ else 'no: ' + str(differ)}")

    small, large = sizes[0], sizes[-1]
    ratio = scaling[large].wall / scaling[small].wall
    cpu_ratio = scaling[large].cpu / scaling[small].cpu
    target = large / small * 1.1
    ours_rate = compared / same.wall
    theirs_rate = compared / theirs["seconds"]
    _log("")
    _log(
        f"scaling: {small:,} rows {scaling[small].wall:.2f}s, {large:,} rows {scaling[large].wall:.2f}s; "
        f"time({large / small:g}x)/time(1x) = {ratio:.2f} (CPU time: {cpu_ratio:.2f}; target <= {target:.1f})"
    )
    _log(
        f"monitor: {same.wall:.3f}s = {ours_rate:,.0f} rows/s, CPU {same.cpu:.3f}s (read, profile and drift metrics "
        f"of {len(targets['july'][1].monitored_columns)} columns, written as Delta tables); evidently: "
        f"{theirs['seconds']:.3f}s = {theirs_rate:,.0f} rows/s, CPU {theirs['cpu']:.3f}s ({len(features)} columns, "
        f"drift only); CPU-time ratio {theirs['cpu'] / same.cpu:.2f}"
    )
    _log(f"load average before the run {load_before:.2f}, after it {os.getloadavg()[0]:.2f}")
    if not args.home:
        shutil.rmtree(home, ignore_errors=True)
    _log(f"speedup vs evidently: {ours_rate / theirs_rate:.2f}")
    return 0 if not differ else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--evidently-worker"]:
        evidently_worker(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.monitor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="150000,300000", help="predictions table sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the best counts)")
    parser.add_argument("--home", help="MLOPS_HOME to use and keep")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the monitor's progress")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
