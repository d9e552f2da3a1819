"""Pod: defaults, validation, the update rules, QoS class, selectable fields and the kubectl Table row.

Mirrors `pkg/registry/core/pod/strategy.go` (PrepareForCreate sets phase Pending + qosClass; selectable
fields), `pkg/apis/core/validation` ValidatePodUpdate, and `printPod` in
`pkg/printers/internalversion/printers.go` (the Status column logic kubectl shows).
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, human_duration, name_of, parse_time
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.resources import ALL_VERBS, SUB_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.core.common import (
    age_col,
    col,
    name_col,
    render,
    since,
    validate_dns1123_subdomain,
    validate_ip,
)
from skiff.apiserver.registry.core.podspec import (
    default_pod_spec,
    requests_from_limits,
    validate_pod_spec,
    validate_tolerations,
)
from skiff.apiserver.registry.strategy import Column, Strategy

UPDATABLE_POD_SPEC_FIELDS = ",".join(
    (
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    )
)

POD_SUCCESS_CONDITIONS = [
    {
        "type": "Completed",
        "status": "True",
        "reason": "Succeeded",
        "message": "The pod has completed successfully.",
    }
]
POD_FAILED_CONDITIONS = [
    {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
]


def _q(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError):
        return Decimal(0)


def qos_class(spec: dict[str, Any]) -> str:
    """`qos.GetPodQOS`: BestEffort (no cpu/memory requests or limits), Guaranteed (limits for cpu and
    memory on every container and requests equal to limits), else Burstable."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        res = (c or {}).get("resources") or {}
        for name, q in (res.get("requests") or {}).items():
            if name in ("cpu", "memory") and _q(q) != 0:
                requests[name] = requests.get(name, Decimal(0)) + _q(q)
        found = set()
        for name, q in (res.get("limits") or {}).items():
            if name in ("cpu", "memory") and _q(q) != 0:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + _q(q)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(n) == q for n, q in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# DefaultTolerationSeconds admission (`plugin/pkg/admission/defaulttolerationseconds`): how long a pod
# stays bound to a node that became not ready or unreachable before the taint manager evicts it.
DEFAULT_TOLERATION_SECONDS = 300
DEFAULT_TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def add_default_tolerations(spec: dict[str, Any]) -> None:
    """Append `{key, operator: Exists, effect: NoExecute, tolerationSeconds: 300}` for the not-ready and
    unreachable taints unless an existing toleration already covers that key (same or empty key) with
    effect NoExecute or any effect, as the upstream admission plugin does. Mutates `spec`; idempotent."""
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return
    added = []
    for key in DEFAULT_TOLERATION_KEYS:
        covered = any(
            isinstance(t, dict)
            and (t.get("key") or "") in (key, "")
            and (t.get("effect") or "") in ("NoExecute", "")
            for t in tolerations
        )
        if not covered:
            added.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    if added:
        spec["tolerations"] = tolerations + added


def _ts(value: Any) -> dt.datetime | None:
    return parse_time(value) if isinstance(value, str) else None


def _restartable(c: Any) -> bool:
    return isinstance(c, dict) and c.get("restartPolicy") == "Always"


