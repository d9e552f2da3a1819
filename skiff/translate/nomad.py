"""Nomad job specifications (HCL2, or the JSON form of `nomad job run -json` / the HTTP API) → skiff objects.

A Nomad task group is one pod: its tasks are the containers, `count` the replicas, the group `network` the
pod's ports. So every group becomes a `Workload` (`model.py`) rendered by `render.py`, plus whatever Nomad
has that `Workload` lacks (CronJob for `periodic`, preferred node affinity, ephemeral storage, one Service
per service name, ConfigMaps for templates), which this module adds to the rendered objects itself. It is
pure: text in, `Translation` out; anything it cannot read raises `TranslateError` naming the file and key,
and every key it reads but cannot honour becomes a `TranslateWarning`. Keys whose value equals Nomad's
default count as absent (the API form spells every default out).

Decisions where Nomad and Kubernetes differ (Nomad 1.x job specification docs):

* **Names.** Group `g` of job `j` is the workload `j-g` (`render.dns_label` keeps valid names as they are);
  the namespace is the job's `namespace` (default `default`); every object carries `LABEL_NOMAD_JOB`.
* **Job types.** service → Deployment, system → DaemonSet, batch → Job, sysbatch → a Job of `count` pods on
  distinct nodes, with a warning: a DaemonSet would restart a finished task forever, and "once on every
  node" cannot be known without the node list. `periodic` wraps the Job in a CronJob per cron spec
  (`prohibit_overlap` → `concurrencyPolicy: Forbid`, `time_zone` → `timeZone`, `enabled = false` →
  `suspend`). `parameterized` jobs are rendered suspended (`spec.suspend: true`), with a warning: there is
  no dispatch; unsuspending the Job runs it once.
* **Resources.** Nomad's `cpu` is MHz of a reserved share, not a hard cap: skiff takes 1000 MHz = 1 core,
  so `cpu = 500` is a `500m` request without a cpu limit; `cores = n` reserves whole cores: request =
  limit = n. `memory` is MiB and Nomad enforces it as a hard limit: request = limit = memory, unless
  `memory_max` (oversubscription) sets the limit. Unset resources get Nomad's defaults (100 MHz, 300 MiB).
* **Ports.** A `port` label is a named container port. The container port is `to`, else the Nomad 0.x
  docker `port_map` entry, else `static`; a `static` port is also the `hostPort`. A dynamic port without
  any of these has no fixed number in Nomad (the app reads `NOMAD_PORT_<label>`): skiff picks one from
  `DYNAMIC_PORT_BASE` upwards, with a warning. Every container gets `NOMAD_PORT_<label>` (and
  `NOMAD_HOST_PORT_<label>` for static ports) plus the job/group/task/namespace/region/dc variables, so
  `${NOMAD_PORT_http}` in `args`, `command` and `env` becomes Kubernetes' `$(NOMAD_PORT_http)`. Other
  runtime interpolations (`${attr.*}`, `${NOMAD_ALLOC_ID}`, ...) are left as written, with a warning.
* **Services.** Each distinct service `name` is a ClusterIP Service over the ports its stanzas name (a
  service without a port is headless), tags in the annotation `TAGS_ANNOTATION`. A check is a readiness
  probe (Consul stops routing to a failing instance); only `check_restart` makes it a liveness probe too,
  with `failureThreshold = limit` and `initialDelaySeconds = grace`, as Nomad restarts only then.
* **Restart.** Kubernetes restarts a container in place forever with its own exponential backoff (10s
  doubling to 5m): for service/system jobs a non-default `restart` block is reported, not applied. For
  batch jobs `attempts` is the Job's `backoffLimit` (mode `fail`); `interval`, `delay` and mode `delay`
  are reported.
* **Placement.** Constraints and affinities on `${node.unique.name}`/`${attr.unique.hostname}` use
  `kubernetes.io/hostname`, `${attr.kernel.name}` `kubernetes.io/os`, `${attr.cpu.arch}`
  `kubernetes.io/arch`, `${node.datacenter}` the zone and `${node.region}` the region label,
  `${node.class}` the node label `NODE_CLASS_LABEL`, and `${meta.x}` / `${node.meta.x}` the node label
  `x`; any other attribute is reported. Affinities become preferred node affinity (a negative weight
  prefers the opposite).
* **Drivers.** docker (and podman, whose options match) run their image: Nomad's docker `entrypoint` is
  Kubernetes `command`, Nomad `command` + `args` are Kubernetes `args`. exec and raw_exec run `command`
  and `args` in `EXEC_IMAGE`, with a warning (Nomad runs host binaries). Other drivers are an error.
* **Templates.** An inline `data` template becomes a ConfigMap named after its content (so a changed
  template rolls the pods, as Nomad restarts the task) mounted at `destination` (`local/x` is `/local/x`,
  as in Nomad's docker tasks). Go template actions (`{{ key "x" }}`) are not evaluated: the text is
  mounted as written, with a warning. `env = true` templates become environment variables.
* **Volumes.** A `host` volume names a path configured on each Nomad client, which the job file does not
  know: it becomes the hostPath `HOST_VOLUME_ROOT/<source>`, with a warning. A `csi` volume is the
  PersistentVolumeClaim named `source`. Relative docker `volumes` (task directory paths) are an emptyDir.
* **Unknown keys** are reported (Nomad would reject the job) rather than failing, so a newer Nomad key
  never blocks a deploy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from skiff.api import validation
from skiff.apiserver.registry.batch.cron import CronError, parse_standard
from skiff.translate.model import (
    LABEL_NOMAD_JOB,
    LABEL_WORKLOAD,
    Check,
    Container,
    Mount,
    NodeRule,
    Obj,
    Port,
    Restart,
    TranslateError,
    TranslateWarning,
    Translation,
    Update,
    Volume,
    Workload,
)
from skiff.translate.render import dns_label, render_workload, selector_labels

EXEC_IMAGE = "busybox:1.36"  # exec/raw_exec tasks run their command here: a shell and coreutils, nothing else
HOST_VOLUME_ROOT = "/var/lib/skiff/nomad-host-volumes"
DYNAMIC_PORT_BASE = 20000  # the start of Nomad's default dynamic port range
NODE_CLASS_LABEL = "skiff.io/nomad-node-class"
TAGS_ANNOTATION = "skiff.io/nomad-service-tags"
MHZ_PER_CORE = 1000
DEFAULT_CPU_MHZ = 100
DEFAULT_MEMORY_MB = 300
_MAX_INT = 2**31 - 1

_ATTRIBUTE_LABELS = {
    "node.unique.name": "kubernetes.io/hostname",
    "attr.unique.hostname": "kubernetes.io/hostname",
    "attr.kernel.name": "kubernetes.io/os",
    "attr.cpu.arch": "kubernetes.io/arch",
    "node.datacenter": "topology.kubernetes.io/zone",
    "node.region": "topology.kubernetes.io/region",
    "node.class": NODE_CLASS_LABEL,
}
_HOSTNAME = "kubernetes.io/hostname"
# Prefixes of Nomad's runtime interpolation (evaluated on the client, not when the job file is read).
_RUNTIME_PREFIXES = ("attr.", "node.", "meta.", "NOMAD_", "env.", "env[", "device.", "attr[", "meta[")

# Nomad's defaults for blocks skiff reports when they differ (jobspec docs; the API form spells them out).
_NS = 1_000_000_000
_RESTART_DEFAULTS: dict[str, dict[str, Any]] = {
    "service": {"attempts": 2, "interval": 1800.0, "delay": 15.0, "mode": "fail"},
    "system": {"attempts": 2, "interval": 1800.0, "delay": 15.0, "mode": "fail"},
    "batch": {"attempts": 3, "interval": 86400.0, "delay": 15.0, "mode": "fail"},
    "sysbatch": {"attempts": 3, "interval": 86400.0, "delay": 15.0, "mode": "fail"},
}
_RESCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "service": {"attempts": 0, "interval": 0.0, "delay": 30.0, "delay_function": "exponential",
                "max_delay": 3600.0, "unlimited": True},
    "batch": {"attempts": 1, "interval": 86400.0, "delay": 5.0, "delay_function": "constant",
              "max_delay": 0.0, "unlimited": False},
}


@dataclass
class _Block:
    """One HCL block: its labels and body (attributes, and lists of `_Block` for nested blocks)."""

    labels: tuple[str, ...]
    body: dict[str, Any]


@dataclass
class Affinity:
    """A Nomad affinity as a preferred node-affinity term (`model.Placement` has required rules only)."""

    weight: int  # 1..100
    rule: NodeRule


@dataclass
class ServiceSpec:
    """One Nomad service stanza after port resolution: the Kubernetes Service it contributes to."""

    name: str
    ports: list[Port]
    tags: list[str]


@dataclass
class NomadWorkload(Workload):
    """A task group: the shared `Workload` plus what only Nomad has, applied after `render_workload`."""

    job_id: str = ""
    affinities: list[Affinity] = field(default_factory=list)
    ephemeral_storage: str = ""  # Kubernetes quantity on the first container's requests
    services: list[ServiceSpec] = field(default_factory=list)
    crons: list[str] = field(default_factory=list)  # periodic: one CronJob per spec
    time_zone: str = ""
    prohibit_overlap: bool = False
    cron_suspended: bool = False
    suspend: bool = False  # parameterized: the Job waits to be unsuspended


@dataclass
class NomadJob:
    """A parsed job: workloads before rendering, the ConfigMaps its templates need, and every warning."""

    job_id: str
    namespace: str
    workloads: list[NomadWorkload] = field(default_factory=list)
    config_maps: list[Obj] = field(default_factory=list)
    warnings: list[TranslateWarning] = field(default_factory=list)


# --- entry points ------------------------------------------------------------------------------------


def translate_nomad(path: str, text: str, variables: Mapping[str, str] = {}) -> Translation:
    """Translate one Nomad job file; `variables` are `-var name=value` values for its `variable` blocks.

    Returns ConfigMaps first, then per group its controller (or CronJobs) and Services. Raises only
    `TranslateError`; never returns partial output.
    """
    job = parse_nomad(path, text, variables)
    objects: list[Obj] = list(job.config_maps)
    for w in job.workloads:
        objects.extend(render_group(w))
    return Translation(objects=objects, warnings=list(job.warnings))


def parse_nomad(path: str, text: str, variables: Mapping[str, str] = {}) -> NomadJob:
    """The job as `NomadWorkload`s (not yet rendered); raises only `TranslateError`."""
    if not isinstance(text, str):
        raise TranslateError(path, "<document>", "a job file must be text")
    try:
        top, hcl = _load(path, text)
        r = _Reader(path, top, variables, hcl)
        return _job(r, top)
    except TranslateError:
        raise
    except RecursionError:
        raise TranslateError(path, "<document>", "the document is nested too deeply") from None


# --- loading -----------------------------------------------------------------------------------------


def _load(path: str, text: str) -> tuple[dict[str, Any], bool]:
    """HCL2 text, or the API JSON form, as one top-level body (blocks as `_Block` lists)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(stripped)
        except ValueError as e:
            raise TranslateError(path, "<document>", f"not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise TranslateError(path, "<document>", "the JSON form must be an object")
        job = doc.get("Job", doc)
        if not isinstance(job, dict) or not ("TaskGroups" in job or "ID" in job):
            raise TranslateError(path, "Job", 'the JSON form is the API\'s {"Job": {"ID": ..., "TaskGroups": [...]}}')
        return _from_api(path, job), False
    import hcl2
    from hcl2.utils import SerializationOptions

    opts = SerializationOptions(with_comments=False, strip_string_quotes=True, preserve_heredocs=False,
                                explicit_blocks=True)
    try:
        raw = hcl2.loads(text, serialization_options=opts)
    except RecursionError:
        raise
    except Exception as e:  # the parser's own exception types (lark, ValueError...) are its detail
        line = getattr(e, "line", None)
        where = f"line {line}" if isinstance(line, int) and line > 0 else "<document>"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TranslateError(path, where, f"not valid HCL2: {first}") from None
    if not isinstance(raw, dict):
        raise TranslateError(path, "<document>", "not a Nomad job file")
    return _from_hcl(raw), True


def _is_block_item(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("__is_block__") is True:
        return True
    return len(item) == 1 and _is_block_item(next(iter(item.values())))


def _to_block(item: dict[str, Any], labels: tuple[str, ...] = ()) -> _Block:
    if item.get("__is_block__") is True:
        return _Block(labels, _from_hcl(item))
    (label, inner), = item.items()
    return _to_block(inner, (*labels, str(label)))


def _from_hcl(d: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for k, v in d.items():
        if not isinstance(k, str) or (k.startswith("__") and k.endswith("__")):
            continue
        if isinstance(v, list) and v and all(_is_block_item(i) for i in v):
            body[k] = [_to_block(i) for i in v]
        else:
            body[k] = v
    return body


# The API form: per object type, API field → (HCL key, nested type or None for a plain attribute).
# A nested type ending in "*" is a list of blocks; "#Label" takes the block label from that field.
_API: dict[str, dict[str, tuple[str, str | None]]] = {
    "job": {
        "ID": ("", None), "Name": ("name", None), "Type": ("type", None), "Region": ("region", None),
        "Namespace": ("namespace", None), "Datacenters": ("datacenters", None), "Priority": ("priority", None),
        "AllAtOnce": ("all_at_once", None), "Meta": ("meta", None), "NodePool": ("node_pool", None),
        "Constraints": ("constraint", "constraint*"), "Affinities": ("affinity", "affinity*"),
        "Spreads": ("spread", "spread*"), "Update": ("update", "update"), "Periodic": ("periodic", "periodic"),
        "ParameterizedJob": ("parameterized", "parameterized"), "TaskGroups": ("group", "group*#Name"),
        "Multiregion": ("multiregion", "any"), "Migrate": ("migrate", "any"), "Reschedule": ("reschedule", "any"),
        "Vault": ("vault", "any"), "Consul": ("consul", "any"), "UI": ("ui", "any"),
    },
    "group": {
        "Name": ("", None), "Count": ("count", None), "Constraints": ("constraint", "constraint*"),
        "Affinities": ("affinity", "affinity*"), "Spreads": ("spread", "spread*"), "Tasks": ("task", "task*#Name"),
        "RestartPolicy": ("restart", "restart"), "ReschedulePolicy": ("reschedule", "reschedule"),
        "EphemeralDisk": ("ephemeral_disk", "ephemeral_disk"), "Update": ("update", "update"),
        "Networks": ("network", "network*"), "Services": ("service", "service*"), "Volumes": ("volume", "volumes"),
        "Meta": ("meta", None), "Migrate": ("migrate", "any"), "Scaling": ("scaling", "any"),
        "ShutdownDelay": ("shutdown_delay", None), "StopAfterClientDisconnect": ("stop_after_client_disconnect", None),
        "MaxClientDisconnect": ("max_client_disconnect", None), "Disconnect": ("disconnect", "any"),
        "PreventRescheduleOnLost": ("prevent_reschedule_on_lost", None), "Consul": ("consul", "any"),
    },
    "task": {
        "Name": ("", None), "Driver": ("driver", None), "User": ("user", None), "Config": ("config", "config"),
        "Env": ("env", None), "Services": ("service", "service*"), "Templates": ("template", "template*"),
        "Constraints": ("constraint", "constraint*"), "Affinities": ("affinity", "affinity*"),
        "Resources": ("resources", "resources"), "RestartPolicy": ("restart", "restart"), "Meta": ("meta", None),
        "KillTimeout": ("kill_timeout", None), "KillSignal": ("kill_signal", None), "LogConfig": ("logs", "logs"),
        "Artifacts": ("artifact", "any*"), "Leader": ("leader", None), "ShutdownDelay": ("shutdown_delay", None),
        "VolumeMounts": ("volume_mount", "volume_mount*"), "Lifecycle": ("lifecycle", "lifecycle"),
        "Vault": ("vault", "any"), "Kind": ("kind", None), "DispatchPayload": ("dispatch_payload", "any"),
        "Identity": ("identity", "any"), "Identities": ("identity", "any*"), "CSIPluginConfig": ("csi_plugin", "any"),
        "ScalingPolicies": ("scaling", "any*"), "Consul": ("consul", "any"), "Actions": ("action", "any*"),
        "Schedule": ("schedule", "any"),
    },
    "constraint": {"LTarget": ("attribute", None), "RTarget": ("value", None), "Operand": ("operator", None)},
    "affinity": {"LTarget": ("attribute", None), "RTarget": ("value", None), "Operand": ("operator", None),
                 "Weight": ("weight", None)},
    "spread": {"Attribute": ("attribute", None), "Weight": ("weight", None), "SpreadTarget": ("target", "target*#Value")},
    "target": {"Value": ("", None), "Percent": ("percent", None)},
    "update": {"MaxParallel": ("max_parallel", None), "HealthCheck": ("health_check", None),
               "MinHealthyTime": ("min_healthy_time", None), "HealthyDeadline": ("healthy_deadline", None),
               "ProgressDeadline": ("progress_deadline", None), "AutoRevert": ("auto_revert", None),
               "AutoPromote": ("auto_promote", None), "Canary": ("canary", None), "Stagger": ("stagger", None)},
    "periodic": {"Enabled": ("enabled", None), "Spec": ("cron", None), "Specs": ("crons", None),
                 "SpecType": ("spec_type", None), "ProhibitOverlap": ("prohibit_overlap", None),
                 "TimeZone": ("time_zone", None)},
    "parameterized": {"Payload": ("payload", None), "MetaRequired": ("meta_required", None),
                      "MetaOptional": ("meta_optional", None)},
    "restart": {"Attempts": ("attempts", None), "Interval": ("interval", None), "Delay": ("delay", None),
                "Mode": ("mode", None), "RenderTemplates": ("render_templates", None)},
    "reschedule": {"Attempts": ("attempts", None), "Interval": ("interval", None), "Delay": ("delay", None),
                   "DelayFunction": ("delay_function", None), "MaxDelay": ("max_delay", None),
                   "Unlimited": ("unlimited", None)},
    "ephemeral_disk": {"SizeMB": ("size", None), "Sticky": ("sticky", None), "Migrate": ("migrate", None)},
    "network": {"Mode": ("mode", None), "MBits": ("mbits", None), "ReservedPorts": ("port", "port*#Label"),
                "DynamicPorts": ("port", "port*#Label"), "DNS": ("dns", "any"), "Hostname": ("hostname", None)},
    "port": {"Label": ("", None), "Value": ("static", None), "To": ("to", None), "HostNetwork": ("host_network", None)},
    "service": {"Name": ("name", None), "PortLabel": ("port", None), "Tags": ("tags", None),
                "CanaryTags": ("canary_tags", None), "EnableTagOverride": ("enable_tag_override", None),
                "AddressMode": ("address_mode", None), "Checks": ("check", "check*"),
                "CheckRestart": ("check_restart", "check_restart"), "Connect": ("connect", "any"),
                "Meta": ("meta", None), "CanaryMeta": ("canary_meta", None), "TaskName": ("task", None),
                "OnUpdate": ("on_update", None), "Provider": ("provider", None), "Address": ("address", None),
                "TaggedAddresses": ("tagged_addresses", None), "Identity": ("identity", "any"),
                "Cluster": ("cluster", None), "Kind": ("kind", None), "Weights": ("weights", "any")},
    "check": {"Name": ("name", None), "Type": ("type", None), "Command": ("command", None), "Args": ("args", None),
              "Path": ("path", None), "Protocol": ("protocol", None), "PortLabel": ("port", None),
              "Expose": ("expose", None), "AddressMode": ("address_mode", None), "Interval": ("interval", None),
              "Timeout": ("timeout", None), "InitialStatus": ("initial_status", None),
              "TLSSkipVerify": ("tls_skip_verify", None), "TLSServerName": ("tls_server_name", None),
              "Method": ("method", None), "Header": ("header", None), "Body": ("body", None),
              "CheckRestart": ("check_restart", "check_restart"), "GRPCService": ("grpc_service", None),
              "GRPCUseTLS": ("grpc_use_tls", None), "TaskName": ("task", None),
              "SuccessBeforePassing": ("success_before_passing", None),
              "FailuresBeforeCritical": ("failures_before_critical", None),
              "FailuresBeforeWarning": ("failures_before_warning", None), "OnUpdate": ("on_update", None),
              "Notes": ("notes", None)},
    "check_restart": {"Limit": ("limit", None), "Grace": ("grace", None), "IgnoreWarnings": ("ignore_warnings", None)},
    "template": {"SourcePath": ("source", None), "DestPath": ("destination", None), "EmbeddedTmpl": ("data", None),
                 "ChangeMode": ("change_mode", None), "ChangeSignal": ("change_signal", None),
                 "ChangeScript": ("change_script", "any"), "Splay": ("splay", None), "Perms": ("perms", None),
                 "Uid": ("uid", None), "Gid": ("gid", None), "LeftDelim": ("left_delimiter", None),
                 "RightDelim": ("right_delimiter", None), "Envvars": ("env", None), "VaultGrace": ("vault_grace", None),
                 "Wait": ("wait", "any"), "ErrMissingKey": ("error_on_missing_key", None), "Once": ("once", None)},
    "resources": {"CPU": ("cpu", None), "Cores": ("cores", None), "MemoryMB": ("memory", None),
                  "MemoryMaxMB": ("memory_max", None), "DiskMB": ("disk", None), "IOPS": ("iops", None),
                  "Networks": ("network", "network*"), "Devices": ("device", "any*"), "NUMA": ("numa", "any"),
                  "SecretsMB": ("secrets", None)},
    "logs": {"MaxFiles": ("max_files", None), "MaxFileSizeMB": ("max_file_size", None),
             "Disabled": ("disabled", None), "Enabled": ("enabled", None)},
    "volume": {"Name": ("", None), "Type": ("type", None), "Source": ("source", None), "ReadOnly": ("read_only", None),
               "AccessMode": ("access_mode", None), "AttachmentMode": ("attachment_mode", None),
               "MountOptions": ("mount_options", "any"), "PerAlloc": ("per_alloc", None), "Sticky": ("sticky", None)},
    "volume_mount": {"Volume": ("volume", None), "Destination": ("destination", None),
                     "ReadOnly": ("read_only", None), "PropagationMode": ("propagation_mode", None),
                     "SELinuxLabel": ("selinux_label", None)},
    "lifecycle": {"Hook": ("hook", None), "Sidecar": ("sidecar", None)},
}
# Fields the servers fill in (`nomad job inspect` prints them); they are state, not configuration.
_API_READ_ONLY = frozenset({
    "Status", "StatusDescription", "CreateIndex", "ModifyIndex", "JobModifyIndex", "SubmitTime", "Version",
    "Stable", "Stop", "Dispatched", "ParentID", "DispatchIdempotencyToken", "VersionTag", "NomadTokenID",
    "VaultToken", "ConsulToken", "VaultNamespace", "ConsulNamespace", "Payload", "IP", "CIDR", "Device",
    "Canonicalized",
})
# Zero values the API always prints that still mean something.
_API_KEEP_ZERO = frozenset({"Count", "Attempts", "Enabled", "MaxParallel", "Value", "To", "Weight", "Percent"})


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _zero(v: Any) -> bool:
    return v is None or v is False or (v == 0 and not isinstance(v, bool)) or v in ("", [], {})


def _from_api(path: str, job: dict[str, Any]) -> dict[str, Any]:
    ident = job.get("ID", job.get("Name"))
    if not isinstance(ident, str) or not ident:
        raise TranslateError(path, "Job.ID", "required: the job's ID")
    return {"job": [_Block((ident,), _api_body(path, "job", job, "Job"))]}


def _api_body(path: str, kind: str, d: dict[str, Any], key: str) -> dict[str, Any]:
    """One API object as an HCL body; a free-form type ("any", "config") keeps its keys snake_cased."""
    fields = _API.get(kind)
    body: dict[str, Any] = {}
    for k, v in d.items():
        if not isinstance(k, str) or k in _API_READ_ONLY or (_zero(v) and k not in _API_KEEP_ZERO):
            continue
        if v is None:
            continue
        if fields is None:  # free-form: driver config and blocks skiff only reports
            body[k if kind == "config" else _snake(k)] = v
            continue
        hcl_key, nested = fields.get(k, (_snake(k), None))
        if hcl_key == "":
            continue  # the block label, taken by the caller
        sub = f"{key}.{k}"
        if nested is None:
            body[hcl_key] = v
            continue
        many = "*" in nested
        label_field = nested.split("#")[1] if "#" in nested else None
        typ = nested.split("*")[0].split("#")[0]
        if nested == "volumes":  # group Volumes: a map name → volume request
            if not isinstance(v, dict):
                raise TranslateError(path, sub, "must be an object of volume name → volume")
            items: list[Any] = [{**vol, "Name": name} if isinstance(vol, dict) else vol for name, vol in v.items()]
            typ, many, label_field = "volume", True, "Name"
        else:
            items = v if many and isinstance(v, list) else [v]
            if many and not isinstance(v, list):
                raise TranslateError(path, sub, f"must be a list, not {_type_name(v)}")
        converted: list[_Block] = []
        for i, item in enumerate(items):
            ik = f"{sub}[{i}]" if many else sub
            if not isinstance(item, dict):
                raise TranslateError(path, ik, f"must be an object, not {_type_name(item)}")
            labels: tuple[str, ...] = ()
            if label_field is not None:
                label = item.get(label_field)
                if not isinstance(label, str) or not label:
                    raise TranslateError(path, f"{ik}.{label_field}", "required: a non-empty string")
                labels = (label,)
            inner = _api_body(path, typ, item, ik)
            if inner or labels:
                converted.append(_Block(labels, inner))
        if converted:
            body.setdefault(hcl_key, []).extend(converted)
    return body


def _type_name(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


# --- reading values ----------------------------------------------------------------------------------

class _Reader:
    """Typed access to bodies with HCL2 variable/local resolution; errors and warnings name the key."""

    def __init__(self, path: str, top: dict[str, Any], given: Mapping[str, str], hcl: bool = True) -> None:
        self.path = path
        self.hcl = hcl  # the API form's strings are literal: only runtime interpolation applies
        self.warnings: list[TranslateWarning] = []
        self.vars: dict[str, Any] = {}
        self.locals_raw: dict[str, tuple[Any, str]] = {}
        self.locals: dict[str, Any] = {}
        self._resolving: list[str] = []
        self._declare(top, given)

    def fail(self, key: str, why: str) -> NoReturn:
        raise TranslateError(self.path, key, why)

    def warn(self, key: str, why: str) -> None:
        w = TranslateWarning(self.path, key, why)
        if w not in self.warnings:
            self.warnings.append(w)

    # variables and locals

    def _declare(self, top: dict[str, Any], given: Mapping[str, str]) -> None:
        for label, blk, key in self.blocks(top, "variable", "variable", labels=1):
            name = label
            b = blk.body
            self.known_keys(b, key, {"default", "type", "description", "sensitive", "nullable"},
                            {"validation": "variable validation rules are not evaluated"})
            typ = b.get("type")
            typ_s = typ[2:-1].strip() if isinstance(typ, str) and typ.startswith("${") and typ.endswith("}") else typ
            if name in given:
                self.vars[name] = self._typed_var(given[name], typ_s, key)
            elif "default" in b:
                self.vars[name] = b["default"]
            else:
                self.fail(key, "no value given (-var) and no default")
        for name in given:
            if name not in self.vars:
                self.warn(f"variable.{name}", "a value was given for a variable the job does not declare; ignored")
        for i, blk in enumerate(self._block_list(top, "locals", "locals")):
            for name, value in blk.body.items():
                self.locals_raw[name] = (value, f"locals[{i}].{name}")

    def _typed_var(self, value: str, typ: Any, key: str) -> Any:
        if not isinstance(value, str):
            self.fail(key, "a variable value must be a string")
        if typ in (None, "string", "any"):
            return value
        if typ == "number":
            try:
                return int(value)
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    self.fail(key, f"{value!r} is not a number")
                if not math.isfinite(f):
                    self.fail(key, f"{value!r} is not a number")
                return f
        if typ == "bool":
            if value not in ("true", "false"):
                self.fail(key, f"{value!r} is not a bool")
            return value == "true"
        try:
            return json.loads(value)
        except ValueError:
            self.fail(key, f"{value!r} is not a value of type {typ}: give lists and maps as JSON")

    def _reference(self, expr: str, key: str) -> tuple[bool, Any]:
        """(True, value) for var./local. references and literals; (False, None) for runtime ones."""
        m = re.fullmatch(r'var\.([A-Za-z_][\w-]*)|var\["([^"]+)"\]', expr)
        if m:
            name = m.group(1) or m.group(2)
            if name not in self.vars:
                self.fail(key, f"reference to undeclared variable {name!r}")
            return True, self.vars[name]
        m = re.fullmatch(r"local\.([A-Za-z_][\w-]*)", expr)
        if m:
            return True, self._local(m.group(1), key)
        if re.fullmatch(r"-?\d+", expr):
            return True, int(expr)
        if re.fullmatch(r"-?\d+\.\d+", expr):
            return True, float(expr)
        if expr in ("true", "false"):
            return True, expr == "true"
        if re.fullmatch(r'"[^"\\$%]*"', expr):
            return True, expr[1:-1]
        if expr.startswith(_RUNTIME_PREFIXES):
            return False, None
        self.fail(key, f"HCL expression `{expr}` is not supported: only var.<name>, local.<name> and literals")

    def _local(self, name: str, key: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        if name not in self.locals_raw:
            self.fail(key, f"reference to undeclared local {name!r}")
        if name in self._resolving:
            self.fail(key, f"local {name!r} refers to itself")
        self._resolving.append(name)
        raw, lkey = self.locals_raw[name]
        value = self.resolve(raw, lkey)
        self._resolving.pop()
        self.locals[name] = value
        return value

    def resolve(self, value: Any, key: str) -> Any:
        """`value` with `${var.x}`/`${local.x}` substituted; runtime `${...}` interpolations stay as written."""
        if isinstance(value, str):
            return self._template(value, key) if self.hcl else value
        if isinstance(value, list):
            return [self.resolve(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {str(k): self.resolve(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, _Block):
            self.fail(key, "expected an attribute, not a block")
        return value

    def _template(self, s: str, key: str) -> Any:
        if "${" not in s and "%{" not in s:
            return s
        parts: list[Any] = []
        i = 0
        literal: list[str] = []
        while i < len(s):
            if s.startswith("$${", i) or s.startswith("%%{", i):
                literal.append(s[i + 1:i + 3])
                i += 3
                continue
            if s.startswith("%{", i):
                self.fail(key, "HCL template directives (%{ ... }) are not supported")
            if s.startswith("${", i):
                end = _closing_brace(s, i + 2)
                if end < 0:
                    self.fail(key, "unterminated ${ interpolation")
                expr = s[i + 2:end].strip().strip("~").strip()
                known, value = self._reference(expr, key)
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(value if known else "${" + expr + "}")
                i = end + 1
                continue
            literal.append(s[i])
            i += 1
        if literal:
            parts.append("".join(literal))
        if len(parts) == 1:
            return parts[0]
        out = []
        for p in parts:
            if isinstance(p, bool):
                out.append("true" if p else "false")
            elif isinstance(p, int | float | str):
                out.append(str(p))
            else:
                self.fail(key, f"cannot interpolate {_type_name(p)} into a string")
        return "".join(out)

    # blocks and attributes

    def _block_list(self, body: dict[str, Any], name: str, key: str) -> list[_Block]:
        v = body.get(name)
        if v is None:
            return []
        if isinstance(v, dict):  # `name = { ... }` written as an attribute: one unlabelled block
            return [_Block((), v)]
        if isinstance(v, list) and all(isinstance(b, dict) for b in v):  # the API form's free-form lists
            return [_Block((), b) for b in v]
        if not isinstance(v, list) or not all(isinstance(b, _Block) for b in v):
            self.fail(key, f"must be a block, not {_type_name(v)}")
        return list(v)

    def blocks(self, body: dict[str, Any], name: str, key: str, labels: int = 0) -> list[tuple[str, _Block, str]]:
        """(label or "", block, key) for each `name` block; `labels` is how many labels it must have."""
        out = []
        blocks = self._block_list(body, name, f"{key}")
        for i, blk in enumerate(blocks):
            if len(blk.labels) != labels:
                self.fail(f"{key}[{i}]", f"a {name} block takes {labels} label(s), not {len(blk.labels)}")
            label = blk.labels[0] if labels else ""
            if labels and not label:
                self.fail(f"{key}[{i}]", f"a {name} block needs a non-empty label")
            bkey = f"{key}.{label}" if labels else (f"{key}[{i}]" if len(blocks) > 1 else key)
            out.append((label, blk, bkey))
        return out

    def block(self, body: dict[str, Any], name: str, key: str) -> tuple[dict[str, Any], str] | None:
        """The single unlabelled `name` block (Nomad allows one), or None."""
        found = self.blocks(body, name, key)
        if len(found) > 1:
            self.fail(key, f"only one {name} block is allowed")
        return (found[0][1].body, found[0][2]) if found else None

    def value(self, body: dict[str, Any], name: str, key: str) -> Any:
        v = body.get(name)
        if v is None:
            return None
        if isinstance(v, list) and v and all(isinstance(b, _Block) for b in v):
            self.fail(key, "expected an attribute, not a block")
        return self.resolve(v, key)

    def string(self, body: dict[str, Any], name: str, key: str) -> str | None:
        v = self.value(body, name, key)
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float) and not isinstance(v, bool):
            return _num_str(v)
        if not isinstance(v, str):
            self.fail(key, f"must be a string, not {_type_name(v)}")
        return v

    def integer(self, body: dict[str, Any], name: str, key: str, lo: int = 0, hi: int = _MAX_INT) -> int | None:
        v = self.value(body, name, key)
        if v is None:
            return None
        if isinstance(v, str) and re.fullmatch(r"-?\d{1,12}", v.strip()):
            v = int(v.strip())
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(key, f"must be a whole number, not {_type_name(v)}")
        if not lo <= v <= hi:
            self.fail(key, f"{v} is out of range [{lo}, {hi}]")
        return v

    def boolean(self, body: dict[str, Any], name: str, key: str) -> bool | None:
        v = self.value(body, name, key)
        if v is None:
            return None
        if isinstance(v, str) and v in ("true", "false"):
            return v == "true"
        if not isinstance(v, bool):
            self.fail(key, f"must be true or false, not {_type_name(v)}")
        return v

    def duration(self, body: dict[str, Any], name: str, key: str) -> float | None:
        """Seconds from a Go duration ("1m30s") or a number of nanoseconds (the API form)."""
        v = self.value(body, name, key)
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v <= 2**63 - 1:
                self.fail(key, f"{v} is not a duration")
            return v / _NS
        if not isinstance(v, str):
            self.fail(key, f"must be a duration such as \"30s\", not {_type_name(v)}")
        seconds = _go_duration(v)
        if seconds is None:
            self.fail(key, f"{v!r} is not a duration such as \"30s\" or \"1m30s\"")
        return seconds

    def strings(self, body: dict[str, Any], name: str, key: str) -> list[str] | None:
        v = self.value(body, name, key)
        if v is None:
            return None
        if not isinstance(v, list):
            self.fail(key, f"must be a list of strings, not {_type_name(v)}")
        out = []
        for i, item in enumerate(v):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.fail(f"{key}[{i}]", f"must be a string, not {_type_name(item)}")
            out.append(item if isinstance(item, str) else _num_str(item))
        return out

    def mapping(self, body: dict[str, Any], name: str, key: str) -> dict[str, str]:
        """A string map written as `name = {...}` or as `name { ... }` blocks (merged in order)."""
        raw = body.get(name)
        if raw is None:
            return {}
        sources: list[tuple[dict[str, Any], str]] = []
        if isinstance(raw, dict):
            sources.append((raw, key))
        elif isinstance(raw, list) and all(isinstance(b, dict) for b in raw):
            sources.extend((b, key) for b in raw)
        elif isinstance(raw, list) and all(isinstance(b, _Block) for b in raw):
            for i, blk in enumerate(raw):
                if blk.labels:
                    self.fail(f"{key}[{i}]", f"a {name} block takes no labels")
                sources.append((blk.body, key))
        else:
            self.fail(key, f"must be a map of strings, not {_type_name(raw)}")
        out: dict[str, str] = {}
        for src, k in sources:
            for mk in src:
                s = self.string(src, mk, f"{k}.{mk}")
                if s is not None:
                    out[str(mk)] = s
        return out

    def known_keys(self, body: dict[str, Any], key: str, honoured: set[str], unsupported: Mapping[str, str],
                   defaults: Mapping[str, Any] | None = None) -> None:
        """Report every key of `body` that is neither honoured nor explained as unsupported.

        A key whose value is Nomad's default (`defaults`) changes nothing and is not reported.
        """
        for k in body:
            if k in honoured or body[k] is None:
                continue
            if defaults and k in defaults and _same(body[k], defaults[k]):
                continue
            if k in unsupported:
                self.warn(f"{key}.{k}", unsupported[k])
            else:
                self.warn(f"{key}.{k}", "unknown key (Nomad would reject it); ignored")


def _same(raw: Any, default: Any) -> bool:
    """Whether an attribute as written equals a default; durations compare in seconds (HCL text or API ns)."""
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], _Block) and not raw[0].labels:
        raw = raw[0].body
    if isinstance(default, float) and not isinstance(raw, bool):
        seconds = raw / _NS if isinstance(raw, int) else _go_duration(raw) if isinstance(raw, str) else None
        return seconds == default
    if isinstance(raw, dict) and isinstance(default, dict):
        return all(k in default and _same(v, default[k]) for k, v in raw.items())  # a missing key is its default
    return bool(raw == default)


def _closing_brace(s: str, start: int) -> int:
    depth = 0
    quoted = False
    i = start
    while i < len(s):
        c = s[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _go_duration(text: str) -> float | None:
    """Go's time.ParseDuration, non-negative: "300ms", "1.5h", "2h45m"; "0" alone is zero."""
    t = text.strip()
    if t == "0":
        return 0.0
    if not t or len(t) > 64:
        return None
    pos, total = 0, 0.0
    while pos < len(t):
        m = _DURATION_RE.match(t, pos)
        if not m:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total if math.isfinite(total) else None


def _num_str(v: int | float) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return str(v)


def _ceil_seconds(r: _Reader, seconds: float, key: str, minimum: int = 0) -> int:
    whole = max(minimum, math.ceil(seconds))
    if whole != seconds:
        r.warn(key, f"Kubernetes counts whole seconds: {seconds:g}s becomes {whole}s")
    if whole > _MAX_INT:
        r.fail(key, f"{seconds:g}s is too long")
    return whole


# --- job ---------------------------------------------------------------------------------------------

_JOB_UNSUPPORTED = {
    "all_at_once": "skiff places all of a job's pods at once anyway; ignored",
    "migrate": "node drains follow Kubernetes eviction, not Nomad's migrate policy",
    "reschedule": "Kubernetes replaces failed pods by its own rules (Deployment/Job controllers); ignored",
    "vault": "skiff has no Vault integration",
    "vault_token": "skiff has no Vault integration",
    "consul": "skiff has no Consul integration; services are Kubernetes Services",
    "consul_token": "skiff has no Consul integration",
    "multiregion": "skiff is one cluster in one region",
    "node_pool": "skiff has no node pools; use constraints on node labels",
    "ui": "Nomad UI metadata; ignored",
    "max_client_disconnect": "Kubernetes evicts pods from unreachable nodes by its taint-based eviction",
}


def _job(r: _Reader, top: dict[str, Any]) -> NomadJob:
    for k in top:
        if k not in ("job", "variable", "locals"):
            r.warn(k, "only job, variable and locals blocks are read at the top level; ignored")
    jobs = r.blocks(top, "job", "job", labels=1)
    if len(jobs) != 1:
        r.fail("job", f"a job file holds exactly one job block, not {len(jobs)}")
    job_id, blk, jk = jobs[0]
    b = blk.body
    if len(job_id) > 128 or any(c.isspace() or c == "\x00" for c in job_id):
        r.fail(jk, "a job ID has at most 128 characters and no whitespace or null")
    name = r.string(b, "name", f"{jk}.name") or job_id
    jtype = r.string(b, "type", f"{jk}.type") or "service"
    if jtype not in ("service", "batch", "system", "sysbatch"):
        r.fail(f"{jk}.type", f"{jtype!r} is not one of service, batch, system, sysbatch")
    ns_raw = r.string(b, "namespace", f"{jk}.namespace") or "default"
    namespace = dns_label(ns_raw)
    if namespace != ns_raw:
        r.warn(f"{jk}.namespace", f"Kubernetes namespaces are DNS-1123 labels: {ns_raw!r} becomes {namespace!r}")
    dcs = r.strings(b, "datacenters", f"{jk}.datacenters")
    if dcs is not None and dcs != ["*"]:
        r.warn(f"{jk}.datacenters", f"skiff is one cluster: the job runs on its nodes, whatever the datacenter {dcs}")
    region = r.string(b, "region", f"{jk}.region")
    if region is not None and region != "global":
        r.warn(f"{jk}.region", f"skiff is one cluster in one region: region {region!r} is ignored")
    priority = r.integer(b, "priority", f"{jk}.priority", 1, 32766)
    if priority is not None and priority != 50:
        r.warn(f"{jk}.priority", "skiff does not create PriorityClasses or preempt by job priority; ignored")
    r.boolean(b, "all_at_once", f"{jk}.all_at_once")
    meta = _meta(r, b, jk)
    label_value = job_id if not validation.label_value(job_id) and job_id else dns_label(job_id)
    ctx = _JobCtx(job_id=job_id, name=name, jtype=jtype, namespace=namespace, label=label_value,
                  region=region or "global", dc=(dcs[0] if dcs and dcs[0] != "*" else "dc1"), meta=meta)
    ctx.update = _update_raw(r, b, jk)
    ctx.placement_blocks = [(b, jk)]
    _periodic(r, b, jk, ctx)
    _parameterized(r, b, jk, ctx)
    r.known_keys(b, jk, {"name", "type", "namespace", "datacenters", "region", "priority", "meta", "group",
                         "constraint", "affinity", "spread", "update", "periodic", "parameterized"},
                 _JOB_UNSUPPORTED, {"all_at_once": False, "node_pool": "default"})
    groups = r.blocks(b, "group", f"{jk}.group", labels=1)
    if not groups:
        r.fail(f"{jk}.group", "a job needs at least one group")
    out = NomadJob(job_id=job_id, namespace=namespace)
    seen: set[str] = set()
    for gname, gblk, gk in groups:
        if gname in seen:
            r.fail(gk, f"group {gname!r} is defined twice")
        seen.add(gname)
        w, cms = _group(r, ctx, gname, gblk.body, gk)
        out.workloads.append(w)
        out.config_maps.extend(cms)
    names = [w.name for w in out.workloads]
    if len(set(names)) != len(names):
        r.fail(f"{jk}.group", "two groups map to the same Kubernetes name")
    out.warnings = r.warnings
    return out


@dataclass
class _JobCtx:
    job_id: str
    name: str
    jtype: str
    namespace: str
    label: str
    region: str
    dc: str
    meta: dict[str, str]
    update: dict[str, Any] = field(default_factory=dict)
    placement_blocks: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    crons: list[str] = field(default_factory=list)
    time_zone: str = ""
    prohibit_overlap: bool = False
    cron_enabled: bool = True
    parameterized: bool = False


def _meta(r: _Reader, body: dict[str, Any], key: str) -> dict[str, str]:
    return r.mapping(body, "meta", f"{key}.meta")


def _periodic(r: _Reader, b: dict[str, Any], jk: str, ctx: _JobCtx) -> None:
    found = r.block(b, "periodic", f"{jk}.periodic")
    if found is None:
        return
    p, pk = found
    if ctx.jtype not in ("batch", "sysbatch"):
        r.fail(pk, f"only batch and sysbatch jobs can be periodic, not {ctx.jtype}")
    r.known_keys(p, pk, {"cron", "crons", "prohibit_overlap", "time_zone", "enabled", "spec_type"}, {})
    spec_type = r.string(p, "spec_type", f"{pk}.spec_type")
    if spec_type not in (None, "cron"):
        r.fail(f"{pk}.spec_type", f"{spec_type!r} is not supported: only cron")
    specs: list[tuple[str, str]] = []
    cron = r.string(p, "cron", f"{pk}.cron")
    if cron is not None:
        specs.append((cron, f"{pk}.cron"))
    for i, c in enumerate(r.strings(p, "crons", f"{pk}.crons") or []):
        specs.append((c, f"{pk}.crons[{i}]"))
    if not specs:
        r.fail(pk, "a periodic block needs cron or crons")
    ctx.crons = [_cron(r, s, k) for s, k in specs]
    ctx.prohibit_overlap = bool(r.boolean(p, "prohibit_overlap", f"{pk}.prohibit_overlap"))
    ctx.time_zone = r.string(p, "time_zone", f"{pk}.time_zone") or ""
    if ctx.time_zone.upper() == "UTC":
        ctx.time_zone = "Etc/UTC"
    enabled = r.boolean(p, "enabled", f"{pk}.enabled")
    ctx.cron_enabled = enabled is not False


def _cron(r: _Reader, spec: str, key: str) -> str:
    """Nomad's cronexpr (optional seconds and year fields) as a five-field Kubernetes schedule."""
    s = spec.strip()
    if s.startswith("@"):
        if s in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
            return s
        r.fail(key, f"{spec!r} is not a supported cron descriptor")
    fields = s.split()
    if len(fields) == 6 and fields[5] in ("*", "?"):
        fields = fields[:5]  # cronexpr's six fields end with the year
    elif len(fields) == 7 and fields[0] == "0" and fields[6] in ("*", "?"):
        fields = fields[1:6]  # seconds first, year last
    if len(fields) != 5:
        r.fail(key, f"{spec!r}: Kubernetes CronJobs run at most once a minute on a five-field schedule")
    schedule = " ".join(fields)
    try:
        parse_standard(schedule)  # the CronJob API's own check: cronexpr's L, W and # do not pass
    except CronError as e:
        r.fail(key, f"{spec!r} is not a Kubernetes schedule: {e}")
    return schedule


def _parameterized(r: _Reader, b: dict[str, Any], jk: str, ctx: _JobCtx) -> None:
    found = r.block(b, "parameterized", f"{jk}.parameterized")
    if found is None:
        return
    p, pk = found
    if ctx.jtype not in ("batch", "sysbatch"):
        r.fail(pk, f"only batch and sysbatch jobs can be parameterized, not {ctx.jtype}")
    if ctx.crons:
        r.fail(pk, "a job cannot be both periodic and parameterized")
    ctx.parameterized = True
    r.known_keys(p, pk, set(), {"payload": "there is no dispatch payload in skiff",
                                "meta_required": "there is no dispatch metadata in skiff",
                                "meta_optional": "there is no dispatch metadata in skiff"})
    r.warn(pk, "skiff has no `nomad job dispatch`: the Job is created suspended (spec.suspend: true) and runs "
               "once when unsuspended")


def _update_raw(r: _Reader, body: dict[str, Any], key: str) -> dict[str, tuple[Any, str]]:
    """The update block's keys as (value, key) so a warning can name the level that set them."""
    found = r.block(body, "update", f"{key}.update")
    if found is None:
        return {}
    u, uk = found
    out: dict[str, tuple[Any, str]] = {}
    r.known_keys(u, uk, {"max_parallel", "health_check", "min_healthy_time", "healthy_deadline",
                         "progress_deadline", "auto_revert", "auto_promote", "canary", "stagger"}, {})
    for k in ("max_parallel", "canary"):
        v = r.integer(u, k, f"{uk}.{k}", 0, 100000)
        if v is not None:
            out[k] = (v, f"{uk}.{k}")
    for k in ("min_healthy_time", "healthy_deadline", "progress_deadline", "stagger"):
        d = r.duration(u, k, f"{uk}.{k}")
        if d is not None:
            out[k] = (d, f"{uk}.{k}")
    for k in ("auto_revert", "auto_promote"):
        bv = r.boolean(u, k, f"{uk}.{k}")
        if bv is not None:
            out[k] = (bv, f"{uk}.{k}")
    hc = r.string(u, "health_check", f"{uk}.health_check")
    if hc is not None:
        if hc not in ("checks", "task_states", "manual"):
            r.fail(f"{uk}.health_check", f"{hc!r} is not one of checks, task_states, manual")
        out["health_check"] = (hc, f"{uk}.health_check")
    return out


# --- group -------------------------------------------------------------------------------------------

_MIGRATE_DEFAULTS = {"max_parallel": 1, "health_check": "checks", "min_healthy_time": 10.0,
                     "healthy_deadline": 300.0}
_LOGS_DEFAULTS = {"max_files": 10, "max_file_size": 10, "disabled": False, "enabled": True}
DEFAULT_DISK_MB = 300
_GROUP_UNSUPPORTED = {
    "migrate": "node drains follow Kubernetes eviction, not Nomad's migrate policy",
    "scaling": "skiff has no Nomad autoscaler policies; use a HorizontalPodAutoscaler",
    "shutdown_delay": "Kubernetes has no delay between deregistration and stop; ignored",
    "stop_after_client_disconnect": "Kubernetes evicts pods from unreachable nodes by its taint-based eviction",
    "max_client_disconnect": "Kubernetes evicts pods from unreachable nodes by its taint-based eviction",
    "disconnect": "Kubernetes evicts pods from unreachable nodes by its taint-based eviction",
    "prevent_reschedule_on_lost": "Kubernetes evicts pods from unreachable nodes by its taint-based eviction",
    "consul": "skiff has no Consul integration; services are Kubernetes Services",
    "vault": "skiff has no Vault integration",
}


@dataclass
class _PortDef:
    label: str
    key: str
    static: int | None
    to: int | None
    task: str | None  # the task whose (0.x) resources.network declared it
    container_port: int = 0
    name: str = ""


@dataclass
class _TaskOut:
    name: str
    key: str
    container: Container
    hook: str  # "" (main), "prestart", "prestart-sidecar", "poststart", "poststop"
    port_labels: list[str]
    port_map: dict[str, int]
    body: dict[str, Any]
    checks: list[tuple[Any, str]] = field(default_factory=list)


def _group(r: _Reader, job: _JobCtx, gname: str, g: dict[str, Any], gk: str) -> tuple[NomadWorkload, list[Obj]]:
    wname = dns_label(f"{job.job_id}-{gname}")
    count = r.integer(g, "count", f"{gk}.count", 0, 100000)
    if job.jtype == "system" and count not in (None, 1):
        r.warn(f"{gk}.count", "a system job runs one instance per node; count is ignored")
    mode: Literal["replicated", "global", "batch"] = {
        "service": "replicated", "system": "global", "batch": "batch", "sysbatch": "batch"}[job.jtype]  # type: ignore[assignment]
    replicas = 1 if job.jtype == "system" or count is None else count
    meta = {**job.meta, **_meta(r, g, gk)}
    w = NomadWorkload(name=wname, namespace=job.namespace, mode=mode, replicas=replicas,
                      labels={LABEL_NOMAD_JOB: job.label}, job_id=job.job_id, endpoint_mode=None)
    if job.jtype == "sysbatch":
        w.placement.one_per_node = True
        r.warn(gk, "a sysbatch job runs once on every node; skiff renders a Job of `count` pods on distinct "
                   "nodes (a DaemonSet would restart finished tasks); set count to the number of nodes")
    w.crons = list(job.crons)
    w.time_zone = job.time_zone
    w.prohibit_overlap = job.prohibit_overlap
    w.cron_suspended = not job.cron_enabled
    w.suspend = job.parameterized
    r.known_keys(g, gk, {"count", "meta", "task", "network", "service", "restart", "update", "constraint",
                         "affinity", "spread", "ephemeral_disk", "volume", "reschedule"}, _GROUP_UNSUPPORTED,
                 {"migrate": _MIGRATE_DEFAULTS})
    _reschedule(r, g, gk, job.jtype)

    ports = _group_ports(r, g, gk, w)
    volumes = _group_volumes(r, g, gk)
    tasks_raw = r.blocks(g, "task", f"{gk}.task", labels=1)
    if not tasks_raw:
        r.fail(f"{gk}.task", "a group needs at least one task")
    env_base = {"NOMAD_JOB_ID": job.job_id, "NOMAD_JOB_NAME": job.name, "NOMAD_GROUP_NAME": gname,
                "NOMAD_NAMESPACE": job.namespace, "NOMAD_REGION": job.region, "NOMAD_DC": job.dc}
    tasks: list[_TaskOut] = []
    config_maps: list[Obj] = []
    task_meta: dict[str, str] = {}
    seen: set[str] = set()
    for tname, tblk, tk in tasks_raw:
        if tname in seen:
            r.fail(tk, f"task {tname!r} is defined twice")
        seen.add(tname)
        t, cms = _task(r, job, w, gname, tname, tblk.body, tk, ports, volumes, task_meta)
        tasks.append(t)
        config_maps.extend(cms)
    meta.update(task_meta)
    _assign_ports(r, ports, tasks, w)
    for t in tasks:
        env = {**env_base, "NOMAD_TASK_NAME": t.name}
        for p in ports:
            env[f"NOMAD_PORT_{p.label}"] = str(p.container_port)
            if p.static is not None:
                env[f"NOMAD_HOST_PORT_{p.label}"] = str(p.static)
        for mk, mv in meta.items():
            if not validation.env_var_name(f"NOMAD_META_{mk}"):
                env[f"NOMAD_META_{mk}"] = mv
        _runtime_env(r, t, env)
    w.annotations = _annotations(r, meta, gk)
    _services(r, job, w, gname, g, gk, ports, tasks)
    _restart(r, job.jtype, g, gk, tasks, w)
    w.update = _update(r, job, g, gk, w)
    _placement(r, job, g, gk, tasks, w)
    _ephemeral_disk(r, g, gk, w)
    used_volumes = {m.source for t in tasks for m in t.container.mounts}
    w.volumes = [v for v in volumes.values() if v.name in used_volumes] + w.volumes
    for t in tasks:
        if t.hook == "prestart":
            w.init_containers.append(t.container)
        elif t.hook != "poststop":
            w.containers.append(t.container)
    if not w.containers:
        r.fail(f"{gk}.task", "a group needs at least one task that is not a prestart or poststop hook")
    names = [c.name for c in (*w.init_containers, *w.containers)]
    if len({dns_label(n) for n in names}) != len(names):
        r.fail(f"{gk}.task", "two tasks map to the same Kubernetes container name")
    return w, config_maps


def _annotations(r: _Reader, meta: dict[str, str], key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in meta.items():
        if validation.qualified_name(k):
            r.warn(f"{key}.meta.{k}", "not a valid Kubernetes annotation key; not copied")
        else:
            out[k] = v
    return out


def _reschedule(r: _Reader, g: dict[str, Any], gk: str, jtype: str) -> None:
    found = r.block(g, "reschedule", f"{gk}.reschedule")
    if found is None:
        return
    body, rk = found
    defaults = _RESCHEDULE_DEFAULTS["service" if jtype in ("service", "system") else "batch"]
    r.known_keys(body, rk, set(defaults), {})
    values: dict[str, Any] = {"attempts": r.integer(body, "attempts", f"{rk}.attempts", 0, _MAX_INT)}
    for k in ("interval", "delay", "max_delay"):
        values[k] = r.duration(body, k, f"{rk}.{k}")
    values["delay_function"] = r.string(body, "delay_function", f"{rk}.delay_function")
    values["unlimited"] = r.boolean(body, "unlimited", f"{rk}.unlimited")
    differs = [k for k, v in values.items() if v is not None and v != defaults[k]]
    if differs:
        r.warn(rk, "Kubernetes replaces failed pods by its own rules (Deployment/Job controllers); "
                   f"{', '.join(differs)} not applied")


def _group_ports(r: _Reader, g: dict[str, Any], gk: str, w: NomadWorkload) -> list[_PortDef]:
    ports: list[_PortDef] = []
    found = r.block(g, "network", f"{gk}.network")
    if found is not None:
        net, nk = found
        mode = r.string(net, "mode", f"{nk}.mode")
        if mode not in (None, "host", "bridge"):
            r.warn(f"{nk}.mode", f"network mode {mode!r} is not supported: pods use the cluster network")
        ports.extend(_network_ports(r, net, nk, None))
    return ports


def _network_ports(r: _Reader, net: dict[str, Any], nk: str, task: str | None) -> list[_PortDef]:
    r.known_keys(net, nk, {"mode", "port", "mbits"}, {
        "dns": "pods use the cluster DNS", "hostname": "the pod hostname is the pod name",
        "device": "pods use the cluster network", "cidr": "pods use the cluster network",
        "ip": "pods use the cluster network"})
    mbits = r.integer(net, "mbits", f"{nk}.mbits", 0, _MAX_INT)
    if mbits is not None:
        r.warn(f"{nk}.mbits", "skiff does not reserve network bandwidth; ignored")
    out = []
    for label, blk, pk in r.blocks(net, "port", f"{nk}.port", labels=1):
        p = blk.body
        r.known_keys(p, pk, {"static", "to"}, {"host_network": "skiff binds host ports on every node address"},
                     {"host_network": "default"})
        static = r.integer(p, "static", f"{pk}.static", 0, 65535)
        to = r.integer(p, "to", f"{pk}.to", -1, 65535)
        out.append(_PortDef(label, pk, static or None, to if to and to > 0 else None, task))
    return out


def _assign_ports(r: _Reader, ports: list[_PortDef], tasks: list[_TaskOut], w: NomadWorkload) -> None:
    """Give every port label a container port and a container (see the module docstring)."""
    labels: dict[str, _PortDef] = {}
    for p in ports:
        if p.label in labels:
            r.fail(p.key, f"port label {p.label!r} is defined twice")
        labels[p.label] = p
    main = [t for t in tasks if t.hook not in ("prestart", "poststop")]
    taken = {p.to or p.static for p in ports} - {None}
    next_dynamic = DYNAMIC_PORT_BASE
    names: set[str] = set()
    for p in ports:
        owner = next((t for t in tasks if t.name == p.task), None) or next(
            (t for t in main if p.label in t.port_labels), None) or (main[0] if main else None)
        mapped = owner.port_map.get(p.label) if owner is not None else None
        if w.host_network:
            if p.to is not None and p.static is not None and p.to != p.static:
                r.warn(f"{p.key}.to", "with host networking the container listens on the static port; `to` ignored")
            number = p.static
        else:
            number = p.to or mapped or p.static
        if number is None:
            while next_dynamic in taken:
                next_dynamic += 1
            number = next_dynamic
            taken.add(number)
            r.warn(p.key, f"a dynamic port has no fixed number in Nomad; skiff uses container port {number} "
                          f"(announced in NOMAD_PORT_{p.label}), reachable through the Service, not on the node")
        p.container_port = number
        p.name = _port_name(p.label, names)
        names.add(p.name)
        if owner is None:
            continue
        owner.container.ports.append(Port(container_port=number, name=p.name, host_port=p.static))
    for t in tasks:
        for lbl in t.port_labels:
            if lbl not in labels:
                r.fail(f"{t.key}.config.ports", f"port label {lbl!r} is not defined in the group's network block")
        for lbl in t.port_map:
            if lbl not in labels:
                r.fail(f"{t.key}.config.port_map.{lbl}", f"port label {lbl!r} is not defined in a network block")


def _port_name(label: str, taken: set[str]) -> str:
    """The label as an IANA service name (≤15 chars, lowercase, '-'); hashed when it does not fit."""
    name = label.lower().replace("_", "-")
    if not validation.port_name(name) and name not in taken:
        return name
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()
    base = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:6].strip("-")
    candidate = f"{base}-{digest[:8]}" if base and re.search("[a-z]", base) else f"p{digest[:10]}"
    return candidate


def _group_volumes(r: _Reader, g: dict[str, Any], gk: str) -> dict[str, Volume]:
    out: dict[str, Volume] = {}
    for label, blk, vk in r.blocks(g, "volume", f"{gk}.volume", labels=1):
        v = blk.body
        r.known_keys(v, vk, {"type", "source", "read_only"}, {
            "access_mode": "the PersistentVolumeClaim's access mode decides", "attachment_mode":
            "the PersistentVolumeClaim decides", "mount_options": "mount options are not supported",
            "per_alloc": "one claim is shared by all pods", "sticky": "ignored"})
        vtype = r.string(v, "type", f"{vk}.type") or "host"
        source = r.string(v, "source", f"{vk}.source")
        if not source:
            r.fail(f"{vk}.source", "required")
        r.boolean(v, "read_only", f"{vk}.read_only")
        name = dns_label(f"vol-{label}")
        if vtype == "host":
            host_path = f"{HOST_VOLUME_ROOT}/{dns_label(source)}"
            r.warn(f"{vk}.source", f"Nomad host volume {source!r} is a path configured on each client; skiff "
                                   f"mounts the hostPath {host_path} of whichever node runs the pod")
            out[label] = Volume(name=name, kind="hostPath", ref=host_path)
        elif vtype == "csi":
            claim = dns_label(source)
            r.warn(f"{vk}.source", f"a CSI volume becomes the PersistentVolumeClaim {claim!r}, which must exist")
            out[label] = Volume(name=name, kind="pvc", ref=claim)
        else:
            r.fail(f"{vk}.type", f"{vtype!r} is not one of host, csi")
    return out


# --- task --------------------------------------------------------------------------------------------

_TASK_UNSUPPORTED = {
    "artifact": "skiff does not download artifacts into the task; build them into the image",
    "kill_signal": "Kubernetes stops containers with SIGTERM (or the image's STOPSIGNAL)",
    "leader": "Kubernetes has no leader task; other containers keep running when this one exits",
    "logs": "container logs follow the node's log rotation",
    "vault": "skiff has no Vault integration",
    "dispatch_payload": "there is no dispatch payload in skiff",
    "identity": "skiff has no workload identities for Nomad/Consul/Vault",
    "csi_plugin": "skiff does not run CSI plugins from jobs",
    "scaling": "skiff has no Nomad autoscaler policies",
    "shutdown_delay": "Kubernetes has no delay between deregistration and stop; ignored",
    "kind": "Consul Connect task kinds are not supported",
    "consul": "skiff has no Consul integration",
    "action": "Nomad actions are not supported; use kubectl exec",
    "schedule": "task schedules are not supported",
}
_DOCKER_UNSUPPORTED = {
    "auth": "registry credentials come from imagePullSecrets",
    "force_pull": "skiff pulls by the image's pull policy",
    "dns_servers": "pods use the cluster DNS", "dns_search_domains": "pods use the cluster DNS",
    "dns_options": "pods use the cluster DNS", "extra_hosts": "use hostAliases",
    "hostname": "the pod hostname is the pod name", "labels": "container labels are not supported",
    "logging": "container logs follow the node's log rotation", "load": "images are pulled, not loaded",
    "ipc_mode": "not supported", "pid_mode": "not supported", "uts_mode": "not supported",
    "ulimit": "not supported", "sysctl": "not supported", "shm_size": "not supported",
    "security_opt": "not supported", "devices": "not supported", "storage_opt": "not supported",
    "image_pull_timeout": "not supported", "interactive": "not supported", "tty": "not supported",
    "ipv4_address": "pods use the cluster network", "ipv6_address": "pods use the cluster network",
    "mac_address": "pods use the cluster network", "advertise_ipv6_address": "pods use the cluster network",
    "network_aliases": "pods use the cluster network", "oom_score_adj": "not supported",
    "pids_limit": "not supported", "cpu_hard_limit": "not supported", "cpu_cfs_period": "not supported",
    "runtime": "not supported", "userns_mode": "not supported", "volume_driver": "not supported",
    "isolation": "not supported", "healthchecks": "image HEALTHCHECKs are not run",
    "group_add": "not supported", "cgroupns": "not supported", "init": "not supported",
}
_HONOURED_DOCKER = {"image", "args", "command", "entrypoint", "ports", "port_map", "volumes", "work_dir",
                    "working_dir", "privileged", "cap_add", "cap_drop", "readonly_rootfs", "network_mode", "mount"}


def _task(r: _Reader, job: _JobCtx, w: NomadWorkload, gname: str, tname: str, t: dict[str, Any], tk: str,
          ports: list[_PortDef], volumes: dict[str, Volume], meta_out: dict[str, str]) -> tuple[_TaskOut, list[Obj]]:
    r.known_keys(t, tk, {"driver", "config", "env", "user", "resources", "service", "template", "kill_timeout",
                         "lifecycle", "meta", "constraint", "affinity", "restart", "volume_mount"}, _TASK_UNSUPPORTED,
                 {"leader": False, "kill_signal": "SIGTERM", "logs": _LOGS_DEFAULTS})
    driver = r.string(t, "driver", f"{tk}.driver")
    if not driver:
        r.fail(f"{tk}.driver", "required")
    c = Container(name=tname, image="")
    found = r.block(t, "config", f"{tk}.config")
    cfg, ck = found if found is not None else ({}, f"{tk}.config")
    port_labels: list[str] = []
    port_map: dict[str, int] = {}
    if driver in ("docker", "podman"):
        port_labels, port_map = _docker(r, cfg, ck, c, w)
    elif driver in ("exec", "raw_exec", "exec2"):
        _exec(r, driver, cfg, ck, c)
    else:
        r.fail(f"{tk}.driver", f"driver {driver!r} is not supported: skiff runs docker (or podman), exec and "
                               "raw_exec tasks")
    c.env.update(r.mapping(t, "env", f"{tk}.env"))
    for ek in c.env:
        if validation.env_var_name(ek):
            r.fail(f"{tk}.env.{ek}", "not a valid environment variable name")
    user = r.string(t, "user", f"{tk}.user")
    if user:
        m = re.fullmatch(r"(\d{1,9})(?::(\d{1,9}))?", user)
        if m:
            c.run_as_user = int(m.group(1))
            c.run_as_group = int(m.group(2)) if m.group(2) else None
        else:
            r.warn(f"{tk}.user", f"Kubernetes needs a numeric uid; user {user!r} is left to the image")
    _resources(r, t, tk, c, ports, tname)
    kill = r.duration(t, "kill_timeout", f"{tk}.kill_timeout")
    if kill is not None:
        c.stop_grace_seconds = _ceil_seconds(r, kill, f"{tk}.kill_timeout")
    for mk, mv in _meta(r, t, tk).items():
        if mk in meta_out and meta_out[mk] != mv:
            r.warn(f"{tk}.meta.{mk}", "tasks of one group share the pod's annotations; another task's value wins")
        meta_out.setdefault(mk, mv)
    hook = _lifecycle(r, t, tk)
    for _, blk, vk in r.blocks(t, "volume_mount", f"{tk}.volume_mount"):
        vm = blk.body
        r.known_keys(vm, vk, {"volume", "destination", "read_only"},
                     {"propagation_mode": "not supported", "selinux_label": "not supported"})
        vol = r.string(vm, "volume", f"{vk}.volume")
        dest = r.string(vm, "destination", f"{vk}.destination")
        if not vol or vol not in volumes:
            r.fail(f"{vk}.volume", f"{vol!r} is not a volume of the group")
        if not dest:
            r.fail(f"{vk}.destination", "required")
        ro = bool(r.boolean(vm, "read_only", f"{vk}.read_only"))
        c.mounts.append(Mount(source=volumes[vol].name, path=_task_path(dest), read_only=ro))
    out = _TaskOut(tname, tk, c, hook, port_labels, port_map, t)
    for _, blk, sk in r.blocks(t, "service", f"{tk}.service"):
        out.checks.append((blk.body, sk))
    cms = _templates(r, job, w, tname, t, tk, c)
    return out, cms


def _lifecycle(r: _Reader, t: dict[str, Any], tk: str) -> str:
    found = r.block(t, "lifecycle", f"{tk}.lifecycle")
    if found is None:
        return ""
    lc, lk = found
    r.known_keys(lc, lk, {"hook", "sidecar"}, {})
    hook = r.string(lc, "hook", f"{lk}.hook")
    sidecar = bool(r.boolean(lc, "sidecar", f"{lk}.sidecar"))
    if hook == "prestart":
        if sidecar:
            r.warn(lk, "a prestart sidecar becomes a regular container: it starts alongside the main tasks, "
                       "not before them")
            return "prestart-sidecar"
        return "prestart"
    if hook == "poststart":
        r.warn(lk, "a poststart task becomes a regular container: it starts alongside the main tasks, not after")
        return "poststart"
    if hook == "poststop":
        r.warn(lk, "Kubernetes cannot run a container after the others stop: the poststop task is not rendered")
        return "poststop"
    r.fail(f"{lk}.hook", f"{hook!r} is not one of prestart, poststart, poststop")


def _task_path(dest: str) -> str:
    """A Nomad task path as a container path: NOMAD_*_DIR and relative paths live in the task directory."""
    for var, root in (("${NOMAD_TASK_DIR}", "/local"), ("${NOMAD_SECRETS_DIR}", "/secrets"),
                      ("${NOMAD_ALLOC_DIR}", "/alloc")):
        if dest.startswith(var):
            dest = root + dest[len(var):]
    if not dest.startswith("/"):
        dest = "/" + dest.removeprefix("./")
    return dest


def _docker(r: _Reader, cfg: dict[str, Any], ck: str, c: Container, w: NomadWorkload) -> tuple[list[str], dict[str, int]]:
    r.known_keys(cfg, ck, _HONOURED_DOCKER, {k: f"docker option {k}: {v}" for k, v in _DOCKER_UNSUPPORTED.items()})
    image = r.string(cfg, "image", f"{ck}.image")
    if not image or any(ch.isspace() for ch in image):
        r.fail(f"{ck}.image", "required: the image to run")
    c.image = image
    entry = r.strings(cfg, "entrypoint", f"{ck}.entrypoint")
    command = r.string(cfg, "command", f"{ck}.command")
    args = r.strings(cfg, "args", f"{ck}.args")
    if entry is not None:
        c.command = entry
    if command is not None:
        c.args = [command, *(args or [])]
    elif args is not None:
        c.args = args
    work_dir = r.string(cfg, "work_dir", f"{ck}.work_dir") or r.string(cfg, "working_dir", f"{ck}.working_dir")
    if work_dir:
        c.working_dir = work_dir
    c.privileged = bool(r.boolean(cfg, "privileged", f"{ck}.privileged"))
    c.read_only_root_filesystem = bool(r.boolean(cfg, "readonly_rootfs", f"{ck}.readonly_rootfs"))
    c.cap_add = [x.upper().removeprefix("CAP_") for x in r.strings(cfg, "cap_add", f"{ck}.cap_add") or []]
    c.cap_drop = [x.upper().removeprefix("CAP_") for x in r.strings(cfg, "cap_drop", f"{ck}.cap_drop") or []]
    net_mode = r.string(cfg, "network_mode", f"{ck}.network_mode")
    if net_mode == "host":
        w.host_network = True
    elif net_mode not in (None, "", "bridge", "default"):
        r.warn(f"{ck}.network_mode", f"network mode {net_mode!r} is not supported: pods use the cluster network")
    labels = r.strings(cfg, "ports", f"{ck}.ports") or []
    port_map: dict[str, int] = {}
    for k, v in r.mapping(cfg, "port_map", f"{ck}.port_map").items():
        if not v.isdigit() or not 1 <= int(v) <= 65535:
            r.fail(f"{ck}.port_map.{k}", f"{v!r} is not a port number")
        port_map[k] = int(v)
    for i, spec in enumerate(r.strings(cfg, "volumes", f"{ck}.volumes") or []):
        _docker_volume(r, spec, f"{ck}.volumes[{i}]", c, w)
    for _, blk, mk in r.blocks(cfg, "mount", f"{ck}.mount"):
        _docker_mount(r, blk.body, mk, c, w)
    return labels, port_map


def _add_volume(w: NomadWorkload, v: Volume) -> None:
    if all(x.name != v.name for x in w.volumes):
        w.volumes.append(v)


def _docker_volume(r: _Reader, spec: str, key: str, c: Container, w: NomadWorkload) -> None:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        r.fail(key, f"{spec!r} is not host_path:container_path[:ro|rw]")
    src, dest = parts[0], parts[1]
    ro = len(parts) == 3 and "ro" in parts[2].split(",")
    if src.startswith("/"):
        v = Volume(name=dns_label(f"host-{src}"), kind="hostPath", ref=src)
    else:
        v = Volume(name=dns_label(f"task-{src}"), kind="emptyDir")
        r.warn(key, f"{src!r} is a path in Nomad's task directory; skiff mounts an empty directory shared by the pod")
    _add_volume(w, v)
    c.mounts.append(Mount(source=v.name, path=dest, read_only=ro))


def _docker_mount(r: _Reader, m: dict[str, Any], mk: str, c: Container, w: NomadWorkload) -> None:
    r.known_keys(m, mk, {"type", "source", "target", "readonly", "tmpfs_options"},
                 {"bind_options": "not supported", "volume_options": "not supported"})
    mtype = r.string(m, "type", f"{mk}.type") or "volume"
    target = r.string(m, "target", f"{mk}.target")
    if not target or not target.startswith("/"):
        r.fail(f"{mk}.target", "required: an absolute container path")
    ro = bool(r.boolean(m, "readonly", f"{mk}.readonly"))
    source = r.string(m, "source", f"{mk}.source") or ""
    if mtype == "bind":
        if not source:
            r.fail(f"{mk}.source", "required for a bind mount")
        if source.startswith("/"):
            v = Volume(name=dns_label(f"host-{source}"), kind="hostPath", ref=source)
        else:
            v = Volume(name=dns_label(f"task-{source}"), kind="emptyDir")
            r.warn(f"{mk}.source", f"{source!r} is a path in Nomad's task directory; skiff mounts an empty "
                                   "directory shared by the pod")
    elif mtype == "tmpfs":
        size = ""
        opts = r.block(m, "tmpfs_options", f"{mk}.tmpfs_options")
        if opts is not None:
            r.known_keys(opts[0], opts[1], {"size"}, {"mode": "not supported"})
            n = r.integer(opts[0], "size", f"{opts[1]}.size", 0, 2**62)
            size = str(n) if n else ""
        v = Volume(name=dns_label(f"tmpfs-{target}"), kind="memory", size_limit=size)
    elif mtype == "volume":
        v = Volume(name=dns_label(f"docker-{source or target}"), kind="emptyDir")
        r.warn(mk, "docker named volumes become an emptyDir that lives as long as the pod")
    else:
        r.fail(f"{mk}.type", f"{mtype!r} is not one of bind, volume, tmpfs")
    _add_volume(w, v)
    c.mounts.append(Mount(source=v.name, path=target, read_only=ro))


def _exec(r: _Reader, driver: str, cfg: dict[str, Any], ck: str, c: Container) -> None:
    r.known_keys(cfg, ck, {"command", "args"}, {
        "pid_mode": "not supported", "ipc_mode": "not supported", "cap_add": "not supported",
        "cap_drop": "not supported", "work_dir": "not supported", "cgroup_v2_override": "not supported",
        "cgroup_v1_override": "not supported"})
    command = r.string(cfg, "command", f"{ck}.command")
    if not command:
        r.fail(f"{ck}.command", "required: the command to run")
    c.image = EXEC_IMAGE
    c.command = [command]
    c.args = r.strings(cfg, "args", f"{ck}.args")
    how = "on the host without isolation" if driver == "raw_exec" else "with the host's binaries"
    r.warn(ck, f"Nomad's {driver} driver runs the command {how}; skiff runs it in the image {EXEC_IMAGE}, "
               "which has a shell and coreutils only")


def _resources(r: _Reader, t: dict[str, Any], tk: str, c: Container, ports: list[_PortDef], tname: str) -> None:
    found = r.block(t, "resources", f"{tk}.resources")
    res, rk = found if found is not None else ({}, f"{tk}.resources")
    r.known_keys(res, rk, {"cpu", "cores", "memory", "memory_max", "network"}, {
        "disk": "use the group's ephemeral_disk", "iops": "skiff does not reserve disk IO",
        "device": "skiff does not schedule devices", "numa": "skiff does not pin NUMA nodes",
        "secrets": "the secrets directory is not sized"})
    cpu = r.integer(res, "cpu", f"{rk}.cpu", 1, 10**7)
    cores = r.integer(res, "cores", f"{rk}.cores", 1, 10**4)
    if cpu is not None and cores is not None:
        r.fail(rk, "cpu and cores cannot both be set")
    if cores is not None:
        c.cpu_request = c.cpu_limit = str(cores)
    else:
        c.cpu_request = f"{DEFAULT_CPU_MHZ if cpu is None else cpu}m"
    memory = r.integer(res, "memory", f"{rk}.memory", 10, 10**8)
    memory_max = r.integer(res, "memory_max", f"{rk}.memory_max", 10, 10**8)
    mem = DEFAULT_MEMORY_MB if memory is None else memory
    if memory_max is not None and memory_max < mem:
        r.fail(f"{rk}.memory_max", f"must be at least memory ({mem})")
    c.memory_request = f"{mem}Mi"
    c.memory_limit = f"{memory_max or mem}Mi"
    for _, blk, nk in r.blocks(res, "network", f"{rk}.network"):
        ports.extend(_network_ports(r, blk.body, nk, tname))


def _runtime_env(r: _Reader, t: _TaskOut, nomad_env: dict[str, str]) -> None:
    """Prepend Nomad's task variables and turn `${NOMAD_X}` into Kubernetes' `$(NOMAD_X)` where known."""
    c = t.container

    def fix(s: str, key: str) -> str:
        def sub(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr in nomad_env:
                return f"$({expr})"
            if m.group(0) in ("${NOMAD_TASK_DIR}", "${NOMAD_SECRETS_DIR}", "${NOMAD_ALLOC_DIR}"):
                return _task_path(m.group(0))
            r.warn(key, f"Nomad runtime interpolation ${{{expr}}} has no value in skiff; left as written")
            return m.group(0)

        return re.sub(r"\$\{([^}]*)\}", sub, s)

    user_env = {k: fix(v, f"{t.key}.env.{k}") for k, v in c.env.items()}
    c.env = {**{k: v for k, v in nomad_env.items() if k not in user_env}, **user_env}
    if c.command is not None:
        c.command = [fix(a, f"{t.key}.config") for a in c.command]
    if c.args is not None:
        c.args = [fix(a, f"{t.key}.config.args") for a in c.args]


# --- templates ---------------------------------------------------------------------------------------


def _templates(r: _Reader, job: _JobCtx, w: NomadWorkload, tname: str, t: dict[str, Any], tk: str,
               c: Container) -> list[Obj]:
    out: list[Obj] = []
    for i, (_, blk, tpk) in enumerate(r.blocks(t, "template", f"{tk}.template")):
        tp = blk.body
        r.known_keys(tp, tpk, {"data", "destination", "perms", "change_mode", "left_delimiter", "right_delimiter",
                               "env", "source"},
                     {"change_signal": "a changed template restarts the pod; no signal is sent",
                      "change_script": "a changed template restarts the pod; no script is run", "splay": "ignored", "uid": "file owner is root",
                      "gid": "file owner is root", "wait": "ignored", "vault_grace": "ignored",
                      "error_on_missing_key": "templates are not evaluated", "once": "ignored"})
        data = r.string(tp, "data", f"{tpk}.data")
        source = r.string(tp, "source", f"{tpk}.source")
        dest = r.string(tp, "destination", f"{tpk}.destination")
        as_env = bool(r.boolean(tp, "env", f"{tpk}.env"))
        if not dest:
            r.fail(f"{tpk}.destination", "required")
        if data is None:
            if source is not None:
                r.warn(f"{tpk}.source", "skiff does not read files from the client: only inline `data` templates "
                                        "are rendered; this file is not created")
                continue
            r.fail(tpk, "a template needs data or source")
        if source is not None:
            r.warn(f"{tpk}.source", "data is set: source is ignored, as in Nomad")
        left = r.string(tp, "left_delimiter", f"{tpk}.left_delimiter") or "{{"
        right = r.string(tp, "right_delimiter", f"{tpk}.right_delimiter") or "}}"
        dynamic = left in data and right in data.split(left, 1)[1]
        if dynamic:
            r.warn(f"{tpk}.data", "Consul template actions are not evaluated: the file holds the template text "
                                  "as written" if not as_env else
                                  "Consul template actions are not evaluated: lines with them are left out")
        change = r.string(tp, "change_mode", f"{tpk}.change_mode")
        if change not in (None, "restart"):
            r.warn(f"{tpk}.change_mode", "a changed template restarts the pod (the ConfigMap is named after its "
                                         f"content); change_mode {change!r} is not applied")
        if as_env:
            for ln, line in enumerate(data.splitlines()):
                s = line.strip()
                if not s or s.startswith("#") or left in s:
                    continue
                k, sep, v = s.partition("=")
                k = k.strip().removeprefix("export ").strip()
                if not sep or validation.env_var_name(k):
                    r.fail(f"{tpk}.data", f"line {ln + 1}: not KEY=VALUE")
                c.env.setdefault(k, v.strip().strip('"'))
            continue
        mode = None
        perms = r.string(tp, "perms", f"{tpk}.perms")
        if perms is not None:
            if not re.fullmatch(r"0?[0-7]{3}", perms):
                r.fail(f"{tpk}.perms", f"{perms!r} is not an octal file mode such as \"644\"")
            mode = int(perms, 8)
        path = _task_path(dest)
        fname = path.rstrip("/").rsplit("/", 1)[-1]
        fkey = fname if fname and len(fname) <= 253 and re.fullmatch(r"[-._a-zA-Z0-9]+", fname) and fname not in (
            ".", "..") else "file"
        digest = hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cm_name = dns_label(f"{w.name}-{tname}-tpl{i}-{digest}", 253)
        cm_name = cm_name if len(cm_name) <= 63 else dns_label(cm_name)
        vol = Volume(name=dns_label(f"tpl-{tname}-{i}"), kind="configMap", ref=cm_name, items=[(fkey, fkey, mode)])
        w.volumes.append(vol)
        c.mounts.append(Mount(source=vol.name, path=path, read_only=True, sub_path=fkey))
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": cm_name, "namespace": w.namespace,
                                 "labels": {LABEL_NOMAD_JOB: job.label, LABEL_WORKLOAD: w.name}},
                    "data": {fkey: data}})
    return out


# --- services and checks -----------------------------------------------------------------------------


def _services(r: _Reader, job: _JobCtx, w: NomadWorkload, gname: str, g: dict[str, Any], gk: str,
              ports: list[_PortDef], tasks: list[_TaskOut]) -> None:
    by_label = {p.label: p for p in ports}
    stanzas: list[tuple[dict[str, Any], str, _TaskOut | None]] = [
        (blk.body, sk, None) for _, blk, sk in r.blocks(g, "service", f"{gk}.service")]
    for t in tasks:
        stanzas.extend((body, sk, t) for body, sk in t.checks)
        t.checks = []
    main = [t for t in tasks if t.hook not in ("prestart", "poststop")]
    specs: dict[str, ServiceSpec] = {}
    for s, sk, task in stanzas:
        r.known_keys(s, sk, {"name", "port", "tags", "check", "check_restart", "provider", "task"}, {
            "canary_tags": "skiff has no canaries", "canary_meta": "skiff has no canaries",
            "enable_tag_override": "tags are only annotations", "address_mode": "Services route to pod addresses",
            "connect": "skiff has no Consul Connect service mesh", "meta": "service metadata is not copied",
            "tagged_addresses": "not supported", "on_update": "ignored", "address": "Services route to pod addresses",
            "identity": "not supported", "cluster": "not supported", "kind": "not supported",
            "weights": "not supported"}, {"address_mode": "auto", "on_update": "require_healthy",
                                          "enable_tag_override": False})
        default_name = f"{job.name}-{gname}" + (f"-{task.name}" if task else "")
        raw_name = r.string(s, "name", f"{sk}.name") or default_name
        raw_name = raw_name.replace("${NOMAD_JOB_NAME}", job.name).replace("${NOMAD_GROUP_NAME}", gname).replace(
            "${NOMAD_TASK_NAME}", task.name if task else "").replace("${JOB}", job.name).replace(
            "${TASKGROUP}", gname).replace("${TASK}", task.name if task else "")
        sname = dns_label(raw_name, start_with_letter=True)
        if sname != raw_name:
            r.warn(f"{sk}.name", f"Kubernetes Service names are DNS-1035 labels: {raw_name!r} becomes {sname!r}")
        owner: _TaskOut | None = task
        stask = r.string(s, "task", f"{sk}.task")
        if stask:
            owner = next((t for t in tasks if t.name == stask), None)
            if owner is None:
                r.fail(f"{sk}.task", f"no task named {stask!r} in the group")
        port_ref = r.value(s, "port", f"{sk}.port")
        port: Port | None = None
        pdef: _PortDef | None = None
        if port_ref is not None:
            pdef, port = _service_port(r, port_ref, f"{sk}.port", by_label)
        if owner is None:
            owner = next((t for t in main if pdef is not None and
                          any(p.name == pdef.name for p in t.container.ports)), None) or (main[0] if main else None)
        spec = specs.setdefault(sname, ServiceSpec(sname, [], []))
        if port is not None and all(p.name != port.name for p in spec.ports):
            spec.ports.append(port)
        for tag in r.strings(s, "tags", f"{sk}.tags") or []:
            if tag not in spec.tags:
                spec.tags.append(tag)
        svc_restart = _check_restart(r, s, sk)
        for _, cblk, chk_key in r.blocks(s, "check", f"{sk}.check"):
            target = owner
            ctask = r.string(cblk.body, "task", f"{chk_key}.task")
            if ctask:
                target = next((t for t in tasks if t.name == ctask), None)
                if target is None:
                    r.fail(f"{chk_key}.task", f"no task named {ctask!r} in the group")
            if target is None:
                continue
            if target.hook == "prestart":
                r.warn(chk_key, "a prestart task is an init container, which Kubernetes does not probe; "
                                "the check is not applied")
                continue
            _check(r, cblk.body, chk_key, target, port_ref, by_label, svc_restart)
    w.services = list(specs.values())
    if w.services:
        w.endpoint_mode = "vip"
        w.service_name = w.services[0].name


def _service_port(r: _Reader, ref: Any, key: str, by_label: dict[str, _PortDef]) -> tuple[_PortDef | None, Port]:
    if isinstance(ref, str) and ref in by_label:
        p = by_label[ref]
        return p, Port(container_port=p.container_port, name=p.name)
    number = ref if isinstance(ref, int) and not isinstance(ref, bool) else (
        int(ref) if isinstance(ref, str) and ref.isdigit() else None)
    if number is None or not 1 <= number <= 65535:
        r.fail(key, f"{ref!r} is neither a port label of the group nor a port number")
    return None, Port(container_port=number, name=f"tcp-{number}")


def _check_restart(r: _Reader, body: dict[str, Any], key: str) -> tuple[int, float] | None:
    found = r.block(body, "check_restart", f"{key}.check_restart")
    if found is None:
        return None
    cr, crk = found
    r.known_keys(cr, crk, {"limit", "grace", "ignore_warnings"}, {})
    limit = r.integer(cr, "limit", f"{crk}.limit", 0, 10**6) or 0
    grace = r.duration(cr, "grace", f"{crk}.grace")
    r.boolean(cr, "ignore_warnings", f"{crk}.ignore_warnings")
    if limit == 0:
        return None  # Nomad: a limit of 0 disables restarts
    return limit, (1.0 if grace is None else grace)


def _check(r: _Reader, c: dict[str, Any], ck: str, t: _TaskOut, svc_port: Any, by_label: dict[str, _PortDef],
           svc_restart: tuple[int, float] | None) -> None:
    r.known_keys(c, ck, {"type", "name", "path", "protocol", "port", "interval", "timeout", "command", "args",
                         "task", "check_restart", "tls_skip_verify", "failures_before_critical", "grpc_service",
                         "notes"}, {
        "method": "Kubernetes HTTP probes use GET", "header": "probe headers are not supported",
        "body": "probe bodies are not supported", "tls_server_name": "not supported",
        "grpc_use_tls": "Kubernetes gRPC probes are plaintext", "initial_status": "pods start not ready",
        "success_before_passing": "one success marks a pod ready",
        "failures_before_warning": "Kubernetes has no warning state", "address_mode": "probes reach the pod",
        "expose": "not supported", "on_update": "ignored"},
        {"address_mode": "host", "on_update": "require_healthy", "method": "GET", "grpc_use_tls": False,
         "tls_skip_verify": False, "expose": False, "success_before_passing": 0, "failures_before_warning": 0})
    ctype = r.string(c, "type", f"{ck}.type")
    if ctype == "ttl":
        r.warn(ck, "a TTL check is pushed by the application to Consul; there is no Kubernetes probe for it")
        return
    if ctype not in ("http", "tcp", "script", "grpc"):
        r.fail(f"{ck}.type", f"{ctype!r} is not one of http, tcp, script, grpc, ttl")
    interval = r.duration(c, "interval", f"{ck}.interval")
    timeout = r.duration(c, "timeout", f"{ck}.timeout")
    if interval is None or interval <= 0:
        r.fail(f"{ck}.interval", "required: a positive duration")
    if timeout is None or timeout <= 0:
        r.fail(f"{ck}.timeout", "required: a positive duration")
    period = _ceil_seconds(r, interval, f"{ck}.interval", 1)
    tmo = _ceil_seconds(r, timeout, f"{ck}.timeout", 1)
    failures = (r.integer(c, "failures_before_critical", f"{ck}.failures_before_critical", 0, 10**6) or 0) + 1
    kind: Literal["http", "tcp", "exec", "grpc"] = "exec" if ctype == "script" else ctype  # type: ignore[assignment]
    chk = Check(kind=kind, period_seconds=period, timeout_seconds=tmo, failure_threshold=failures,
                liveness=False, readiness=True)
    if ctype == "script":
        command = r.string(c, "command", f"{ck}.command")
        if not command:
            r.fail(f"{ck}.command", "required for a script check")
        chk.command = [command, *(r.strings(c, "args", f"{ck}.args") or [])]
    else:
        ref = r.value(c, "port", f"{ck}.port")
        ref = svc_port if ref is None else ref
        if ref is None:
            r.fail(f"{ck}.port", f"a {ctype} check needs a port (on the check or its service)")
        _, port = _service_port(r, ref, f"{ck}.port", by_label)
        chk.port = port.container_port  # a number: a named port resolves only in its own container
        if ctype == "http":
            chk.path = r.string(c, "path", f"{ck}.path") or "/"
            if not chk.path.startswith("/"):
                chk.path = "/" + chk.path
            proto = r.string(c, "protocol", f"{ck}.protocol") or "http"
            if proto not in ("http", "https"):
                r.fail(f"{ck}.protocol", f"{proto!r} is not one of http, https")
            chk.scheme = "HTTPS" if proto == "https" else "HTTP"
        if ctype == "grpc" and r.string(c, "grpc_service", f"{ck}.grpc_service"):
            r.warn(f"{ck}.grpc_service", "skiff's gRPC probes check the server's overall health, not one service")
    restart = _check_restart(r, c, ck) or svc_restart
    if any(x.readiness for x in t.container.checks):
        r.warn(ck, "Kubernetes runs one readiness probe per container: only the task's first check is its probe")
    if restart is not None and any(x.liveness for x in t.container.checks):
        r.warn(f"{ck}.check_restart", "Kubernetes runs one liveness probe per container: only the task's first "
                                      "check_restart applies")
    t.container.checks.append(chk)
    if restart is not None:
        limit, grace = restart
        live = Check(kind=chk.kind, port=chk.port, path=chk.path, scheme=chk.scheme, command=list(chk.command),
                     initial_delay_seconds=_ceil_seconds(r, grace, f"{ck}.check_restart.grace"),
                     period_seconds=period, timeout_seconds=tmo, failure_threshold=limit,
                     liveness=True, readiness=False)
        t.container.checks.append(live)


# --- restart, update, placement, disk ----------------------------------------------------------------


def _restart(r: _Reader, jtype: str, g: dict[str, Any], gk: str, tasks: list[_TaskOut], w: NomadWorkload) -> None:
    defaults = _RESTART_DEFAULTS[jtype]
    values = dict(defaults)
    keys: dict[str, str] = {}
    sources = [(g, gk)] + [(t.body, t.key) for t in tasks]
    for body, key in sources:
        found = r.block(body, "restart", f"{key}.restart")
        if found is None:
            continue
        rb, rk = found
        r.known_keys(rb, rk, {"attempts", "interval", "delay", "mode"},
                     {"render_templates": "templates are rendered once, at deploy time"})
        for k in ("interval", "delay"):
            d = r.duration(rb, k, f"{rk}.{k}")
            if d is not None:
                values[k], keys[k] = d, f"{rk}.{k}"
        a = r.integer(rb, "attempts", f"{rk}.attempts", 0, _MAX_INT)
        if a is not None:
            values["attempts"], keys["attempts"] = a, f"{rk}.attempts"
        m = r.string(rb, "mode", f"{rk}.mode")
        if m is not None:
            if m not in ("fail", "delay"):
                r.fail(f"{rk}.mode", f"{m!r} is not one of fail, delay")
            values["mode"], keys["mode"] = m, f"{rk}.mode"
    if jtype in ("batch", "sysbatch"):
        w.restart = Restart(policy="OnFailure", max_attempts=int(values["attempts"]))
        for k in ("interval", "delay"):
            if k in keys and values[k] != defaults[k]:
                r.warn(keys[k], "Kubernetes retries a failed Job pod with its own exponential backoff (10s doubling "
                                "to 6m); not applied")
        if values["mode"] == "delay":
            r.warn(keys["mode"], "mode delay retries forever; skiff's Job fails after `attempts` retries "
                                 "(backoffLimit)")
        return
    w.restart = Restart(policy="Always")
    for k, key in keys.items():
        if values[k] != defaults[k]:
            r.warn(key, "Kubernetes restarts a failed container in place forever with exponential backoff (10s "
                        "doubling to 5m); not applied")


def _update(r: _Reader, job: _JobCtx, g: dict[str, Any], gk: str, w: NomadWorkload) -> Update:
    raw = {**job.update, **_update_raw(r, g, gk)}  # group keys override the job's, key by key
    u = Update(order="stop-first")
    if not raw:
        return u
    if w.mode == "batch":
        for k, (v, key) in raw.items():
            if v != _UPDATE_DEFAULTS.get(k):
                r.warn(key, "batch jobs are not updated in place; ignored")
        return u

    def get(k: str, default: Any) -> Any:
        return raw[k][0] if k in raw else default

    u.parallelism = int(get("max_parallel", 1))
    min_healthy = get("min_healthy_time", 10.0)
    if "min_healthy_time" in raw:
        u.monitor_seconds = _ceil_seconds(r, min_healthy, raw["min_healthy_time"][1])
    if "progress_deadline" in raw and get("progress_deadline", 600.0) > 0:
        u.progress_deadline_seconds = _ceil_seconds(r, get("progress_deadline", 600.0), raw["progress_deadline"][1])
    if "healthy_deadline" in raw and get("healthy_deadline", 300.0) != 300.0:
        r.warn(raw["healthy_deadline"][1], "skiff has no per-pod health deadline; the rollout's deadline is "
                                           "progress_deadline (progressDeadlineSeconds)")
    if "stagger" in raw:
        stagger = get("stagger", 30.0)
        u.delay_seconds = _ceil_seconds(r, stagger, raw["stagger"][1])
        if stagger != 30.0:
            r.warn(raw["stagger"][1], "Kubernetes rollouts have no delay between batches; not applied")
    if get("health_check", "checks") == "manual":
        r.warn(raw["health_check"][1], "skiff has no manual health marking; pods are healthy by their probes")
    if get("auto_revert", False):
        r.warn(raw["auto_revert"][1], "skiff does not roll back automatically; a stuck rollout is marked "
                                      "ProgressDeadlineExceeded: undo it with `kubectl rollout undo`")
    if get("canary", 0) > 0:
        r.warn(raw["canary"][1], "skiff has no canary deployments: a normal rolling update replaces the pods")
    if get("auto_promote", False):
        r.warn(raw["auto_promote"][1], "skiff has no canary deployments to promote")
    return u


_UPDATE_DEFAULTS: dict[str, Any] = {
    "max_parallel": 1, "health_check": "checks", "min_healthy_time": 10.0, "healthy_deadline": 300.0,
    "progress_deadline": 600.0, "auto_revert": False, "auto_promote": False, "canary": 0, "stagger": 30.0}
_OPERATORS = {"=": "In", "==": "In", "is": "In", "!=": "NotIn", "not": "NotIn"}


def _attribute_label(r: _Reader, attr: str, key: str) -> str | None:
    m = re.fullmatch(r"\$\{([^}]+)\}", attr.strip())
    if not m:
        r.warn(key, f"{attr!r} is not a ${{...}} node attribute; the rule is ignored")
        return None
    name = m.group(1).strip()
    if name in _ATTRIBUTE_LABELS:
        return _ATTRIBUTE_LABELS[name]
    mm = re.fullmatch(r"(?:node\.)?meta\.(.+)", name)
    if mm:
        label = mm.group(1)
        if validation.qualified_name(label):
            r.warn(key, f"node meta {label!r} is not a valid Kubernetes label key; the rule is ignored")
            return None
        return label
    r.warn(key, f"node attribute {name!r} has no Kubernetes node label in skiff; the rule is ignored")
    return None


def _alternatives(pattern: str) -> list[str] | None:
    """`^(a|b)$`-style patterns of literal words → their alternatives; None for real regular expressions."""
    p = pattern.strip()
    p = p.removeprefix("^").removesuffix("$")
    if p.startswith("(") and p.endswith(")"):
        p = p[1:-1]
    words = p.split("|")
    if all(re.fullmatch(r"[A-Za-z0-9_.-]+", x) and "." not in x for x in words):
        return words
    return None


def _rule(r: _Reader, body: dict[str, Any], key: str, w: NomadWorkload, soft: bool) -> NodeRule | None:
    """One constraint/affinity as a node rule; placement-wide operators are applied to `w` and return None."""
    attr = r.string(body, "attribute", f"{key}.attribute") or ""
    op = r.string(body, "operator", f"{key}.operator") or "="
    value = r.string(body, "value", f"{key}.value")
    if op == "distinct_hosts":
        if value not in (None, "true"):
            return None
        if soft:
            r.warn(key, "distinct_hosts is a constraint, not an affinity; ignored")
            return None
        w.placement.one_per_node = True
        return None
    if op == "distinct_property":
        if soft:
            r.warn(key, "distinct_property is a constraint, not an affinity; ignored")
            return None
        label = _attribute_label(r, attr, f"{key}.attribute")
        n = int(value) if value and value.isdigit() else 1
        if label == _HOSTNAME:
            if n <= 1:
                w.placement.one_per_node = True
            else:
                w.placement.max_per_node = n
        elif label is not None:
            r.warn(key, f"skiff can limit pods per node only; distinct_property on {attr!r} is ignored")
        return None
    label = _attribute_label(r, attr, f"{key}.attribute")
    if label is None:
        return None
    if op in _OPERATORS:
        if value is None:
            r.fail(f"{key}.value", f"required for operator {op!r}")
        return NodeRule(label, _OPERATORS[op], [value])  # type: ignore[arg-type]
    if op == "is_set":
        return NodeRule(label, "Exists")
    if op == "is_not_set":
        return NodeRule(label, "DoesNotExist")
    if op == "regexp":
        alts = _alternatives(value or "")
        if alts is None:
            r.warn(key, f"Kubernetes node rules match exact values; the regular expression {value!r} is ignored")
            return None
        return NodeRule(label, "In", alts)
    if op in ("set_contains", "set_contains_any", "set_contains_all"):
        items = [x.strip() for x in (value or "").split(",") if x.strip()]
        if not items:
            r.fail(f"{key}.value", f"required for operator {op!r}")
        if op == "set_contains_any" or len(items) == 1:
            return NodeRule(label, "In", items)
        r.warn(key, "a Kubernetes node label holds one value, not a set: set_contains with several values is "
                    "ignored")
        return None
    if op in ("<", "<=", ">", ">=", "version", "semver"):
        r.warn(key, f"operator {op!r} has no Kubernetes node-rule equivalent in skiff; the rule is ignored")
        return None
    r.fail(f"{key}.operator", f"{op!r} is not a Nomad constraint operator")


def _placement(r: _Reader, job: _JobCtx, g: dict[str, Any], gk: str, tasks: list[_TaskOut], w: NomadWorkload) -> None:
    levels = [*job.placement_blocks, (g, gk)] + [(t.body, t.key) for t in tasks]
    for body, key in levels:
        for _, blk, ck in r.blocks(body, "constraint", f"{key}.constraint"):
            r.known_keys(blk.body, ck, {"attribute", "operator", "value"}, {})
            rule = _rule(r, blk.body, ck, w, soft=False)
            if rule is not None:
                w.placement.required.append(rule)
        for _, blk, ak in r.blocks(body, "affinity", f"{key}.affinity"):
            r.known_keys(blk.body, ak, {"attribute", "operator", "value", "weight"}, {})
            weight = r.integer(blk.body, "weight", f"{ak}.weight", -100, 100)
            weight = 50 if weight is None else weight
            rule = _rule(r, blk.body, ak, w, soft=True)
            if rule is None or weight == 0:
                continue
            if weight < 0:
                inverse = {"In": "NotIn", "NotIn": "In", "Exists": "DoesNotExist", "DoesNotExist": "Exists"}
                rule = NodeRule(rule.key, inverse[rule.operator], rule.values)  # type: ignore[arg-type]
            w.affinities.append(Affinity(abs(weight), rule))
        for _, blk, sk in r.blocks(body, "spread", f"{key}.spread"):
            r.known_keys(blk.body, sk, {"attribute", "weight"}, {
                "target": "Kubernetes spreads evenly; target percentages are not applied"})
            r.integer(blk.body, "weight", f"{sk}.weight", 0, 100)
            attr = r.string(blk.body, "attribute", f"{sk}.attribute")
            if not attr:
                r.fail(f"{sk}.attribute", "required")
            label = _attribute_label(r, attr, f"{sk}.attribute")
            if label is not None:
                w.placement.spread_by.append(label)


def _ephemeral_disk(r: _Reader, g: dict[str, Any], gk: str, w: NomadWorkload) -> None:
    found = r.block(g, "ephemeral_disk", f"{gk}.ephemeral_disk")
    if found is None:
        return
    d, dk = found
    r.known_keys(d, dk, {"size", "sticky", "migrate"}, {})
    size = r.integer(d, "size", f"{dk}.size", 0, 10**9)
    if size is not None and size != DEFAULT_DISK_MB:
        w.ephemeral_storage = f"{size}Mi"
    for k in ("sticky", "migrate"):
        if r.boolean(d, k, f"{dk}.{k}"):
            r.warn(f"{dk}.{k}", "a pod's ephemeral storage does not outlive it; not applied")


# --- rendering ---------------------------------------------------------------------------------------


def render_group(w: NomadWorkload) -> list[Obj]:
    """`render_workload` plus what only Nomad has: Services per name, affinity, disk, CronJob, suspend."""
    objs = render_workload(w)
    controller = objs[0]
    pod = _pod_spec(controller)
    if w.affinities:
        prefs = [{"weight": a.weight, "preference": {"matchExpressions": [_expr(a.rule)]}} for a in w.affinities]
        pod.setdefault("affinity", {}).setdefault("nodeAffinity", {})[
            "preferredDuringSchedulingIgnoredDuringExecution"] = prefs
    if w.ephemeral_storage and pod.get("containers"):
        pod["containers"][0].setdefault("resources", {}).setdefault("requests", {})[
            "ephemeral-storage"] = w.ephemeral_storage
    services = _service_objects(w, [o for o in objs[1:] if o.get("kind") == "Service"])
    if controller["kind"] == "Job":
        if w.suspend:
            controller["spec"]["suspend"] = True
        if w.crons:
            return [*_cronjobs(w, controller), *services]
    return [controller, *services]


def _pod_spec(controller: Obj) -> Obj:
    spec: Obj = controller["spec"]["template"]["spec"]
    return spec


def _expr(rule: NodeRule) -> Obj:
    e: Obj = {"key": rule.key, "operator": rule.operator}
    if rule.operator in ("In", "NotIn"):
        e["values"] = list(rule.values)
    return e


def _service_objects(w: NomadWorkload, rendered: list[Obj]) -> list[Obj]:
    """One Service per Nomad service name over exactly the ports its stanzas name (headless without)."""
    if not w.services:
        return []
    base = rendered[0] if rendered else None
    out = []
    for spec in w.services:
        meta: Obj = {"name": spec.name, "namespace": w.namespace, "labels": {**w.labels, LABEL_WORKLOAD: w.name}}
        if base is not None:
            meta = {**base["metadata"], "name": spec.name}
        if spec.tags:
            meta = {**meta, "annotations": {TAGS_ANNOTATION: ",".join(spec.tags)}}
        ports = [{"name": p.name, "protocol": p.protocol, "port": p.container_port, "targetPort": p.container_port}
                 for p in spec.ports]
        body: Obj = {"selector": selector_labels(w)}
        if ports:
            body.update({"type": "ClusterIP", "ports": ports})
        else:
            body["clusterIP"] = "None"
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body})
    return out


def _cronjobs(w: NomadWorkload, job: Obj) -> list[Obj]:
    template_spec = {k: v for k, v in job["spec"].items() if k not in ("selector", "manualSelector")}
    out = []
    for i, schedule in enumerate(w.crons):
        name = dns_label(w.name if len(w.crons) == 1 else f"{w.name}-{i}", 52)
        spec: Obj = {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid" if w.prohibit_overlap else "Allow",
            "jobTemplate": {"metadata": {"labels": dict(job["metadata"]["labels"])}, "spec": template_spec},
        }
        if w.time_zone:
            spec["timeZone"] = w.time_zone
        if w.cron_suspended:
            spec["suspend"] = True
        out.append({"apiVersion": "batch/v1", "kind": "CronJob",
                    "metadata": {**job["metadata"], "name": name}, "spec": spec})
    return out


__all__ = [
    "DYNAMIC_PORT_BASE", "EXEC_IMAGE", "HOST_VOLUME_ROOT", "MHZ_PER_CORE", "NODE_CLASS_LABEL", "TAGS_ANNOTATION",
    "Affinity", "NomadJob", "NomadWorkload", "ServiceSpec", "parse_nomad", "render_group", "translate_nomad",
]

