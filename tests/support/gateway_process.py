"""`mlops serve` as its own process, as a person runs it: started on a free loopback port, waited for until ready,
stopped as Ctrl-C stops it (SIGINT: a graceful shutdown that flushes the inference log)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    base: str
    exit_code: int | None = None  # set once the process has stopped


@contextmanager
def mlops_serve(*args: str, ready_timeout: float = 120.0) -> Iterator[Served]:
    """``mlops serve <args> --port <free port>`` running; its base URL, and after the block its exit code."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = Served(f"http://127.0.0.1:{port}")
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", *args, "--port", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                if httpx.get(f"{served.base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the gateway did not become ready"
            time.sleep(0.2)
        yield served
    finally:
        server.send_signal(signal.SIGINT)
        try:
            served.exit_code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
