"""One Compose service, as `docker stack deploy` reads it, → a `Workload` and its rendered objects.

The mapping follows docker/cli `cli/compose/convert/service.go` field by field. Keys Swarm itself ignores
(`build`, `container_name`, `depends_on`, `restart`...) are warned about as ignored by Swarm too; keys Swarm
honours but Kubernetes has no place for are warned about as not supported; anything else is `unknown key`.

Defaults: where the file leaves a key unset the Kubernetes default applies (e.g. no `minReadySeconds`
unless `update_config.monitor` is given, the 30 s grace period unless `stop_grace_period` is), so a
translated stack behaves like a hand-written manifest rather than carrying Swarm's implicit timings.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from skiff.api import validation as v
from skiff.translate.compose import values as val
from skiff.translate.compose.loader import Ctx, Lookup, parse_env_file
from skiff.translate.model import (
    LABEL_WORKLOAD,
    Check,
    Container,
    Mount,
    NodeRule,
    Obj,
    Placement,
    Port,
    Restart,
    Update,
    Volume,
    Workload,
)
from skiff.translate.render import dns_label, port_name, render_workload, selector_labels, service_name

CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
SECRETS_DIR = "/run/secrets"

SWARM_IGNORED = {
    "build": "Swarm ignores it too: stacks deploy pre-built images (push the image and set `image`)",
    "container_name": "Swarm ignores it too: setting the container name is not supported",
    "depends_on": "Swarm ignores it too: services start in any order and must retry their connections",
    "restart": "Swarm ignores it too: use deploy.restart_policy",
    **{k: "Swarm ignores it too (docker stack deploy: unsupported option)" for k in (
        "cgroup_parent", "cgroup", "devices", "domainname", "external_links", "ipc", "links", "mac_address",
        "network_mode", "pid", "privileged", "shm_size", "userns_mode")},
}
SWARM_FORBIDDEN = {
    "extends": "docker stack deploy rejects it: support for `extends` is not implemented; ignored",
    "volume_driver": "docker stack deploy rejects it: define the volume's driver under the top-level volumes; ignored",
    "volumes_from": "docker stack deploy rejects it: share a top-level volume instead; ignored",
    **{k: "docker stack deploy rejects it: set resource limits using deploy.resources; ignored" for k in (
        "cpu_quota", "cpu_shares", "cpuset", "mem_limit", "memswap_limit")},
}
NOT_SUPPORTED = {
    "hostname": "not supported: pods of a workload take their own names as hostnames",
    "dns": "not supported: pods use the cluster DNS", "dns_search": "not supported: pods use the cluster DNS",
    "dns_opt": "not supported: pods use the cluster DNS",
    "extra_hosts": "not supported: no per-service /etc/hosts entries",
    "stop_signal": "not supported: containers are stopped with the image's STOPSIGNAL",
    "ulimits": "not supported: no per-container ulimits", "sysctls": "not supported: no per-pod sysctls",
    "init": "not supported: no init process is injected", "isolation": "not supported on Linux nodes",
    "logging": "not supported: container logs are kept by the node agent (kubectl logs)",
    "tty": "not supported", "stdin_open": "not supported", "credential_spec": "not supported (Windows only)",
    "platform": "not supported: use deploy.placement.constraints node.platform.*",
    "pull_policy": "not supported: images are pulled IfNotPresent",
    "profiles": "not supported: every service of the stack is deployed, as with docker stack deploy",
    "scale": "Swarm reads deploy.replicas; ignored",
}
# Any other Compose-spec service key (resources of `docker run`, runtime knobs) that pods cannot express.
OTHER_SPEC_KEYS = {
    "blkio_config", "cpu_count", "cpu_percent", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus",
    "device_cgroup_rules", "gpus", "group_add", "mem_reservation", "mem_swappiness", "oom_kill_disable",
    "oom_score_adj", "pids_limit", "runtime", "storage_opt", "uts", "attach", "develop", "post_start",
    "pre_stop", "use_api_socket", "models", "provider", "label_file", "dns_opt",
}
HANDLED = {
    "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "networks", "volumes",
    "tmpfs", "configs", "secrets", "healthcheck", "user", "working_dir", "read_only", "cap_add", "cap_drop",
    "security_opt", "labels", "annotations", "deploy", "stop_grace_period",
}


@dataclass
class NetworkInfo:
    label: str  # pod label marking membership
    external: bool
    host: bool = False  # the node's own network stack (Swarm's predefined `host` network)


@dataclass
class FileObject:
    """A config or secret: the ConfigMap/Secret it lives in and the key holding its content."""

    kind: Literal["configMap", "secret"]
    name: str
    key: str


@dataclass
class Stack:
    """What the services of a stack can refer to, resolved from the top-level sections."""

    namespace: str
    labels: dict[str, str]
    networks: dict[str, NetworkInfo]
    volume_paths: dict[str, str]  # named volume → node directory
    configs: dict[str, FileObject]
    secrets: dict[str, FileObject]
    lookup: Lookup
    sources: dict[str, str]  # supplied file texts (env_file), by path


@dataclass
class ServiceOut:
    workload: Workload
    objects: list[Obj]
    open_ports: list[tuple[int, str]] = field(default_factory=list)  # reachable from outside the stack


# --- typed reads ------------------------------------------------------------------------------------------


def kind_of(x: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(x), type(x).__name__)


def as_str(ctx: Ctx, x: Any, key: str) -> str:
    if isinstance(x, bool) or not isinstance(x, (str, int, float)):
        ctx.fail(key, f"must be a string, not {kind_of(x)}")
    return str(x)


def as_int(ctx: Ctx, x: Any, key: str, lo: int = 0, hi: int = val.MAX_INT32) -> int:
    if isinstance(x, str) and re.fullmatch(r"\s*[-+]?\d+\s*", x):
        x = int(x)
    if isinstance(x, bool) or not isinstance(x, int):
        ctx.fail(key, f"must be an integer, not {kind_of(x)}")
    if not lo <= x <= hi:
        ctx.fail(key, f"must be between {lo} and {hi}, not {x}")
    return x


def as_bool(ctx: Ctx, x: Any, key: str) -> bool:
    if isinstance(x, str) and x.lower() in ("true", "false"):
        return x.lower() == "true"
    if not isinstance(x, bool):
        ctx.fail(key, f"must be a boolean, not {kind_of(x)}")
    return x


def as_map(ctx: Ctx, x: Any, key: str) -> dict[str, Any]:
    if x is None:
        return {}
    if not isinstance(x, dict):
        ctx.fail(key, f"must be a mapping, not {kind_of(x)}")
    return x


def as_list(ctx: Ctx, x: Any, key: str) -> list[Any]:
    if x is None:
        return []
    if not isinstance(x, list):
        ctx.fail(key, f"must be a list, not {kind_of(x)}")
    return x


def as_strings(ctx: Ctx, x: Any, key: str) -> list[str]:
    """A string or a list of strings (Compose's `StringList`)."""
    if isinstance(x, (str, int, float)) and not isinstance(x, bool):
        return [str(x)]
    return [as_str(ctx, item, key) for item in as_list(ctx, x, key)]


def duration(ctx: Ctx, x: Any, key: str) -> int:
    """Whole seconds of a Compose duration; warns when sub-second precision is rounded up."""
    try:
        seconds = val.parse_duration(x)
    except ValueError as e:
        ctx.fail(key, str(e))
    whole, rounded = val.whole_seconds(seconds)
    if rounded:
        ctx.warn(key, f"rounded up to {whole}s: Kubernetes counts whole seconds")
    return whole


def check_keys(ctx: Ctx, m: dict[str, Any], key: str, known: set[str]) -> None:
    for k in m:
        if k not in known and not k.startswith("x-"):
            ctx.warn(f"{key}.{k}", "unknown key")


def k8s_literal(s: str) -> str:
    """`s` protected from Kubernetes' `$(VAR)` expansion in command, args and env values."""
    return s.replace("$", "$$")


def command(ctx: Ctx, x: Any, key: str) -> list[str] | None:
    """A Compose command/entrypoint: a list, or a string split like a shell would (no shell is run)."""
    if x is None:
        return None
    if isinstance(x, str):
        try:
            return [k8s_literal(a) for a in shlex.split(x)]
        except ValueError as e:
            ctx.fail(key, f"cannot split the command: {e}")
    return [k8s_literal(as_str(ctx, a, key)) for a in as_list(ctx, x, key)]


# --- the service ----------------------------------------------------------------------------------------


def translate_service(ctx: Ctx, name: str, svc: dict[str, Any], stack: Stack) -> ServiceOut:
    key = f"services.{name}"
    for k in svc:
        if k.startswith("x-") or k in HANDLED:
            continue
        if k in SWARM_IGNORED:
            ctx.warn(f"{key}.{k}", SWARM_IGNORED[k])
        elif k in SWARM_FORBIDDEN:
            ctx.warn(f"{key}.{k}", SWARM_FORBIDDEN[k])
        elif k in NOT_SUPPORTED:
            ctx.warn(f"{key}.{k}", NOT_SUPPORTED[k])
        elif k in OTHER_SPEC_KEYS:
            ctx.warn(f"{key}.{k}", "not supported: no equivalent in a Kubernetes pod")
        else:
            ctx.warn(f"{key}.{k}", "unknown key")

    if svc.get("image") is None:
        ctx.fail(f"{key}.image", "a service needs an image: Swarm does not build images")
    image = as_str(ctx, svc["image"], f"{key}.image")
    wname = dns_label(name)
    if service_name(Workload(name=wname, namespace="")) != name:
        ctx.warn(key, f"{name!r} is not a valid DNS-1035 label: the service is reachable as "
                      f"{service_name(Workload(name=wname, namespace=''))!r}")
    container = Container(name=wname, image=image)
    container.command = command(ctx, svc.get("entrypoint"), f"{key}.entrypoint")
    container.args = command(ctx, svc.get("command"), f"{key}.command")
    container.env = _environment(ctx, svc, key, stack)
    volumes: list[Volume] = []
    named_volumes: set[str] = set()
    _mounts(ctx, svc, key, stack, container, volumes, named_volumes)
    _files(ctx, svc, key, stack, container, volumes)
    if svc.get("healthcheck") is not None:
        container.checks = _healthcheck(ctx, as_map(ctx, svc["healthcheck"], f"{key}.healthcheck"),
                                        f"{key}.healthcheck")
    _security(ctx, svc, key, container)
    if svc.get("working_dir") is not None:
        container.working_dir = as_str(ctx, svc["working_dir"], f"{key}.working_dir")
    if svc.get("stop_grace_period") is not None:
        container.stop_grace_seconds = duration(ctx, svc["stop_grace_period"], f"{key}.stop_grace_period")

    w = Workload(name=wname, namespace=stack.namespace, containers=[container], volumes=volumes,
                 labels=dict(stack.labels))
    auto_published = _ports(ctx, svc, key, container)
    pod_labels, pod_annotations = _split_labels(ctx, svc.get("labels"), f"{key}.labels")
    for k, value in as_map(ctx, svc.get("annotations"), f"{key}.annotations").items():
        if v.qualified_name(k):
            ctx.warn(f"{key}.annotations.{k}", "not a valid annotation key; dropped")
        else:
            pod_annotations[k] = "" if value is None else as_str(ctx, value, f"{key}.annotations.{k}")
    w.pod_labels = pod_labels
    _networks(ctx, svc, key, stack, w)
    deploy = as_map(ctx, svc.get("deploy"), f"{key}.deploy")
    controller_labels, controller_annotations, tolerate_cp = _deploy(ctx, deploy, f"{key}.deploy", w, container)
    if w.endpoint_mode == "dnsrr" and (auto_published or any(p.published is not None for p in container.ports)):
        ctx.fail(f"{key}.deploy.endpoint_mode", "port published with ingress mode can't be used with dnsrr mode")
    if w.host_network:
        for p in container.ports:
            p.host_port, p.published = p.container_port, None

    objects = render_workload(w)
    _decorate(objects[0], controller_labels, controller_annotations, pod_annotations, named_volumes, tolerate_cp)
    if auto_published:
        _add_node_ports(w, objects, auto_published)
    open_ports = sorted({(p.container_port, p.protocol) for p in container.ports
                         if p.published is not None or p.host_port is not None}
                        | set(auto_published))
    return ServiceOut(w, objects, open_ports)


def _environment(ctx: Ctx, svc: dict[str, Any], key: str, stack: Stack) -> dict[str, str]:
    env: dict[str, str] = {}
    for path, required in _env_files(ctx, svc.get("env_file"), f"{key}.env_file"):
        text = _source(ctx, stack, path, f"{key}.env_file")
        if text is None:
            if required:
                ctx.fail(f"{key}.env_file", f"env file {path} not supplied (translators read no files)")
            ctx.warn(f"{key}.env_file", f"optional env file {path} not supplied; skipped")
            continue
        env.update(parse_env_file(text, path, stack.lookup))
    for k, value in as_map(ctx, svc.get("environment"), f"{key}.environment").items():
        if value is None:
            found = stack.lookup(k)
            if found is None:
                continue  # `- KEY` with KEY unset: the variable stays unset, as in Docker
            value = found
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[k] = as_str(ctx, value, f"{key}.environment.{k}")
    out: dict[str, str] = {}
    for k, value in env.items():
        if v.env_var_name(k):
            ctx.warn(f"{key}.environment.{k}", "not a valid Kubernetes environment variable name; dropped")
            continue
        out[k] = k8s_literal(value)
    return out


def _env_files(ctx: Ctx, x: Any, key: str) -> list[tuple[str, bool]]:
    if x is None:
        return []
    items = x if isinstance(x, list) else [x]
    out = []
    for item in items:
        if isinstance(item, dict):
            check_keys(ctx, item, key, {"path", "required", "format"})
            out.append((as_str(ctx, item.get("path"), f"{key}.path"),
                        as_bool(ctx, item.get("required", True), f"{key}.required")))
        else:
            out.append((as_str(ctx, item, key), True))
    return out


def _source(ctx: Ctx, stack: Stack, path: str, key: str) -> str | None:
    """The supplied text of a file named relative to the Compose file that mentions it."""
    if path in stack.sources:
        return stack.sources[path]
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(ctx.file_of(key)), path))
    return stack.sources.get(joined)


