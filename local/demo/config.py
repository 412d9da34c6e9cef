"""The demo's window (``mlops demo --model NAME --start M --months N --initial-weeks W``) and the first champion's
training days.

The data is the model's (its replay's ``FIRST_DAY`` .. ``LAST_DAY``): a window is whole months of it, replayed a
Monday-to-Sunday week at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from local.demo import ReplayError
from local.demo.replays import ModelReplay, load_replay

# The environment the demo lives through; its model is the one replayed unless another is named.
DEMO_ENV = "prod"
DEFAULT_INITIAL_WEEKS = 8
MAX_MONTHS = 12


@dataclass(frozen=True)
class ReplayConfig:
    """The replay's window (``months`` months from ``start``) and the first champion's training, for ``model``.

    ``model`` None: the demo environment's model. ``start`` None: the first month of the model's data; ``months``
    None: as many whole months from ``start`` as the data holds, at most ``MAX_MONTHS``.

    The window is replayed a Monday-to-Sunday week at a time (the monitor's weekly windows): every whole week inside
    it, so up to six days at each end of the window are not replayed. Prod's first champion trains on the
    ``initial_weeks`` before the window's start when the data has them (fewer when it has fewer: a window
    starting in February trains on January), and on nothing of the window: the days before its first Monday are
    neither trained on nor replayed. Only a window starting at the data's first month trains its first
    champion inside itself, on its first ``initial_weeks``, and replays the rest. ``initial_weeks`` None: 8, or at
    most half the window when the training is inside it (so ``--months 1`` replays January's last two weeks).
    """

    start: date | None = None
    months: int | None = None
    seed: int = 7
    initial_weeks: int | None = None
    requests_per_week: int = 60
    references: bool = True
    # The code's way to prod: the model workflow in these environments first (empty: prod only, for a quick look).
    promotion_path: tuple[str, ...] = ("dev", "staging")
    model: str | None = None

    def __post_init__(self) -> None:
        if self.model is None:
            from spec.config import ENVIRONMENTS

            object.__setattr__(self, "model", ENVIRONMENTS[DEMO_ENV].model_name)
        replay = self.replay
        if self.start is None:
            object.__setattr__(self, "start", replay.first_day.replace(day=1))
        if self.months is None:
            object.__setattr__(self, "months", _months_until(self.start, replay.last_day))
        if not 1 <= self.months <= MAX_MONTHS:
            raise ReplayError(f"months must be 1..{MAX_MONTHS}, got {self.months}")
        if not (self.first_day.replace(day=1) <= self.start <= self.last_day) or self.start.day != 1:
            raise ReplayError(f"start must be the first day of a month of {self._data_span}, got {self.start}")
        if self.initial_weeks is not None and self.initial_weeks < 2:
            raise ReplayError(f"initial_weeks must be >= 2 (the first champion needs data), got {self.initial_weeks}")
        if self.end > self.last_day:
            raise ReplayError(
                f"{self.start} plus {self.months} months goes past {self._data_span}, the data's {self._unit}"
            )
        if self.requests_per_week < 1:
            raise ReplayError(f"requests_per_week must be >= 1, got {self.requests_per_week}")
        if not self.weeks():
            # Only a window trained inside itself can run out of weeks: every month holds three whole weeks.
            fits = [
                n for n in range(2, self.training_weeks) if _inside_replay_start(self.start, n) + _TO_SUNDAY <= self.end
            ]
            raise ReplayError(
                f"{self.months} month(s) from {self.start} leave no whole week to replay after {self.training_weeks} "
                f"weeks of initial training inside the window (the data has nothing before {self.first_day}): more "
                "months" + (f", or at most {fits[-1]} initial weeks" if fits else "")
            )

    @property
    def replay(self) -> ModelReplay:
        """The model's replay (its package's ``replay.py``): a ``ReplayError`` when it has none."""
        return load_replay(self.model)

    @property
    def first_day(self) -> date:
        """The first day of the model's data."""
        return self.replay.first_day

    @property
    def last_day(self) -> date:
        """The last day of the model's data."""
        return self.replay.last_day

    @property
    def _whole_year(self) -> bool:
        first, last = self.first_day, self.last_day
        return first.year == last.year and (first.month, first.day, last.month, last.day) == (1, 1, 12, 31)

    @property
    def _data_span(self) -> str:
        """The data's days as said in a message: its year when it is one calendar year."""
        return str(self.first_day.year) if self._whole_year else f"{self.first_day}..{self.last_day}"

    @property
    def _unit(self) -> str:
        return "year" if self._whole_year else "days"

    @property
    def end(self) -> date:
        month = self.start.month - 1 + self.months
        first_after = date(self.start.year + month // 12, month % 12 + 1, 1)
        return first_after - timedelta(days=1)

    @property
    def trains_inside(self) -> bool:
        """The first champion trains on the window's first weeks: the data has nothing before it."""
        return self.start <= self.first_day

    @property
    def training_weeks(self) -> int:
        """The initial weeks asked (``initial_weeks``, or the default for this window)."""
        if self.initial_weeks is not None:
            return self.initial_weeks
        if self.trains_inside:
            return min(DEFAULT_INITIAL_WEEKS, max(2, ((self.end - self.start).days + 1) // 14))
        return DEFAULT_INITIAL_WEEKS

    @property
    def replay_start(self) -> date:
        """The first replayed Monday. Trained inside the window: the Monday on or before ``start`` +
        ``training_weeks`` (the initial training can be up to six days shorter than asked). Trained before it: the
        window's first Monday."""
        if self.trains_inside:
            return _inside_replay_start(self.start, self.training_weeks)
        return self.start + timedelta(days=-self.start.weekday() % 7)

    @property
    def training_window(self) -> tuple[date, date]:
        """The first champion's training days, first and last (inclusive)."""
        if self.trains_inside:
            return self.first_day, self.replay_start - timedelta(days=1)
        return max(self.first_day, self.start - timedelta(weeks=self.training_weeks)), self.start - timedelta(days=1)

    def describe_training(self) -> str:
        """Where the first champion's data comes from, in a sentence (said in the log, the events and the report)."""
        first, last = self.training_window
        days = (last - first).days + 1
        span = _count(days // 7, "week") + (f" and {_count(days % 7, 'day')}" if days % 7 else "")
        if self.trains_inside:
            return (
                f"trained on {first}..{last}, the window's first {span}: the data has nothing before {self.first_day}, "
                f"so the replay starts on {self.replay_start}"
            )
        if days < self.training_weeks * 7:
            return (
                f"trained on {first}..{last}, the {span} before the window (the data starts on {self.first_day}; "
                f"{self.training_weeks} weeks asked)"
            )
        return f"trained on {first}..{last}, the {span} before the window"

    def weeks(self) -> list[date]:
        """The replayed Mondays: every Monday-to-Sunday week from ``replay_start`` inside the window."""
        weeks, week = [], self.replay_start
        while week + _TO_SUNDAY <= self.end:
            weeks.append(week)
            week += timedelta(weeks=1)
        return weeks


_TO_SUNDAY = timedelta(days=6)  # from a replayed week's Monday to its Sunday


def _months_until(start: date, last: date) -> int:
    """Whole months from ``start`` (a first of a month) to ``last``, at least 1, at most ``MAX_MONTHS``."""
    months = (last.year - start.year) * 12 + last.month - start.month + 1
    if (last + timedelta(days=1)).day != 1:
        months -= 1  # the data's last month is not whole
    return max(1, min(MAX_MONTHS, months))


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _inside_replay_start(start: date, initial_weeks: int) -> date:
    first = start + timedelta(weeks=initial_weeks)
    return first - timedelta(days=first.weekday())
