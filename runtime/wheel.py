"""Build the wheel the Databricks jobs install: the job runtime (``jobs``), the models it runs (``models``) and the spec
it reads (``spec``), nothing else.

The repository's own ``pyproject.toml`` installs everything (the local engines, the CLI, the stacks) for this machine.
On Databricks only the jobs run, so their wheel carries only their code, its job entry points (``mlops-*``) and the
dependencies the runtime must satisfy; not the ``mlops`` command, not the local platform's entry point. It keeps the
project's distribution name and version, which the stacks' ``python_wheel_task`` names.

    python runtime/wheel.py --out dist
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The top-level packages the jobs import: tests/runtime checks that no runtime library installs these names.
PACKAGES = ("jobs", "models", "spec")
PACKAGE_DATA = {"jobs": ["BUILD_COMMIT"]}


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def pyproject_text(project: dict) -> str:
    """The jobs wheel's pyproject.toml, from the repository's: same name, version, Python range and dependencies."""
    scripts = {name: target for name, target in project["scripts"].items() if target.startswith("jobs.")}
    if not scripts:
        raise SystemExit("pyproject.toml declares no job entry point (a [project.scripts] target in jobs.*)")
    lines = [
        "[build-system]",
        'requires = ["setuptools>=68", "wheel"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{project["name"]}"',
        f'version = "{project["version"]}"',
        f'description = "{project["description"]} (the Databricks jobs only)"',
        f'requires-python = "{project["requires-python"]}"',
        f"dependencies = {_toml_list(project['dependencies'])}",
        "",
        "[project.scripts]",
        *(f'{name} = "{target}"' for name, target in sorted(scripts.items())),
        "",
        "[tool.setuptools.packages.find]",
        f"include = {_toml_list([f'{package}*' for package in PACKAGES])}",
        "",
        "[tool.setuptools.package-data]",
        *(f"{package} = {_toml_list(files)}" for package, files in PACKAGE_DATA.items()),
    ]
    return "\n".join(lines) + "\n"


def build(out: Path, python: str = sys.executable) -> Path:
    """Stage the job packages with the generated pyproject.toml in a fresh folder (setuptools' build/ folder would
    keep deleted modules) and build the wheel into ``out``; returns its path."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobs-wheel-") as staging:
        source = Path(staging)
        for package in PACKAGES:
            shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
        (source / "pyproject.toml").write_text(pyproject_text(project))
        before = set(out.glob("*.whl"))
        subprocess.run(
            [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check", "--wheel-dir",
             str(out), str(source)],
            check=True,
        )  # fmt: skip
    name = f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"
    built = out / name
    if not built.exists():
        raise SystemExit(f"pip wheel wrote no {name} into {out} (it holds {sorted(p.name for p in before)})")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder to write the wheel to")
    args = parser.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
