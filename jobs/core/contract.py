"""Names the model jobs agree on: model version tags written by one job and read by the next."""

from __future__ import annotations

# Written by training.
TRAINING_START = "training_start"
TRAINING_END = "training_end"
TEST_START = "test_start"  # first day of the held-out period (the last part of the training window)
TEST_END = "test_end"
TRAINING_RUN_ID = "training_run_id"
GIT_COMMIT = "git_commit"
CODE_VERSION = "code_version"
SHUFFLED_LABELS = "shuffled_labels"
LINEAGE_FLIGHTS_TABLE = "lineage_flights_table"
LINEAGE_FLIGHTS_VERSION = "lineage_flights_version"
LINEAGE_FEATURES_TABLE = "lineage_features_table"
LINEAGE_FEATURES_VERSION = "lineage_features_version"
LINEAGE_TAGS = (LINEAGE_FLIGHTS_TABLE, LINEAGE_FLIGHTS_VERSION, LINEAGE_FEATURES_TABLE, LINEAGE_FEATURES_VERSION)
# What validation requires of every version: where its data came from and which period it was tested on.
REQUIRED_VERSION_TAGS = (TRAINING_START, TRAINING_END, TEST_START, TEST_END, *LINEAGE_TAGS)

# Written by validation.
VALIDATION_STATUS = "model_validation_status"  # PENDING, then PASSED or FAILED
VALIDATION_REASONS = "model_validation_reasons"
VALIDATION_RUN_MODE = "model_validation_run_mode"

# Written by deployment and rollback.
PREVIOUS_CHAMPION_VERSION = "previous_champion_version"
PROMOTION_DECISION = "promotion_decision"
PROMOTION_REASON = "promotion_reason"
ROLLED_BACK_TO = "rolled_back_to"

# Written by the online Champion/Challenger decision.
ONLINE_DECISION = "online_decision"  # promoted, retired, ramped
ONLINE_REASON = "online_reason"
# The Challenger's share of the endpoint's traffic once ramped (else serving.challenger_traffic_percent).
CHALLENGER_TRAFFIC_PERCENT = "challenger_traffic_percent"

# Tag values are short texts in Unity Catalog: longer reasons are cut to this length.
MAX_TAG_VALUE_LENGTH = 250


def tag_value(text: str) -> str:
    """``text`` cut to what a registry tag holds, with an ellipsis when cut."""
    return text if len(text) <= MAX_TAG_VALUE_LENGTH else text[: MAX_TAG_VALUE_LENGTH - 1] + "…"
