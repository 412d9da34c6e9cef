# Every target sets up what it needs: .venv and node_modules are created when missing and reused when present.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup test test-unit test-integration lint synth wheel demo policy clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[local,infra,dev]'
	@touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# The tests run in worker processes, a test file each (pytest-xdist: a worker per CPU, at most four; a file's module
# fixtures stay in one process). One file in this process: .venv/bin/pytest tests/unit/test_files.py
PYTEST := $(BIN)/pytest -q -n auto --maxprocesses=4 --dist loadfile

test: setup
	$(PYTEST)

test-unit: setup
	$(PYTEST) -m "not integration"

test-integration: setup
	$(PYTEST) -m integration

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

synth: setup
	cdktn synth --output cdktf.out

# The wheel the Databricks jobs install: only `jobs` and `spec` (runtime/wheel.py). It carries the commit it was built
# from (jobs/BUILD_COMMIT, inside the wheel only): lineage on Databricks; dist/BUILD_COMMIT tells the stacks which
# folder to upload it to.
wheel: setup
	rm -rf dist build && git rev-parse HEAD > jobs/BUILD_COMMIT
	$(BIN)/python runtime/wheel.py --out dist ; status=$$?; mv jobs/BUILD_COMMIT dist/BUILD_COMMIT; exit $$status

demo: setup
	$(BIN)/mlops demo --report report

policy: setup
	$(BIN)/mlops policy

clean:
	rm -rf cdktf.out .mlops .pytest_cache dist

# The local serving gateway against `mlflow models serve` (loopback only; figures go to docs/BENCHMARKS.md).
.PHONY: bench-serving
bench-serving: setup
	$(BIN)/python -m bench.serving

# Batch scoring on Spark against in-process predict and mlflow's spark_udf, streaming micro-batch latency, publish
# items/s (a temporary MLOPS_HOME; figures go to docs/BENCHMARKS.md). Shorter: make bench-inference ARGS="--rows 50000".
.PHONY: bench-inference
bench-inference: setup
	$(BIN)/python -m bench.inference $(ARGS)

# The local quality monitor at two sizes, and Evidently's DataDriftPreset (in a virtualenv of its own under
# .mlops/bench-venv, created once) on the same comparison; figures go to docs/BENCHMARKS.md.
.PHONY: bench-monitor
bench-monitor: setup
	$(BIN)/python -m bench.monitor

# The three benchmarks above at a tiny size, each to its end: CI runs this after the tests, so that a benchmark cannot
# stop working unnoticed (bench-serving once did). Figures of so few rows mean nothing; measure with the targets above.
.PHONY: bench-smoke
bench-smoke: setup
	$(BIN)/python -m bench.serving --requests 50 --rounds 1 --warmup 10 --sequential 20 --no-unbatched
	$(BIN)/python -m bench.inference --rows 2000 --rounds 1 --stream-days 2
	$(BIN)/python -m bench.monitor --sizes 2000,4000 --repeats 1

# Cold `build_app(outdir=...).synth()` of every stack: this checkout on CDK Terrain against commit a7f8515 on cdktf
# 0.21.0 (git archive + a virtualenv of its own under .mlops/bench-synth, made once), alternating, same node;
# figures go to docs/BENCHMARKS.md. Fewer rounds: make bench-synth ARGS="--rounds 3".
.PHONY: bench-synth
bench-synth: setup
	$(BIN)/python -m bench.synth $(ARGS)

# The fault-injection suite (tests/faults): each production step under a kill, a stopped DynamoDB, a failing writer,
# a corrupt state file, a full disk, two runs at once; one line per fault: injected, survived, rows lost, doubled.
.PHONY: bench-faults
bench-faults: setup
	@mkdir -p .mlops
	MLOPS_FAULT_REPORT=$(CURDIR)/.mlops/fault-report.txt $(BIN)/pytest -q -p no:cacheprovider -m faults tests/faults; \
	status=$$?; cat .mlops/fault-report.txt; exit $$status
