"""The base of the project's own errors: a user's bad input or a failed step, never a bug.

``cli.main`` catches ``MlopsError`` once and prints its message; anything else (a bug) keeps its traceback. It is not
a ``ValueError``, so a library's ``ValueError`` raised by a bug is not mistaken for a user error.
"""

from __future__ import annotations


class MlopsError(Exception):
    """An error the user can act on; its message says what is wrong and, where it can, what to do."""

    # What `mlops` exits with when this error stops a command: 1 (the command failed), or 2 where a command has said
    # 2 for it until now (the setup it needs is missing).
    exit_code: int = 1