def _split_labels(ctx: Ctx, x: Any, key: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels valid as Kubernetes labels, and the rest as annotations (Docker label values are free text)."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for k, value in as_map(ctx, x, key).items():
        text = "" if value is None else as_str(ctx, value, f"{key}.{k}")
        if v.qualified_name(k):
            ctx.warn(f"{key}.{k}", "not a valid Kubernetes label or annotation key; dropped")
        elif v.label_value(text):
            annotations[k] = text
        else:
            labels[k] = text
    return labels, annotations


# --- ports ----------------------------------------------------------------------------------------------


def _ports(ctx: Ctx, svc: dict[str, Any], key: str, c: Container) -> list[tuple[int, str]]:
    """Fill `c.ports`; returns the ingress ports published without a number (Swarm picks one)."""
    specs: list[val.PortSpec] = []
    pkey = f"{key}.ports"
    for entry in as_map(ctx, svc.get("ports"), pkey).values():
        if isinstance(entry, dict):
            specs.append(_long_port(ctx, entry, pkey))
            continue
        if isinstance(entry, bool) or not isinstance(entry, (str, int)):
            ctx.fail(pkey, f"entries must be strings or mappings, not {kind_of(entry)}")
        try:
            specs.extend(val.parse_port_short(entry))
        except ValueError as e:
            ctx.fail(pkey, str(e))
    auto: list[tuple[int, str]] = []
    for s in specs:
        if s.host_ip:
            ctx.warn(pkey, f"host_ip {s.host_ip} of port {s.target}: Swarm ignores it too, publishing on every address")
        name = s.name
        if name and v.port_name(name):
            ctx.warn(pkey, f"port name {name!r} is not a valid Kubernetes port name; dropped")
            name = ""
        if s.mode == "host":
            if s.published is None:
                ctx.warn(pkey, f"host-mode port {s.target} without a published port: Swarm would bind a random "
                               "node port; reachable on the pod's address only")
            c.ports.append(Port(s.target, s.protocol, name=name, host_port=s.published))
        elif s.published is None:
            c.ports.append(Port(s.target, s.protocol, name=name))
            if (s.target, s.protocol) not in auto:
                auto.append((s.target, s.protocol))
        else:
            c.ports.append(Port(s.target, s.protocol, name=name, published=s.published))
    for entry in as_strings(ctx, svc.get("expose"), f"{key}.expose") if svc.get("expose") is not None else []:
        try:
            exposed = val.parse_port_short(entry)
        except ValueError as e:
            ctx.fail(f"{key}.expose", str(e))
        for s in exposed:
            if s.published is not None:
                ctx.fail(f"{key}.expose", f"{entry!r}: expose takes container ports only")
            c.ports.append(Port(s.target, s.protocol))
    return auto


def _long_port(ctx: Ctx, m: dict[str, Any], key: str) -> val.PortSpec:
    check_keys(ctx, m, key, {"target", "published", "protocol", "mode", "host_ip", "name", "app_protocol"})
    if m.get("target") is None:
        ctx.fail(f"{key}.target", "required")
    target = as_int(ctx, m["target"], f"{key}.target", 1, 65535)
    published = None if m.get("published") in (None, "", 0) else as_int(ctx, m["published"], f"{key}.published", 1, 65535)
    try:
        proto = val.protocol(as_str(ctx, m.get("protocol", "tcp"), f"{key}.protocol"))
    except ValueError as e:
        ctx.fail(f"{key}.protocol", str(e))
    mode = as_str(ctx, m.get("mode", "ingress"), f"{key}.mode")
    if mode not in ("ingress", "host"):
        ctx.fail(f"{key}.mode", f"must be ingress or host, not {mode!r}")
    if m.get("app_protocol") is not None:
        ctx.warn(f"{key}.app_protocol", "not supported; ignored")
    host_ip = as_str(ctx, m.get("host_ip", ""), f"{key}.host_ip")
    name = as_str(ctx, m.get("name", ""), f"{key}.name")
    return val.PortSpec(target, published, proto, "host" if mode == "host" else "ingress", host_ip, name)


def _add_node_ports(w: Workload, objects: list[Obj], ports: list[tuple[int, str]]) -> None:
    """Ingress ports published without a number: Swarm picks one from 30000-32767, as a NodePort does."""
    entries = [{"name": port_name(proto, target), "protocol": proto, "port": target, "targetPort": target}
               for target, proto in ports]
    name = dns_label(service_name(w) + "-nodeport", start_with_letter=True)
    for o in objects:
        if o["kind"] == "Service" and o["metadata"]["name"] == name:
            taken = {(p["port"], p["protocol"]) for p in o["spec"]["ports"]}
            o["spec"]["ports"].extend(e for e in entries if (e["port"], e["protocol"]) not in taken)
            return
    objects.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": w.namespace,
                                 "labels": {**w.labels, LABEL_WORKLOAD: w.name}},
                    "spec": {"selector": selector_labels(w), "type": "NodePort", "ports": entries}})


