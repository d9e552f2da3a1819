"""Quota arithmetic and usage evaluators, shared by ResourceQuota admission and the ResourceQuota controller.

Pure functions over plain objects, so the API server (admission charges usage before a write) and the
controller (recomputes `status.used` from informer caches) count exactly the same way. Mirrors upstream
`pkg/quota/v1` (resources.go: Add/Mask/LessThanOrEqual...), `pkg/quota/v1/evaluator/core` (pods, services,
persistentvolumeclaims), `pkg/quota/v1/generic` (object count evaluators, CalculateUsageStats) and
`CheckRequest` of `apiserver/pkg/admission/plugin/resourcequota/controller.go`, and
`component-helpers/resource` PodRequests/PodLimits. Quantities keep their upstream format (DecimalSI,
BinarySI, DecimalExponent) so sums print as upstream prints them (`256Mi`, `1500m`, `2`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from skiff.api.meta import Obj, parse_time
from skiff.api.quantity import QuantityError, parse_quantity

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

CREATE = "CREATE"
UPDATE = "UPDATE"

_BINARY_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_NANO = Decimal("1e-9")


@dataclass(frozen=True)
class Quantity:
    """An exact value and the format its canonical text uses (upstream `resource.Quantity`)."""

    value: Decimal
    format: str = DECIMAL_SI

    def __add__(self, other: Quantity) -> Quantity:
        # Upstream Quantity.Add: a zero receiver takes the format of what is added.
        return Quantity(self.value + other.value, other.format if self.value == 0 else self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, other.format if self.value == 0 else self.format)

    def __str__(self) -> str:
        return canonical(self.value, self.format)


ResourceList = dict[str, Quantity]
ZERO = Quantity(Decimal(0))


def parse(raw: Any) -> Quantity:
    """A quantity from its JSON form; the suffix decides the format, as upstream's parser does."""
    value = parse_quantity(raw)
    text = str(raw).strip() if isinstance(raw, str) else ""
    if any(text.endswith(s) for s in _BINARY_SUFFIXES):
        return Quantity(value, BINARY_SI)
    if text and text[-1].isdigit() and any(c in "eE" for c in text.lstrip("+-")):
        return Quantity(value, DECIMAL_EXPONENT)
    return Quantity(value, DECIMAL_SI)


