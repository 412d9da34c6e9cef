"""`cdktf synth` through the pinned CLI (package.json) writes one cdk.tf.json per environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from spec.config import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
CDKTF = ROOT / "node_modules" / ".bin" / "cdktf"


def test_the_pinned_cli_synthesizes_every_environment(tmp_path):
    assert CDKTF.exists(), "node_modules/.bin/cdktf is missing: run the tests through `make test` (it runs npm install)"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CHECKPOINT_DISABLE": "1", "CI": "1"}
    result = subprocess.run(
        [str(CDKTF), "synth", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stacks = sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir())
    assert stacks == sorted(ENVIRONMENTS)
    for name in stacks:
        document = json.loads((tmp_path / "out" / "stacks" / name / "cdk.tf.json").read_text())
        assert document["terraform"]["backend"]["azurerm"]["key"] == f"{name}.tfstate"