# --- volumes, configs, secrets ------------------------------------------------------------------------------


def _mounts(ctx: Ctx, svc: dict[str, Any], key: str, stack: Stack, c: Container, volumes: list[Volume],
            named: set[str]) -> None:
    vkey = f"{key}.volumes"
    by_name: dict[str, str] = {}
    for i, entry in enumerate(as_map(ctx, svc.get("volumes"), vkey).values()):
        spec, sub_path, size = _volume_spec(ctx, entry, vkey)
        if spec.type == "tmpfs":
            vol = f"tmpfs-{i}"
            volumes.append(Volume(vol, "memory", size_limit=size))
        elif spec.type == "bind":
            path = spec.source
            if path.startswith("~"):
                ctx.warn(vkey, f"bind source {path!r}: the client's home directory is unknown here; mount skipped")
                continue
            if not path.startswith("/"):
                base = posixpath.dirname(ctx.file_of(vkey)) or "."
                path = posixpath.normpath(posixpath.join(base, path))
                ctx.warn(vkey, f"relative bind source {spec.source!r} resolved against the Compose file's "
                               f"directory as {path!r}: it must exist on every node that may run the task")
            vol = f"bind-{i}"
            volumes.append(Volume(vol, "hostPath", ref=path))
        elif not spec.source:
            vol = f"anon-{i}"
            volumes.append(Volume(vol, "emptyDir"))
        else:
            if spec.source not in stack.volume_paths:
                ctx.fail(vkey, f'Named volume "{spec.source}" is used in service "{key.split(".", 1)[1]}" '
                               "but no declaration was found in the volumes section.")
            if spec.source not in by_name:
                by_name[spec.source] = dns_label(f"vol-{spec.source}")
                volumes.append(Volume(by_name[spec.source], "hostPath", ref=stack.volume_paths[spec.source]))
                named.add(by_name[spec.source])
            vol = by_name[spec.source]
        for flag in spec.options:
            if flag != "nocopy":
                ctx.warn(vkey, f"mount option {flag!r} of {spec.target}: not supported; ignored")
        c.mounts.append(Mount(vol, spec.target, spec.read_only, sub_path))
    for i, entry in enumerate(as_strings(ctx, svc.get("tmpfs"), f"{key}.tmpfs") if svc.get("tmpfs") is not None else []):
        path, _, opts = entry.partition(":")
        size = ""
        for opt in filter(None, opts.split(",")):
            name, _, value = opt.partition("=")
            if name == "size":
                try:
                    size = val.bytes_quantity(val.parse_bytes(value))
                except ValueError as e:
                    ctx.fail(f"{key}.tmpfs", str(e))
            else:
                ctx.warn(f"{key}.tmpfs", f"tmpfs option {opt!r} of {path}: not supported; ignored")
        vol = f"tmpfs-s{i}"
        volumes.append(Volume(vol, "memory", size_limit=size))
        c.mounts.append(Mount(vol, path))


