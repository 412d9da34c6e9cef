"""The replay's live traffic: a sample of each week's scored rows sent to prod's serving gateway, one request a row,
as a client calls the endpoint (what it sends is the model's replay's ``requests``); then the wait for the gateway's
inference rows (the labels job must see them).

A client sends the features it knows (``ModelSpec.client_features``, null for a missing value), named by the row's
key (``request_id``), unless the model's replay says otherwise (its ``requests``).

It reads the predictions and inference tables with delta-rs, not through the tables port (``LocalTables``): the
port hands Spark DataFrames to jobs, and this waits on a row count every 50 ms, which Spark would turn into seconds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.core.requests import key_id
from local.demo import ReplayError
from local.demo.replays import ModelReplay
from local.paths import table_path
from spec.config import Environment
from spec.model import ModelSpec

logger = logging.getLogger(__name__)


def request_id(model: ModelSpec, row: Any) -> str:
    """The row's key as one string, what a client sends as ``client_request_id`` so that the labels job can label
    its answer: the labels job's own encoding (``jobs.core.requests.key_id``)."""
    return key_id(model, row)


def client_requests(model: ModelSpec, rows: pd.DataFrame) -> Iterator[tuple[str, dict[str, Any]]]:
    """One request a row, in ``rows``' order: the row's ``request_id`` and the features a client sends (null for a
    missing value)."""
    for _, row in rows.iterrows():
        yield request_id(model, row), {c: (None if pd.isna(row[c]) else row[c]) for c in model.client_features}


@dataclass(frozen=True)
class Served:
    """One week's requests: how many were sent, how many failed, and their latencies (ms)."""

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


class Traffic:
    """Requests to the gateway at ``gateway_url`` (bearer ``token``) for prod's endpoint in ``env``, as the model's
    ``replay`` says a client sends them."""

    def __init__(
        self,
        env: Environment,
        replay: ModelReplay,
        *,
        gateway_url: str,
        token: str,
        requests_per_week: int,
        rng: random.Random,
    ) -> None:
        self.env = env
        self.replay = replay
        self.gateway_url = gateway_url.rstrip("/")
        self.token = token
        self.requests_per_week = requests_per_week
        self.random = rng

    def serve_week(self, week: date) -> Served:
        """A sample of the week's scored rows as live requests, one row each, named by its key; returns once the
        gateway has written an inference row for each."""
        import httpx

        rows = self.week_rows(week)
        if rows.empty:
            return Served()
        sample = rows.sample(min(self.requests_per_week, len(rows)), random_state=self.random.randrange(2**31))
        url = f"{self.gateway_url}/serving-endpoints/{self.env.endpoint_name}/invocations"
        before = self.inference_rows()
        latencies, errors = [], 0
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as client:
            for client_request_id, record in self.requests(sample):
                body = {"dataframe_records": [record], "client_request_id": client_request_id}
                started = time.perf_counter()
                response = client.post(url, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200
        self.wait_for_inference_rows(before + len(latencies))
        return Served(
            requests=len(latencies),
            errors=errors,
            p50_ms=round(float(np.percentile(latencies, 50)), 2),
            p95_ms=round(float(np.percentile(latencies, 95)), 2),
        )

    def requests(self, rows: pd.DataFrame) -> Iterable[tuple[str, dict[str, Any]]]:
        """What a client sends about ``rows``: the replay's own ``requests``, or ``client_requests``."""
        own = self.replay.requests
        return own(rows) if own is not None else client_requests(self.replay.spec, rows)

    def wait_for_gateway(self, timeout: float = 60.0) -> None:
        """The gateway serves once it has loaded the champion the deploy job just put on the endpoint."""
        import httpx

        deadline, answer = time.monotonic() + timeout, "no answer"
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.gateway_url}/ready", headers=headers, timeout=5)
                if response.status_code == 200:
                    return
                answer = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                answer = str(error)
            time.sleep(0.3)
        raise ReplayError(f"the serving gateway is not ready after {timeout:.0f} s: {answer}")

    def inference_rows(self) -> int:
        from deltalake import DeltaTable

        path = str(table_path(self.env.inference_table))
        return DeltaTable(path).to_pyarrow_dataset().count_rows() if DeltaTable.is_deltatable(path) else 0

    def wait_for_inference_rows(self, expected: int, timeout: float = 30.0) -> None:
        """The gateway writes its inference table in batches (about every second): the labels job must see them."""
        deadline = time.monotonic() + timeout
        while self.inference_rows() < expected:
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"the inference table has {self.inference_rows()} rows after {timeout:.0f} s, not {expected}"
                )
            time.sleep(0.05)

    def week_rows(self, week: date) -> pd.DataFrame:
        """The week's scored rows (by the event date) with their key, event time and features, from the predictions
        table; a row the streaming and the batch job both scored is there once."""
        import pyarrow.dataset as ds
        from deltalake import DeltaTable

        model = self.replay.spec
        key = list(model.key_names)
        event_date = ds.field(model.event_date)
        table = DeltaTable(str(table_path(self.env.predictions_table))).to_pyarrow_dataset()
        frame = table.to_table(
            filter=(event_date >= week) & (event_date <= week + timedelta(days=6)),
            columns=[*key, *model.event_time_in_rows, *model.scored_features],
        ).to_pandas()
        return frame.drop_duplicates(subset=key)
