"""`mlops demo`: the README's main job. Synthesizes every environment and summarizes it, then runs the model
workflow on the local engines in dev, staging and prod (the same code in each: code moves, not models), and
prints the resulting model versions per environment."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from spec.config import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="synth summary, then the model workflow in every environment, locally")
    demo.add_argument("--skip-workflows", action="store_true", help="only synthesize and summarize the stacks")
    demo.add_argument("--env", action="append", choices=list(ENVIRONMENTS), help="limit to these environments")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from cli.commands.infra import print_summary, synthesize
    from cli.commands.models import print_versions
    from cli.commands.workflow import print_run, run_workflow
    from cli.main import console as cli_console

    console = cli_console()
    console.rule("1. Infrastructure: every environment synthesized to Terraform JSON")
    with tempfile.TemporaryDirectory(prefix="cdktf-") as tmp:
        print_summary(synthesize(Path(tmp)))
    if args.skip_workflows:
        return 0
    failed = []
    for name in args.env or list(ENVIRONMENTS):
        console.rule(f"2. The model workflow in {name}, on the local engines")
        run = run_workflow(name, "model-training", {})
        print_run(run)
        print_versions(name)
        if run.status != "SUCCESS":
            failed.append(name)
    if failed:
        console.print(f"[red]model-training failed in: {', '.join(failed)}[/red]")
        return 1
    serving_env = (args.env or list(ENVIRONMENTS))[0]
    console.rule(f"3. Serving the {serving_env} champion: `mlops serve`, one request, the inference table")
    return serve_one_request(serving_env, console)


EXAMPLE_REQUEST = Path(__file__).resolve().parents[2] / "examples" / "flight.json"


def serve_one_request(env_name: str, console, timeout_seconds: float = 120.0) -> int:
    """Starts the gateway as its own process (as a user would), sends the README's request, stops it, and counts
    the rows its inference table received."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx
    from deltalake import DeltaTable

    from local.paths import mlops_home, table_path
    from local.serving.auth import client_token

    env = ENVIRONMENTS[env_name]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--env", env_name, "--port", str(port)])
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                console.print(f"[red]the gateway did not become ready (exit code {server.poll()})[/red]")
                return 1
            time.sleep(0.5)
        token = client_token(mlops_home() / "serving").value
        response = httpx.post(
            f"{base}/serving-endpoints/{env.serving.endpoint_name}/invocations",
            content=EXAMPLE_REQUEST.read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
        )
        unauthenticated = httpx.post(f"{base}/serving-endpoints/{env.serving.endpoint_name}/invocations", json={})
        console.print(f"POST /serving-endpoints/{env.serving.endpoint_name}/invocations with {EXAMPLE_REQUEST.name}:")
        console.print(
            f"  {response.status_code}, answered by {response.headers.get('served-model-name')} "
            f"({response.headers.get('x-model-name')} v{response.headers.get('x-model-version')}): {response.text}"
        )
        console.print(f"  the same without a token: {unauthenticated.status_code} {unauthenticated.text}")
    finally:
        server.send_signal(signal.SIGINT)  # a clean shutdown flushes the inference log
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            console.print("[red]the gateway did not stop within 60 s and was killed[/red]")
            return 1
    table = env.inference_table
    rows = DeltaTable(str(table_path(table))).to_pyarrow_table(columns=["status_code"]).column("status_code")
    console.print(f"inference table {table}: {len(rows)} rows, status codes {sorted(set(rows.to_pylist()))}")
    return 0 if response.status_code == 200 else 1
