"""The Databricks serving adapter against the REST API as databricks-sdk speaks it.

The workspace cannot be reached here, so the client is a mock whose ``serving_endpoints`` is the SDK's real
``ServingEndpointsAPI`` over a fake transport: the test sees the exact method, path and JSON body each call sends
(the SDK's own serialization and waiters run), and scripts the workspace's answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import ServingEndpointsAPI

from jobs.core.decisions import traffic_split
from jobs.platform.serving import EndpointUpdater, ServedEntity, StateError, served_entities_for
from spec.config import ENVIRONMENTS, Environment

pytestmark = pytest.mark.contract

BASE = "/api/2.0/serving-endpoints"


class FakeTransport:
    """Stands in for ``databricks.sdk.core.ApiClient``: records requests, answers from a script."""

    def __init__(self, answers: list[Any]) -> None:
        self._answers = list(answers)
        self.calls: list[tuple[str, str, dict | None]] = []
        self._cfg = MagicMock(workspace_id=None)

    def do(self, method: str, path: str | None = None, *, body: dict | None = None, **_: Any) -> Any:
        self.calls.append((method, path, body))
        if not self._answers:
            raise AssertionError(f"unexpected call {method} {path}")
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _client(answers: list[Any]) -> tuple[WorkspaceClient, FakeTransport]:
    transport = FakeTransport(answers)
    client = MagicMock(spec=WorkspaceClient)
    client.serving_endpoints = ServingEndpointsAPI(transport)
    return client, transport


def _split(env: Environment, champion: str, challenger: str | None = None) -> list[ServedEntity]:
    """What the deploy job serves for these aliases: the core traffic split with ``env``'s challenger share."""
    return served_entities_for(env, traffic_split(champion, challenger, env.serving.challenger_traffic_percent))


def _endpoint(config_update: str, ready: str = "READY") -> dict:
    return {"name": "flight-delay", "id": "e-1", "state": {"ready": ready, "config_update": config_update}}


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_existing_endpoint_gets_served_entities_and_routes_from_config(name):
    env = ENVIRONMENTS[name]
    entities = _split(env, "7", "8")
    client, transport = _client([_endpoint("NOT_UPDATING"), _endpoint("IN_PROGRESS"), _endpoint("NOT_UPDATING")])

    result = EndpointUpdater(client, env, timeout=timedelta(seconds=5)).deploy(entities)

    assert result.state.config_update.value == "NOT_UPDATING"
    method, path, body = transport.calls[1]
    assert (method, path) == ("PUT", f"{BASE}/flight-delay/config")
    percent = env.serving.challenger_traffic_percent
    served = [
        {
            "name": "champion",
            "entity_name": f"{name}.ml.flight_delay",
            "entity_version": "7",
            "workload_size": "Small",
            "scale_to_zero_enabled": True,
        }
    ]
    routes = [{"served_entity_name": "champion", "traffic_percentage": 100 - percent}]
    if percent:
        served.append({**served[0], "name": "challenger", "entity_version": "8"})
        routes.append({"served_entity_name": "challenger", "traffic_percentage": percent})
    assert body == {"served_entities": served, "traffic_config": {"routes": routes}}
    assert [c[:2] for c in transport.calls] == [
        ("GET", f"{BASE}/flight-delay"),
        ("PUT", f"{BASE}/flight-delay/config"),
        ("GET", f"{BASE}/flight-delay"),
    ]


def test_prod_splits_ninety_ten_between_champion_and_challenger():
    entities = _split(ENVIRONMENTS["prod"], "3", "4")
    assert [(e.name, e.model_name, e.model_version, e.traffic_percent) for e in entities] == [
        ("champion", "prod.ml.flight_delay", "3", 90),
        ("challenger", "prod.ml.flight_delay", "4", 10),
    ]
    assert [(e.name, e.traffic_percent) for e in _split(ENVIRONMENTS["dev"], "3", "4")] == [("champion", 100)]


def test_a_missing_endpoint_is_a_clear_error_naming_the_deploy_that_creates_it():
    env = ENVIRONMENTS["prod"]
    client, transport = _client([NotFound("endpoint flight-delay does not exist")])
    entities = (ServedEntity("champion", "prod.ml.flight_delay", "3", 100),)

    with pytest.raises(LookupError) as error:
        EndpointUpdater(client, env, timeout=timedelta(seconds=5)).deploy(entities)

    assert str(error.value) == (
        "serving endpoint 'flight-delay' does not exist in the prod workspace: it is created by Terraform, "
        "run `npx cdktn deploy prod` first"
    )
    assert [(method, path) for method, path, _ in transport.calls] == [("GET", f"{BASE}/flight-delay")]


def test_an_update_in_progress_is_waited_for_before_the_new_config():
    env = ENVIRONMENTS["dev"]
    client, transport = _client(
        [_endpoint("IN_PROGRESS"), _endpoint("NOT_UPDATING"), _endpoint("IN_PROGRESS"), _endpoint("NOT_UPDATING")]
    )

    EndpointUpdater(client, env, timeout=timedelta(seconds=5)).deploy(_split(env, "2"))

    assert [c[0] for c in transport.calls] == ["GET", "GET", "PUT", "GET"]


