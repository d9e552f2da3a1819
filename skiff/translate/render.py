"""Turn a `Workload` into Kubernetes objects, the same way for Compose, Marathon and Nomad.

`render_workload` is pure and deterministic: the same `Workload` always gives the same objects in the same
order (the controller object first, then its Services), so re-deploying a stack diffs cleanly. Every name
it emits is a valid DNS-1123 label (Services: DNS-1035), derived from the workload name by `dns_label`,
which leaves valid names untouched and maps anything else to a stable, hashed form.

Choices where the dialects have no exact Kubernetes twin, documented once here:

* **Update policy.** Swarm's `parallelism` is how many tasks change at once. With `stop-first` that is
  `maxUnavailable` (old tasks stop before new ones start, `maxSurge: 0`); with `start-first` it is
  `maxSurge` (`maxUnavailable: 0`). `parallelism: 0` means "all at once" → `100%`. `monitor` (how long a
  new task must stay healthy) → `minReadySeconds`. Explicit `max_surge`/`max_unavailable` win.
* **Health checks.** A `Check` becomes a readiness probe (not routed while unhealthy) and a liveness probe
  (restarted when unhealthy), as a Swarm task is both. `start_period` becomes a startup probe with
  `failureThreshold = ceil(start_period / period) + failure_threshold`, so failures during the start period
  do not count, exactly Docker's rule, and the regular probes take over once it succeeds.
* **Published ports.** A port published in the NodePort range (30000-32767) goes into a NodePort Service
  `<svc>-nodeport` with that exact `nodePort`, so `<any node>:<published>` works as with Swarm's routing
  mesh. A port outside that range (80, 443, 8080...) cannot be a nodePort; it goes into a LoadBalancer
  Service `<svc>-lb` with `port: <published>`, which k3s-style ServiceLB answers on every node's address,
  again like the routing mesh. `host_port` ports (Swarm `mode: host`) are `hostPort`s and are in no
  Service, as Swarm does not load-balance them.
* **Service for a workload without ports.** A VIP Service needs ports in Kubernetes; a workload that
  exposes none still gets a headless Service so its name resolves in DNS, as a Swarm service name does.
* **Annotations** of the `Workload` go on the controller object and on its pod template.
"""

from __future__ import annotations

import hashlib
import math
import re

from skiff.translate.model import (
    LABEL_MARATHON_APP,
    LABEL_NOMAD_JOB,
    LABEL_STACK,
    LABEL_WORKLOAD,
    Check,
    Container,
    Mount,
    NodeRule,
    Obj,
    Port,
    Volume,
    Workload,
)

HOSTNAME_LABEL = "kubernetes.io/hostname"
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767
# Labels that identify the owning stack/app/job; when present they join the selector so two stacks'
# workloads of the same name in one namespace can never select each other's pods.
_OWNER_LABELS = (LABEL_STACK, LABEL_MARATHON_APP, LABEL_NOMAD_JOB)

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def dns_label(name: str, max_len: int = 63, *, start_with_letter: bool = False) -> str:
    """`name` as a DNS-1123 label (or DNS-1035 with `start_with_letter`), at most `max_len` characters.

    Identity on names that are already valid, so translators may call it freely; otherwise lowercases,
    turns every other character into '-', and appends a short hash of the original so two different
    inputs ("a_b", "a.b") never collide. Never returns an empty string.
    """
    pattern = _LABEL_1035_RE if start_with_letter else _LABEL_RE
    if len(name) <= max_len and pattern.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if start_with_letter and base and not base[0].isalpha():
        base = "x-" + base
    base = base[: max_len - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}" if base else ("x" + digest if start_with_letter else digest)


def port_name(protocol: str, port: int) -> str:
    """The name of an unnamed Service/container port: `<proto>-<port>` ("tcp-80"), a valid IANA_SVC_NAME."""
    return f"{protocol.lower()}-{port}"


def selector_labels(w: Workload) -> dict[str, str]:
    """The labels that select this workload's pods: the workload label plus the stack/app/job label."""
    sel = {LABEL_WORKLOAD: w.name}
    for key in _OWNER_LABELS:
        if key in w.labels:
            sel[key] = w.labels[key]
    return sel


def service_name(w: Workload) -> str:
    """The name of the workload's main Service (a DNS-1035 label)."""
    return dns_label(w.service_name or w.name, start_with_letter=True)


