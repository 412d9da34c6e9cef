"""`mlops init model`: a bad name is refused with what to write instead and nothing written; a good one scaffolds a
package that loads through the model interface (its declaration valid, its callables there, its rows typed as
declared), for both problem types. The generated tests run on Spark in tests/integration/test_init_model.py."""

from __future__ import annotations

import ast
import os
import shutil
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

import models
from cli.commands import init
from cli.main import main
from jobs.platform.model import REQUIRED, load_model
from spec.model import PROBLEM_TYPES, load_model_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path) -> Path:
    """A project root with an empty models package and one existing model, flight_delay (a copy of its folder)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text('"""Models."""\n', encoding="utf-8")
    shutil.copytree(REPO / "models" / "flight_delay", tmp_path / "models" / "flight_delay")
    return tmp_path


@pytest.fixture
def importable(root, monkeypatch):
    """The root's models/ searched by `import models.<name>` too (after the project's own), then forgotten."""
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(root / "models")])
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("models."):
            del sys.modules[name]
    load_model_spec.cache_clear()
    load_model.cache_clear()


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("Churn", "is not a lowercase identifier (letters, digits and underscores, starting with a letter): "
                  "write it like 'churn'"),
        ("demand-forecast", "write it like 'demand_forecast'"),
        ("2nd_model", "write it like 'nd_model'"),
        ("my model", "write it like 'my_model'"),
        ("", "write it like 'my_model'"),
        ("class", "is a Python keyword, so models.class could not be imported: choose another name, e.g. class_model"),
        ("spec", "is the name of a platform package (spec, jobs, local, cli, infra, policies, models): "
                 "choose another name, e.g. spec_model"),
        ("models", "is the name of a platform package"),
        ("policies", "is the name of a platform package"),
        ("flight_delay", "is taken: "),
    ],
)  # fmt: skip
def test_a_bad_name_is_refused_saying_what_to_write_and_nothing_is_written(root, name, says):
    before = tree(root)
    with pytest.raises(init.ScaffoldError) as error:
        init.scaffold_model(name, "classification", root)
    assert says in str(error.value)
    assert f"model name {name!r}" in str(error.value)
    assert tree(root) == before


def test_a_name_whose_test_module_exists_is_taken(root):
    (root / "tests" / "models").mkdir(parents=True)
    (root / "tests" / "models" / "test_churn.py").write_text("", encoding="utf-8")
    before = tree(root)
    with pytest.raises(init.ScaffoldError, match=r"model name 'churn' is taken: .*test_churn.py exists"):
        init.scaffold_model("churn", "regression", root)
    assert tree(root) == before


def test_a_root_without_a_models_package_is_refused(tmp_path):
    with pytest.raises(init.ScaffoldError, match=r"holds no models/__init__.py: run `mlops init model` at the project"):
        init.scaffold_model("churn", "classification", tmp_path)
    assert tree(tmp_path) == []


def test_a_failure_while_moving_into_place_leaves_nothing(root, monkeypatch):
    before = tree(root)
    moves = []

    def rename(source, target):
        moves.append(Path(target))
        if Path(target).name.startswith("test_"):
            raise OSError("disk full")
        os.replace(source, target)

    monkeypatch.setattr(init.os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        init.scaffold_model("churn", "classification", root)
    assert moves[:2] == [root / "models" / "churn", root / "tests" / "models" / "test_churn.py"]
    assert tree(root) == before


def test_the_command_refuses_a_bad_name_on_one_line(root, capsys):
    assert main(["init", "model", "Churn", "--problem", "regression", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlops init: model name 'Churn' is not a lowercase identifier")
    assert "Traceback" not in err


def test_the_command_scaffolds_and_says_what_to_change_to_run_the_model(root, capsys):
    assert main(["init", "model", "churn", "--problem", "classification", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (root / "models" / "churn").iterdir()) == ["__init__.py", "data.py", "spec.py"]
    assert (root / "tests" / "models" / "test_churn.py").is_file()
    assert f"no spec/config/environments.py under {root}" in out
    assert "mlops run model-training --env dev --model churn" in out
    assert [p.name for p in root.iterdir() if p.name.startswith(".mlops-init-")] == []


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_the_rendered_files_import_the_platforms_interface_only(problem):
    rendered = init.render("churn", problem)
    assert sorted(rendered) == [
        "models/churn/__init__.py",
        "models/churn/data.py",
        "models/churn/spec.py",
        "tests/models/test_churn.py",
    ]
    interface = {"spec.model", "spec.columns", "jobs.platform.model"}
    outside = {"numpy", "pandas", "sklearn", "pyspark", "pytest"}
    for path, text in rendered.items():
        assert "$" not in text, path
        imported = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        project = {m for m in imported if m.split(".")[0] in init.PLATFORM_PACKAGES}
        assert project - {"models.churn.data", "models.churn.spec"} <= interface, path
        others = {m.split(".")[0] for m in imported - project}
        assert others <= outside | set(sys.stdlib_module_names), path


@pytest.mark.parametrize(("name", "problem"), [("churn_cls", "classification"), ("churn_reg", "regression")])
def test_a_scaffold_loads_through_the_model_interface_with_rows_typed_as_declared(importable, name, problem):
    scaffold = init.scaffold_model(name, problem, importable)
    assert scaffold.package == importable / "models" / name

    spec = load_model_spec(name)
    package = load_model(name)

    assert spec.name == name and spec.problem_type == problem
    assert package.spec is spec
    assert all(hasattr(package.module, attr) for attr in REQUIRED)
    assert spec.outputs == (("prediction", "probability") if problem == "classification" else ("prediction",))
    frames = package.load_sources(date(2013, 2, 1), date(2013, 2, 28))
    assert set(frames) == set(spec.sources)
    rows = frames[package.scored_source]
    assert 40 < len(rows) < 120
    assert rows[spec.event_date].map(type).eq(date).all()
    assert rows[spec.event_date].between(date(2013, 2, 1), date(2013, 2, 28)).all()
    assert str(rows[spec.event_time].dt.tz) == "UTC"
    assert (rows[spec.event_time].dt.date == rows[spec.event_date]).all()
    assert rows["patient_id"].is_unique
    for feature in spec.features:
        column = rows[feature.name]
        assert column.notna().all(), feature.name
        if feature.kind == "numeric":
            assert pd.api.types.is_float_dtype(column), feature.name
        else:
            assert column.map(type).eq(str).all(), feature.name
    assert set(spec.request_example) == set(spec.client_features)
    assert package.build_estimator(seed=3) is not None


@pytest.mark.parametrize("problem", PROBLEM_TYPES)
def test_the_rendered_files_pass_the_projects_linter(problem, tmp_path):
    # `make lint` checks the whole tree: a new model must not break it. Ruff sorts imports by where the modules are,
    # so the files are checked in a tree like the project's: its config, its packages, the scaffold.
    import subprocess

    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in init.PLATFORM_PACKAGES[:-1]:
        (tmp_path / package).symlink_to(REPO / package)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("", encoding="utf-8")
    rendered = init.render("churn", problem)
    for path, text in rendered.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    ruff = Path(sys.executable).parent / "ruff"
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(ruff), *command, *rendered], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_model_is_added_to_dev_in_the_config_written_as_ruff_writes_it(root):
    config = root / "spec" / "config" / "environments.py"
    config.parent.mkdir(parents=True)
    shutil.copy(REPO / init.CONFIG_FILE, config)
    before = config.read_text(encoding="utf-8")

    scaffold = init.scaffold_model("demand_forecast", "regression", root)

    after = config.read_text(encoding="utf-8")
    assert scaffold.config == config
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    (dev,) = [line for line in before.splitlines() if line.startswith('    "dev": (')]
    assert changed == [(dev, dev.replace("),", ', "demand_forecast"),'))]
    ast.parse(after)  # it still parses


def test_the_config_edit_keeps_ruff_format_stable_when_it_wraps_and_refuses_an_entry_it_cannot_extend():
    text = 'MODELS: dict = {\n    "dev": ("flight_delay",),\n    "prod": ("flight_delay",),\n}\n'
    for name in ("a_model_with_quite_a_long_name_number_one_x", "a_model_with_quite_a_long_name_number_two_x"):
        text = init.with_model_in_config(text, name)
    assert text == (
        "MODELS: dict = {\n"
        '    "dev": (\n'
        '        "flight_delay",\n'
        '        "a_model_with_quite_a_long_name_number_one_x",\n'
        '        "a_model_with_quite_a_long_name_number_two_x",\n'
        "    ),\n"
        '    "prod": ("flight_delay",),\n'
        "}\n"
    )
    assert init.with_model_in_config(text, "flight_delay") == text
    with pytest.raises(init.ScaffoldError, match="has no MODELS entry 'dev' holding a tuple of models"):
        init.with_model_in_config('MODELS = {"dev": ALL}\n', "churn")


def test_a_config_the_command_cannot_extend_stops_it_before_anything_is_written(root):
    config = root / "spec" / "config" / "environments.py"
    config.parent.mkdir(parents=True)
    config.write_text('MODELS = {"dev": list_of_models()}\n', encoding="utf-8")
    before = tree(root)
    with pytest.raises(init.ScaffoldError, match='add "churn" to the models of dev by hand'):
        init.scaffold_model("churn", "classification", root)
    assert tree(root) == before
