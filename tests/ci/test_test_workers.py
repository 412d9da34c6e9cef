"""`make test` runs the test files in worker processes (pytest-xdist, ``--dist loadfile``), with the fault suite as
one unit of work: its files share one session's champion (tests/faults/conftest.py), which a second worker would
train again."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import pytest_xdist_make_scheduler

ROOT = Path(__file__).resolve().parents[2]


class Options:
    """What xdist's schedulers read of pytest's config: the distribution mode and the workers (two here)."""

    def __init__(self, dist: str) -> None:
        self.values = {"dist": dist, "tx": ["2*popen"]}

    def getvalue(self, name: str) -> object:
        return self.values[name]


def test_the_fault_suite_is_one_unit_of_work_and_every_other_test_file_one_of_its_own():
    scope = pytest_xdist_make_scheduler(Options("loadfile"), None)._split_scope

    faults = {scope("tests/faults/test_production_loop.py::test_a"), scope("tests/faults/test_disk_and_state.py::t")}
    assert faults == {"tests/faults"}
    assert scope("tests/unit/test_files.py::test_a") == scope("tests/unit/test_files.py::test_b")
    assert scope("tests/unit/test_files.py::test_a") == "tests/unit/test_files.py"
    assert scope("tests/unit/test_report.py::test_a") != scope("tests/unit/test_files.py::test_a")


def test_another_distribution_mode_keeps_xdists_own_scheduler():
    assert pytest_xdist_make_scheduler(Options("load"), None) is None


def test_the_makefiles_test_targets_run_the_workers_a_file_at_a_time():
    makefile = (ROOT / "Makefile").read_text()
    pytest_line = re.search(r"^PYTEST := (.*)$", makefile, re.MULTILINE)
    assert pytest_line is not None, "the Makefile has no PYTEST command"
    assert "-n auto" in pytest_line.group(1) and "--dist loadfile" in pytest_line.group(1)
    for target in ("test", "test-unit", "test-integration"):
        recipe = re.search(rf"^{target}: setup\n\t(.*)$", makefile, re.MULTILINE)
        assert recipe is not None and recipe.group(1).startswith("$(PYTEST)"), f"make {target} does not run $(PYTEST)"
