"""No synthesized stack uses what the Databricks provider's docs mark deprecated.

DEPRECATED is the list, one row per deprecated resource type (attribute None) or attribute (a path of block and
attribute names: lists of blocks are walked through, ``*`` matches any one key). Sources: the provider's docs and
schema as of ~1.128/1.129 (the newest available to check, /tmp/research.md section 3); the registry pages named are
1.138.0's, the version the bindings are generated from. A deprecation is a removal announced: each row found in a
stack is work to do before the provider drops it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from spec.config import ENVIRONMENTS, AzureWorkspaceSpec, Workspace
from spec.workflows import job_graphs
from tests.support.stacks import CODE_VERSION, load_stacks, resources

DOCS = "https://registry.terraform.io/providers/databricks/databricks/1.138.0/docs"

# (type, attribute path or None for the whole type, doc page). Data sources are typed "data.<type>".
DEPRECATED: tuple[tuple[str, str | None, str], ...] = (
    # databricks_job: always_running (use continuous / control_run_state), the Jobs API 2.0 single-task syntax
    # (top-level task attributes: define tasks in task blocks), egg libraries, DBFS init scripts.
    ("databricks_job", "always_running", f"{DOCS}/resources/job#always_running"),
    *(
        ("databricks_job", attribute, f"{DOCS}/resources/job#single-task-syntax-deprecated")
        for attribute in (
            "max_retries",
            "min_retry_interval_millis",
            "retry_on_timeout",
            "notebook_task",
            "spark_jar_task",
            "spark_python_task",
            "spark_submit_task",
            "pipeline_task",
            "python_wheel_task",
            "dbt_task",
            "run_job_task",
        )
    ),
    *(
        ("databricks_job", path, f"{DOCS}/resources/job#library-configuration-block")
        for path in ("library.egg", "task.library.egg", "task.for_each_task.task.library.egg")
    ),
    *(
        ("databricks_job", path, f"{DOCS}/resources/job#job_cluster-configuration-block")
        for path in (
            "new_cluster.init_scripts.dbfs",
            "job_cluster.new_cluster.init_scripts.dbfs",
            "task.new_cluster.init_scripts.dbfs",
        )
    ),
    # Not marked in the provider's docs: the Jobs API (and databricks-sdk's compute.Environment) says
    # "Use environment_version instead".
    (
        "databricks_job",
        "environment.spec.client",
        "https://docs.databricks.com/api/workspace/jobs/create#environments-spec-client",
    ),
    ("databricks_model_serving", "config.served_models", f"{DOCS}/resources/model_serving#served_models"),
    ("databricks_model_serving", "rate_limits", f"{DOCS}/resources/model_serving#rate_limits"),
    (
        "databricks_model_serving",
        "ai_gateway.guardrails.*.invalid_keywords",
        f"{DOCS}/resources/model_serving#invalid_keywords",
    ),
    (
        "databricks_model_serving",
        "ai_gateway.guardrails.*.valid_topics",
        f"{DOCS}/resources/model_serving#valid_topics",
    ),
    ("databricks_sql_endpoint", "data_source_id", f"{DOCS}/resources/sql_endpoint#data_source_id"),
    ("databricks_alert_v2", "run_as_user_name", f"{DOCS}/resources/alert_v2#run_as_user_name"),
    (
        "databricks_metastore_assignment",
        "default_catalog_name",
        f"{DOCS}/resources/metastore_assignment#default_catalog_name",
    ),
    ("databricks_workspace_binding", "catalog_name", f"{DOCS}/resources/workspace_binding"),
    ("databricks_mlflow_experiment", "description", f"{DOCS}/resources/mlflow_experiment"),
    ("data.databricks_group", "instance_profiles", f"{DOCS}/data-sources/group#instance_profiles"),
    ("databricks_catalog_workspace_binding", None, f"{DOCS}/resources/catalog_workspace_binding"),
    ("databricks_table", None, f"{DOCS}/resources/sql_table#migration-from-databricks_table"),
    ("databricks_quality_monitor_v2", None, f"{DOCS}/resources/quality_monitor_v2"),
    ("data.databricks_quality_monitor_v2", None, f"{DOCS}/data-sources/quality_monitor_v2"),
    ("data.databricks_quality_monitors_v2", None, f"{DOCS}/data-sources/quality_monitors_v2"),
    ("databricks_lakehouse_monitor", None, f"{DOCS}/resources/lakehouse_monitor"),
    ("databricks_sql_alert", None, f"{DOCS}/resources/sql_alert"),
    ("databricks_sql_query", None, f"{DOCS}/resources/sql_query"),
    ("databricks_sql_dashboard", None, f"{DOCS}/resources/sql_dashboard"),
    ("databricks_sql_visualization", None, f"{DOCS}/resources/sql_visualization"),
    ("databricks_sql_widget", None, f"{DOCS}/resources/sql_widget"),
    ("databricks_mount", None, f"{DOCS}/resources/mount"),
    ("databricks_group_instance_profile", None, f"{DOCS}/resources/group_instance_profile"),
    ("databricks_user_instance_profile", None, f"{DOCS}/resources/user_instance_profile"),
)


def _values_at(node: object, path: tuple[str, ...]) -> Iterator[object]:
    """Every value at ``path`` below ``node``: lists (repeated blocks) are walked through, ``*`` is any key."""
    if isinstance(node, list):
        for item in node:
            yield from _values_at(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if not isinstance(node, dict):
        return
    keys = [k for k in node if k != "//"] if path[0] == "*" else [path[0]] if path[0] in node else []
    for key in keys:
        yield from _values_at(node[key], path[1:])


def deprecated_uses(stack: dict) -> list[str]:
    """``<address>: <what> (<doc page>)`` for each deprecated type or attribute the stack declares."""
    found = []
    for block, prefix in (("resource", ""), ("data", "data.")):
        for rtype, by_name in stack.get(block, {}).items():
            for name, body in by_name.items():
                for dtype, path, doc in DEPRECATED:
                    if dtype != f"{prefix}{rtype}":
                        continue
                    if path is None:
                        found.append(f"{prefix}{rtype}.{name}: {dtype} is deprecated ({doc})")
                    elif any(True for _ in _values_at(body, tuple(path.split(".")))):
                        found.append(f"{prefix}{rtype}.{name}: {path} is deprecated ({doc})")
    return found


def _declared(stack: dict) -> int:
    return sum(len(by_name) for block in ("resource", "data") for by_name in stack.get(block, {}).values())


@pytest.fixture(scope="module")
def with_workspaces_stack(tmp_path_factory) -> dict[str, dict]:
    """The stacks when dev's workspace is created: the `workspaces` stack appears (the metastore assignment)."""
    from infra.main import build_app

    envs = dict(ENVIRONMENTS)
    spec = AzureWorkspaceSpec(resource_group="rg-mlops", location="westeurope", metastore_id="metastore-1")
    envs["dev"] = envs["dev"].replace(workspace=Workspace(create=spec))
    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(envs, outdir=str(outdir), code_version=CODE_VERSION).synth()
    return load_stacks(outdir)


