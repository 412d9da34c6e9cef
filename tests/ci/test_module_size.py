"""No module of the platform is longer than one person can hold in their head: over ~600 lines, a module has
grown several concerns and is split (the monitor, the report, the demo and the config were)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ("spec", "jobs", "local", "cli", "infra", "policies")
MAX_LINES = 600


def test_no_module_of_the_platform_is_over_600_lines():
    modules = [path for package in PLATFORM for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(modules) > 50, "the platform's packages were not found"
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these modules by concern: {too_long}"
