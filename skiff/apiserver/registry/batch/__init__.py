"""batch/v1 kinds. `STRATEGIES` lists one strategy instance per served resource."""

from skiff.apiserver.registry.batch.cronjobs import CronJobStrategy
from skiff.apiserver.registry.batch.jobs import JobStrategy
from skiff.apiserver.registry.strategy import Strategy

STRATEGIES: list[Strategy] = [JobStrategy(), CronJobStrategy()]
