"""All built-in strategies, indexed for routing and discovery."""

from __future__ import annotations

from skiff.apiserver.registry import (
    apiextensions,
    apps,
    autoscaling,
    batch,
    coordination,
    core,
    discovery,
    events,
    networking,
    policy,
    rbac,
    scheduling,
    storage,
)
from skiff.apiserver.registry.strategy import Strategy


def builtin_strategies() -> list[Strategy]:
    groups = (core, apps, batch, autoscaling, networking, discovery, policy, rbac, storage, coordination,
              scheduling, events, apiextensions)
    return [s for g in groups for s in g.STRATEGIES]