def pod_status_text(pod: Obj) -> tuple[str, int, int, dt.datetime | None]:
    """The Status cell plus (ready, restarts, last restart time), following upstream `printPod`."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    restarts = ready = 0
    sidecar_restarts = 0
    last_restart: dt.datetime | None = None
    last_sidecar_restart: dt.datetime | None = None

    def later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
        return b if b is not None and (a is None or b > a) else a

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        finished = _ts(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        last_restart = later(last_restart, finished)
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + term["reason"]
        elif wait is not None and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            finished = _ts(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            last_restart = later(last_restart, finished)
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = (
                    f"Signal:{term['signal']}"
                    if term.get("signal")
                    else f"ExitCode:{int(term.get('exitCode') or 0)}"
                )
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"

    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, restarts, last_restart


class PodStrategy(Strategy):
    info = ResourceInfo(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        True,
        ("po",),
        ("all",),
        ALL_VERBS,
        (
            Subresource("attach", "", "v1", "PodAttachOptions", ("create", "get")),
            Subresource("binding", "", "v1", "Binding", ("create",)),
            Subresource("ephemeralcontainers", "", "v1", "Pod", SUB_VERBS),
            Subresource("eviction", "policy", "v1", "Eviction", ("create",)),
            Subresource("exec", "", "v1", "PodExecOptions", ("create", "get")),
            Subresource("log", "", "v1", "Pod", ("get",)),
            Subresource("portforward", "", "v1", "PodPortForwardOptions", ("create", "get")),
            Subresource("proxy", "", "v1", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
            Subresource("status", "", "v1", "Pod", SUB_VERBS),
        ),
    )
    status_subresource = True
    tracks_generation = False  # metadata.generation on pods arrives in 1.33

    def defaults(self, obj: Obj) -> None:
        """`SetDefaults_Pod` + `SetDefaults_PodSpec` (pod-only: requests from limits, enableServiceLinks)."""
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        requests_from_limits(spec.get("containers"))
        requests_from_limits(spec.get("initContainers"))
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)

    def prepare_for_create(self, obj: Obj) -> None:
        """Status starts as Pending with the QoS class. Defaults are applied first because the QoS class
        depends on requests defaulted from limits (the generic store runs `prepare_for_create` before
        `defaults`; defaulting is idempotent). spec.priority and preemptionPolicy are left to the Priority
        admission plugin (`skiff/apiserver/admission/priority.py`), which must see what the client sent."""
        self.defaults(obj)
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        if isinstance(spec, dict):
            add_default_tolerations(spec)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return self.validate(new) + validate_pod_update(new.get("spec") or {}, old.get("spec") or {})

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return validate_pod_status_update(new, old)

    def columns(self) -> list[Column]:
        return [
            name_col(),
            col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
            col("Status", description="The aggregate status of the containers in this pod."),
            col(
                "Restarts",
                description="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age_col(),
            col("IP", "V1PodStatus", "podIP", priority=1),
            col("Node", "V1PodSpec", "nodeName", priority=1),
            col("Nominated Node", "V1PodStatus", "nominatedNodeName", priority=1),
            col("Readiness Gates", "V1PodSpec", "readinessGates", priority=1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        reason, ready, restarts, last = pod_status_text(obj)
        total = len(spec.get("containers") or []) + sum(
            1 for c in spec.get("initContainers") or [] if _restartable(c)
        )
        restarts_text = str(restarts)
        if restarts and last is not None:
            restarts_text = f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
        ips = status.get("podIPs") or []
        ip = (ips[0] or {}).get("ip") if ips else status.get("podIP")
        gates = spec.get("readinessGates") or []
        gates_text = "<none>"
        if gates:
            conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
            true = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
            gates_text = f"{true}/{len(gates)}"
        return [
            name_of(obj),
            f"{ready}/{total}",
            reason,
            restarts_text,
            since((obj.get("metadata") or {}).get("creationTimestamp"), now),
            ip or "<none>",
            spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>",
            gates_text,
        ]

    def row_conditions(self, obj: Obj) -> list[dict[str, str]]:
        """Table row conditions: `Completed` for Succeeded/Failed pods (upstream podSuccessConditions)."""
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Succeeded":
            return copy.deepcopy(POD_SUCCESS_CONDITIONS)
        if phase == "Failed":
            return copy.deepcopy(POD_FAILED_CONDITIONS)
        return []

    def fields(self, obj: Obj) -> dict[str, str]:
        """`pod.ToSelectableFields`."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        ips = status.get("podIPs") or []
        return {
            "spec.nodeName": spec.get("nodeName") or "",
            "spec.restartPolicy": spec.get("restartPolicy") or "",
            "spec.schedulerName": spec.get("schedulerName") or "",
            "spec.serviceAccountName": spec.get("serviceAccountName") or "",
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": status.get("phase") or "",
            "status.podIP": ((ips[0] or {}).get("ip") if ips else status.get("podIP")) or "",
            "status.nominatedNodeName": status.get("nominatedNodeName") or "",
        }


