"""The CDK Terrain app: the one place that synthesizes. `cdktn synth` runs this module (see cdktf.json, which cdktn
reads as cdktf did)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from cdktn import App, Token

from infra.stacks.environment import EnvironmentStack, WorkspaceRef
from spec.config import ENVIRONMENTS, Environment

ROOT = Path(__file__).resolve().parents[1]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def current_code_version() -> str:
    """The commit whose code the stacks deploy: the one the wheel in dist/ was built from (`make wheel`), else the
    checkout's HEAD, else "local". The wheel is uploaded under it, so every commit's jobs install their own build."""
    baked = ROOT / "dist" / "BUILD_COMMIT"
    if baked.exists() and _COMMIT.match(baked.read_text().strip()):
        return baked.read_text().strip()[:12]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "local"
    commit = head.stdout.strip()
    return commit[:12] if head.returncode == 0 and _COMMIT.match(commit) else "local"


def build_app(
    environments: Mapping[str, Environment] = ENVIRONMENTS,
    outdir: str | None = None,
    code_version: str | None = None,
) -> App:
    version = code_version or current_code_version()
    app = App(outdir=outdir) if outdir else App()
    refs: dict[str, WorkspaceRef] = {}
    to_create = [env for env in environments.values() if env.workspace.create is not None]
    if to_create:
        from infra.stacks.workspaces import WorkspacesStack

        workspaces = WorkspacesStack(app, to_create)
        refs.update(
            {env.name: WorkspaceRef(workspaces.host(env.name), workspaces.workspace_id(env.name)) for env in to_create}
        )
    for env in environments.values():
        if env.workspace.create is None:
            refs[env.name] = WorkspaceRef(env.workspace.host, Token.as_number(str(env.workspace_id)))
    for env in environments.values():
        EnvironmentStack(app, env, workspaces=refs, code_version=version)
    return app


if __name__ == "__main__":
    build_app().synth()
