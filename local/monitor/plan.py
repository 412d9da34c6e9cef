"""What a refresh recomputes: fingerprints of the monitor's configuration, of each window and of each model
version's baseline, the plan that compares them with the last refresh's, and the state file that keeps them.

A window is recomputed when its fingerprint changed (new rows, labels that arrived later) or its model version's
baseline changed; the window after a recomputed or removed one gets new CONSECUTIVE drift. The state lives in
``$MLOPS_HOME/monitoring/<table>.json``, replaced atomically (``local.files.write_json_atomically``), by one refresh
of a table at a time (``lock_path``, taken by ``refresh.refresh_monitor`` with ``local.files.exclusive_lock``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from local.files import read_json, write_json_atomically
from local.monitor.errors import MonitorError
from local.monitor.frame import Frame, encode_strings, ts_us
from local.monitor.schema import CHANGE_COLUMNS, LOGIC_VERSION, PROFILE_QUANTILES
from local.monitor.windows import US, WINDOW_CODE_VERSION, WindowKey, window_codes
from local.paths import mlops_home
from spec.config import Environment
from spec.monitoring import MODEL_ID_COL, MonitoredTable

# A window's fingerprint: [rows, labelled rows, latest scored_at, latest labeled_at] (microseconds, -1 when none).
Fingerprints = dict[WindowKey, list[int]]


def state_path(monitored: MonitoredTable) -> Path:
    return mlops_home() / "monitoring" / f"{monitored.table}.json"


def lock_path(monitored: MonitoredTable) -> Path:
    """Beside the state: held by one refresh of ``monitored`` at a time."""
    return state_path(monitored).with_name(f"{monitored.table}.lock")


def config_fingerprint(monitored: MonitoredTable) -> str:
    """What the metrics depend on besides the rows: when it changes, every window is recomputed."""
    config = {
        "logic": LOGIC_VERSION,
        "granularities": list(monitored.granularities),
        "slicing": list(monitored.slicing_exprs),
        "columns": list(monitored.monitored_columns),
        "timestamp": monitored.timestamp_col,
        "problem_type": monitored.problem_type,
        "baseline": monitored.baseline_table,
        "quantiles": list(PROFILE_QUANTILES),
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def window_fingerprints(frame: Frame, starts: np.ndarray, keep: np.ndarray, granularity: str) -> Fingerprints:
    """Per (model version, window) of the current rows ``keep`` marks, ``starts`` their window starts."""
    code = window_codes(frame.version[: frame.n_current][keep], starts[keep])
    if not len(code):
        return {}
    order = np.argsort(code, kind="stable")
    code = code[order]
    first = np.flatnonzero(np.concatenate([[True], code[1:] != code[:-1]]))
    rows = np.diff(np.append(first, len(code)))
    labelled = np.add.reduceat(frame.label_known[keep][order].astype(np.int64), first)
    latest = [
        np.maximum.reduceat(frame.change_us[name][keep][order], first)
        if name in frame.change_us
        else np.full(len(first), -1)
        for name in CHANGE_COLUMNS
    ]
    version, seconds = np.divmod(code[first], WINDOW_CODE_VERSION)
    return {
        WindowKey.at(granularity, frame.versions[v], t * US): [int(r), int(lab), int(sc), int(lb)]
        for v, t, r, lab, sc, lb in zip(version, seconds, rows, labelled, *latest, strict=True)
    }


def baseline_fingerprints(
    env: Environment, monitored: MonitoredTable, keys: pa.Table, versions: set[str]
) -> dict[str, list[int]]:
    """Per model version of the current rows: [baseline rows, latest baseline timestamp] (microseconds, -1 when
    none), from the baseline's ``keys`` (``store.baseline_keys``); a MonitorError when a version has no baseline
    rows."""
    ts, _ = ts_us(keys.column(monitored.timestamp_col))
    code, names = encode_strings(keys.column(MODEL_ID_COL))
    lacking = sorted(versions - set(names.tolist()))
    if lacking:
        raise MonitorError(
            f"model version(s) {lacking} scored rows of {monitored.table!r} but have no rows in the baseline table "
            f"{monitored.baseline_table!r}: training writes each version's baseline (mlops run model-training "
            f"--env {env.name}); a version trained before that has none: retrain it"
        )
    index = {name: i for i, name in enumerate(names.tolist())}
    fingerprints = {}
    for version in sorted(versions):
        mine = code == index[version]
        fingerprints[version] = [int(mine.sum()), int(ts[mine].max())]
    return fingerprints


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one granularity: ``dirty`` ones are recomputed, ``consecutive`` ones (dirty, and the window
    after a dirty or removed one) get new CONSECUTIVE drift, ``rows`` are the windows whose rows that takes,
    ``removed`` had rows at the last refresh and have none now."""

    dirty: set[WindowKey]
    consecutive: set[WindowKey]
    rows: set[WindowKey]
    removed: set[WindowKey]


