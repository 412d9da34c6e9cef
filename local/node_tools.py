"""The project's Node tools (dynalite, the cdktn CLI), found where an installed package can see them too.

A source checkout has them in ``node_modules/.bin`` (``make setup`` runs ``npm install``); an installed ``mlops`` has
no checkout beside it. So a tool is looked up, in this order: on the PATH, in the working directory's
``node_modules/.bin`` (an ``npm install`` where the user runs the command), and in the checkout's
``node_modules/.bin`` when the package runs from one. Missing everywhere, the error names the npm package to install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The npm package (pinned as in the checkout's package.json) that brings each tool.
NODE_PACKAGES = {"dynalite": "dynalite@4.0.0", "cdktn": "cdktn-cli@0.24.0"}


class NodeToolNotFound(FileNotFoundError):
    """A Node tool is in none of the places looked at; the message names them and what to install."""


def checkout_root() -> Path | None:
    """The project checkout this package runs from (an editable install, or ``python -m`` in the checkout); None
    when it is installed (site-packages has no package.json beside the packages)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "package.json").is_file() and (root / "pyproject.toml").is_file() else None


def node_tool_dirs() -> list[Path]:
    """The ``node_modules/.bin`` directories looked at after the PATH: the working directory's, then the checkout's."""
    dirs = [Path.cwd() / "node_modules" / ".bin"]
    checkout = checkout_root()
    if checkout is not None:
        dirs.append(checkout / "node_modules" / ".bin")
    return list(dict.fromkeys(dirs))


def find_node_tool(name: str) -> Path:
    """The executable ``name``: on the PATH first, then in :func:`node_tool_dirs`."""
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    for directory in node_tool_dirs():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    package = NODE_PACKAGES.get(name, name)
    looked = ", ".join(str(d) for d in node_tool_dirs())
    raise NodeToolNotFound(
        f"{name} is not installed: it is not on the PATH, nor in {looked}. Install it with "
        f"`npm install {package}` (Node 20 or later) and put its node_modules/.bin on the PATH, or run "
        "`make setup` in the project checkout"
    )
