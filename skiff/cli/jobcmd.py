"""`skiff job ...`: the Nomad job command line (`nomad job run|plan|status|stop`) over a skiff cluster.

A job is what `skiff.translate.nomad` makes of a job file: one workload object per task group (Deployment,
DaemonSet, Job or CronJob named `<job>-<group>`) plus its Services and ConfigMaps, all labelled
`skiff.io/nomad-job=<job>` in the job's namespace, deployed through the shared deploy layer. The output
imitates Nomad's (`command/job_run.go`, `job_plan.go`, `job_status.go`, `job_stop.go`); Nomad's evaluations
and deployments have no objects here, so their ids are derived from the workloads' uids and generations.

`job stop` keeps the job (status `dead`) as Nomad does: services scale to 0, batch Jobs are suspended, system
jobs (DaemonSets) get a node selector no node matches; the next `job run` clears that again.
`job stop -purge` deletes everything.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from skiff.api.errors import ApiError
from skiff.cli import deploy
from skiff.client.interface import (
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    Client,
    ListOptions,
    Obj,
    Patch,
    Resource,
)
from skiff.translate.model import LABEL_NOMAD_JOB, LABEL_WORKLOAD, TranslateError, Translation

CRONJOBS = Resource("batch", "v1", "cronjobs")
STOPPED = "skiff.io/nomad-stopped"  # annotation (and impossible node selector key) of a stopped job
STOP_MANAGER = "skiff-nomad-stop"
JOB_RESOURCES: tuple[tuple[str, Resource], ...] = (
    ("Deployment", DEPLOYMENTS), ("DaemonSet", DAEMONSETS), ("Job", JOBS), ("CronJob", CRONJOBS))
JOB_TYPES = {"Deployment": "service", "DaemonSet": "system", "Job": "batch", "CronJob": "batch"}
DEFAULT_PRIORITY = 50
MONITOR_TIMEOUT = 300.0  # how long `job run` without -detach follows the rollout before giving up


# --- pure planning ----------------------------------------------------------------------------------------------


def group_name(job: str, obj: Obj) -> str:
    md = obj.get("metadata") or {}
    workload = str((md.get("labels") or {}).get(LABEL_WORKLOAD) or md.get("name") or "")
    return workload.removeprefix(f"{job}-")


def count_of(obj: Obj) -> int:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Job":
        return int(spec.get("parallelism", 1))
    if obj.get("kind") in ("DaemonSet", "CronJob"):
        return 1
    return int(spec.get("replicas", 1))


def _template(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return dict(spec.get("template") or {})


def plan_lines(job: str, wanted: Sequence[Obj], live: Mapping[tuple[str, str], Obj]) -> tuple[list[str], bool]:
    """Nomad's plan diff for the job's task groups: (lines, whether allocations are created or destroyed).

    `wanted` are the translated workload objects, `live` the job's current workload objects by
    (kind, name). Pure."""
    groups: list[str] = []
    changes = False
    job_changed = not live
    seen: set[tuple[str, str]] = set()
    for obj in wanted:
        key = (str(obj.get("kind")), str(obj["metadata"]["name"]))
        seen.add(key)
        name, count = group_name(job, obj), count_of(obj)
        tasks = [str(c.get("name")) for c in (_template(obj).get("spec") or {}).get("containers") or []]
        old = live.get(key)
        if old is None:
            groups.append(f'+ Task Group: "{name}" ({count} create)')
            groups += [f'  + Task: "{t}" (forces create)' for t in tasks]
            changes = True
            continue
        old_count = 0 if (old.get("metadata", {}).get("annotations") or {}).get(STOPPED) else count_of(old)
        same_template = deploy.contains(_template(old), _template(obj))
        if same_template and old_count == count:
            groups.append(f'Task Group: "{name}" ({count} ignore)')
            groups += [f'  Task: "{t}"' for t in tasks]
            continue
        job_changed = changes = True
        if not same_template:
            updates = min(old_count, count)
            parts = [f"{count - old_count} create"] if count > old_count else []
            parts += [f"{old_count - count} destroy"] if old_count > count else []
            parts += [f"{updates} create/destroy update"] if updates else []
            groups.append(f'+/- Task Group: "{name}" ({", ".join(parts)})')
            groups += [f'  +/- Task: "{t}" (forces create/destroy update)' for t in tasks]
        else:
            delta = (f"{count - old_count} create" if count > old_count else f"{old_count - count} destroy")
            kept = min(old_count, count)
            groups.append(f'+/- Task Group: "{name}" ({delta}{f", {kept} ignore" if kept else ""})')
            groups += [f'  Task: "{t}"' for t in tasks]
    for key, old in sorted(live.items()):
        if key not in seen:
            groups.append(f'- Task Group: "{group_name(job, old)}" ({count_of(old)} destroy)')
            job_changed = changes = True
    head = f'+ Job: "{job}"' if not live else (f'+/- Job: "{job}"' if job_changed else f'Job: "{job}"')
    return [head, *groups], changes


def summary_row(pods: Sequence[Obj]) -> dict[str, int]:
    """Nomad's allocation summary of one task group from its pods."""
    out = {"Queued": 0, "Starting": 0, "Running": 0, "Failed": 0, "Complete": 0, "Lost": 0, "Unknown": 0}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if phase == "Running":
            out["Running"] += 1
        elif phase == "Succeeded":
            out["Complete"] += 1
        elif phase == "Failed":
            out["Failed"] += 1
        elif phase == "Unknown":
            out["Unknown"] += 1
        elif (pod.get("spec") or {}).get("nodeName"):
            out["Starting"] += 1
        else:
            out["Queued"] += 1
    return out


