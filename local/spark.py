"""The local Spark session: one cached ``local[2]`` session per process, bound to loopback.

Starting a local session takes seconds, so a process starts at most one and every job in it shares it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

LOCAL_MASTER = "local[2]"
LOCAL_SHUFFLE_PARTITIONS = 4
# The throughput collector: the local jobs keep the two CPUs busy, and G1's concurrent work (Java 17's default)
# competed with them: 5% longer in a short demo (docs/BENCHMARKS.md, "the Spark JVM's garbage collector").
DRIVER_JAVA_OPTIONS = "-XX:+UseParallelGC"
# Spark's code generation off: whole-stage codegen, and the generated projections and predicates (Spark's internal
# ``spark.sql.codegen.factoryMode``; NO_CODEGEN takes the interpreted path Spark falls back to when codegen fails). The
# local jobs run many small queries, each with classes of its own (a date literal is part of the generated code),
# which Janino compiles and the JIT then compiles again; the interpreted evaluators are Spark's own classes, compiled
# once. The JIT's compiler threads were the JVM's largest consumer of CPU in a short demo; without code generation a
# short demo's weeks took 7% less and the year 6% less (docs/BENCHMARKS.md, "Spark without generated code").
# Databricks computes keep their defaults: this is the local session only.
LOCAL_CODEGEN = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
# PySpark's DataFrame call-site capture off. On, every call of a PySpark function or Column method (``F.col``,
# ``Column.alias``...) first makes about five round trips to the JVM: the active session, the capture's depth, the
# class that keeps the call site, then setting the Python call site (shown under "== DataFrame ==" in Spark's error
# messages) and clearing it. The jobs build their queries of many such calls every run. Without it an error still
# names the query and its plan, and the Python traceback the line that ran it. Local session only.
LOCAL_CALL_SITES = {"spark.python.sql.dataFrameDebugging.enabled": "false"}

_lock = threading.Lock()
_session: SparkSession | None = None


def local_spark() -> SparkSession:
    """The one cached session of this process, started on first use (and again if it was stopped)."""
    global _session
    with _lock:
        if _session is None or _session._jsc is None:
            _session = _start()
        return _session


def _start() -> SparkSession:
    from pyspark.sql import SparkSession

    # Python workers must run the interpreter that runs the driver, or they lack the venv's packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Loopback only, and no warning about the host name resolving to loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logger.info("starting local Spark session (%s)", LOCAL_MASTER)
    session = (
        SparkSession.builder.master(LOCAL_MASTER)
        .appName("mlops-local")
        .config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .config("spark.driver.extraJavaOptions", DRIVER_JAVA_OPTIONS)
        .config(map=LOCAL_CODEGEN)
        .config(map=LOCAL_CALL_SITES)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    # Spark's WARNs here are about local-mode internals (task sizes of in-memory data), not about the jobs.
    session.sparkContext.setLogLevel("ERROR")
    return session
