"""The jobs wheel on the Databricks computes the environments are configured to run on (``spec.config.RUNTIMES``).

What cannot run here is the runtime itself; what can is its Python and its preinstalled libraries, as its release
notes list them (runtime/*.txt, sources named in each file):
- serverless environment version 4: https://docs.databricks.com/aws/en/release-notes/serverless/environment-version/four
- Databricks Runtime 16.4 LTS ML: https://docs.databricks.com/aws/en/release-notes/runtime/16.4lts-ml
A job installs the wheel on top of them (a serverless environment dependency, or a cluster library): pip must accept
the wheel's Python requirement, must not have to change any preinstalled library, and every entry point must start.

The fast checks read pyproject.toml and the runtime files. The slow one builds the wheel, makes a virtualenv with the
runtime's Python (3.12), installs the wheel constrained to the runtime's versions, runs ``pip check``, then every job
entry point's ``--help`` and a model round trip (fit, log with the signature, register, load, predict) on the
runtime's MLflow.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from spec.config import ENVIRONMENTS, RUNTIMES, Runtime


def _load_wheel_builder():
    """runtime/wheel.py, the script `make wheel` runs (runtime/ is a folder of files, not a package)."""
    location = Path(__file__).resolve().parents[2] / "runtime" / "wheel.py"
    module_spec = importlib.util.spec_from_file_location("jobs_wheel_builder", location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


WHEEL_BUILDER = _load_wheel_builder()
build_jobs_wheel = WHEEL_BUILDER.build

pytestmark = pytest.mark.runtime

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SMOKE = ROOT / "tests" / "support" / "runtime_smoke.py"

# Runtime versions that PyPI publishes no wheel of for CPython 3.12 (Databricks builds its own), and the earliest
# release that has one, installed in their place. The range checks below still use the runtime's own version.
NO_CP312_WHEEL = {"pandas": ("1.5.3", "2.1.1")}
# A Databricks Runtime cluster's pyspark is Spark's own, not a pip package. To import the entry points there, the
# virtualenv gets Databricks Connect for the same runtime (its pyspark API) after `pip check`, without dependencies.
SPARK_STAND_IN = ("databricks-connect==16.4.2", "py4j==0.10.9.9")
# Preinstalled on every runtime and needed by pyspark's imports (its distutils shim); a Python 3.12 venv lacks it.
PREINSTALLED_TOOLS = ("setuptools",)
# What must never be a dependency of the wheel on Databricks: the runtime brings Spark; the rest is local or infra.
NOT_ON_THE_RUNTIME = ("pyspark", "cdktf", "fastapi", "uvicorn", "deltalake", "duckdb", "regopy", "rich")


def configured_runtimes() -> dict[str, Runtime]:
    keys = sorted({key for env in ENVIRONMENTS.values() for key in env.compute.runtime_keys})
    assert keys, "no environment configures a compute"
    return {key: RUNTIMES[key] for key in keys}


def runtime_pins(runtime: Runtime) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / runtime.libraries).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    assert pins, f"{runtime.libraries} lists no library"
    return pins


def base_requirements() -> list[Requirement]:
    requirements = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    assert requirements, "pyproject.toml declares no dependency"
    return requirements


RUNTIME_KEYS = list(configured_runtimes())


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_requires_python_admits_the_python_of_every_configured_compute(key):
    runtime = RUNTIMES[key]
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(runtime.python), (
        f"requires-python {PYPROJECT['project']['requires-python']} refuses Python {runtime.python} of {runtime.name}"
    )


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_every_dependency_the_runtime_preinstalls_is_admitted_at_the_runtime_version(key):
    runtime = RUNTIMES[key]
    pins = runtime_pins(runtime)
    preinstalled = {
        r.name: (r.specifier, pins[canonicalize_name(r.name)])
        for r in base_requirements()
        if canonicalize_name(r.name) in pins
    }
    # MLflow, the SDK and scikit-learn come with the runtime: the wheel must take them as they are.
    assert {"mlflow-skinny", "databricks-sdk", "scikit-learn", "pandas"} <= set(preinstalled)
    refused = {
        n: f"{spec} refuses {version}" for n, (spec, version) in preinstalled.items() if not spec.contains(version)
    }
    assert refused == {}, f"{runtime.name}: {refused}"


def test_the_wheel_needs_no_spark_no_cdktf_and_no_local_engine():
    names = {canonicalize_name(r.name) for r in base_requirements()}
    assert names.isdisjoint(NOT_ON_THE_RUNTIME), sorted(names & set(NOT_ON_THE_RUNTIME))


def top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist() if "/" in name and ".dist-info/" not in name}


def test_the_jobs_wheel_carries_only_the_job_runtime_and_its_spec(wheel):
    assert top_level_names(wheel) == {"jobs", "models", "spec"} == set(WHEEL_BUILDER.PACKAGES)
    scripts = job_entry_points(wheel)
    assert "mlops" not in scripts and set(scripts) >= {"mlops-train", "mlops-refresh-monitors"}
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "mlops_databricks.platforms" not in entry_points, "the local platform is not on Databricks"


@pytest.mark.parametrize("libraries", sorted({RUNTIMES[key].libraries for key in RUNTIMES}))
def test_no_top_level_name_of_the_jobs_wheel_is_a_library_of_a_runtime(libraries):
    names = {canonicalize_name(line.partition("==")[0]) for line in (ROOT / libraries).read_text().splitlines()}
    names.discard(canonicalize_name(""))
    assert len(names) > 100, f"{libraries} lists too few libraries to be a runtime's list"
    taken = {p for p in WHEEL_BUILDER.PACKAGES if canonicalize_name(p) in names}
    assert taken == set(), f"{libraries} preinstalls {sorted(taken)}: the wheel's package would shadow or be shadowed"


def test_the_configured_computes_are_serverless_environment_4_and_dbr_16_4_lts_ml():
    assert RUNTIME_KEYS == ["16.4.x-cpu-ml-scala2.12", "serverless-environment-4"]
    assert {key: str(runtime_pins(RUNTIMES[key])[canonicalize_name("mlflow-skinny")]) for key in RUNTIME_KEYS} == {
        "16.4.x-cpu-ml-scala2.12": "2.21.3",
        "serverless-environment-4": "2.22.0",
    }
    assert runtime_pins(RUNTIMES["serverless-environment-4"])[canonicalize_name("databricks-connect")].major == 17


def test_a_range_that_refuses_the_runtime_version_is_reported():
    """The check above can fail: a floor above the runtime's MLflow is named with both versions."""
    spec, version = SpecifierSet(">=3"), runtime_pins(RUNTIMES[RUNTIME_KEYS[0]])[canonicalize_name("mlflow-skinny")]
    assert not spec.contains(version) and str(version) == "2.21.3"


