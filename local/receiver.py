"""A local webhook receiver: what a notification destination would be, on this machine.

An HTTP server on 127.0.0.1 (a free port unless one is given) that appends every POSTed JSON body, with the path
and the time it arrived, to a JSON-lines file, and answers 204 once the line is written (so a sender that got its
answer can read the file at once). A body that is not JSON gets a 400 and is not recorded.

    with WebhookReceiver(tmp / "received.jsonl") as receiver:
        evaluate_alerts(env, webhook_url=receiver.url)
        receiver.received()   # [{"path": "/alerts", "received_at": "...", "body": {...}}]

``python -m local.receiver FILE [--port N]`` runs one in the foreground (the demo's on-call channel).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
# A notification is small; a larger body is refused rather than read into memory.
MAX_BODY_BYTES = 1_000_000


class WebhookReceiver:
    """Start with ``start()`` or ``with``; ``url`` is where to POST (any path is accepted)."""

    def __init__(self, path: Path, port: int = 0, url_path: str = "/alerts") -> None:
        self.path = Path(path)
        self.url_path = url_path
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.url_path}"

    def start(self) -> WebhookReceiver:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._server = ThreadingHTTPServer((HOST, self._port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        logger.info("webhook receiver on %s, writing %s", self.url, self.path)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def received(self) -> list[dict[str, Any]]:
        """Every recorded request, oldest first."""
        with self._write_lock:
            lines = self.path.read_text().splitlines() if self.path.exists() else []
        return [json.loads(line) for line in lines if line.strip()]

    def record(self, url_path: str, body: Any) -> None:
        line = json.dumps({"path": url_path, "received_at": datetime.now(UTC).isoformat(), "body": body})
        with self._write_lock, self.path.open("a") as f:
            f.write(line + "\n")


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413, f"body over {MAX_BODY_BYTES} bytes")
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                self.send_error(400, f"the body is not JSON: {error}")
                return
            receiver.record(self.path, body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            logger.debug("webhook receiver: " + format, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.receiver", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="the JSON-lines file the bodies are appended to")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with WebhookReceiver(args.file, args.port) as receiver:
        print(receiver.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
