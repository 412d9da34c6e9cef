"""The weekly-retraining reference's process takes only the CPU the replay leaves idle (``local.demo.references``):
Linux's idle scheduling class, nice 19 besides. Checked in a child process: a process cannot raise its priority back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import os
from local.demo.references import lowest_priority

lowest_priority()
print(os.sched_getscheduler(0) == os.SCHED_IDLE, os.nice(0))
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's scheduling classes only")
def test_the_reference_process_runs_in_the_idle_scheduling_class_at_nice_19():
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "19"], done.stderr