def canonical(value: Decimal, fmt: str = DECIMAL_SI) -> str:
    """Upstream `Quantity.String()`: values round up to nano units; BinarySI uses the largest power of 1024
    that divides an integral value of at least 1024, everything else the largest power of 1000 that leaves
    an integral mantissa (`1500` stays `1500`, `1000` is `1k`, `0.25` is `250m`)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    nanos = math.ceil(mag / _NANO)  # round up to the smallest unit, as upstream
    mag = Decimal(nanos) * _NANO
    if fmt == BINARY_SI and mag >= 1024 and mag == mag.to_integral_value():
        n, exp = int(mag), 0
        while n % 1024 == 0 and exp < len(_BINARY_SUFFIXES):
            n //= 1024
            exp += 1
        return f"{sign}{n}{_BINARY_SUFFIXES[exp - 1] if exp else ''}"
    exp = -9
    n = nanos
    while exp < 18 and n % 1000 == 0:
        n //= 1000
        exp += 3
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{n}" + (f"e{exp}" if exp else "")
    return f"{sign}{n}{_DECIMAL_SUFFIXES[exp]}"


def parse_list(raw: Any) -> ResourceList:
    """A ResourceList from JSON; malformed entries are skipped (validation reports them elsewhere)."""
    out: ResourceList = {}
    for name, q in (raw or {}).items() if isinstance(raw, dict) else ():
        try:
            out[str(name)] = parse(q)
        except (QuantityError, TypeError):
            continue
    return out


def to_json(rl: Mapping[str, Quantity]) -> dict[str, str]:
    return {name: str(q) for name, q in sorted(rl.items())}


# --- ResourceList arithmetic (pkg/quota/v1/resources.go) --------------------------------------------------


def add(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        out[name] = out[name] + q if name in out else q
    return out


def subtract_non_negative(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    """a - b per resource, floored at zero; resources only in b appear as zero (upstream semantics)."""
    out: ResourceList = {}
    for name, q in a.items():
        diff = q - b[name] if name in b else q
        out[name] = diff if diff.value > 0 else ZERO
    for name in b:
        out.setdefault(name, ZERO)
    return out


def mask(rl: Mapping[str, Quantity], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: q for name, q in rl.items() if name in keep}


def remove_zeros(rl: Mapping[str, Quantity]) -> ResourceList:
    return {name: q for name, q in rl.items() if q.value != 0}


def negative(rl: Mapping[str, Quantity]) -> list[str]:
    return sorted(name for name, q in rl.items() if q.value < 0)


def exceeded(used: Mapping[str, Quantity], hard: Mapping[str, Quantity]) -> list[str]:
    """Names whose value in `used` is above `hard` (upstream LessThanOrEqual's second result)."""
    return sorted(name for name, q in used.items() if name in hard and q.value > hard[name].value)


def equal(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> bool:
    return set(a) == set(b) and all(a[k].value == b[k].value for k in a)


def pretty(rl: Mapping[str, Quantity]) -> str:
    """`requests.cpu=2,requests.memory=1Gi`: sorted by name, as upstream's prettyPrint."""
    return ",".join(f"{name}={rl[name]}" for name in sorted(rl))


def _max_into(acc: ResourceList, other: Mapping[str, Quantity]) -> None:
    for name, q in other.items():
        if name not in acc or q.value > acc[name].value:
            acc[name] = q


# --- pods -------------------------------------------------------------------------------------------------


def _container_list(c: Any, part: str) -> ResourceList:
    return parse_list(((c or {}).get("resources") or {}).get(part)) if isinstance(c, dict) else {}


def _pod_aggregate(spec: Mapping[str, Any], part: str) -> ResourceList:
    """Upstream AggregateContainerRequests/Limits: the sum over app containers and restartable (sidecar)
    init containers, and at least what any init container needs next to the sidecars started before it."""
    total: ResourceList = {}
    for c in spec.get("containers") or []:
        total = add(total, _container_list(c, part))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in spec.get("initContainers") or []:
        own = _container_list(c, part)
        if isinstance(c, dict) and c.get("restartPolicy") == "Always":
            total = add(total, own)
            sidecars = add(sidecars, own)
            _max_into(init_max, sidecars)
        else:
            _max_into(init_max, add(own, sidecars))
    _max_into(total, init_max)
    return total


def pod_requests(pod: Obj) -> ResourceList:
    """`resourcehelper.PodRequests`: aggregate container requests plus spec.overhead."""
    spec = pod.get("spec") or {}
    return add(_pod_aggregate(spec, "requests"), parse_list(spec.get("overhead")))


def pod_limits(pod: Obj) -> ResourceList:
    """`resourcehelper.PodLimits`: aggregate container limits; overhead only on resources already limited."""
    spec = pod.get("spec") or {}
    limits = _pod_aggregate(spec, "limits")
    for name, q in parse_list(spec.get("overhead")).items():
        if name in limits:
            limits[name] = limits[name] + q
    return limits


def is_best_effort(pod: Obj) -> bool:
    """`qos.GetPodQOS(pod) == BestEffort`: no container requests or limits any cpu or memory."""
    spec = pod.get("spec") or {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        for part in ("requests", "limits"):
            rl = _container_list(c, part)
            if any(rl[n].value != 0 for n in ("cpu", "memory") if n in rl):
                return False
    return True


def is_terminating(pod: Obj) -> bool:
    ads = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return isinstance(ads, int) and not isinstance(ads, bool) and ads >= 0


def pod_counts_for_quota(pod: Obj, now: dt.datetime | None = None) -> bool:
    """`QuotaV1Pod`: terminal pods, and pods stuck terminating past their grace period, use no compute quota."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    md = pod.get("metadata") or {}
    deleted, grace = md.get("deletionTimestamp"), md.get("deletionGracePeriodSeconds")
    if deleted and isinstance(grace, int):
        when = parse_time(deleted) if isinstance(deleted, str) else None
        current = now or dt.datetime.now(dt.UTC)
        if when is not None and current > when + dt.timedelta(seconds=grace):
            return False
    return True


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource(name: str) -> bool:
    """`helper.IsExtendedResourceName`: outside the kubernetes.io domain and not itself a quota name."""
    return not is_native_resource(name) and not name.startswith("requests.")


_COMPUTE = ("cpu", "memory", "ephemeral-storage")


def pod_compute_usage(requests: Mapping[str, Quantity], limits: Mapping[str, Quantity]) -> ResourceList:
    """`podComputeUsageHelper`: the quota names a set of requests/limits accounts for (plus `pods`: 1)."""
    out: ResourceList = {"pods": Quantity(Decimal(1))}
    for name in _COMPUTE:
        if name in requests:
            out[name] = requests[name]
            out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, q in requests.items():
        if name.startswith("hugepages-"):
            out[name] = q
            out[f"requests.{name}"] = q
        if is_extended_resource(name):
            out[f"requests.{name}"] = q
    return out


_POD_RESOURCES = frozenset(
    {
        "count/pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
    }
)
# Resources for which every container must state a request or limit once a quota constrains them
# (upstream's "BACKWARD COMPATIBILITY REQUIREMENT" in pods.go).
_POD_VALIDATION = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = str(selector.get("scopeName") or "")
    op = selector.get("operator")
    values = selector.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


class Evaluator:
    """How one resource uses quota (upstream `quota.Evaluator`). The base counts objects: `count/<r>[.<g>]`
    and an optional legacy alias (`configmaps`, `secrets`...), on create only, with no scopes."""

    def __init__(self, group: str, plural: str, alias: str = "") -> None:
        self.group = group
        self.plural = plural
        self.count_name = object_count_name(group, plural)
        self.names = frozenset({self.count_name, alias} - {""})
        self.alias = alias

    def handles(self, operation: str) -> bool:
        return operation == CREATE

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in set(names) if n in self.names)

    def matches_scope(self, selector: Mapping[str, Any], obj: Obj) -> bool:
        """Object count, service and claim quotas support no scopes: a scoped quota never matches them."""
        return False

    def constraints(self, required: Sequence[str], obj: Obj) -> str | None:
        """Why `obj` cannot be admitted under a quota constraining `required` (None: fine)."""
        return None

    def usage(self, obj: Obj, now: dt.datetime | None = None) -> ResourceList:
        out: ResourceList = {self.count_name: Quantity(Decimal(1))}
        if self.alias:
            out[self.alias] = Quantity(Decimal(1))
        return out


class PodEvaluator(Evaluator):
    def __init__(self) -> None:
        super().__init__("", "pods")

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        out = set()
        for n in set(names):
            extended = n.startswith("requests.") and is_extended_resource(n[len("requests.") :])
            if n in _POD_RESOURCES or n.startswith(("hugepages-", "requests.hugepages-")) or extended:
                out.add(n)
        return sorted(out)

    def matches_scope(self, selector: Mapping[str, Any], obj: Obj) -> bool:
        scope = selector.get("scopeName")
        if scope == "Terminating":
            return is_terminating(obj)
        if scope == "NotTerminating":
            return not is_terminating(obj)
        if scope == "BestEffort":
            return is_best_effort(obj)
        if scope == "NotBestEffort":
            return not is_best_effort(obj)
        if scope == "PriorityClass":
            pc = str((obj.get("spec") or {}).get("priorityClassName") or "")
            if selector.get("operator") == "Exists":
                return bool(pc)
            return _selector_matches(selector, {"PriorityClass": pc} if pc else {})
        if scope == "CrossNamespacePodAffinity":
            return _cross_namespace_affinity(obj)
        return False

    def constraints(self, required: Sequence[str], obj: Obj) -> str | None:
        """`must specify limits.cpu for: a,b; memory for: a` when a constrained cpu/memory resource is not
        stated by every container."""
        wanted = set(required) & _POD_VALIDATION
        missing: dict[str, set[str]] = {}
        spec = obj.get("spec") or {}
        for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            have = set(pod_compute_usage(_container_list(c, "requests"), _container_list(c, "limits")))
            for name in wanted - have:
                missing.setdefault(name, set()).add(str((c or {}).get("name") or ""))
        if not missing:
            return None
        return "must specify " + "; ".join(
            f"{n} for: {','.join(sorted(missing[n]))}" for n in sorted(missing)
        )

    def usage(self, obj: Obj, now: dt.datetime | None = None) -> ResourceList:
        # count/pods tracks every stored pod; compute resources (and `pods`) only pods still alive.
        out: ResourceList = {"count/pods": Quantity(Decimal(1))}
        if not pod_counts_for_quota(obj, now):
            return out
        return add(out, pod_compute_usage(pod_requests(obj), pod_limits(obj)))


def _cross_namespace_affinity(pod: Obj) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = aff.get(kind) or {}
        terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [
            (t or {}).get("podAffinityTerm") or {}
            for t in a.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        if any((t or {}).get("namespaces") or (t or {}).get("namespaceSelector") is not None for t in terms):
            return True
    return False


class ServiceEvaluator(Evaluator):
    """`services`, `services.nodeports`, `services.loadbalancers`; creates and updates (a type change moves
    usage)."""

    def __init__(self) -> None:
        super().__init__("", "services")
        self.names = frozenset({"count/services", "services", "services.nodeports", "services.loadbalancers"})

    def handles(self, operation: str) -> bool:
        return operation in (CREATE, UPDATE)

    def usage(self, obj: Obj, now: dt.datetime | None = None) -> ResourceList:
        spec = obj.get("spec") or {}
        one = Quantity(Decimal(1))
        ports = Quantity(Decimal(len(spec.get("ports") or [])))
        out: ResourceList = {
            "count/services": one,
            "services": one,
            "services.loadbalancers": ZERO,
            "services.nodeports": ZERO,
        }
        kind = spec.get("type")
        if kind == "NodePort":
            out["services.nodeports"] = ports
        elif kind == "LoadBalancer":
            if spec.get("allocateLoadBalancerNodePorts", True) is not False:
                out["services.nodeports"] = ports
            out["services.loadbalancers"] = one
        return out


STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"


def claim_class(pvc: Obj) -> str:
    """`storagehelpers.GetPersistentVolumeClaimClass`: the beta annotation wins over spec.storageClassName."""
    ann = ((pvc.get("metadata") or {}).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class"
    )
    return str(ann if ann is not None else (pvc.get("spec") or {}).get("storageClassName") or "")


class PersistentVolumeClaimEvaluator(Evaluator):
    """`persistentvolumeclaims`, `requests.storage` and their per-storage-class forms; creates and updates
    (expansion)."""

    def __init__(self) -> None:
        super().__init__("", "persistentvolumeclaims")
        self.names = frozenset({"count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"})

    def handles(self, operation: str) -> bool:
        return operation in (CREATE, UPDATE)

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return sorted(
            n
            for n in set(names)
            if n in self.names
            or (
                STORAGE_CLASS_SUFFIX in n
                and n.rsplit("/", 1)[-1] in ("persistentvolumeclaims", "requests.storage")
            )
        )

    def usage(self, obj: Obj, now: dt.datetime | None = None) -> ResourceList:
        one = Quantity(Decimal(1))
        out: ResourceList = {"persistentvolumeclaims": one, "count/persistentvolumeclaims": one}
        sc = claim_class(obj)
        if sc:
            out[f"{sc}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = one
        requested = parse_list(((obj.get("spec") or {}).get("resources") or {}).get("requests")).get(
            "storage"
        )
        allocated = parse_list((obj.get("status") or {}).get("allocatedResources")).get("storage")
        if allocated is not None and (requested is None or allocated.value > requested.value):
            requested = allocated
        if requested is not None:
            out["requests.storage"] = requested
            if sc:
                out[f"{sc}{STORAGE_CLASS_SUFFIX}requests.storage"] = requested
        return out


# Object counts with a legacy alias (upstream legacyObjectCountAliases).
LEGACY_ALIASES = {
    "configmaps": "configmaps",
    "resourcequotas": "resourcequotas",
    "replicationcontrollers": "replicationcontrollers",
    "secrets": "secrets",
}


def object_count_name(group: str, plural: str) -> str:
    """`count/pods`, `count/deployments.apps` (upstream ObjectCountQuotaResourceNameFor)."""
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def evaluator_for(group: str, plural: str) -> Evaluator:
    """The evaluator of a resource: pods, services and claims have their own; every other resource is an
    object count (upstream adds those on demand, as here)."""
    if not group:
        if plural == "pods":
            return PodEvaluator()
        if plural == "services":
            return ServiceEvaluator()
        if plural == "persistentvolumeclaims":
            return PersistentVolumeClaimEvaluator()
        return Evaluator("", plural, LEGACY_ALIASES.get(plural, ""))
    return Evaluator(group, plural)


def parse_count_name(name: str) -> tuple[str, str] | None:
    """(group, plural) of a `count/<resource>[.<group>]` quota name, or None."""
    if not name.startswith("count/"):
        return None
    plural, _, group = name[len("count/") :].partition(".")
    return (group, plural) if plural else None


def tracked_resources(hard_names: Iterable[str]) -> set[tuple[str, str]]:
    """Every (group, plural) whose objects a quota with these hard names has to count."""
    out: set[tuple[str, str]] = set()
    names = set(hard_names)
    for group, plural in (("", "pods"), ("", "services"), ("", "persistentvolumeclaims")):
        if evaluator_for(group, plural).matching_resources(names):
            out.add((group, plural))
    for alias in LEGACY_ALIASES:
        if alias in names:
            out.add(("", alias))
    for n in names:
        gr = parse_count_name(n)
        if gr is not None:
            out.add(gr)
    return out


# --- quotas -----------------------------------------------------------------------------------------------


def scope_selectors(quota: Obj) -> list[dict[str, Any]]:
    """spec.scopes as `Exists` requirements, then spec.scopeSelector's (getScopeSelectorsFromQuota)."""
    spec = quota.get("spec") or {}
    out: list[dict[str, Any]] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    out += [
        dict(e)
        for e in (spec.get("scopeSelector") or {}).get("matchExpressions") or []
        if isinstance(e, dict)
    ]
    return out


def matches_scopes(evaluator: Evaluator, selectors: Sequence[Mapping[str, Any]], obj: Obj) -> bool:
    return all(evaluator.matches_scope(s, obj) for s in selectors)


def quota_matches(quota: Obj, evaluator: Evaluator, obj: Obj) -> bool:
    """`generic.Matches`: the quota's status.hard names a resource of this evaluator and every scope holds
    (so a quota the controller has not synced yet, with no status.hard, matches nothing, as upstream)."""
    hard = (quota.get("status") or {}).get("hard") or {}
    return bool(evaluator.matching_resources(hard)) and matches_scopes(evaluator, scope_selectors(quota), obj)


class QuotaRefused(Exception):
    """The request does not fit a quota; the message is upstream's (without the `... is forbidden: ` prefix)."""


def check_request(
    quotas: Sequence[Obj], evaluator: Evaluator, operation: str, obj: Obj, old: Obj | None
) -> list[tuple[int, dict[str, str]]]:
    """Upstream `CheckRequest`: for each quota that constrains `obj`, its new `status.used` if admitted, as
    (index in `quotas`, used). Raises QuotaRefused with upstream's message when a quota is exceeded, a
    constrained resource is not stated (`failed quota`) or a quota's usage is not known yet. Pure."""
    if not evaluator.handles(operation):
        return []
    interesting: list[int] = []
    for i, q in enumerate(quotas):
        if not quota_matches(q, evaluator, obj):
            continue
        status = q.get("status") or {}
        hard_names = list((status.get("hard") or {}).keys())
        restricted = evaluator.matching_resources(hard_names)
        why = evaluator.constraints(restricted, obj)
        name = (q.get("metadata") or {}).get("name", "")
        if why is not None:
            raise QuotaRefused(f"failed quota: {name}: {why}")
        used_names = set((status.get("used") or {}).keys())
        if any(n not in used_names for n in restricted):
            raise QuotaRefused(f"status unknown for quota: {name}, resources: {','.join(sorted(restricted))}")
        interesting.append(i)
    if not interesting:
        return []
    delta = evaluator.usage(obj)
    bad = negative(delta)
    if bad:
        raise QuotaRefused(f"quota usage is negative for resource(s): {','.join(bad)}")
    if operation == UPDATE and old is not None and (old.get("metadata") or {}).get("resourceVersion"):
        delta = subtract_non_negative(delta, evaluator.usage(old))
    delta = remove_zeros(delta)
    if not delta:
        return []
    out: list[tuple[int, dict[str, str]]] = []
    for i in interesting:
        q = quotas[i]
        status = q.get("status") or {}
        hard = parse_list(status.get("hard"))
        used = parse_list(status.get("used"))
        requested = mask(delta, hard)
        new_used = add(used, requested)
        over = exceeded(mask(new_used, requested), hard)
        if over:
            raise QuotaRefused(
                f"exceeded quota: {(q.get('metadata') or {}).get('name', '')}, requested: {pretty(mask(requested, over))}, "
                f"used: {pretty(mask(used, over))}, limited: {pretty(mask(hard, over))}"
            )
        out.append((i, to_json(new_used)))
    return out


ListFunc = Callable[[str, str], Sequence[Obj] | None]


def calculate_usage(quota: Obj, objects: ListFunc, now: dt.datetime | None = None) -> ResourceList | None:
    """`quota.CalculateUsage` for one quota: every hard resource an evaluator tracks, summed over the
    namespace's objects that match the quota's scopes. `objects(group, plural)` lists the namespace's objects
    of a resource, or None when they are not known yet (the result is then None: try again later)."""
    hard = parse_list((quota.get("spec") or {}).get("hard"))
    selectors = scope_selectors(quota)
    usage: ResourceList = {}
    matched: set[str] = set()
    for group, plural in sorted(tracked_resources(hard)):
        evaluator = evaluator_for(group, plural)
        names = evaluator.matching_resources(hard)
        if not names:
            continue
        items = objects(group, plural)
        if items is None:
            return None
        matched.update(names)
        stats: ResourceList = {n: ZERO for n in names}
        for item in items:
            if matches_scopes(evaluator, selectors, item):
                stats = add(stats, evaluator.usage(item, now))
        usage = add(usage, mask(stats, names))
    return mask(usage, matched)


def quota_status(quota: Obj, usage: Mapping[str, Quantity]) -> dict[str, Any] | None:
    """The status the controller writes (hard = spec.hard; used = the recomputed usage over the previous
    observation, masked to hard), or None when the stored status already says that."""
    spec_hard = parse_list((quota.get("spec") or {}).get("hard"))
    status = quota.get("status") or {}
    old_used = parse_list(status.get("used"))
    used = mask(add({}, {**old_used, **usage}), spec_hard)
    dirty = (
        "hard" not in status
        or "used" not in status
        or not equal(parse_list(status.get("hard")), spec_hard)
        or not equal(used, old_used)
    )
    if not dirty:
        return None
    return {"hard": to_json(spec_hard), "used": to_json(used)}
