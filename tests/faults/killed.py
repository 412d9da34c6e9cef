"""Run a command of the project in this process and SIGKILL the process in the middle of it.

    python -m tests.faults.killed <module:attribute> <calls> <match> -- <entry point> [args...]

Before the command runs, ``<module:attribute>`` (a function or method, e.g. ``local.tables:LocalTables.write``) is
wrapped: after its ``<calls>``-th call whose arguments mention ``<match>`` ("" matches every call) has *returned*,
the process sends itself SIGKILL. That is a kill at a known point in the middle of a step (say, right after its
first commit), with no cleanup of any kind: no ``finally``, no ``atexit``, no flushed buffer, as when the machine's
OOM killer or a ``kill -9`` ends a job. The entry point is a ``[project.scripts]`` name (``mlops``,
``mlops-publish``, ...), called as its console script would be.

With ``MLOPS_FAULT_WARM=1`` the process starts its local Spark session first, says ``fault injection: ready`` on
stderr and waits for a line on stdin before it runs the command: the suite starts the processes it will kill while
it does other work, so that their Spark start-ups overlap instead of adding up.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from importlib import metadata

WARM_ENV = "MLOPS_FAULT_WARM"


def _wrap(target: str, calls: int, match: str) -> None:
    module_name, _, attribute = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    seen = 0

    @functools.wraps(original)
    def killing(*args, **kwargs):
        nonlocal seen
        result = original(*args, **kwargs)
        if match in repr(args) + repr(kwargs):
            seen += 1
            if seen >= calls:
                sys.stderr.write(f"fault injection: SIGKILL after call {seen} of {target} matching {match!r}\n")
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, killing)


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv[: argv.index("--")]) != 3:
        raise SystemExit(__doc__)
    target, calls, match = argv[: argv.index("--")]
    entry_point, *args = argv[argv.index("--") + 1 :]
    _wrap(target, int(calls), match)
    (found,) = metadata.entry_points(group="console_scripts", name=entry_point)
    command = found.load()
    if os.environ.get(WARM_ENV) == "1":
        from local.spark import local_spark

        local_spark()
        sys.stderr.write("fault injection: ready\n")
        sys.stderr.flush()
        if sys.stdin.readline().strip() != "go":
            return 3  # the suite did not need this process after all
    return int(command(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