def test_a_failed_update_raises_and_says_the_previous_config_keeps_serving():
    env = ENVIRONMENTS["dev"]
    client, _ = _client([_endpoint("NOT_UPDATING"), _endpoint("IN_PROGRESS"), _endpoint("UPDATE_FAILED")])

    with pytest.raises(RuntimeError, match=r"flight-delay: the config update did not complete .*previous config"):
        EndpointUpdater(client, env, timeout=timedelta(seconds=5)).deploy(_split(env, "2"))


def test_both_waits_share_one_deadline_so_the_task_timeout_covers_them():
    env = ENVIRONMENTS["dev"]
    client, transport = _client([_endpoint("IN_PROGRESS")])
    now = iter([0.0, 10.0, 400.0])
    waited = []

    def wait(name, timeout):
        waited.append(timeout)
        raise TimeoutError(f"timed out after {timeout}")

    client.serving_endpoints.wait_get_serving_endpoint_not_updating = wait
    updater = EndpointUpdater(client, env, timeout=timedelta(seconds=300), clock=lambda: next(now))

    with pytest.raises(RuntimeError, match=r"did not complete within 5 minutes .*previous config keeps serving"):
        updater.deploy(_split(env, "2"))

    assert waited == [timedelta(seconds=290)]
    assert [c[0] for c in transport.calls] == ["GET"]


def test_a_split_that_does_not_sum_to_100_is_refused_before_any_call():
    client, transport = _client([])
    bad = (ServedEntity("champion", "dev.ml.flight_delay", "2", 80),)

    with pytest.raises(
        StateError, match=r"endpoint 'flight-delay' \(env 'dev'\): .* must add up to 100 percent, got 80"
    ):
        EndpointUpdater(client, ENVIRONMENTS["dev"]).deploy(bad)
    assert transport.calls == []


def test_query_sends_dataframe_records_to_the_invocations_path():
    record = {"carrier": "UA", "origin": "EWR", "dest": "IAH", "distance": 1400, "sched_hour": 5, "month": 1}
    client, transport = _client([{"predictions": [[0.8, 0.2]]}])

    predictions = EndpointUpdater(client, ENVIRONMENTS["dev"]).query([record])

    assert predictions == [[0.8, 0.2]]
    assert transport.calls == [("POST", "/serving-endpoints/flight-delay/invocations", {"dataframe_records": [record]})]


def test_query_on_a_missing_endpoint_names_it():
    client, _ = _client([NotFound("no such endpoint")])

    with pytest.raises(LookupError, match="serving endpoint 'flight-delay' does not exist"):
        EndpointUpdater(client, ENVIRONMENTS["dev"]).query([{"carrier": "UA"}])


def test_describe_returns_none_for_a_missing_endpoint_and_the_endpoint_otherwise():
    client, _ = _client([NotFound("no such endpoint"), _endpoint("NOT_UPDATING")])
    serving = EndpointUpdater(client, ENVIRONMENTS["dev"])

    assert serving.describe() is None
    assert serving.describe().name == "flight-delay"


def test_the_deploy_jobs_serving_port_sends_the_same_update():
    from jobs.platform.serving import DatabricksServing as ServingPort

    env = ENVIRONMENTS["prod"]
    client, transport = _client([_endpoint("NOT_UPDATING"), _endpoint("IN_PROGRESS"), _endpoint("NOT_UPDATING")])

    ServingPort(lambda: client).update_endpoint(env, _split(env, "7", "8"))

    assert [(method, path) for method, path, _ in transport.calls[:2]] == [
        ("GET", f"{BASE}/flight-delay"),
        ("PUT", f"{BASE}/flight-delay/config"),
    ]
    routes = transport.calls[1][2]["traffic_config"]["routes"]
    split = [(r["served_entity_name"], r["traffic_percentage"]) for r in routes]
    assert split == [("champion", 90), ("challenger", 10)]


def test_the_serving_port_reads_what_a_ready_endpoint_serves_and_nothing_from_one_not_ready():
    from jobs.platform.serving import DatabricksServing

    env = ENVIRONMENTS["staging"]
    live = {
        **_endpoint("NOT_UPDATING"),
        "config": {
            "served_entities": [
                {"name": "champion", "entity_name": "staging.ml.flight_delay", "entity_version": "7"},
                {"name": "challenger", "entity_name": "staging.ml.flight_delay", "entity_version": "8"},
            ],
            "traffic_config": {
                "routes": [
                    {"served_entity_name": "champion", "traffic_percentage": 90},
                    {"served_entity_name": "challenger", "traffic_percentage": 10},
                ]
            },
        },
    }
    client, transport = _client([live, {**live, "state": {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}}])
    port = DatabricksServing(lambda: client)

    assert port.served(env) == [
        ServedEntity("champion", "staging.ml.flight_delay", "7", 90),
        ServedEntity("challenger", "staging.ml.flight_delay", "8", 10),
    ]
    assert port.served(env) == []
    assert transport.calls == [("GET", f"{BASE}/flight-delay", None)] * 2


def test_the_serving_port_queries_with_the_client_request_id():
    from jobs.platform.serving import DatabricksServing

    record = {"carrier": "UA", "origin": "EWR"}
    client, transport = _client([{"predictions": [1]}])

    answers = DatabricksServing(lambda: client).query(ENVIRONMENTS["staging"], [record], "integration-test-1")

    assert answers == [1]
    assert transport.calls == [
        (
            "POST",
            "/serving-endpoints/flight-delay/invocations",
            {"client_request_id": "integration-test-1", "dataframe_records": [record]},
        )
    ]
