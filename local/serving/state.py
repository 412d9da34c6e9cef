"""The desired state of a serving endpoint: what the deploy job writes and what both serving adapters read.

The local contract is a JSON file at ``$MLOPS_HOME/serving/<env>/<endpoint_name>.json``::

    {"endpoint": "my-model", "env": "dev",
     "served_entities": [{"name": "champion", "model_name": "dev.ml.my_model", "model_version": "3",
                          "traffic_percent": 90},
                         {"name": "challenger", "model_name": "dev.ml.my_model", "model_version": "4",
                          "traffic_percent": 10}],
     "updated_at": "2025-01-01T00:00:00+00:00"}

Served entities are validated by ``jobs.platform.serving.check_entities`` (as for the Databricks endpoint), and
the file is built and written here only: the deploy job (``local.adapters.LocalServing``) and the gateway's
``PUT .../config`` both go through ``new_state`` and ``write_state``. Pure functions and frozen dataclasses,
apart from ``read_state`` / ``write_state``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.platform.serving import ServedEntity, StateError, check_entities
from local.files import write_text_atomically

if TYPE_CHECKING:
    from spec.config import Environment


@dataclass(frozen=True)
class EndpointState:
    endpoint: str
    env: str
    served_entities: tuple[ServedEntity, ...]
    updated_at: str

    def __post_init__(self) -> None:
        check_entities(self.served_entities, where=f"endpoint {self.endpoint!r} (env {self.env!r})")

    def to_json(self) -> str:
        body = asdict(self)
        body["served_entities"] = [asdict(e) for e in self.served_entities]
        return json.dumps(body, indent=2, sort_keys=False) + "\n"


def state_path(serving_dir: Path, env_name: str, endpoint: str) -> Path:
    return serving_dir / env_name / f"{endpoint}.json"


def inference_table_config(env: Environment) -> dict[str, Any]:
    """AI Gateway's ``inference_table_config`` for ``env.inference_table``, as Terraform declares it
    (infra/constructs/serving.py): Databricks names the table ``<catalog>.<schema>.<table_name_prefix>_payload``."""
    catalog, schema, _ = env.inference_table.split(".")
    return {
        "catalog_name": catalog,
        "schema_name": schema,
        "table_name_prefix": env.inference_table_prefix,
        "enabled": True,
    }


def parse_state(body: object, *, source: str = "state") -> EndpointState:
    """A validated ``EndpointState`` from decoded JSON; ``StateError`` naming the field otherwise."""
    if not isinstance(body, dict):
        raise StateError(f"{source}: expected a JSON object, got {type(body).__name__}")
    missing = [key for key in ("endpoint", "env", "served_entities") if key not in body]
    if missing:
        raise StateError(f"{source}: missing field(s) {', '.join(missing)}")
    raw_entities = body["served_entities"]
    if not isinstance(raw_entities, list):
        raise StateError(f"{source}: 'served_entities' must be a list")
    entities = []
    for i, raw in enumerate(raw_entities):
        if not isinstance(raw, dict):
            raise StateError(f"{source}: served_entities[{i}] must be an object")
        absent = [k for k in ("name", "model_name", "model_version", "traffic_percent") if k not in raw]
        if absent:
            raise StateError(f"{source}: served_entities[{i}] is missing {', '.join(absent)}")
        traffic = raw["traffic_percent"]
        if isinstance(traffic, bool) or not isinstance(traffic, int):
            raise StateError(f"{source}: served_entities[{i}].traffic_percent must be an integer, got {traffic!r}")
        entities.append(ServedEntity(str(raw["name"]), str(raw["model_name"]), str(raw["model_version"]), traffic))
    return EndpointState(
        endpoint=str(body["endpoint"]),
        env=str(body["env"]),
        served_entities=tuple(entities),
        updated_at=str(body.get("updated_at", "")),
    )


def read_state(path: Path) -> EndpointState:
    """The state file at ``path``; ``FileNotFoundError`` when there is none, ``StateError`` when it is invalid."""
    text = path.read_text(encoding="utf-8")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(f"{path}: not valid JSON ({e})") from e
    return parse_state(body, source=str(path))


def write_state(path: Path, state: EndpointState) -> None:
    """Atomically replace ``path``: readers see the old file or the new one, never half of one."""
    write_text_atomically(path, state.to_json())


def new_state(
    env_name: str, endpoint: str, entities: Sequence[ServedEntity], now: datetime | None = None
) -> EndpointState:
    return EndpointState(
        endpoint=endpoint,
        env=env_name,
        served_entities=tuple(entities),
        updated_at=(now or datetime.now(UTC)).isoformat(),
    )
