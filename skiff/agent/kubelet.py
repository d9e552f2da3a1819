"""The kubelet core: one worker per pod bound to this node, syncing it against the runtime and the API.

Upstream model (`pkg/kubelet`): the pod workers (`pod_workers.go`: never two syncs of one pod at once, updates
coalesced, periodic resync), `SyncPod` of the kuberuntime manager (decide with `compute_pod_actions`, then act:
kill, create the sandbox, start init / app containers with image pulls, config, postStart hooks), the generic
PLEG (relist the runtime every second, wake the pods whose containers changed), the status manager (PATCH
`pods/<name>/status` with a strategic merge patch, only when the status differs from the last one written) and
pod termination (preStop hooks against the grace period, stop containers and sandbox, tear volumes down, then
delete the pod with grace 0 and a uid precondition).

State lives in the runtime and the API, never only here: after a restart (even SIGKILL) the kubelet reads what
the runtime runs, and a running container whose spec hash matches is kept — nothing is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from skiff.agent import containers as cbuild
from skiff.agent import hooks
from skiff.agent.backoff import Backoff, container_key
from skiff.agent.containers import ContainerConfigError, DNSSettings, ObjectLookup
from skiff.agent.images_pull import ImagePuller, ImagePullFailure
from skiff.agent.podactions import (
    CRASH_LOOP_BACK_OFF,
    ContainerToStart,
    PodActions,
    Waiting,
    compute_pod_actions,
    container_name_of,
    is_sidecar,
)
from skiff.agent.podstatus import TERMINAL_PHASES, pod_status, status_patch
from skiff.agent.probes import ProbeManager
from skiff.agent.runtime.interface import (
    ANNOTATION_TERMINATION_GRACE,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    Mount,
    Runtime,
    RuntimeError_,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
)
from skiff.agent.volumes import VolumeError
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.events import EventBroadcaster
from skiff.client.informer import SharedInformer
from skiff.client.interface import NODES, PODS, Client, DeleteOptions, ListOptions, Patch, Resource

log = logging.getLogger("skiff.agent.kubelet")

COMPONENT = "kubelet"
FIELD_MANAGER = "kubelet"
DEFAULT_GRACE_SECONDS = 30
MIN_GRACE_SECONDS = 2  # upstream minimumGracePeriodInSeconds: what is left for SIGTERM after a long preStop
POST_START_TIMEOUT_SECONDS = 30.0
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


class Volumes(Protocol):
    """What the kubelet needs of `skiff.agent.volumes.VolumeManager`."""

    async def setup(self, pod: Obj) -> dict[str, str]: ...

    def container_mounts(self, pod: Obj, container: Obj, paths: Mapping[str, str]) -> list[Mount]: ...

    async def teardown(self, pod_uid: str) -> None: ...

    async def run(self) -> None: ...


class Prober(Protocol):
    """What the kubelet needs of `skiff.agent.probes.ProbeManager`."""

    def update_pod(self, pod: Obj, pod_ip: str, running: Mapping[str, ContainerStatus]) -> None: ...

    def remove_pod(self, pod_uid: str) -> None: ...

    def ready(self, pod_uid: str, container: str) -> bool: ...

    def started(self, pod_uid: str, container: str) -> bool: ...

    def liveness_failed(self, pod_uid: str, container_id: str) -> bool: ...

    async def close(self) -> None: ...


HandlerRunner = Callable[[Runtime, Obj, Obj, str, Obj, str, float], Awaitable[str | None]]


class ClientLookup:
    """`ObjectLookup` over the API client (ConfigMaps, Secrets, Services for container environments)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def get(self, res: Resource, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(res, namespace, name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def list(self, res: Resource, namespace: str) -> list[Obj]:
        return list((await self.client.list(res, namespace, ListOptions())).get("items") or [])


@dataclass
class _Worker:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _live(c: ContainerStatus) -> bool:
    return c.state in (ContainerState.RUNNING, ContainerState.CREATED)


def _specs(pod: Obj) -> dict[str, Obj]:
    spec = pod.get("spec") or {}
    return {str(c.get("name", "")): c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}


def _grace_of(pod: Obj) -> int:
    """The grace period for stopping this pod's containers: the deletion's, else the spec's (default 30 s)."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for value in (md.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if value is not None:
            with contextlib.suppress(TypeError, ValueError):
                return max(0, int(value))
    return DEFAULT_GRACE_SECONDS


class Kubelet:
    """Runs the pods the scheduler bound to `node_name` on `runtime`.

    Collaborators are parameters so tests can swap them: `volumes` (a VolumeManager), `probes` (default: a
    `ProbeManager` that resyncs the pod on every result change), `run_handler` (lifecycle hooks), `lookup`
    (ConfigMaps/Secrets for environments). `clock` (seconds since the epoch) drives back-off and status
    timestamps; tests inject a virtual one. `resync_seconds` is how soon a pod with pending work is looked at
    again, `idle_resync_seconds` how often a settled one is, `relist_seconds` the runtime relist (PLEG) period.
    """

    def __init__(
        self,
        client: Client,
        runtime: Runtime,
        *,
        node_name: str,
        data_dir: Path,
        volumes: Volumes,
        events: EventBroadcaster,
        dns: DNSSettings,
        clock: Callable[[], float] = time.time,
        probes: Prober | None = None,
        run_handler: HandlerRunner = hooks.run_handler,
        lookup: ObjectLookup | None = None,
        host_ip: str = "",
        memory_capacity: int = 0,
        runtime_type: str = "containerd",
        resync_seconds: float = 1.0,
        idle_resync_seconds: float = 10.0,
        relist_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.runtime = runtime
        self.node_name = node_name
        self.data_dir = data_dir
        self.volumes = volumes
        self.events = events
        self.dns = dns
        self.clock = clock
        self.probes: Prober = probes or ProbeManager(runtime, self.enqueue, events)
        self.run_handler = run_handler
        self.lookup: ObjectLookup = lookup or ClientLookup(client)
        self.host_ip = host_ip
        self.memory_capacity = memory_capacity
        self.runtime_type = runtime_type
        self.resync_seconds = resync_seconds
        self.idle_resync_seconds = idle_resync_seconds
        self.relist_seconds = relist_seconds
        self.backoff = Backoff()
        self.images = ImagePuller(runtime, client, events, clock=clock)
        self.informer = SharedInformer(client, PODS, field_selector=f"spec.nodeName={node_name}")
        self._pods: dict[str, Obj] = {}
        self._workers: dict[str, _Worker] = {}
        self._status_cache: dict[str, Obj] = {}
        self._stopped_for_deletion: set[str] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._seen: dict[str, ContainerState] = {}
        self.syncs: dict[str, int] = {}  # completed syncs per pod uid (observability, tests)

    # --- paths ---

    @property
    def log_root(self) -> Path:
        """`<data-dir>/logs/pods`: upstream's /var/log/pods."""
        return self.data_dir / "logs" / "pods"

    def pod_dir(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid

    # --- loop ---

    async def run(self) -> None:
        """List+watch this node's pods and keep them synced until cancelled."""
        self.informer.add_handler(self._on_pod)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.informer.start()
                tg.create_task(self.volumes.run(), name="kubelet-volumes")
                tg.create_task(self._relist_loop(), name="kubelet-pleg")
        finally:
            self._tg = None
            await self.informer.stop()
            await self.probes.close()

    def _on_pod(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and type_ != "DELETED":
            uid = _uid(new)
            self._pods[uid] = new
        else:
            uid = _uid(old or {})
            self._pods.pop(uid, None)
        if uid:
            self.enqueue(uid)

    def enqueue(self, uid: str) -> None:
        """Sync the pod `uid` soon; coalesces with a sync already queued, never runs two at once."""
        w = self._workers.get(uid)
        if w is not None:
            w.wake.set()
            return
        if self._tg is None:
            return
        w = self._workers[uid] = _Worker()
        w.task = self._tg.create_task(self._work(uid, w), name=f"pod-worker-{uid}")

    async def _work(self, uid: str, w: _Worker) -> None:
        try:
            while True:
                w.wake.clear()
                try:
                    delay = await self.sync(uid)
                except Exception as e:  # a bug or a transport failure: logged, retried
                    log.warning("sync of pod %s failed: %s", uid, e, exc_info=not isinstance(e, (ApiError, OSError)))
                    delay = self.resync_seconds
                if delay is None:
                    return
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races with
                # the wake-up, and the worker would then outlive its TaskGroup.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await w.wake.wait()
        finally:
            if self._workers.get(uid) is w:
                del self._workers[uid]

    async def _relist_loop(self) -> None:
        """The generic PLEG: relist the runtime, wake the pods whose containers or sandboxes changed, and clean
        up what belongs to pods the API no longer has (only once the informer has listed)."""
        while True:
            try:
                await self.relist()
            except Exception as e:
                log.warning("runtime relist failed: %s", e)
            await asyncio.sleep(self.relist_seconds)

    async def relist(self) -> None:
        sandboxes = await self.runtime.list_sandboxes()
        containers = await self.runtime.list_containers()
        seen: dict[str, ContainerState] = {}
        changed: set[str] = set()
        for c in containers:
            seen[c.id] = c.state
            if self._seen.get(c.id) != c.state:
                changed.add(c.labels.get(LABEL_POD_UID, ""))
        for s in sandboxes:
            key = f"sandbox/{s.id}"
            seen[key] = ContainerState.RUNNING if s.state == SandboxState.READY else ContainerState.EXITED
            if self._seen.get(key) != seen[key]:
                changed.add(s.uid)
        self._seen = seen
        if self.informer.synced:
            owners = {s.uid for s in sandboxes} | {c.labels.get(LABEL_POD_UID, "") for c in containers}
            changed |= {uid for uid in owners if uid not in self._pods}
        for uid in changed:
            if uid and (uid in self._pods or self.informer.synced):
                self.enqueue(uid)

    # --- sync ---

    async def sync(self, uid: str) -> float | None:
        """One sync of pod `uid`; returns the delay until the next periodic one, None when the pod is gone."""
        self.syncs[uid] = self.syncs.get(uid, 0) + 1
        pod = self._pods.get(uid)
        if pod is None:
            if not self.informer.synced:
                return self.resync_seconds
            await self.cleanup_orphan(uid)
            return None
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self.terminate(pod)
            return self.resync_seconds
        return await self.sync_pod(pod)

    async def _state(self, uid: str) -> tuple[list[SandboxStatus], list[ContainerStatus]]:
        sandboxes = [s for s in await self.runtime.list_sandboxes() if s.uid == uid]
        containers = [c for c in await self.runtime.list_containers() if c.labels.get(LABEL_POD_UID) == uid]
        return sandboxes, containers

    async def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        await self.events.record(pod, type_, reason, message, COMPONENT)

    def _sandbox_config(self, pod: Obj, attempt: int, warnings: list[tuple[str, str]]) -> SandboxConfig:
        return cbuild.sandbox_config(pod, node_name=self.node_name, log_root=self.log_root, dns=self.dns,
                                     attempt=attempt, warn=lambda r, m: warnings.append((r, m)))

    async def _host_ip(self) -> str:
        if not self.host_ip:
            try:
                node = await self.client.get(NODES, "", self.node_name)
            except ApiError:
                return ""
            for a in (node.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP" and a.get("address"):
                    self.host_ip = str(a["address"])
                    break
        return self.host_ip

    def _status_base(self, pod: Obj) -> Obj:
        """The pod with the status last written by us in place of a possibly older cached one; conditions the
        kubelet does not own (PodScheduled, readiness gates, DisruptionTarget) stay as the API has them."""
        cached = self._status_cache.get(_uid(pod))
        if cached is None:
            return pod
        current = pod.get("status") or {}
        foreign = [c for c in current.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
        owned = [c for c in cached.get("conditions") or [] if c.get("type") in KUBELET_CONDITIONS]
        return {**pod, "status": {**current, **cached, "conditions": owned + foreign}}

    async def sync_pod(self, pod: Obj) -> float:
        """Bring a (not deleted) pod to what its spec asks; returns when to look again."""
        uid = _uid(pod)
        pod = self._status_base(pod)
        phase = (pod.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            await self._stop_finished(pod)
            return self.idle_resync_seconds
        waiting: dict[str, Waiting] = {}
        try:
            paths = await self.volumes.setup(pod)
        except VolumeError as e:
            await self._event(pod, "Warning", e.reason, e.message)
            await self._report(pod, waiting)
            return self.resync_seconds
        sandboxes, containers = await self._state(uid)
        actions = compute_pod_actions(
            pod, sandboxes, containers, backoff=self.backoff,
            liveness_failed=lambda cid: self.probes.liveness_failed(uid, cid), now=self.clock(),
            hash_of=cbuild.container_hash, started=lambda name: self.probes.started(uid, name))
        await self._kill(pod, actions, sandboxes, containers)
        for cid in actions.remove:
            with contextlib.suppress(RuntimeError_):
                await self.runtime.remove_container(cid)
        if actions.init_failed or (actions.kill_pod and not actions.create_sandbox):
            await self._report(pod, waiting)
            return self.idle_resync_seconds
        warnings: list[tuple[str, str]] = []
        sandbox_config = self._sandbox_config(pod, actions.attempt, warnings)
        sandbox_id = actions.sandbox_id
        if actions.create_sandbox:
            if actions.attempt > 0:
                await self._event(pod, "Normal", "SandboxChanged",
                                  "Pod sandbox changed, it will be killed and re-created.")
            try:
                sandbox_id = await self.runtime.run_sandbox(sandbox_config)
            except RuntimeError_ as e:
                await self._event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e.message}")
                await self._report(pod, waiting)
                return self.resync_seconds
        for reason, message in warnings:
            await self._event(pod, "Warning", reason, message)
        sandbox = await self.runtime.sandbox_status(sandbox_id) if sandbox_id else None
        pod_ips = [sandbox.ip, *sandbox.additional_ips] if sandbox and sandbox.ip else []
        host_ip = await self._host_ip()
        if (pod.get("spec") or {}).get("hostNetwork") and host_ip:
            pod_ips = [host_ip]
        hosts_path = await self._write_etc_hosts(pod, pod_ips)
        for start in actions.start:
            ok = await self._start(pod, start, sandbox_id, sandbox_config, paths, pod_ips, host_ip, hosts_path,
                                   waiting)
            if start.init and not is_sidecar(_specs(pod).get(start.name, {})) and not ok:
                break
        waiting.update(actions.waiting)
        for name, w in actions.waiting.items():
            if w.reason == CRASH_LOOP_BACK_OFF:  # upstream doBackOff records this on every held start
                await self._event(pod, "Warning", "BackOff",
                                  f"Back-off restarting failed container {name} in pod {cbuild.pod_full_name(pod)}")
        pending = await self._report(pod, waiting, pod_ip=pod_ips[0] if pod_ips else "")
        delay = self.resync_seconds if pending or waiting or actions.start else self.idle_resync_seconds
        if actions.requeue_after is not None:
            delay = min(delay, max(actions.requeue_after, 0.05))
        return delay

    async def _report(self, pod: Obj, waiting: Mapping[str, Waiting], *, pod_ip: str = "",
                      terminal: bool = False) -> bool:
        """Tell the prober what runs, then write the status; True when the pod is not settled yet (not all
        containers running and ready), so its worker looks again soon."""
        uid = _uid(pod)
        sandboxes, containers = await self._state(uid)
        newest = max(sandboxes, key=lambda s: (s.attempt, s.created_at_ns)) if sandboxes else None
        running = {}
        for c in sorted(containers, key=lambda c: c.created_at_ns):
            if c.state == ContainerState.RUNNING:
                running[container_name_of(c)] = c
        self.probes.update_pod(pod, pod_ip or (newest.ip if newest else ""), running)
        status = pod_status(
            pod, newest, containers, ready=lambda n: self.probes.ready(uid, n),
            started=lambda n: self.probes.started(uid, n), waiting=waiting, host_ip=await self._host_ip(),
            now=dt.datetime.fromtimestamp(self.clock(), dt.UTC), terminal=terminal, runtime_type=self.runtime_type)
        await self.write_status(pod, status)
        ready = next((c.get("status") for c in status["conditions"] if c.get("type") == "ContainersReady"), "")
        return status["phase"] not in TERMINAL_PHASES and ready != "True"

    async def write_status(self, pod: Obj, status: Obj) -> None:
        """PATCH the pod's status when it differs from the last one written (the status manager's cache)."""
        uid = _uid(pod)
        base = self._status_cache.get(uid, pod.get("status") or {})
        if status == base:
            return
        md = pod.get("metadata") or {}
        body = status_patch(uid, pod.get("status") or {}, status)
        try:
            await self.client.patch(PODS, str(md.get("namespace", "")), str(md.get("name", "")),
                                    Patch("strategic", body), subresource="status", field_manager=FIELD_MANAGER)
        except ApiError as e:
            if e.code in (404, 409):  # gone, or another pod of that name now
                return
            raise
        self._status_cache[uid] = status

    async def _write_etc_hosts(self, pod: Obj, pod_ips: list[str]) -> str | None:
        """The kubelet-managed /etc/hosts of the pod, under its pod dir (`ensureHostsFile`)."""
        if not pod_ips:
            return None
        path = self.pod_dir(_uid(pod)) / "etc-hosts"
        content = cbuild.etc_hosts(pod, pod_ips, cluster_domain=self.dns.cluster_domain)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != content:
                path.write_text(content)
                path.chmod(0o644)

        await asyncio.to_thread(write)
        return str(path)

    async def _start(self, pod: Obj, start: ContainerToStart, sandbox_id: str, sandbox_config: SandboxConfig,
                     paths: Mapping[str, str], pod_ips: list[str], host_ip: str, hosts_path: str | None,
                     waiting: dict[str, Waiting]) -> bool:
        """Pull, configure, create, start one container and run its postStart hook (`startContainer`);
        failures become the container's waiting reason and a `Failed` event. True when it started."""
        uid = _uid(pod)
        spec = _specs(pod).get(start.name)
        if spec is None:
            return False
        try:
            image = await self.images.ensure_image(pod, spec, sandbox_config)
        except ImagePullFailure as e:
            waiting[start.name] = Waiting(e.reason, e.message)
            await self._event(pod, "Warning", "Failed", f"Error: {e.reason}")
            return False
        try:
            mounts = self.volumes.container_mounts(pod, spec, paths)
            config = await cbuild.container_config(
                pod, spec, restart_count=start.restart_count, image=image, mounts=mounts, lookup=self.lookup,
                pod_ip=pod_ips[0] if pod_ips else "", pod_ips=pod_ips, host_ip=host_ip, node_name=self.node_name,
                etc_hosts_path=hosts_path, pod_dir=self.pod_dir(uid), memory_capacity=self.memory_capacity)
        except (ContainerConfigError, VolumeError) as e:
            reason = e.reason if isinstance(e, ContainerConfigError) else "CreateContainerConfigError"
            waiting[start.name] = Waiting(reason, e.message)
            await self._event(pod, "Warning", "Failed", f"Error: {e.message}")
            return False
        if start.restarting:
            key = container_key(uid, start.name)
            if start.reset_backoff:
                self.backoff.reset(key)
            self.backoff.next(key, self.clock())
        try:
            cid = await self.runtime.create_container(sandbox_id, config, sandbox_config)
        except RuntimeError_ as e:
            waiting[start.name] = Waiting("CreateContainerError", e.message)
            await self._event(pod, "Warning", "Failed", f"Error: {e.message}")
            return False
        await self._event(pod, "Normal", "Created", f"Created container {start.name}")
        try:
            await self.runtime.start_container(cid)
        except RuntimeError_ as e:
            waiting[start.name] = Waiting("RunContainerError", e.message)
            await self._event(pod, "Warning", "Failed", f"Error: {e.message}")
            return False
        await self._event(pod, "Normal", "Started", f"Started container {start.name}")
        handler = (spec.get("lifecycle") or {}).get("postStart")
        if handler:
            error = await self.run_handler(self.runtime, pod, spec, cid, handler, pod_ips[0] if pod_ips else "",
                                           POST_START_TIMEOUT_SECONDS)
            if error is not None:
                await self._event(pod, "Warning", "FailedPostStartHook", error)
                await self.kill_container(pod, spec, cid, _grace_of(pod), "FailedPostStartHook")
                return False
        return True

    # --- killing ---

    async def kill_container(self, pod: Obj, spec: Obj | None, container_id: str, grace: int, message: str = "",
                             *, pod_ip: str = "", name: str = "") -> None:
        """Stop one container (`killContainer`): the `Killing` event, the preStop hook (its time counts against
        `grace`, leaving at least 2 s), then SIGTERM and SIGKILL after the rest of the grace period."""
        cname = name or str((spec or {}).get("name", ""))
        await self._event(pod, "Normal", "Killing", message or f"Stopping container {cname}")
        handler = ((spec or {}).get("lifecycle") or {}).get("preStop")
        if handler and grace > 0:
            began = time.monotonic()
            error = await self.run_handler(self.runtime, pod, spec or {}, container_id, handler, pod_ip, grace)
            if error is not None:
                await self._event(pod, "Warning", "FailedPreStopHook", error)
            grace = max(MIN_GRACE_SECONDS, grace - int(time.monotonic() - began))
        try:
            await self.runtime.stop_container(container_id, grace)
        except RuntimeError_ as e:
            if not e.not_found:
                raise

    async def _kill_all(self, pod: Obj, containers: list[ContainerStatus], grace: int, pod_ip: str,
                        messages: Mapping[str, str] | None = None) -> None:
        """Stop every live container of the pod: app containers together, then sidecars in reverse order.
        `messages` (container id → text) overrides the default `Killing` event text."""
        messages = messages or {}
        specs = _specs(pod)
        live = [c for c in containers if _live(c)]
        sidecar_order = [str(s.get("name", "")) for s in (pod.get("spec") or {}).get("initContainers") or []
                         if is_sidecar(s)]
        first = [c for c in live if container_name_of(c) not in sidecar_order]
        await asyncio.gather(*(self.kill_container(pod, specs.get(container_name_of(c)), c.id, grace,
                                                   messages.get(c.id, ""), pod_ip=pod_ip, name=container_name_of(c))
                               for c in first))
        for name in reversed(sidecar_order):
            for c in live:
                if container_name_of(c) == name:
                    await self.kill_container(pod, specs.get(name), c.id, grace, messages.get(c.id, ""),
                                              pod_ip=pod_ip, name=name)

    async def _kill(self, pod: Obj, actions: PodActions, sandboxes: list[SandboxStatus],
                    containers: list[ContainerStatus]) -> None:
        specs = _specs(pod)
        pod_ip = next((s.ip for s in sandboxes if s.state == SandboxState.READY and s.ip), "")
        if actions.kill_pod:
            await self._kill_all(pod, containers, _grace_of(pod), pod_ip, {k.id: k.message for k in actions.kill})
            for s in sandboxes:
                if s.state == SandboxState.READY:
                    await self.runtime.stop_sandbox(s.id)
            return
        for k in actions.kill:
            await self.kill_container(pod, specs.get(k.name), k.id, _grace_of(pod), k.message, pod_ip=pod_ip,
                                      name=k.name)

    async def _stop_finished(self, pod: Obj) -> None:
        """A pod in a terminal phase keeps nothing running (its sandbox is stopped; containers stay for logs)."""
        sandboxes, containers = await self._state(_uid(pod))
        if any(_live(c) for c in containers):
            await self._kill_all(pod, containers, _grace_of(pod), "")
        for s in sandboxes:
            if s.state == SandboxState.READY:
                await self.runtime.stop_sandbox(s.id)
        await self._report(pod, {}, terminal=True)

    async def terminate(self, pod: Obj) -> None:
        """A deleted pod: stop it within its grace period, report the terminal status, clean up, then remove
        the pod object (grace 0, uid precondition) as the status manager does once nothing is left."""
        uid = _uid(pod)
        pod = self._status_base(pod)
        sandboxes, containers = await self._state(uid)
        if uid not in self._stopped_for_deletion or any(_live(c) for c in containers):
            pod_ip = next((s.ip for s in sandboxes if s.state == SandboxState.READY and s.ip), "")
            running = {container_name_of(c): c for c in containers if c.state == ContainerState.RUNNING}
            self.probes.update_pod(pod, pod_ip, running)  # deletion: liveness and startup probing stop
            await self._kill_all(pod, containers, _grace_of(pod), pod_ip)
            for s in sandboxes:
                await self.runtime.stop_sandbox(s.id)
            self._stopped_for_deletion.add(uid)
        await self._report(pod, {}, terminal=True)
        await self._remove_runtime_state(uid)
        await self.volumes.teardown(uid)
        md = pod.get("metadata") or {}
        try:
            await self.client.delete(PODS, str(md.get("namespace", "")), str(md.get("name", "")),
                                     DeleteOptions(grace_period_seconds=0, preconditions={"uid": uid}))
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _remove_runtime_state(self, uid: str) -> None:
        sandboxes, containers = await self._state(uid)
        for c in containers:
            await self.runtime.remove_container(c.id)
        for s in sandboxes:
            await self.runtime.remove_sandbox(s.id)

    async def cleanup_orphan(self, uid: str) -> None:
        """Runtime state of a pod the API no longer has (force-deleted, or deleted while we were down): stop it
        with the grace the containers were created with, remove it and the pod's volumes and bookkeeping."""
        sandboxes, containers = await self._state(uid)
        for c in containers:
            if _live(c):
                try:
                    grace = int(c.annotations.get(ANNOTATION_TERMINATION_GRACE, DEFAULT_GRACE_SECONDS))
                except ValueError:
                    grace = DEFAULT_GRACE_SECONDS
                with contextlib.suppress(RuntimeError_):
                    await self.runtime.stop_container(c.id, grace)
        for s in sandboxes:
            with contextlib.suppress(RuntimeError_):
                await self.runtime.stop_sandbox(s.id)
        await self._remove_runtime_state(uid)
        await self.volumes.teardown(uid)
        self.probes.remove_pod(uid)
        self.backoff.forget_prefix(uid + "/")
        self.images.backoff.forget_prefix(uid + "/")
        self._status_cache.pop(uid, None)
        self._stopped_for_deletion.discard(uid)
