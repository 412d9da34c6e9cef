"""A model workflow (`mlops run model-training`, the local runner's job graph) killed in the middle, then run
again: the tables it wrote hold every source row once, and the registry holds one champion that passed the
workflow's gates. The kill and the re-run are the session's champion (``conftest.champion``)."""

from __future__ import annotations

from datetime import date

import pytest
from deltalake import DeltaTable

from local.paths import table_path
from models.flight_delay.columns import WEATHER_KEY
from models.flight_delay.sources import source_frames
from spec.config import ENVIRONMENTS
from tests.faults.conftest import DEV_NAME, TRAINING, lost_and_doubled

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ENV = ENVIRONMENTS[DEV_NAME]
FLIGHT = ("time_hour", "carrier", "flight", "origin", "dest", "sched_dep_time")


def keys(rows, columns) -> list[tuple]:
    return list(zip(*(rows[c] for c in columns), strict=True))


def test_a_model_workflow_killed_after_its_first_commit_runs_again_to_the_same_tables(champion, fault):
    row = fault("killed: model workflow (after the ingest's first commit)")
    assert champion.killed.returncode == -9
    row.injected()
    # the kill left the flights table committed and the weather table not written: a half-done feature pipeline
    assert (champion.left_flights, champion.left_weather) == (True, False)

    run = champion.run
    window = (date.fromisoformat(TRAINING["start_date"]), date.fromisoformat(TRAINING["end_date"]))
    flights, weather = source_frames(*window)
    stored_flights = DeltaTable(str(table_path(ENV.source_table("flights")))).to_pandas(columns=list(FLIGHT))
    stored_weather = DeltaTable(str(table_path(ENV.source_table("weather")))).to_pandas(columns=list(WEATHER_KEY))
    lost_f, doubled_f = lost_and_doubled(keys(flights, FLIGHT), keys(stored_flights, FLIGHT))
    lost_w, doubled_w = lost_and_doubled(keys(weather, WEATHER_KEY), keys(stored_weather, WEATHER_KEY))
    from jobs.platform import build_platform

    versions = build_platform(ENV).registry.client.search_model_versions(f"name='{ENV.registered_model}'")
    row.record(
        survived=run.status == "SUCCESS" and champion.version == "1" and len(versions) == 1,
        lost=lost_f + lost_w,
        doubled=doubled_f + doubled_w,
        note=f"{len(flights)} flights, {len(weather)} weather rows, {len(versions)} model version; killed run "
        f"{champion.killed_seconds:.0f}s, re-run {champion.rerun_seconds:.0f}s",
    )
    assert run.status == "SUCCESS", {k: (t.status, t.error) for k, t in run.tasks.items()}
    assert (lost_f, doubled_f, lost_w, doubled_w) == (0, 0, 0, 0)
    # the killed run registered nothing: the one version is the re-run's, and it is the champion
    assert [str(v.version) for v in versions] == ["1"] and champion.version == "1"
