"""The pinned CDK Terrain CLI (package.json `cdktn-cli`, on the Node 22 that package.json also pins) synthesizes
every environment, and takes the design's `cdktf deploy staging` as `npx cdktn deploy staging`: same verbs, same
stack names, same flags (docs/ci-cd.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from spec.config import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert (BIN / "cdktn").exists(), "node_modules/.bin/cdktn is missing: run the tests through `make test`"
    # npx and the Makefile put node_modules/.bin first: the CLI's `#!/usr/bin/env node` finds the pinned Node 22.
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "CHECKPOINT_DISABLE": "1", "CI": "1"}
    return subprocess.run([str(BIN / "cdktn"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_pinned_node_is_one_the_cli_supports():
    engines = json.loads((ROOT / "node_modules" / "cdktn-cli" / "package.json").read_text())["engines"]["node"]
    version = subprocess.run([str(BIN / "node"), "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = (int(part) for part in version.strip().lstrip("v").split(".")[:2])
    wanted_major, wanted_minor = (int(part) for part in engines.removeprefix(">=").split(".")[:2])
    assert (major, minor) >= (wanted_major, wanted_minor), f"cdktn-cli wants node {engines}, node_modules has {version}"


def test_the_pinned_cli_synthesizes_every_environment(tmp_path):
    result = _cli("synth", "--output", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr[-2000:]
    stacks = sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir())
    assert stacks == sorted(ENVIRONMENTS)
    for name in stacks:
        document = json.loads((tmp_path / "out" / "stacks" / name / "cdk.tf.json").read_text())
        assert document["terraform"]["backend"]["azurerm"]["key"] == f"{name}.tfstate"
        assert document["terraform"]["required_providers"]["databricks"]["version"] == "1.138.0"


def test_the_designs_cdktf_deploy_staging_is_npx_cdktn_deploy_staging():
    """`cdktf deploy staging --auto-approve` (the design, and CI before the move) keeps its stack and flag."""
    result = _cli("deploy", "--help")

    assert result.returncode == 0, result.stderr[-2000:]
    assert "cdktn deploy [stacks...]" in result.stdout
    assert "--auto-approve" in result.stdout
    assert '[default: ".venv/bin/python -m infra.main"]' in result.stdout  # cdktf.json's app, read by cdktn
