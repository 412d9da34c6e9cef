"""The gateway's bearer token: ``MLOPS_SERVING_TOKEN`` when set, else ``$MLOPS_HOME/serving/token``.

The token file is created on the gateway's first start (0600, a random URL-safe token) and read by `mlops predict`.
The token itself is never logged; only where it comes from.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from local.settings import SERVING_TOKEN_ENV, local_settings
from spec.errors import MlopsError

TOKEN_ENV = SERVING_TOKEN_ENV

logger = logging.getLogger(__name__)


class TokenError(MlopsError):
    """No usable serving token: none is set, or its file is empty."""

    exit_code = 2  # as `mlops predict` has always said it


@dataclass(frozen=True)
class Token:
    value: str = ""
    source: str = ""

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.value.encode())

    def __repr__(self) -> str:  # keeps the secret out of logs and tracebacks
        return f"Token(source={self.source!r})"


def token_file(serving_dir: Path) -> Path:
    return serving_dir / "token"


def _from_env() -> Token | None:
    value = local_settings().serving_token
    return Token(value, f"environment variable {TOKEN_ENV}") if value else None


def _read_file(path: Path) -> Token:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("token file %s is readable by others (mode %o); run: chmod 600 %s", path, mode, path)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise TokenError(f"token file {path} is empty; delete it to have the gateway create a new one")
    return Token(value, f"file {path}")


def server_token(serving_dir: Path) -> Token:
    """The token the gateway accepts; creates the token file (0600) when neither source exists."""
    if (token := _from_env()) is not None:
        return token
    path = token_file(serving_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    logger.info("created the serving token file %s (mode 600)", path)
    return _read_file(path)


def client_token(serving_dir: Path) -> Token:
    """The token a client sends: the same sources, never created here."""
    if (token := _from_env()) is not None:
        return token
    path = token_file(serving_dir)
    if not path.exists():
        raise TokenError(
            f"no serving token: set {TOKEN_ENV} or start the gateway once (`mlops serve`) to create {path}"
        )
    return _read_file(path)
