"""The platform's own columns: what the jobs, the gateway, the monitors and the stacks add to a model's rows, whatever
the model. A model's key, features and label details are its own (``spec.model.ModelSpec``); the predictions, rejects
and served tables of a model are its key and features plus these columns (``ModelSpec.prediction_columns``).
Plain constants, no Spark.
"""

from __future__ import annotations

# The label (set by the labels job once it is known; null until then): INT for a classifier, DOUBLE for a regressor.
LABEL = "label"
LABELED_AT = "labeled_at"
# What the model answered: the class or the value, and (a classifier's) probability of the positive class.
PREDICTION = "prediction"
PROBABILITY = "probability"
# Where a prediction came from.
PREDICTION_METADATA = ("model_name", "model_version", "model_alias", "scored_at", "batch_id", "source")
PREDICTION_METADATA_TYPES = (
    ("model_name", "STRING"),
    ("model_version", "STRING"),
    ("model_alias", "STRING"),
    ("scored_at", "TIMESTAMP"),
    ("batch_id", "STRING"),
    ("source", "STRING"),
)
# Where a shadow prediction came from: the Challenger's version (model_version) and the Champion's it was scored
# beside; the batch and source are the predictions table's rows' own, so the two pair on the key and the batch.
SHADOW_METADATA = ("model_name", "model_version", "champion_version", "scored_at", "batch_id", "source")
SHADOW_METADATA_TYPES = (
    ("model_name", "STRING"),
    ("model_version", "STRING"),
    ("champion_version", "STRING"),
    ("scored_at", "TIMESTAMP"),
    ("batch_id", "STRING"),
    ("source", "STRING"),
)
# Rows that could not be scored: the model's key, what was wrong, and the batch that met them.
REJECT_REASON = "reason"
REJECT_METADATA = ("batch_id", "source", "rejected_at")
