"""The shared deploy layer of the dialect front ends: put a `Translation` into a cluster through a `Client`.

`skiff stack deploy`, `skiff job run` and the Marathon REST API all end here, so they share one behaviour:

* **Server-side apply, in the translation's order**, field manager `skiff-<dialect>` with `force`, so a
  redeploy of the same file is a no-op and a redeploy of a changed file takes back the fields the dialect
  owns (as `kubectl apply --server-side --force-conflicts` would).
* **Nothing half-written.** Every object is first validated by a server-side dry run (`dryRun=All`) when the
  client offers it; only then is anything written. Objects in a namespace that does not exist yet cannot be
  dry-run (upstream answers 404 for the namespace), so that namespace is created first and deleted again if
  validation fails. If a write still fails (a race, or a client without dry run), objects this run created
  are deleted again; updates already made are not undone and the error says so.
* **Ownership.** For a stack the root is its Namespace: `stack rm` deletes it and the namespace controller
  removes the rest. For a Marathon app or a Nomad job each workload controller object (Deployment,
  DaemonSet, Job, StatefulSet) owns the Services/ConfigMaps/Secrets/claims rendered for it (same
  `skiff.io/workload` label), so deleting it lets the garbage collector remove them.
* **Pruning.** Objects that carry the deploy's label selector but are no longer in the translation (a
  service removed from the file) are deleted.

Errors are `DeployError`s naming the object, the API Status message and, when the caller can tell, the file
and key the object came from.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

import aiohttp

from skiff.api.errors import ApiError
from skiff.api.meta import json_copy
from skiff.client.interface import NAMESPACES, Client, DeleteOptions, ListOptions, Obj, Patch, Resource
from skiff.translate.model import LABEL_WORKLOAD, TranslateWarning, Translation

OwnerKind = Literal["Namespace", "Workload"]
Action = Literal["created", "configured", "unchanged"]

# kind → (plural, namespaced) for every kind a translator emits (and the usual companions). Anything else is
# assumed namespaced with the lower-case plural, which is upstream's rule for all but a few irregular kinds.
KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "PersistentVolume": ("persistentvolumes", False),
    "Deployment": ("deployments", True),
    "DaemonSet": ("daemonsets", True),
    "StatefulSet": ("statefulsets", True),
    "Job": ("jobs", True),
    "CronJob": ("cronjobs", True),
    "NetworkPolicy": ("networkpolicies", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Ingress": ("ingresses", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "PriorityClass": ("priorityclasses", False),
}
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job")
# What prune and remove look through, in deletion order: controllers first so no pod is recreated meanwhile.
PRUNE_ORDER = ("apps/v1/Deployment", "apps/v1/DaemonSet", "apps/v1/StatefulSet", "batch/v1/Job",
               "batch/v1/CronJob", "autoscaling/v2/HorizontalPodAutoscaler", "policy/v1/PodDisruptionBudget",
               "v1/Service", "networking.k8s.io/v1/Ingress", "networking.k8s.io/v1/NetworkPolicy",
               "v1/ConfigMap", "v1/Secret", "v1/ServiceAccount", "v1/PersistentVolumeClaim")

Source = Callable[[Obj], "tuple[str, str] | None"]  # object → (file, key) it came from, when known


@dataclass(frozen=True)
class ObjectRef:
    """One object's identity, printed kubectl-style (`deployment.apps/web`)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> Resource:
        group, _, version = self.api_version.rpartition("/")
        return Resource(group, version, plural_of(self.kind))

    def __str__(self) -> str:
        group = self.api_version.rpartition("/")[0]
        return f"{self.kind.lower()}{'.' + group if group else ''}/{self.name}"


@dataclass
class Applied:
    ref: ObjectRef
    action: Action
    object: Obj  # the live object after the write


@dataclass
class DeployResult:
    applied: list[Applied] = field(default_factory=list)
    pruned: list[ObjectRef] = field(default_factory=list)
    warnings: list[TranslateWarning] = field(default_factory=list)
    validated: bool = False  # True when the server dry-ran every object before anything was written

    def live(self, kind: str, name: str) -> Obj | None:
        return next((a.object for a in self.applied if a.ref.kind == kind and a.ref.name == name), None)


