"""Marathon app definitions (as `/v2/apps` and `/v2/groups` accept them) → skiff Workloads.

A Marathon app is a replicated group of identical tasks, which is exactly a Deployment plus a Service; this
module reads one app, a list of apps or a group tree, validates ids the way Marathon does, and maps every key
it reads onto the shared `Workload` form (`model.py`) — or reports it as a `TranslateWarning` when it cannot
be honoured. It is pure: no I/O, no clock; malformed input raises `TranslateError` and nothing else.

Decisions where Marathon and Kubernetes differ (Marathon 1.x docs and `mesosphere/marathon` sources):

* **Networking.** Every task gets its own pod address, whatever the Marathon network mode (HOST, BRIDGE,
  USER, `networks`). A port Marathon allocates dynamically on the agent (hostPort 0, or any port definition
  without `requirePorts`) becomes a fixed container port, announced to the app in `$PORT0…`, `$PORT`,
  `$PORTS` and `$PORT_<NAME>` exactly as Marathon announces its host ports; it is reachable at the pod
  address and through the Service, but not on the node, which is reported as a warning. Dynamic numbers are
  picked from `FIRST_DYNAMIC_PORT` upwards, skipping numbers the app names itself. A fixed `hostPort` (or a
  port definition with `requirePorts`) stays a host port. A `servicePort` (HOST mode: the port definition's
  `port`) becomes the Service's published port; a service port of 0 (Marathon allocates one for
  marathon-lb) leaves the port cluster-internal.
* **Resources.** Mesos enforces `cpus` as CPU shares (a weight; tasks may burst into idle CPU, CFS quota is
  off by default on Mesos agents): cpu request = `cpus`, no cpu limit. Mesos kills a task over `mem`: memory
  request = limit = `mem` MiB. `disk` is an `ephemeral-storage` request (Mesos does not enforce it by
  default, so no limit). `gpus` cannot be honoured.
* **Apps without a container** run their command on the Mesos agent host; here they run in
  `DEFAULT_IMAGE` (a warning says so).
* **Placement.** Constraint field `hostname` is the node label `kubernetes.io/hostname`; `@zone`/`@region`
  are the topology labels; any other attribute `x` is the node label `x`. UNIQUE → anti-affinity over that
  label, CLUSTER/IS/LIKE(exact alternation) → a required node rule, UNLIKE(exact alternation) → NotIn,
  GROUP_BY → a spread over the label, MAX_PER hostname → at most n per node. `acceptedResourceRoles`
  other than `*` (Mesos reservations, e.g. `slave_public` for DC/OS public agents) become a required rule
  on the node label `MESOS_ROLE_LABEL`, with a warning: nodes must carry that label.
* **Upgrades.** Marathon keeps `ceil(instances * minimumHealthCapacity)` healthy and runs at most
  `floor(instances * (1 + maximumOverCapacity))` (plus one when both bounds meet, so a restart can
  proceed: `TaskReplaceActor.computeRestartStrategy`). maxUnavailable is `(1 - mhc)` as a percentage
  (Kubernetes rounds it down like Marathon), or a count when it is not a whole percent; maxSurge is the
  Marathon count, or a percentage when that equals it (Kubernetes rounds surge percentages up).
* **Unreachable agents.** `unreachableStrategy.inactiveAfterSeconds` is the `tolerationSeconds` of the
  `node.kubernetes.io/unreachable` and `not-ready` NoExecute tolerations; `"disabled"` tolerates forever.

Some of this does not fit `Workload` (secret env references, the HOST variable, ephemeral storage,
tolerations, anti-affinity over an attribute): `MarathonWorkload` carries it and `render_app` applies it to
the rendered pod template.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, NoReturn

from skiff.api.quantity import QuantityError, parse_quantity
from skiff.translate.model import (
    LABEL_MARATHON_APP,
    LABEL_WORKLOAD,
    Check,
    Container,
    Mount,
    NodeRule,
    Obj,
    Placement,
    Port,
    Restart,
    TranslateError,
    TranslateWarning,
    Translation,
    Update,
    Volume,
    Workload,
)

DEFAULT_IMAGE = "debian:bookworm-slim"  # the userland an app without a container gets (Mesos: the agent's)
FIRST_DYNAMIC_PORT = 10000  # Marathon's default --local_port_min, where it allocates service ports
MESOS_SANDBOX = "/mnt/mesos/sandbox"  # where Mesos mounts the sandbox in a Docker container
MESOS_ROLE_LABEL = "skiff.io/mesos-role"  # node label standing in for Mesos resource roles
APP_ID_ANNOTATION = "skiff.io/marathon-app-id"  # the app's full path id (labels are capped at 63 characters)
APP_DEFINITION_ANNOTATION = "skiff.io/marathon-app"  # the app JSON as submitted, for marathon_app_view
SECRET_KEY = "value"  # DC/OS secrets hold one value; the Kubernetes Secret keeps it under this key

# PathId.ID_PATH_SEGMENT_PATTERN, with Java `matches()` semantics (a full match of the whole alternation).
_SEGMENT_PATTERN = r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
_SEGMENT = re.compile(_SEGMENT_PATTERN.removeprefix("^").removesuffix("$"))
_RESERVED = ("restart", "tasks", "versions", ".", "..")
_OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LITERAL_ALTERNATIVE = re.compile(r"(?:[A-Za-z0-9_\-]|\\\.)+")
_INT32_MAX = 2**31 - 1

# Keys Marathon adds to an app when it shows one (GET /v2/apps): meaningless as input, ignored as Marathon does.
_READ_ONLY_KEYS = frozenset({
    "version", "versionInfo", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy", "deployments",
    "tasks", "lastTaskFailure", "readinessCheckResults", "taskStats", "counts",
})
_WARN_ONLY_KEYS = {
    "backoffSeconds": "the kubelet's restart back-off (10s doubling to 5m) applies instead",
    "backoffFactor": "the kubelet's restart back-off (10s doubling to 5m) applies instead",
    "maxLaunchDelaySeconds": "the kubelet's restart back-off (10s doubling to 5m) applies instead",
    "fetch": "Mesos fetcher URIs are not downloaded; put the artifacts into the image",
    "uris": "Mesos fetcher URIs are not downloaded; put the artifacts into the image",
    "storeUrls": "there is no Mesos artifact store; put the artifacts into the image",
    "dependencies": "apps start in no particular order; the app must wait for what it needs",
    "residency": "Mesos resident tasks (reservations pinned to an agent) have no equivalent",
    "role": "Mesos roles have no equivalent; use acceptedResourceRoles-style node labels",
    "executor": "custom Mesos executors do not exist here; the container runtime runs the task",
    "customResources": "custom Mesos resources are not requested",
    "tty": "containers run without a terminal",
}
_APP_KEYS = frozenset({
    "id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "gpus", "container", "constraints",
    "acceptedResourceRoles", "portDefinitions", "ports", "requirePorts", "healthChecks", "readinessChecks",
    "upgradeStrategy", "labels", "secrets", "unreachableStrategy", "killSelection", "networks", "ipAddress",
    "taskKillGracePeriodSeconds",
}) | _READ_ONLY_KEYS | frozenset(_WARN_ONLY_KEYS)


@dataclass
class MarathonWorkload(Workload):
    """A `Workload` plus what Marathon apps need that the shared form has no field for (see `render_app`)."""

    ephemeral_storage_request: str = ""  # Marathon `disk`
    secret_env: dict[str, tuple[str, str]] = field(default_factory=dict)  # variable → (Secret name, key)
    field_env: dict[str, str] = field(default_factory=dict)  # variable → downward-API fieldPath ($HOST)
    tolerations: list[Obj] = field(default_factory=list)  # from unreachableStrategy
    anti_affinity_keys: list[str] = field(default_factory=list)  # UNIQUE over an attribute other than hostname


# ---- reading JSON values with Marathon's types ---------------------------------------------------------------


def _key(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Reader:
    """Typed access to one file's JSON, collecting warnings; every failure names the file and the key."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.warnings: list[TranslateWarning] = []

    def warn(self, key: str, why: str) -> None:
        self.warnings.append(TranslateWarning(self.file, key, why))

    def fail(self, key: str, why: str) -> NoReturn:
        raise TranslateError(self.file, key, why)

    def expect(self, value: object, kind: str, key: str) -> NoReturn:
        self.fail(key, f"expected {kind}, got {_type_name(value)}")

    def obj(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.expect(value, "an object", key)
        return value

    def opt_obj(self, d: dict[str, Any], name: str, prefix: str) -> dict[str, Any] | None:
        value = d.get(name)
        return None if value is None else self.obj(value, _key(prefix, name))

    def lst(self, value: object, key: str) -> list[Any]:
        if not isinstance(value, list):
            self.expect(value, "an array", key)
        return value

    def opt_list(self, d: dict[str, Any], name: str, prefix: str) -> list[Any] | None:
        value = d.get(name)
        return None if value is None else self.lst(value, _key(prefix, name))

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            self.expect(value, "a string", key)
        return value

    def opt_str(self, d: dict[str, Any], name: str, prefix: str) -> str | None:
        value = d.get(name)
        return None if value is None else self.string(value, _key(prefix, name))

    def opt_bool(self, d: dict[str, Any], name: str, prefix: str) -> bool | None:
        value = d.get(name)
        if value is not None and not isinstance(value, bool):
            self.expect(value, "a boolean", _key(prefix, name))
        return value

    def number(self, value: object, key: str, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.expect(value, "a number", key)
        try:
            number = float(value)
        except OverflowError:
            self.fail(key, f"{value} is out of range")
        if not math.isfinite(number):
            self.fail(key, f"{value} is not a finite number")
        if low is not None and number < low:
            self.fail(key, f"got {value}, expected {low} or more")
        if high is not None and number > high:
            self.fail(key, f"got {value}, expected {high} or less")
        return number

    def opt_num(self, d: dict[str, Any], name: str, prefix: str, low: float | None = None,
                high: float | None = None) -> float | None:
        value = d.get(name)
        return None if value is None else self.number(value, _key(prefix, name), low, high)

    def integer(self, value: object, key: str, low: int = 0, high: int = _INT32_MAX) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.expect(value, "an integer", key)
        if value < low:
            self.fail(key, f"got {value}, expected {low} or more")
        if value > high:
            self.fail(key, f"got {value}, expected {high} or less")
        return value

    def opt_int(self, d: dict[str, Any], name: str, prefix: str, low: int = 0,
                high: int = _INT32_MAX) -> int | None:
        value = d.get(name)
        return None if value is None else self.integer(value, _key(prefix, name), low, high)

    def str_map(self, d: dict[str, Any], name: str, prefix: str) -> dict[str, str]:
        m = self.opt_obj(d, name, prefix) or {}
        for k, v in m.items():
            self.string(v, _key(_key(prefix, name), k))
        return m

    def str_list(self, d: dict[str, Any], name: str, prefix: str) -> list[str]:
        items = self.opt_list(d, name, prefix) or []
        return [self.string(v, _key(_key(prefix, name), i)) for i, v in enumerate(items)]


# ---- ids and names ---------------------------------------------------------------------------------------------


def _resolve_id(r: _Reader, raw: str, base: list[str], key: str) -> list[str]:
    """Marathon's PathId: validate each segment, then resolve it against the group `base` (`canonicalPath`)."""
    pieces = [p for p in raw.strip("/").split("/") if p]
    for p in pieces:
        if not _SEGMENT.fullmatch(p):
            r.fail(key, f"must fully match regular expression '{_SEGMENT_PATTERN}'")
    if pieces and pieces[-1] in _RESERVED:
        r.fail(key, f"must not end with any of the following reserved keywords: {', '.join(_RESERVED)}")
    out: list[str] = [] if raw.startswith("/") else list(base)
    for p in pieces:
        if p == ".":
            continue
        if p == "..":
            out = out[:-1]
        else:
            out.append(p)
    if not out:
        r.fail(key, "Path must contain at least one path element")
    return out


def _bounded(text: str, whole: str, limit: int = 63) -> str:
    """`text` if it fits a Kubernetes name/label value, else a prefix plus a hash of `whole` (deterministic)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return text[: limit - 9].rstrip("-.") + "-" + digest


def workload_name(segments: list[str]) -> str:
    """`/prod/api/users` → `prod-api-users`: a DNS-1035 label, usable for the Deployment and the Service."""
    whole = "/" + "/".join(segments)
    name = "-".join(segments).replace(".", "-")
    if not name[0].isalpha():
        name = "app-" + name  # Service names must start with a letter; Marathon ids may start with a digit
    return _bounded(name, whole)


def app_label(segments: list[str]) -> str:
    """The `LABEL_MARATHON_APP` value: the path id with "/" as "."."""
    return _bounded(".".join(segments), "/" + "/".join(segments))


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.fullmatch(prefix)):
        return False
    return bool(_LABEL_NAME.fullmatch(name))


def _valid_label_value(value: str) -> bool:
    return value == "" or bool(_LABEL_NAME.fullmatch(value))


# ---- the whole file ------------------------------------------------------------------------------------------------


def _parse(path: str, text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise TranslateError(path, "", f"invalid JSON: {name} is not a number")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise TranslateError(path, "", f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise TranslateError(path, "", "invalid JSON: nested too deeply") from None


def _collect(r: _Reader, doc: Any) -> list[tuple[dict[str, Any], list[str], str]]:
    """Every app of the document with its resolved id and key prefix: one app, a list, or a group tree."""
    if isinstance(doc, list):
        out = []
        for i, item in enumerate(doc):
            app = r.obj(item, f"[{i}]")
            out.append((app, _app_id(r, app, [], f"[{i}]"), f"[{i}]"))
        return out
    doc = r.obj(doc, "")
    if "apps" in doc or "groups" in doc or "pods" in doc:
        return _group(r, doc, [], "", top=True)
    return [(doc, _app_id(r, doc, [], ""), "")]


def _app_id(r: _Reader, app: dict[str, Any], base: list[str], prefix: str) -> list[str]:
    key = _key(prefix, "id")
    raw = app.get("id")
    if raw is None:
        r.fail(key, "error.path.missing")
    segments = _resolve_id(r, r.string(raw, key), base, key)
    if base and segments[:-1] != base:
        r.fail(key, f"Identifier is not child of '/{'/'.join(base)}'")
    return segments


def _group(r: _Reader, g: dict[str, Any], parent: list[str], prefix: str,
           top: bool = False) -> list[tuple[dict[str, Any], list[str], str]]:
    raw = r.opt_str(g, "id", prefix)
    if raw is None or raw.strip("/") == "":
        if not top:
            r.fail(_key(prefix, "id"), "error.path.missing")
        base: list[str] = []
    else:
        key = _key(prefix, "id")
        base = _resolve_id(r, raw, parent, key)
        if parent and base[:-1] != parent:
            r.fail(key, f"Identifier is not child of '/{'/'.join(parent)}'")
    for k in g:
        if k in ("id", "apps", "groups", "version", "versionInfo", "enforceRole"):
            continue
        if k == "dependencies":
            r.warn(_key(prefix, k), _WARN_ONLY_KEYS["dependencies"])
        elif k == "pods":
            if g[k]:
                r.warn(_key(prefix, k), "Marathon pods are not translated; describe each as an app")
        else:
            r.warn(_key(prefix, k), "unknown key, ignored")
    out: list[tuple[dict[str, Any], list[str], str]] = []
    for i, item in enumerate(r.opt_list(g, "apps", prefix) or []):
        p = _key(_key(prefix, "apps"), i)
        app = r.obj(item, p)
        out.append((app, _app_id(r, app, base, p), p))
    for i, item in enumerate(r.opt_list(g, "groups", prefix) or []):
        p = _key(_key(prefix, "groups"), i)
        out.extend(_group(r, r.obj(item, p), base, p))
    return out


def translate_marathon(path: str, text: str, namespace: str = "marathon") -> Translation:
    """Translate a Marathon app, list of apps or group into objects (claims first, then each app's
    workload and Service) and every warning. Pure; raises only `TranslateError`, and then translates nothing."""
    r = _Reader(path)
    doc = _parse(path, text)
    result = Translation()
    names: dict[str, str] = {}
    for app, segments, prefix in _collect(r, doc):
        w, extra = _translate_app(r, app, segments, prefix, namespace)
        full = "/" + "/".join(segments)
        if w.name in names:
            r.fail(_key(prefix, "id"), f"{full} becomes the Kubernetes name {w.name!r}, as {names[w.name]} does")
        names[w.name] = full
        result.objects.extend(extra)
        result.objects.extend(render_app(w))
    result.warnings = r.warnings
    return result


def app_to_workload(app: dict[str, Any], path: str, namespace: str) -> tuple[Workload, list[Obj],
                                                                           list[TranslateWarning]]:
    """One app (as POST /v2/apps takes it) → its workload, the objects it needs first (claims) and warnings.

    The workload is a `MarathonWorkload`: render it with `render_app` so its extras reach the pod template."""
    r = _Reader(path)
    app = r.obj(app, "")
    segments = _app_id(r, app, [], "")
    w, extra = _translate_app(r, app, segments, "", namespace)
    return w, extra, r.warnings


# ---- one app -------------------------------------------------------------------------------------------------------


@dataclass
class _PortSpec:
    key: str  # where it was declared, for warnings
    container_port: int | None  # None = dynamic
    host_port: int | None
    published: int | None
    protocols: list[Literal["TCP", "UDP"]]
    name: str
    marathon_port: int | None = None  # the number Marathon would call this port (health check `port`)


def _translate_app(r: _Reader, app: dict[str, Any], segments: list[str], prefix: str,
                   namespace: str) -> tuple[MarathonWorkload, list[Obj]]:
    def k(name: str) -> str:
        return _key(prefix, name)

    full_id = "/" + "/".join(segments)
    name = workload_name(segments)
    for key in app:
        if key not in _APP_KEYS:
            r.warn(k(key), "unknown key, ignored")
        elif key in _WARN_ONLY_KEYS and app[key] not in (None, [], {}, "", "//cmd"):
            r.warn(k(key), _WARN_ONLY_KEYS[key])

    cmd = r.opt_str(app, "cmd", prefix)
    if cmd == "":
        r.fail(k("cmd"), "must not be empty")
    args = r.str_list(app, "args", prefix) if app.get("args") is not None else None
    if cmd is not None and args:
        r.fail(k("cmd"), "AppDefinition must either contain a 'cmd' or a 'args', not both")
    container_def = r.opt_obj(app, "container", prefix)
    image, docker = _image(r, container_def, prefix)
    if cmd is None and not args and image is None:
        r.fail(k("cmd"), "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
    if image is None:
        r.warn(k("container"), f"no container: Mesos runs the command on the agent host; here it runs in the "
                               f"image {DEFAULT_IMAGE}, which must provide the programs it needs")

    instances = r.opt_int(app, "instances", prefix)
    instances = 1 if instances is None else instances
    cpus = r.opt_num(app, "cpus", prefix, low=0.001)
    mem = r.opt_num(app, "mem", prefix, low=0.0)
    disk = r.opt_num(app, "disk", prefix, low=0.0)
    gpus = r.opt_int(app, "gpus", prefix)
    if gpus:
        r.warn(k("gpus"), "GPUs are not scheduled; the app gets none")

    c = Container(name="app", image=image or DEFAULT_IMAGE)
    c.command = ["/bin/sh", "-c", cmd] if cmd is not None else None
    c.args = args or None
    c.cpu_request = _cpu(1.0 if cpus is None else cpus)
    mem_mib = 128.0 if mem is None else mem
    if mem_mib > 0:
        c.memory_request = c.memory_limit = _mib(mem_mib)
    ephemeral = _mib(disk) if disk else ""

    w = MarathonWorkload(name=name, namespace=namespace, replicas=instances, containers=[c],
                         ephemeral_storage_request=ephemeral)
    label = app_label(segments)
    w.labels = {LABEL_MARATHON_APP: label, LABEL_WORKLOAD: name}
    w.annotations = {APP_ID_ANNOTATION: full_id}

    env = _env(r, app, prefix, w)
    user_labels = r.str_map(app, "labels", prefix)
    for lk, lv in user_labels.items():
        if _valid_label_key(lk) and _valid_label_value(lv) and not lk.startswith("skiff.io/"):
            w.labels[lk] = lv
        else:
            r.warn(_key(k("labels"), lk), "not a valid Kubernetes label; kept only in the "
                                          f"{APP_DEFINITION_ANNOTATION} annotation")
    user = r.opt_str(app, "user", prefix)
    if user is not None:
        _apply_user(r, c, user, k("user"))
    grace = r.opt_int(app, "taskKillGracePeriodSeconds", prefix)
    if grace is not None:
        c.stop_grace_seconds = grace
    if docker is not None:
        _docker(r, docker, _key(_key(prefix, "container"), "docker"), c, w, env)
    if container_def is not None:
        _volumes(r, app, prefix, name, w, c)

    ports = _ports(r, app, container_def, docker, prefix)
    names: set[str] = set()
    for i, p in enumerate(ports):
        number = p.container_port or 0
        env[f"PORT{i}"] = str(number)
        port_name = p.name
        if p.name:
            if re.fullmatch(r"[A-Za-z0-9_-]+", p.name):
                env[f"PORT_{p.name.upper().replace('-', '_')}"] = str(number)
            if not (_PORT_NAME.fullmatch(p.name) and len(p.name) <= 15 and re.search("[a-z]", p.name)) or \
                    p.name in names:
                r.warn(_key(p.key, "name"), f"{p.name!r} cannot name a Kubernetes port (a unique IANA service "
                                            f"name); the port is unnamed")
                port_name = ""
            names.add(p.name)
        for proto in p.protocols:
            c.ports.append(Port(container_port=number, protocol=proto, name=port_name, published=p.published,
                                host_port=p.host_port))
            port_name = ""  # the second protocol of "udp,tcp" stays unnamed: names are unique per pod
    if ports:
        env["PORT"] = str(ports[0].container_port)
        env["PORTS"] = ",".join(str(p.container_port) for p in ports)
    w.endpoint_mode = "vip"  # without ports render makes it headless: the app's name resolves, as in Mesos-DNS
    env.update(_marathon_env(full_id, c, cpus, mem_mib, disk, gpus, image, user_labels))
    w.field_env["HOST"] = "status.hostIP"
    c.env = env

    # Readiness checks first: they decide readiness; health checks then give the liveness and startup probes.
    c.checks = _readiness_checks(r, app, prefix, ports) + _health_checks(r, app, prefix, ports)
    w.placement = _placement(r, app, prefix, w)
    w.update = _upgrade(r, app, prefix, instances)
    w.restart = Restart(policy="Always")
    _unreachable(r, app, prefix, w)
    kill = r.opt_str(app, "killSelection", prefix)
    if kill not in (None, "YOUNGEST_FIRST", "OLDEST_FIRST"):
        r.fail(k("killSelection"), "must be one of YOUNGEST_FIRST, OLDEST_FIRST")
    if kill == "OLDEST_FIRST":
        r.warn(k("killSelection"), "scaling down removes the youngest (least long ready) pods first")
    _network_extras(r, app, prefix)

    definition = {key: value for key, value in app.items() if key not in _READ_ONLY_KEYS}
    definition["id"] = full_id
    w.annotations[APP_DEFINITION_ANNOTATION] = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    extra = _claims(w)
    return w, extra


def _cpu(cores: float) -> str:
    """Cores as a quantity, rounded up to whole millicores (`0.0015` → `2m`, `2.0` → `2`)."""
    millis = math.ceil(Fraction(repr(cores)) * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _mib(value: float) -> str:
    exact = Fraction(repr(value))
    if exact.denominator == 1:
        return f"{exact.numerator}Mi"
    return f"{math.ceil(exact * 2**20)}"  # bytes, rounded up so the task never gets less than it asked for


def _image(r: _Reader, container: dict[str, Any] | None, prefix: str) -> tuple[str | None, dict[str, Any] | None]:
    """The image and the `docker` object; None when the command runs on the host (no image)."""
    if container is None:
        return None, None
    cp = _key(prefix, "container")
    kind = r.opt_str(container, "type", cp) or "DOCKER"
    if kind not in ("DOCKER", "MESOS"):
        r.fail(_key(cp, "type"), "must be one of DOCKER, MESOS")
    docker = r.opt_obj(container, "docker", cp)
    if docker is None:
        if kind == "DOCKER":
            r.fail(_key(cp, "docker"), "must be defined for a DOCKER container")
        return None, None
    image = r.opt_str(docker, "image", _key(cp, "docker"))
    if not image:
        if kind == "DOCKER":
            r.fail(_key(_key(cp, "docker"), "image"), "must not be empty")
        return None, docker
    return image, docker


def _apply_user(r: _Reader, c: Container, user: str, key: str) -> None:
    uid, _, gid = user.partition(":")
    if uid.isdigit() and (not gid or gid.isdigit()) and int(uid) <= _INT32_MAX and (not gid or int(gid) <= _INT32_MAX):
        c.run_as_user = int(uid)
        if gid:
            c.run_as_group = int(gid)
    else:
        r.warn(key, f"user {user!r} is a name; Kubernetes runs containers as a numeric UID, so the image's "
                    "user applies")


def _env(r: _Reader, app: dict[str, Any], prefix: str, w: MarathonWorkload) -> dict[str, str]:
    env_key = _key(prefix, "env")
    raw = r.opt_obj(app, "env", prefix) or {}
    secrets = r.opt_obj(app, "secrets", prefix) or {}
    for sid, sdef in secrets.items():
        sk = _key(_key(prefix, "secrets"), sid)
        source = r.opt_str(r.obj(sdef, sk), "source", sk)
        if not source:
            r.fail(_key(sk, "source"), "must not be empty")
    env: dict[str, str] = {}
    for var, value in raw.items():
        key = _key(env_key, var)
        if not var or "=" in var:
            r.fail(key, "environment variable names must be non-empty and contain no '='")
        if isinstance(value, dict):
            ref = r.string(value.get("secret"), _key(key, "secret"))
            if ref not in secrets:
                r.fail(_key(key, "secret"), f"references an undefined secret named '{ref}'")
            secret = _secret_name(r, secrets, ref, prefix)
            w.secret_env[var] = (secret, SECRET_KEY)
            r.warn(key, f"reads key {SECRET_KEY!r} of the Secret {secret!r}, which must exist in the namespace "
                        "(there is no DC/OS secret store)")
        else:
            env[var] = r.string(value, key)
    return env


def _secret_name(r: _Reader, secrets: dict[str, Any], ref: str, prefix: str) -> str:
    source = str(secrets[ref].get("source"))
    name = re.sub(r"[^a-z0-9.-]+", "-", source.lower()).strip("-.")
    if not name:
        r.fail(_key(_key(_key(prefix, "secrets"), ref), "source"), "cannot name a Kubernetes Secret")
    return _bounded(name, source, 253)


def _marathon_env(full_id: str, c: Container, cpus: float | None, mem: float, disk: float | None,
                  gpus: int | None, image: str | None, labels: dict[str, str]) -> dict[str, str]:
    """The variables Marathon gives every task (`mesosphere.mesos.TaskBuilder`/`EnvironmentHelper`)."""
    env = {
        "MARATHON_APP_ID": full_id,
        "MARATHON_APP_RESOURCE_CPUS": repr(1.0 if cpus is None else cpus),
        "MARATHON_APP_RESOURCE_MEM": repr(mem),
        "MARATHON_APP_RESOURCE_DISK": repr(disk or 0.0),
        "MARATHON_APP_RESOURCE_GPUS": str(gpus or 0),
        "MARATHON_APP_LABELS": " ".join(sorted(k for k in labels if re.fullmatch(r"[A-Za-z0-9_]+", k))),
        "MESOS_SANDBOX": MESOS_SANDBOX,
    }
    if image:
        env["MARATHON_APP_DOCKER_IMAGE"] = image
    for key, value in labels.items():
        if re.fullmatch(r"[A-Za-z0-9_]+", key) and len(value) <= 512:
            env[f"MARATHON_APP_LABEL_{key.upper()}"] = value
    return env


# Docker `--<key>` parameters with a Kubernetes meaning; others are reported.
def _docker(r: _Reader, docker: dict[str, Any], dk: str, c: Container, w: MarathonWorkload,
            env: dict[str, str]) -> None:
    privileged = r.opt_bool(docker, "privileged", dk)
    c.privileged = bool(privileged)
    if r.opt_bool(docker, "forcePullImage", dk):
        r.warn(_key(dk, "forcePullImage"), "images are pulled by the kubelet's policy (always only for :latest)")
    for key in ("credential", "pullConfig"):
        if docker.get(key) is not None:
            r.warn(_key(dk, key), "registry credentials are not translated; use an imagePullSecret")
    for key in docker:
        if key not in ("image", "network", "portMappings", "privileged", "parameters", "forcePullImage",
                       "credential", "pullConfig"):
            r.warn(_key(dk, key), "unknown key, ignored")
    for i, item in enumerate(r.opt_list(docker, "parameters", dk) or []):
        pk = _key(_key(dk, "parameters"), i)
        param = r.obj(item, pk)
        key = r.string(param.get("key"), _key(pk, "key"))
        value = r.string(param.get("value", ""), _key(pk, "value"))
        if key == "user":
            _apply_user(r, c, value, pk)
        elif key in ("workdir", "w"):
            c.working_dir = value
        elif key == "read-only":
            c.read_only_root_filesystem = value.lower() in ("", "true", "1")
        elif key == "cap-add":
            c.cap_add.append(value.upper().removeprefix("CAP_"))
        elif key == "cap-drop":
            c.cap_drop.append(value.upper().removeprefix("CAP_"))
        elif key in ("env", "e"):
            var, eq, val = value.partition("=")
            if not var or not eq:
                r.warn(pk, f"docker env {value!r} has no value; ignored")
            else:
                env[var] = val
        elif key in ("label", "l"):
            lk, _, lv = value.partition("=")
            if _valid_label_key(lk) and _valid_label_value(lv):
                w.pod_labels[lk] = lv
            else:
                r.warn(pk, f"docker label {value!r} is not a valid Kubernetes label; ignored")
        elif key == "security-opt" and value in ("no-new-privileges", "no-new-privileges:true"):
            c.no_new_privileges = True
        else:
            r.warn(pk, f"docker parameter {key!r} is not applied")


def _volumes(r: _Reader, app: dict[str, Any], prefix: str, name: str, w: MarathonWorkload,
             c: Container) -> None:
    """container.volumes: hostPath, secret and persistent volumes; external volumes are reported."""
    ck = _key(prefix, "container")
    container = r.obj(app["container"], ck)
    secrets = r.opt_obj(app, "secrets", prefix) or {}
    for i, item in enumerate(r.opt_list(container, "volumes", ck) or []):
        vk = _key(_key(ck, "volumes"), i)
        v = r.obj(item, vk)
        path = r.opt_str(v, "containerPath", vk)
        if not path:
            r.fail(_key(vk, "containerPath"), "must not be empty")
        mount_path = path if path.startswith("/") else f"{MESOS_SANDBOX}/{path}"
        mode = r.opt_str(v, "mode", vk) or "RW"
        if mode not in ("RO", "RW"):
            r.fail(_key(vk, "mode"), "must be one of RO, RW")
        vol_name = f"vol-{i}"
        host = r.opt_str(v, "hostPath", vk)
        persistent = r.opt_obj(v, "persistent", vk)
        secret = r.opt_str(v, "secret", vk)
        if persistent is not None:
            size = r.opt_num(persistent, "size", _key(vk, "persistent"), low=0.0)
            if not size:
                r.fail(_key(_key(vk, "persistent"), "size"), "must be greater than 0")
            claim = _bounded(f"{name}-{vol_name}", f"{name}/{vol_name}")
            w.volumes.append(Volume(name=vol_name, kind="pvc", ref=claim, size_limit=_mib(size)))
            r.warn(vk, f"a Mesos local persistent volume becomes the claim {claim!r}, shared by all instances "
                       "(ReadWriteOnce: instances on other nodes cannot mount it)")
        elif host is not None:
            w.volumes.append(Volume(name=vol_name, kind="hostPath", ref=host))
        elif secret is not None:
            if secret not in secrets:
                r.fail(_key(vk, "secret"), f"references an undefined secret named '{secret}'")
            directory, _, filename = mount_path.rstrip("/").rpartition("/")
            w.volumes.append(Volume(name=vol_name, kind="secret", ref=_secret_name(r, secrets, secret, prefix),
                                    items=[(SECRET_KEY, filename or SECRET_KEY, None)]))
            c.mounts.append(Mount(source=vol_name, path=directory or "/", read_only=True))
            continue
        else:
            r.warn(vk, "external and other volume kinds are not translated")
            continue
        c.mounts.append(Mount(source=vol_name, path=mount_path, read_only=mode == "RO"))


def _claims(w: MarathonWorkload) -> list[Obj]:
    """PersistentVolumeClaims for persistent volumes: created before the workload that mounts them."""
    out: list[Obj] = []
    for v in w.volumes:
        if v.kind != "pvc":
            continue
        out.append({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": v.ref, "namespace": w.namespace, "labels": dict(w.labels)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": v.size_limit}}},
        })
        v.size_limit = ""
    return out


# ---- ports ---------------------------------------------------------------------------------------------------------


def _network_mode(r: _Reader, app: dict[str, Any], docker: dict[str, Any] | None,
                  prefix: str) -> Literal["host", "bridge", "user"]:
    networks = r.opt_list(app, "networks", prefix)
    legacy = r.opt_str(docker, "network", _key(_key(prefix, "container"), "docker")) if docker else None
    if legacy is not None and legacy not in ("HOST", "BRIDGE", "USER"):
        r.fail(_key(_key(_key(prefix, "container"), "docker"), "network"), "must be one of HOST, BRIDGE, USER")
    if networks:
        nk = _key(_key(prefix, "networks"), 0)
        mode = r.opt_str(r.obj(networks[0], nk), "mode", nk) or "container"
        modes: dict[str, Literal["host", "bridge", "user"]] = {
            "host": "host", "container/bridge": "bridge", "container": "user"}
        if mode not in modes:
            r.fail(_key(nk, "mode"), "must be one of host, container, container/bridge")
        if len(networks) > 1:
            r.warn(_key(prefix, "networks"), "pods join one network; only the first is used")
        return modes[mode]
    return {"HOST": "host", "BRIDGE": "bridge", "USER": "user", None: "host"}[legacy]  # type: ignore[return-value]


def _protocols(r: _Reader, raw: str | None, key: str) -> list[Literal["TCP", "UDP"]]:
    parts = (raw or "tcp").split(",")
    out: list[Literal["TCP", "UDP"]] = []
    for p in parts:
        if p == "tcp":
            out.append("TCP")
        elif p == "udp":
            out.append("UDP")
        else:
            r.fail(key, "must be one of tcp, udp, udp,tcp")
    if len(set(out)) != len(out):
        r.fail(key, "must be one of tcp, udp, udp,tcp")
    return out


def _ports(r: _Reader, app: dict[str, Any], container: dict[str, Any] | None, docker: dict[str, Any] | None,
           prefix: str) -> list[_PortSpec]:
    mode = _network_mode(r, app, docker, prefix)
    ck = _key(prefix, "container")
    dk = _key(ck, "docker")
    mappings_key, mappings = ck, None
    if container is not None and container.get("portMappings") is not None:
        mappings_key, mappings = _key(ck, "portMappings"), r.opt_list(container, "portMappings", ck)
    elif docker is not None and docker.get("portMappings") is not None:
        mappings_key, mappings = _key(dk, "portMappings"), r.opt_list(docker, "portMappings", dk)
    specs: list[_PortSpec] = []
    if mode == "host":
        if mappings:
            r.warn(mappings_key, "port mappings apply to BRIDGE and USER networking only; ignored as Marathon "
                                 "does with HOST networking")
        specs = _port_definitions(r, app, prefix)
    else:
        if app.get("portDefinitions") or app.get("ports"):
            key = "portDefinitions" if app.get("portDefinitions") else "ports"
            r.warn(_key(prefix, key), "port definitions apply to HOST networking only; the port mappings apply")
        for i, item in enumerate(mappings or []):
            pk = _key(mappings_key, i)
            pm = r.obj(item, pk)
            cport = r.opt_int(pm, "containerPort", pk, high=65535) or 0
            default_host = 0 if mode == "bridge" else None
            hport = r.opt_int(pm, "hostPort", pk, high=65535)
            hport = default_host if hport is None else hport
            sport = r.opt_int(pm, "servicePort", pk, high=65535) or 0
            protos = _protocols(r, r.opt_str(pm, "protocol", pk), _key(pk, "protocol"))
            pname = r.opt_str(pm, "name", pk) or ""
            for key in pm:
                if key not in ("containerPort", "hostPort", "servicePort", "protocol", "name", "labels",
                               "networkNames"):
                    r.warn(_key(pk, key), "unknown key, ignored")
            if hport == 0:
                r.warn(_key(pk, "hostPort"), "0 asks Marathon for a dynamic host port ($PORT" + str(i) + "); here "
                       "the port is reachable at the pod's own address and through the Service, not on the node")
            specs.append(_PortSpec(pk, cport or (hport or None), hport or None, sport or None, protos, pname,
                                   marathon_port=hport if mode == "bridge" and hport else cport))
    used = {s.container_port for s in specs if s.container_port}
    nxt = FIRST_DYNAMIC_PORT
    for s in specs:
        if s.container_port is None:
            while nxt in used:
                nxt += 1
            s.container_port = nxt
            used.add(nxt)
    return specs


def _port_definitions(r: _Reader, app: dict[str, Any], prefix: str) -> list[_PortSpec]:
    require = bool(r.opt_bool(app, "requirePorts", prefix))
    defs = r.opt_list(app, "portDefinitions", prefix)
    legacy = r.opt_list(app, "ports", prefix)
    if defs is not None and legacy is not None and (defs or legacy):
        r.fail(_key(prefix, "ports"), "You cannot specify both ports and port definitions")
    items: list[tuple[str, dict[str, Any]]]
    implicit = defs is None and legacy is None
    if defs is not None:
        items = [(_key(_key(prefix, "portDefinitions"), i), r.obj(d, _key(_key(prefix, "portDefinitions"), i)))
                 for i, d in enumerate(defs)]
    elif legacy is not None:
        items = [(_key(_key(prefix, "ports"), i), {"port": p}) for i, p in enumerate(legacy)]
    else:
        items = [(_key(prefix, "portDefinitions"), {"port": 0})]  # AppDefinition.DefaultPorts: one dynamic port
    specs = []
    for i, (pk, d) in enumerate(items):
        number_key = pk if pk.endswith("]") and "ports[" in pk else _key(pk, "port")
        port = r.integer(d.get("port", 0), number_key, high=65535)
        protos = _protocols(r, r.opt_str(d, "protocol", pk), _key(pk, "protocol"))
        pname = r.opt_str(d, "name", pk) or ""
        for key in d:
            if key not in ("port", "protocol", "name", "labels"):
                r.warn(_key(pk, key), "unknown key, ignored")
        if require and port:
            specs.append(_PortSpec(pk, port, port, port, protos, pname, marathon_port=port))
            continue
        where = "not given: Marathon allocates one dynamic host port" if implicit else \
            "Marathon allocates a dynamic host port"
        r.warn(pk if implicit else number_key,
               f"{where} ($PORT{i}); here $PORT{i} is a container port reachable at the pod's own address and "
               "through the Service, not on the node")
        specs.append(_PortSpec(pk, port or None, None, port or None, protos, pname, marathon_port=port or None))
    return specs


def _network_extras(r: _Reader, app: dict[str, Any], prefix: str) -> None:
    ip = r.opt_obj(app, "ipAddress", prefix)
    if ip:
        for key in ip:
            if key == "networkName" or (key in ("groups", "labels", "discovery") and ip[key]):
                r.warn(_key(_key(prefix, "ipAddress"), key), "pods join skiff's pod network; ignored")


# ---- checks --------------------------------------------------------------------------------------------------------


def _port_ref(r: _Reader, hc: dict[str, Any], hk: str, ports: list[_PortSpec]) -> int:
    err = "Health check port indices must address an element of the ports array or container port mappings."
    explicit = r.opt_int(hc, "port", hk, high=65535)
    if explicit is not None:
        for p in ports:
            if explicit in (p.marathon_port, p.host_port, p.published, p.container_port):
                return p.container_port or explicit
        return explicit
    index = r.opt_int(hc, "portIndex", hk)
    index = 0 if index is None else index
    if index >= len(ports):
        r.fail(_key(hk, "portIndex"), err)
    return ports[index].container_port or 0


def _at_least_one(r: _Reader, d: dict[str, Any], name: str, hk: str, default: int) -> int:
    value = r.opt_int(d, name, hk)
    if value is None:
        return default
    if value < 1:
        r.warn(_key(hk, name), f"{value} is below the 1 second Kubernetes allows; 1 is used")
        return 1
    return value


def _health_checks(r: _Reader, app: dict[str, Any], prefix: str, ports: list[_PortSpec]) -> list[Check]:
    out = []
    for i, item in enumerate(r.opt_list(app, "healthChecks", prefix) or []):
        hk = _key(_key(prefix, "healthChecks"), i)
        hc = r.obj(item, hk)
        protocol = r.opt_str(hc, "protocol", hk) or "HTTP"
        known = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
        if protocol not in known:
            r.fail(_key(hk, "protocol"), f"must be one of {', '.join(known)}")
        check = Check(kind="http")
        if protocol == "COMMAND":
            command = r.opt_obj(hc, "command", hk)
            value = r.opt_str(command, "value", _key(hk, "command")) if command is not None else None
            if not value:
                r.fail(_key(hk, "command"), "a COMMAND health check needs command.value")
            check.kind = "exec"
            check.command = ["/bin/sh", "-c", value]
        else:
            check.port = _port_ref(r, hc, hk, ports)
            if protocol.endswith("TCP"):
                check.kind = "tcp"
            else:
                check.path = r.opt_str(hc, "path", hk) or "/"
                check.scheme = "HTTPS" if protocol.endswith("HTTPS") else "HTTP"
        grace = r.opt_int(hc, "gracePeriodSeconds", hk)
        check.start_period_seconds = 300 if grace is None else grace
        check.period_seconds = _at_least_one(r, hc, "intervalSeconds", hk, 60)
        check.timeout_seconds = _at_least_one(r, hc, "timeoutSeconds", hk, 20)
        failures = r.opt_int(hc, "maxConsecutiveFailures", hk)
        failures = 3 if failures is None else failures
        check.liveness = failures > 0  # 0: Marathon never kills for failing checks
        check.failure_threshold = max(failures, 1)
        delay = r.opt_int(hc, "delaySeconds", hk)
        if delay is not None:
            if protocol.startswith("MESOS_") or protocol == "COMMAND":
                check.initial_delay_seconds = delay
            else:
                r.warn(_key(hk, "delaySeconds"), "Marathon applies it to Mesos-level checks only; ignored")
        if r.opt_bool(hc, "ignoreHttp1xx", hk):
            r.warn(_key(hk, "ignoreHttp1xx"), "probes count 1xx responses as failures")
        if (r.opt_str(hc, "ipProtocol", hk) or "IPv4") != "IPv4":
            r.warn(_key(hk, "ipProtocol"), "probes use the pod's address family")
        for key in hc:
            if key not in ("protocol", "command", "port", "portIndex", "path", "gracePeriodSeconds",
                           "intervalSeconds", "timeoutSeconds", "maxConsecutiveFailures", "delaySeconds",
                           "ignoreHttp1xx", "ipProtocol"):
                r.warn(_key(hk, key), "unknown key, ignored")
        out.append(check)
    return out


def _readiness_checks(r: _Reader, app: dict[str, Any], prefix: str, ports: list[_PortSpec]) -> list[Check]:
    out = []
    for i, item in enumerate(r.opt_list(app, "readinessChecks", prefix) or []):
        rk = _key(_key(prefix, "readinessChecks"), i)
        rc = r.obj(item, rk)
        protocol = r.opt_str(rc, "protocol", rk) or "HTTP"
        if protocol not in ("HTTP", "HTTPS"):
            r.fail(_key(rk, "protocol"), "must be one of HTTP, HTTPS")
        port_name = r.opt_str(rc, "portName", rk) or "http-api"
        match = [p for p in ports if p.name == port_name]
        if not match:
            r.fail(_key(rk, "portName"), f"no port definition or mapping is named '{port_name}'")
        codes = r.opt_list(rc, "httpStatusCodesForReady", rk)
        for j, code in enumerate(codes or []):
            n = r.integer(code, _key(_key(rk, "httpStatusCodesForReady"), j), 100, 999)
            if not 200 <= n <= 399:
                r.warn(_key(_key(rk, "httpStatusCodesForReady"), j),
                       "probes count 200-399 as ready and nothing else")
        if r.opt_bool(rc, "preserveLastResponse", rk):
            r.warn(_key(rk, "preserveLastResponse"), "probe responses are not kept")
        r.opt_str(rc, "name", rk)
        out.append(Check(kind="http", port=match[0].container_port, path=r.opt_str(rc, "path", rk) or "/",
                         scheme="HTTPS" if protocol == "HTTPS" else "HTTP",
                         period_seconds=_at_least_one(r, rc, "intervalSeconds", rk, 30),
                         timeout_seconds=_at_least_one(r, rc, "timeoutSeconds", rk, 10),
                         failure_threshold=1, liveness=False, readiness=True))
    return out


# ---- placement, upgrades, unreachable ------------------------------------------------------------------------------


def _node_label(field_name: str) -> str:
    return {
        "hostname": "kubernetes.io/hostname",
        "@hostname": "kubernetes.io/hostname",
        "@zone": "topology.kubernetes.io/zone",
        "@region": "topology.kubernetes.io/region",
    }.get(field_name, field_name)


def _literal_alternatives(pattern: str) -> list[str] | None:
    """`a|b\\.c` → ["a", "b.c"]: a LIKE/UNLIKE regex that only lists exact values; None for real regexes."""
    alternatives = pattern.split("|")
    if not all(_LITERAL_ALTERNATIVE.fullmatch(a) for a in alternatives):
        return None
    return [a.replace("\\.", ".") for a in alternatives]


def _placement(r: _Reader, app: dict[str, Any], prefix: str, w: MarathonWorkload) -> Placement:
    p = Placement()
    ck = _key(prefix, "constraints")
    for i, item in enumerate(r.opt_list(app, "constraints", prefix) or []):
        key = _key(ck, i)
        parts = r.lst(item, key)
        if len(parts) not in (2, 3):
            r.fail(key, "Each constraint must have either 2 or 3 fields")
        fname = r.string(parts[0], _key(key, 0))
        op = r.string(parts[1], _key(key, 1))
        value = r.string(parts[2], _key(key, 2)) if len(parts) == 3 else None
        if op not in _OPERATORS:
            r.fail(_key(key, 1), f"Constraint operator must be one of {', '.join(_OPERATORS)}")
        label = _node_label(fname)
        if not _valid_label_key(label):
            r.warn(key, f"attribute {fname!r} cannot be a Kubernetes node label; constraint ignored")
            continue
        hostname = label == "kubernetes.io/hostname"
        if op == "UNIQUE":
            if hostname:
                p.one_per_node = True
            else:
                w.anti_affinity_keys.append(label)
        elif op in ("CLUSTER", "IS"):
            if value is None:
                r.warn(key, f"{op} without a value (any one value, chosen at first launch) is not supported; "
                            "ignored")
            elif not _valid_label_value(value):
                r.warn(key, f"{value!r} cannot be a node label value; constraint ignored")
            else:
                p.required.append(NodeRule(key=label, operator="In", values=[value]))
        elif op == "GROUP_BY":
            if value is not None:
                r.integer(int(value) if value.isdigit() else value, _key(key, 2), low=1)
            p.spread_by.append(label)
        elif op == "MAX_PER":
            if value is None or not value.isdigit() or int(value) < 1:
                r.fail(_key(key, 2), "MAX_PER needs a positive integer value")
            if hostname:
                p.max_per_node = int(value)
            else:
                p.spread_by.append(label)
                r.warn(key, f"at most {value} per value of {label!r} is not enforced; pods are spread over it")
        else:  # LIKE / UNLIKE
            if value is None:
                r.fail(_key(key, 2), f"{op} needs a regular expression value")
            try:
                re.compile(value)
            except (re.error, RecursionError, OverflowError):
                r.fail(_key(key, 2), f"'{value}' is not a valid regular expression")
            exact = _literal_alternatives(value)
            if exact is None or not all(_valid_label_value(v) for v in exact):
                r.warn(key, f"{value!r} is a regular expression; node rules can only list exact values, "
                            "constraint ignored")
                continue
            p.required.append(NodeRule(key=label, operator="In" if op == "LIKE" else "NotIn", values=exact))
    roles = r.str_list(app, "acceptedResourceRoles", prefix)
    if roles and "*" not in roles:
        valid = [x for x in roles if _valid_label_value(x)]
        if len(valid) != len(roles):
            r.fail(_key(prefix, "acceptedResourceRoles"), "role names must be valid label values")
        p.required.append(NodeRule(key=MESOS_ROLE_LABEL, operator="In", values=sorted(set(roles))))
        r.warn(_key(prefix, "acceptedResourceRoles"),
               f"Mesos roles are reservations; here pods need nodes labelled {MESOS_ROLE_LABEL}="
               + "|".join(sorted(set(roles))))
    return p


def _percent(fraction: Fraction) -> str | None:
    pct = fraction * 100
    return f"{pct.numerator}%" if pct.denominator == 1 else None


def _upgrade(r: _Reader, app: dict[str, Any], prefix: str, instances: int) -> Update:
    """minimumHealthCapacity/maximumOverCapacity → maxUnavailable/maxSurge (see the module docstring)."""
    uk = _key(prefix, "upgradeStrategy")
    us = r.opt_obj(app, "upgradeStrategy", prefix) or {}
    mhc_f = r.opt_num(us, "minimumHealthCapacity", uk, 0.0, 1.0)
    moc_f = r.opt_num(us, "maximumOverCapacity", uk, 0.0, 1.0)
    for key in us:
        if key not in ("minimumHealthCapacity", "maximumOverCapacity"):
            r.warn(_key(uk, key), "unknown key, ignored")
    mhc = Fraction(repr(1.0 if mhc_f is None else mhc_f))
    moc = Fraction(repr(1.0 if moc_f is None else moc_f))
    n = instances
    unavailable_count = n - math.ceil(n * mhc)
    surge_count = math.floor(n * (1 + moc)) - n
    if unavailable_count == 0 and surge_count == 0:
        surge_count = 1  # TaskReplaceActor: one instance of over-capacity so a restart can proceed
    unavailable: int | str = _percent(1 - mhc) or unavailable_count
    surge_pct = _percent(moc)
    surge: int | str = surge_count
    if surge_pct is not None and math.ceil(n * moc) == surge_count and surge_count > 0:
        surge = surge_pct
    if unavailable in (0, "0%") and surge == 0:
        surge = 1
    return Update(max_surge=surge, max_unavailable=unavailable, order="start-first" if surge else "stop-first")


def _unreachable(r: _Reader, app: dict[str, Any], prefix: str, w: MarathonWorkload) -> None:
    raw = app.get("unreachableStrategy")
    key = _key(prefix, "unreachableStrategy")
    if raw is None:
        return  # Kubernetes' default (300 s) is Marathon 1.4's default inactiveAfterSeconds
    seconds: int | None
    if raw == "disabled":
        seconds = None
    else:
        us = r.obj(raw, key)
        inactive = r.opt_int(us, "inactiveAfterSeconds", key, high=2**62)
        expunge = r.opt_int(us, "expungeAfterSeconds", key, high=2**62)
        seconds = 300 if inactive is None else inactive
        if expunge is not None:
            r.warn(_key(key, "expungeAfterSeconds"), "a replaced pod is removed when its node comes back; the "
                                                     "expunge delay is not separate")
        for k in us:
            if k not in ("inactiveAfterSeconds", "expungeAfterSeconds"):
                r.warn(_key(key, k), "unknown key, ignored")
    for taint in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"):
        t: Obj = {"key": taint, "operator": "Exists", "effect": "NoExecute"}
        if seconds is not None:
            t["tolerationSeconds"] = seconds
        w.tolerations.append(t)


# ---- rendering -----------------------------------------------------------------------------------------------------


def render_app(w: Workload) -> list[Obj]:
    """`render.render_workload`, plus what a `MarathonWorkload` carries beyond the shared form."""
    from skiff.translate.render import render_workload

    objs = render_workload(w)
    if isinstance(w, MarathonWorkload):
        apply_extras(objs, w)
    return objs


def apply_extras(objs: list[Obj], w: MarathonWorkload) -> None:
    """Add secret/field env, ephemeral storage, tolerations and attribute anti-affinity to the pod template
    of the rendered workload object (in place; idempotent)."""
    for obj in objs:
        if obj.get("kind") not in ("Deployment", "DaemonSet", "Job", "StatefulSet"):
            continue
        pod = obj.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
        for c in pod.get("containers") or []:
            env = [e for e in c.get("env") or [] if e.get("name") not in w.secret_env and
                   e.get("name") not in w.field_env]
            for var, (secret, key) in sorted(w.secret_env.items()):
                env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
            for var, path in sorted(w.field_env.items()):
                env.append({"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}})
            if env:
                c["env"] = env
            if w.ephemeral_storage_request:
                c.setdefault("resources", {}).setdefault("requests", {})["ephemeral-storage"] = \
                    w.ephemeral_storage_request
        if w.tolerations:
            have = pod.get("tolerations") or []
            pod["tolerations"] = [t for t in have if t not in w.tolerations] + copy.deepcopy(w.tolerations)
        if w.anti_affinity_keys:
            selector = (obj["spec"].get("selector") or {}).get("matchLabels") or {LABEL_WORKLOAD: w.name}
            anti = pod.setdefault("affinity", {}).setdefault("podAntiAffinity", {})
            terms = anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
            for key in w.anti_affinity_keys:
                term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": key}
                if term not in terms:
                    terms.append(term)


# ---- the reverse view ----------------------------------------------------------------------------------------------


def _marathon_time(stamp: str) -> str:
    """RFC 3339 `2024-05-01T10:00:00Z` → Marathon's `2024-05-01T10:00:00.000Z`."""
    if stamp.endswith("Z") and "." not in stamp:
        return stamp[:-1] + ".000Z"
    return stamp


def _quantity(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_quantity(value)  # type: ignore[arg-type]
    except (QuantityError, TypeError):
        return None


def _number(d: Decimal) -> float | int:
    return int(d) if d == d.to_integral_value() else float(d)


def _probe_to_health_check(probe: Obj, ports: list[Obj]) -> Obj:
    hc: Obj = {
        "gracePeriodSeconds": 300, "intervalSeconds": probe.get("periodSeconds", 10),
        "timeoutSeconds": probe.get("timeoutSeconds", 1), "maxConsecutiveFailures": probe.get("failureThreshold", 3),
        "delaySeconds": probe.get("initialDelaySeconds", 0), "ignoreHttp1xx": False,
    }
    numbers = [p.get("containerPort") for p in ports]
    target: Obj = probe.get("httpGet") or probe.get("tcpSocket") or {}
    port = target.get("port")
    if isinstance(port, str):
        port = next((p.get("containerPort") for p in ports if p.get("name") == port), None)
    if "exec" in probe:
        command = (probe["exec"] or {}).get("command") or []
        value = command[2] if len(command) == 3 and command[:2] == ["/bin/sh", "-c"] else " ".join(command)
        hc.update(protocol="COMMAND", command={"value": value})
    else:
        if "httpGet" in probe:
            hc.update(protocol="HTTPS" if target.get("scheme") == "HTTPS" else "HTTP", path=target.get("path", "/"))
        else:
            hc["protocol"] = "TCP"
        if port in numbers:
            hc["portIndex"] = numbers.index(port)
        else:
            hc["port"] = port
    return hc


def marathon_app_view(deployment: Obj, service: Obj | None) -> dict[str, Any]:
    """A Deployment (as `render_app` makes it, with its status) as Marathon's GET /v2/apps shows the app.

    Keys the cluster keeps live (instances, image, command, resources, env) come from the Deployment, so
    `kubectl scale`/`set image` show through; what Kubernetes cannot hold (constraints, the exact health
    checks and upgrade strategy) comes from the definition annotation, or is derived when it is missing.
    Task counts come from the Deployment status: running = ready pods, staged = the rest."""
    md = deployment.get("metadata") or {}
    annotations = md.get("annotations") or {}
    spec = deployment.get("spec") or {}
    template = (spec.get("template") or {})
    pod = template.get("spec") or {}
    annotations = {**((template.get("metadata") or {}).get("annotations") or {}), **annotations}
    definition: dict[str, Any] = {}
    try:
        loaded = json.loads(annotations.get(APP_DEFINITION_ANNOTATION, "{}"))
        if isinstance(loaded, dict):
            definition = loaded
    except ValueError:
        definition = {}
    containers = pod.get("containers") or [{}]
    c = containers[0]
    app_id = definition.get("id") or annotations.get(APP_ID_ANNOTATION) or "/" + str(md.get("name", ""))

    command = c.get("command")
    cmd: str | None = None
    args: list[str] | None = None
    if isinstance(command, list) and len(command) == 3 and command[:2] == ["/bin/sh", "-c"]:
        cmd = command[2]
    elif c.get("args"):
        args = list(c["args"])
    requests = (c.get("resources") or {}).get("requests") or {}
    limits = (c.get("resources") or {}).get("limits") or {}
    cpu = _quantity(requests.get("cpu", limits.get("cpu")))
    mem = _quantity(limits.get("memory", requests.get("memory")))
    disk = _quantity(requests.get("ephemeral-storage"))
    mib = Decimal(2**20)

    user_env = definition.get("env") if isinstance(definition.get("env"), dict) else None
    injected = re.compile(r"PORT|PORTS|PORT\d+|PORT_.+|MARATHON_APP_.+|HOST|MESOS_SANDBOX")
    env: dict[str, Any] = {}
    for e in c.get("env") or []:
        name = e.get("name", "")
        if "value" in e and (name in (user_env or {}) or not injected.fullmatch(name)):
            env[name] = e["value"]
    for name, value in (user_env or {}).items():
        if isinstance(value, dict):
            env[name] = value

    labels = definition.get("labels")
    if not isinstance(labels, dict):
        labels = {k: v for k, v in (md.get("labels") or {}).items() if not k.startswith("skiff.io/")}

    container = copy.deepcopy(definition.get("container")) if isinstance(definition.get("container"), dict) \
        else None
    image = c.get("image")
    if container is not None and isinstance(container.get("docker"), dict):
        container["docker"]["image"] = image
    elif container is None and image and image != DEFAULT_IMAGE:
        mappings = []
        svc_ports = ((service or {}).get("spec") or {}).get("ports") or []
        for p in c.get("ports") or []:
            pm: Obj = {"containerPort": p.get("containerPort"), "hostPort": p.get("hostPort", 0),
                       "protocol": str(p.get("protocol", "TCP")).lower(), "servicePort": 0}
            for sp in svc_ports:
                if sp.get("targetPort") in (p.get("containerPort"), p.get("name")):
                    pm["servicePort"] = sp.get("nodePort") or sp.get("port", 0)
            if p.get("name"):
                pm["name"] = p["name"]
            mappings.append(pm)
        container = {"type": "DOCKER", "docker": {"image": image, "network": "BRIDGE", "portMappings": mappings,
                                                  "privileged": False, "parameters": [], "forcePullImage": False},
                     "volumes": []}

    health = definition.get("healthChecks")
    if not isinstance(health, list):
        probe = c.get("livenessProbe") or c.get("readinessProbe")
        health = [_probe_to_health_check(probe, c.get("ports") or [])] if probe else []

    replicas = spec.get("replicas", 1)
    upgrade = definition.get("upgradeStrategy")
    if not isinstance(upgrade, dict):
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        upgrade = {"minimumHealthCapacity": _capacity(rolling.get("maxUnavailable", "25%"), replicas, True),
                   "maximumOverCapacity": _capacity(rolling.get("maxSurge", "25%"), replicas, False)}
    else:
        upgrade = {"minimumHealthCapacity": upgrade.get("minimumHealthCapacity", 1.0),
                   "maximumOverCapacity": upgrade.get("maximumOverCapacity", 1.0)}

    status = deployment.get("status") or {}
    total = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    return {
        "id": app_id,
        "cmd": cmd,
        "args": args,
        "cpus": _number(cpu) if cpu is not None else 1.0,
        "mem": _number(mem / mib) if mem is not None else 0,
        "disk": _number(disk / mib) if disk is not None else 0,
        "gpus": definition.get("gpus", 0),
        "instances": replicas,
        "tasksRunning": ready,
        "tasksHealthy": ready if health else 0,
        "tasksStaged": max(total - ready, 0),
        "tasksUnhealthy": 0,
        "container": container,
        "env": env,
        "labels": labels,
        "healthChecks": health,
        "upgradeStrategy": upgrade,
        "constraints": definition.get("constraints") or [],
        "version": _marathon_time(str(md.get("creationTimestamp", ""))),
    }


def _capacity(value: object, replicas: int, unavailable: bool) -> float:
    """A rollingUpdate bound back to a Marathon capacity fraction."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            fraction = float(value[:-1]) / 100
        except ValueError:
            fraction = 0.25
    elif isinstance(value, int) and replicas:
        fraction = value / replicas
    else:
        fraction = 0.0
    fraction = min(max(fraction, 0.0), 1.0)
    return round(1.0 - fraction, 6) if unavailable else round(fraction, 6)
