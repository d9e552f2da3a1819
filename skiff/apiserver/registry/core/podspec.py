"""Pod spec defaulting and validation, shared by Pods and every kind with a pod template.

Interface (used by apps/batch strategies):
- `default_pod_spec(spec)`: upstream `SetDefaults_PodSpec` + container/probe/volume defaults, in place.
- `validate_pod_spec(spec, path)`: FieldErrors at `path` (e.g. "spec.template.spec").
- `validate_pod_template(template, path)`: metadata labels + spec.

Mirrors `k8s.io/kubernetes/pkg/apis/core/v1/defaults.go` and `pkg/apis/core/validation/validation.go`
(ValidatePodSpec and the container/volume/probe/toleration/affinity helpers) for what users write; the
messages are upstream's so `kubectl` prints what users know. Pod-only defaults (requests from limits,
enableServiceLinks, priority) live in `pods.py`, as upstream keeps them out of templates.
"""

from __future__ import annotations

import re
from typing import Any

from skiff.api import validation as v
from skiff.api.quantity import parse_quantity
from skiff.apiserver.registry.core.common import (
    key_path,
    not_found,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_ip,
    validate_label_selector,
    validate_quantity,
)
from skiff.apiserver.registry.core.configmaps import config_key_problems

# --- defaults ------------------------------------------------------------------------------------------

# Order of upstream validateVolumeSource: the first source found wins, later ones are "Forbidden".
VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "storageos",
    "projected",
    "configMap",
    "csi",
    "ephemeral",
    "image",
)
DEFAULT_MODE = 0o644  # 420: upstream SecretVolumeSourceDefaultMode / ConfigMap / DownwardAPI / Projected


