"""Strategies of this API group; `STRATEGIES` lists one instance per served resource."""

from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = []
