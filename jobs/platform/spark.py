"""The Spark session of a Databricks job run: the cluster's own, or Databricks Connect's on serverless compute.

The local runtime starts its own session (``local.spark``) and hands it to the platform; nothing here starts one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATABRICKS_RUNTIME_ENV = "DATABRICKS_RUNTIME_VERSION"


def on_databricks() -> bool:
    """True on a Databricks cluster or serverless job environment (the runtime sets this variable)."""
    return bool(os.environ.get(DATABRICKS_RUNTIME_ENV))


def databricks_spark() -> SparkSession:
    """The active session of the job run (the runtime provides Spark; the wheel does not depend on pyspark)."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