# ---- the wheel in a virtualenv with the runtime's Python and libraries ---------------------------------------------


def find_python(version: str) -> str:
    """An interpreter of ``version``'s major.minor: on PATH, or one of pyenv's installed versions."""
    minor = ".".join(version.split(".")[:2])
    candidates = [shutil.which(f"python{minor}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    pytest.fail(f"no working python{minor} on PATH or under ~/.pyenv/versions: the runtime test needs it")


def run(command: list[str], cwd: Path) -> str:
    # Nothing of this process's state (MLflow's experiment, a Databricks host, a venv) may reach the runtime's venv.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        and not k.startswith(("MLFLOW_", "DATABRICKS_", "MLOPS_"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The jobs wheel, as `make wheel` builds it (runtime/wheel.py)."""
    return build_jobs_wheel(tmp_path_factory.mktemp("dist"))


def job_entry_points(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(name).decode()
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    names = [line.split("=")[0].strip() for line in section.splitlines() if line.strip().startswith("mlops-")]
    assert names, "the wheel declares no job entry point"
    return names


# Which installed distributions provide each of the wheel's top-level names (two would mean one shadows the other).
PROVIDERS = (
    "import json, importlib.metadata as m; found = m.packages_distributions(); "
    f"print(json.dumps({{name: sorted(set(found.get(name, []))) for name in {list(WHEEL_BUILDER.PACKAGES)!r}}}))"
)


def install(key: str, wheel: Path, workdir: Path) -> dict:
    """A virtualenv with ``key``'s Python and libraries plus the wheel; what each check saw, by name."""
    runtime = RUNTIMES[key]
    venv = workdir / "venv"
    run([find_python(runtime.python), "-m", "venv", str(venv)], workdir)
    bin_dir = venv / "bin"
    constraints = workdir / "constraints.txt"
    lines = []
    for line in (ROOT / runtime.libraries).read_text().splitlines():
        name, _, version = line.partition("==")
        substitute = NO_CP312_WHEEL.get(canonicalize_name(name))
        lines.append(f"{name}=={substitute[1]}" if substitute and substitute[0] == version else line)
    constraints.write_text("\n".join(lines) + "\n")
    requirements = [str(wheel), *PREINSTALLED_TOOLS] + ([runtime.spark_package] if runtime.spark_package else [])
    run([str(bin_dir / "pip"), "install", "--quiet", "-c", str(constraints), *requirements], workdir)
    seen = {"pip check": run([str(bin_dir / "pip"), "check"], workdir).strip()}
    if runtime.spark_package is None:
        run([str(bin_dir / "pip"), "install", "--quiet", "--no-deps", *SPARK_STAND_IN], workdir)
    frozen = run([str(bin_dir / "pip"), "freeze"], workdir)
    seen["versions"] = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$", frozen, flags=re.MULTILINE))
    seen["help"] = {ep: run([str(bin_dir / ep), "--help"], workdir) for ep in job_entry_points(wheel)}
    seen["providers"] = json.loads(run([str(bin_dir / "python"), "-c", PROVIDERS], workdir))
    seen["smoke"] = json.loads(run([str(bin_dir / "python"), str(SMOKE)], workdir).strip().splitlines()[0])
    return seen


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict[str, dict]:
    """Every configured runtime's virtualenv, built side by side (mostly downloads and unpacking)."""
    unique = {RUNTIMES[key].libraries: key for key in RUNTIME_KEYS}
    with ThreadPoolExecutor(max_workers=len(unique)) as pool:
        futures = {
            libraries: pool.submit(install, key, wheel, tmp_path_factory.mktemp(key.replace(".", "_")))
            for libraries, key in unique.items()
        }
        return {key: futures[RUNTIMES[key].libraries].result() for key in RUNTIME_KEYS}


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_the_wheel_installs_on_the_runtime_without_changing_its_libraries(installed, key):
    seen = installed[key]
    assert seen["pip check"] == "No broken requirements found."
    pins = runtime_pins(RUNTIMES[key])
    versions = {canonicalize_name(n): Version(v) for n, v in seen["versions"].items()}
    names = ["mlflow-skinny", "databricks-sdk", "scikit-learn", "pandas", "numpy", "pyarrow", "boto3"]
    if RUNTIMES[key].spark_package:
        names.append(canonicalize_name(RUNTIMES[key].spark_package))
    expected = {name: pins[name] for name in names}
    for name, (pinned, substitute) in NO_CP312_WHEEL.items():
        if expected.get(name) == Version(pinned):
            expected[name] = Version(substitute)
    assert {name: versions.get(name) for name in expected} == expected
    assert canonicalize_name("mlflow") not in versions, "the full mlflow distribution was pulled in"


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_only_the_jobs_wheel_provides_its_top_level_names_on_the_runtime(installed, key):
    assert installed[key]["providers"] == {name: ["mlops-databricks"] for name in WHEEL_BUILDER.PACKAGES}


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_every_job_entry_point_starts_on_the_runtime(installed, key):
    helps = installed[key]["help"]
    assert set(helps) >= {"mlops-ingest", "mlops-features", "mlops-train", "mlops-validate", "mlops-deploy"}
    for entry_point, text in helps.items():
        assert text.startswith(f"usage: {entry_point} "), text


@pytest.mark.parametrize("key", RUNTIME_KEYS)
def test_the_model_logs_registers_and_loads_with_the_runtime_mlflow(installed, key):
    smoke = installed[key]["smoke"]
    mlflow = str(runtime_pins(RUNTIMES[key])[canonicalize_name("mlflow-skinny")])
    assert (smoke["mlflow"], smoke["version"], smoke["predictions"]) == (mlflow, "1", 50)
    assert smoke["roc_auc"] > 0.8