def image_tag(image: str) -> str:
    """The tag of an image reference ("" when only a digest is given, "latest" when neither)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _default_http_get(h: Any) -> None:
    if isinstance(h, dict):
        h.setdefault("path", "/")
        h.setdefault("scheme", "HTTP")


def _default_probe(p: Any) -> None:
    """`SetDefaults_Probe` + `SetDefaults_HTTPGetAction`."""
    if not isinstance(p, dict):
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    _default_http_get(p.get("httpGet"))


def default_container(c: dict[str, Any], host_network: bool = False) -> None:
    """`SetDefaults_Container`: pull policy from the tag, termination message path/policy, ports, probes."""
    if not c.get("imagePullPolicy"):
        image = c.get("image")
        if isinstance(image, str) and image:
            c["imagePullPolicy"] = "Always" if image_tag(image) == "latest" else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if host_network and not port.get("hostPort") and port.get("containerPort"):
                port["hostPort"] = port["containerPort"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    for hook in ("postStart", "preStop"):
        _default_http_get(((c.get("lifecycle") or {}).get(hook) or {}).get("httpGet"))
    for env in c.get("env") or []:
        ref = ((env or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")


def default_volume(vol: dict[str, Any]) -> None:
    """`SetDefaults_Volume` (emptyDir when no source) and the per-source defaultMode defaults."""
    if not any(k in vol for k in VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for src in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(vol.get(src), dict):
            vol[src].setdefault("defaultMode", DEFAULT_MODE)
    if isinstance(vol.get("hostPath"), dict):
        vol["hostPath"].setdefault("type", "")
    for source in (vol.get("projected") or {}).get("sources") or []:
        token = (source or {}).get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        ref_items = ((source or {}).get("downwardAPI") or {}).get("items") or []
        for item in ref_items:
            if isinstance((item or {}).get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")
    for item in (vol.get("downwardAPI") or {}).get("items") or []:
        if isinstance((item or {}).get("fieldRef"), dict):
            item["fieldRef"].setdefault("apiVersion", "v1")
    eph = ((vol.get("ephemeral") or {}).get("volumeClaimTemplate") or {}).get("spec")
    if isinstance(eph, dict):
        eph.setdefault("volumeMode", "Filesystem")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """`SetDefaults_PodSpec` and the nested container/volume defaults; idempotent, in place."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    # v1 conversion keeps the deprecated `serviceAccount` alias in step with serviceAccountName.
    if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    host_network = bool(spec.get("hostNetwork"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                default_container(c, host_network)
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict):
            default_volume(vol)


# --- validation ----------------------------------------------------------------------------------------

PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
ENV_RESOURCES = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
_MAX_INT32 = 2**31 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_port_num_or_name(path: str, port: Any) -> list[v.FieldError]:
    """`ValidatePortNumOrName` for IntOrString ports (targetPort, probe ports)."""
    if _is_int(port):
        return v.check(path, port, v.port_number(port))
    if isinstance(port, str):
        return v.check(path, port, v.port_name(port)) if port else [v.required(path)]
    return (
        [v.required(path)] if port is None else [v.type_invalid(path, port, "must be an integer or a string")]
    )


def _validate_non_negative_int(path: str, value: Any) -> list[v.FieldError]:
    return v.non_negative(path, value)


def _validate_ports(path: str, ports: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        p = f"{path}[{i}]"
        if not isinstance(port, dict):
            errs.append(v.type_invalid(p, port, "must be an object"))
            continue
        name = port.get("name")
        if name:
            msgs = v.port_name(name)
            if msgs:
                errs += v.check(f"{p}.name", name, msgs)
            elif name in names:
                errs.append(v.duplicate(f"{p}.name", name))
            else:
                names.add(name)
        cp = port.get("containerPort")
        if not cp:
            errs.append(v.required(f"{p}.containerPort"))
        else:
            errs += v.check(f"{p}.containerPort", cp, v.port_number(cp))
        hp = port.get("hostPort")
        if hp:
            errs += v.check(f"{p}.hostPort", hp, v.port_number(hp))
        proto = port.get("protocol")
        if not proto:
            errs.append(v.required(f"{p}.protocol"))
        elif proto not in PORT_PROTOCOLS:
            errs.append(v.not_supported(f"{p}.protocol", proto, PORT_PROTOCOLS))
    return errs


def _validate_key_selector(path: str, ref: dict[str, Any]) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    name, key = ref.get("name"), ref.get("key")
    if not name:
        errs.append(v.required(f"{path}.name"))
    else:
        errs += validate_dns1123_subdomain(f"{path}.name", name)
    if not key:
        errs.append(v.required(f"{path}.key"))
    else:
        errs += v.check(f"{path}.key", key, config_key_problems(key))
    return errs


def _validate_field_ref(path: str, ref: dict[str, Any]) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    if not ref.get("apiVersion"):
        errs.append(v.required(f"{path}.apiVersion"))
    fp = ref.get("fieldPath")
    if not fp:
        errs.append(v.required(f"{path}.fieldPath"))
    elif fp not in ENV_FIELD_PATHS and not re.match(r"^metadata\.(labels|annotations)\['[^']+'\]$", fp):
        errs.append(v.not_supported(f"{path}.fieldPath", fp, ENV_FIELD_PATHS))
    return errs


def _validate_resource_field_ref(path: str, ref: dict[str, Any], volume: bool) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    if volume and not ref.get("containerName"):
        errs.append(v.required(f"{path}.containerName"))
    res = ref.get("resource")
    if not res:
        errs.append(v.required(f"{path}.resource"))
    elif res not in ENV_RESOURCES and not re.match(r"^(limits|requests)\.hugepages-", res):
        errs.append(v.not_supported(f"{path}.resource", res, ENV_RESOURCES))
    return errs


def _validate_env(path: str, env: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, ev in enumerate(env or []):
        p = f"{path}[{i}]"
        if not isinstance(ev, dict):
            errs.append(v.type_invalid(p, ev, "must be an object"))
            continue
        name = ev.get("name")
        if not name:
            errs.append(v.required(f"{p}.name"))
        else:
            errs += v.check(f"{p}.name", name, v.env_var_name(name))
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vp = f"{p}.valueFrom"
        sources = 0
        if isinstance(vf.get("fieldRef"), dict):
            sources += 1
            errs += _validate_field_ref(f"{vp}.fieldRef", vf["fieldRef"])
        if isinstance(vf.get("resourceFieldRef"), dict):
            sources += 1
            errs += _validate_resource_field_ref(f"{vp}.resourceFieldRef", vf["resourceFieldRef"], False)
        if isinstance(vf.get("configMapKeyRef"), dict):
            sources += 1
            errs += _validate_key_selector(f"{vp}.configMapKeyRef", vf["configMapKeyRef"])
        if isinstance(vf.get("secretKeyRef"), dict):
            sources += 1
            errs += _validate_key_selector(f"{vp}.secretKeyRef", vf["secretKeyRef"])
        if sources == 0:
            errs.append(
                v.invalid(
                    vp,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif ev.get("value"):
            errs.append(v.invalid(vp, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errs.append(v.invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def _validate_env_from(path: str, env_from: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, ef in enumerate(env_from or []):
        p = f"{path}[{i}]"
        if not isinstance(ef, dict):
            errs.append(v.type_invalid(p, ef, "must be an object"))
            continue
        prefix = ef.get("prefix")
        if prefix:
            errs += v.check(f"{p}.prefix", prefix, v.env_var_name(prefix))
        sources = 0
        for src in ("configMapRef", "secretRef"):
            ref = ef.get(src)
            if isinstance(ref, dict):
                sources += 1
                if not ref.get("name"):
                    errs.append(v.required(f"{p}.{src}.name"))
                else:
                    errs += validate_dns1123_subdomain(f"{p}.{src}.name", ref["name"])
        if sources == 0:
            errs.append(v.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif sources > 1:
            errs.append(v.invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _overcommit_allowed(name: str) -> bool:
    return name in STANDARD_CONTAINER_RESOURCES


def _validate_resource_name(path: str, name: str) -> list[v.FieldError]:
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            return [v.invalid(path, name, "must be a standard resource for containers")]
        return []
    errs = v.check(path, name, v.qualified_name(name))
    if not errs and name.split("/", 1)[1].startswith("requests."):
        errs.append(v.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_resources(path: str, res: Any) -> list[v.FieldError]:
    """`ValidateResourceRequirements`: names, non-negative quantities, requests <= limits."""
    if res is None:
        return []
    if not isinstance(res, dict):
        return [v.type_invalid(path, res, "must be an object")]
    errs: list[v.FieldError] = []
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    lim_path, req_path = f"{path}.limits", f"{path}.requests"
    parsed_limits = {}
    for name, q in limits.items():
        fp = key_path(lim_path, name)
        errs += _validate_resource_name(fp, name)
        q_errs = validate_quantity(fp, q)
        errs += q_errs
        if not q_errs:
            parsed_limits[name] = parse_quantity(q)
    for name, q in requests.items():
        fp = key_path(req_path, name)
        errs += _validate_resource_name(fp, name)
        q_errs = validate_quantity(fp, q)
        errs += q_errs
        if q_errs:
            continue
        qv = parse_quantity(q)
        if name in limits:
            if name not in parsed_limits:
                continue
            if qv != parsed_limits[name] and not _overcommit_allowed(name):
                errs.append(v.invalid(req_path, str(q), f"must be equal to {name} limit of {limits[name]}"))
            elif qv > parsed_limits[name]:
                errs.append(
                    v.invalid(
                        req_path, str(q), f"must be less than or equal to {name} limit of {limits[name]}"
                    )
                )
        elif not _overcommit_allowed(name) and not name.startswith("hugepages-"):
            errs.append(v.required(lim_path, "Limit must be set for non overcommitable resources"))
    return errs


def _validate_handler(path: str, h: dict[str, Any], kinds: tuple[str, ...]) -> list[v.FieldError]:
    """`validateHandler`: exactly one handler type, each checked."""
    errs: list[v.FieldError] = []
    n = 0
    for kind in kinds:
        action = h.get(kind)
        if action is None:
            continue
        ap = f"{path}.{kind}"
        if n > 0:
            errs.append(v.forbidden(ap, "may not specify more than 1 handler type"))
            continue
        n += 1
        if not isinstance(action, dict):
            errs.append(v.type_invalid(ap, action, "must be an object"))
            continue
        if kind == "exec":
            if not action.get("command"):
                errs.append(v.required(f"{ap}.command"))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(v.required(f"{ap}.path"))
            errs += validate_port_num_or_name(f"{ap}.port", action.get("port"))
            scheme = action.get("scheme")
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(v.not_supported(f"{ap}.scheme", scheme, ("HTTP", "HTTPS")))
        elif kind == "tcpSocket":
            errs += validate_port_num_or_name(f"{ap}.port", action.get("port"))
        elif kind == "grpc":
            errs += v.check(f"{ap}.port", action.get("port"), v.port_number(action.get("port")))
        elif kind == "sleep":
            secs = action.get("seconds")
            if not (_is_int(secs) and isinstance(secs, int) and secs >= 0):
                errs.append(v.invalid(f"{ap}.seconds", secs, "must be non-negative"))
    if n == 0:
        errs.append(v.required(path, "must specify a handler type"))
    return errs


def _validate_probe(path: str, probe: Any, kind: str) -> list[v.FieldError]:
    if probe is None:
        return []
    if not isinstance(probe, dict):
        return [v.type_invalid(path, probe, "must be an object")]
    errs = _validate_handler(path, probe, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs += _validate_non_negative_int(f"{path}.{f}", probe.get(f))
    tgp = probe.get("terminationGracePeriodSeconds")
    if tgp is not None:
        if kind == "readinessProbe":
            errs.append(
                v.invalid(f"{path}.terminationGracePeriodSeconds", tgp, "must not be set for readinessProbes")
            )
        else:
            errs += v.positive(f"{path}.terminationGracePeriodSeconds", tgp)
    if kind in ("livenessProbe", "startupProbe") and probe.get("successThreshold") not in (None, 1):
        errs.append(v.invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1"))
    return errs


def _validate_volume_mounts(path: str, mounts: Any, volumes: set[str]) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    seen: set[str] = set()
    for i, m in enumerate(mounts or []):
        p = f"{path}[{i}]"
        if not isinstance(m, dict):
            errs.append(v.type_invalid(p, m, "must be an object"))
            continue
        name = m.get("name")
        if not name:
            errs.append(v.required(f"{p}.name"))
        if name not in volumes:
            errs.append(not_found(f"{p}.name", name or ""))
        mp = m.get("mountPath")
        if not mp:
            errs.append(v.required(f"{p}.mountPath"))
        elif mp in seen:
            errs.append(v.invalid(f"{p}.mountPath", mp, "must be unique"))
        else:
            seen.add(mp)
        sub = m.get("subPath")
        if sub:
            if sub.startswith("/"):
                errs.append(v.invalid(f"{p}.subPath", sub, "must be a relative path"))
            if ".." in sub.split("/"):
                errs.append(v.invalid(f"{p}.subPath", sub, "must not contain '..'"))
        prop = m.get("mountPropagation")
        if prop is not None and prop not in ("None", "HostToContainer", "Bidirectional"):
            errs.append(
                v.not_supported(f"{p}.mountPropagation", prop, ("Bidirectional", "HostToContainer", "None"))
            )
    return errs


def _validate_container(path: str, c: dict[str, Any], volumes: set[str], init: bool) -> list[v.FieldError]:
    """Checks common to init and regular containers (`validateContainerCommon` + per-kind rules)."""
    errs: list[v.FieldError] = []
    image = c.get("image")
    if not image:
        errs.append(v.required(f"{path}.image"))
    elif isinstance(image, str) and image != image.strip():
        errs.append(v.invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    errs += _validate_ports(f"{path}.ports", c.get("ports"))
    errs += _validate_env(f"{path}.env", c.get("env"))
    errs += _validate_env_from(f"{path}.envFrom", c.get("envFrom"))
    errs += _validate_volume_mounts(f"{path}.volumeMounts", c.get("volumeMounts"), volumes)
    errs += validate_resources(f"{path}.resources", c.get("resources"))
    policy = c.get("imagePullPolicy")
    if not policy:
        errs.append(v.required(f"{path}.imagePullPolicy"))
    elif policy not in PULL_POLICIES:
        errs.append(v.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    tmp = c.get("terminationMessagePolicy")
    if not tmp:
        errs.append(v.required(f"{path}.terminationMessagePolicy"))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        errs.append(v.not_supported(f"{path}.terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES))
    restartable = init and c.get("restartPolicy") == "Always"
    if c.get("restartPolicy") is not None and (not init or c["restartPolicy"] != "Always"):
        if init:
            errs.append(v.not_supported(f"{path}.restartPolicy", c["restartPolicy"], ("Always",)))
        else:
            errs.append(v.forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        if init and not restartable and c.get(kind) is not None:
            errs.append(
                v.forbidden(
                    f"{path}.{kind}", "may not be set for init containers without restartPolicy=Always"
                )
            )
        else:
            errs += _validate_probe(f"{path}.{kind}", c.get(kind), kind)
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        if init and not restartable:
            errs.append(
                v.forbidden(
                    f"{path}.lifecycle", "may not be set for init containers without restartPolicy=Always"
                )
            )
        else:
            for hook in ("postStart", "preStop"):
                if isinstance(lifecycle.get(hook), dict):
                    errs += _validate_handler(
                        f"{path}.lifecycle.{hook}", lifecycle[hook], ("exec", "httpGet", "tcpSocket", "sleep")
                    )
    return errs


def _validate_containers(
    path: str, containers: Any, volumes: set[str], names: set[str], init: bool
) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, c in enumerate(containers or []):
        p = f"{path}[{i}]"
        if not isinstance(c, dict):
            errs.append(v.type_invalid(p, c, "must be an object"))
            continue
        name = c.get("name")
        if not name:
            errs.append(v.required(f"{p}.name"))
        else:
            errs += validate_dns1123_label(f"{p}.name", name)
            if name in names:
                errs.append(v.duplicate(f"{p}.name", name))
            else:
                names.add(name)
        errs += _validate_container(p, c, volumes, init)
    return errs


def _validate_volume_source(path: str, vol: dict[str, Any]) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    present = [k for k in VOLUME_SOURCES if vol.get(k) is not None]
    if not present:
        return [v.required(path, "must specify a volume type")]
    for extra in present[1:]:
        errs.append(v.forbidden(f"{path}.{extra}", "may not specify more than 1 volume type"))
    kind = present[0]
    src = vol[kind]
    sp = f"{path}.{kind}"
    if not isinstance(src, dict):
        return [*errs, v.type_invalid(sp, src, "must be an object")]
    mode = src.get("defaultMode")
    if mode is not None and (not _is_int(mode) or not 0 <= mode <= 0o777):
        errs.append(
            v.invalid(
                f"{sp}.defaultMode", mode, "must be a number between 0 and 0777 (octal), both inclusive"
            )
        )
    if kind == "hostPath":
        if not src.get("path"):
            errs.append(v.required(f"{sp}.path"))
        types = (
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        )
        if src.get("type") not in (None, *types):
            errs.append(v.not_supported(f"{sp}.type", src.get("type"), types))
    elif kind == "emptyDir":
        if src.get("sizeLimit") is not None:
            errs += validate_quantity(f"{sp}.sizeLimit", src["sizeLimit"])
    elif kind == "secret":
        if not src.get("secretName"):
            errs.append(v.required(f"{sp}.secretName"))
        errs += _validate_key_to_path(f"{sp}.items", src.get("items"))
    elif kind == "configMap":
        if not src.get("name"):
            errs.append(v.required(f"{sp}.name"))
        errs += _validate_key_to_path(f"{sp}.items", src.get("items"))
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            errs.append(v.required(f"{sp}.claimName"))
    elif kind == "nfs":
        if not src.get("server"):
            errs.append(v.required(f"{sp}.server"))
        if not src.get("path"):
            errs.append(v.required(f"{sp}.path"))
        elif not str(src["path"]).startswith("/"):
            errs.append(v.invalid(f"{sp}.path", src["path"], "must be an absolute path"))
    elif kind == "csi":
        if not src.get("driver"):
            errs.append(v.required(f"{sp}.driver"))
    elif kind == "projected":
        for j, s in enumerate(src.get("sources") or []):
            kinds = [
                k
                for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
                if (s or {}).get(k) is not None
            ]
            if not kinds:
                errs.append(v.required(f"{sp}.sources[{j}]", "must specify exactly 1 volume type"))
            for k in kinds[1:]:
                errs.append(v.forbidden(f"{sp}.sources[{j}].{k}", "may not specify more than 1 volume type"))
            token = (s or {}).get("serviceAccountToken")
            if isinstance(token, dict):
                if not token.get("path"):
                    errs.append(v.required(f"{sp}.sources[{j}].serviceAccountToken.path"))
                exp = token.get("expirationSeconds")
                if _is_int(exp) and isinstance(exp, int) and exp < 600:
                    errs.append(
                        v.invalid(
                            f"{sp}.sources[{j}].serviceAccountToken.expirationSeconds",
                            exp,
                            "may not specify a duration less than 10 minutes",
                        )
                    )
    elif kind == "image" and not src.get("reference"):
        errs.append(v.required(f"{sp}.reference"))
    return errs


def _validate_key_to_path(path: str, items: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for i, item in enumerate(items or []):
        p = f"{path}[{i}]"
        if not (item or {}).get("key"):
            errs.append(v.required(f"{p}.key"))
        ip = (item or {}).get("path")
        if not ip:
            errs.append(v.required(f"{p}.path"))
        else:
            if ip.startswith("/"):
                errs.append(v.invalid(f"{p}.path", ip, "must be a relative path"))
            if ".." in ip.split("/"):
                errs.append(v.invalid(f"{p}.path", ip, "must not contain '..'"))
        mode = (item or {}).get("mode")
        if mode is not None and (not _is_int(mode) or not 0 <= mode <= 0o777):
            errs.append(
                v.invalid(f"{p}.mode", mode, "must be a number between 0 and 0777 (octal), both inclusive")
            )
    return errs


def validate_volumes(path: str, volumes: Any) -> tuple[list[v.FieldError], set[str]]:
    """`ValidateVolumes`: name required + DNS-1123 label + unique, exactly one source. Returns the names."""
    errs: list[v.FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(volumes or []):
        p = f"{path}[{i}]"
        if not isinstance(vol, dict):
            errs.append(v.type_invalid(p, vol, "must be an object"))
            continue
        errs += _validate_volume_source(p, vol)
        name = vol.get("name")
        if not name:
            errs.append(v.required(f"{p}.name"))
        else:
            errs += validate_dns1123_label(f"{p}.name", name)
        if name in names:
            errs.append(v.duplicate(f"{p}.name", name))
        elif name:
            names.add(name)
    return errs, names


def validate_tolerations(path: str, tolerations: Any) -> list[v.FieldError]:
    """`validateTolerations`: key, operator (Equal/Exists), value, effect, tolerationSeconds rules."""
    errs: list[v.FieldError] = []
    for i, t in enumerate(tolerations or []):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            errs.append(v.type_invalid(p, t, "must be an object"))
            continue
        key, op, value, effect = (
            t.get("key") or "",
            t.get("operator") or "",
            t.get("value") or "",
            t.get("effect") or "",
        )
        if key:
            errs += v.check(f"{p}.key", key, v.qualified_name(key))
        if not key and op != "Exists":
            errs.append(
                v.invalid(
                    f"{p}.operator",
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                v.invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if op in ("Equal", ""):
            msgs = v.label_value(value)
            if msgs:
                errs.append(v.invalid(f"{p}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(v.invalid(f"{p}.operator", t, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(v.not_supported(f"{p}.operator", op, ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(v.not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
    return errs


def _validate_node_selector_requirement(path: str, req: dict[str, Any]) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    op, values = req.get("operator"), req.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(v.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                v.forbidden(
                    f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(
                v.required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            )
    else:
        errs.append(v.invalid(f"{path}.operator", op, "not a valid selector operator"))
    key = req.get("key") or ""
    errs += v.check(f"{path}.key", key, v.qualified_name(key))
    return errs


def _validate_node_selector_term(path: str, term: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    for j, req in enumerate((term or {}).get("matchExpressions") or []):
        errs += _validate_node_selector_requirement(f"{path}.matchExpressions[{j}]", req or {})
    for j, req in enumerate((term or {}).get("matchFields") or []):
        p = f"{path}.matchFields[{j}]"
        if (req or {}).get("key") != "metadata.name":
            errs.append(v.invalid(f"{p}.key", (req or {}).get("key"), "not a valid field selector key"))
        if (req or {}).get("operator") not in ("In", "NotIn"):
            errs.append(
                v.invalid(f"{p}.operator", (req or {}).get("operator"), "not a valid selector operator")
            )
        elif len((req or {}).get("values") or []) != 1:
            errs.append(
                v.required(
                    f"{p}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                )
            )
    return errs


def _validate_pod_affinity_term(path: str, term: Any) -> list[v.FieldError]:
    errs = validate_label_selector(f"{path}.labelSelector", (term or {}).get("labelSelector"))
    errs += validate_label_selector(f"{path}.namespaceSelector", (term or {}).get("namespaceSelector"))
    for k, ns in enumerate((term or {}).get("namespaces") or []):
        errs += validate_dns1123_label(f"{path}.namespaces[{k}]", ns)
    tk = (term or {}).get("topologyKey")
    if not tk:
        errs.append(v.required(f"{path}.topologyKey", "can not be empty"))
    else:
        errs += v.check(f"{path}.topologyKey", tk, v.qualified_name(tk))
    return errs


def _validate_weight(path: str, w: Any) -> list[v.FieldError]:
    if not _is_int(w) or not 1 <= w <= 100:
        return [v.invalid(path, w, "must be in the range 1-100")]
    return []


def validate_affinity(path: str, affinity: Any) -> list[v.FieldError]:
    """`validateAffinity`: node affinity terms and pod (anti-)affinity selectors, weights, topology keys."""
    if not isinstance(affinity, dict):
        return []
    errs: list[v.FieldError] = []
    na = affinity.get("nodeAffinity")
    if isinstance(na, dict):
        p = f"{path}.nodeAffinity"
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(req, dict):
            rp = f"{p}.requiredDuringSchedulingIgnoredDuringExecution"
            terms = req.get("nodeSelectorTerms") or []
            if not terms:
                errs.append(
                    v.required(f"{rp}.nodeSelectorTerms", "must have at least one node selector term")
                )
            for j, term in enumerate(terms):
                errs += _validate_node_selector_term(f"{rp}.nodeSelectorTerms[{j}]", term)
        for j, pref in enumerate(na.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            pp = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{j}]"
            errs += _validate_weight(f"{pp}.weight", (pref or {}).get("weight"))
            errs += _validate_node_selector_term(f"{pp}.preference", (pref or {}).get("preference"))
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = affinity.get(kind)
        if not isinstance(pa, dict):
            continue
        p = f"{path}.{kind}"
        for j, term in enumerate(pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            errs += _validate_pod_affinity_term(
                f"{p}.requiredDuringSchedulingIgnoredDuringExecution[{j}]", term
            )
        for j, wt in enumerate(pa.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            pp = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{j}]"
            errs += _validate_weight(f"{pp}.weight", (wt or {}).get("weight"))
            errs += _validate_pod_affinity_term(f"{pp}.podAffinityTerm", (wt or {}).get("podAffinityTerm"))
    return errs


def _validate_topology_spread(path: str, constraints: Any) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints or []):
        p = f"{path}[{i}]"
        c = c or {}
        skew = c.get("maxSkew")
        if not (_is_int(skew) and isinstance(skew, int) and skew > 0):
            errs.append(v.invalid(f"{p}.maxSkew", skew, "must be greater than zero"))
        tk = c.get("topologyKey")
        if not tk:
            errs.append(v.required(f"{p}.topologyKey", "can not be empty"))
        else:
            errs += v.check(f"{p}.topologyKey", tk, v.qualified_name(tk))
        wu = c.get("whenUnsatisfiable")
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(v.not_supported(f"{p}.whenUnsatisfiable", wu, ("DoNotSchedule", "ScheduleAnyway")))
        pair = (str(tk), str(wu))
        if pair in seen:
            errs.append(v.duplicate(p, f"{{{tk}, {wu}}}"))
        seen.add(pair)
        errs += validate_label_selector(f"{p}.labelSelector", c.get("labelSelector"))
    return errs


def _validate_dns_config(path: str, spec: dict[str, Any]) -> list[v.FieldError]:
    cfg = spec.get("dnsConfig")
    errs: list[v.FieldError] = []
    if spec.get("dnsPolicy") == "None":
        if cfg is None:
            return [v.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not (cfg or {}).get("nameservers"):
            errs.append(
                v.required(
                    f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            )
    if isinstance(cfg, dict):
        ns = cfg.get("nameservers") or []
        if len(ns) > 3:
            errs.append(v.invalid(f"{path}.nameservers", ns, "must not have more than 3 nameservers"))
        for i, ip in enumerate(ns):
            errs += validate_ip(f"{path}.nameservers[{i}]", ip)
        if len(cfg.get("searches") or []) > 32:
            errs.append(
                v.invalid(f"{path}.searches", cfg["searches"], "must not have more than 32 search paths")
            )
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[v.FieldError]:
    """`ValidatePodSpec` for what users write; `path` prefixes every field (e.g. `spec.template.spec`)."""
    if not isinstance(spec, dict):
        return [v.required(path)]
    errs, volumes = validate_volumes(f"{path}.volumes", spec.get("volumes"))
    containers = spec.get("containers")
    names: set[str] = set()
    if not containers:
        errs.append(v.required(f"{path}.containers"))
    errs += _validate_containers(f"{path}.containers", containers, volumes, names, init=False)
    errs += _validate_containers(
        f"{path}.initContainers", spec.get("initContainers"), volumes, names, init=True
    )
    for i, ec in enumerate(spec.get("ephemeralContainers") or []):
        p = f"{path}.ephemeralContainers[{i}]"
        name = (ec or {}).get("name")
        if not name:
            errs.append(v.required(f"{p}.name"))
        elif name in names:
            errs.append(v.duplicate(f"{p}.name", name))
        else:
            names.add(name)
        if not (ec or {}).get("image"):
            errs.append(v.required(f"{p}.image"))

    rp = spec.get("restartPolicy")
    if not rp:
        errs.append(v.required(f"{path}.restartPolicy"))
    elif rp not in RESTART_POLICIES:
        errs.append(v.not_supported(f"{path}.restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy")
    if not dp:
        errs.append(v.required(f"{path}.dnsPolicy"))
    elif dp not in DNS_POLICIES:
        errs.append(v.not_supported(f"{path}.dnsPolicy", dp, DNS_POLICIES))
    errs += _validate_dns_config(f"{path}.dnsConfig", spec)
    errs += v.labels(f"{path}.nodeSelector", spec.get("nodeSelector"))
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        if spec.get(key):
            errs += validate_dns1123_subdomain(f"{path}.{key}", spec[key])
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs += validate_dns1123_label(f"{path}.{key}", spec[key])
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or not 1 <= ads <= _MAX_INT32):
        errs.append(
            v.invalid(f"{path}.activeDeadlineSeconds", ads, f"must be between 1 and {_MAX_INT32}, inclusive")
        )
    tgps = spec.get("terminationGracePeriodSeconds")
    if tgps is not None and not _is_int(tgps):
        errs.append(v.type_invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be an integer"))
    errs += validate_tolerations(f"{path}.tolerations", spec.get("tolerations"))
    errs += validate_affinity(f"{path}.affinity", spec.get("affinity"))
    errs += _validate_topology_spread(
        f"{path}.topologySpreadConstraints", spec.get("topologySpreadConstraints")
    )
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if not (ref or {}).get("name"):
            errs.append(v.required(f"{path}.imagePullSecrets[{i}].name"))
    for i, gate in enumerate(spec.get("readinessGates") or []):
        ct = (gate or {}).get("conditionType") or ""
        errs += v.check(f"{path}.readinessGates[{i}].conditionType", ct, v.qualified_name(ct))
    gate_names: set[str] = set()
    for i, gate in enumerate(spec.get("schedulingGates") or []):
        gn = (gate or {}).get("name") or ""
        errs += v.check(f"{path}.schedulingGates[{i}].name", gn, v.qualified_name(gn))
        if gn in gate_names:
            errs.append(v.duplicate(f"{path}.schedulingGates[{i}].name", gn))
        gate_names.add(gn)
    for i, alias in enumerate(spec.get("hostAliases") or []):
        errs += validate_ip(f"{path}.hostAliases[{i}].ip", (alias or {}).get("ip"))
    if spec.get("hostNetwork"):
        for kind in ("containers", "initContainers"):
            for i, c in enumerate(spec.get(kind) or []):
                for j, port in enumerate((c or {}).get("ports") or []):
                    hp, cp = (port or {}).get("hostPort"), (port or {}).get("containerPort")
                    if hp and hp != cp:
                        errs.append(
                            v.invalid(
                                f"{path}.{kind}[{i}].ports[{j}].containerPort",
                                cp,
                                "must match `hostPort` when `hostNetwork` is true",
                            )
                        )
    overhead = spec.get("overhead") or {}
    for name, q in overhead.items():
        errs += validate_quantity(key_path(f"{path}.overhead", name), q)
    return errs


def validate_pod_template(template: Any, path: str) -> list[v.FieldError]:
    """`ValidatePodTemplateSpec`: template labels + the pod spec at `<path>.spec`."""
    if not isinstance(template, dict):
        return [v.required(path)]
    meta = template.get("metadata") or {}
    errs = v.labels(f"{path}.metadata.labels", meta.get("labels"))
    errs += v.annotation_map(f"{path}.metadata.annotations", meta.get("annotations"))
    return errs + validate_pod_spec(template.get("spec"), f"{path}.spec")


def requests_from_limits(containers: Any) -> None:
    """`SetDefaults_Pod`: a container with limits but no request for a resource gets request = limit."""
    for c in containers or []:
        res = (c or {}).get("resources")
        if not isinstance(res, dict) or not res.get("limits"):
            continue
        requests = res.setdefault("requests", {})
        for name, q in res["limits"].items():
            requests.setdefault(name, q)
