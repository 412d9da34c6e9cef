"""The approval decisions (jobs/core/approval.py): when a version the comparison favours may be promoted, and when a
person's verdict on a version is refused, with the reason."""

from __future__ import annotations

import pytest

from jobs.core import contract
from jobs.core.approval import approval_gate, approval_state, verdict_refusal

PASSED = {contract.VALIDATION_STATUS: "PASSED"}


@pytest.mark.parametrize(
    ("tags", "state"),
    [
        ({}, "not requested"),
        ({contract.APPROVAL_REQUESTED_AT: "2026-12-03T18:00:00+00:00"}, "waiting"),
        ({contract.APPROVAL: "Approved"}, "approved"),  # MLflow's approval task compares in lower case
        ({contract.APPROVAL: " approved "}, "approved"),
        ({contract.APPROVAL: "REJECTED"}, "rejected"),
        ({contract.APPROVAL: "ok"}, "waiting"),  # approves nothing
    ],
)
def test_the_approval_tag_says_the_state(tags, state):
    assert approval_state(tags) == state


def test_automatic_approval_promotes_whatever_the_tags():
    gate = approval_gate("automatic", {contract.APPROVAL: "rejected"}, "3", "2")
    assert (gate.action, gate.reason) == ("promote", "promotion.approval is automatic")


def test_manual_approval_waits_for_a_person_then_promotes_the_approved_version():
    assert approval_gate("manual", PASSED, "3", "2").action == "wait"
    approved = {**PASSED, contract.APPROVAL: "approved", contract.APPROVAL_BY: "ana", contract.APPROVAL_REASON: "ok"}
    gate = approval_gate("manual", approved, "3", "2")
    assert (gate.action, gate.reason) == ("promote", "version 3 was approved by ana: ok")
    assert approval_gate("manual", approved, "1", None).promote


def test_a_rejected_version_is_never_promoted():
    tags = {**PASSED, contract.APPROVAL: "rejected", contract.APPROVAL_BY: "ana", contract.APPROVAL_REASON: "slices"}
    gate = approval_gate("manual", tags, "3", "2")
    assert (gate.action, gate.reason) == ("refuse", "version 3 was rejected by ana: slices: it is never promoted")


def test_a_version_approved_after_a_newer_champion_arrived_is_not_promoted_over_it():
    approved = {**PASSED, contract.APPROVAL: "approved"}
    gate = approval_gate("manual", approved, "3", "4")
    assert gate.action == "refuse"
    assert gate.reason.startswith("version 3 is not newer than the champion (version 4)")
    assert approval_gate("manual", approved, "4", "4").action == "refuse"


def test_an_unknown_tag_value_keeps_the_version_waiting_and_says_what_to_set():
    gate = approval_gate("manual", {contract.APPROVAL: "ok"}, "3", "2")
    assert gate.action == "wait"
    assert "its approval tag is 'ok', which approves nothing (set it to 'approved' or 'rejected')" in gate.reason


@pytest.mark.parametrize(
    ("tags", "version", "champion", "approve", "refusal"),
    [
        (PASSED, "3", "2", True, None),
        (PASSED, "3", "2", False, None),
        ({}, "3", "2", True, "version 3 has no validation status: only a version that PASSED validation can be "
                             "approved"),
        (
            {contract.VALIDATION_STATUS: "FAILED", contract.VALIDATION_REASONS: "roc_auc 0.55 < 0.62"},
            "3",
            "2",
            True,
            "version 3 has validation status FAILED (roc_auc 0.55 < 0.62): only a version that PASSED validation can "
            "be approved",
        ),
        (PASSED, "2", "3", True, "version 2 is older than the champion (version 3): only a version newer than the "
                                 "champion can be approved or rejected"),
        (PASSED, "3", "3", False, "version 3 is the champion: only a version newer than the champion can be "
                                  "approved or rejected"),
        ({**PASSED, contract.APPROVAL: "rejected"}, "3", "2", True, "version 3 was rejected already: a rejected "
                                                                    "version is never promoted; train a new version"),
        ({**PASSED, contract.APPROVAL: "approved"}, "3", "2", True, "version 3 is approved already: the next "
                                                                    "model-deployment run promotes it"),
        # A person may change their mind before the version is promoted.
        ({**PASSED, contract.APPROVAL: "approved"}, "3", "2", False, None),
    ],
)  # fmt: skip
def test_a_verdict_that_does_not_fit_is_refused_with_the_reason(tags, version, champion, approve, refusal):
    assert verdict_refusal(tags, version, champion, approve=approve) == refusal