class DeployError(Exception):
    """An object the server refused (or that cannot be sent at all); nothing is left half-deployed."""

    def __init__(self, ref: ObjectRef | None, message: str, *, code: int = 0, reason: str = "",
                 file: str = "", key: str = "", partial: Sequence[ObjectRef] = ()) -> None:
        where = f"{file}: {key}: " if file else ""
        what = f"{ref}: " if ref is not None else ""
        text = f"{where}{what}{message}"
        if partial:
            text += " (already updated before the failure: " + ", ".join(str(r) for r in partial) + ")"
        super().__init__(text)
        self.ref = ref
        self.message = message
        self.code = code
        self.reason = reason
        self.file = file
        self.key = key
        self.partial = list(partial)


def plural_of(kind: str) -> str:
    known = KINDS.get(kind)
    if known is not None:
        return known[0]
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    if low.endswith(("s", "x", "ch", "sh")):
        return low + "es"
    return low + "s"


def namespaced(kind: str) -> bool:
    known = KINDS.get(kind)
    return True if known is None else known[1]


def ref_of(obj: Obj, namespace: str) -> ObjectRef:
    """The object's identity; namespaced kinds without a namespace land in `namespace`."""
    md = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    ns = (str(md.get("namespace") or "") or namespace) if namespaced(kind) else ""
    return ObjectRef(str(obj.get("apiVersion") or ""), kind, ns, str(md.get("name") or ""))


def parse_selector(selector: str) -> dict[str, str]:
    """`a=b,c=d` → labels (only equality terms: that is all the deploy layer writes)."""
    out: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, sep, value = term.partition("=")
        if not sep:
            raise ValueError(f"prune label {term!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def plan_ownership(objects: Sequence[Obj]) -> dict[int, int]:
    """Index of each object → index of its owner (the workload controller object with the same
    `skiff.io/workload` label). Pure; objects without a workload label, or roots themselves, have none."""
    roots: dict[str, int] = {}
    for i, obj in enumerate(objects):
        label = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD)
        if obj.get("kind") in WORKLOAD_KINDS and label and label not in roots:
            roots[label] = i
    owners: dict[int, int] = {}
    for i, obj in enumerate(objects):
        label = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD)
        if label in roots and roots[label] != i and obj.get("kind") not in WORKLOAD_KINDS:
            owners[i] = roots[label]
    return owners


def owner_reference(owner: Obj) -> Obj:
    md = owner.get("metadata") or {}
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": md.get("name"),
            "uid": md.get("uid"), "blockOwnerDeletion": True}


def prepare(objects: Sequence[Obj], namespace: str, labels: dict[str, str]) -> list[Obj]:
    """Copies of the objects with their namespace filled in and the deploy's labels added (so prune and
    removal find every one of them). Pure; raises DeployError for an object that cannot be sent."""
    out: list[Obj] = []
    seen: set[ObjectRef] = set()
    for obj in objects:
        o = json_copy(obj)
        ref = ref_of(o, namespace)
        if not ref.kind or not ref.api_version or not ref.name:
            raise DeployError(ref, "an object needs apiVersion, kind and metadata.name")
        if ref in seen:
            raise DeployError(ref, "appears twice in the translation")
        seen.add(ref)
        md = o.setdefault("metadata", {})
        if ref.namespace:
            md["namespace"] = ref.namespace
        md["labels"] = {**(md.get("labels") or {}), **labels}
        out.append(o)
    return out


def _dry_run_patch(client: Client) -> Callable[..., Awaitable[Obj]] | None:
    """The client's patch when it takes `dry_run=True` (server-side `dryRun=All`), else None."""
    patch: Callable[..., Awaitable[Obj]] = client.patch
    try:
        params = inspect.signature(patch).parameters
    except (TypeError, ValueError):
        return None
    return patch if "dry_run" in params else None


