"""``jobs.approval`` on the local platform (MLflow on SQLite, the local notifier): what the deploy job and the online
Champion/Challenger decision call before they promote. A version that waits is tagged and its approvers are told
once; a verdict is a tag; a verdict that does not fit is refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobs.approval import APPROVAL_REQUESTED_EVENT, ask_before_promoting, record_verdict
from jobs.core import contract
from jobs.platform import build_platform
from jobs.platform.job import JobError
from jobs.platform.registry import CHAMPION, ModelRef
from spec.config import ENVIRONMENTS

ENV = ENVIRONMENTS["prod"]


@pytest.fixture
def platform(mlops_home, tmp_path):
    """prod's registry with versions 1 (the Champion), 2 (validated) and 3 (failed validation)."""
    platform = build_platform(ENV)
    client = platform.registry.client
    client.create_registered_model(ENV.registered_model)
    source = tmp_path / "model"
    source.mkdir()
    for status in ("PASSED", "PASSED", "FAILED"):
        client.create_model_version(ENV.registered_model, str(source), tags={contract.VALIDATION_STATUS: status})
    platform.registry.set_alias(CHAMPION, "1")
    yield platform
    client.delete_registered_model(ENV.registered_model)


def requests(home) -> list[dict]:
    path = home / "notifications.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [event for event in map(json.loads, lines) if event["event"] == APPROVAL_REQUESTED_EVENT]


def test_an_online_promote_waits_for_approval_and_asks_once(platform, mlops_home):
    ref = ModelRef(ENV.registered_model, "2")
    before = len(requests(mlops_home))

    gate = ask_before_promoting(
        platform, ref, metrics={"roc_auc": 0.71}, reason="online roc_auc 0.71 >= 0.69", source="online decision"
    )
    again = ask_before_promoting(platform, ref, metrics={"roc_auc": 0.72}, reason="still", source="online decision")

    assert (gate.action, again.action) == ("wait", "wait")
    tags = platform.registry.version_tags(ref)
    assert tags[contract.PROMOTION_DECISION] == "awaiting approval"
    # The reason is the latest run's; the request (its time, the notification) stays the first one's.
    assert (
        tags[contract.PROMOTION_REASON]
        == "still; version 2 waits for a person's approval (promotion.approval is manual)"
    )
    [request] = requests(mlops_home)[before:]
    assert request["details"]["source"] == "online decision"
    assert request["details"]["metrics"] == {"roc_auc": 0.71}
    assert request["details"]["approve_command"] == "mlops approve --env prod --model flight_delay --version 2"


def test_approved_promotes_rejected_refuses(platform):
    ref = ModelRef(ENV.registered_model, "2")
    record_verdict(platform, ref, approve=True, reason="fine", by="ana")
    assert ask_before_promoting(platform, ref, metrics={}, reason="r", source="online decision").promote

    record_verdict(platform, ref, approve=False, reason="changed my mind", by="ana")
    gate = ask_before_promoting(platform, ref, metrics={}, reason="r", source="online decision")
    assert (gate.action, gate.reason) == (
        "refuse",
        "version 2 was rejected by ana: changed my mind: it is never promoted",
    )


@pytest.mark.parametrize(
    ("version", "approve", "why"),
    [
        ("3", True, "version 3 has validation status FAILED"),
        ("1", True, "version 1 is the champion"),
        ("9", True, "does not exist"),
    ],
)
def test_a_verdict_that_does_not_fit_writes_nothing(platform, version, approve, why):
    with pytest.raises(JobError, match=why):
        record_verdict(platform, ModelRef(ENV.registered_model, version), approve=approve)
    for existing in ("1", "2", "3"):
        assert contract.APPROVAL not in platform.registry.version_tags(ModelRef(ENV.registered_model, existing))


def test_the_online_decision_asks_before_it_promotes_and_promotes_once_approved(platform, monkeypatch):
    """``jobs.online_decision.decide`` goes through the gate: in prod (manual) an online "promote" becomes a wait
    with the gate's reason, the Champion stays; once the version is approved, the same evidence promotes it."""
    import jobs.online_decision as online

    platform.registry.set_alias("challenger", "2")
    # The evidence, as the labelled shadow rows would give it: enough pairs, the Challenger clearly ahead.
    output = online.compared_output(platform.model.spec)
    rng = np.random.default_rng(7)
    label = rng.integers(0, 2, 3000).astype(float)
    pairs = pd.DataFrame(
        {
            f"{output}{online.CHAMPION_SUFFIX}": np.clip(0.5 + 0.1 * (label - 0.5) + rng.normal(0, 0.3, 3000), 0, 1),
            f"{output}{online.CHALLENGER_SUFFIX}": np.clip(0.5 + 0.6 * (label - 0.5) + rng.normal(0, 0.3, 3000), 0, 1),
            "label": label,
        }
    )
    monkeypatch.setattr(online, "paired_rows", lambda platform, champion, challenger: pairs)
    monkeypatch.setattr(online, "update_serving", lambda platform: [])

    waited = online.decide(platform)
    assert waited.action == "wait" and "waits for a person's approval" in waited.reason
    assert platform.registry.alias_version(CHAMPION) == "1"
    assert platform.registry.version_tags(ModelRef(ENV.registered_model, "2"))[contract.PROMOTION_DECISION] == (
        "awaiting approval"
    )

    record_verdict(platform, ModelRef(ENV.registered_model, "2"), approve=True, reason="fine", by="ana")
    promoted = online.decide(platform)
    assert promoted.action == "promote"
    assert platform.registry.alias_version(CHAMPION) == "2"
