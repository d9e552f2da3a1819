"""Priority: resolve a pod's priority from PriorityClasses; keep PriorityClass globalDefault unique.

Mirrors upstream `plugin/pkg/admission/priority/admission.go`. On pod create, `spec.priorityClassName`
names the class whose value becomes `spec.priority` (and whose preemptionPolicy becomes the pod's); no
name takes the `globalDefault: true` class (the lowest-valued one should a race have made several) and
records its name, or priority 0 with PreemptLowerPriority. A pod may not state a different priority or
preemption policy than the class gives. On update the stored priority is kept. The two system classes
resolve even when they are not stored (the server also seeds them, as upstream's apiserver does).
"""

from __future__ import annotations

from skiff.api.meta import Obj
from skiff.apiserver.admission import CREATE, UPDATE, Attributes, ObjectLookup, forbidden
from skiff.apiserver.registry.scheduling.priorityclasses import (
    SYSTEM_PRIORITY_CLASSES,
    conflicting_global_default,
)

GROUP = "scheduling.k8s.io"
PLURAL = "priorityclasses"
DEFAULT_PREEMPTION = "PreemptLowerPriority"


def system_class(name: str) -> Obj:
    """A built-in class as upstream's bootstrap creates it (`SystemPriorityClasses()`)."""
    descriptions = {
        "system-node-critical": "Used for system critical pods that must not be moved from their current node.",
        "system-cluster-critical": "Used for system critical pods that must run in the cluster, but can be moved "
        "to another node if necessary.",
    }
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": SYSTEM_PRIORITY_CLASSES[name],
        "description": descriptions[name],
        "preemptionPolicy": DEFAULT_PREEMPTION,
    }


def default_class(classes: list[Obj]) -> Obj | None:
    """The globalDefault class; with several (a create race), the lowest value, as upstream."""
    best: Obj | None = None
    for pc in classes:
        if pc.get("globalDefault") and (
            best is None or int(pc.get("value") or 0) < int(best.get("value") or 0)
        ):
            best = pc
    return best


def resolve(cls: Obj | None) -> tuple[int, str | None, str | None]:
    """(priority, preemptionPolicy or None to leave the pod's, class name to record) from the resolved class."""
    if cls is None:
        return 0, DEFAULT_PREEMPTION, None
    policy = cls.get("preemptionPolicy")
    return (
        int(cls.get("value") or 0),
        str(policy) if policy else None,
        str((cls.get("metadata") or {}).get("name")),
    )


class Priority:
    """Mutating for pods, validating for PriorityClasses."""

    def __init__(self, lookup: ObjectLookup) -> None:
        self.lookup = lookup

    async def _get_class(self, name: str) -> Obj | None:
        pc = await self.lookup.get(GROUP, PLURAL, "", name)
        if pc is None and name in SYSTEM_PRIORITY_CLASSES:
            return system_class(name)
        return pc

    async def admit(self, attrs: Attributes) -> None:
        if not attrs.is_kind("", "pods") or attrs.subresource:
            return
        spec = attrs.object.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if attrs.operation == UPDATE:
            # Set on create; an update that leaves them out keeps them (validation refuses real changes).
            old_spec = (attrs.old_object or {}).get("spec") or {}
            for key in ("priority", "preemptionPolicy"):
                if key not in spec and key in old_spec:
                    spec[key] = old_spec[key]
            return
        if attrs.operation != CREATE:
            return
        name = spec.get("priorityClassName") or ""
        if name:
            cls = await self._get_class(str(name))
            if cls is None:
                raise forbidden(attrs, f"no PriorityClass with name {name} was found")
        else:
            cls = default_class(await self.lookup.list(GROUP, PLURAL, ""))
        priority, policy, default_name = resolve(cls)
        if not name and default_name:
            spec["priorityClassName"] = default_name
        given = spec.get("priority")
        if given is not None and given != priority:
            raise forbidden(
                attrs,
                f"the integer value of priority ({given}) must not be provided in pod spec; "
                f"priority admission controller computed {priority} from the given PriorityClass name",
            )
        spec["priority"] = priority
        if policy is not None:
            given_policy = spec.get("preemptionPolicy")
            if given_policy is not None and given_policy != policy:
                raise forbidden(
                    attrs,
                    f"the string value of PreemptionPolicy ({given_policy}) must not be provided in "
                    f"pod spec; priority admission controller computed {policy} from the given "
                    "PriorityClass name",
                )
            spec["preemptionPolicy"] = policy

    async def validate(self, attrs: Attributes) -> None:
        """Only one globalDefault class: creating a second, or marking another one, is refused."""
        if not attrs.is_kind(GROUP, PLURAL) or attrs.subresource or attrs.operation not in (CREATE, UPDATE):
            return
        if not attrs.object.get("globalDefault"):
            return
        other = conflicting_global_default(attrs.object, await self.lookup.list(GROUP, PLURAL, ""))
        if other is not None:
            raise forbidden(
                attrs, f"PriorityClass {other} is already marked as default. Only one default can exist"
            )
