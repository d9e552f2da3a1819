"""coordination.k8s.io/v1 Lease: leader election and node heartbeats; the Holder column.

Mirrors ValidateLease (`pkg/apis/coordination/validation`) and `printLease`. Like upstream, an update may
create the lease (AllowCreateOnUpdate) and leases do not track a generation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_STRATEGIES = ("OldestEmulationVersion",)


class LeaseStrategy(Strategy):
    info = ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", "lease", True)
    allow_create_on_update = True
    tracks_generation = False

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        errs: list[v.FieldError] = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None:
            if not isinstance(duration, int) or isinstance(duration, bool):
                errs.append(v.type_invalid("spec.leaseDurationSeconds", duration, "must be an integer"))
            elif duration <= 0:
                errs.append(v.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        errs += v.non_negative("spec.leaseTransitions", spec.get("leaseTransitions"))
        strategy = spec.get("strategy")
        if strategy is not None:
            errs += v.one_of("spec.strategy", strategy, _STRATEGIES)
        if spec.get("preferredHolder") and strategy is None:
            errs.append(v.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column(
                "Holder", description="holderIdentity contains the identity of the holder of a current lease."
            ),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), (obj.get("spec") or {}).get("holderIdentity") or "", age(obj, now)]
