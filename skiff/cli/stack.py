"""`skiff stack ...` and `skiff service ...`: the Docker Swarm command line over a skiff cluster.

The words, columns and messages are the Docker CLI's (`docker/cli` cli/command/stack and service): a stack is
the namespace `translate_compose` makes, a service is its workload object (Deployment, DaemonSet or Job,
named `<stack>_<service>`), a task is a pod (`<stack>_<service>.<slot>`). Swarm concepts without a twin are
approximated and said so: slots are the pods' order of creation, `service rollback` is `kubectl rollout
undo` (the previous ReplicaSet's template), logs come from the pods/log API.

Every command is an async handler `(client, args, out, err) -> exit code`, so tests drive it with any
`Client`; `add_parsers` wires them to argparse with a kubeconfig-built HTTPS client.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import yaml

from skiff.api.errors import ApiError
from skiff.api.meta import parse_time
from skiff.cli import deploy
from skiff.client.interface import (
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    PODS,
    REPLICASETS,
    SERVICES,
    Client,
    DeleteOptions,
    ListOptions,
    Obj,
    Patch,
    Resource,
)
from skiff.translate.model import LABEL_STACK, LABEL_WORKLOAD, TranslateError, Translation

FIELD_MANAGER = "skiff-swarm-cli"  # service scale/update/rollback: edits the user makes, as `docker service`
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
WORKLOAD_RESOURCES: tuple[tuple[str, Resource], ...] = (
    ("Deployment", DEPLOYMENTS), ("DaemonSet", DAEMONSETS), ("Job", JOBS))


# --- pure formatting ----------------------------------------------------------------------------------------


def docker_duration(seconds: float) -> str:
    """`go-units.HumanDuration`, as `docker ps`/`docker service ps` print ages."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = round(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // (24 * 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // (24 * 30)} months"
    return f"{hours // (24 * 365)} years"


def short_id(obj: Obj) -> str:
    """A 12-character id as Docker shows them, from the object's uid."""
    return str((obj.get("metadata") or {}).get("uid") or "").replace("-", "")[:12]


def service_mode(kind: str, obj: Obj) -> str:
    if kind == "DaemonSet":
        return "global"
    if kind == "Job":
        return "replicated job"
    return "replicated"


