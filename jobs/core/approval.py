"""Manual approval of a promotion, as pure functions over a model version's tags.

Where ``promotion.approval`` is ``manual`` a Challenger the comparison favours becomes Champion only once a person
approved that version. The verdict is a model-version tag, as MLflow 3 deployment jobs keep it: the key is the name
of the deployment job's approval task (``contract.APPROVAL``), the value ``approved`` in any case approves, anything
else does not; ``rejected`` rejects for good. Who may set it is a Unity Catalog grant (spec/access.py).

- ``approval_state``: what a version's tags say (approved, rejected, waiting, not requested);
- ``approval_gate``: may the deployment promote this version now (promote), must it wait for a person (wait), or
  must it never promote it (refuse)? With the reason, for the version's tags and the log;
- ``verdict_refusal``: why ``mlops approve`` refuses to record a verdict on a version, or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from jobs.core import contract
from jobs.core.decisions import PASSED

APPROVED = "approved"
REJECTED = "rejected"
WAITING = "waiting"
NOT_REQUESTED = "not requested"
ApprovalState = Literal["approved", "rejected", "waiting", "not requested"]
GateAction = Literal["promote", "wait", "refuse"]


def approval_state(tags: Mapping[str, str]) -> ApprovalState:
    """The approval state of a version from its tags. A tag value other than approved / rejected (someone typed
    "ok") approves nothing: the version still waits, as an MLflow deployment job's approval task would fail."""
    value = str(tags.get(contract.APPROVAL, "")).strip().lower()
    if value == APPROVED:
        return APPROVED
    if value == REJECTED:
        return REJECTED
    return WAITING if tags.get(contract.APPROVAL_REQUESTED_AT) or value else NOT_REQUESTED


@dataclass(frozen=True)
class ApprovalGate:
    action: GateAction
    reason: str

    @property
    def promote(self) -> bool:
        return self.action == "promote"


def _newer_than_champion(version: str, champion: str | None) -> bool:
    return champion is None or int(version) > int(champion)


def approval_gate(
    mode: Literal["automatic", "manual"], tags: Mapping[str, str], version: str, champion: str | None
) -> ApprovalGate:
    """Whether a version the comparison would promote may become the Champion now.

    ``automatic``: always. ``manual``: a rejected version never; a version that is not newer than the Champion never
    (it was approved, or waited, while a newer Champion arrived: it must not replace it); an approved one now; any
    other waits for a person."""
    if mode == "automatic":
        return ApprovalGate("promote", "promotion.approval is automatic")
    if not _newer_than_champion(version, champion):
        return ApprovalGate(
            "refuse",
            f"version {version} is not newer than the champion (version {champion}), which arrived after it: an "
            "approved older version is never promoted over a newer champion",
        )
    state = approval_state(tags)
    by = tags.get(contract.APPROVAL_BY)
    said = f" by {by}" if by else ""
    why = tags.get(contract.APPROVAL_REASON)
    because = f": {why}" if why else ""
    if state == REJECTED:
        return ApprovalGate("refuse", f"version {version} was rejected{said}{because}: it is never promoted")
    if state == APPROVED:
        return ApprovalGate("promote", f"version {version} was approved{said}{because}")
    value = tags.get(contract.APPROVAL)
    if value:
        return ApprovalGate(
            "wait",
            f"version {version} waits for approval: its {contract.APPROVAL} tag is {value!r}, which approves nothing "
            f"(set it to {APPROVED!r} or {REJECTED!r})",
        )
    return ApprovalGate("wait", f"version {version} waits for a person's approval (promotion.approval is manual)")


def verdict_refusal(tags: Mapping[str, str], version: str, champion: str | None, *, approve: bool) -> str | None:
    """Why a verdict on ``version`` cannot be recorded (None: it can). An approval needs a version that passed
    validation, is newer than the Champion and was not rejected; a rejection needs one that is not the Champion (nor
    older, which can never be promoted anyway) and was not rejected already."""
    status = tags.get(contract.VALIDATION_STATUS)
    if approve and status != PASSED:
        reasons = tags.get(contract.VALIDATION_REASONS)
        detail = f" ({reasons})" if reasons else ""
        found = "has no validation status" if status is None else f"has validation status {status}"
        return f"version {version} {found}{detail}: only a version that PASSED validation can be approved"
    if not _newer_than_champion(version, champion):
        relation = "is the champion" if champion == version else f"is older than the champion (version {champion})"
        return f"version {version} {relation}: only a version newer than the champion can be approved or rejected"
    state = approval_state(tags)
    if state == REJECTED:
        return f"version {version} was rejected already: a rejected version is never promoted; train a new version"
    if approve and state == APPROVED:
        return f"version {version} is approved already: the next model-deployment run promotes it"
    return None
