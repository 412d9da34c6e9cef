"""What the replay measured, week by week (``WeekRecord``), and as a whole (``ReplayResult``): the report's data,
written as ``report_data.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WeekRecord:
    week_start: str
    champion: str | None = None
    challenger: str | None = None
    challenger_percent: int = 0
    scored_stream: int = 0
    scored_batch: int = 0
    rejected: int = 0
    published: int = 0
    served_requests: int = 0
    served_errors: int = 0
    served_p50_ms: float | None = None
    served_p95_ms: float | None = None
    labelled: int = 0
    auc_loop: float | None = None
    auc_never: float | None = None
    auc_weekly: float | None = None
    alerts: dict[str, str] = field(default_factory=dict)
    retrained: bool = False
    retrain_reason: str = ""
    new_version: str | None = None
    validation: str | None = None
    promoted: bool = False
    online_decision: str | None = None
    # Wall seconds of each step of the week (what the demo spends its time on).
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)


@dataclass(frozen=True)
class Event:
    week_start: str
    kind: str
    message: str


@dataclass
class ReplayResult:
    env: str
    start: str
    end: str
    seed: int
    weeks: list[WeekRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    wall_seconds: float | None = None  # the demo's, once the report is written
    # Why the never/weekly-retrained references are missing (None: they were computed).
    references_missing: str | None = None
    # The first champion's training days ("start", "end"), whether inside the window, and that in a sentence.
    initial_training: dict[str, Any] = field(default_factory=dict)
    # The model replayed, what its rows are called, and the name of the weekly quality figure (``auc_loop``,
    # ``auc_never``, ``auc_weekly`` hold it, whatever it is: the model's replay says).
    model: str = ""
    rows: str = "rows"
    quality: str = "ROC AUC"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int, int, str], None]
OnEvent = Callable[[Event], None]


@contextmanager
def timed(result: ReplayResult, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.phases[phase] = round(result.phases.get(phase, 0.0) + time.perf_counter() - started, 1)


def write_report_data(result: ReplayResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return path