def test_the_table_names_types_and_attributes_the_provider_bindings_have():
    # A misspelt row would never match anything: each type must be one the provider 1.138 bindings generate,
    # and each attribute's last name one of that type's attributes.
    spec = importlib.util.find_spec("cdktn_provider_databricks")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    assert DEPRECATED
    unknown = []
    for dtype, path, _ in DEPRECATED:
        # databricks_job -> job/, data.databricks_group -> data_databricks_group/
        folder = (
            f"data_{dtype.removeprefix('data.')}" if dtype.startswith("data.") else dtype.removeprefix("databricks_")
        )
        module = package / folder / "__init__.py"
        if not module.exists():
            unknown.append(dtype)
        elif path is not None and f'"{path.split(".")[-1]}"' not in module.read_text():
            unknown.append(f"{dtype} {path}")
    assert unknown == []


def test_no_environment_stack_uses_a_deprecated_type_or_attribute(synthesized):
    assert sorted(synthesized) == sorted(ENVIRONMENTS)
    for name, stack in synthesized.items():
        assert _declared(stack) > 50, f"{name}: too few resources to be the environment's stack"
    found = {name: deprecated_uses(stack) for name, stack in synthesized.items()}
    assert found == {name: [] for name in synthesized}


def test_the_workspaces_stack_uses_no_deprecated_type_or_attribute(with_workspaces_stack):
    assert sorted(with_workspaces_stack) == sorted([*ENVIRONMENTS, "workspaces"])
    workspaces = with_workspaces_stack["workspaces"]
    assert len(resources(workspaces, "databricks_metastore_assignment")) == 1
    found = {name: deprecated_uses(stack) for name, stack in with_workspaces_stack.items()}
    assert found == {name: [] for name in with_workspaces_stack}


