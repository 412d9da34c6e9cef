"""The demo's window options mean what they say (`mlops demo --start M --months N --initial-weeks W`): exactly the
whole weeks of those months are replayed; the first champion trains on the weeks before the start when 2013 has them,
and on the window's first weeks only when the window starts in January (and says so)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from local.demo import ReplayError
from local.demo.config import ReplayConfig
from spec.errors import MlopsError


def mondays(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    assert start.weekday() == 0 and end.weekday() == 0
    return [start + timedelta(weeks=i) for i in range((end - start).days // 7 + 1)]


def test_the_default_trains_on_january_s_first_eight_weeks_and_replays_the_rest_of_the_year_as_before():
    config = ReplayConfig()
    assert config.trains_inside
    assert config.training_weeks == 8
    # The Monday on or before 2013-01-01 + 8 weeks (a Tuesday): six days shorter than asked, as before.
    assert config.training_window == (date(2013, 1, 1), date(2013, 2, 24))
    assert config.replay_start == date(2013, 2, 25)
    assert config.weeks() == mondays("2013-02-25", "2013-12-23")
    assert config.describe_training() == (
        "trained on 2013-01-01..2013-02-24, the window's first 7 weeks and 6 days: the data has nothing before "
        "2013-01-01, so the replay starts on 2013-02-25"
    )


def test_april_and_may_train_on_the_eight_weeks_before_april_and_replay_the_weeks_of_april_and_may():
    config = ReplayConfig(start=date(2013, 4, 1), months=2)
    assert not config.trains_inside
    assert config.training_window == (date(2013, 2, 4), date(2013, 3, 31))
    # Every Monday-to-Sunday week inside April and May: the week of May 27 ends in June.
    assert config.weeks() == mondays("2013-04-01", "2013-05-20")
    assert config.describe_training() == "trained on 2013-02-04..2013-03-31, the 8 weeks before the window"


def test_a_window_not_starting_on_a_monday_replays_from_its_first_monday_and_trains_up_to_its_start():
    config = ReplayConfig(start=date(2013, 5, 1), months=1, initial_weeks=3)
    assert config.training_window == (date(2013, 4, 10), date(2013, 4, 30))
    assert config.weeks() == mondays("2013-05-06", "2013-05-20")


def test_february_trains_on_what_january_has_and_says_that_it_is_less_than_asked():
    config = ReplayConfig(start=date(2013, 2, 1), months=1)
    assert config.training_window == (date(2013, 1, 1), date(2013, 1, 31))
    assert config.weeks() == mondays("2013-02-04", "2013-02-18")
    assert config.describe_training() == (
        "trained on 2013-01-01..2013-01-31, the 4 weeks and 3 days before the window (the data starts on "
        "2013-01-01; 8 weeks asked)"
    )


def test_one_month_from_january_trains_on_its_first_half_and_replays_its_last_two_weeks():
    config = ReplayConfig(months=1)
    assert config.training_weeks == 2
    assert config.training_window == (date(2013, 1, 1), date(2013, 1, 13))
    assert config.weeks() == mondays("2013-01-14", "2013-01-21")
    assert config.describe_training() == (
        "trained on 2013-01-01..2013-01-13, the window's first 1 week and 6 days: the data has nothing before "
        "2013-01-01, so the replay starts on 2013-01-14"
    )
    # The integration test's window (--months 1 --initial-weeks 2) is the same.
    assert ReplayConfig(months=1, initial_weeks=2).weeks() == config.weeks()


def test_the_december_window_ends_with_its_last_whole_week():
    config = ReplayConfig(start=date(2013, 12, 1), months=1)
    assert config.training_window == (date(2013, 10, 6), date(2013, 11, 30))
    assert config.weeks() == mondays("2013-12-02", "2013-12-23")


def test_initial_weeks_that_leave_nothing_to_replay_are_refused_with_what_would_fit():
    with pytest.raises(ReplayError) as refused:
        ReplayConfig(months=1, initial_weeks=4)
    assert str(refused.value) == (
        "1 month(s) from 2013-01-01 leave no whole week to replay after 4 weeks of initial training inside the "
        "window (the data has nothing before 2013-01-01): more months, or at most 3 initial weeks"
    )
    assert ReplayConfig(months=1, initial_weeks=3).weeks() == mondays("2013-01-21", "2013-01-21")
    # Before the window, the same initial weeks leave the month whole.
    assert ReplayConfig(start=date(2013, 3, 1), months=1, initial_weeks=4).weeks() == mondays(
        "2013-03-04", "2013-03-25"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"months": 0}, "months must be 1..12, got 0"),
        ({"start": date(2013, 4, 2)}, "start must be the first day of a month of 2013, got 2013-04-02"),
        ({"start": date(2013, 11, 1), "months": 3}, "2013-11-01 plus 3 months goes past 2013, the data's year"),
        ({"initial_weeks": 1}, "initial_weeks must be >= 2 (the first champion needs data), got 1"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options, message):
    with pytest.raises(ReplayError) as refused:
        ReplayConfig(**options)
    assert str(refused.value) == message
    # The project's own error (the CLI says it in one line), not a ValueError a bug could raise too.
    assert isinstance(refused.value, MlopsError) and not isinstance(refused.value, ValueError)
