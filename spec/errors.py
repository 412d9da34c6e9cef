"""The base of the project's own errors: a user's bad input or a failed step, never a bug.

``cli.main`` catches ``MlopsError`` once and prints its message; anything else (a bug) keeps its traceback. It is not
a ``ValueError``, so a library's ``ValueError`` raised by a bug is not mistaken for a user error.
"""

from __future__ import annotations


class MlopsError(Exception):
    """An error the user can act on; its message says what is wrong and, where it can, what to do."""
