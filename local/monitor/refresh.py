"""``refresh_monitor``: one refresh of one monitored table, under its lock. Reads the rows (``store``), plans which
windows changed (``plan``), computes their metric rows (``compute``), merges them into the metric tables and
replaces the state (``store``, ``plan``)."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from local.files import exclusive_lock
from local.monitor import plan, store
from local.monitor.compute import compute_granularity
from local.monitor.errors import MonitorError
from local.monitor.frame import Frame, build_frame, current_keys
from local.monitor.windows import WindowKey, parse_granularity, window_codes, window_starts
from spec.config import Environment
from spec.monitoring import BASELINE, CONSECUTIVE, INPUT, MODEL_ID_COL, MonitoredTable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did. ``computed``: windows whose profile and drift were recomputed; ``consecutive_only``:
    windows whose CONSECUTIVE drift alone was recomputed (the window before them changed)."""

    table: str
    table_version: int
    monitor_version: int
    profile_table: str
    drift_table: str
    windows: int
    computed: tuple[WindowKey, ...]
    consecutive_only: tuple[WindowKey, ...]
    removed: tuple[WindowKey, ...]
    profile_rows: int
    drift_rows: int
    written: bool
    seconds: float


@dataclass
class _Work:
    """The refresh's metric rows so far: new rows, and the partitions of the earlier rows that stay."""

    profiles: list[pa.Table]
    drifts: list[pa.Table]
    keep_profile: set[str]
    keep_drift: set[str]
    computed: list[WindowKey]
    consecutive_only: list[WindowKey]
    removed: list[WindowKey]


def refresh_monitor(env: Environment, monitored: MonitoredTable, *, full: bool = False) -> RefreshResult:
    """Recompute the metric tables of ``monitored`` for the windows whose rows changed since the last refresh (every
    window with ``full``, on the first refresh, when the monitor's configuration changed, or when a metric table is
    missing).

    Refreshes of one table run one at a time (an exclusive lock beside the state, see ``lock_path``): two at once
    would plan from the same state and each replace the other's metric tables and state. The second waits for the
    first, then finds what the first wrote."""
    with exclusive_lock(plan.lock_path(monitored), f"the refresh of the monitor on {monitored.table}"):
        return _refresh(env, monitored, full=full)


def _missing_hint(env: Environment, monitored: MonitoredTable) -> str:
    if monitored.table == env.predictions_table:
        return f"score rows first: mlops run batch-inference --env {env.name} (or streaming-inference)"
    if monitored.table == env.served_table:
        return (
            f"the labels job writes it from the serving endpoint's inference table: serve requests (mlops serve "
            f"--env {env.name}), then run mlops run labels --env {env.name}"
        )
    return "create it first"


def _train_first(env: Environment) -> str:
    return f"train a model first: it writes the baseline (mlops run model-training --env {env.name})"


def _slicing(monitored: MonitoredTable) -> tuple[str, ...]:
    """The slicing expressions, after checking the monitor's configuration."""
    for granularity in monitored.granularities:
        parse_granularity(granularity)
    slicing = tuple(monitored.slicing_exprs)
    for expression in slicing:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expression):
            raise MonitorError(f"slicing expression {expression!r}: the local monitor slices by column names only")
    return slicing


