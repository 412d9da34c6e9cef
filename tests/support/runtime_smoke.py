"""Run by tests/runtime/test_databricks_runtime.py with the Python of a virtualenv that holds a Databricks runtime's
libraries and the jobs wheel: the project's model is fitted, logged with its signature, registered, loaded back and
scored with that runtime's MLflow, scikit-learn and pandas. Prints one JSON line of what it saw; exits non-zero on
any failure. Only the installed wheel is imported (this file's folder holds no project package)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main() -> int:
    import mlflow
    import numpy as np
    import pandas as pd

    from jobs.core.evaluation import classification_metrics
    from jobs.core.model import model_frame, model_signature, predict_proba
    from jobs.platform.registry import logged_model_name, model_requirements
    from models.flight_delay.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES, WEATHER_FEATURES
    from models.flight_delay.estimator import build_estimator as build_model
    from models.flight_delay.spec import SPEC

    rng = np.random.default_rng(7)
    rows = 2000
    frame = pd.DataFrame({c: rng.choice(["AA", "B6", "UA", "EWR", "JFK", "LGA"], rows) for c in CATEGORICAL_FEATURES})
    for column in NUMERIC_FEATURES:
        frame[column] = rng.normal(size=rows)
    frame.loc[rng.random(rows) < 0.1, list(WEATHER_FEATURES)] = np.nan  # missing weather, as the join leaves it
    late = (frame["precip"].fillna(0) + 0.5 * frame["sched_hour"] + rng.normal(scale=0.5, size=rows)) > 0.5
    x, y = model_frame(SPEC, frame), late.astype("int64").to_numpy()
    model = build_model(seed=1).fit(x, y)

    with tempfile.TemporaryDirectory() as tmp:
        uri = Path(tmp, "mlruns").as_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                **logged_model_name("model"),
                signature=model_signature(SPEC),
                registered_model_name="smoke_model",
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=model_requirements(),
            )
        loaded = mlflow.pyfunc.load_model(f"models:/smoke_model/{info.registered_model_version}")
        served = loaded.predict(x.head(50))
    metrics = classification_metrics(y, predict_proba(model, x))
    print(
        json.dumps(
            {
                "mlflow": mlflow.__version__,
                "pandas": pd.__version__,
                "version": str(info.registered_model_version),
                "predictions": int(np.asarray(served).shape[0]),
                "roc_auc": round(metrics["roc_auc"], 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