def _volume_spec(ctx: Ctx, entry: Any, key: str) -> tuple[val.VolumeSpec, str, str]:
    """(spec, subPath, tmpfs size) of a short- or long-syntax service volume."""
    if isinstance(entry, str):
        try:
            return val.parse_volume_short(entry), "", ""
        except ValueError as e:
            ctx.fail(key, str(e))
    m = as_map(ctx, entry, key)
    check_keys(ctx, m, key, {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency",
                             "image"})
    kind = as_str(ctx, m.get("type", "volume"), f"{key}.type")
    if m.get("target") is None:
        ctx.fail(f"{key}.target", "required")
    target = as_str(ctx, m["target"], f"{key}.target")
    source = "" if m.get("source") is None else as_str(ctx, m["source"], f"{key}.source")
    ro = as_bool(ctx, m.get("read_only", False), f"{key}.read_only")
    if kind not in ("volume", "bind", "tmpfs"):
        ctx.fail(f"{key}.type", f"volume type {kind!r} is not supported (volume, bind or tmpfs)")
    if m.get("consistency") is not None:
        ctx.warn(f"{key}.consistency", "not supported (Docker Desktop only); ignored")
    sub_path = ""
    bind = as_map(ctx, m.get("bind"), f"{key}.bind")
    for k in bind:
        ctx.warn(f"{key}.bind.{k}", "not supported; ignored")
    vol = as_map(ctx, m.get("volume"), f"{key}.volume")
    check_keys(ctx, vol, f"{key}.volume", {"nocopy", "subpath"})
    if vol.get("subpath") is not None:
        sub_path = as_str(ctx, vol["subpath"], f"{key}.volume.subpath")
    size = ""
    tmpfs = as_map(ctx, m.get("tmpfs"), f"{key}.tmpfs")
    check_keys(ctx, tmpfs, f"{key}.tmpfs", {"size", "mode"})
    if tmpfs.get("size") is not None:
        try:
            size = val.bytes_quantity(val.parse_bytes(tmpfs["size"]))
        except ValueError as e:
            ctx.fail(f"{key}.tmpfs.size", str(e))
    if tmpfs.get("mode") is not None:
        ctx.warn(f"{key}.tmpfs.mode", "not supported: memory volumes are world-writable; ignored")
    typed: Literal["volume", "bind", "tmpfs"] = "bind" if kind == "bind" else "tmpfs" if kind == "tmpfs" else "volume"
    if typed == "bind" and not source:
        ctx.fail(f"{key}.source", "a bind mount needs a source")
    return val.VolumeSpec(typed, target, source, ro), sub_path, size