def replicas_column(kind: str, obj: Obj) -> str:
    """`running/desired` as `docker service ls` shows it (ready pods over the wanted count)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        return f"{status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)}"
    if kind == "Job":
        total = int(spec.get("completions") or 1)
        return f"{status.get('active', 0)}/{spec.get('parallelism', 1)} ({status.get('succeeded', 0)}/{total} completed)"
    return f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"


def published_ports(services: Sequence[Obj], template: Obj) -> list[str]:
    """`*:8080->80/tcp` for every port published on the nodes: NodePort/LoadBalancer Services of the
    workload (the routing mesh) and hostPorts of its pods (`mode: host`)."""
    out: list[str] = []
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            continue
        for p in spec.get("ports") or []:
            published = p.get("nodePort") if spec.get("type") == "NodePort" else p.get("port")
            target = p.get("targetPort", p.get("port"))
            out.append(f"*:{published}->{target}/{str(p.get('protocol', 'TCP')).lower()}")
    for c in ((template.get("spec") or {}).get("containers")) or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(f"*:{p['hostPort']}->{p['containerPort']}/{str(p.get('protocol', 'TCP')).lower()}")
    return out


def task_state(pod: Obj, now: dt.datetime) -> tuple[str, str, str]:
    """(DESIRED STATE, CURRENT STATE, ERROR) of a pod shown as a Swarm task."""
    md, status = pod.get("metadata") or {}, pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    desired = "Shutdown" if md.get("deletionTimestamp") else ("Complete" if phase == "Succeeded" else "Running")
    since = parse_time(status.get("startTime") or md.get("creationTimestamp")) or now
    error = ""
    statuses = status.get("containerStatuses") or []
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting")
        term = (cs.get("state") or {}).get("terminated")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            message = waiting.get("message")
            error = f'"{waiting.get("reason")}{": " + message if message else ""}"'
        elif term and term.get("exitCode"):
            error = f'"task: non-zero exit ({term["exitCode"]})"'
    if phase == "Running":
        running = [(cs.get("state") or {}).get("running") for cs in statuses]
        started = [parse_time(r.get("startedAt")) for r in running if r]
        since = next((t for t in started if t is not None), since)
        state = "Running"
    elif phase == "Succeeded":
        state = "Complete"
    elif phase == "Failed":
        state = "Failed"
    elif not (pod.get("spec") or {}).get("nodeName"):
        state = "Pending"
    else:
        state = "Preparing"
    if md.get("deletionTimestamp"):
        state = "Shutdown"
    return desired, f"{state} {docker_duration((now - since).total_seconds()).lower()} ago", error


def task_rows(display: str, pods: Sequence[Obj], now: dt.datetime, global_mode: bool) -> list[list[str]]:
    """`docker service ps` rows: slots in order of creation (`name.N`), global tasks by node."""
    ordered = sorted(pods, key=lambda p: (str((p.get("metadata") or {}).get("creationTimestamp") or ""),
                                          str((p.get("metadata") or {}).get("name") or "")))
    rows: list[list[str]] = []
    for slot, pod in enumerate(ordered, start=1):
        spec = pod.get("spec") or {}
        node = str(spec.get("nodeName") or "")
        name = f"{display}.{node or slot}" if global_mode else f"{display}.{slot}"
        image = str(((spec.get("containers") or [{}])[0]).get("image") or "")
        desired, current, error = task_state(pod, now)
        rows.append([short_id(pod), name, image, node, desired, current, error,
                     ",".join(published_ports([], {"spec": spec}))])
    return rows


def deploy_lines(stack: str, result: deploy.DeployResult) -> list[str]:
    """What `docker stack deploy` prints for each network, config, secret and service it touched."""
    lines: list[str] = []
    for a in result.applied:
        name = a.ref.name
        labels = (a.object.get("metadata") or {}).get("labels") or {}
        if a.ref.kind == "NetworkPolicy" and name.startswith("network-"):
            if a.action == "created":
                lines.append(f"Creating network {stack}_{name.removeprefix('network-')}")
        elif a.ref.kind in ("ConfigMap", "Secret"):
            if a.action == "created":
                lines.append(f"Creating {'config' if a.ref.kind == 'ConfigMap' else 'secret'} {stack}_{name}")
        elif a.ref.kind in ("Deployment", "DaemonSet", "Job", "StatefulSet"):
            svc = f"{stack}_{labels.get(LABEL_WORKLOAD, name)}"
            if a.action == "created":
                lines.append(f"Creating service {svc}")
            else:
                lines.append(f"Updating service {svc} (id: {short_id(a.object)})")
    for r in result.pruned:
        if r.kind in ("Deployment", "DaemonSet", "Job", "StatefulSet"):
            lines.append(f"Removing service {stack}_{r.name}")
    return lines


def previous_template(replicasets: Sequence[Obj], current_revision: int) -> Obj | None:
    """The pod template of the newest ReplicaSet older than `current_revision` (`kubectl rollout undo`),
    with its pod-template-hash label removed; None when there is no earlier revision."""
    best: tuple[int, Obj] | None = None
    for rs in replicasets:
        try:
            rev = int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
        except ValueError:
            continue
        if rev < current_revision and (best is None or rev > best[0]):
            best = (rev, rs)
    if best is None:
        return None
    template = dict((best[1].get("spec") or {}).get("template") or {})
    md = dict(template.get("metadata") or {})
    md["labels"] = {k: v for k, v in (md.get("labels") or {}).items() if k != HASH_LABEL}
    template["metadata"] = md
    return template


# --- reading the cluster ----------------------------------------------------------------------------------------


async def stacks(client: Client) -> list[str]:
    lst = await client.list(NAMESPACES, "", ListOptions(label_selector=LABEL_STACK))
    return sorted(str(n["metadata"]["name"]) for n in lst.get("items") or [])


async def workloads(client: Client, namespace: str) -> list[tuple[str, Obj]]:
    """(kind, object) of every service of a stack, by name."""
    out: list[tuple[str, Obj]] = []
    for kind, res in WORKLOAD_RESOURCES:
        lst = await client.list(res, namespace, ListOptions(label_selector=LABEL_STACK))
        out += [(kind, o) for o in lst.get("items") or []]
    return sorted(out, key=lambda ko: str(ko[1]["metadata"]["name"]))


def service_of(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return str((md.get("labels") or {}).get(LABEL_WORKLOAD) or md.get("name") or "")


async def find_service(client: Client, ref: str) -> tuple[str, str, Obj] | None:
    """`stack_service` → (stack, kind, workload object); the longest stack name prefix wins."""
    for stack in sorted(await stacks(client), key=len, reverse=True):
        if not ref.startswith(stack + "_"):
            continue
        svc = ref[len(stack) + 1:]
        for kind, obj in await workloads(client, stack):
            if svc in (service_of(obj), obj["metadata"]["name"]):
                return stack, kind, obj
    return None


async def service_rows(client: Client, stack_names: Sequence[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for stack in stack_names:
        services = (await client.list(SERVICES, stack)).get("items") or []
        for kind, obj in await workloads(client, stack):
            svc = service_of(obj)
            mine = [s for s in services if ((s.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD) == svc]
            template = (obj.get("spec") or {}).get("template") or {}
            image = str((((template.get("spec") or {}).get("containers")) or [{}])[0].get("image") or "")
            rows.append([short_id(obj), f"{stack}_{svc}", service_mode(kind, obj), replicas_column(kind, obj),
                         image, ", ".join(published_ports(mine, template))])
    return rows


async def pods_of(client: Client, stack: str, svc: str | None) -> dict[str, list[Obj]]:
    """Pods of a stack grouped by service name."""
    sel = LABEL_STACK if svc is None else f"{LABEL_STACK},{LABEL_WORKLOAD}={svc}"
    out: dict[str, list[Obj]] = {}
    for pod in (await client.list(PODS, stack, ListOptions(label_selector=sel))).get("items") or []:
        out.setdefault(service_of(pod), []).append(pod)
    return out


async def ps_rows(client: Client, stack: str, only: str | None, now: dt.datetime) -> list[list[str]]:
    kinds = {service_of(o): k for k, o in await workloads(client, stack)}
    rows: list[list[str]] = []
    for svc, pods in sorted((await pods_of(client, stack, only)).items()):
        rows += task_rows(f"{stack}_{svc}", pods, now, kinds.get(svc) == "DaemonSet")
    return rows


PS_HEADER = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS")
LS_HEADER = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")


# --- reading the files ------------------------------------------------------------------------------------------


def _referenced_paths(text: str) -> list[str]:
    """Paths a Compose file names (env_file, config/secret `file:`): the translator needs their text."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(doc, dict):
        return []
    paths: list[str] = []
    for svc in (doc.get("services") or {}).values() if isinstance(doc.get("services"), dict) else []:
        env_file = svc.get("env_file") if isinstance(svc, dict) else None
        for item in env_file if isinstance(env_file, list) else [env_file]:
            if isinstance(item, str):
                paths.append(item)
            elif isinstance(item, dict) and isinstance(item.get("path"), str):
                paths.append(item["path"])
    for section in ("configs", "secrets"):
        entries = doc.get(section)
        for spec in entries.values() if isinstance(entries, dict) else []:
            if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                paths.append(spec["file"])
    return paths


