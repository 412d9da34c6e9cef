"""The common shape of a job entry point: an argparse parser with ``--env``, logging, and clear failures.

A job's ``main(argv)`` parses its arguments (bad input: an argparse error, exit 2), builds the platform and calls
its work function. A ``JobError`` (bad input found while working: an empty window, an unknown model version) is
logged as one clear line and the job exits 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from spec.config import ENVIRONMENTS, ConfigError, Environment, get_environment
from spec.errors import MlopsError

logger = logging.getLogger("jobs")

DISTRIBUTION = "mlops-databricks"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class JobError(MlopsError):
    """The job cannot do what it was asked; the message says what and how to fix it."""


def iso_date(text: str) -> date:
    """argparse type: a calendar date written YYYY-MM-DD."""
    try:
        if not _ISO_DATE.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {text!r}") from None


def optional_iso_date(text: str) -> date | None:
    """argparse type: a date YYYY-MM-DD, or nothing (an empty job parameter) for None."""
    return iso_date(text) if text.strip() else None


def whole_number(minimum: int, unit: str | None = None) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum``; ``unit`` names it in the error ("a whole number of days")."""
    what = f"a whole number of {unit}" if unit else "an integer"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


positive_int = whole_number(1)


class _JobParser(argparse.ArgumentParser):
    """Refuses a ``--model`` the environment does not run as an argparse error (exit 2), naming the models it runs."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore
        parsed = super().parse_args(args, namespace)
        try:
            job_environment(parsed)
        except ConfigError as e:
            self.error(str(e))
        return parsed


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = _JobParser(prog=prog, description=description)
    parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS), help="the environment to run in")
    parser.add_argument(
        "--model", default=None, help="the model to run for (one of the environment's models; default: its first)"
    )
    return parser


def job_environment(args: argparse.Namespace) -> Environment:
    """The environment of ``--env`` as its model ``--model`` sees it (the first model when not given)."""
    return get_environment(args.env).with_model(getattr(args, "model", None))


def check_window(parser: argparse.ArgumentParser, start: date | None, end: date | None, what: str) -> None:
    """An argparse error when a date window ends before it starts."""
    if start is not None and end is not None and start > end:
        parser.error(f"{what} start {start} is after its end {end}")


def configure_logging() -> None:
    """Log to stderr unless the host (pytest, a notebook, the runner) already configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
    jobs_logger = logging.getLogger("jobs")
    if jobs_logger.level == logging.NOTSET:
        # What a job did (rows written, versions, decisions) is always worth telling.
        jobs_logger.setLevel(logging.INFO)


def run_job(name: str, work: Callable[[], int]) -> int:
    """Run ``work``; a JobError becomes one logged line and exit code 1."""
    configure_logging()
    try:
        return work()
    except JobError as e:
        logger.error("%s failed: %s", name, e)
        return 1


def exit_on_failure(code: int) -> None:
    """What a console-script entry point does with ``main``'s exit code. A `python_wheel_task` calls the entry
    point function and ignores what it returns: only an exception (SystemExit included) fails the task."""
    if code:
        raise SystemExit(code)


# `make wheel` writes the commit it builds from here, so a job running from the wheel knows its code's commit.
BUILD_COMMIT_FILE = Path(__file__).resolve().parents[1] / "BUILD_COMMIT"


def git_commit() -> str | None:
    """The commit of the code that runs: baked into the wheel by `make wheel`, or read from the git checkout."""
    if BUILD_COMMIT_FILE.exists():
        baked = BUILD_COMMIT_FILE.read_text().strip()
        if re.fullmatch(r"[0-9a-f]{40}", baked):
            return baked
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def code_version() -> str:
    """The installed package version of this project."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