def contains(live: object, want: object) -> bool:
    """True when every field of `want` is in `live` with the same value (lists element by element): whether
    applying `want` would leave `live` as it is, ignoring what the server filled in or others wrote. Pure."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(
            contains(a, b) for a, b in zip(live, want, strict=True))
    return bool(live == want)


async def _get(client: Client, ref: ObjectRef) -> Obj | None:
    try:
        return await client.get(ref.resource, ref.namespace, ref.name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise


def _error(ref: ObjectRef, e: ApiError, source: Source | None, obj: Obj,
           partial: Sequence[ObjectRef] = ()) -> DeployError:
    where = source(obj) if source is not None else None
    file, key = where if where is not None else ("", "")
    return DeployError(ref, e.message, code=e.code, reason=e.reason, file=file, key=key, partial=partial)


async def apply(
    client: Client,
    translation: Translation,
    *,
    owner_kind: OwnerKind,
    owner_name: str,
    namespace: str,
    prune_label: str,
    dialect: str,
    prune: bool = True,
    source: Source | None = None,
) -> DeployResult:
    """Create or update every object of `translation` (see the module docstring), then prune.

    `owner_kind` "Namespace": the root is the Namespace `owner_name` (a stack). "Workload": each workload
    controller object owns its siblings (an app or a job named `owner_name`). `prune_label` is the
    `key=value` selector every object of this deploy carries. Idempotent: a second call with the same
    translation changes nothing. Raises DeployError (nothing written, or only what is listed as partial)."""
    manager = f"skiff-{dialect}"
    labels = parse_selector(prune_label)
    objects = prepare(translation.objects, namespace, labels)
    refs = [ref_of(o, namespace) for o in objects]
    owners = plan_ownership(objects) if owner_kind == "Workload" else {}
    if owner_kind == "Namespace" and not any(r.kind == "Namespace" and r.name == owner_name for r in refs):
        raise DeployError(None, f"the translation has no Namespace {owner_name!r} to own the stack")
    result = DeployResult(warnings=list(translation.warnings))
    try:
        before = [await _get(client, r) for r in refs]
    except ApiError as e:
        raise DeployError(None, e.message, code=e.code, reason=e.reason) from e

    # Namespaces first, for real: objects inside a missing namespace cannot be dry-run.
    created_ns: list[ObjectRef] = []
    done: set[int] = set()
    for i, (obj, ref) in enumerate(zip(objects, refs, strict=True)):
        if ref.kind == "Namespace" and before[i] is None:
            try:
                live = await client.patch(NAMESPACES, "", ref.name, Patch("apply", obj, force=True),
                                          field_manager=manager)
            except ApiError as e:
                raise _error(ref, e, source, obj) from e
            created_ns.append(ref)
            result.applied.append(Applied(ref, "created", live))
            done.add(i)
    target_ns = {r.namespace for r in refs if r.namespace} | ({namespace} if owner_kind == "Workload" else set())
    for ns in sorted(target_ns - {r.name for r in refs if r.kind == "Namespace"}):
        try:
            await client.get(NAMESPACES, "", ns)
        except ApiError as e:
            if e.code != 404:
                raise DeployError(None, e.message, code=e.code, reason=e.reason) from e
            await client.create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": ns}}, field_manager=manager)
            created_ns.append(ObjectRef("v1", "Namespace", "", ns))

    async def undo(created: Sequence[ObjectRef]) -> None:
        for r in reversed(created):
            try:
                await client.delete(r.resource, r.namespace, r.name, DeleteOptions(propagation_policy="Background"))
            except ApiError as e:
                if e.code != 404:
                    raise

    dry = _dry_run_patch(client)
    if dry is not None:
        for i, (obj, ref) in enumerate(zip(objects, refs, strict=True)):
            if i in done:
                continue
            try:
                await dry(ref.resource, ref.namespace, ref.name, Patch("apply", obj, force=True),
                          field_manager=manager, dry_run=True)
            except ApiError as e:
                await undo(created_ns)
                raise _error(ref, e, source, obj) from e
        result.validated = True

    uids: dict[int, Obj] = {i: o for i, o in enumerate(before) if o is not None}
    created: list[ObjectRef] = list(created_ns)
    updated: list[ObjectRef] = []
    late: list[int] = []  # applied before their owner existed: re-applied with the owner reference
    for i, (obj, ref) in enumerate(zip(objects, refs, strict=True)):
        if i in done:
            continue
        body = obj
        if i in owners:
            owner = uids.get(owners[i])
            if owner is None:
                late.append(i)
            else:
                body = {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(owner)]}}
        try:
            live = await client.patch(ref.resource, ref.namespace, ref.name, Patch("apply", body, force=True),
                                      field_manager=manager)
        except ApiError as e:
            await undo(created)
            raise _error(ref, e, source, obj, updated) from e
        old = before[i]
        if old is None:
            created.append(ref)
            action: Action = "created"
        else:
            same = contains(old, body)
            action = "unchanged" if same else "configured"
            if not same:
                updated.append(ref)
        uids[i] = live
        result.applied.append(Applied(ref, action, live))
    for i in late:
        ref, obj = refs[i], objects[i]
        body = {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(uids[owners[i]])]}}
        try:
            live = await client.patch(ref.resource, ref.namespace, ref.name, Patch("apply", body, force=True),
                                      field_manager=manager)
        except ApiError as e:
            raise _error(ref, e, source, obj, updated) from e
        for a in result.applied:
            if a.ref == ref:
                a.object = live
    if prune:
        keep = set(refs)
        namespaces = sorted({r.namespace for r in refs if r.namespace} | {namespace})
        for ns in namespaces:
            result.pruned += await remove(client, ns, prune_label, keep=keep)
    return result


async def find(client: Client, namespace: str, selector: str) -> list[tuple[ObjectRef, Obj]]:
    """Every object of the kinds in PRUNE_ORDER in `namespace` carrying `selector`, in deletion order.
    Kinds the server does not serve are skipped."""
    out: list[tuple[ObjectRef, Obj]] = []
    for key in PRUNE_ORDER:
        api_version, _, kind = key.rpartition("/")
        ref0 = ObjectRef(api_version, kind, namespace, "")
        try:
            lst = await client.list(ref0.resource, namespace, ListOptions(label_selector=selector))
        except ApiError as e:
            if e.code == 404:
                continue
            raise
        for item in lst.get("items") or []:
            md = item.get("metadata") or {}
            out.append((ObjectRef(api_version, kind, str(md.get("namespace") or namespace),
                                  str(md.get("name") or "")), item))
    return out


async def remove(client: Client, namespace: str, selector: str, *,
                 keep: set[ObjectRef] | frozenset[ObjectRef] = frozenset()) -> list[ObjectRef]:
    """Delete (Background propagation) every object in `namespace` carrying `selector` that is not in
    `keep`; returns what was deleted. Objects already gone are not an error."""
    gone: list[ObjectRef] = []
    for ref, _ in await find(client, namespace, selector):
        if ref in keep:
            continue
        try:
            await client.delete(ref.resource, ref.namespace, ref.name, DeleteOptions(propagation_policy="Background"))
        except ApiError as e:
            if e.code != 404:
                raise
        gone.append(ref)
    return gone



# --- plumbing shared by the command-line front ends (stack, service, job) ---------------------------------

DEFAULT_KUBECONFIG = "/var/lib/skiff/kubeconfig.yaml"

Handler = Callable[[Client, "argparse.Namespace", TextIO, TextIO], Awaitable[int]]


def add_kubeconfig(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None,
                   help=f"kubeconfig of the cluster (default: $KUBECONFIG or {DEFAULT_KUBECONFIG})")


def kubeconfig_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "kubeconfig", None) or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG)


def runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """A `set_defaults(func=...)` entry point: connect with the kubeconfig, run `handler`, map errors to
    messages on stderr and exit code 1 (the handler itself is what tests call, with any Client)."""

    def func(args: argparse.Namespace) -> int:
        from skiff.client.https import HTTPSClient, KubeconfigError

        async def main() -> int:
            try:
                client = HTTPSClient.from_kubeconfig(kubeconfig_path(args))
            except (OSError, KubeconfigError, ValueError) as e:
                print(f"Error: cannot read kubeconfig {kubeconfig_path(args)}: {e}", file=sys.stderr)
                return 1
            try:
                return await handler(client, args, sys.stdout, sys.stderr)
            except ApiError as e:
                print(f"Error response from daemon: {e.message}", file=sys.stderr)
                return 1
            except DeployError as e:
                print(f"Error: {e}", file=sys.stderr)
                return 1
            except aiohttp.ClientError as e:
                print(f"Error: cannot connect to the cluster: {e}", file=sys.stderr)
                return 1
            finally:
                await client.close()

        return asyncio.run(main())

    return func


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as the Docker CLI prints them (Go tabwriter: minwidth 10, padding 3; the last column unpadded)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = []
    for row in [list(header), *map(list, rows)]:
        cells = [c.ljust(max(w + 3, 10)) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def print_warnings(warnings: Sequence[TranslateWarning], err: TextIO) -> None:
    for w in warnings:
        print(f"WARNING: {w}", file=err)