def read_compose(files: Sequence[str]) -> tuple[list[tuple[str, str]], str | None, dict[str, str]]:
    """The Compose files' text, `.env` next to the first one (None when absent) and every referenced file
    that exists (keyed by the path as written; a missing one is left for the translator to report)."""
    texts = [(f, Path(f).read_text()) for f in files]
    base = Path(files[0]).parent
    dotenv_path = base / ".env"
    dotenv = dotenv_path.read_text() if dotenv_path.is_file() else None
    sources: dict[str, str] = {}
    for f, text in texts:
        for p in _referenced_paths(text):
            full = p if os.path.isabs(p) else str(Path(f).parent / p)
            if os.path.isfile(full):
                sources[p] = Path(full).read_text()
    return texts, dotenv, sources


def compose_source(files: Sequence[str]) -> deploy.Source:
    """Where a translated object came from: its service's key in the (last) file naming that service."""

    def source(obj: Obj) -> tuple[str, str] | None:
        svc = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_WORKLOAD)
        return (files[-1], f"services.{svc}") if svc else (files[-1], str(obj.get("kind", "")).lower())

    return source


def translate_stack(files: Sequence[str], stack: str) -> Translation:
    from skiff.translate.compose import translate_compose

    texts, dotenv, sources = read_compose(files)
    return translate_compose(texts, stack, dict(os.environ), dotenv, sources)


