"""The process's local Spark session (``local.spark``): two cores, loopback only, few shuffle partitions, and the
JVM's throughput garbage collector (docs/BENCHMARKS.md: G1 cost the short demo 5%), no generated code (compiling
each small query's classes cost the short demo 7%), and no capture of Python call sites (JVM round trips on every
PySpark call)."""

from __future__ import annotations

from datetime import date

import pytest

pytestmark = pytest.mark.integration


def test_the_local_session_runs_on_loopback_with_the_throughput_collector(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.master") == "local[2]"
    assert conf.get("spark.driver.host") == "127.0.0.1" and conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    collectors = sorted(str(bean.getName()) for bean in management.getGarbageCollectorMXBeans())
    assert collectors == ["PS MarkSweep", "PS Scavenge"]  # ParallelGC's two collectors, not G1's


def test_the_local_session_evaluates_queries_without_generating_code(spark):
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    frame = spark.createDataFrame([(1, "2013-01-01"), (2, "2013-01-09"), (3, None)], "n int, day string")
    query = (
        frame.withColumn("day", F.to_date("day"))
        .where(F.col("day") >= F.lit("2013-01-02").cast("date"))
        .select((F.col("n") * 10).alias("n10"), F.date_add("day", 1).alias("next"))
    )
    plan = query._jdf.queryExecution().executedPlan().toString()
    assert "WholeStageCodegen" not in plan and "*(" not in plan, plan
    assert [tuple(row) for row in query.collect()] == [(20, date(2013, 1, 10))]


def test_the_local_session_does_not_capture_python_call_sites(spark, monkeypatch):
    """PySpark's DataFrame call-site capture is off: a PySpark call makes no round trips to the JVM for it."""
    from pyspark.errors import utils

    assert spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
    # PySpark reads the setting from the active session once and keeps it: read it again here.
    monkeypatch.setattr(utils, "_enable_debugging_cache", None)
    assert utils.is_debugging_enabled() is False
