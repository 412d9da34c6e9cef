"""The local runtime: the same job graphs and jobs on this machine, on embedded engines.

The workflow runner (``runner``), the local adapters of the job runtime's ports (``platform``, ``tables``,
``adapters``, ``spark``: local Spark, delta-rs, MLflow on SQLite, files under ``$MLOPS_HOME``) and the serving
gateway (``serving``). It reads the job runtime (``jobs``) and the spec (``spec``); the job runtime never reads it:
``jobs.platform.build_platform`` finds ``local.platform.build_local_platform`` through the entry point group
``mlops_databricks.platforms``.
"""
