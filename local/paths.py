"""Where the local runtime keeps its state: under ``.mlops/`` in the working directory, or ``$MLOPS_HOME``.

Layout (one root for every environment, the catalog name keeps them apart, as one metastore does):
    warehouse/<catalog>/<schema>/<table>   Delta tables (delta-rs)
    mlflow.db                              MLflow tracking + model registry (SQLite)
    mlartifacts/                           MLflow artifacts
    runs/<run_id>/                         local workflow runs (status, task values)
    landing/<env>/<source>/                files of a model's streamed source for the streaming job (`mlops land`)
    work/<env>/                            staged models, stream checkpoints
"""

from __future__ import annotations

from pathlib import Path

from local.settings import local_settings


def mlops_home() -> Path:
    root = local_settings().home
    root.mkdir(parents=True, exist_ok=True)
    return root


def warehouse_dir() -> Path:
    return mlops_home() / "warehouse"


def table_path(full_name: str) -> Path:
    """``catalog.schema.table`` -> its Delta directory; a clear error for anything else."""
    parts = full_name.split(".")
    if len(parts) != 3 or not all(p and p.replace("_", "").isalnum() for p in parts):
        raise ValueError(f"table name must be catalog.schema.table with identifier parts, got {full_name!r}")
    return warehouse_dir().joinpath(*parts)


def mlflow_tracking_uri() -> str:
    return f"sqlite:///{mlops_home() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return (mlops_home() / "mlartifacts").as_uri()


def runs_dir() -> Path:
    return mlops_home() / "runs"


def landing_dir(env_name: str, source: str) -> Path:
    """Where the files of ``source`` (a model's ``stream_source``) land for ``env_name``'s streaming job."""
    return mlops_home() / "landing" / env_name / source


def work_dir(env_name: str) -> Path:
    return mlops_home() / "work" / env_name
