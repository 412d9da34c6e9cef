"""Synth benchmark: every environment's stacks synthesized by the current code on CDK Terrain (cdktn) against the
same by the last commit on cdktf, each run a cold process, the two alternating.

    python -m bench.synth [--rounds 5] [--old a7f8515] [--new REF] [--node PATH]

Steps:

1. The old side: commit ``--old`` (the last on cdktf 0.21.0, cdktf-cdktf-provider-databricks 15.16.1 = provider
   1.99.0, cdktf-cdktf-provider-azurerm 14.23.1) is extracted with ``git archive`` into ``.mlops/bench-synth/old``
   and installed (``pip install -e --no-deps``: its stacks read the distribution's version) in a virtualenv of its
   own, ``.mlops/bench-synth/venv-cdktf``, with those bindings; both are made once and reused while the commit
   and the pins are the same.
2. The new side: this checkout as it is (uncommitted changes under infra/ and spec/ included, and reported), or
   with ``--new REF`` that commit's tree (``git archive`` into ``.mlops/bench-synth/new``: the same code as the
   old side's when REF only moved the toolchain), in the interpreter running the benchmark (the project's .venv:
   cdktn 0.24.0, cdktn-provider-databricks 18.11.0 = provider 1.138.0, cdktn-provider-azurerm 18.9.0).
3. One run is what ``cdktn synth`` starts (``python -m infra.main`` in the project directory): a fresh Python
   process, the checkout's directory first on sys.path, that imports ``infra.main`` (the bindings, and the jsii
   kernel's Node process they start), calls ``build_app(outdir=...).synth()`` into a temporary directory and
   exits (the jsii kernel shuts down). Wall time is taken around the whole subprocess; CPU time (user + system)
   is wait4's for it, which counts the Node processes it reaped, and moves less than wall time when the machine is
   loaded. The run times its phases too: the import, ``build_app`` and ``synth()``. Peak RSS is each process's
   own high-water mark (VmHWM), read by the run just before it exits: the Python process and the jsii Node
   processes under it, summed (they live side by side, so the sum bounds the tree's peak from above). Both sides
   use the same node binary (``--node``, else the ``node`` on PATH), passed to jsii as JSII_NODE.
4. One untimed run per side first (bytecode and the page cache), then ``--rounds`` rounds, each one run per side,
   the order alternating round to round (old-new, new-old, ...) so that the machine's other load weighs on both.
   Each side's synthesized stacks and resource counts are printed, so the two are seen to build the same thing.

The last line is ``new/old: wall median X.XX, CPU median Y.YY, peak RSS median Z.ZZ``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".mlops" / "bench-synth"
OLD_COMMIT = "a7f8515"
OLD_PINS = (
    "cdktf==0.21.0",
    "cdktf-cdktf-provider-databricks==15.16.1",
    "cdktf-cdktf-provider-azurerm==14.23.1",
    "constructs>=10.3,<11",
)
BINDINGS = {
    "old": ("cdktf", "cdktf-cdktf-provider-databricks", "cdktf-cdktf-provider-azurerm", "constructs"),
    "new": ("cdktn", "cdktn-provider-databricks", "cdktn-provider-azurerm", "constructs"),
}
# Runs in both virtualenvs: loads this file by path (it imports only the standard library at module level) and calls
# worker() with the checkout as the working directory, first on sys.path as with `python -m infra.main`.
WORKER = (
    "import importlib.util as u, sys; s = u.spec_from_file_location('bench_synth', sys.argv[1]); "
    "m = sys.modules['bench_synth'] = u.module_from_spec(s); s.loader.exec_module(m); m.worker(sys.argv[2])"
)


def _log(message: str) -> None:
    print(message, flush=True)


# --- One run, inside the subprocess -------------------------------------------------------------------------------


def _high_water_kib(pid: int | str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # exited since it was listed
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_descendants(int(child))]
    except FileNotFoundError:  # exited since it was listed
        pass
    return out


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return "?"


def worker(outdir: str) -> None:
    """Synthesizes every stack as `cdktn synth` has the app do it, and prints the phases and peak RSS as JSON."""
    started = time.perf_counter()
    from infra.main import build_app

    imported = time.perf_counter()
    app = build_app(outdir=outdir)
    built = time.perf_counter()
    app.synth()
    synthesized = time.perf_counter()
    children = {pid: (_command(pid), _high_water_kib(pid)) for pid in _descendants(os.getpid())}
    result = {
        "import": imported - started,
        "build": built - imported,
        "synth": synthesized - built,
        "python_kib": _high_water_kib("self"),
        "children": [{"command": command, "kib": kib} for command, kib in children.values()],
    }
    print("BENCH-SYNTH " + json.dumps(result), flush=True)


# --- The two sides ------------------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    python: Path
    root: Path
    label: str
    runs: list[dict] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [run[key] for run in self.runs]


def checkout(commit: str, name: str) -> Path:
    """A commit's tree under .mlops/bench-synth/<name>, extracted with `git archive` once per commit."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    root, marker = HOME / name, HOME / f"{name}.commit"
    if root.is_dir() and marker.exists() and marker.read_text().strip() == full:
        return root
    _log(f"extracting {full[:12]} into {root} (once)")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", full], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    marker.write_text(full)
    if name == "old":  # the cdktf venv holds the previous checkout's project
        (HOME / "venv-cdktf" / ".installed").unlink(missing_ok=True)
    return root


