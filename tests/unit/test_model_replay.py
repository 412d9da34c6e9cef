"""The demo replays a model whose package says how (``models/<name>/replay.py``, read by ``local.demo.replays``); the
local runtime's commands take ``--model`` for the model the environment runs; the demo's traffic names each request by
the row's key as the labels job reads it; landing writes the model's streamed source with its landing columns.

Toy model packages are written under a temporary folder added to the ``models`` package's path."""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

import models
from cli.main import main
from local.demo import ReplayError
from local.demo.config import ReplayConfig
from local.demo.quality import figure
from local.demo.replays import load_replay
from local.demo.traffic import client_requests, request_id
from spec.config import ENVIRONMENTS
from spec.errors import MlopsError

TOY_SPEC = """
from spec.model import Column, Feature, ModelSpec, ValidationSpec

SPEC = ModelSpec(
    name="{name}",
    problem_type="regression",
    description="a toy regressor: a sensor's level",
    sources=("readings",),
    key=(Column(name="day", type="DATE"), Column(name="sensor", type="STRING")),
    event_date="day",
    event_time="read_at",
    features=(Feature(name="sensor", kind="categorical"), Feature(name="level", kind="numeric", optional=True)),
    label_delay_days=0,
    validation=ValidationSpec(primary_metric="mean_absolute_error"),
    drift_features=("level",),
    online_key=("day", "sensor"),
    request_example={{"sensor": "a", "level": 1.0}},
)
"""