# --- stack commands ----------------------------------------------------------------------------------------------


async def stack_deploy(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files: list[str] = args.compose_file or []
    if not files:
        print("Please specify a Compose file (with --compose-file).", file=err)
        return 1
    try:
        translation = translate_stack(files, args.stack)
    except TranslateError as e:
        print(f"Error: {e}", file=err)
        return 1
    except OSError as e:
        print(f"Error: {e}", file=err)
        return 1
    deploy.print_warnings(translation.warnings, err)
    namespace = next((o["metadata"]["name"] for o in translation.objects if o.get("kind") == "Namespace"),
                     args.stack)
    if args.dry_run:
        out.write(yaml.safe_dump_all(translation.objects, sort_keys=False))
        return 0
    result = await deploy.apply(
        client, translation, owner_kind="Namespace", owner_name=namespace, namespace=namespace,
        prune_label=f"{LABEL_STACK}={namespace}", dialect="compose", prune=args.prune,
        source=compose_source(files))
    for line in deploy_lines(namespace, result):
        print(line, file=out)
    return 0


async def stack_ls(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rows = [[s, str(len(await workloads(client, s)))] for s in await stacks(client)]
    out.write(deploy.table(("NAME", "SERVICES"), rows))
    return 0


async def stack_services(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.stack not in await stacks(client):
        print(f"Nothing found in stack: {args.stack}", file=err)
        return 0
    out.write(deploy.table(LS_HEADER, await service_rows(client, [args.stack])))
    return 0


async def stack_ps(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.stack not in await stacks(client):
        print(f"nothing found in stack: {args.stack}", file=err)
        return 1
    now = dt.datetime.now(dt.UTC)
    out.write(deploy.table(PS_HEADER, await ps_rows(client, args.stack, None, now)))
    return 0


async def stack_rm(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = 0
    present = await stacks(client)
    for stack in args.stacks:
        if stack not in present:
            print(f"Nothing found in stack: {stack}", file=err)
            continue
        for _, obj in await workloads(client, stack):
            print(f"Removing service {stack}_{service_of(obj)}", file=out)
        for ref, _obj in await deploy.find(client, stack, LABEL_STACK):
            if ref.kind == "ConfigMap":
                print(f"Removing config {stack}_{ref.name}", file=out)
            elif ref.kind == "Secret":
                print(f"Removing secret {stack}_{ref.name}", file=out)
            elif ref.kind == "NetworkPolicy" and ref.name.startswith("network-"):
                print(f"Removing network {stack}_{ref.name.removeprefix('network-')}", file=out)
        try:
            await client.delete(NAMESPACES, "", stack, DeleteOptions(propagation_policy="Background"))
        except ApiError as e:
            if e.code != 404:
                print(f"Failed to remove stack {stack}: {e.message}", file=err)
                status = 1
    return status


# --- service commands ---------------------------------------------------------------------------------------------


async def service_ls(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out.write(deploy.table(LS_HEADER, await service_rows(client, await stacks(client))))
    return 0


async def _resolve(client: Client, ref: str, err: TextIO) -> tuple[str, str, Obj] | None:
    found = await find_service(client, ref)
    if found is None:
        print(f"Error: No such service: {ref}", file=err)
    return found


async def service_ps(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = dt.datetime.now(dt.UTC)
    rows: list[list[str]] = []
    for ref in args.services:
        found = await _resolve(client, ref, err)
        if found is None:
            return 1
        stack, _, obj = found
        rows += await ps_rows(client, stack, service_of(obj), now)
    out.write(deploy.table(PS_HEADER, rows))
    return 0


async def service_scale(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = 0
    for pair in args.scales:
        ref, sep, count = pair.partition("=")
        if not sep or not count.isdigit():
            print(f"Error: invalid scale specifier '{pair}'.\nSee 'docker service scale --help'.", file=err)
            return 1
        found = await _resolve(client, ref, err)
        if found is None:
            status = 1
            continue
        stack, kind, obj = found
        if kind != "Deployment":
            print(f"{ref}: scale can only be used with replicated or replicated-job mode", file=err)
            status = 1
            continue
        await client.patch(DEPLOYMENTS, stack, obj["metadata"]["name"],
                           Patch("merge", {"spec": {"replicas": int(count)}}), field_manager=FIELD_MANAGER)
        print(f"{ref} scaled to {count}", file=out)
    return status


async def service_update(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    found = await _resolve(client, args.service, err)
    if found is None:
        return 1
    stack, kind, obj = found
    res = dict(WORKLOAD_RESOURCES)[kind]
    if args.image:
        containers = ((obj["spec"].get("template") or {}).get("spec") or {}).get("containers") or []
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": containers[0]["name"], "image": args.image}]}}}}
        await client.patch(res, stack, obj["metadata"]["name"], Patch("strategic", patch),
                           field_manager=FIELD_MANAGER)
    if args.replicas is not None and kind == "Deployment":
        await client.patch(res, stack, obj["metadata"]["name"], Patch("merge", {"spec": {"replicas": args.replicas}}),
                           field_manager=FIELD_MANAGER)
    print(args.service, file=out)
    return 0


async def service_rollback(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    found = await _resolve(client, args.service, err)
    if found is None:
        return 1
    stack, kind, obj = found
    if kind != "Deployment":
        print(f"Error response from daemon: service {args.service}: rollback: service does not have a "
              "previous spec", file=err)
        return 1
    uid = obj["metadata"].get("uid")
    rss = [rs for rs in (await client.list(REPLICASETS, stack)).get("items") or []
           if any(o.get("uid") == uid for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]
    current = int(((obj["metadata"].get("annotations") or {}).get(REVISION)) or 0)
    template = previous_template(rss, current)
    if template is None:
        print(f"Error response from daemon: service {args.service}: rollback: service does not have a "
              "previous spec", file=err)
        return 1
    patch = [{"op": "replace", "path": "/spec/template", "value": template}]
    await client.patch(DEPLOYMENTS, stack, obj["metadata"]["name"], Patch("json", patch),
                       field_manager=FIELD_MANAGER)
    print(args.service, file=out)
    print("rollback: manually requested rollback", file=out)
    return 0


async def fetch_log(client: Client, namespace: str, pod: str, tail: str | None) -> str:
    """The pod's log through `GET .../pods/<name>/log` (HTTPS clients only; raises ApiError like the
    client does, e.g. 503 until the node's stream server answers)."""
    import aiohttp

    from skiff.client.https import HTTPSClient, error_from_response, resource_path

    if not isinstance(client, HTTPSClient):
        raise ApiError(501, "NotImplemented", "logs are read over HTTPS only")
    query = {"tailLines": tail} if tail and tail != "all" else {}
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    ctx: ssl.SSLContext = client.ssl_context
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session, session.get(
        client.server + resource_path(PODS, namespace, pod, "log"), params=query, headers=headers,
        timeout=aiohttp.ClientTimeout(total=60),
    ) as resp:
        body = await resp.read()
        if resp.status >= 400:
            raise error_from_response(resp.status, body)
        return body.decode(errors="replace")


async def service_logs(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    found = await _resolve(client, args.service, err)
    if found is None:
        return 1
    stack, kind, obj = found
    svc = service_of(obj)
    pods = (await pods_of(client, stack, svc)).get(svc, [])
    now = dt.datetime.now(dt.UTC)
    names = {r[0]: r[1] for r in task_rows(f"{stack}_{svc}", pods, now, kind == "DaemonSet")}
    for pod in pods:
        md = pod["metadata"]
        try:
            text = await fetch_log(client, stack, md["name"], args.tail)
        except ApiError as e:
            if e.code == 503:
                print(f"Error: logs of {md['name']} are not available: the node's log stream server does "
                      f"not answer yet ({e.message})", file=err)
            else:
                print(f"Error response from daemon: {e.message}", file=err)
            return 1
        prefix = f"{names.get(short_id(pod), md['name'])}.{short_id(pod)}@{(pod.get('spec') or {}).get('nodeName', '')}"
        for line in text.splitlines():
            print(f"{prefix}    | {line}", file=out)
    return 0


# --- argparse --------------------------------------------------------------------------------------------------------


def _cmd(p: argparse.ArgumentParser, handler: deploy.Handler) -> None:
    deploy.add_kubeconfig(p)
    p.set_defaults(func=deploy.runner(handler), handler=handler)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`skiff stack ...` and `skiff service ...`."""
    stack = sub.add_parser("stack", help="manage Swarm stacks (docker stack)")
    ssub = stack.add_subparsers(dest="stack_command", required=True)
    p = ssub.add_parser("deploy", aliases=["up"], help="deploy a new stack or update an existing stack")
    p.add_argument("-c", "--compose-file", action="append", metavar="FILE", help="path to a Compose file")
    p.add_argument("--prune", action="store_true", help="prune services that are no longer referenced")
    p.add_argument("--dry-run", action="store_true", help="print the objects and warnings; deploy nothing")
    p.add_argument("stack", metavar="STACK")
    _cmd(p, stack_deploy)
    p = ssub.add_parser("ls", aliases=["list"], help="list stacks")
    _cmd(p, stack_ls)
    p = ssub.add_parser("services", help="list the services in the stack")
    p.add_argument("stack", metavar="STACK")
    _cmd(p, stack_services)
    p = ssub.add_parser("ps", help="list the tasks in the stack")
    p.add_argument("stack", metavar="STACK")
    _cmd(p, stack_ps)
    p = ssub.add_parser("rm", aliases=["remove", "down"], help="remove one or more stacks")
    p.add_argument("stacks", nargs="+", metavar="STACK")
    _cmd(p, stack_rm)

    service = sub.add_parser("service", help="manage Swarm services of stacks (docker service)")
    vsub = service.add_subparsers(dest="service_command", required=True)
    p = vsub.add_parser("ls", aliases=["list"], help="list services")
    _cmd(p, service_ls)
    p = vsub.add_parser("ps", help="list the tasks of one or more services")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    _cmd(p, service_ps)
    p = vsub.add_parser("scale", help="scale one or multiple replicated services")
    p.add_argument("scales", nargs="+", metavar="SERVICE=REPLICAS")
    _cmd(p, service_scale)
    p = vsub.add_parser("update", help="update a service")
    p.add_argument("--image", default="", help="service image tag")
    p.add_argument("--replicas", type=int, default=None, help="number of tasks")
    p.add_argument("service", metavar="SERVICE")
    _cmd(p, service_update)
    p = vsub.add_parser("rollback", help="revert changes to a service's configuration")
    p.add_argument("service", metavar="SERVICE")
    _cmd(p, service_rollback)
    p = vsub.add_parser("logs", help="fetch the logs of a service")
    p.add_argument("--tail", default="all", help='number of lines to show from the end of the logs (default "all")')
    p.add_argument("service", metavar="SERVICE")
    _cmd(p, service_logs)