def render_workload(w: Workload) -> list[Obj]:
    """Deployment (replicated) | DaemonSet (global) | Job (batch), then its Service(s); never raises."""
    objects = [_controller(w)]
    objects.extend(_services(w))
    return objects


# --- controller objects ---------------------------------------------------------------------------------


def _metadata(w: Workload, name: str, *, annotations: bool) -> Obj:
    meta: Obj = {"name": name, "namespace": w.namespace, "labels": {**w.labels, LABEL_WORKLOAD: w.name}}
    if annotations and w.annotations:
        meta["annotations"] = dict(w.annotations)
    return meta


def _controller(w: Workload) -> Obj:
    name = dns_label(w.name)
    template = _pod_template(w)
    meta = _metadata(w, name, annotations=True)
    if w.mode == "batch":
        template["spec"]["restartPolicy"] = "Never" if w.restart.policy == "Never" else "OnFailure"
        spec: Obj = {"parallelism": w.replicas, "completions": w.replicas, "template": template}
        if w.restart.max_attempts is not None:
            spec["backoffLimit"] = max(0, w.restart.max_attempts)
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
    surge, unavailable = _rolling(w)
    selector = {"matchLabels": selector_labels(w)}
    if w.mode == "global":
        if _nonzero(surge) and _nonzero(unavailable):
            surge = 0  # a DaemonSet may not surge while it also takes nodes down (upstream validation)
        spec = {
            "selector": selector,
            "template": template,
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        }
        if w.update.monitor_seconds:
            spec["minReadySeconds"] = w.update.monitor_seconds
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta, "spec": spec}
    spec = {
        "replicas": w.replicas,
        "selector": selector,
        "template": template,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
    }
    if w.update.monitor_seconds:
        spec["minReadySeconds"] = w.update.monitor_seconds
    deadline = w.update.progress_deadline_seconds
    if deadline is None and w.update.monitor_seconds >= 600:
        deadline = w.update.monitor_seconds + 600  # must exceed minReadySeconds (upstream validation)
    if deadline is not None:
        spec["progressDeadlineSeconds"] = max(deadline, w.update.monitor_seconds + 1)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def _nonzero(v: int | str) -> bool:
    return v not in (0, "0%", "0")


def _rolling(w: Workload) -> tuple[int | str, int | str]:
    """(maxSurge, maxUnavailable) from the Swarm-style parallelism/order, with explicit overrides."""
    u = w.update
    step: int | str = "100%" if u.parallelism <= 0 else u.parallelism
    surge: int | str
    unavailable: int | str
    if u.order == "start-first":
        surge, unavailable = step, 0
    else:
        surge, unavailable = 0, step
    if u.max_surge is not None:
        surge = u.max_surge
    if u.max_unavailable is not None:
        unavailable = u.max_unavailable
    if not _nonzero(surge) and not _nonzero(unavailable):
        # Both 0 would never make progress and is rejected upstream; move one pod at a time in the
        # direction the order asks for.
        if u.order == "start-first":
            surge = 1
        else:
            unavailable = 1
    return surge, unavailable


def _pod_template(w: Workload) -> Obj:
    labels = {LABEL_WORKLOAD: w.name, **w.pod_labels, **w.labels, **selector_labels(w)}
    meta: Obj = {"labels": labels}
    if w.annotations:
        meta["annotations"] = dict(w.annotations)
    spec: Obj = {}
    if w.init_containers:
        spec["initContainers"] = [_container(c, w) for c in w.init_containers]
    spec["containers"] = [_container(c, w) for c in w.containers]
    if w.volumes:
        spec["volumes"] = [_volume(v) for v in w.volumes]
    spec["restartPolicy"] = "Always"
    graces = [c.stop_grace_seconds for c in (*w.init_containers, *w.containers) if c.stop_grace_seconds is not None]
    if graces:
        spec["terminationGracePeriodSeconds"] = max(0, max(graces))
    if w.host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    affinity, spread = _placement(w)
    if affinity:
        spec["affinity"] = affinity
    if spread:
        spec["topologySpreadConstraints"] = spread
    return {"metadata": meta, "spec": spec}


