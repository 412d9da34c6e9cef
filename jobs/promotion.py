"""What the serving endpoint serves, from the registry's aliases, and rollback: shared by the deploy job, the CLI
(`mlops rollback`) and the online Champion/Challenger decision. Not an entry point.
"""

from __future__ import annotations

import logging

from jobs.core import contract
from jobs.core.decisions import traffic_split
from jobs.platform import Platform, ServedEntity
from jobs.platform.job import JobError
from jobs.platform.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, ModelRef
from jobs.platform.serving import served_entities_for

logger = logging.getLogger("jobs.promotion")


def promote(platform: Platform, ref: ModelRef) -> str | None:
    """Make ``ref`` the Champion; the version it replaces becomes ``previous_champion`` and is recorded on ``ref``
    (the rollback chain). Returns that previous version (None when there was no Champion)."""
    registry = platform.registry
    champion = registry.alias_version(CHAMPION)
    # Champion first: if anything fails after it, the rollback chain still points at the version it replaced.
    registry.set_alias(CHAMPION, ref.version)
    if champion is None or champion == ref.version:
        return None
    registry.set_version_tags(ref, {contract.PREVIOUS_CHAMPION_VERSION: champion})
    registry.set_alias(PREVIOUS_CHAMPION, champion)
    return champion


def challenger_percent(platform: Platform, challenger: str | None) -> int:
    """The Challenger's traffic share: ramped on its version (online decision), else the environment's."""
    if challenger is None:
        return 0
    tags = platform.registry.version_tags(ModelRef(platform.registry.model_name, challenger))
    ramped = tags.get(contract.CHALLENGER_TRAFFIC_PERCENT)
    return int(ramped) if ramped else platform.env.serving.challenger_traffic_percent


def served_entities(platform: Platform) -> list[ServedEntity]:
    """What the endpoint should serve now, from the aliases: empty while there is no Champion."""
    registry = platform.registry
    challenger = registry.alias_version(CHALLENGER)
    routes = traffic_split(registry.alias_version(CHAMPION), challenger, challenger_percent(platform, challenger))
    return served_entities_for(platform.env, routes)


def update_serving(platform: Platform) -> list[ServedEntity]:
    served = served_entities(platform)
    if served:
        platform.serving.update_endpoint(platform.env, served)
    else:
        logger.info("no champion yet: the endpoint %s is left as it is", platform.env.endpoint_name)
    return served


def rollback(platform: Platform) -> str:
    """Make the previous Champion the Champion again and serve it; returns its version.

    The rolled-back version loses the aliases ``champion`` (and ``challenger``) and is tagged ``rolled_back_to``;
    ``previous_champion`` moves one step back along the chain of ``previous_champion_version`` tags, so a second
    rollback goes further back. A ``JobError`` when there is no previous Champion.
    """
    registry = platform.registry
    previous = registry.alias_version(PREVIOUS_CHAMPION)
    if previous is None:
        raise JobError(f"no previous champion of {registry.model_name} to roll back to")
    current = registry.alias_version(CHAMPION)
    registry.set_alias(CHAMPION, previous)
    if current is not None and current != previous:
        registry.set_version_tags(ModelRef(registry.model_name, current), {contract.ROLLED_BACK_TO: previous})
        if registry.alias_version(CHALLENGER) == current:
            registry.delete_alias(CHALLENGER)
    older = registry.version_tags(ModelRef(registry.model_name, previous)).get(contract.PREVIOUS_CHAMPION_VERSION)
    if older and older != previous:
        registry.set_alias(PREVIOUS_CHAMPION, older)
    else:
        registry.delete_alias(PREVIOUS_CHAMPION)
    logger.info("rolled back %s: champion %s -> %s", registry.model_name, current, previous)
    update_serving(platform)
    return previous