def plan_windows(fingerprints: Fingerprints, before: Fingerprints, baseline_changed: set[str]) -> WindowPlan:
    """The plan of one granularity from its windows' fingerprints now and at the last refresh (``before``), and the
    model versions whose baseline changed since."""

    def moved(keys: Iterable[WindowKey], by: int) -> set[WindowKey]:
        return {key.shifted(by) for key in keys}

    existing = set(fingerprints)
    dirty = {k for k, fp in fingerprints.items() if before.get(k) != fp or k.model_version in baseline_changed}
    removed = set(before) - existing
    consecutive = dirty | (moved(dirty | removed, 1) & existing)
    return WindowPlan(dirty, consecutive, (consecutive | moved(consecutive, -1)) & existing, removed)


def window_code_set(keys: Iterable[WindowKey], version_index: dict[str, int]) -> set[int]:
    """Window keys as the integers ``windows.window_codes`` gives rows (``version_index``: model version -> code)."""
    return {int(window_codes(np.int64(version_index[key.model_version]), np.int64(key.start_us))) for key in keys}


# --- The state file -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What the last refresh of a table saw: its configuration, versions and every fingerprint."""

    table: str
    config: str
    monitor_version: int
    table_version: int
    baseline: dict[str, list[int]]
    windows: dict[str, Fingerprints]  # per granularity

    def to_json(self) -> dict:
        """The file's layout: a window as "<model version>|<start in microseconds>" under its granularity."""
        return {
            "table": self.table,
            "config": self.config,
            "monitor_version": self.monitor_version,
            "table_version": self.table_version,
            "baseline": self.baseline,
            "windows": {
                granularity: {f"{k.model_version}|{k.start_us}": fp for k, fp in windows.items()}
                for granularity, windows in self.windows.items()
            },
        }

    @classmethod
    def from_json(cls, document: dict) -> State:
        windows: dict[str, Fingerprints] = {}
        for granularity, entries in document["windows"].items():
            windows[granularity] = {}
            for text, fp in entries.items():
                version, start = text.rsplit("|", 1)
                windows[granularity][WindowKey.at(granularity, version, int(start))] = fp
        return cls(
            table=document["table"],
            config=document.get("config", ""),
            monitor_version=int(document["monitor_version"]),
            table_version=int(document.get("table_version", -1)),
            baseline=document.get("baseline", {}),
            windows=windows,
        )


def load_state(path: Path, table: str) -> State | None:
    """The last refresh's state of the monitor on ``table``; None before the first refresh. A file that is not JSON
    (cut short, damaged) is a ``StateFileError`` naming it; one that cannot be read as a state (edited by hand, or
    written by something else) is a MonitorError naming it. Either way the file is left as it is: deleting it makes
    the next refresh recompute every window."""
    if not path.exists():
        return None
    document = read_json(path, f"the state of the monitor on {table}")
    try:
        return State.from_json(document)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise MonitorError(
            f"the monitor's state {path} is not a state this monitor wrote ({type(error).__name__}: {error}): delete "
            "it, and the next refresh recomputes every window"
        ) from error


def save_state(path: Path, state: State) -> None:
    """Written whole or not at all (under a temporary name of its own, then renamed): a refresh interrupted before
    this point recomputes its windows next time. The caller holds ``lock_path``."""
    write_json_atomically(path, state.to_json())