def _files(ctx: Ctx, svc: dict[str, Any], key: str, stack: Stack, c: Container, volumes: list[Volume]) -> None:
    """Swarm configs (default `/<name>`) and secrets (`/run/secrets/<name>`) as single-file mounts."""
    for section, defined in (("configs", stack.configs), ("secrets", stack.secrets)):
        skey = f"{key}.{section}"
        for i, entry in enumerate(as_map(ctx, svc.get(section), skey).values()):
            if isinstance(entry, dict):
                check_keys(ctx, entry, skey, {"source", "target", "uid", "gid", "mode"})
                source = as_str(ctx, entry.get("source"), f"{skey}.source")
                target = "" if entry.get("target") is None else as_str(ctx, entry["target"], f"{skey}.target")
                mode = 0o444 if entry.get("mode") is None else _mode(ctx, entry["mode"], f"{skey}.mode")
                for owner in ("uid", "gid"):
                    if entry.get(owner) is not None and str(entry[owner]) != "0":
                        ctx.warn(f"{skey}.{owner}", "not supported: the file is owned by root; use `user` "
                                                    "or a readable mode")
            else:
                source, target, mode = as_str(ctx, entry, skey), "", 0o444
            if source not in defined:
                ctx.fail(skey, f"service {key.split('.', 1)[1]!r} refers to undefined {section[:-1]} {source!r}")
            ref = defined[source]
            if section == "secrets":
                path = target if target.startswith("/") else posixpath.join(SECRETS_DIR, target or source)
            else:
                path = target if target.startswith("/") else "/" + (target or source)
            filename = posixpath.basename(path) or source
            vol = f"{section[:-1]}-{i}"
            volumes.append(Volume(vol, ref.kind, ref=ref.name, items=[(ref.key, filename, mode)]))
            c.mounts.append(Mount(vol, path, read_only=True, sub_path=filename))


def _mode(ctx: Ctx, x: Any, key: str) -> int:
    if isinstance(x, str) and re.fullmatch(r"0?[0-7]{1,4}", x):
        return int(x, 8)
    return as_int(ctx, x, key, 0, 0o777)


# --- healthcheck and security -----------------------------------------------------------------------------


