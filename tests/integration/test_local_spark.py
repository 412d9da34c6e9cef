"""The process's local Spark session (``local.spark``): two cores, loopback only, few shuffle partitions, and the
JVM's throughput garbage collector (docs/BENCHMARKS.md: G1 cost the short demo 5%)."""

from __future__ import annotations

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