def status_of(objects: Sequence[Obj], pods: Sequence[Obj]) -> str:
    """running | pending | dead, as Nomad derives a job's status from its allocations."""
    if all((o.get("metadata", {}).get("annotations") or {}).get(STOPPED) for o in objects):
        return "dead"
    phases = [(p.get("status") or {}).get("phase") for p in pods if not (p.get("metadata") or {}).get(
        "deletionTimestamp")]
    if "Running" in phases:
        return "running"
    if any(ph in (None, "Pending") for ph in phases):
        return "pending"
    batch = all(o.get("kind") in ("Job", "CronJob") for o in objects)
    if batch and phases and all(ph in ("Succeeded", "Failed") for ph in phases):
        return "dead"
    return "pending"


def eval_id(objs: Sequence[Obj]) -> str:
    """A stable id standing in for Nomad's evaluation id of the write that produced `objs`."""
    seed = ",".join(f"{(o.get('metadata') or {}).get('uid')}:{(o.get('metadata') or {}).get('generation')}"
                    for o in objs)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"skiff-nomad:{seed}"))


def format_kv(pairs: Sequence[tuple[str, str]]) -> str:
    """Nomad's `key = value` blocks (columnize with " = ")."""
    width = max(len(k) for k, _ in pairs)
    return "".join(f"{k.ljust(width)} = {v}\n" for k, v in pairs)


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Nomad's columnized tables (two spaces between columns)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in [list(header), *map(list, rows)])


