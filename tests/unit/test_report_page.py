"""The report as a package: its HTML escapes what it shows (Jinja2 autoescape), its templates ship in the wheel
(pyproject's package data), and the terminal summary imports neither matplotlib nor jinja2."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

from local.report import render_index

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "local" / "report" / "templates"


def test_text_from_the_replay_is_escaped_not_markup(tmp_path):
    # Given a replay whose event message, path and environment name hold markup
    data = {
        "env": "<b>prod</b>",
        "weeks": [{"week_start": "2013-01-07", "auc_loop": 0.7}],
        "events": [{"week_start": "2013-01-07", "kind": "rollback", "message": '<script>alert("v2")</script> & co'}],
        "paths": {"warehouse": "/tmp/<img src=x>"},
    }

    # When the page is written
    page = render_index(data, tmp_path).read_text(encoding="utf-8")

    # Then every one of them reads as text
    assert "<script>" not in page and "<img src=x>" not in page and "<b>prod</b>" not in page
    assert "<td>&lt;script&gt;alert(&#34;v2&#34;)&lt;/script&gt; &amp; co</td>" in page
    assert "<code>/tmp/&lt;img src=x&gt;</code>" in page
    assert "<title>&lt;b&gt;prod&lt;/b&gt; replay report</title>" in page


def test_every_template_is_package_data_of_the_wheel():
    # Given the templates beside local.report.page and pyproject's package data
    templates = sorted(p.relative_to(TEMPLATES.parent).as_posix() for p in TEMPLATES.rglob("*") if p.is_file())
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setuptools["package-data"]["local.report"]

    # Then each template matches a pattern, so an installed wheel renders the page as a checkout does
    assert {"templates/base.html", "templates/report.html", "templates/dashboard.html"} <= set(templates)
    assert [t for t in templates if not any(fnmatch.fnmatch(t, p) for p in patterns)] == []
    assert any(include.startswith("local") for include in setuptools["packages"]["find"]["include"])


def test_the_terminal_summary_imports_neither_matplotlib_nor_jinja2():
    code = (
        "import sys\n"
        "from local.report import summary_rows\n"
        "summary_rows({'env': 'prod', 'weeks': [{'week_start': '2013-01-07'}]})\n"
        "print(sorted(m for m in ('matplotlib', 'jinja2') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
