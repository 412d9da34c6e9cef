"""The cdktf app: the one place that synthesizes. `cdktf synth` runs this module (see cdktf.json)."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf import App, Token

from infra.config import ENVIRONMENTS, Environment
from infra.stacks.environment import EnvironmentStack, WorkspaceRef


def build_app(environments: Mapping[str, Environment] = ENVIRONMENTS, outdir: str | None = None) -> App:
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
        EnvironmentStack(app, env, workspaces=refs)
    return app


if __name__ == "__main__":
    build_app().synth()