@pytest.fixture
def toy_model(tmp_path, monkeypatch, request):
    """A function: (replay.py's text or None) -> the name of a new toy model package with that replay module."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(folder)])
    made: list[str] = []

    def make(replay: str | None) -> str:
        name = f"toy_{request.node.name.split('[')[0][-20:].strip('_')}_{len(made)}".lower()
        package = folder / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "spec.py").write_text(TOY_SPEC.format(name=name))
        if replay is not None:
            (package / "replay.py").write_text(textwrap.dedent(replay))
        made.append(name)
        return name

    yield make
    for name in made:
        for module in [m for m in sys.modules if m == f"models.{name}" or m.startswith(f"models.{name}.")]:
            del sys.modules[module]


def test_the_flight_model_says_how_it_is_replayed():
    replay = load_replay("flight_delay")
    assert (replay.first_day, replay.last_day) == (date(2013, 1, 1), date(2013, 12, 31))
    assert (replay.rows, replay.quality, replay.requests) == ("flights", "roc_auc", None)
    # The demo's default model is the one prod runs, and its window the whole of its data
    config = ReplayConfig()
    assert config.model == ENVIRONMENTS["prod"].model_name == "flight_delay"
    assert (config.start, config.end) == (date(2013, 1, 1), date(2013, 12, 31))


def test_a_model_without_a_replay_is_refused_naming_the_file_to_write(toy_model):
    name = toy_model(None)
    with pytest.raises(ReplayError) as refused:
        ReplayConfig(model=name)
    assert str(refused.value) == (
        f"model {name!r} has no replay (models/{name}/replay.py): the demo replays a model whose package says how; "
        "define FIRST_DAY, LAST_DAY there (see local/demo/replays.py)"
    )
    assert isinstance(refused.value, MlopsError) and not isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    ("replay", "message"),
    [
        (
            "from datetime import date\nFIRST_DAY = date(2020, 3, 1)\n",
            "models/{name}/replay.py must define LAST_DAY (the last day of the model's data (a datetime.date))",
        ),
        (
            "FIRST_DAY, LAST_DAY = '2020-03-01', '2020-08-31'\n",
            "FIRST_DAY and LAST_DAY of models/{name}/replay.py must be dates, the first not after the last, got "
            "'2020-03-01' and '2020-08-31'",
        ),
        (
            "from datetime import date\nFIRST_DAY, LAST_DAY = date(2020, 3, 1), date(2020, 8, 31)\n"
            "QUALITY = 'roc_auc'\n",
            "QUALITY of models/{name}/replay.py is 'roc_auc', not a metric of a regression model: write one of "
            "['mean_absolute_error', 'mean_squared_error', 'root_mean_squared_error', 'r2_score']",
        ),
    ],
)
def test_a_wrong_replay_is_refused_naming_what_to_write(toy_model, replay, message):
    name = toy_model(replay)
    with pytest.raises(ReplayError) as refused:
        load_replay(name)
    assert str(refused.value) == f"model {name!r}: " + message.format(name=name)


def test_a_replay_s_days_make_the_window(toy_model):
    name = toy_model("from datetime import date\nFIRST_DAY, LAST_DAY = date(2020, 3, 1), date(2020, 8, 31)\n")
    config = ReplayConfig(model=name)
    # The whole of the data by default, trained on its first weeks; the regressor's figure is its primary metric
    assert (config.start, config.end, config.months, config.trains_inside) == (
        date(2020, 3, 1),
        date(2020, 8, 31),
        6,
        True,
    )
    # 8 weeks from 2020-03-01 is a Sunday: the replay starts on the Monday before it
    assert config.training_window == (date(2020, 3, 1), date(2020, 4, 19))
    assert config.weeks()[0] == date(2020, 4, 20) and config.weeks()[-1] == date(2020, 8, 24)
    assert config.replay.quality == "mean_absolute_error" and config.replay.rows == "rows"
    with pytest.raises(ReplayError, match=r"^start must be the first day of a month of 2020-03-01\.\.2020-08-31, got"):
        ReplayConfig(model=name, start=date(2020, 9, 1))
    with pytest.raises(ReplayError, match=r"goes past 2020-03-01\.\.2020-08-31, the data's days$"):
        ReplayConfig(model=name, start=date(2020, 6, 1), months=4)


def test_the_demo_refuses_a_model_prod_does_not_run_before_anything_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    code = main(["demo", "--model", "another_model", "--prod-only"])
    assert code == 1
    assert capsys.readouterr().err == (
        "mlops demo: environment 'prod' does not run model 'another_model': it runs flight_delay (give --model NAME)\n"
    )
    assert not (tmp_path / "home" / "demo").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["land", "--env", "dev", "--date", "2013-01-01"],
        ["stream", "--env", "dev", "--available-now"],
        ["models", "--env", "dev"],
        ["rollback", "--env", "dev"],
        ["monitor", "--env", "dev"],
        ["alerts", "--env", "dev"],
        ["dashboard", "--env", "dev"],
        ["publish", "--env", "dev"],
        ["lookup", "--env", "dev", "--key", "x"],
        ["serve", "--env", "dev"],
        ["predict", "--env", "dev", "--example"],
        ["run", "model-training", "--env", "dev"],
    ],
)
def test_a_model_command_refuses_a_model_the_environment_does_not_run(command, capsys):
    assert main([*command, "--model", "another_model"]) == 1
    # dev's models as config lists them: a model added by `mlops init model` joins the list.
    runs = ", ".join(ENVIRONMENTS["dev"].model_names)
    assert capsys.readouterr().err == (
        f"mlops {command[0]}: environment 'dev' does not run model 'another_model': it runs {runs} "
        "(give --model NAME)\n"
    )


def test_a_model_the_environment_runs_may_be_named_and_must_be_where_it_runs_several(monkeypatch, capsys):
    import local.landing

    landed: list = []
    monkeypatch.setattr(local.landing, "land_rows", lambda env, start, end: landed.append(env.model_name) or [])
    assert main(["land", "--env", "dev", "--model", "airport_delay", "--date", "2013-01-01"]) == 0
    assert main(["land", "--env", "prod", "--date", "2013-01-01"]) == 0
    assert landed == ["airport_delay", "flight_delay"]
    assert main(["land", "--env", "dev", "--date", "2013-01-01"]) == 1
    runs = ", ".join(ENVIRONMENTS["dev"].model_names)
    assert capsys.readouterr().err.endswith(
        f"mlops land: environment 'dev' runs several models ({runs}): say which with --model NAME\n"
    )


def test_a_request_is_named_by_the_row_s_key_as_the_labels_job_reads_it():
    from jobs.core.requests import key_id, parse_key_id

    model = ENVIRONMENTS["prod"].model
    rows = pd.DataFrame(
        {
            "sched_date": [date(2013, 3, 4), date(2013, 3, 5)],
            "carrier": ["UA", "B6"],
            "flight": np.array([1545, 27], dtype="int64"),
            "origin": ["EWR", "JFK"],
            "dest": ["IAH", "MCO"],
            "time_hour": pd.to_datetime(["2013-03-04 10:00", "2013-03-05 06:00"]).tz_localize(UTC),
            "sched_departure": pd.to_datetime(["2013-03-04 10:15", "2013-03-05 06:05"]).tz_localize(UTC),
            **{f: [1.0, np.nan] for f in model.scored_features},
        }
    )
    sent = list(client_requests(model, rows))
    # One request a row, in order, each named as the labels job parses it back to the row's key
    assert [request_id for request_id, _ in sent] == [key_id(model, row) for _, row in rows.iterrows()]
    assert [request_id for request_id, _ in sent] == [
        "2013-03-04#UA#1545#EWR#IAH#2013-03-04T10:00Z",
        "2013-03-05#B6#27#JFK#MCO#2013-03-05T06:00Z",
    ]
    assert parse_key_id(model, sent[0][0]) == {
        "sched_date": date(2013, 3, 4),
        "carrier": "UA",
        "flight": 1545,
        "origin": "EWR",
        "dest": "IAH",
        "time_hour": datetime(2013, 3, 4, 10, 0),
    }
    # and carrying the features a client sends, a missing value as null
    first, second = (record for _, record in sent)
    assert list(first) == list(model.client_features)
    assert second["carrier"] == "B6" and second["distance"] is None
    assert request_id(model, rows.iloc[0]) == sent[0][0]


def test_the_quality_figure_is_the_metric_the_replay_names():
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    assert figure("roc_auc", y, p) == 0.75
    assert figure("roc_auc", np.array([1, 1]), np.array([0.2, 0.3])) is None  # one class: undefined
    assert figure("accuracy", y, p) == 0.5
    values, predicted = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0])
    assert figure("mean_absolute_error", values, predicted) == 1.0
    assert figure("mean_squared_error", values, predicted) == round(5 / 3, 4)
    assert figure("root_mean_squared_error", values, predicted) == round((5 / 3) ** 0.5, 4)
    assert figure("r2_score", values, predicted) == round(1 - 5 / (3 * np.var(values)), 4)


def test_landing_writes_a_file_a_day_of_the_streamed_source_with_its_landing_columns(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from local.landing import LandingError, land_rows, landing_arrow_schema
    from models.flight_delay.sources import source_frames

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    env = ENVIRONMENTS["dev"]
    model = env.model
    # When two days land
    files = land_rows(env, date(2013, 3, 4), date(2013, 3, 5))
    # Then a file a day in the streamed source's folder, with that day's rows, in the landing columns' types
    assert [f.name for f in files] == ["2013-03-04.parquet", "2013-03-05.parquet"]
    assert {f.parent for f in files} == {tmp_path / "landing" / "dev" / model.stream_source}
    flights, _ = source_frames(date(2013, 3, 4), date(2013, 3, 5))
    for file, day in zip(files, (4, 5), strict=True):
        table = pq.read_table(file)
        assert table.schema == landing_arrow_schema(model)
        expected = flights[flights["day"] == day][[c.name for c in model.landing_columns]].reset_index(drop=True)
        as_landed = pa.Table.from_pandas(expected, preserve_index=False).cast(table.schema)
        assert table.equals(as_landed), day
    # A window with no rows, or reversed, is a clear error
    with pytest.raises(LandingError, match="model 'flight_delay' has no flights rows between 2014-01-01 and"):
        land_rows(env, date(2014, 1, 1), date(2014, 1, 2))
    with pytest.raises(LandingError, match="start date 2013-03-05 is after end date 2013-03-04"):
        land_rows(env, date(2013, 3, 5), date(2013, 3, 4))


def test_a_model_that_streams_nothing_has_nothing_to_land(toy_model):
    from local.landing import LandingError, landing_arrow_schema
    from spec.model import load_model_spec

    name = toy_model(None)
    with pytest.raises(LandingError, match=rf"model '{name}' streams no source"):
        landing_arrow_schema(load_model_spec(name))


def predictions(rows: list[tuple[date, int, int | None, float]]) -> pd.DataFrame:
    """Rows of a predictions table of the flight model: (event date, flight number, label, probability)."""
    model = ENVIRONMENTS["prod"].model
    frame = pd.DataFrame(
        {
            "sched_date": [day for day, *_ in rows],
            "carrier": "UA",
            "flight": np.array([n for _, n, *_ in rows], dtype="int64"),
            "origin": "EWR",
            "dest": "IAH",
            "time_hour": pd.to_datetime([f"{day} 10:00" for day, *_ in rows]).tz_localize(UTC),
            "sched_departure": pd.to_datetime([f"{day} 10:15" for day, *_ in rows]).tz_localize(UTC),
        }
    )
    for feature in model.scored_features:
        frame[feature] = 1.0
    frame["label"] = pd.array([label for *_, label, _ in rows], dtype="Int32")
    frame["probability"] = [p for *_, p in rows]
    frame["prediction"] = (frame["probability"] >= 0.5).astype("int32")
    frame["model_version"], frame["source"] = "1", "batch"
    return frame


def test_a_week_s_requests_and_the_served_figure_come_from_the_predictions_table(tmp_path, monkeypatch):
    import random

    from deltalake import write_deltalake

    from local.demo.records import WeekRecord
    from local.demo.references import score_loop
    from local.demo.traffic import Traffic
    from local.paths import table_path

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    env = ENVIRONMENTS["prod"]
    week, next_week = date(2013, 3, 4), date(2013, 3, 11)
    rows = [
        (week, 1, 1, 0.9),
        (week, 1, 1, 0.9),  # scored twice (by the stream and the batch): one row, one request
        (date(2013, 3, 10), 2, 0, 0.2),
        (date(2013, 3, 6), 3, 0, 0.7),
        (date(2013, 3, 7), 4, 1, 0.6),
        (next_week, 5, 1, 0.4),
        (next_week, 6, None, 0.4),  # not labelled yet
    ]
    write_deltalake(str(table_path(env.predictions_table)), predictions(rows))
    traffic = Traffic(env, load_replay(env.model_name), gateway_url="http://x", token="t", requests_per_week=2,
                      rng=random.Random(7))  # fmt: skip
    # The week's rows, once each, by their event date
    week_rows = traffic.week_rows(week)
    assert sorted(week_rows["flight"]) == [1, 2, 3, 4]
    assert [request_id for request_id, _ in traffic.requests(week_rows.head(1))] == [
        "2013-03-04#UA#1#EWR#IAH#2013-03-04T10:00Z"
    ]
    # The served figure of each week: its labelled rows' ROC AUC (one class only the second week: undefined)
    records = [WeekRecord(week.isoformat()), WeekRecord(next_week.isoformat())]
    score_loop(env, load_replay(env.model_name), records)
    assert [(r.labelled, r.auc_loop) for r in records] == [(5, 0.8333), (1, None)]
