"""A pod's status as the kubelet reports it, computed purely from the runtime's view and the prober's results.

Mirrors `pkg/kubelet/kubelet_pods.go` (`generateAPIPodStatus`, `getPhase`, `convertToAPIContainerStatuses`) and
`pkg/kubelet/status/generate.go` (the Initialized / ContainersReady / Ready conditions and their messages):

- container states: running{startedAt}; terminated{exitCode, reason, message, startedAt, finishedAt,
  containerID}; waiting{reason, message} — a dead container that will be restarted shows `waiting` (e.g.
  `CrashLoopBackOff`) with the dead one as `lastState`; defaults are `ContainerCreating` for app containers
  and `PodInitializing` for init containers and for app containers of an uninitialized pod;
- a container the runtime lost that was running is reported terminated with `ContainerStatusUnknown` (137);
- phase from `getPhase` including the restartPolicy rules; a terminal phase is never left again (the status
  manager's rule);
- `lastTransitionTime` of a condition is kept while its status does not change; `startTime` is set once.

`status_patch` turns (old, new) into the strategic merge patch the status manager sends
(`CreateTwoWayMergePatch` with the pod status' merge keys), so only what changed travels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from skiff.agent.podactions import Waiting, by_name, is_sidecar, restart_count_of
from skiff.agent.runtime.interface import ContainerState, ContainerStatus, SandboxState, SandboxStatus
from skiff.api.meta import Obj, rfc3339
from skiff.api.pods import readiness_gates_message

TERMINAL_PHASES = ("Succeeded", "Failed")
CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
UNKNOWN_EXIT_CODE = 137
# The PodStatus lists with a patch merge key (core/v1 types.go); container statuses are atomic lists.
MERGE_KEYS = {
    "conditions": "type",
    "podIPs": "ip",
    "hostIPs": "ip",
    "resourceClaimStatuses": "name",
}


def _ts(ns: int) -> str | None:
    return rfc3339(dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)) if ns else None


def _terminated(c: ContainerStatus, runtime_type: str) -> Obj:
    out: Obj = {
        "exitCode": c.exit_code,
        "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
        "startedAt": _ts(c.started_at_ns),
        "finishedAt": _ts(c.finished_at_ns),
        "containerID": f"{runtime_type}://{c.id}",
    }
    if c.message:
        out["message"] = c.message
    return out


def _state_of(c: ContainerStatus, runtime_type: str) -> Obj:
    if c.state == ContainerState.RUNNING:
        return {"running": {"startedAt": _ts(c.started_at_ns)}}
    if c.state == ContainerState.CREATED:
        return {"waiting": {"reason": "ContainerCreating"}}
    return {"terminated": _terminated(c, runtime_type)}


def _waiting(w: Waiting) -> Obj:
    body: Obj = {"reason": w.reason}
    if w.message:
        body["message"] = w.message
    return {"waiting": body}


def container_status(
    spec: Obj,
    group: list[ContainerStatus],
    *,
    waiting: Waiting | None,
    default_reason: str,
    ready: bool,
    started: bool,
    previous: Obj | None,
    runtime_type: str = "containerd",
    init: bool = False,
) -> Obj:
    """One entry of containerStatuses/initContainerStatuses. `group` is the container's runtime instances,
    newest first; `previous` its entry in the status last reported (used when the runtime lost it)."""
    name = str(spec.get("name", ""))
    out: Obj = {"name": name, "image": str(spec.get("image") or ""), "imageID": "", "restartCount": 0,
                "ready": False, "started": False, "state": {}, "lastState": {}}
    if not group:
        prev_state = (previous or {}).get("state") or {}
        if waiting is None and "terminated" in prev_state:
            return {**previous, "ready": False, "started": False} if previous else out
        if waiting is None and "running" in prev_state:
            out["state"] = {"terminated": {
                "exitCode": UNKNOWN_EXIT_CODE, "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
                "startedAt": None, "finishedAt": None}}
            out["restartCount"] = int((previous or {}).get("restartCount") or 0)
            return out
        out["state"] = _waiting(waiting or Waiting(default_reason, ""))
        return out
    latest = group[0]
    out["image"] = latest.image or out["image"]
    out["imageID"] = latest.image_ref
    out["containerID"] = f"{runtime_type}://{latest.id}"
    out["restartCount"] = restart_count_of(latest)
    if latest.state == ContainerState.EXITED and waiting is not None:
        out["state"] = _waiting(waiting)
        out["lastState"] = {"terminated": _terminated(latest, runtime_type)}
        return out
    out["state"] = _state_of(latest, runtime_type)
    if len(group) > 1:
        out["lastState"] = {"terminated": _terminated(group[1], runtime_type)}
    if latest.state == ContainerState.RUNNING:
        out["ready"] = ready and started
        out["started"] = started
    elif init and not is_sidecar(spec) and latest.state == ContainerState.EXITED and latest.exit_code == 0:
        out["ready"] = True  # a completed init container counts as ready (generateAPIPodStatus)
    return out


def _init_done(status: Obj, spec: Obj) -> bool:
    if is_sidecar(spec):
        return bool(status.get("started"))
    term: Obj | None = (status.get("state") or {}).get("terminated")
    return term is not None and term.get("exitCode") == 0


def get_phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj]) -> str:
    """Upstream `getPhase` for a pod that is not (yet) terminal."""
    spec = pod.get("spec") or {}
    policy = str(spec.get("restartPolicy") or "Always")
    init_specs = {str(c.get("name", "")): c for c in spec.get("initContainers") or []}
    pending_init = failed_init = 0
    for st in init_statuses:
        if is_sidecar(init_specs.get(st["name"], {})):
            continue
        state, last = st.get("state") or {}, st.get("lastState") or {}
        term: Obj | None = state.get("terminated") or (last.get("terminated") if "waiting" in state else None)
        if term is None:
            pending_init += 1
        elif term.get("exitCode") != 0:
            failed_init += 1
    if failed_init and policy == "Never":
        return "Failed"
    any_regular_started = any("running" in (s.get("state") or {}) or "terminated" in (s.get("state") or {})
                              or (s.get("lastState") or {}).get("terminated") for s in statuses)
    waiting = running = stopped = succeeded = unknown = 0
    for st in statuses:
        state, last = st.get("state") or {}, st.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if last.get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if (pending_init or failed_init) and not any_regular_started:
        return "Pending"
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _terminal_phase(statuses: list[Obj]) -> str:
    """The phase of a pod whose containers were all stopped for good (deletion): Succeeded only if all
    regular containers exited 0 (upstream `getPhase` with podIsTerminal)."""
    for st in statuses:
        term = (st.get("state") or {}).get("terminated") or (st.get("lastState") or {}).get("terminated")
        if not term or term.get("exitCode") != 0:
            return "Failed"
    return "Succeeded" if statuses else "Failed"


def _condition(type_: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def conditions(pod: Obj, *, sandbox_ready: bool, init_statuses: list[Obj], statuses: list[Obj], phase: str,
               now: dt.datetime) -> list[Obj]:
    """The kubelet's conditions merged into the pod's existing ones (others, e.g. readiness gates, kept)."""
    spec = pod.get("spec") or {}
    init_specs = {str(c.get("name", "")): c for c in spec.get("initContainers") or []}
    completed = phase == "Succeeded"
    regular_started = any(s.get("state", {}).get("running") or s.get("state", {}).get("terminated")
                          or (s.get("lastState") or {}).get("terminated") for s in statuses)
    incomplete = [s["name"] for s in init_statuses if not _init_done(s, init_specs.get(s["name"], {}))]
    if not incomplete or regular_started:
        initialized = _condition("Initialized", True, "PodCompleted" if completed and not init_statuses else "")
    else:
        initialized = _condition("Initialized", False, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(incomplete)}]")
    unready = [s["name"] for s in init_statuses if is_sidecar(init_specs.get(s["name"], {})) and not s["ready"]]
    unready += [s["name"] for s in statuses if not s["ready"]]
    if completed:
        containers_ready = _condition("ContainersReady", False, "PodCompleted")
    elif unready:
        containers_ready = _condition("ContainersReady", False, "ContainersNotReady",
                                      f"containers with unready status: [{' '.join(unready)}]")
    else:
        containers_ready = _condition("ContainersReady", True)
    gates = readiness_gates_message(pod)
    if containers_ready["status"] != "True":
        ready = {**containers_ready, "type": "Ready"}
    elif gates:
        ready = _condition("Ready", False, "ReadinessGatesNotReady", gates)
    else:
        ready = _condition("Ready", True)
    computed = [_condition("PodReadyToStartContainers", sandbox_ready), initialized, ready, containers_ready]
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}
    stamp = rfc3339(now)
    out: dict[str, Obj] = {t: dict(c) for t, c in old.items() if isinstance(t, str)}
    for c in computed:
        prev = old.get(c["type"])
        c["lastTransitionTime"] = (prev.get("lastTransitionTime") or stamp) if prev and prev.get(
            "status") == c["status"] else stamp
        out[c["type"]] = c
    rank = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(out.values(), key=lambda c: rank.get(str(c.get("type", "")), len(rank)))


def pod_status(
    pod: Obj,
    sandbox: SandboxStatus | None,
    containers: list[ContainerStatus],
    *,
    ready: Callable[[str], bool],
    started: Callable[[str], bool],
    waiting: Mapping[str, Waiting],
    host_ip: str,
    now: dt.datetime,
    terminal: bool = False,
    runtime_type: str = "containerd",
) -> Obj:
    """The full status of `pod` (its previous status is `pod["status"]`); pure, arguments not mutated.

    `sandbox` is the pod's newest sandbox, `containers` all its runtime containers; `ready`/`started` are the
    prober's results by container name; `waiting` says why containers are not running (from the pod actions,
    image pulls, config errors); `terminal` is set once the kubelet stopped the pod for good (deletion).
    """
    spec = pod.get("spec") or {}
    prev = pod.get("status") or {}
    groups = by_name(containers)
    prev_by_name = {s.get("name"): s for key in ("initContainerStatuses", "containerStatuses")
                    for s in prev.get(key) or []}
    init_statuses = []
    all_init_done = True
    for c in spec.get("initContainers") or []:
        name = str(c.get("name", ""))
        st = container_status(c, groups.get(name, []), waiting=waiting.get(name), default_reason="PodInitializing",
                              ready=ready(name), started=started(name), previous=prev_by_name.get(name),
                              runtime_type=runtime_type, init=True)
        init_statuses.append(st)
        all_init_done = all_init_done and _init_done(st, c)
    any_app = any(groups.get(str(c.get("name", ""))) for c in spec.get("containers") or [])
    app_default = "ContainerCreating" if all_init_done or any_app else "PodInitializing"
    statuses = [
        container_status(c, groups.get(str(c.get("name", "")), []), waiting=waiting.get(str(c.get("name", ""))),
                         default_reason=app_default, ready=ready(str(c.get("name", ""))),
                         started=started(str(c.get("name", ""))), previous=prev_by_name.get(c.get("name")),
                         runtime_type=runtime_type)
        for c in spec.get("containers") or []
    ]
    if prev.get("phase") in TERMINAL_PHASES:
        phase = str(prev["phase"])
    elif terminal:
        phase = _terminal_phase(statuses)
    else:
        phase = get_phase(pod, init_statuses, statuses)
    sandbox_ready = sandbox is not None and sandbox.state == SandboxState.READY and phase not in TERMINAL_PHASES
    out: Obj = {"phase": phase}
    out["conditions"] = conditions(pod, sandbox_ready=sandbox_ready, init_statuses=init_statuses,
                                   statuses=statuses, phase=phase, now=now)
    for key in ("message", "reason", "nominatedNodeName", "qosClass"):
        if prev.get(key):
            out[key] = prev[key]
    if host_ip:
        out["hostIP"] = host_ip
        out["hostIPs"] = [{"ip": host_ip}]
    if spec.get("hostNetwork") and host_ip:
        ips = [host_ip]
    elif sandbox is not None and sandbox.ip:
        ips = [sandbox.ip, *sandbox.additional_ips]
    else:
        ips = [str(p.get("ip")) for p in prev.get("podIPs") or [] if p.get("ip")] or (
            [str(prev["podIP"])] if prev.get("podIP") else [])
    if ips:
        out["podIP"] = ips[0]
        out["podIPs"] = [{"ip": ip} for ip in ips]
    out["startTime"] = prev.get("startTime") or rfc3339(now)
    if init_statuses:
        out["initContainerStatuses"] = init_statuses
    out["containerStatuses"] = statuses
    return out


# --- the status manager's patch ---------------------------------------------------------------------------


def _list_patch(old: list[Any], new: list[Any], key: str) -> list[Any]:
    old_by = {o.get(key): o for o in old if isinstance(o, dict)}
    new_keys = {n.get(key) for n in new if isinstance(n, dict)}
    out: list[Any] = []
    for item in new:
        before = old_by.get(item.get(key))
        if before is None:
            out.append(item)
        elif before != item:
            out.append({key: item.get(key), **two_way_patch(before, item)})
    out.extend({key: k, "$patch": "delete"} for k in old_by if k not in new_keys)
    return out


def two_way_patch(old: Obj, new: Obj) -> Obj:
    """A strategic merge patch taking `old` to `new` (`CreateTwoWayMergePatch` for pod status): removed keys
    are null, keyed lists are patched per item (removals as `$patch: delete`; new items are appended, which
    keeps spec order as the kubelet always reports every container), other lists and scalars are replaced."""
    out: Obj = {k: None for k in old if k not in new}
    for k, v in new.items():
        before = old.get(k)
        if before == v:
            continue
        key = MERGE_KEYS.get(k)
        if isinstance(v, dict) and isinstance(before, dict):
            sub = two_way_patch(before, v)
            if sub:
                out[k] = sub
        elif (key and isinstance(v, list) and isinstance(before, list)
              and all(isinstance(x, dict) and key in x for x in [*before, *v])):
            out[k] = _list_patch(before, v, key)
        else:
            out[k] = v
    return out


def status_patch(uid: str, old_status: Obj, new_status: Obj) -> Obj:
    """The PATCH body for `pods/<name>/status`: the uid as a precondition plus the status difference."""
    return {"metadata": {"uid": uid}, "status": two_way_patch(old_status, new_status)}
