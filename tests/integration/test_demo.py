"""The main job, `mlops demo`, on a short replay: prod's first champion trained on two weeks of January, then two
weeks lived through (flights landing and scored, live requests, labels, monitor, alerts, retraining check, online
decision) with the weekly-retraining reference beside them, then the report. And an interrupted demo leaves no
process behind.

The demo runs as a person runs it: `python -m cli.main demo`, in its own process, with its own MLOPS_HOME."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--months", "1", "--initial-weeks", "2", "--prod-only", "--requests-per-week", "12"]


def demo(home: Path, *args: str, **popen) -> subprocess.Popen:
    environ = {**os.environ, "MLOPS_HOME": str(home), "PYSPARK_PYTHON": sys.executable}
    for name in ("MLOPS_DYNAMODB_ENDPOINT", "MLOPS_NOTIFY_WEBHOOK_URL", "MLFLOW_EXPERIMENT_ID"):
        environ.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "cli.main", "demo", *args], cwd=ROOT, env=environ, **popen)


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("demo-home")
    report = tmp_path_factory.mktemp("report")
    process = demo(home, *SHORT, "--report", str(report), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    return {"code": process.returncode, "output": output, "home": home / "demo", "report": report}


def table(home: Path, name: str):
    catalog, schema, short = name.split(".")
    return DeltaTable(str(home / "warehouse" / catalog / schema / short)).to_pyarrow_table().to_pandas()


def test_the_short_demo_runs_the_lifecycle_and_says_so(short_demo):
    assert short_demo["code"] == 0, short_demo["output"][-4000:]
    output = short_demo["output"]
    assert "prod: model workflow succeeded" in output
    assert "is the first champion" in output
    # prod approves promotions by hand: its first champion waited for approval, and the demo approved it.
    assert "waited for approval (deploy): approved (the demo plays the approver)" in output
    data = json.loads((short_demo["report"] / "report_data.json").read_text())
    assert [w["week_start"] for w in data["weeks"]] == ["2013-01-14", "2013-01-21"]
    assert all(w["champion"] for w in data["weeks"])
    # The loop and both references, each week: the reference process ran beside the replay.
    for week in data["weeks"]:
        assert all(0.5 < week[policy] < 1.0 for policy in ("auc_loop", "auc_never", "auc_weekly")), week
    assert set(data["phases"]) >= {"infrastructure", "initial training", "replay", "references", "report"}
    assert "time: replay" in output and "wall time" in output
    # The page states the wall time the terminal printed, the report's own time included.
    printed = re.search(r"wall time\s*│\s*([\d,.]+) s", output)
    assert printed and data["wall_seconds"] >= sum(data["phases"].values()) > 0
    assert abs(float(printed.group(1).replace(",", "")) - data["wall_seconds"]) <= 0.5
    page = (short_demo["report"] / "index.html").read_text()
    assert f"wall time</td><td>{printed.group(1)} s" in page


def test_every_replayed_day_has_predictions_and_every_request_an_inference_row(short_demo):
    home = short_demo["home"]
    predictions = table(home, "prod.ml.flight_delay_predictions")
    days = sorted(predictions["sched_date"].astype(str).unique())
    assert days == [f"2013-01-{d:02d}" for d in range(14, 28)]
    assert set(predictions["source"]) == {"stream", "batch"}
    data = json.loads((short_demo["report"] / "report_data.json").read_text())
    sent = sum(w["served_requests"] for w in data["weeks"])
    payload = table(home, "prod.monitoring.flight_delay_payload")
    assert sent == 24 and len(payload[payload["status_code"] == 200]) == sent


def test_the_monitor_has_metrics_for_every_window_and_the_alerts_were_evaluated(short_demo):
    home = short_demo["home"]
    drift = table(home, "prod.monitoring.flight_delay_predictions_drift_metrics")
    weekly = drift[(drift["granularity"] == "1 week") & drift["slice_key"].isna()]
    starts = sorted({w["start"].date().isoformat() for w in weekly["window"]})
    # Windows are UTC weeks of scheduled departure: the last Sunday's evening flights are Monday in UTC.
    assert starts in (["2013-01-14", "2013-01-21"], ["2013-01-14", "2013-01-21", "2013-01-28"])
    history = table(home, "prod.monitoring.alert_history")
    assert len(history) == 2 * 4  # two weeks, four alerts
    assert set(history["state"]) <= {"OK", "TRIGGERED"}, history[history["state"] == "ERROR"].to_dict("records")


def test_the_report_references_png_files_that_exist(short_demo):
    index = short_demo["report"] / "index.html"
    images = re.findall(r'<img[^>]+src="([^"]+)"', index.read_text())
    assert images
    for image in images:
        path = short_demo["report"] / image
        assert path.exists() and path.stat().st_size > 1000, image


def test_an_interrupted_demo_leaves_no_process_behind(tmp_path):
    home = tmp_path / "home"
    process = demo(
        home, *SHORT, "--report", str(tmp_path / "report"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        services = home / "demo" / "services.json"
        recorded: dict = {}
        deadline = time.monotonic() + 300
        # Until the replay runs: its weekly-retraining reference process is recorded, Spark's JVM is up.
        while "reference" not in recorded and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            with suppress(OSError, ValueError):
                recorded = json.loads(services.read_text())
        assert set(recorded) == {"dynalite", "gateway", "reference"}, recorded
        # Every process the demo started, not only those it records.
        spawned = descendants(process.pid)
        assert {recorded[name]["pid"] for name in ("dynalite", "gateway")} <= spawned
        assert any(_command(pid) == "java" for pid in spawned), "no Spark JVM among the demo's processes"

        # SIGTERM, as a supervisor or CI stops it; Ctrl-C (SIGINT) takes the same way out.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            process.kill()

    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in spawned if _alive(pid)] == []
    assert not services.exists()


def descendants(root: int) -> set[int]:
    """The live processes below ``root``, from the parent pids in /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2 :].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] != "Z"
