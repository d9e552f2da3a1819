"""Docker Compose files as Swarm reads them (`docker stack deploy`) → Kubernetes objects + warnings.

`translate_compose` is pure: the caller supplies every file's text (the Compose files, the `.env` text and
any `env_file` / config / secret `file:` sources in `sources`), and gets back a `Translation` or a
`TranslateError`; never a partial result.

How a stack maps (documented choices; each difference a user could notice is also a warning):

* **A stack is a namespace** named after the stack and created first, so service names resolve inside
  it the way Swarm's per-stack DNS does, and `docker stack rm` is deleting the namespace. Every object
  carries `skiff.io/stack` and Swarm's own `com.docker.stack.namespace` label.
* **Services** become Deployments (replicated), DaemonSets (global) or Jobs (replicated-job/global-job)
  through the shared renderer, with a ClusterIP (vip) or headless (dnsrr) Service named like the service.
* **Networks isolate.** Pods carry one label per network they join, and each network becomes a
  NetworkPolicy admitting traffic only from pods on the same network (for `external: true` networks, from
  such pods in any namespace, so stacks sharing an external network reach each other as in Swarm).
  Published ports get a policy admitting anyone on those ports, as Swarm's ingress network does.
* **Named volumes** are node directories `/var/lib/skiff/volumes/<docker volume name>` (hostPath,
  created on first use): a Swarm `local` volume lives on one node and outlives its tasks, and so does
  this; a PersistentVolumeClaim would instead follow the pod across nodes or pin it to one, and an
  emptyDir would be lost at every update. What differs — data does not follow a task to another node,
  and Docker's copy of the image's files into a new volume does not happen — is a warning per volume.
* **Configs and secrets** become ConfigMaps and Secrets (key = the config/secret name) mounted as single
  read-only files at Swarm's paths: configs at `/<name>`, secrets at `/run/secrets/<name>`, or `target`.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping
from typing import Any, Literal

from skiff.api import validation as v
from skiff.translate.compose.loader import Ctx, load
from skiff.translate.compose.service import (
    FileObject,
    NetworkInfo,
    ServiceOut,
    Stack,
    as_bool,
    as_map,
    as_str,
    check_keys,
    translate_service,
)
from skiff.translate.model import LABEL_STACK, Obj, Translation
from skiff.translate.render import dns_label, selector_labels

__all__ = ["SWARM_STACK_LABEL", "VOLUME_ROOT", "translate_compose"]

SWARM_STACK_LABEL = "com.docker.stack.namespace"
VOLUME_ROOT = "/var/lib/skiff/volumes"
NETWORK_LABEL = "network.skiff.io/"
EXTERNAL_NETWORK_LABEL = "external-network.skiff.io/"
_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets"}


def translate_compose(
    files: list[tuple[str, str]],
    stack: str,
    env: Mapping[str, str],
    dotenv: str | None,
    sources: Mapping[str, str] | None = None,
) -> Translation:
    """Translate Compose `files` ((path, text), merged in order like `docker stack deploy -c a -c b`).

    `env` is the deploying user's environment, `dotenv` the text of `.env` (or None), and `sources` the
    text of every file the Compose files name (`env_file`, config/secret `file:`) by path as written or
    relative to the Compose file. Raises only `TranslateError`.
    """
    loaded = load(files, env, dotenv)
    ctx, doc = loaded.ctx, loaded.doc
    for k, value in doc.items():
        if k.startswith("x-"):
            continue
        if k == "version":
            text = as_str(ctx, value, "version")
            if not text.startswith("3"):
                ctx.warn("version", f"docker stack deploy reads only version 3.x files; {text!r} is read as "
                                    "the Compose specification")
        elif k == "name":
            ctx.warn("name", f"the stack name comes from the command line ({stack!r}); ignored")
        elif k not in _TOP_LEVEL:
            ctx.warn(k, "unknown key")
    ns = _namespace(ctx, stack)
    labels = {LABEL_STACK: ns, SWARM_STACK_LABEL: ns}
    services: dict[str, dict[str, Any]] = doc.get("services") or {}
    networks = _networks(ctx, doc.get("networks") or {}, services)
    st = Stack(
        namespace=ns,
        labels=labels,
        networks=networks,
        volume_paths=_volumes(ctx, doc.get("volumes") or {}, stack),
        configs={},
        secrets={},
        lookup=loaded.lookup,
        sources=dict(sources or {}),
    )
    file_objects: list[Obj] = []
    for section in ("configs", "secrets"):
        for key, spec in (doc.get(section) or {}).items():
            ref, obj = _file_object(ctx, st, section, key, spec)
            (st.configs if section == "configs" else st.secrets)[key] = ref
            if obj is not None:
                file_objects.append(obj)
    outs: list[ServiceOut] = [translate_service(ctx, name, svc, st) for name, svc in services.items()]

    objects: list[Obj] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}}]
    objects.extend(file_objects)
    objects.extend(_network_policies(st, outs))
    for out in outs:
        objects.extend(out.objects)
    return Translation(objects, list(ctx.warnings))


def _namespace(ctx: Ctx, stack: str) -> str:
    if not stack:
        ctx.fail("(stack)", "the stack name is empty")
    ns = dns_label(stack.lower())
    if ns != stack:
        ctx.warn("(stack)", f"stack name {stack!r} is not a valid namespace name; the namespace is {ns!r}")
    return ns


# --- networks ---------------------------------------------------------------------------------------------


def _networks(ctx: Ctx, defined: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, NetworkInfo]:
    out: dict[str, NetworkInfo] = {}
    for name, spec in defined.items():
        key = f"networks.{name}"
        check_keys(ctx, spec, key, {"driver", "driver_opts", "attachable", "external", "name", "labels", "ipam",
                                    "internal", "enable_ipv6", "enable_ipv4", "scope"})
        external = spec.get("external")
        real = name
        if isinstance(external, dict):  # the legacy `external: {name: x}` form
            real = as_str(ctx, external.get("name", name), f"{key}.external.name")
            external = True
        is_external = external is not None and as_bool(ctx, external, f"{key}.external")
        if spec.get("name") is not None:
            real = as_str(ctx, spec["name"], f"{key}.name")
        driver = spec.get("driver")
        if (driver is not None and as_str(ctx, driver, f"{key}.driver") != "overlay"
                and not (is_external and real == "host")):
            ctx.warn(f"{key}.driver", f"driver {driver!r}: every stack network is the cluster's pod network "
                                          "isolated by NetworkPolicies; ignored")
        if spec.get("attachable") is not None and as_bool(ctx, spec["attachable"], f"{key}.attachable"):
            ctx.warn(f"{key}.attachable", "not supported: only pods of stacks joining the network can use it")
        for k in ("driver_opts", "ipam", "enable_ipv6", "enable_ipv4", "labels", "scope"):
            if spec.get(k) is not None:
                ctx.warn(f"{key}.{k}", "not supported: pod addresses come from the cluster network; ignored")
        if spec.get("internal") is not None and as_bool(ctx, spec["internal"], f"{key}.internal"):
            ctx.warn(f"{key}.internal", "not supported: traffic leaving the pods is not restricted")
        if is_external:
            out[name] = NetworkInfo(_label(EXTERNAL_NETWORK_LABEL, real), True, host=real == "host")
        else:
            out[name] = NetworkInfo(_label(NETWORK_LABEL, name), False)
    for svc_name, svc in services.items():
        nets = svc.get("networks") if isinstance(svc, dict) else None
        for net in (nets if isinstance(nets, dict) and nets else {"default": None}):
            if net in out:
                continue
            if net != "default":
                ctx.warn(f"services.{svc_name}.networks.{net}",
                         "undefined network: docker stack deploy rejects the file; created as a network of the stack")
            out[net] = NetworkInfo(_label(NETWORK_LABEL, net), False)
    return out


def _label(prefix: str, name: str) -> str:
    return prefix + (name if not v.qualified_name(prefix + name) else dns_label(name))


def _network_policies(st: Stack, outs: list[ServiceOut]) -> list[Obj]:
    used: dict[str, NetworkInfo] = {}
    for out in outs:
        for key in out.workload.pod_labels:
            for net, info in st.networks.items():
                if info.label == key and not info.host:
                    used.setdefault(net, info)
    policies: list[Obj] = []
    for net, info in sorted(used.items()):
        peer: Obj = {"podSelector": {"matchLabels": {info.label: "true"}}}
        if info.external:
            peer = {"namespaceSelector": {}, **peer}
        policies.append(_policy(st, dns_label(f"network-{net}"), {info.label: "true"}, [{"from": [peer]}]))
    for out in outs:
        if out.open_ports and not out.workload.host_network:
            ports = [{"protocol": proto, "port": port} for port, proto in out.open_ports]
            policies.append(_policy(st, dns_label(f"{out.workload.name}-published"), selector_labels(out.workload),
                                    [{"ports": ports}]))
    return policies


def _policy(st: Stack, name: str, selector: dict[str, str], ingress: list[Obj]) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": st.namespace, "labels": dict(st.labels)},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


# --- volumes ----------------------------------------------------------------------------------------------


def _volumes(ctx: Ctx, defined: dict[str, Any], stack: str) -> dict[str, str]:
    paths: dict[str, str] = {}
    for name, spec in defined.items():
        key = f"volumes.{name}"
        check_keys(ctx, spec, key, {"driver", "driver_opts", "external", "labels", "name"})
        external = spec.get("external")
        real = None
        if isinstance(external, dict):
            real = as_str(ctx, external.get("name", name), f"{key}.external.name")
            external = True
        is_external = external is not None and as_bool(ctx, external, f"{key}.external")
        if spec.get("name") is not None:
            real = as_str(ctx, spec["name"], f"{key}.name")
        docker_name = real if real is not None else (name if is_external else f"{stack}_{name}")
        if not _DOCKER_NAME.match(docker_name) or docker_name in (".", ".."):
            ctx.fail(key, f"invalid volume name {docker_name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        paths[name] = f"{VOLUME_ROOT}/{docker_name}"
        driver = spec.get("driver")
        if driver is not None and as_str(ctx, driver, f"{key}.driver") != "local":
            ctx.warn(f"{key}.driver", f"volume driver {driver!r} is not supported; a node directory is used")
        for k in ("driver_opts", "labels"):
            if spec.get(k) is not None:
                ctx.warn(f"{key}.{k}", "not supported; ignored")
        if is_external:
            ctx.warn(key, f"external volume: mounted as the node directory {paths[name]}; an existing Docker "
                          "volume's data is not there")
        else:
            ctx.warn(key, f"a Swarm local volume lives on one node: mounted as the node directory {paths[name]}, "
                          "so data survives task restarts and updates on that node but does not follow a task "
                          "to another node, and the image's files are not copied into it first")
    return paths


# --- configs and secrets ------------------------------------------------------------------------------------


def _file_object(ctx: Ctx, st: Stack, section: str, name: str, spec: dict[str, Any]) -> tuple[FileObject, Obj | None]:
    key = f"{section}.{name}"
    check_keys(ctx, spec, key, {"file", "external", "name", "content", "environment", "template_driver", "labels",
                                "driver", "driver_opts"})
    kind: Literal["configMap", "secret"] = "configMap" if section == "configs" else "secret"
    k8s_kind = "ConfigMap" if kind == "configMap" else "Secret"
    data_key = name if _DATA_KEY.match(name) else dns_label(name)
    external = spec.get("external")
    real = name
    if isinstance(external, dict):
        real = as_str(ctx, external.get("name", name), f"{key}.external.name")
        external = True
    if spec.get("name") is not None:
        real = as_str(ctx, spec["name"], f"{key}.name")
    obj_name = dns_label(real)
    for k in ("template_driver", "driver", "driver_opts"):
        if spec.get(k) is not None:
            ctx.warn(f"{key}.{k}", "not supported: the content is used as it is")
    if external is not None and as_bool(ctx, external, f"{key}.external"):
        ctx.warn(key, f"external: must exist as {k8s_kind} {obj_name!r} with key {data_key!r} in namespace "
                      f"{st.namespace!r} (Swarm {section} are cluster-wide, Kubernetes ones live in a namespace)")
        return FileObject(kind, obj_name, data_key), None
    if spec.get("file") is not None:
        path = as_str(ctx, spec["file"], f"{key}.file")
        text = _lookup_source(ctx, st, path, f"{key}.file")
    elif spec.get("environment") is not None:
        var = as_str(ctx, spec["environment"], f"{key}.environment")
        found = st.lookup(var)
        if found is None:
            ctx.fail(f"{key}.environment", f"environment variable {var} is not set")
        text = found
    elif spec.get("content") is not None:
        text = as_str(ctx, spec["content"], f"{key}.content")
    else:
        ctx.fail(key, "must set file, external, environment or content")
    meta: Obj = {"name": obj_name, "namespace": st.namespace, "labels": dict(st.labels)}
    for k, value in as_map(ctx, spec.get("labels"), f"{key}.labels").items():
        text_value = "" if value is None else as_str(ctx, value, f"{key}.labels.{k}")
        if v.qualified_name(k):
            ctx.warn(f"{key}.labels.{k}", "not a valid Kubernetes label or annotation key; dropped")
        elif v.label_value(text_value):
            meta.setdefault("annotations", {})[k] = text_value
        else:
            meta["labels"].setdefault(k, text_value)
    if kind == "configMap":
        obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {data_key: text}}
    else:
        encoded = base64.b64encode(text.encode("utf-8", "surrogateescape")).decode()
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": {data_key: encoded}}
    return FileObject(kind, obj_name, data_key), obj


def _lookup_source(ctx: Ctx, st: Stack, path: str, key: str) -> str:
    if path in st.sources:
        return st.sources[path]
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(ctx.file_of(key)), path))
    if joined in st.sources:
        return st.sources[joined]
    ctx.fail(key, f"file {path} not supplied (translators read no files: pass its text in `sources`)")
