"""Manual approval of a promotion on a platform: what a version's approval is, asking a person for it, recording
their verdict. Shared by the deploy job, the online Champion/Challenger decision and the CLI (`mlops approve`). Not
an entry point; the decisions themselves are pure (jobs/core/approval.py).

- ``ask_before_promoting``: a job that would promote a version calls this first. It returns the gate: ``promote``
  (automatic approval, or the version is approved), ``wait`` (the version is tagged as waiting and, the first time,
  the environment's notification destinations are told the model, the version, its metrics and the exact
  ``mlops approve`` command), or ``refuse`` (rejected, or not newer than the Champion). The job promotes only on
  ``promote``.
- ``record_verdict``: the approve / reject of `mlops approve`, refused with the reason when it does not fit.

The approval tag follows MLflow 3 deployment jobs (``contract.APPROVAL`` = the approval task's name, value
``approved``): https://docs.databricks.com/aws/en/mlflow/deployment-job (the approval notebook reads the tag named
after the approval task and approves on the value "approved", in any case).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from jobs.core import contract
from jobs.core.approval import APPROVED, REJECTED, WAITING, ApprovalGate, approval_gate, verdict_refusal
from jobs.platform import Platform
from jobs.platform.job import JobError
from jobs.platform.registry import CHAMPION, ModelRef

logger = logging.getLogger("jobs.approval")

# The notification event of a version that waits for approval.
APPROVAL_REQUESTED_EVENT = "approval_requested"
# The promotion_decision tag of a version that waits.
AWAITING_APPROVAL = "awaiting approval"


def approve_command(platform: Platform, ref: ModelRef) -> str:
    """The exact command a person of the approvers group runs to approve ``ref``."""
    env = platform.env
    target = " --target databricks" if platform.on_databricks else ""
    return f"mlops approve --env {env.name} --model {env.model_name} --version {ref.version}{target}"


def ask_before_promoting(
    platform: Platform,
    ref: ModelRef,
    *,
    metrics: Mapping[str, float],
    reason: str,
    source: str,
    champion: str | None = None,
) -> ApprovalGate:
    """The gate in front of promoting ``ref`` (see the module's docstring). ``reason`` is why ``source`` (the deploy
    job, the online decision) would promote it; ``metrics`` its validation metrics, for the person who approves.
    ``champion`` is the current Champion's version (read from the registry when not given)."""
    env, registry = platform.env, platform.registry
    if champion is None:
        champion = registry.alias_version(CHAMPION)
    tags = registry.version_tags(ref)
    gate = approval_gate(env.promotion.approval, tags, ref.version, champion)
    if gate.action != "wait":
        logger.info("%s: approval gate says %s (%s)", ref.uri, gate.action, gate.reason)
        return gate
    command = approve_command(platform, ref)
    already = bool(tags.get(contract.APPROVAL_REQUESTED_AT))
    registry.set_version_tags(
        ref,
        {
            contract.PROMOTION_DECISION: AWAITING_APPROVAL,
            contract.PROMOTION_REASON: contract.tag_value(f"{reason}; {gate.reason}"),
            **({} if already else {contract.APPROVAL_REQUESTED_AT: datetime.now(UTC).isoformat(timespec="seconds")}),
        },
    )
    if already:
        # Told once: a later run that finds the version still waiting only says so in its log.
        logger.info(
            "%s still waits for approval (asked at %s): %s", ref.uri, tags[contract.APPROVAL_REQUESTED_AT], command
        )
        return gate
    message = (
        f"{env.registered_model} version {ref.version} waits for approval before it becomes the champion in "
        f"{env.name} ({source}: {reason}). A member of {env.approvers} approves it with: {command}  "
        f"(or rejects it with: {command} --reject --reason TEXT)"
    )
    logger.warning("%s", message)
    platform.notifier.notify(
        APPROVAL_REQUESTED_EVENT,
        message,
        {
            "model": env.registered_model,
            "version": ref.version,
            "champion_version": champion or "",
            "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
            "validation_status": tags.get(contract.VALIDATION_STATUS, ""),
            "source": source,
            "reason": reason,
            "approvers": env.approvers,
            "approve_command": command,
            "reject_command": f"{command} --reject --reason TEXT",
        },
    )
    return gate


def record_verdict(
    platform: Platform, ref: ModelRef, *, approve: bool, reason: str = "", by: str = ""
) -> dict[str, str]:
    """Approve or reject ``ref``: its approval tag, with who and why. A ``JobError`` saying why when the version does
    not exist, did not pass validation (approval), is not newer than the Champion, or was rejected already (or
    approved already, for an approval). Returns the tags written."""
    registry = platform.registry
    try:
        tags = registry.version_tags(ref)
    except ValueError as e:
        raise JobError(f"{e}: nothing to approve (see mlops models --env {platform.env.name})") from e
    refusal = verdict_refusal(tags, ref.version, registry.alias_version(CHAMPION), approve=approve)
    if refusal:
        raise JobError(f"{ref.name}: {refusal}")
    written = {contract.APPROVAL: APPROVED if approve else REJECTED}
    if reason:
        written[contract.APPROVAL_REASON] = contract.tag_value(reason)
    if by:
        written[contract.APPROVAL_BY] = contract.tag_value(by)
    registry.set_version_tags(ref, written)
    logger.info("%s: %s%s", ref.uri, written[contract.APPROVAL], f" by {by}" if by else "")
    return written


def approval_of(platform: Platform, ref: ModelRef) -> str:
    """The approval state of ``ref`` (approved, rejected, waiting, not requested), for listings."""
    from jobs.core.approval import approval_state

    return approval_state(platform.registry.version_tags(ref))


__all__ = [
    "APPROVAL_REQUESTED_EVENT",
    "APPROVED",
    "AWAITING_APPROVAL",
    "REJECTED",
    "WAITING",
    "approval_of",
    "approve_command",
    "ask_before_promoting",
    "record_verdict",
]
