"""The kubelet core against a real control plane (in-process client) and the in-memory FakeRuntime.

Back-off is driven by a virtual clock shared by the kubelet and the runtime; waits poll the API until a
condition holds (`eventually` only turns a hang into a failure, nothing is timed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.containers import DNSSettings
from skiff.agent.kubelet import Kubelet
from skiff.agent.runtime.fake import FakeRuntime
from skiff.agent.runtime.interface import ContainerState, Mount, SandboxConfig
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.events import EventBroadcaster
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS, NODES, PODS, DeleteOptions, ListOptions, Patch
from skiff.testing import eventually, start_control_plane

NODE = "node-1"
NODE_IP = "192.0.2.10"
IMAGE = "skiff.local/test/web:1"


class Clock:
    """Virtual wall clock (seconds since the epoch) for back-off and timestamps."""

    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeVolumes:
    """A VolumeManager stand-in: pods here have no volumes; records teardowns."""

    torn_down: list[str] = field(default_factory=list)

    async def setup(self, pod: Obj) -> dict[str, str]:
        return {}

    def container_mounts(self, pod: Obj, container: Obj, paths: Mapping[str, str]) -> list[Mount]:
        return []

    async def teardown(self, pod_uid: str) -> None:
        self.torn_down.append(pod_uid)

    async def run(self) -> None:
        await asyncio.Event().wait()


@dataclass
class Env:
    client: InProcessClient
    runtime: FakeRuntime
    clock: Clock
    volumes: FakeVolumes
    tmp: Path
    kubelets: list[asyncio.Task[None]] = field(default_factory=list)

    def kubelet(self) -> Kubelet:
        return Kubelet(self.client, self.runtime, node_name=NODE, data_dir=self.tmp / "agent",
                       volumes=self.volumes, events=EventBroadcaster(self.client), dns=DNSSettings(),
                       clock=self.clock, memory_capacity=8 << 30, resync_seconds=0.05, idle_resync_seconds=0.2,
                       relist_seconds=0.02)

    def start(self, kubelet: Kubelet) -> asyncio.Task[None]:
        task = asyncio.create_task(kubelet.run())
        self.kubelets.append(task)
        return task

    async def create(self, pod: Obj) -> Obj:
        return await self.client.create(PODS, "default", pod)

    async def status(self, name: str = "web") -> Obj:
        try:
            return (await self.client.get(PODS, "default", name)).get("status") or {}
        except ApiError:
            return {}

    async def events(self, reason: str) -> list[str]:
        items = (await self.client.list(EVENTS, "default", ListOptions()))["items"]
        return [str(e.get("message")) for e in items if e.get("reason") == reason]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    await client.create(NODES, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
                                    "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]}})
    clock = Clock()
    runtime = FakeRuntime(clock)
    runtime.add_image(IMAGE)
    e = Env(client, runtime, clock, FakeVolumes(), tmp_path)
    try:
        yield e
    finally:
        for task in e.kubelets:
            await stop(task)
        await plane.store.close()


def pod(name: str = "web", *, restart: str = "Always", containers: list[Obj] | None = None,
        init: list[Obj] | None = None, grace: int | None = None) -> Obj:
    spec: Obj = {"nodeName": NODE, "restartPolicy": restart,
                 "containers": containers or [{"name": "app", "image": IMAGE}]}
    if init:
        spec["initContainers"] = init
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def condition(status: Obj, type_: str) -> str:
    return next((str(c.get("status")) for c in status.get("conditions") or [] if c.get("type") == type_), "")


def app_status(status: Obj, name: str = "app") -> Obj:
    return next((c for c in status.get("containerStatuses") or [] if c.get("name") == name), {})


async def test_a_bound_pod_runs_with_an_ip_and_becomes_ready(env: Env) -> None:
    env.start(env.kubelet())
    created = await env.create(pod())

    async def running() -> Obj | None:
        s = await env.status()
        return s if s.get("phase") == "Running" and condition(s, "Ready") == "True" else None

    status = await eventually(running, "pod Running and Ready")
    assert status["podIP"] == "10.88.0.2" and status["podIPs"] == [{"ip": "10.88.0.2"}]
    assert status["hostIP"] == NODE_IP
    assert condition(status, "PodReadyToStartContainers") == "True"
    assert condition(status, "Initialized") == "True" and condition(status, "ContainersReady") == "True"
    app = app_status(status)
    container = env.runtime.running("app")
    assert container is not None
    assert app["containerID"] == f"containerd://{container.status.id}" and app["ready"] and app["started"]
    assert "running" in app["state"] and app["restartCount"] == 0
    assert status["startTime"]
    assert container.status.labels["io.kubernetes.pod.uid"] == created["metadata"]["uid"]
    assert await env.events("Started") == ["Started container app"]
    assert await env.events("Pulled") == [f'Container image "{IMAGE}" already present on machine']
    hosts = env.tmp / "agent" / "pods" / created["metadata"]["uid"] / "etc-hosts"
    assert "10.88.0.2\tweb" in hosts.read_text()


async def test_init_containers_run_one_by_one_before_the_app(env: Env) -> None:
    env.runtime.crash_on_start["init-a"] = (0, "Completed")
    env.runtime.crash_on_start["init-b"] = (0, "Completed")
    env.start(env.kubelet())
    await env.create(pod(init=[{"name": "init-a", "image": IMAGE}, {"name": "init-b", "image": IMAGE}]))

    async def running() -> Obj | None:
        s = await env.status()
        return s if s.get("phase") == "Running" else None

    status = await eventually(running, "pod Running after its init containers")
    assert env.runtime.call_names("start_container") == ["init-a", "init-b", "app"]
    inits = status["initContainerStatuses"]
    assert [i["state"]["terminated"]["reason"] for i in inits] == ["Completed", "Completed"]
    assert all(i["ready"] for i in inits)
    assert condition(status, "Initialized") == "True"


async def test_a_failing_init_container_fails_a_never_restart_pod(env: Env) -> None:
    env.runtime.crash_on_start["init-a"] = (3, "Error")
    env.start(env.kubelet())
    await env.create(pod(restart="Never", init=[{"name": "init-a", "image": IMAGE}]))

    async def failed() -> Obj | None:
        s = await env.status()
        return s if s.get("phase") == "Failed" else None

    status = await eventually(failed, "pod Failed")
    assert "app" not in env.runtime.call_names("start_container")
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


async def test_a_crashing_container_is_restarted_with_growing_back_off(env: Env) -> None:
    env.runtime.crash_on_start["app"] = (1, "Error")
    env.start(env.kubelet())
    created = await env.create(pod())
    uid = created["metadata"]["uid"]

    async def backing_off(delay: str, restarts: int) -> Any:
        s = await env.status()
        app = app_status(s)
        waiting = (app.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff" and app.get("restartCount") == restarts:
            return app
        return None

    app = await eventually(lambda: backing_off("10s", 1), "CrashLoopBackOff after the first restart")
    assert app["state"]["waiting"]["message"] == (
        f"back-off 10s restarting failed container=app pod=web_default({uid})")
    assert app["lastState"]["terminated"]["exitCode"] == 1
    assert app["lastState"]["terminated"]["reason"] == "Error"
    assert env.runtime.call_names("start_container") == ["app", "app"]
    env.clock.t += 10
    app = await eventually(lambda: backing_off("20s", 2), "the second restart, then a longer back-off")
    assert app["state"]["waiting"]["message"] == (
        f"back-off 20s restarting failed container=app pod=web_default({uid})")
    assert env.runtime.call_names("start_container") == ["app", "app", "app"]
    assert (await env.status())["phase"] == "Running"  # restartPolicy Always: restarting, not failed
    events = (await env.client.list(EVENTS, "default", ListOptions()))["items"]
    assert any(e["reason"] == "BackOff" and e["type"] == "Warning" and e["message"] ==
               f"Back-off restarting failed container app in pod web_default({uid})" for e in events)


async def test_an_oom_kill_is_reported_in_last_state(env: Env) -> None:
    env.start(env.kubelet())
    await env.create(pod())

    async def started(count: int) -> bool:
        return env.runtime.call_names("start_container").count("app") == count and \
            env.runtime.running("app") is not None

    await eventually(lambda: started(1), "app running")
    env.runtime.exit("app", 137, "OOMKilled")

    async def restarted() -> Obj | None:
        app = app_status(await env.status())
        return app if app.get("restartCount") == 1 and "running" in (app.get("state") or {}) else None

    app = await eventually(restarted, "app restarted after the OOM kill")
    assert app["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert app["lastState"]["terminated"]["exitCode"] == 137


async def test_a_job_style_pod_that_exits_zero_succeeds(env: Env) -> None:
    env.runtime.crash_on_start["app"] = (0, "Completed")
    env.start(env.kubelet())
    await env.create(pod(restart="Never"))

    async def succeeded() -> Obj | None:
        s = await env.status()
        return s if s.get("phase") == "Succeeded" else None

    status = await eventually(succeeded, "pod Succeeded")
    term = app_status(status)["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert condition(status, "Ready") == "False"
    assert env.runtime.call_names("start_container") == ["app"]

    async def sandbox_stopped() -> bool:
        return condition(await env.status(), "PodReadyToStartContainers") == "False"

    await eventually(sandbox_stopped, "the sandbox of the finished pod stopped")


async def test_deleting_a_pod_runs_pre_stop_then_stops_with_the_grace_period(env: Env) -> None:
    env.start(env.kubelet())
    container = {"name": "app", "image": IMAGE,
                 "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "echo bye"]}}}}
    created = await env.create(pod(containers=[container], grace=20))

    async def running() -> bool:
        return (await env.status()).get("phase") == "Running"

    await eventually(running, "pod Running")
    await env.client.delete(PODS, "default", "web", DeleteOptions())

    async def gone() -> bool:
        try:
            await env.client.get(PODS, "default", "web")
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(gone, "the pod object removed by the kubelet")
    ops = [c for c in env.runtime.calls if c[0] in ("exec_sync", "stop_container")]
    assert ops[0] == ("exec_sync", "app", "/bin/sh", "-c", "echo bye")
    assert ops[1] == ("stop_container", "app", "20")
    assert env.runtime.sandboxes == {} and env.runtime.containers == {}
    assert created["metadata"]["uid"] in env.volumes.torn_down
    assert await env.events("Killing") == ["Stopping container app"]


async def test_a_restarted_kubelet_adopts_running_containers_without_restarting_them(env: Env) -> None:
    first = env.start(env.kubelet())
    await env.create(pod())

    async def ready() -> bool:
        return condition(await env.status(), "Ready") == "True"

    await eventually(ready, "pod Ready")
    await stop(first)
    before = list(env.runtime.calls)
    status_before = await env.status()
    second = env.kubelet()
    env.start(second)

    async def synced() -> bool:
        return second.syncs.get(created_uid(status_before, env), 0) >= 2

    await eventually(synced, "the new kubelet synced the pod")
    new_calls = [c for c in env.runtime.calls[len(before):]
                 if c[0] in ("run_sandbox", "create_container", "start_container", "stop_container", "stop_sandbox")]
    assert new_calls == []
    running = env.runtime.running("app")
    assert running is not None and running.status.state == ContainerState.RUNNING
    assert await env.status() == status_before


def created_uid(status: Obj, env: Env) -> str:
    app = app_status(status)
    cid = str(app["containerID"]).removeprefix("containerd://")
    return env.runtime.containers[cid].status.labels["io.kubernetes.pod.uid"]


async def test_runtime_state_of_pods_the_api_does_not_have_is_cleaned_up(env: Env) -> None:
    kubelet = env.kubelet()
    await env.runtime.run_sandbox(SandboxConfig(name="ghost", namespace="default", uid="gone-uid"))
    env.start(kubelet)

    async def cleaned() -> bool:
        return env.runtime.sandboxes == {}

    await eventually(cleaned, "the orphaned sandbox removed")
    assert "gone-uid" in env.volumes.torn_down


async def test_a_missing_image_with_pull_policy_never_is_reported(env: Env) -> None:
    env.start(env.kubelet())
    await env.create(pod(containers=[{"name": "app", "image": "example.com/none:1", "imagePullPolicy": "Never"}]))

    async def waiting() -> Obj | None:
        w = (app_status(await env.status()).get("state") or {}).get("waiting") or {}
        return w if w.get("reason") == "ErrImageNeverPull" else None

    w = await eventually(waiting, "ErrImageNeverPull")
    assert w["message"] == 'Container image "example.com/none:1" is not present with pull policy of Never'
    assert (await env.status())["phase"] == "Pending"


class ScriptedProber:
    """A Prober whose liveness verdicts the test sets (by container id)."""

    def __init__(self) -> None:
        self.dead: set[str] = set()

    def update_pod(self, pod: Obj, pod_ip: str, running: Mapping[str, Any]) -> None:
        return None

    def remove_pod(self, pod_uid: str) -> None:
        return None

    def ready(self, pod_uid: str, container: str) -> bool:
        return True

    def started(self, pod_uid: str, container: str) -> bool:
        return True

    def liveness_failed(self, pod_uid: str, container_id: str) -> bool:
        return container_id in self.dead

    async def close(self) -> None:
        return None


async def test_a_container_failing_liveness_is_killed_and_restarted(env: Env) -> None:
    prober = ScriptedProber()
    kubelet = Kubelet(env.client, env.runtime, node_name=NODE, data_dir=env.tmp / "agent", volumes=env.volumes,
                      events=EventBroadcaster(env.client), dns=DNSSettings(), clock=env.clock, probes=prober,
                      memory_capacity=8 << 30, resync_seconds=0.05, relist_seconds=0.02)
    env.start(kubelet)
    await env.create(pod())

    async def running_app() -> Any:
        return env.runtime.running("app")

    first = await eventually(running_app, "app running")
    prober.dead.add(first.status.id)
    kubelet.enqueue(first.status.labels["io.kubernetes.pod.uid"])  # what ProbeManager's on_change does

    async def restarted() -> Obj | None:
        app = app_status(await env.status())
        return app if app.get("restartCount") == 1 and "running" in (app.get("state") or {}) else None

    await eventually(restarted, "app restarted after failing liveness")
    assert ("stop_container", "app", "30") in env.runtime.calls
    assert await env.events("Killing") == ["Container app failed liveness probe, will be restarted"]


async def test_conditions_set_by_others_are_kept_and_readiness_gates_apply(env: Env) -> None:
    env.start(env.kubelet())
    gated = pod()
    gated["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    await env.create(gated)

    async def gate_blocks() -> bool:
        s = await env.status()
        return s.get("phase") == "Running" and condition(s, "ContainersReady") == "True" and \
            condition(s, "Ready") == "False"

    await eventually(gate_blocks, "Ready held back by the readiness gate")
    await env.client.patch(PODS, "default", "web", Patch("strategic", {"status": {"conditions": [
        {"type": "example.com/lb", "status": "True"}]}}), subresource="status")

    async def ready() -> Obj | None:
        s = await env.status()
        return s if condition(s, "Ready") == "True" else None

    status = await eventually(ready, "Ready once the gate is True")
    assert condition(status, "example.com/lb") == "True" and condition(status, "PodScheduled") in ("True", "")