def old_python(root: Path) -> Path:
    """The cdktf virtualenv, created on first use: the old bindings, and the old checkout's project (no deps)."""
    venv = HOME / "venv-cdktf"
    python, marker = venv / "bin" / "python", venv / ".installed"
    wanted = [*OLD_PINS, f"-e {root}"]
    if python.exists() and marker.exists() and marker.read_text().splitlines() == wanted:
        return python
    _log(f"creating {venv} with {' '.join(OLD_PINS)} and {root} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *OLD_PINS], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(root)], check=True)
    marker.write_text("\n".join(wanted) + "\n")
    return python


def versions(python: Path, names: tuple[str, ...]) -> str:
    code = "import sys, importlib.metadata as m; print(' '.join(n + ' ' + m.version(n) for n in sys.argv[1:]))"
    return subprocess.run([str(python), "-c", code, *names], check=True, capture_output=True, text=True).stdout.strip()


def run_once(side: Side, environ: dict[str, str]) -> dict:
    outdir = Path(tempfile.mkdtemp(prefix=f"bench-synth-{side.name}-"))
    try:
        command = [str(side.python), "-c", WORKER, str(Path(__file__).resolve()), str(outdir)]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=side.root, env=environ, stdout=subprocess.PIPE, text=True)
        stdout = process.stdout.read()
        # wait4: the CPU time of the process and of the descendants it reaped (the jsii Node processes)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        if process.returncode != 0:
            raise SystemExit(f"bench.synth: the {side.name} side's synth failed (exit {process.returncode})")
        lines = [line for line in stdout.splitlines() if line.startswith("BENCH-SYNTH ")]
        if not lines:
            raise SystemExit(f"bench.synth: the {side.name} side's synth printed no result:\n{stdout}")
        result = json.loads(lines[-1].removeprefix("BENCH-SYNTH "))
        node_kib = sum(child["kib"] for child in result["children"])
        result.update(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            node_kib=node_kib,
            rss_mib=(result["python_kib"] + node_kib) / 1024,
            stacks=stack_counts(outdir),
        )
        return result
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def stack_counts(outdir: Path) -> dict[str, int]:
    """Resources per synthesized stack (from the manifest cdktf and cdktn both write)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    counts = {}
    for name, stack in manifest["stacks"].items():
        config = json.loads((outdir / stack["synthesizedStackPath"]).read_text())
        counts[name] = sum(len(of_type) for of_type in config.get("resource", {}).values())
    return counts


# --- The run ------------------------------------------------------------------------------------------------------


def _fmt_stacks(counts: dict[str, int]) -> str:
    per_stack = ", ".join(f"{name} {n}" for name, n in counts.items())
    return f"{len(counts)} stacks, {sum(counts.values())} resources ({per_stack})"


def run(args: argparse.Namespace) -> int:
    node = shutil.which(args.node) if args.node else shutil.which("node")
    if node is None:
        raise SystemExit("bench.synth: no node on PATH (or --node)")
    node = str(Path(node).resolve())
    node_version = subprocess.run([node, "--version"], check=True, capture_output=True, text=True).stdout.strip()
    root = checkout(args.old, "old")
    old = Side("old", old_python(root), root, f"commit {(HOME / 'old.commit').read_text()[:7]}")
    if args.new:
        root_new = checkout(args.new, "new")
        new = Side("new", Path(sys.executable), root_new, f"commit {(HOME / 'new.commit').read_text()[:7]}")
        changed = []
    else:
        head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "infra", "spec"], cwd=REPO,
                               capture_output=True, text=True).stdout.split("\n")  # fmt: skip
        changed = sorted({line[3:] for line in dirty if line.strip()})
        new = Side("new", Path(sys.executable), REPO, f"this checkout at {head.stdout.strip()}")
    sides = (old, new)

    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "JSII_", "CDKTF_"))}
    environ.update(JSII_NODE=node, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=node_version.lstrip("v").split(".")[0])
    load_before = os.getloadavg()
    _log(
        f"{datetime.now():%Y-%m-%d %H:%M} (machine clock); python {sys.version.split()[0]}, node {node_version} "
        f"({node}), {os.cpu_count()} CPUs; load average before the run {load_before[0]:.2f} (1 min), "
        f"{load_before[1]:.2f} (5 min)"
    )
    uncommitted = f"; uncommitted changes in {', '.join(changed)}" if changed else ""
    _log(f"old: {versions(old.python, BINDINGS['old'])}; code of {old.label} ({root})")
    _log(f"new: {versions(new.python, BINDINGS['new'])}; code of {new.label}{uncommitted} ({new.root})")

    warm = {side.name: run_once(side, environ) for side in sides}  # bytecode, page cache: not counted
    for side in sides:
        _log(f"{side.name}: {_fmt_stacks(warm[side.name]['stacks'])}; warm-up run {warm[side.name]['wall']:.2f}s")
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else reversed(sides):
            result = run_once(side, environ)
            side.runs.append(result)
            _log(
                f"round {round_ + 1} {side.name}: {result['wall']:.2f}s, CPU {result['cpu']:.2f}s (import "
                f"{result['import']:.2f}s, build {result['build']:.2f}s, synth {result['synth']:.2f}s), "
                f"peak RSS {result['rss_mib']:.0f} MiB "
                f"(python {result['python_kib'] / 1024:.0f} + node {result['node_kib'] / 1024:.0f})"
            )
    load_after = os.getloadavg()

    median = statistics.median
    _log("")
    _log(f"cold `build_app(outdir=...).synth()` of every stack, {args.rounds} runs per side, alternating")
    _log(f"{'':<40} {'old (cdktf 0.21.0)':>20} {'new (cdktn 0.24.0)':>20} {'new/old':>8}")
    rows = [
        ("wall s, median", "wall", median, "{:.2f}"),
        ("wall s, min", "wall", min, "{:.2f}"),
        ("CPU s (user+sys, python+node), median", "cpu", median, "{:.2f}"),
        ("CPU s (user+sys, python+node), min", "cpu", min, "{:.2f}"),
        ("  import infra.main s, median", "import", median, "{:.2f}"),
        ("  build_app s, median", "build", median, "{:.2f}"),
        ("  synth() s, median", "synth", median, "{:.2f}"),
        ("peak RSS MiB (python+node), median", "rss_mib", median, "{:.0f}"),
        ("peak RSS MiB (python+node), max", "rss_mib", max, "{:.0f}"),
        ("  python MiB, median", "python_kib", lambda v: median(v) / 1024, "{:.0f}"),
        ("  node MiB, median", "node_kib", lambda v: median(v) / 1024, "{:.0f}"),
    ]
    figures = {}
    for label, key, reduce, fmt in rows:
        a, b = reduce(old.values(key)), reduce(new.values(key))
        figures[label] = (a, b)
        _log(f"{label:<40} {fmt.format(a):>20} {fmt.format(b):>20} {b / a:>8.2f}")
    for side in sides:
        _log(f"{side.name} wall s: " + ", ".join(f"{w:.2f}" for w in side.values("wall")))
    _log(f"load average before the run {load_before[0]:.2f}, after it {load_after[0]:.2f}")
    wall_old, wall_new = figures["wall s, median"]
    rss_old, rss_new = figures["peak RSS MiB (python+node), median"]
    cpu_old, cpu_new = figures["CPU s (user+sys, python+node), median"]
    _log(
        f"new/old: wall median {wall_new / wall_old:.2f}, CPU median {cpu_new / cpu_old:.2f}, "
        f"peak RSS median {rss_new / rss_old:.2f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per side, interleaved")
    parser.add_argument("--old", default=OLD_COMMIT, help="the commit on cdktf to compare against")
    parser.add_argument("--new", help="a commit on cdktn to measure instead of this checkout as it is")
    parser.add_argument("--node", help="the node binary both sides' jsii use (default: node on PATH)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
