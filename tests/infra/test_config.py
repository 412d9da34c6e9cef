"""The environment model: derived names, and invalid values rejected with the environment and field named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spec.config import ENVIRONMENTS, ConfigError, Monitoring, Schedule, Validation, Workspace, get_environment


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
            "environment 'staging': field 'catalog' must be a lowercase identifier, got 'Prod-Catalog'",
        ),
        (
            {"schemas": ("raw", "features")},
            "environment 'staging': field 'schemas' must contain ['ml', 'monitoring'] (the jobs' tables, the model "
            "and the volumes live there)",
        ),
        ({"schemas": ("ml", "ml")}, "environment 'staging': field 'schemas' has duplicates"),
        (
            {"service_principal": ""},
            "environment 'staging': field 'service_principal' must name the service principal that runs the jobs",
        ),
        (
            {"workspace": Workspace(host="https://example.com")},
            "environment 'staging': field 'workspace.host' must look like https://adb-<id>.<n>.azuredatabricks.net, got 'https://example.com'",
        ),
        (
            {"workspace": Workspace()},
            "environment 'staging': field 'workspace.host' is required unless workspace.create is set",
        ),
        (
            {"monitoring": Monitoring(schedule=Schedule("0 3 * * *"))},
            "environment 'staging': field 'monitoring.schedule' must be a Quartz cron expression with 6 or 7 fields, "
            "got '0 3 * * *'",
        ),
        (
            {"validation": Validation(run_mode="sometimes")},
            "environment 'staging': field 'validation.run_mode' must be disabled, dry_run or enabled, got 'sometimes'",
        ),
        (
            {"validation": Validation(min_roc_auc=1.5)},
            "environment 'staging': field 'validation.min_roc_auc' must be between 0 and 1, got 1.5",
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
        replace(ENVIRONMENTS["staging"], **changes)
    assert str(error.value) == message


def test_an_unknown_environment_is_a_value_error_listing_the_known_ones():
    from spec.config import get_environment

    with pytest.raises(ValueError, match=r"^unknown environment 'qa'; known: dev, staging, prod$"):
        get_environment("qa")