def _container(c: Container, w: Workload) -> Obj:
    out: Obj = {"name": dns_label(c.name), "image": c.image}
    if c.command is not None:
        out["command"] = list(c.command)
    if c.args is not None:
        out["args"] = list(c.args)
    if c.working_dir:
        out["workingDir"] = c.working_dir
    if c.ports:
        # One entry per (port, protocol, hostPort): a port published twice is still one container port.
        seen: dict[tuple[int, str, int | None], Obj] = {}
        for p in c.ports:
            seen.setdefault((p.container_port, p.protocol, p.host_port), _container_port(p))
        out["ports"] = list(seen.values())
    if c.env:
        out["env"] = [{"name": k, "value": v} for k, v in c.env.items()]
    resources = _resources(c)
    if resources:
        out["resources"] = resources
    if c.mounts:
        out["volumeMounts"] = [_mount(m) for m in c.mounts]
    out.update(_probes(c))
    sc = _security_context(c)
    if sc:
        out["securityContext"] = sc
    return out


def _container_port(p: Port) -> Obj:
    out: Obj = {"containerPort": p.container_port, "protocol": p.protocol}
    if p.name:
        out["name"] = p.name
    if p.host_port is not None:
        out["hostPort"] = p.host_port
    return out


def _resources(c: Container) -> Obj:
    out: Obj = {}
    requests = {k: v for k, v in (("cpu", c.cpu_request), ("memory", c.memory_request)) if v}
    limits = {k: v for k, v in (("cpu", c.cpu_limit), ("memory", c.memory_limit)) if v}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def _mount(m: Mount) -> Obj:
    out: Obj = {"name": dns_label(m.source), "mountPath": m.path}
    if m.read_only:
        out["readOnly"] = True
    if m.sub_path:
        out["subPath"] = m.sub_path
    return out


def _volume(v: Volume) -> Obj:
    name = dns_label(v.name)
    if v.kind in ("emptyDir", "memory"):
        src: Obj = {"medium": "Memory"} if v.kind == "memory" else {}
        if v.size_limit:
            src["sizeLimit"] = v.size_limit
        return {"name": name, "emptyDir": src}
    if v.kind == "hostPath":
        return {"name": name, "hostPath": {"path": v.ref}}
    if v.kind == "pvc":
        return {"name": name, "persistentVolumeClaim": {"claimName": v.ref}}
    items = []
    for key, path, mode in v.items:
        item: Obj = {"key": key, "path": path}
        if mode is not None:
            item["mode"] = mode
        items.append(item)
    ref_key = "name" if v.kind == "configMap" else "secretName"
    src = {ref_key: v.ref}
    if items:
        src["items"] = items
    return {"name": name, v.kind: src}


def _security_context(c: Container) -> Obj:
    sc: Obj = {}
    if c.run_as_user is not None:
        sc["runAsUser"] = c.run_as_user
    if c.run_as_group is not None:
        sc["runAsGroup"] = c.run_as_group
    if c.read_only_root_filesystem:
        sc["readOnlyRootFilesystem"] = True
    if c.privileged:
        sc["privileged"] = True
    elif c.no_new_privileges:
        # privileged implies escalation; upstream rejects privileged with allowPrivilegeEscalation false.
        sc["allowPrivilegeEscalation"] = False
    caps: Obj = {}
    if c.cap_add:
        caps["add"] = list(c.cap_add)
    if c.cap_drop:
        caps["drop"] = list(c.cap_drop)
    if caps:
        sc["capabilities"] = caps
    return sc


# --- probes ---------------------------------------------------------------------------------------------


