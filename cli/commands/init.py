"""`mlops init model NAME --problem classification|regression`: starts a model package with a working example.

It writes ``models/NAME/`` (``spec.py``: the declaration, ``spec.model.ModelSpec``; ``__init__.py``: the callables of
``jobs.platform.model``; ``data.py``: the example's data, label, row checks and estimator) and the model's own tests,
``tests/models/test_NAME.py``. The example runs on a small real data set that scikit-learn ships (so it works
offline), made into dated rows. The files are rendered from the templates of this package (``cli/templates/model``)
with ``string.Template``; they hold only the model's own code and import the platform's interface, so upgrading the
platform never means generating them again.

It then adds the model to dev in the project's config (``MODELS`` in ``spec/config/environments.py``), so
``mlops run model-training --env dev --model NAME`` runs it at once; promoting it to staging and prod is adding it
to their lines, by hand, in review.

A bad name (not a lowercase identifier, a Python keyword, a platform package's name, or a model that exists) is an
error that says what to write instead, and nothing is written: the files are rendered into a staging directory
beside ``models/`` and moved into place only once all of them are rendered, and the config is changed last (the
files are taken back if it cannot be).
"""

from __future__ import annotations

import argparse
import ast
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


# The project's config, under the root, and the environment a new model starts in.
CONFIG_FILE = "spec/config/environments.py"
CONFIG_MODELS = "MODELS"
FIRST_ENVIRONMENT = "dev"


@dataclass(frozen=True)
class Scaffold:
    """What `mlops init model` wrote: the model's package and its test module (and the config it changed)."""

    name: str
    problem: str
    package: Path
    test_module: Path
    config: Path | None = None

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
    config = root / CONFIG_FILE
    # Checked before anything is written: a config this command cannot change stops it here.
    configured = with_model_in_config(config.read_text(encoding="utf-8"), name) if config.is_file() else None
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
            if configured is not None:
                replaced = staging / "environments.py"
                replaced.write_text(configured, encoding="utf-8")
                os.replace(replaced, config)
        except OSError:
            if test_module.exists():
                os.rename(test_module, staging / test_module.relative_to(root))
            os.rename(package, staging / MODELS_PACKAGE / name)
            raise
    except BaseException:
        for folder in new_folders:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Scaffold(name, problem, package, test_module, config if configured is not None else None)


def with_model_in_config(text: str, name: str, environment: str = FIRST_ENVIRONMENT) -> str:
    """The config's text with model ``name`` added to the end of ``environment``'s entry of ``MODELS`` (unchanged
    when it is there already), written as ``ruff format`` writes it; a ``ScaffoldError`` when the entry is not a
    tuple literal this command can extend."""
    tree = ast.parse(text)
    entry = None
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == CONFIG_MODELS for t in targets) and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == environment:
                    entry = value
    if not isinstance(entry, ast.Tuple):
        raise ScaffoldError(
            f"{CONFIG_FILE} has no {CONFIG_MODELS} entry {environment!r} holding a tuple of models: add "
            f'"{name}" to the models of {environment} by hand, or restore the entry, then run this again'
        )
    items = [ast.get_source_segment(text, element) for element in entry.elts]
    names = [e.value if isinstance(e, ast.Constant) else None for e in entry.elts]
    if name in names:
        return text
    items.append(f'"{name}"')
    lines = text.splitlines(keepends=True)
    start, end = entry.lineno - 1, entry.end_lineno - 1
    head, tail = lines[start][: entry.col_offset], lines[end][entry.end_col_offset :]
    indent = " " * (len(head) - len(head.lstrip()))
    one_line = f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if len(head) + len(one_line) + len(tail.rstrip("\n")) <= 120 and "\n" not in "".join(items):
        replaced = head + one_line + tail
    else:
        body = "".join(f"{indent}    {item},\n" for item in items)
        replaced = f"{head}(\n{body}{indent}){tail}"
    return "".join(lines[:start]) + replaced + "".join(lines[end + 1 :])


def _destination(root: Path, path: str, name: str) -> Path:
    return root.joinpath(*path.replace("NAME", name).split("/"))


def _init_model(args: argparse.Namespace) -> int:
    from cli.main import console

    scaffold = scaffold_model(args.name, args.problem, args.root)
    out = console()
    out.print(f"Created the {scaffold.problem} model [bold]{scaffold.name}[/bold]:")
    for path in scaffold.files:
        out.print(f"  {path}")
    if scaffold.config is not None:
        out.print(f"  {scaffold.config} (added to the models of {FIRST_ENVIRONMENT})")
    else:
        out.print(f"  (no {CONFIG_FILE} under {args.root}: add the model to an environment's models there by hand)")
    out.print(
        "\nNext:\n"
        f"  1. Run its tests:  pytest -q tests/models/test_{scaffold.name}.py\n"
        f"  2. Train, validate and deploy it:\n"
        f"       mlops run model-training --env {FIRST_ENVIRONMENT} --model {scaffold.name}\n"
        f"  3. Add it to staging and prod in {CONFIG_FILE} ({CONFIG_MODELS}) when it is ready to move on.\n"
        "  See docs/bring-your-own-model.md."
    )
    return 0
