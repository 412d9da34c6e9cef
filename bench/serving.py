"""Serving benchmark: the local gateway against MLflow's scoring server (`mlflow models serve`), same model, same
payload, same load generator, loopback only.

    python -m bench.serving [--requests 2000] [--concurrency 8] [--rows 1] [--home DIR]

Steps: train the project's model (its pipeline and signature, ``tests.support.serving_model``) on a few thousand
of its labelled examples and register it twice (champion and challenger) in a temporary
MLOPS_HOME (or reuse ``--home``); start `mlflow models serve --env-manager local` on the
champion, and `mlops serve` with a 90/10 champion/challenger split and inference logging on (once with
micro-batching, its default, and once without: ``--no-unbatched`` skips that one); warm them up; drive each with
``--requests`` requests at ``--concurrency`` for ``--rounds`` rounds, then sequentially; measure in-process
``predict`` on the same payload; stop the servers (SIGINT, as a person would) and check every request the gateways
answered is in the inference table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "dev"
TOKEN = "bench-token"
TRAIN_ROWS = 4000
HELD_OUT_ROWS = 200
# The split the benchmark serves whatever the environment's config says (dev gives the challenger no traffic).
CHALLENGER_PERCENT = 10


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 120.0, headers: dict | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, headers=headers, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f}s")


def drive(name: str, url: str, body: bytes, headers: dict, requests: int, concurrency: int) -> LoadResult:
    """``requests`` POSTs of ``body`` from ``concurrency`` threads, each with its own keep-alive connection."""
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [requests]

    def worker() -> None:
        nonlocal errors
        with httpx.Client(headers={**headers, "Content-Type": "application/json"}, timeout=30.0) as client:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                started = time.perf_counter()
                response = client.post(url, content=body)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(name, requests, concurrency, time.perf_counter() - started, latencies, errors)


def in_process_p50(model_uri: str, request: dict, iterations: int = 500) -> tuple[float, float]:
    """The pyfunc model's ``predict`` p50 on the parsed payload: with the OpenMP default, and with one OpenMP
    thread (as the gateway predicts, see ``local.serving.runtime.ThreadLimitedPredict``)."""
    import mlflow
    from threadpoolctl import threadpool_limits

    from local.serving.payload import InputSpec

    model = mlflow.pyfunc.load_model(model_uri)
    frame = InputSpec(model.metadata.get_input_schema()).parse(request)

    def p50() -> float:
        for _ in range(20):
            model.predict(frame)
        timings = []
        for _ in range(iterations):
            started = time.perf_counter()
            model.predict(frame)
            timings.append((time.perf_counter() - started) * 1000)
        return statistics.median(timings)

    default = p50()
    with threadpool_limits(limits=1, user_api="openmp"):
        one_thread = p50()
    return default, one_thread


MLFLOW = "mlflow models serve"
GATEWAY = "gateway"
UNBATCHED = "gateway, no batching"


@dataclass
class Server:
    command: list[str]
    url: str
    ready_url: str
    headers: dict
    process: subprocess.Popen | None = None

    def start(self, env: dict, output: dict) -> None:
        self.process = subprocess.Popen(self.command, env=env, **output)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGINT, as a person stopping it would: the gateway finishes requests and flushes its inference log."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _row(result: LoadResult) -> str:
    return (
        f"{result.name:<22} {result.concurrency:>4} {result.requests:>6} {result.rps:>9.1f} "
        f"{result.pct(0.5):>8.2f} {result.pct(0.99):>8.2f} {result.errors:>6}"
    )


def run(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["MLOPS_HOME"] = str(home)
    os.environ["MLOPS_SERVING_TOKEN"] = TOKEN
    from jobs.core.decisions import traffic_split
    from jobs.platform.serving import served_entities_for
    from local.adapters import LocalServing
    from local.paths import mlflow_tracking_uri, mlops_home, table_path
    from spec.config import ENVIRONMENTS
    from tests.support.serving_model import MODEL, register_champion_and_challenger

    # The model the benchmark trains is the flight-delay model; dev runs others beside it, so it is named.
    env = ENVIRONMENTS[ENV].with_model(MODEL)
    model_name = env.registered_model
    load_before = os.getloadavg()
    print(f"MLOPS_HOME={home}; load average before the run {load_before[0]:.2f}", flush=True)
    records = register_champion_and_challenger(
        model_name, train_rows=TRAIN_ROWS, held_out_rows=HELD_OUT_ROWS, seed=13, experiment="bench-serving"
    )
    request = {"dataframe_records": records[: args.rows]}
    body = json.dumps(request).encode()
    # What the deploy job does once version 1 is the champion and version 2 the challenger.
    LocalServing(mlops_home() / "serving").update_endpoint(
        env, served_entities_for(env, traffic_split("1", "2", CHALLENGER_PERCENT))
    )
    table = table_path(env.inference_table)
    shutil.rmtree(table, ignore_errors=True)

    bin_dir = str(Path(sys.executable).parent)
    child_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    child_env["MLFLOW_TRACKING_URI"] = mlflow_tracking_uri()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if not args.verbose else {}
    invocations = f"/serving-endpoints/{env.endpoint_name}/invocations"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    mlflow_port = _free_port()
    servers: dict[str, Server] = {
        MLFLOW: Server(
            [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", f"models:/{model_name}/1",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port)],
            f"http://127.0.0.1:{mlflow_port}/invocations",
            f"http://127.0.0.1:{mlflow_port}/health",
            {},
        ),
    }  # fmt: skip
    gateways = {GATEWAY: "64"} | ({UNBATCHED: "0"} if args.unbatched else {})
    for name, batch_rows in gateways.items():
        port = _free_port()
        servers[name] = Server(
            [sys.executable, "-m", "cli.main", "serve", "--env", ENV, "--model", MODEL, "--port", str(port),
             "--max-batch-rows", batch_rows],
            f"http://127.0.0.1:{port}{invocations}",
            f"http://127.0.0.1:{port}/ready",
            auth,
        )  # fmt: skip
    results: list[LoadResult] = []
    sent_to_gateways = 0  # every gateway logs to the same inference table
    try:
        for server in servers.values():
            server.start(child_env, quiet)
        for server in servers.values():
            _wait_http(server.ready_url, server.process)
        phases: list[tuple[str, int, int]] = [("warm-up", args.warmup, args.concurrency)]
        phases += [("load", args.requests, args.concurrency)] * args.rounds
        phases += [("sequential", args.sequential, 1)]
        for phase, count, concurrency in phases:
            for name, server in servers.items():
                result = drive(name, server.url, body, server.headers, count, concurrency)
                if name != MLFLOW:
                    sent_to_gateways += count
                if phase != "warm-up":
                    results.append(result)
        predict_p50, predict_p50_one_thread = in_process_p50(f"models:/{model_name}/1", request)
    finally:
        exit_codes = {name: server.stop() for name, server in servers.items()}

    from deltalake import DeltaTable

    logged = DeltaTable(str(table)).to_pyarrow_table().num_rows if table.exists() else 0
    print()
    print(
        f"payload: {args.rows} row(s) of held-out examples, {len(body)} bytes; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; client: httpx, one keep-alive connection per thread, same machine; "
        f"1-minute load average {load_before[0]:.2f} before the run, {os.getloadavg()[0]:.2f} after it"
    )
    print(f"{'server':<22} {'conc':>4} {'reqs':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for result in results:
        print(_row(result))

    def median_rps(name: str) -> float:
        return statistics.median(r.rps for r in results if r.name == name and r.concurrency > 1)

    def sequential_p50(name: str) -> float:
        return next(r for r in results if r.name == name and r.concurrency == 1).pct(0.5)

    print()
    print(
        f"in-process pyfunc predict p50 (same payload, parsed): {predict_p50:.2f} ms "
        f"({predict_p50_one_thread:.2f} ms with one OpenMP thread)"
    )
    for name in servers:
        ratio = median_rps(name) / median_rps(MLFLOW)
        print(
            f"{name:<22} {median_rps(name):7.1f} req/s at concurrency {args.concurrency} (median of {args.rounds}), "
            f"{ratio:.2f}x mlflow; sequential p50 {sequential_p50(name):.2f} ms = in-process predict "
            f"{sequential_p50(name) - predict_p50:+.2f} ms"
        )
    print(
        f"inference table {env.inference_table}: {logged} rows for {sent_to_gateways} gateway requests; "
        f"exit codes {exit_codes} (sent SIGINT; `mlops serve` exits 0 after its graceful shutdown)"
    )
    errors = sum(r.errors for r in results)
    if not args.home:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if errors == 0 and logged == sent_to_gateways else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per load round and server")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="load rounds per server, alternating servers")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=300, help="requests at concurrency 1, for p50 overhead")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--home", help="MLOPS_HOME to use and keep (reuses the registered model when present)")
    parser.add_argument(
        "--no-unbatched", dest="unbatched", action="store_false", help="skip the gateway run without micro-batching"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the servers' output")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds, args.sequential, args.rows) < 1:
        parser.error("--requests, --concurrency, --rounds, --sequential and --rows must be >= 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
