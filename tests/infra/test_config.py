"""The environment model: derived names, and invalid values rejected with the environment and field named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spec.config import ENVIRONMENTS, ConfigError, Monitoring, Schedule, Workspace, get_environment


def test_environments_are_dev_staging_prod_in_promotion_order():
    assert list(ENVIRONMENTS) == ["dev", "staging", "prod"]


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_names_derive_from_the_environment(name):
    env = ENVIRONMENTS[name]
    assert env.catalog == name
    assert env.registered_model == f"{name}.ml.flight_delay"
    assert env.service_principal == f"mlops-{name}"
    assert env.table("raw", "flights") == f"{name}.raw.flights"


def test_workspace_id_is_read_from_the_azure_host():
    assert get_environment("prod").workspace_id == 3333333333333333


def test_prod_is_readable_from_dev_only_and_data_scientists_write_only_in_dev():
    assert {n: e.read_only_from for n, e in ENVIRONMENTS.items()} == {
        "dev": (),
        "staging": ("dev",),
        "prod": ("dev",),
    }
    assert {n: e.data_scientist_access for n, e in ENVIRONMENTS.items()} == {
        "dev": "write",
        "staging": "read",
        "prod": "read",
    }


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown environment 'qa'; known: dev, staging, prod$"):
        get_environment("qa")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"catalog": "Prod-Catalog"},
            "environment 'staging': field 'catalog' must be a lowercase identifier (letters, digits and underscores, "
            "starting with a letter), got 'Prod-Catalog'",
        ),
        (
            {"schemas": ("raw", "features")},
            "environment 'staging': field 'schemas' must contain ['ml', 'monitoring'] (the jobs' tables, the model "
            "and the volumes live there)",
        ),
        (
            {"schemas": ("raw", "features", "ml", "monitoring", "ml")},
            "environment 'staging': field 'schemas' has duplicates",
        ),
        (
            {"service_principal": ""},
            "environment 'staging': field 'service_principal' must not be empty, got '' (the service principal that "
            "runs the jobs)",
        ),
        (
            {"workspace": Workspace(host="https://example.com")},
            "environment 'staging': field 'workspace.host' must look like https://adb-<id>.<n>.azuredatabricks.net, "
            "got 'https://example.com'",
        ),
        (
            {"workspace": {"host": None}},
            "environment 'staging': field 'workspace.host' is required unless workspace.create is set",
        ),
        (
            {"monitoring": {"schedule": {"quartz_cron": "0 3 * * *"}}},
            "environment 'staging': field 'monitoring.schedule.quartz_cron' must be a Quartz cron expression with 6 "
            "or 7 fields, got '0 3 * * *'",
        ),
        (
            {"validation": {"run_mode": "sometimes"}},
            "environment 'staging': field 'validation.run_mode' must be 'disabled', 'dry_run' or 'enabled', "
            "got 'sometimes'",
        ),
        (
            {"validation": {"min_roc_auc": 1.5}},
            "environment 'staging': field 'validation.min_roc_auc' must be <= 1.0, got 1.5",
        ),
        (
            {"read_only_from": ("staging",)},
            "environment 'staging': field 'read_only_from' must not contain the environment itself",
        ),
        (
            {"ml_engineers_group": "data-scientists"},
            "environment 'staging': field 'ml_engineers_group' must differ from data_scientists_group",
        ),
    ],
)
def test_invalid_values_name_the_environment_and_the_field(changes, message):
    with pytest.raises(ConfigError) as error:
        ENVIRONMENTS["staging"].replace(**changes)
    assert str(error.value) == message


def test_a_part_built_on_its_own_names_its_model_and_the_field():
    with pytest.raises(ConfigError) as error:
        Monitoring(schedule=Schedule(quartz_cron="0 0 6 * * ?"), min_window_rows=0)
    assert str(error.value) == "Monitoring: field 'min_window_rows' must be >= 1, got 0"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        ENVIRONMENTS["prod"].replace(validation={"min_roc_auc": -0.1, "min_slice_rows": 0})
    assert error.value.problems == (
        ("validation.min_roc_auc", "must be >= 0.0, got -0.1"),
        ("validation.min_slice_rows", "must be >= 1, got 0"),
    )


def test_an_update_keeps_the_other_values_and_leaves_the_original_unchanged():
    prod = ENVIRONMENTS["prod"]
    changed = prod.replace(monitoring={"min_window_rows": 50}, catalog="prod_copy")
    assert (changed.monitoring.min_window_rows, changed.catalog) == (50, "prod_copy")
    assert changed.monitoring.replace(min_window_rows=500) == prod.monitoring
    assert (prod.monitoring.min_window_rows, prod.catalog) == (500, "prod")
    assert prod.model_copy(update={"catalog": "prod_copy"}).catalog == "prod_copy"


def test_model_copy_validates_an_update_too():
    with pytest.raises(ConfigError, match=r"^environment 'prod': field 'job_retries' must be >= 0, got -1$"):
        ENVIRONMENTS["prod"].model_copy(update={"job_retries": -1})


def test_the_environments_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        ENVIRONMENTS["prod"].catalog = "other"  # type: ignore[misc]


def test_an_unknown_environment_is_a_config_error_and_no_value_error():
    from spec.config import get_environment
    from spec.errors import MlopsError

    with pytest.raises(MlopsError, match=r"^unknown environment 'qa'; known: dev, staging, prod$") as error:
        get_environment("qa")
    assert not isinstance(error.value, ValueError)