def _refresh(env: Environment, monitored: MonitoredTable, *, full: bool) -> RefreshResult:
    """``refresh_monitor`` under the table's lock."""
    started = time.perf_counter()
    slicing = _slicing(monitored)
    timestamp = monitored.timestamp_col
    needed = list(dict.fromkeys((timestamp, MODEL_ID_COL, *monitored.monitored_columns, *slicing)))
    current, table_version = store.read_table(monitored.table, needed, _missing_hint(env, monitored))
    # The plan needs the current rows only; the baseline's model inputs are read for the versions it recomputes.
    light = current_keys(current, timestamp)
    usable = ~light.ts_null & (light.version >= 0)
    if not usable.all():
        logger.warning("%s: %s rows without %s or %s are not monitored", monitored.table, int((~usable).sum()),
                       timestamp, MODEL_ID_COL)  # fmt: skip
    current_names = {light.versions[v] for v in np.unique(light.version[usable])}
    # One snapshot of the baseline for its fingerprints and its rows.
    baseline_table = store.open_table(monitored.baseline_table, needed, _train_first(env))
    baseline_fp = plan.baseline_fingerprints(
        env, monitored, store.baseline_keys(baseline_table, timestamp), current_names
    )

    path = plan.state_path(monitored)
    previous = plan.load_state(path, monitored.table)
    config = plan.config_fingerprint(monitored)
    monitor_version = 0 if previous is None else previous.monitor_version
    if previous is not None and previous.config != config:
        logger.info("%s: the monitor's configuration changed: every window is recomputed", monitored.table)
        monitor_version += 1
        full = True
    if not full and not all(store.readable(name, schema) for name, schema in store.metric_tables(monitored)):
        full = True
    last = None if full else previous
    baseline_changed = {v for v, fp in baseline_fp.items() if last is None or last.baseline.get(v) != fp}

    new_windows: dict[str, plan.Fingerprints] = {}
    plans: dict[str, plan.WindowPlan] = {}
    starts_by: dict[str, np.ndarray] = {}  # per granularity: each current row's window start (-1: unusable)
    for granularity in monitored.granularities:
        starts = starts_by[granularity] = np.where(
            usable, window_starts(np.where(usable, light.ts, 0), granularity), -1
        )
        new_windows[granularity] = plan.window_fingerprints(light, starts, usable, granularity)
        before = {} if last is None else last.windows.get(granularity, {})
        plans[granularity] = plan.plan_windows(new_windows[granularity], before, baseline_changed)
    wanted_versions = {key.model_version for window_plan in plans.values() for key in window_plan.rows}
    baseline = store.read_baseline(baseline_table, needed, wanted_versions, current.select(needed).slice(0, 0))
    frame = None
    read_by: dict[str, np.ndarray] = {}  # per granularity: which of the frame's current rows its plan reads
    if wanted_versions:
        # Only the rows of the windows the plans read are encoded (a refresh recomputes the recent windows, not the
        # table's whole history); the masks of the rows read follow them.
        read_by = _rows_read(light, plans, starts_by, usable)
        taken = np.flatnonzero(np.logical_or.reduce(list(read_by.values())))
        if len(taken) < current.num_rows:  # a full refresh reads every usable row: no copy then
            current = current.take(pa.array(taken, type=pa.int64()))
            read_by = {granularity: read[taken] for granularity, read in read_by.items()}
        frame = build_frame(current, baseline, slicing, monitored)

    stamp = {"table_version": table_version, "monitor_version": monitor_version}
    work = _Work([], [], set(), set(), [], [], [])
    for granularity, window_plan in plans.items():
        recomputed = _compute(monitored, granularity, window_plan, new_windows[granularity], frame,
                              read_by.get(granularity), slicing, stamp, work)  # fmt: skip
        # A version's baseline profile rows are rewritten with its recomputed windows, and kept otherwise.
        work.keep_profile |= {store.baseline_partition(granularity, v) for v in current_names - recomputed}

    written = bool(work.computed or work.consecutive_only or work.removed) or full
    profile_rows = drift_rows = 0
    if written:
        # Without an earlier state nothing says which versions' rows the tables hold: they are replaced whole.
        profile_rows, drift_rows = _write(monitored, work, full or last is None)
        state = plan.State(monitored.table, config, monitor_version, table_version, baseline_fp, new_windows)
        plan.save_state(path, state)
    result = RefreshResult(
        table=monitored.table,
        table_version=table_version,
        monitor_version=monitor_version,
        profile_table=monitored.profile_metrics_table,
        drift_table=monitored.drift_metrics_table,
        windows=sum(len(w) for w in new_windows.values()),
        computed=tuple(work.computed),
        consecutive_only=tuple(work.consecutive_only),
        removed=tuple(work.removed),
        profile_rows=profile_rows,
        drift_rows=drift_rows,
        written=written,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "%s (version %s): %s of %s windows recomputed, %s, %.2fs",
        monitored.table, table_version, len(work.computed), result.windows,
        f"{profile_rows} profile rows and {drift_rows} drift rows written" if written else "metric tables unchanged",
        result.seconds,
    )  # fmt: skip
    return result


