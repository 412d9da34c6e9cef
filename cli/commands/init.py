"""`mlops init model NAME --problem classification|regression`: starts a model package with a working example.

It writes ``models/NAME/`` (``spec.py``: the declaration, ``spec.model.ModelSpec``; ``__init__.py``: the callables of
``jobs.platform.model``; ``data.py``: the example's data, label, row checks and estimator) and the model's own tests,
``tests/models/test_NAME.py``. The example runs on a small real data set that scikit-learn ships (so it works
offline), made into dated rows. The files are rendered from the templates of this package (``cli/templates/model``)
with ``string.Template``; they hold only the model's own code and import the platform's interface, so upgrading the
platform never means generating them again.

A bad name (not a lowercase identifier, a Python keyword, a platform package's name, or a model that exists) is an
error that says what to write instead, and nothing is written: the files are rendered into a staging directory
beside ``models/`` and moved into place only once all of them are rendered.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

# spec.config before spec.model: spec.model imported first meets spec.config's import of it half-initialized.
from spec.base import IDENTIFIER
from spec.errors import MlopsError
from spec.model import MODELS_PACKAGE, PROBLEM_TYPES

# The platform's own packages: a model named like one would shadow it (or be shadowed) on import.
PLATFORM_PACKAGES = ("spec", "jobs", "local", "cli", "infra", "policies", "models")
# What a model's name must look like (spec.model checks it with the same pattern when it loads the model).
_NAME = re.compile(IDENTIFIER)
# Each file of the scaffold: its template (under cli/templates/model; PROBLEM is the problem type's folder) and where
# it goes under the project's root (NAME is the model's name).
_FILES = (
    ("common/__init__.py.tmpl", "models/NAME/__init__.py"),
    ("PROBLEM/spec.py.tmpl", "models/NAME/spec.py"),
    ("PROBLEM/data.py.tmpl", "models/NAME/data.py"),
    ("common/test_model.py.tmpl", "tests/models/test_NAME.py"),
)


class ScaffoldError(MlopsError):
    """The model cannot be scaffolded as asked (a bad or taken name, no project at the root): nothing was written."""


@dataclass(frozen=True)
class Scaffold:
    """What `mlops init model` wrote: the model's package and its test module."""

    name: str
    problem: str
    package: Path
    test_module: Path

    @property
    def files(self) -> tuple[Path, ...]:
        return (*sorted(self.package.iterdir()), self.test_module)


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init", help="start a new model package: `mlops init model NAME --problem ...`")
    kinds = init.add_subparsers(required=True, metavar="KIND")
    model = kinds.add_parser(
        "model", help="scaffold models/NAME/ with a working example on real data, and its tests in tests/models/"
    )
    model.add_argument("name", help="the model's name: a lowercase identifier, e.g. churn or demand_forecast")
    model.add_argument("--problem", required=True, choices=PROBLEM_TYPES, help="what the model predicts")
    model.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the project's root: the directory that holds models/ and tests/ (default: the current directory)",
    )
    model.set_defaults(func=_init_model)


def check_name(name: str, root: Path) -> None:
    """A ``ScaffoldError`` saying what to write instead when ``name`` cannot name a new model under ``root``."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"model name {name!r} is not a lowercase identifier (letters, digits and underscores, starting with a "
            f"letter): write it like {_suggest(name)!r}"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(
            f"model name {name!r} is a Python keyword, so models.{name} could not be imported: "
            f"choose another name, e.g. {name}_model"
        )
    if name in PLATFORM_PACKAGES:
        raise ScaffoldError(
            f"model name {name!r} is the name of a platform package ({', '.join(PLATFORM_PACKAGES)}): "
            f"choose another name, e.g. {name}_model"
        )
    for taken in (root / MODELS_PACKAGE / name, _destination(root, "tests/models/test_NAME.py", name)):
        if taken.exists() or taken.is_symlink():
            raise ScaffoldError(
                f"model name {name!r} is taken: {taken} exists; choose another name, or edit that model instead"
            )


def _suggest(name: str) -> str:
    """A lowercase identifier close to ``name``: lowercase, other characters as underscores, a letter first."""
    words = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    words = re.sub(r"^[0-9_]+", "", words)
    return words or "my_model"


def render(name: str, problem: str) -> dict[str, str]:
    """The scaffold's files for model ``name`` of problem type ``problem``: path under the root -> text."""
    if problem not in PROBLEM_TYPES:
        raise ScaffoldError(f"problem type {problem!r} is not one of {list(PROBLEM_TYPES)}")
    templates = resources.files("cli") / "templates" / "model"
    values = {"name": name, "problem": problem}
    rendered = {}
    for template, destination in _FILES:
        source = templates.joinpath(*template.replace("PROBLEM", problem).split("/"))
        text = Template(source.read_text(encoding="utf-8")).substitute(values)
        path = destination.replace("NAME", name)
        # A template that renders to invalid Python is a bug of this package: it must not reach a user's project.
        compile(text, path, "exec")
        rendered[path] = text
    return rendered


def scaffold_model(name: str, problem: str, root: Path) -> Scaffold:
    """Writes model ``name``'s package and tests under ``root`` (which holds ``models/``), all of them or none."""
    root = Path(root)
    if not (root / MODELS_PACKAGE / "__init__.py").is_file():
        raise ScaffoldError(
            f"{root.resolve()} holds no {MODELS_PACKAGE}/__init__.py: run `mlops init model` at the project's root "
            "(the directory that holds models/), or pass --root with it"
        )
    check_name(name, root)
    rendered = render(name, problem)
    package = root / MODELS_PACKAGE / name
    test_module = _destination(root, "tests/models/test_NAME.py", name)
    # Staged beside models/ (the same file system), so the moves below are renames: nothing half-written is left.
    staging = Path(tempfile.mkdtemp(prefix=".mlops-init-", dir=root))
    # The folders of the test module that do not exist yet (tests/models/, maybe tests/): removed again on failure.
    new_folders = [folder for folder in (test_module.parent, test_module.parent.parent) if not folder.exists()]
    try:
        for path, text in rendered.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        check_name(name, root)
        test_module.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging / MODELS_PACKAGE / name, package)
        try:
            os.rename(staging / test_module.relative_to(root), test_module)
        except OSError:
            os.rename(package, staging / MODELS_PACKAGE / name)
            raise
    except BaseException:
        for folder in new_folders:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Scaffold(name, problem, package, test_module)


def _destination(root: Path, path: str, name: str) -> Path:
    return root.joinpath(*path.replace("NAME", name).split("/"))


def _init_model(args: argparse.Namespace) -> int:
    from cli.main import console

    scaffold = scaffold_model(args.name, args.problem, args.root)
    out = console()
    out.print(f"Created the {scaffold.problem} model [bold]{scaffold.name}[/bold]:")
    for path in scaffold.files:
        out.print(f"  {path}")
    # One model per environment for now: the config is edited by hand (several models per environment come later).
    out.print(
        "\nNext:\n"
        f"  1. Run its tests:  pytest -q tests/models/test_{scaffold.name}.py\n"
        "  2. An environment runs one model for now: to run this one in dev, set\n"
        f'       "model_name": "{scaffold.name}",\n'
        '     in the "dev" entry of _OVERRIDES in spec/config/environments.py (this file is not changed for you).\n'
        "  3. Train, validate and deploy it:  mlops run model-training --env dev\n"
        "  See docs/bring-your-own-model.md."
    )
    return 0