def _tolerations_only_added(new: list[Any], old: list[Any]) -> bool:
    """Every old toleration still present in `new`, ignoring tolerationSeconds changes."""
    for o in old:
        found = False
        for n in new:
            clone = dict(o)
            if "tolerationSeconds" in n:
                clone["tolerationSeconds"] = n["tolerationSeconds"]
            else:
                clone.pop("tolerationSeconds", None)
            if clone == n:
                found = True
                break
        if not found:
            return False
    return True


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[v.FieldError]:
    """`ValidatePodUpdate`'s spec rules: only images, activeDeadlineSeconds (never raised or unset),
    added tolerations, terminationGracePeriodSeconds (negative → 1) and removed scheduling gates change."""
    errs: list[v.FieldError] = []
    new_ads, old_ads = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_ads is not None:
        if isinstance(old_ads, int) and isinstance(new_ads, int) and old_ads < new_ads:
            errs.append(
                v.invalid(
                    "spec.activeDeadlineSeconds", new_ads, "must be less than or equal to previous value"
                )
            )
    elif old_ads is not None:
        errs.append(
            v.invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    new_tol, old_tol = new.get("tolerations") or [], old.get("tolerations") or []
    if not _tolerations_only_added(new_tol, old_tol):
        errs.append(
            v.forbidden(
                "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
            )
        )
    else:
        errs += validate_tolerations("spec.tolerations", new_tol)
    old_gates = {g.get("name") for g in old.get("schedulingGates") or []}
    for g in new.get("schedulingGates") or []:
        if g.get("name") not in old_gates:
            errs.append(
                v.forbidden(
                    "spec.schedulingGates",
                    f"only deletion is allowed, but found new scheduling gate '{g.get('name')}'",
                )
            )

    munged = copy.deepcopy(new)
    for key in ("containers", "initContainers"):
        new_cs, old_cs = munged.get(key) or [], old.get(key) or []
        if len(new_cs) == len(old_cs):
            for nc, oc in zip(new_cs, old_cs, strict=True):
                if isinstance(nc, dict) and isinstance(oc, dict):
                    if "image" in oc:
                        nc["image"] = oc["image"]
                    else:
                        nc.pop("image", None)
                    # The pull policy follows the image on defaulting; it is not a user change.
                    if "imagePullPolicy" in oc:
                        nc["imagePullPolicy"] = oc["imagePullPolicy"]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in old:
            munged[key] = old[key]
        else:
            munged.pop(key, None)
    old_tgps = old.get("terminationGracePeriodSeconds")
    if isinstance(old_tgps, int) and old_tgps < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_tgps
    if munged != old:
        diff = "\n".join(spec_diff(old, munged, "spec"))
        errs.append(
            v.forbidden(
                "spec", f"pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{diff}"
            )
        )
    return errs


_ABSENT = object()


def spec_diff(old: Any, new: Any, path: str) -> list[str]:
    """Leaf differences as `- path: old` / `+ path: new` lines (JSON values), in the spirit of the
    `cmp.Diff(old, new)` text upstream appends to the Forbidden message."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += spec_diff(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{path}.{k}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            out += spec_diff(o, n, f"{path}[{i}]")
        return out
    lines = []
    if old is not _ABSENT:
        lines.append(f"- {path}: {render(old)}")
    if new is not _ABSENT:
        lines.append(f"+ {path}: {render(new)}")
    return lines


def _terminated_not_restartable(
    old_statuses: Any, new_statuses: Any, path: str, restart_policy: str
) -> list[v.FieldError]:
    """`ValidateContainerStateTransition`: without restartPolicy Always, terminated containers stay terminated
    (OnFailure lets failed ones restart)."""
    if restart_policy == "Always":
        return []
    errs: list[v.FieldError] = []
    new_by_name = {c.get("name"): c for c in new_statuses or [] if isinstance(c, dict)}
    for i, old_cs in enumerate(old_statuses or []):
        term = ((old_cs or {}).get("state") or {}).get("terminated")
        if term is None:
            continue
        if int(term.get("exitCode") or 0) != 0 and restart_policy == "OnFailure":
            continue
        new_cs = new_by_name.get(old_cs.get("name"))
        if new_cs is not None and ((new_cs.get("state") or {}).get("terminated")) is None:
            errs.append(v.forbidden(f"{path}[{i}].state", "may not be transitioned to non-terminated state"))
    return errs


def validate_pod_status_update(new: Obj, old: Obj) -> list[v.FieldError]:
    """`ValidatePodStatusUpdate`: conditions, nominatedNodeName, container state transitions, pod IPs."""
    errs: list[v.FieldError] = []
    status, old_status = new.get("status") or {}, old.get("status") or {}
    for i, cond in enumerate(status.get("conditions") or []):
        ctype = (cond or {}).get("type") or ""
        errs += v.check(f"status.conditions[{i}].type", ctype, v.qualified_name(ctype))
        cstatus = (cond or {}).get("status")
        if cstatus not in ("True", "False", "Unknown"):
            errs.append(
                v.not_supported(f"status.conditions[{i}].status", cstatus, ("True", "False", "Unknown"))
            )
    nominated = status.get("nominatedNodeName")
    if nominated and nominated != old_status.get("nominatedNodeName"):
        errs += validate_dns1123_subdomain("status.nominatedNodeName", nominated)
    policy = str((old.get("spec") or {}).get("restartPolicy") or "Always")
    errs += _terminated_not_restartable(
        old_status.get("containerStatuses"),
        status.get("containerStatuses"),
        "status.containerStatuses",
        policy,
    )
    errs += _terminated_not_restartable(
        old_status.get("initContainerStatuses"),
        status.get("initContainerStatuses"),
        "status.initContainerStatuses",
        "Never" if policy == "Never" else "OnFailure",
    )
    ips = status.get("podIPs") or []
    for i, entry in enumerate(ips):
        errs += validate_ip(f"status.podIPs[{i}].ip", (entry or {}).get("ip"))
    if len(ips) > 1 and not errs:
        fams = {":" in str((e or {}).get("ip")) for e in ips}
        if len(ips) > 2 or len(fams) != len(ips):
            errs.append(v.invalid("status.podIPs", ips, "may specify no more than one IP for each IP family"))
    return errs