def _probes(c: Container) -> Obj:
    """readinessProbe / livenessProbe / startupProbe from the first check that asks for each."""
    out: Obj = {}
    checks = [(chk, h) for chk in c.checks if (h := _handler(chk, c)) is not None]
    for chk, handler in checks:
        if chk.readiness and "readinessProbe" not in out:
            out["readinessProbe"] = _probe(chk, handler, chk.failure_threshold)
        if chk.liveness and "livenessProbe" not in out:
            out["livenessProbe"] = _probe(chk, handler, chk.failure_threshold)
        if chk.start_period_seconds > 0 and "startupProbe" not in out:
            period = max(1, chk.period_seconds)
            budget = math.ceil(chk.start_period_seconds / period) + max(1, chk.failure_threshold)
            out["startupProbe"] = _probe(chk, handler, budget)
    return {k: out[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in out}


def _handler(chk: Check, c: Container) -> Obj | None:
    """The probe action; None when an http/tcp/grpc check has no port to aim at (nothing to probe)."""
    if chk.kind == "exec":
        return {"exec": {"command": list(chk.command)}} if chk.command else None
    port: int | str | None = chk.port
    if port is None:
        port = c.ports[0].container_port if c.ports else None
    if port is None or port == "":
        return None
    if chk.kind == "http":
        return {"httpGet": {"path": chk.path or "/", "port": port, "scheme": chk.scheme}}
    if chk.kind == "tcp":
        return {"tcpSocket": {"port": port}}
    if isinstance(port, str):  # grpc probes take a number only
        named = [p.container_port for p in c.ports if p.name == port]
        if not named:
            return None
        port = named[0]
    return {"grpc": {"port": port}}


def _probe(chk: Check, handler: Obj, failure_threshold: int) -> Obj:
    return {
        **handler,
        "initialDelaySeconds": max(0, chk.initial_delay_seconds),
        "periodSeconds": max(1, chk.period_seconds),
        "timeoutSeconds": max(1, chk.timeout_seconds),
        "successThreshold": 1,
        "failureThreshold": max(1, failure_threshold),
    }


# --- placement ------------------------------------------------------------------------------------------


def _node_term(rules: list[NodeRule]) -> Obj:
    exprs = []
    for r in rules:
        e: Obj = {"key": r.key, "operator": r.operator}
        if r.operator in ("In", "NotIn"):
            e["values"] = list(r.values)
        exprs.append(e)
    return {"matchExpressions": exprs}


def _placement(w: Workload) -> tuple[Obj, list[Obj]]:
    p = w.placement
    affinity: Obj = {}
    spread: list[Obj] = []
    if p.required:
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [_node_term(p.required)]}}
    selector = {"matchLabels": selector_labels(w)}
    if p.one_per_node or p.max_per_node == 1:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": HOSTNAME_LABEL}]}
    elif p.max_per_node is not None and p.max_per_node > 1:
        spread.append({"maxSkew": p.max_per_node, "topologyKey": HOSTNAME_LABEL,
                       "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector})
    for key in dict.fromkeys(p.spread_by):
        spread.append({"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                       "labelSelector": selector})
    return affinity, spread


# --- services -------------------------------------------------------------------------------------------


def _all_ports(w: Workload) -> list[Port]:
    return [p for c in w.containers for p in c.ports]


def _service(w: Workload, name: str, spec: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(w, name, annotations=False),
            "spec": {"selector": selector_labels(w), **spec}}


def _services(w: Workload) -> list[Obj]:
    out: list[Obj] = []
    main = service_name(w)
    if w.endpoint_mode is not None:
        seen: set[tuple[int, str]] = set()
        ports: list[Obj] = []
        for p in _all_ports(w):
            if p.host_port is not None or (p.container_port, p.protocol) in seen:
                continue
            seen.add((p.container_port, p.protocol))
            ports.append({"name": p.name or port_name(p.protocol, p.container_port), "protocol": p.protocol,
                          "port": p.container_port, "targetPort": p.container_port})
        spec: Obj = {"ports": ports} if ports else {}
        if w.endpoint_mode == "dnsrr" or not ports:
            spec = {"clusterIP": "None", **spec}
        else:
            spec = {"type": "ClusterIP", **spec}
        out.append(_service(w, main, spec))
    node_ports: list[Obj] = []
    lb_ports: list[Obj] = []
    seen_pub: set[tuple[int, str]] = set()
    for p in _all_ports(w):
        if p.published is None or p.host_port is not None or (p.published, p.protocol) in seen_pub:
            continue
        seen_pub.add((p.published, p.protocol))
        if NODE_PORT_MIN <= p.published <= NODE_PORT_MAX:
            node_ports.append({"name": port_name(p.protocol, p.published), "protocol": p.protocol,
                               "port": p.published, "targetPort": p.container_port, "nodePort": p.published})
        else:
            lb_ports.append({"name": port_name(p.protocol, p.published), "protocol": p.protocol,
                             "port": p.published, "targetPort": p.container_port})
    if node_ports:
        out.append(_service(w, dns_label(main + "-nodeport", start_with_letter=True),
                            {"type": "NodePort", "ports": node_ports}))
    if lb_ports:
        out.append(_service(w, dns_label(main + "-lb", start_with_letter=True),
                            {"type": "LoadBalancer", "ports": lb_ports}))
    return out
