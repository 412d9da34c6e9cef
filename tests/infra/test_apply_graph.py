"""The apply order of every environment's stack: no resource names another one of the stack without waiting for it
(a reference or depends_on), and whatever names the jobs' service principal waits for its workspace assignment.
Terraform cannot run here (its provider registry is unreachable), so the order is read from the synthesized JSON."""

from __future__ import annotations

import pytest

from spec.config import ENVIRONMENTS
from tests.support.apply_graph import Finding, dependencies, literal_names, principal_races, resources
from tests.support.stacks import address

ENV_NAMES = list(ENVIRONMENTS)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_no_resource_names_another_by_a_literal_without_waiting_for_it(synthesized, name):
    stack = synthesized[name]
    assert len(resources(stack)) > 20
    assert literal_names(stack) == []


@pytest.mark.parametrize("name", ENV_NAMES)
def test_everything_naming_the_service_principal_waits_for_its_workspace_assignment(synthesized, name):
    stack = synthesized[name]
    assert principal_races(stack) == []
    assignment = address(stack, "databricks_mws_permission_assignment", "identity/workspace_assignment")
    deps = dependencies(stack)
    jobs = [a for a in resources(stack) if a.startswith("databricks_job.")]
    assert jobs and all(assignment in deps[job] for job in jobs)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_the_jobs_install_the_uploaded_wheel_after_its_volume_schema_and_catalog(synthesized, name):
    stack = synthesized[name]
    deps = dependencies(stack)
    job = address(stack, "databricks_job", f"{ENVIRONMENTS[name].model_name}/jobs/model_training")
    for resource_type, path in (
        ("databricks_file", "artifacts/wheel"),
        ("databricks_volume", "artifacts/artifacts"),
        ("databricks_schema", "governance/schema_ml"),
        ("databricks_catalog", "governance/catalog"),
    ):
        assert address(stack, resource_type, path) in deps[job]


def test_a_literal_catalog_name_is_reported(synthesized):
    stack = synthesized["prod"]
    volume_address = address(stack, "databricks_volume", "artifacts/artifacts")
    rtype, name = volume_address.split(".")
    stack["resource"][rtype][name]["catalog_name"] = "prod"
    stack["resource"][rtype][name]["schema_name"] = "ml"

    findings = {(f.address, f.attribute): f.message for f in literal_names(stack)}

    assert (volume_address, "catalog_name") in findings
    assert "names databricks_catalog." in findings[(volume_address, "catalog_name")]
    # What waited for the catalog through the volume (the wheel, the jobs) no longer does: reported too.
    assert {a.split(".")[0] for a, _ in findings} == {"databricks_volume", "databricks_job"}


def test_a_permission_that_does_not_wait_for_the_assignment_is_reported(synthesized):
    stack = synthesized["staging"]
    # The warehouse's permissions: nothing else it waits for waits for the assignment (the jobs do, through the
    # catalog, which waits for the principals its grants name).
    permissions_address = address(stack, "databricks_permissions", "ml/warehouse_permissions")
    rtype, name = permissions_address.split(".")
    stack["resource"][rtype][name]["depends_on"] = []

    findings = principal_races(stack)

    assert {f.address for f in findings} == {permissions_address}
    assert {f.attribute for f in findings} == {"access_control[2].service_principal_name"}
    assert all(isinstance(f, Finding) and "does not wait for its workspace assignment" in f.message for f in findings)
