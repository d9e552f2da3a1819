"""events.k8s.io/v1: Event (stored with core/v1 events). `STRATEGIES` lists one instance per resource."""

from skiff.apiserver.registry.events.events import EventsV1Strategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [EventsV1Strategy()]