def _healthcheck(ctx: Ctx, h: dict[str, Any], key: str) -> list[Check]:
    check_keys(ctx, h, key, {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"})
    if h.get("disable") is not None and as_bool(ctx, h["disable"], f"{key}.disable"):
        return []
    test = h.get("test")
    if test is None or test == []:
        ctx.warn(key, "no test: the image's HEALTHCHECK would apply, which Kubernetes does not run")
        return []
    if isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    else:
        words = [as_str(ctx, t, f"{key}.test") for t in as_list(ctx, test, f"{key}.test")]
        if words[0] == "NONE":
            return []
        if words[0] == "CMD" and len(words) > 1:
            argv = words[1:]
        elif words[0] == "CMD-SHELL" and len(words) > 1:
            argv = ["/bin/sh", "-c", " ".join(words[1:])]
        else:
            ctx.fail(f"{key}.test", 'must start with "CMD", "CMD-SHELL" or "NONE"')
    interval = duration(ctx, h.get("interval", "30s"), f"{key}.interval")
    timeout = duration(ctx, h.get("timeout", "30s"), f"{key}.timeout")
    retries = as_int(ctx, h.get("retries", 3), f"{key}.retries", 0)
    start = duration(ctx, h.get("start_period", "0s"), f"{key}.start_period")
    if h.get("start_interval") is not None:
        ctx.warn(f"{key}.start_interval", "not supported: the start period is probed at the regular interval")
    return [Check(kind="exec", command=argv, period_seconds=max(1, interval), timeout_seconds=max(1, timeout),
                  failure_threshold=retries or 3, start_period_seconds=start)]


def _security(ctx: Ctx, svc: dict[str, Any], key: str, c: Container) -> None:
    if svc.get("user") is not None:
        user = as_str(ctx, svc["user"], f"{key}.user")
        uid, _, gid = user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            c.run_as_user = as_int(ctx, uid, f"{key}.user")
            c.run_as_group = as_int(ctx, gid, f"{key}.user") if gid else None
        else:
            ctx.warn(f"{key}.user", f"user {user!r} is a name: it cannot be resolved without the image; "
                                    "give a numeric uid[:gid] (the image's user applies)")
    if svc.get("read_only") is not None:
        c.read_only_root_filesystem = as_bool(ctx, svc["read_only"], f"{key}.read_only")
    for field_name, target in (("cap_add", c.cap_add), ("cap_drop", c.cap_drop)):
        for cap in as_strings(ctx, svc.get(field_name), f"{key}.{field_name}") if svc.get(field_name) is not None else []:
            name = cap.upper().removeprefix("CAP_")
            if name not in target:
                target.append(name)
    opts = as_strings(ctx, svc.get("security_opt"), f"{key}.security_opt") if svc.get("security_opt") is not None else []
    for opt in opts:
        name, _, value = opt.replace("=", ":", 1).partition(":")
        if name == "no-new-privileges":
            c.no_new_privileges = value.lower() in ("", "true", "1")
        else:
            ctx.warn(f"{key}.security_opt", f"{opt!r}: not supported (only no-new-privileges is); ignored")


# --- networks -------------------------------------------------------------------------------------------------


def _networks(ctx: Ctx, svc: dict[str, Any], key: str, stack: Stack, w: Workload) -> None:
    nets = as_map(ctx, svc.get("networks"), f"{key}.networks") or {"default": None}
    for net, cfg in nets.items():
        nkey = f"{key}.networks.{net}"
        info = stack.networks.get(net)
        if info is None:
            ctx.fail(nkey, f"undefined network {net!r}")
        if info.host:
            w.host_network = True
            continue
        w.pod_labels[info.label] = "true"
        c = as_map(ctx, cfg, nkey)
        check_keys(ctx, c, nkey, {"aliases", "ipv4_address", "ipv6_address", "priority", "link_local_ips",
                                  "mac_address", "driver_opts", "gw_priority", "interface_name"})
        for k in c:
            if not k.startswith("x-"):
                ctx.warn(f"{nkey}.{k}", "not supported: pods get one cluster address and the service name; ignored")
    if w.host_network and len(nets) > 1:
        ctx.warn(f"{key}.networks", "a service on the host network cannot join other networks; they are ignored")


# --- deploy -----------------------------------------------------------------------------------------------------


def _deploy(ctx: Ctx, d: dict[str, Any], key: str, w: Workload, c: Container
            ) -> tuple[dict[str, str], dict[str, str], bool]:
    """Fill the workload from `deploy`; returns (controller labels, controller annotations, tolerate CP)."""
    check_keys(ctx, d, key, {"mode", "replicas", "labels", "placement", "resources", "restart_policy",
                             "update_config", "rollback_config", "endpoint_mode"})
    mode = as_str(ctx, d.get("mode", "replicated"), f"{key}.mode")
    if mode not in ("replicated", "global", "replicated-job", "global-job"):
        ctx.fail(f"{key}.mode", f"invalid mode {mode!r}: replicated, global, replicated-job or global-job")
    if d.get("replicas") is not None:
        replicas = as_int(ctx, d["replicas"], f"{key}.replicas")
        if mode.startswith("global"):
            ctx.warn(f"{key}.replicas", f"replicas can only be used with replicated mode; ignored for {mode}")
        else:
            w.replicas = replicas
    if mode == "global":
        w.mode = "global"
    elif mode.endswith("-job"):
        w.mode = "batch"
        w.restart = Restart("OnFailure")
        if mode == "global-job":
            w.replicas = 1
            ctx.warn(f"{key}.mode", "global-job runs once on every node in Swarm; here it runs as one Job pod")
    endpoint = as_str(ctx, d.get("endpoint_mode", "vip"), f"{key}.endpoint_mode")
    if endpoint not in ("vip", "dnsrr"):
        ctx.fail(f"{key}.endpoint_mode", f"must be vip or dnsrr, not {endpoint!r}")
    w.endpoint_mode = "dnsrr" if endpoint == "dnsrr" else "vip"
    labels, annotations = _split_labels(ctx, d.get("labels"), f"{key}.labels")
    tolerate = _placement(ctx, as_map(ctx, d.get("placement"), f"{key}.placement"), f"{key}.placement", w)
    _resources(ctx, as_map(ctx, d.get("resources"), f"{key}.resources"), f"{key}.resources", c)
    _restart(ctx, as_map(ctx, d.get("restart_policy"), f"{key}.restart_policy"), f"{key}.restart_policy", w)
    w.update = _update(ctx, as_map(ctx, d.get("update_config"), f"{key}.update_config"), f"{key}.update_config")
    if d.get("rollback_config") is not None:
        _update(ctx, as_map(ctx, d["rollback_config"], f"{key}.rollback_config"), f"{key}.rollback_config")
        ctx.warn(f"{key}.rollback_config", "not supported: `kubectl rollout undo` rolls back with the update "
                                           "strategy; ignored")
    return labels, annotations, tolerate


def _placement(ctx: Ctx, p: dict[str, Any], key: str, w: Workload) -> bool:
    check_keys(ctx, p, key, {"constraints", "preferences", "max_replicas_per_node"})
    rules: list[NodeRule] = []
    tolerate = False
    ckey = f"{key}.constraints"
    for text in as_strings(ctx, p.get("constraints"), ckey) if p.get("constraints") is not None else []:
        try:
            attr, op, value = val.parse_constraint(text)
        except ValueError as e:
            ctx.fail(ckey, str(e))
        inn: Literal["In", "NotIn"] = "In" if op == "==" else "NotIn"
        if attr == "node.role":
            if value.lower() not in ("manager", "worker"):
                ctx.fail(ckey, f"invalid role {value!r}: manager or worker")
            on_manager = (value.lower() == "manager") == (op == "==")
            rules.append(NodeRule(CONTROL_PLANE, "Exists" if on_manager else "DoesNotExist"))
            tolerate = tolerate or on_manager
        elif attr == "node.hostname":
            rules.append(_rule(ctx, ckey, "kubernetes.io/hostname", inn, value))
        elif attr == "node.platform.os":
            rules.append(_rule(ctx, ckey, "kubernetes.io/os", inn, value.lower()))
        elif attr == "node.platform.arch":
            rules.append(_rule(ctx, ckey, "kubernetes.io/arch", inn, val.ARCH_ALIASES.get(value, value)))
        elif attr.startswith("node.labels.") and len(attr) > len("node.labels."):
            rules.append(_rule(ctx, ckey, attr[len("node.labels."):], inn, value))
        elif attr.startswith("engine.labels."):
            ctx.warn(ckey, f"{text!r}: engine labels do not exist on Kubernetes nodes; use node labels. Ignored")
        elif attr in ("node.id", "node.ip"):
            ctx.warn(ckey, f"{text!r}: Swarm node IDs/addresses do not carry over; use node.hostname. Ignored")
        else:
            ctx.fail(ckey, f"invalid constraint {text!r}: unknown attribute {attr!r}")
    w.placement = Placement(required=[r for r in rules if r.key])
    pkey = f"{key}.preferences"
    for pref in as_list(ctx, p.get("preferences"), pkey):
        m = as_map(ctx, pref, pkey)
        for k, value in m.items():
            spread = as_str(ctx, value, f"{pkey}.{k}")
            if k == "spread" and spread.startswith("node.labels.") and not v.qualified_name(spread[12:]):
                if spread[12:] not in w.placement.spread_by:
                    w.placement.spread_by.append(spread[12:])
            else:
                ctx.warn(pkey, f"{k}={spread}: only spread over node.labels.<label> is supported; ignored")
    if p.get("max_replicas_per_node") is not None:
        n = as_int(ctx, p["max_replicas_per_node"], f"{key}.max_replicas_per_node")
        if n > 0:
            w.placement.max_per_node = n
    return tolerate


def _rule(ctx: Ctx, key: str, label: str, op: Literal["In", "NotIn"], value: str) -> NodeRule:
    if v.qualified_name(label) or v.label_value(value):
        ctx.warn(key, f"{label}={value!r} cannot be a Kubernetes node label; constraint ignored")
        return NodeRule("", op)
    return NodeRule(label, op, [value])


def _resources(ctx: Ctx, r: dict[str, Any], key: str, c: Container) -> None:
    check_keys(ctx, r, key, {"limits", "reservations"})
    for section in ("limits", "reservations"):
        s = as_map(ctx, r.get(section), f"{key}.{section}")
        check_keys(ctx, s, f"{key}.{section}", {"cpus", "memory", "pids", "generic_resources", "devices"})
        cpu = mem = ""
        if s.get("cpus") is not None:
            try:
                cpu = val.parse_cpus(s["cpus"])
            except ValueError as e:
                ctx.fail(f"{key}.{section}.cpus", str(e))
        if s.get("memory") is not None:
            try:
                n = val.parse_bytes(s["memory"])
            except ValueError as e:
                ctx.fail(f"{key}.{section}.memory", str(e))
            mem = val.bytes_quantity(n) if n else ""
        for k in ("pids", "generic_resources", "devices"):
            if s.get(k) is not None:
                ctx.warn(f"{key}.{section}.{k}", "not supported; ignored")
        if section == "limits":
            c.cpu_limit, c.memory_limit = cpu, mem
        else:
            c.cpu_request, c.memory_request = cpu, mem
    for kind, req, lim in (("cpus", c.cpu_request, c.cpu_limit), ("memory", c.memory_request, c.memory_limit)):
        if req and lim and _quantity(req) > _quantity(lim):
            ctx.warn(f"{key}.reservations.{kind}", f"reservation {req} exceeds the limit {lim}; lowered to the limit")
            if kind == "cpus":
                c.cpu_request = lim
            else:
                c.memory_request = lim


def _quantity(q: str) -> float:
    if q.endswith("m"):
        return int(q[:-1]) / 1000
    for suffix, shift in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if q.endswith(suffix):
            return float(int(q[: -len(suffix)]) << shift)
    return float(q)


def _restart(ctx: Ctx, r: dict[str, Any], key: str, w: Workload) -> None:
    check_keys(ctx, r, key, {"condition", "delay", "max_attempts", "window"})
    cond = as_str(ctx, r.get("condition", "any"), f"{key}.condition")
    if cond not in ("none", "on-failure", "any"):
        ctx.fail(f"{key}.condition", f"must be none, on-failure or any, not {cond!r}")
    attempts = None if r.get("max_attempts") is None else as_int(ctx, r["max_attempts"], f"{key}.max_attempts")
    delay = None if r.get("delay") is None else duration(ctx, r["delay"], f"{key}.delay")
    if r.get("window") is not None:
        duration(ctx, r["window"], f"{key}.window")
        ctx.warn(f"{key}.window", "not supported: Kubernetes has no restart evaluation window; ignored")
    if w.mode == "batch":
        w.restart = Restart("Never" if cond == "none" else "OnFailure", attempts, delay)
        if delay is not None:
            ctx.warn(f"{key}.delay", "not supported: failed pods are retried with exponential back-off; ignored")
        if cond == "any":
            ctx.warn(f"{key}.condition", "a Job does not rerun a task that succeeded; treated as on-failure")
        return
    w.restart = Restart("Always", attempts, delay)
    if cond != "any":
        ctx.warn(f"{key}.condition", f"{cond}: a Deployment/DaemonSet restarts containers whatever their exit "
                                     "status (restartPolicy Always)")
    if attempts is not None:
        ctx.warn(f"{key}.max_attempts", "not supported for services: containers are restarted without limit")
    if delay is not None:
        ctx.warn(f"{key}.delay", "not supported: containers are restarted with exponential back-off; ignored")


def _update(ctx: Ctx, u: dict[str, Any], key: str) -> Update:
    check_keys(ctx, u, key, {"parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"})
    out = Update()
    if u.get("parallelism") is not None:
        out.parallelism = as_int(ctx, u["parallelism"], f"{key}.parallelism")
    if u.get("delay") is not None and duration(ctx, u["delay"], f"{key}.delay"):
        ctx.warn(f"{key}.delay", "not supported: Kubernetes does not pause between update batches; ignored")
    action = as_str(ctx, u.get("failure_action", "pause"), f"{key}.failure_action")
    if action not in ("pause", "continue", "rollback"):
        ctx.fail(f"{key}.failure_action", f"must be pause, continue or rollback, not {action!r}")
    out.failure_action = "rollback" if action == "rollback" else "continue" if action == "continue" else "pause"
    if action != "pause":
        ctx.warn(f"{key}.failure_action", f"{action}: a failing rollout stops progressing (Progressing=False) "
                                          "and waits; `kubectl rollout undo` rolls it back")
    if u.get("monitor") is not None:
        out.monitor_seconds = duration(ctx, u["monitor"], f"{key}.monitor")
    if u.get("max_failure_ratio") is not None:
        ratio = u["max_failure_ratio"]
        if isinstance(ratio, str):
            try:
                ratio = float(ratio)
            except ValueError:
                ctx.fail(f"{key}.max_failure_ratio", f"must be a number, not {ratio!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            ctx.fail(f"{key}.max_failure_ratio", "must be a number between 0 and 1")
        out.max_failure_ratio = float(ratio)
        if ratio:
            ctx.warn(f"{key}.max_failure_ratio", "not supported: any failing new pod stops the rollout; ignored")
    order = as_str(ctx, u.get("order", "stop-first"), f"{key}.order")
    if order not in ("stop-first", "start-first"):
        ctx.fail(f"{key}.order", f"must be stop-first or start-first, not {order!r}")
    out.order = "start-first" if order == "start-first" else "stop-first"
    return out


# --- after rendering --------------------------------------------------------------------------------------------


def _decorate(controller: Obj, labels: dict[str, str], annotations: dict[str, str], pod_annotations: dict[str, str],
              named_volumes: set[str], tolerate_control_plane: bool) -> None:
    """What the shared renderer has no field for: deploy.labels on the controller, free-text labels as
    annotations, node directories created on first use, and Swarm's "managers run tasks too"."""
    meta = controller["metadata"]
    for k, value in labels.items():
        meta["labels"].setdefault(k, value)
    if annotations:
        meta.setdefault("annotations", {}).update(annotations)
    tpl = controller["spec"]["template"]
    if pod_annotations:
        tpl["metadata"].setdefault("annotations", {}).update(pod_annotations)
    for vol in tpl["spec"].get("volumes", []):
        if vol["name"] in named_volumes:
            vol["hostPath"]["type"] = "DirectoryOrCreate"
    if tolerate_control_plane:
        tpl["spec"]["tolerations"] = [{"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"}]
