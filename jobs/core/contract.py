"""Names the model jobs agree on: model version tags written by one job and read by the next."""

from __future__ import annotations

from collections.abc import Mapping

# Written by training.
TRAINING_START = "training_start"
TRAINING_END = "training_end"
TEST_START = "test_start"  # first day of the held-out period (the last part of the training window)
TEST_END = "test_end"
TRAINING_RUN_ID = "training_run_id"
GIT_COMMIT = "git_commit"
CODE_VERSION = "code_version"
SHUFFLED_LABELS = "shuffled_labels"
# What validation requires of every version: which period it was trained and tested on, and (``lineage_tag``) where
# its data came from.
REQUIRED_VERSION_TAGS = (TRAINING_START, TRAINING_END, TEST_START, TEST_END)
# Lineage: one tag per table a version's examples were read from, ``lineage_<schema>_<table>`` = ``<table>@v<n>``
# (the table's full name and the Delta version read, in Databricks' time-travel syntax).
LINEAGE_PREFIX = "lineage_"


def lineage_tag(table: str) -> str:
    """The tag naming ``table`` (``catalog.schema.name``) among a version's lineage: by its schema and name, so
    that the tag is the same in every environment (catalog) and tells a raw source from a feature table."""
    parts = table.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a lineage table is catalog.schema.name, got {table!r}")
    return f"{LINEAGE_PREFIX}{parts[1]}_{parts[2]}"


def lineage_value(table: str, version: int) -> str:
    return f"{table}@v{version}"


def lineage_tables(tags: Mapping[str, str]) -> dict[str, int]:
    """The tables and Delta versions a version's lineage tags name (a ``ValueError`` naming a malformed tag)."""
    tables = {}
    for key, value in tags.items():
        if not key.startswith(LINEAGE_PREFIX):
            continue
        table, _, version = value.rpartition("@v")
        if not table or not version.isdigit():
            raise ValueError(f"lineage tag {key}={value!r} is not <table>@v<version>")
        tables[table] = int(version)
    return tables


# Written by validation.
VALIDATION_STATUS = "model_validation_status"  # PENDING, then PASSED or FAILED
VALIDATION_REASONS = "model_validation_reasons"
VALIDATION_RUN_MODE = "model_validation_run_mode"

# Written by deployment and rollback.
PREVIOUS_CHAMPION_VERSION = "previous_champion_version"
PROMOTION_DECISION = "promotion_decision"
PROMOTION_REASON = "promotion_reason"
ROLLED_BACK_TO = "rolled_back_to"

# Manual approval of a promotion (jobs/core/approval.py). The approval tag's key is the name of the approval task of
# the model-deployment job, its value "approved" (any case) or "rejected": the convention of MLflow 3 deployment jobs.
APPROVAL = "approval"
APPROVAL_REASON = "approval_reason"
APPROVAL_BY = "approval_by"
# Written by the deployment when it starts waiting for an approval (when, ISO 8601 UTC).
APPROVAL_REQUESTED_AT = "approval_requested_at"

# Written by the online Champion/Challenger decision.
ONLINE_DECISION = "online_decision"  # promoted, retired, ramped, waiting
ONLINE_REASON = "online_reason"
# The paired test on the labelled shadow rows it decided on (jobs.core.paired_test): what ran, its statistic, the
# smaller of its one-sided p-values, the interval of the difference, the rows, and the Champion it was paired with.
ONLINE_TEST = "online_test"
ONLINE_STATISTIC = "online_statistic"
ONLINE_P_VALUE = "online_p_value"
ONLINE_CI = "online_ci"
ONLINE_SAMPLE = "online_sample"
ONLINE_CHAMPION_VERSION = "online_champion_version"
# The Challenger's share of the endpoint's traffic once ramped (else serving.challenger_traffic_percent).
CHALLENGER_TRAFFIC_PERCENT = "challenger_traffic_percent"

# Tag values are short texts in Unity Catalog: longer reasons are cut to this length.
MAX_TAG_VALUE_LENGTH = 250


def tag_value(text: str) -> str:
    """``text`` cut to what a registry tag holds, with an ellipsis when cut."""
    return text if len(text) <= MAX_TAG_VALUE_LENGTH else text[: MAX_TAG_VALUE_LENGTH - 1] + "…"
