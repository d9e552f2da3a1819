"""`compute_pod_actions`: what kuberuntime's computePodActions decides, table by table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from skiff.agent.backoff import Backoff, container_key
from skiff.agent.podactions import PodActions, compute_pod_actions
from skiff.agent.runtime.interface import (
    ANNOTATION_HASH,
    ANNOTATION_RESTART_COUNT,
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    SandboxState,
    SandboxStatus,
)
from skiff.api.meta import Obj

NOW = 100_000.0
UID = "u1"
_ids = iter(range(1, 10_000))


def hash_of(container: Obj) -> str:
    return f"h:{container.get('image')}"


def make_pod(restart: str = "Always", apps: tuple[str, ...] = ("app",), inits: tuple[str, ...] = (),
             sidecars: tuple[str, ...] = ()) -> Obj:
    init_specs = [{"name": n, "image": "img", **({"restartPolicy": "Always"} if n in sidecars else {})}
                  for n in inits]
    return {"metadata": {"name": "web", "namespace": "default", "uid": UID},
            "spec": {"restartPolicy": restart, "initContainers": init_specs,
                     "containers": [{"name": n, "image": "img"} for n in apps]}}


def sb(attempt: int = 0, ready: bool = True, ip: str = "10.88.0.2") -> SandboxStatus:
    return SandboxStatus(id=f"s{attempt}-{next(_ids)}", name="web", namespace="default", uid=UID, attempt=attempt,
                         state=SandboxState.READY if ready else SandboxState.NOTREADY,
                         created_at_ns=attempt + 1, ip=ip)


def ctr(name: str, state: str = "running", exit_code: int = 0, restarts: int = 0, ran: float = 1.0,
        finished_ago: float = 1.0, image: str = "img", cid: str = "") -> ContainerStatus:
    finished = NOW - finished_ago
    return ContainerStatus(
        id=cid or f"{name}-{restarts}", sandbox_id="s", name=name, attempt=restarts,
        state=ContainerState[state.upper()], created_at_ns=int((finished - ran) * 1e9),
        started_at_ns=int((finished - ran) * 1e9), finished_at_ns=int(finished * 1e9) if state == "exited" else 0,
        exit_code=exit_code, labels={LABEL_POD_UID: UID, LABEL_CONTAINER_NAME: name},
        annotations={ANNOTATION_HASH: f"h:{image}", ANNOTATION_RESTART_COUNT: str(restarts)})


@dataclass
class Case:
    pod: Obj
    sandboxes: list[SandboxStatus]
    containers: list[ContainerStatus]
    create: bool = False
    attempt: int = 0
    kill_pod: bool = False
    start: list[tuple[str, int]] = field(default_factory=list)
    kill: list[tuple[str, str]] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)
    init_failed: bool = False
    failures: int = 0  # back-off steps already recorded for "app"
    liveness: frozenset[str] = frozenset()
    unstarted: frozenset[str] = frozenset()  # containers whose startup probe has not passed
    remove: list[str] = field(default_factory=list)


CASES = [
    pytest.param(Case(make_pod(), [], [], create=True, start=[("app", 0)]), id="new-pod"),
    pytest.param(Case(make_pod(inits=("init-a", "init-b")), [], [], create=True, start=[("init-a", 0)]),
                 id="new-pod-starts-first-init-only"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app")]), id="running-nothing-to-do"),
    pytest.param(Case(make_pod(), [sb(ready=False)], [ctr("app")], create=True, attempt=1, kill_pod=True,
                      start=[("app", 1)]), id="sandbox-died-kill-all-recreate"),
    pytest.param(Case(make_pod(), [sb(), sb(attempt=1)], [ctr("app")], create=True, attempt=2, kill_pod=True,
                      start=[("app", 1)]), id="two-ready-sandboxes"),
    pytest.param(Case(make_pod(), [sb(ip="")], [ctr("app")], create=True, attempt=1, kill_pod=True,
                      start=[("app", 1)]), id="sandbox-without-ip"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", "exited", 1)], start=[("app", 1)]),
                 id="always-restarts-first-failure-at-once"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", "exited", 1, restarts=1)], failures=1,
                      waiting={"app": "CrashLoopBackOff"}), id="always-backs-off"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", "exited", 1, restarts=1, finished_ago=11)], failures=1,
                      start=[("app", 2)]), id="back-off-over"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", "exited", 1, restarts=1, ran=700)], failures=1,
                      start=[("app", 2)]), id="ran-ten-minutes-back-off-reset"),
    pytest.param(Case(make_pod("OnFailure"), [sb()], [ctr("app", "exited", 0)], kill_pod=True),
                 id="onfailure-succeeded-pod-done"),
    pytest.param(Case(make_pod("OnFailure"), [sb()], [ctr("app", "exited", 2)], start=[("app", 1)]),
                 id="onfailure-restarts-failure"),
    pytest.param(Case(make_pod("Never"), [sb()], [ctr("app", "exited", 2)], kill_pod=True),
                 id="never-does-not-restart"),
    pytest.param(Case(make_pod("Never"), [sb(ready=False)], [ctr("app", "exited", 0)], attempt=1,
                      kill_pod=True), id="never-gets-no-second-sandbox"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", cid="c1")], liveness=frozenset({"c1"}),
                      kill=[("app", "Container app failed liveness probe, will be restarted")],
                      start=[("app", 1)]), id="liveness-failed-restart"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", cid="c2", restarts=1),
                                            ctr("app", "exited", 137, cid="c1", finished_ago=3)],
                      liveness=frozenset({"c2"}), failures=1, waiting={"app": "CrashLoopBackOff"},
                      kill=[("app", "Container app failed liveness probe, will be restarted")]),
                 id="liveness-failed-again-backs-off"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", cid="c2", restarts=1),
                                            ctr("app", "exited", 137, cid="c1", finished_ago=11)],
                      liveness=frozenset({"c2"}), failures=1,
                      kill=[("app", "Container app failed liveness probe, will be restarted")], start=[("app", 2)]),
                 id="liveness-failed-after-back-off-restarts"),
    pytest.param(Case(make_pod("Never"), [sb()], [ctr("app", cid="c1")], liveness=frozenset({"c1"}),
                      kill=[("app", "Container app failed liveness probe")], kill_pod=True),
                 id="liveness-failed-never-nothing-left-to-run"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app", image="old")],
                      kill=[("app", "Container app definition changed, will be restarted")], start=[("app", 1)]),
                 id="spec-hash-changed"),
    pytest.param(Case(make_pod(), [sb()], [ctr("app"), ctr("old")],
                      kill=[("old", "Container old is not in the pod spec")]), id="container-not-in-spec"),
    pytest.param(Case(make_pod(inits=("init-a", "init-b")), [sb()], [ctr("init-a", "exited", 0)],
                      start=[("init-b", 0)]), id="next-init-container"),
    pytest.param(Case(make_pod(inits=("init-a", "init-b")), [sb()], [ctr("init-a")]), id="init-still-running"),
    pytest.param(Case(make_pod(inits=("init-a",)), [sb()], [ctr("init-a", "exited", 1)], start=[("init-a", 1)]),
                 id="failed-init-restarted"),
    pytest.param(Case(make_pod("Never", inits=("init-a",)), [sb()], [ctr("init-a", "exited", 1)],
                      kill_pod=True, init_failed=True), id="failed-init-fails-never-pod"),
    pytest.param(Case(make_pod(inits=("init-a",)), [sb()], [ctr("init-a", "exited", 0)], start=[("app", 0)]),
                 id="inits-done-app-starts"),
    pytest.param(Case(make_pod(inits=("side", "init-b"), sidecars=("side",)), [sb()], [ctr("side")],
                      start=[("init-b", 0)]), id="sidecar-started-next-init-runs"),
    pytest.param(Case(make_pod(inits=("side", "init-b"), sidecars=("side",)), [sb()], [ctr("side")],
                      unstarted=frozenset({"side"})), id="sidecar-not-started-next-init-waits"),
    pytest.param(Case(make_pod(inits=("side",), sidecars=("side",)), [sb()],
                      [ctr("side", "exited", 1), ctr("app")], start=[("side", 1)]),
                 id="sidecar-restarted-while-app-runs"),
    pytest.param(Case(make_pod("Never", inits=("side",), sidecars=("side",)), [sb()],
                      [ctr("side"), ctr("app", "exited", 0)], kill_pod=True), id="job-done-stops-sidecar"),
    pytest.param(Case(make_pod(), [sb()],
                      [ctr("app", "exited", 1, restarts=0, cid="a0"), ctr("app", "exited", 1, restarts=1, cid="a1"),
                       ctr("app", restarts=2, cid="a2")], remove=["a0"]), id="old-dead-containers-removed"),
]


def summary(a: PodActions) -> dict[str, object]:
    return {"create": a.create_sandbox, "attempt": a.attempt, "kill_pod": a.kill_pod,
            "start": [(s.name, s.restart_count) for s in a.start], "kill": [(k.name, k.message) for k in a.kill],
            "waiting": {n: w.reason for n, w in a.waiting.items()}, "init_failed": a.init_failed,
            "remove": a.remove}


@pytest.mark.parametrize("case", CASES)
def test_compute_pod_actions(case: Case) -> None:
    backoff = Backoff()
    for _ in range(case.failures):
        backoff.next(container_key(UID, "app"), NOW - 2)
    actions = compute_pod_actions(case.pod, case.sandboxes, case.containers, backoff=backoff,
                                  liveness_failed=lambda cid: cid in case.liveness, now=NOW, hash_of=hash_of,
                                  started=lambda name: name not in case.unstarted)
    assert summary(actions) == {"create": case.create, "attempt": case.attempt, "kill_pod": case.kill_pod,
                                "start": case.start, "kill": case.kill, "waiting": case.waiting,
                                "init_failed": case.init_failed, "remove": case.remove}


def test_crash_loop_message_and_requeue() -> None:
    backoff = Backoff()
    backoff.next(container_key(UID, "app"), NOW - 2)
    backoff.next(container_key(UID, "app"), NOW - 1)
    actions = compute_pod_actions(make_pod(), [sb()], [ctr("app", "exited", 1, restarts=2, finished_ago=5)],
                                  backoff=backoff, liveness_failed=lambda _: False, now=NOW, hash_of=hash_of)
    assert actions.waiting["app"].message == f"back-off 20s restarting failed container=app pod=web_default({UID})"
    assert actions.requeue_after == pytest.approx(15.0)


def test_a_long_run_asks_the_kubelet_to_reset_the_back_off() -> None:
    backoff = Backoff()
    backoff.next(container_key(UID, "app"), NOW - 2)
    actions = compute_pod_actions(make_pod(), [sb()], [ctr("app", "exited", 1, restarts=1, ran=700)],
                                  backoff=backoff, liveness_failed=lambda _: False, now=NOW, hash_of=hash_of)
    assert actions.start[0].reset_backoff and actions.start[0].restarting