def test_the_walker_reports_a_deprecated_attribute_added_to_a_stack(synthesized):
    # Given prod's experiment with the description the provider no longer uses
    stack = synthesized["prod"]
    experiments = stack["resource"]["databricks_mlflow_experiment"]
    assert len(experiments) == 1
    name = next(iter(experiments))
    experiments[name]["description"] = "flight delays"

    # Then the walker names it, and nothing else
    assert deprecated_uses(stack) == [
        f"databricks_mlflow_experiment.{name}: description is deprecated ({DOCS}/resources/mlflow_experiment)"
    ]


def test_the_walker_reports_a_deprecated_attribute_nested_in_repeated_blocks(synthesized):
    # Given an egg library on the last task of prod's model-training job (task[].library[].egg)
    stack = synthesized["prod"]
    jobs = {body["name"]: key for key, body in stack["resource"]["databricks_job"].items()}
    key = jobs["[prod] flight_delay/model-training"]
    stack["resource"]["databricks_job"][key]["task"][-1]["library"] = [{"whl": "/a.whl"}, {"egg": "/b.egg"}]

    assert deprecated_uses(stack) == [
        f"databricks_job.{key}: task.library.egg is deprecated ({DOCS}/resources/job#library-configuration-block)"
    ]


def test_the_walker_reports_a_deprecated_type_and_a_deprecated_data_source_attribute(synthesized):
    stack = synthesized["dev"]
    stack["resource"]["databricks_table"] = {"legacy": {"name": "t"}}
    groups = stack["data"]["databricks_group"]
    assert groups
    group = sorted(groups)[0]
    groups[group]["instance_profiles"] = ["arn:aws:iam::1:instance-profile/x"]

    table_doc = f"{DOCS}/resources/sql_table#migration-from-databricks_table"
    assert deprecated_uses(stack) == [
        f"databricks_table.legacy: databricks_table is deprecated ({table_doc})",
        f"data.databricks_group.{group}: instance_profiles is deprecated ({DOCS}/data-sources/group#instance_profiles)",
    ]


def test_every_job_environment_spec_names_environment_version_4_and_no_client(synthesized):
    specs = {
        (env_name, job["name"], environment["environment_key"]): environment["spec"]
        for env_name, stack in synthesized.items()
        for job in resources(stack, "databricks_job").values()
        for environment in job.get("environment", [])
    }
    # Every environment runs serverless: each of its jobs (9 per model, and a model-deployment job where promotion is
    # approved by hand) has its one environment.
    assert len(specs) == sum(len(job_graphs(m)) for env in ENVIRONMENTS.values() for m in env.scoped_models())
    assert {key: spec.get("environment_version") for key, spec in specs.items()} == {key: "4" for key in specs}
    assert [key for key, spec in specs.items() if "client" in spec] == []
