"""`mlops demo` as an installed package runs it: the project's packages copied to a directory of their own (as
site-packages holds them, with no checkout, no node_modules beside them), run from a working directory without
node_modules, dynalite only on the PATH. The demo finds dynalite there, writes its report under MLOPS_HOME, and
writes nothing beside the package. The slow parts (the synthesis, the gateway, the replay) are replaced in the child
process; dynalite is real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cli", "local", "jobs", "spec", "infra", "policies")
DYNALITE_JS = ROOT / "node_modules" / "dynalite" / "cli.js"

CHILD = """
import json, sys
from types import SimpleNamespace

import cli.commands.demo as demo
from cli.main import main
from local.demo import lifecycle, loop, services

demo._synth_summaries = lambda: []
services.start_gateway = lambda stack, home, env, token, log, record: "http://127.0.0.1:9"
demo._print_summary = lambda console, result, index, home: None
reports = []


def write_report(result, report_dir, *, plots=True):
    report_dir.mkdir(parents=True, exist_ok=True)
    reports.append(str(report_dir))
    return report_dir / "index.html"


class Replay:
    def __init__(self, config, **kwargs):
        pass

    def initial_training(self):
        pass

    def replay(self):
        return SimpleNamespace(phases={}, wall_seconds=0.0, env="prod")


lifecycle.write_report = write_report
loop.Replay = Replay
code = main(["demo", "--prod-only", "--no-references"])
print(json.dumps({"code": code, "demo": demo.__file__, "services": services.__file__, "reports": reports}))
"""


def test_an_installed_demo_finds_dynalite_on_the_path_and_reports_under_mlops_home(tmp_path):
    assert DYNALITE_JS.exists(), f"{DYNALITE_JS} is missing: run make setup"
    node = shutil.which("node")
    assert node, "node is not on the PATH"
    # Given the packages in a directory of their own ...
    installed = tmp_path / "site"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, installed / package, ignore=shutil.ignore_patterns("__pycache__"))
    # ... dynalite only on the PATH (a wrapper that says it ran), and no node_modules on the PATH or in the cwd
    bin_dir, work, home = tmp_path / "bin", tmp_path / "work", tmp_path / "home"
    ran = tmp_path / "dynalite-ran"
    bin_dir.mkdir()
    work.mkdir()
    wrapper = bin_dir / "dynalite"
    wrapper.write_text(f'#!/bin/sh\necho "$0" >> "{ran}"\nexec "{node}" "{DYNALITE_JS}" "$@"\n')
    wrapper.chmod(0o755)
    path = [str(bin_dir), *(p for p in os.environ["PATH"].split(os.pathsep) if "node_modules" not in p)]
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
        "PATH": os.pathsep.join(path),
        "PYTHONPATH": str(installed),
        "MLOPS_HOME": str(home),
    }
    # When the demo runs there
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=work, env=environ, capture_output=True, text=True, timeout=300
    )
    # Then it ran from the copy, started the dynalite of the PATH and wrote the report under MLOPS_HOME ...
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert Path(result["demo"]) == installed / "cli" / "commands" / "demo.py"
    assert Path(result["services"]) == installed / "local" / "demo" / "services.py"
    assert result["code"] == 0, child.stdout[-3000:]
    assert ran.read_text().split() == [str(wrapper)]
    assert result["reports"] == [str(home / "demo" / "report")] * 2
    # ... and wrote nothing beside the package, nor in the working directory
    assert sorted(p.name for p in installed.iterdir()) == sorted(PACKAGES)
    assert list(work.iterdir()) == []