def parse_vars(pairs: Sequence[str], files: Sequence[str]) -> dict[str, str]:
    """`-var k=v` flags over `-var-file` files (`k = "v"` lines); flags win, as in Nomad."""
    out: dict[str, str] = {}
    for f in files:
        for n, line in enumerate(Path(f).read_text().splitlines(), start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            key, sep, value = text.partition("=")
            if not sep:
                raise ValueError(f"{f}:{n}: expected name = value")
            out[key.strip()] = value.strip().strip('"')
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise ValueError(f"invalid variable {p!r}: expected name=value")
        out[key] = value
    return out


# --- reading the cluster ---------------------------------------------------------------------------------------


async def job_objects(client: Client, job: str | None = None, namespace: str = "") -> dict[str, list[Obj]]:
    """Workload objects of every job (or one), by job id."""
    sel = LABEL_NOMAD_JOB if job is None else f"{LABEL_NOMAD_JOB}={job}"
    out: dict[str, list[Obj]] = {}
    for kind, res in JOB_RESOURCES:
        try:
            items = (await client.list(res, namespace, ListOptions(label_selector=sel))).get("items") or []
        except ApiError as e:
            if e.code == 404:
                continue
            raise
        for o in items:
            o.setdefault("kind", kind)
            out.setdefault(str(o["metadata"]["labels"][LABEL_NOMAD_JOB]), []).append(o)
    return out


async def job_pods(client: Client, job: str, namespace: str) -> list[Obj]:
    lst = await client.list(PODS, namespace, ListOptions(label_selector=f"{LABEL_NOMAD_JOB}={job}"))
    return list(lst.get("items") or [])


def _job_of(translation: Translation) -> tuple[str, str]:
    for o in translation.objects:
        labels = (o.get("metadata") or {}).get("labels") or {}
        if LABEL_NOMAD_JOB in labels:
            return str(labels[LABEL_NOMAD_JOB]), str(o["metadata"].get("namespace") or "default")
    raise TranslateError("(job)", "job", "the job has no task group")


def _translate(args: argparse.Namespace, err: TextIO) -> Translation | None:
    from skiff.translate.nomad import translate_nomad

    try:
        variables = parse_vars(args.var or [], args.var_file or [])
        translation = translate_nomad(args.file, Path(args.file).read_text(), variables)
        _job_of(translation)
    except (TranslateError, OSError, ValueError) as e:
        print(f"Error getting job struct: {e}", file=err)
        return None
    return translation


def _wanted(translation: Translation) -> list[Obj]:
    return [o for o in translation.objects if o.get("kind") in dict(JOB_RESOURCES)]


# --- commands ---------------------------------------------------------------------------------------------------


async def _resume(client: Client, objects: Sequence[Obj]) -> None:
    """Undo `job stop` (without -purge) on the objects that carry its mark, before they are applied again."""
    for o in objects:
        md = o.get("metadata") or {}
        if not (md.get("annotations") or {}).get(STOPPED):
            continue
        patch: Obj = {"metadata": {"annotations": {STOPPED: None}}}
        if o["kind"] == "Job" or o["kind"] == "CronJob":
            patch["spec"] = {"suspend": False}
        elif o["kind"] == "DaemonSet":
            patch["spec"] = {"template": {"spec": {"nodeSelector": {STOPPED: None}}}}
        await client.patch(dict(JOB_RESOURCES)[o["kind"]], md["namespace"], md["name"], Patch("merge", patch),
                           field_manager=STOP_MANAGER)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def job_run(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    translation = _translate(args, err)
    if translation is None:
        return 1
    job, namespace = _job_of(translation)
    deploy.print_warnings(translation.warnings, err)
    await _resume(client, (await job_objects(client, job, namespace)).get(job, []))
    try:
        result = await deploy.apply(client, translation, owner_kind="Workload", owner_name=job, namespace=namespace,
                                    prune_label=f"{LABEL_NOMAD_JOB}={job}", dialect="nomad",
                                    source=lambda o: (args.file, f"job.{job}"))
    except deploy.DeployError as e:
        print(f"Error submitting job: {e}", file=err)
        return 1
    workloads = [a.object for a in result.applied if a.ref.kind in dict(JOB_RESOURCES)]
    evaluation = eval_id(workloads)
    if args.detach:
        print("Job registration successful", file=out)
        print(f"Evaluation ID: {evaluation}", file=out)
        return 0
    now = _stamp()
    print(f'==> {now}: Monitoring evaluation "{evaluation[:8]}"', file=out)
    print(f'    {now}: Evaluation triggered by job "{job}"', file=out)
    ok = await _monitor(client, job, namespace, workloads, out, timeout=args.monitor_timeout)
    print(f'==> {_stamp()}: Evaluation "{evaluation[:8]}" finished with '
          'status "complete"', file=out)
    return 0 if ok else 2


async def _monitor(client: Client, job: str, namespace: str, workloads: Sequence[Obj], out: TextIO,
                   timeout: float) -> bool:
    """Follow the rollout of the services until every wanted allocation is running (Nomad's deployment
    monitor); batch and system groups are reported placed once their pods exist."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    deployments = [w for w in workloads if w.get("kind") == "Deployment"]
    while True:
        done = True
        for w in deployments:
            live = await client.get(DEPLOYMENTS, namespace, w["metadata"]["name"])
            st, want = live.get("status") or {}, int((live.get("spec") or {}).get("replicas", 1))
            if int(st.get("observedGeneration") or 0) < int(live["metadata"].get("generation") or 0) or \
                    int(st.get("updatedReplicas") or 0) < want or int(st.get("availableReplicas") or 0) < want:
                done = False
        if done:
            break
        if loop.time() > give_up:
            print(f'  ! Deployment of job "{job}" did not complete in {int(timeout)}s', file=out)
            return False
        await asyncio.sleep(0.5)
    pods = [p for p in await job_pods(client, job, namespace) if not p["metadata"].get("deletionTimestamp")]
    for pod in sorted(pods, key=lambda p: str(p["metadata"].get("name"))):
        group = group_name(job, {"metadata": {"labels": (pod["metadata"].get("labels") or {})}})
        node = (pod.get("spec") or {}).get("nodeName") or ""
        print(f'    Allocation "{str(pod["metadata"].get("uid", ""))[:8]}" created: node "{node}", group '
              f'"{group}"', file=out)
    if deployments:
        print(f'  ✓ Deployment "{eval_id(deployments)[:8]}" successful', file=out)
    return True


async def job_plan(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    translation = _translate(args, err)
    if translation is None:
        return 255
    job, namespace = _job_of(translation)
    live = {(str(o["kind"]), str(o["metadata"]["name"])): o
            for o in (await job_objects(client, job, namespace)).get(job, [])}
    lines, changes = plan_lines(job, _wanted(translation), live)
    out.write("\n".join(lines) + "\n\n")
    print("Scheduler dry-run:", file=out)
    print("- All tasks successfully allocated.", file=out)
    if translation.warnings:
        print("\nJob Warnings:", file=out)
        for w in translation.warnings:
            print(f"* {w.key}: {w.why}", file=out)
    index = max((int(o["metadata"].get("resourceVersion") or 0) for o in live.values()), default=0)
    print(f"\nJob Modify Index: {index}", file=out)
    print("To submit the job with version verification run:\n", file=out)
    print(f"skiff job run -check-index {index} {args.file}\n", file=out)
    print("When running the job with the check-index flag, the job will only be run if the\n"
          "job modify index given matches the server-side version. If the index has\n"
          "changed, another user has modified the job and the plan's results are\n"
          "potentially invalid.", file=out)
    return 1 if changes else 0


async def job_status(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    jobs = await job_objects(client, args.job)
    if args.job is None:
        if not jobs:
            print("No running jobs", file=out)
            return 0
        rows = []
        for job, objs in sorted(jobs.items()):
            ns = objs[0]["metadata"]["namespace"]
            created = min(str(o["metadata"].get("creationTimestamp", "")) for o in objs)
            rows.append([job, JOB_TYPES[objs[0]["kind"]], str(DEFAULT_PRIORITY),
                         status_of(objs, await job_pods(client, job, ns)), created])
        out.write(columns(("ID", "Type", "Priority", "Status", "Submit Date"), rows))
        return 0
    found = jobs.get(args.job)
    if not found:
        print(f'No job(s) with prefix or id "{args.job}" found', file=err)
        return 1
    objs = found
    ns = objs[0]["metadata"]["namespace"]
    pods = await job_pods(client, args.job, ns)
    out.write(format_kv([
        ("ID", args.job), ("Name", args.job),
        ("Submit Date", min(str(o["metadata"].get("creationTimestamp", "")) for o in objs)),
        ("Type", JOB_TYPES[objs[0]["kind"]]), ("Priority", str(DEFAULT_PRIORITY)), ("Namespace", ns),
        ("Status", status_of(objs, pods)), ("Periodic", str(any(o["kind"] == "CronJob" for o in objs)).lower()),
        ("Parameterized", "false"),
    ]))
    header = ("Task Group", "Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown")
    rows = []
    for o in sorted(objs, key=lambda o: str(o["metadata"]["name"])):
        workload = (o["metadata"].get("labels") or {}).get(LABEL_WORKLOAD)
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get(LABEL_WORKLOAD) == workload]
        counts = summary_row(mine)
        rows.append([group_name(args.job, o), *(str(counts[h]) for h in header[1:])])
    out.write("\nSummary\n" + columns(header, rows))
    if pods:
        alloc_rows = []
        for p in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
            phase = (p.get("status") or {}).get("phase") or "Pending"
            desired = "stop" if p["metadata"].get("deletionTimestamp") else "run"
            status = {"Running": "running", "Succeeded": "complete", "Failed": "failed"}.get(phase, "pending")
            group = group_name(args.job, {"metadata": {"labels": p["metadata"].get("labels") or {}}})
            alloc_rows.append([str(p["metadata"].get("uid", ""))[:8], str((p.get("spec") or {}).get("nodeName") or ""),
                               group, desired, status, str(p["metadata"].get("creationTimestamp", ""))])
        out.write("\nAllocations\n" + columns(("ID", "Node ID", "Task Group", "Desired", "Status", "Created"),
                                              alloc_rows))
    return 0


async def job_stop(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    objs = (await job_objects(client, args.job)).get(args.job)
    if not objs:
        print(f'No job(s) with prefix or id "{args.job}" found', file=err)
        return 1
    namespaces = sorted({str(o["metadata"]["namespace"]) for o in objs})
    if args.purge:
        for ns in namespaces:
            await deploy.remove(client, ns, f"{LABEL_NOMAD_JOB}={args.job}")
    else:
        for o in objs:
            md = o["metadata"]
            patch: Obj = {"metadata": {"annotations": {STOPPED: "true"}}}
            if o["kind"] == "Deployment":
                patch["spec"] = {"replicas": 0}
            elif o["kind"] in ("Job", "CronJob"):
                patch["spec"] = {"suspend": True}
            else:
                patch["spec"] = {"template": {"spec": {"nodeSelector": {STOPPED: "true"}}}}
            await client.patch(dict(JOB_RESOURCES)[o["kind"]], md["namespace"], md["name"], Patch("merge", patch),
                               field_manager=STOP_MANAGER)
    evaluation = eval_id(objs)
    if args.detach:
        print(evaluation, file=out)
        return 0
    now = _stamp()
    print(f'==> {now}: Monitoring evaluation "{evaluation[:8]}"', file=out)
    print(f'    {now}: Evaluation triggered by job "{args.job}"', file=out)
    print(f'==> {now}: Evaluation "{evaluation[:8]}" finished with status "complete"', file=out)
    return 0


# --- argparse ---------------------------------------------------------------------------------------------------


def _cmd(p: argparse.ArgumentParser, handler: deploy.Handler) -> None:
    deploy.add_kubeconfig(p)
    p.set_defaults(func=deploy.runner(handler), handler=handler)


def _vars(p: argparse.ArgumentParser) -> None:
    p.add_argument("-var", dest="var", action="append", metavar="KEY=VALUE", help="a variable for the job file")
    p.add_argument("-var-file", dest="var_file", action="append", metavar="FILE", help="a file of variables")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`skiff job run|plan|status|stop`."""
    job = sub.add_parser("job", help="run and manage Nomad jobs (nomad job)")
    jsub = job.add_subparsers(dest="job_command", required=True)
    p = jsub.add_parser("run", help="run a new job or update an existing job")
    p.add_argument("-detach", "--detach", dest="detach", action="store_true",
                   help="return immediately instead of monitoring the deployment")
    p.add_argument("-monitor-timeout", dest="monitor_timeout", type=float, default=MONITOR_TIMEOUT,
                   help="how long to follow the deployment, in seconds (default: %(default)s)")
    _vars(p)
    p.add_argument("file", metavar="FILE")
    _cmd(p, job_run)
    p = jsub.add_parser("plan", help="dry-run a job update to see what would change")
    _vars(p)
    p.add_argument("file", metavar="FILE")
    _cmd(p, job_plan)
    p = jsub.add_parser("status", help="display the status of jobs")
    p.add_argument("job", nargs="?", default=None, metavar="JOB")
    _cmd(p, job_status)
    p = jsub.add_parser("stop", help="stop a running job")
    p.add_argument("-purge", "--purge", dest="purge", action="store_true",
                   help="purge the job from the system instead of marking it stopped")
    p.add_argument("-detach", "--detach", dest="detach", action="store_true", help="return immediately")
    p.add_argument("job", metavar="JOB")
    _cmd(p, job_stop)