def _rows_read(
    light: Frame, plans: dict[str, plan.WindowPlan], starts_by: dict[str, np.ndarray], usable: np.ndarray
) -> dict[str, np.ndarray]:
    """Per granularity, which current rows are in a window its plan reads (``WindowPlan.rows``)."""
    version_index = {name: i for i, name in enumerate(light.versions)}
    read_by = {}
    for granularity, window_plan in plans.items():
        codes = np.asarray(sorted(plan.window_code_set(window_plan.rows, version_index)), dtype=np.int64)
        read_by[granularity] = usable & np.isin(window_codes(light.version, starts_by[granularity]), codes)
    return read_by


def _compute(
    monitored: MonitoredTable,
    granularity: str,
    window_plan: plan.WindowPlan,
    fingerprints: plan.Fingerprints,
    frame: Frame | None,
    selected: np.ndarray | None,
    slicing: tuple[str, ...],
    stamp: dict[str, int],
    work: _Work,
) -> set[str]:
    """The metric rows ``window_plan`` asks for at ``granularity``, added to ``work``; the model versions whose
    windows were recomputed. ``selected``: which of ``frame``'s current rows are in the windows the plan reads."""
    work.computed += sorted(window_plan.dirty)
    work.consecutive_only += sorted(window_plan.consecutive - window_plan.dirty)
    work.removed += sorted(window_plan.removed)
    unchanged = fingerprints.keys() - window_plan.dirty
    work.keep_profile |= store.partitions(unchanged, INPUT)
    work.keep_drift |= store.partitions(unchanged, BASELINE)
    work.keep_drift |= store.partitions(fingerprints.keys() - window_plan.consecutive, CONSECUTIVE)
    recomputed: set[str] = set()
    if window_plan.consecutive:
        # window_plan.rows holds window_plan.consecutive, so their rows were read: none read is a planner bug
        if frame is None or selected is None:
            first = min(window_plan.consecutive)
            raise RuntimeError(
                f"{monitored.table} {granularity}: {len(window_plan.consecutive)} windows are to be recomputed (the "
                f"first: model version {first.model_version}, from {first.start:%Y-%m-%d %H:%M} UTC) but no rows "
                f"were read for them: the refresh plan lists {len(window_plan.rows)} windows to read, and these must "
                "include every window it recomputes"
            )
        version_index = {name: i for i, name in enumerate(frame.versions)}
        n_current = frame.n_current
        base_rows = np.arange(n_current, frame.n)
        versions_used = np.unique(frame.version[:n_current][selected])
        recomputed = {frame.versions[v] for v in versions_used}
        rows = np.concatenate([np.flatnonzero(selected), base_rows[np.isin(frame.version[base_rows], versions_used)]])
        profile, drift = compute_granularity(
            frame, rows, granularity, plan.window_code_set(window_plan.dirty, version_index),
            plan.window_code_set(window_plan.consecutive, version_index), slicing, stamp, monitored,
        )  # fmt: skip
        work.profiles.append(profile)
        work.drifts.append(drift)
    logger.info(
        "%s %s: %s windows, %s recomputed, %s with their consecutive drift only",
        monitored.table, granularity, len(fingerprints), len(window_plan.dirty),
        len(window_plan.consecutive - window_plan.dirty),
    )  # fmt: skip
    return recomputed


def _write(monitored: MonitoredTable, work: _Work, whole: bool) -> tuple[int, int]:
    """Both metric tables written: replaced ``whole``, or only in the model versions the refresh touched (their
    earlier rows that ``work`` keeps, and their new rows); the rows written to each."""
    touched = None if whole else _touched_versions(work)
    tables = []
    for (name, schema), new, keep, kind in zip(
        store.metric_tables(monitored), (work.profiles, work.drifts), (work.keep_profile, work.keep_drift),
        ("log_type", "drift_type"), strict=True,
    ):  # fmt: skip
        old = None if whole else store.read_metrics(name, schema, touched)
        tables.append((name, store.merge(old, new, schema, kind, keep)))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda named: store.write_metrics(*named, touched), tables))
    profile_rows, drift_rows = (table.num_rows for _, table in tables)
    return profile_rows, drift_rows


def _touched_versions(work: _Work) -> set[str]:
    """The model versions whose metric rows change: those of the recomputed and removed windows, and of every new
    row (a version's BASELINE profile is recomputed with its windows)."""
    versions = {key.model_version for key in (*work.computed, *work.consecutive_only, *work.removed)}
    for table in (*work.profiles, *work.drifts):
        versions |= {v for v in pc.unique(table.column(MODEL_ID_COL)).to_pylist() if v is not None}
    return versions
