"""The applications' import rules (pyproject.toml [tool.importlinter]) hold, and a change that breaks one is
caught: `lint-imports` on the repository, then on a copy with a forbidden import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("spec", "jobs", "models", "local", "cli", "infra", "policies")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_of_the_packages(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.rego"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 18 kept, 0 broken." in result.stdout


def test_a_job_that_imports_cdktn_or_another_entry_point_breaks_the_contracts(tmp_path):
    root = copy_of_the_packages(tmp_path)
    (root / "jobs" / "probe.py").write_text("import cdktn  # noqa: F401\n")
    train = root / "jobs" / "train.py"
    train.write_text(train.read_text() + "\nfrom jobs import validate  # noqa: E402,F401\n")

    result = lint_imports(root)

    assert result.returncode == 1
    assert "Contracts: 15 kept, 3 broken." in result.stdout, result.stdout
    # (import-linter wraps long contract names; their last words end the line)
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert broken == [
        "web framework BROKEN",
        "CDK Terrain (cdktn) stays inside infra BROKEN",
        "Job entry points never import each other BROKEN",
    ]
    assert "jobs.probe -> cdktn" in result.stdout
    assert "jobs.train -> jobs.validate" in result.stdout


def test_the_demo_importing_the_cli_or_upwards_or_the_platform_importing_the_demo_breaks_the_contracts(tmp_path):
    root = copy_of_the_packages(tmp_path)
    records = root / "local" / "demo" / "records.py"
    records.write_text(records.read_text() + "\nfrom cli.main import main  # noqa: E402,F401\n")
    config = root / "local" / "demo" / "config.py"
    config.write_text(config.read_text() + "\nfrom local.demo import services  # noqa: E402,F401\n")
    runner = root / "local" / "runner.py"
    runner.write_text(runner.read_text() + "\nfrom local.demo import loop  # noqa: E402,F401\n")

    result = lint_imports(root)

    assert result.returncode == 1
    assert "Contracts: 14 kept, 4 broken." in result.stdout, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert broken == [
        "Layers: cli -> local|infra|policies -> jobs -> models -> spec BROKEN",
        "policies BROKEN",
        "The local platform does not depend on the demo that drives it BROKEN",
        "references, over the records BROKEN",
    ]
    assert "local.demo.records -> cli.main" in result.stdout
    assert "local.runner -> local.demo.loop" in result.stdout
    assert "local.demo.config -> local.demo.services" in result.stdout


def test_a_platform_module_importing_a_model_or_a_model_importing_the_runtime_breaks_the_contracts(tmp_path):
    root = copy_of_the_packages(tmp_path)
    scoring = root / "jobs" / "scoring.py"
    scoring.write_text(scoring.read_text() + "\nfrom models.flight_delay import spec  # noqa: E402,F401\n")
    features = root / "models" / "flight_delay" / "features.py"
    features.write_text(features.read_text() + "\nfrom jobs.core import model  # noqa: E402,F401\n")

    result = lint_imports(root)

    assert result.returncode == 1
    assert "Contracts: 15 kept, 3 broken." in result.stdout, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert broken == [
        "Layers: cli -> local|infra|policies -> jobs -> models -> spec BROKEN",
        "The platform never imports a model: it loads each by the name config gives BROKEN",
        "A model imports only the platform's interface (spec), never the runtimes BROKEN",
    ]
    assert "jobs.scoring -> models.flight_delay" in result.stdout
