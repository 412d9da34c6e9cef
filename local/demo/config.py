"""The demo's window (``mlops demo --start M --months N --initial-weeks W``) and the first champion's training days.

The data is 2013's: a window is whole months of it, replayed a Monday-to-Sunday week at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from local.demo import ReplayError

YEAR_START, YEAR_END = date(2013, 1, 1), date(2013, 12, 31)
DEFAULT_INITIAL_WEEKS = 8


@dataclass(frozen=True)
class ReplayConfig:
    """The replay's window (``months`` months from ``start``) and the first champion's training.

    The window is replayed a Monday-to-Sunday week at a time (the monitor's weekly windows): every whole week inside
    it, so up to six days at each end of the window are not replayed. Prod's first champion trains on the
    ``initial_weeks`` before the window's start when the data (2013) has them (fewer when it has fewer: a window
    starting in February trains on January), and on nothing of the window: the days before its first Monday are
    neither trained on nor replayed. Only a window starting at the data's first month trains its first
    champion inside itself, on its first ``initial_weeks``, and replays the rest. ``initial_weeks`` None: 8, or at
    most half the window when the training is inside it (so ``--months 1`` replays January's last two weeks).
    """

    start: date = YEAR_START
    months: int = 12
    seed: int = 7
    initial_weeks: int | None = None
    requests_per_week: int = 60
    references: bool = True
    # The code's way to prod: the model workflow in these environments first (empty: prod only, for a quick look).
    promotion_path: tuple[str, ...] = ("dev", "staging")

    def __post_init__(self) -> None:
        if not 1 <= self.months <= 12:
            raise ReplayError(f"months must be 1..12, got {self.months}")
        if not (YEAR_START <= self.start <= YEAR_END) or self.start.day != 1:
            raise ReplayError(f"start must be the first day of a month of 2013, got {self.start}")
        if self.initial_weeks is not None and self.initial_weeks < 2:
            raise ReplayError(f"initial_weeks must be >= 2 (the first champion needs data), got {self.initial_weeks}")
        if self.end > YEAR_END:
            raise ReplayError(f"{self.start} plus {self.months} months goes past 2013, the data's year")
        if self.requests_per_week < 1:
            raise ReplayError(f"requests_per_week must be >= 1, got {self.requests_per_week}")
        if not self.weeks():
            # Only a window trained inside itself can run out of weeks: every month holds three whole weeks.
            fits = [
                n for n in range(2, self.training_weeks) if _inside_replay_start(self.start, n) + _TO_SUNDAY <= self.end
            ]
            raise ReplayError(
                f"{self.months} month(s) from {self.start} leave no whole week to replay after {self.training_weeks} "
                f"weeks of initial training inside the window (the data has nothing before {YEAR_START}): more months"
                + (f", or at most {fits[-1]} initial weeks" if fits else "")
            )

    @property
    def end(self) -> date:
        month = self.start.month - 1 + self.months
        first_after = date(self.start.year + month // 12, month % 12 + 1, 1)
        return first_after - timedelta(days=1)

    @property
    def trains_inside(self) -> bool:
        """The first champion trains on the window's first weeks: the data has nothing before it."""
        return self.start == YEAR_START

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
            return self.start, self.replay_start - timedelta(days=1)
        return max(YEAR_START, self.start - timedelta(weeks=self.training_weeks)), self.start - timedelta(days=1)

    def describe_training(self) -> str:
        """Where the first champion's data comes from, in a sentence (said in the log, the events and the report)."""
        first, last = self.training_window
        days = (last - first).days + 1
        span = _count(days // 7, "week") + (f" and {_count(days % 7, 'day')}" if days % 7 else "")
        if self.trains_inside:
            return (
                f"trained on {first}..{last}, the window's first {span}: the data has nothing before {YEAR_START}, "
                f"so the replay starts on {self.replay_start}"
            )
        if days < self.training_weeks * 7:
            return (
                f"trained on {first}..{last}, the {span} before the window (the data starts on {YEAR_START}; "
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


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _inside_replay_start(start: date, initial_weeks: int) -> date:
    first = start + timedelta(weeks=initial_weeks)
    return first - timedelta(days=first.weekday())
