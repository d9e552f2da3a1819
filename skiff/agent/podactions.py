"""What to do with one pod on this node, computed purely from its spec and what the runtime has.

Mirrors kuberuntime's `computePodActions` (`pkg/kubelet/kuberuntime/kuberuntime_manager.go`, 1.32):

- a pod needs a (new) sandbox when it has none that is ready, more than one, or the newest lost its IP; then
  everything of the pod is killed first and every container starts again in the new sandbox — except that a
  `restartPolicy: Never` pod whose containers already ran gets no second sandbox;
- init containers run strictly one at a time in spec order; a failed one is restarted (with back-off) unless
  the pod's restartPolicy is Never, in which case the pod fails; restartable init containers (sidecars,
  `restartPolicy: Always` on an init container) start in order too, and the next init container waits until
  the sidecar counts as started (its startup probe passed), after which they are kept running like app
  containers (`computeInitContainerActions`);
- app containers start when they have never run, or have exited and the restart policy allows it (Always;
  OnFailure after a non-zero exit), subject to the crash-loop back-off (kuberuntime's `doBackOff`, here in the
  plan so the waiting reason can be reported);
- running containers are killed when their liveness probe failed, their spec hash changed, or they are not in
  the spec any more, with upstream's messages;
- when nothing runs and nothing will start, the whole pod is killed (its sandbox stopped).

Nothing here does I/O, reads a clock or mutates its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from skiff.agent.backoff import (
    RESET_AFTER_RUN_SECONDS,
    Backoff,
    container_key,
    crash_loop_message,
)
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

CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
KEEP_DEAD_PER_CONTAINER = 2  # the newest dead container feeds lastState, the one before `previous` logs


@dataclass(frozen=True)
class ContainerToStart:
    name: str
    init: bool  # an init container (regular or sidecar): started from spec.initContainers
    restart_count: int
    reset_backoff: bool = False  # it ran long enough before exiting: back-off starts over
    restarting: bool = False  # it ran before: the kubelet records one more back-off step when it starts it


@dataclass(frozen=True)
class ContainerToKill:
    id: str
    name: str
    message: str  # the `Killing` event text, e.g. "Container app failed liveness probe, will be restarted"
    reason: str = ""  # LivenessProbe | StartupProbe | "" (upstream's kill reasons)


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str


@dataclass
class PodActions:
    kill_pod: bool = False  # stop every container and the sandbox(es) before anything else
    create_sandbox: bool = False
    sandbox_id: str = ""  # the ready sandbox to use when not creating one
    attempt: int = 0  # the sandbox attempt to create
    start: list[ContainerToStart] = field(default_factory=list)  # in order: at most one init container, or sidecars + app containers
    kill: list[ContainerToKill] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # old dead containers to garbage-collect
    waiting: dict[str, Waiting] = field(default_factory=dict)  # container name → why it is not started now
    init_failed: bool = False  # an init container failed and restartPolicy is Never: the pod has failed
    initialized: bool = False
    requeue_after: float | None = None  # seconds until the earliest back-off expires


def pod_full_name(pod: Obj) -> str:
    """`<name>_<namespace>(<uid>)`, as kubelet messages name a pod."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def restart_count_of(c: ContainerStatus) -> int:
    """The restart count the kubelet stored on the container (falls back to the CRI attempt)."""
    try:
        return int(c.annotations.get(ANNOTATION_RESTART_COUNT, c.attempt))
    except ValueError:
        return c.attempt


def container_name_of(c: ContainerStatus) -> str:
    return c.labels.get(LABEL_CONTAINER_NAME) or c.name


def by_name(containers: Iterable[ContainerStatus]) -> dict[str, list[ContainerStatus]]:
    """Containers grouped by container name, newest first (by restart count, then creation time)."""
    out: dict[str, list[ContainerStatus]] = {}
    for c in containers:
        out.setdefault(container_name_of(c), []).append(c)
    for group in out.values():
        group.sort(key=lambda c: (restart_count_of(c), c.created_at_ns), reverse=True)
    return out


def is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def _restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def _live(c: ContainerStatus) -> bool:
    return c.state in (ContainerState.RUNNING, ContainerState.CREATED)


def _should_restart(policy: str, c: ContainerStatus) -> bool:
    """Whether an exited container is restarted under the pod's restart policy (`ShouldContainerBeRestarted`)."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return c.exit_code != 0 or c.state == ContainerState.UNKNOWN
    return True


def _sandbox_plan(pod: Obj, sandboxes: list[SandboxStatus]) -> tuple[bool, int, str]:
    """(create, attempt, ready sandbox id), upstream `podSandboxChanged`."""
    if not sandboxes:
        return True, 0, ""
    ordered = sorted(sandboxes, key=lambda s: (s.attempt, s.created_at_ns), reverse=True)
    newest = ordered[0]
    ready = [s for s in ordered if s.state == SandboxState.READY]
    host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
    if len(ready) != 1 or newest.state != SandboxState.READY or (not host_network and not newest.ip):
        return True, newest.attempt + 1, ""
    return False, newest.attempt, newest.id


class _Planner:
    def __init__(self, pod: Obj, containers: list[ContainerStatus], backoff: Backoff,
                 liveness_failed: Callable[[str], bool], started: Callable[[str], bool], now: float,
                 hash_of: Callable[[Obj], str]) -> None:
        self.pod = pod
        self.uid = str((pod.get("metadata") or {}).get("uid", ""))
        self.policy = _restart_policy(pod)
        self.groups = by_name(containers)
        self.backoff = backoff
        self.liveness_failed = liveness_failed
        self.started = started
        self.now = now
        self.hash_of = hash_of
        self.actions = PodActions()

    def latest(self, name: str) -> ContainerStatus | None:
        group = self.groups.get(name)
        return group[0] if group else None

    def _requeue(self, seconds: float) -> None:
        a = self.actions
        a.requeue_after = seconds if a.requeue_after is None else min(a.requeue_after, seconds)

    def restart(self, spec: Obj, last: ContainerStatus | None, *, init: bool) -> bool:
        """Plan to (re)start `spec`, unless its crash-loop back-off holds it; True when planned."""
        name = str(spec.get("name", ""))
        if last is None:
            self.actions.start.append(ContainerToStart(name, init, 0))
            return True
        finished = last.finished_at_ns / 1e9
        ran = (last.finished_at_ns - last.started_at_ns) / 1e9 if last.started_at_ns else 0.0
        reset = ran >= RESET_AFTER_RUN_SECONDS
        key = container_key(self.uid, name)
        if not reset and self.backoff.in_backoff_since(key, finished, self.now):
            delay = self.backoff.get(key)
            self.actions.waiting[name] = Waiting(CRASH_LOOP_BACK_OFF,
                                                 crash_loop_message(delay, name, pod_full_name(self.pod)))
            self._requeue(self.backoff.remaining(key, finished, self.now))
            return False
        self.actions.start.append(ContainerToStart(name, init, restart_count_of(last) + 1, reset, True))
        return True

    def check_running(self, spec: Obj, c: ContainerStatus, *, restart_allowed: bool, init: bool = False) -> bool:
        """Kill a running container whose spec changed or whose liveness probe failed; True if it keeps running."""
        name = str(spec.get("name", ""))
        want = self.hash_of(spec)
        have = c.annotations.get(ANNOTATION_HASH, "")
        if have and have != want:
            message, reason = f"Container {name} definition changed", ""
        elif self.liveness_failed(c.id):
            message, reason = f"Container {name} failed liveness probe", "LivenessProbe"
        else:
            return True
        if restart_allowed:
            message += ", will be restarted"
            # Upstream's doBackOff looks at the previous *exited* instance: the first restarts happen at once,
            # then the crash-loop back-off holds (the next sync sees the killed container and waits it out).
            previous = next((g for g in self.groups.get(name, [])[1:] if g.state == ContainerState.EXITED), None)
            key = container_key(self.uid, name)
            finished = previous.finished_at_ns / 1e9 if previous is not None else 0.0
            if previous is not None and self.backoff.in_backoff_since(key, finished, self.now):
                self.actions.waiting[name] = Waiting(CRASH_LOOP_BACK_OFF, crash_loop_message(
                    self.backoff.get(key), name, pod_full_name(self.pod)))
                self._requeue(self.backoff.remaining(key, finished, self.now))
            else:
                self.actions.start.append(ContainerToStart(name, init, restart_count_of(c) + 1,
                                                           restarting=previous is not None))
        self.actions.kill.append(ContainerToKill(c.id, name, message, reason))
        return False

    def _inits(self) -> list[Obj]:
        return list((self.pod.get("spec") or {}).get("initContainers") or [])

    def init_containers(self) -> bool:
        """Plan the init containers; True when the pod is initialized (app containers may run)."""
        inits = self._inits()
        apps = (self.pod.get("spec") or {}).get("containers") or []
        any_app_ran = any(self.groups.get(str(c.get("name", ""))) for c in apps)
        for spec in inits:
            name = str(spec.get("name", ""))
            last = self.latest(name)
            if is_sidecar(spec):
                if last is not None and _live(last):
                    if not self.check_running(spec, last, restart_allowed=True, init=True):
                        return any_app_ran
                    if any_app_ran or self.started(name):
                        continue
                    return False  # the next init container waits until this sidecar has started
                if not self.restart(spec, last, init=True) and any_app_ran:
                    continue  # backing off: the app containers keep running meanwhile
                if any_app_ran:
                    continue
                return False
            if any_app_ran:
                continue
            if last is None:
                self.restart(spec, None, init=True)
                return False
            if _live(last):
                return False
            if last.exit_code == 0 and last.state == ContainerState.EXITED:
                continue
            if self.policy == "Never":
                self.actions.init_failed = True
                return False
            self.restart(spec, last, init=True)
            return False
        return True

    def app_containers(self) -> int:
        """Plan the app containers; returns how many keep running."""
        keep = 0
        for spec in (self.pod.get("spec") or {}).get("containers") or []:
            name = str(spec.get("name", ""))
            last = self.latest(name)
            if last is not None and _live(last):
                if self.check_running(spec, last, restart_allowed=self.policy != "Never"):
                    keep += 1
                continue
            if last is None or _should_restart(self.policy, last):
                self.restart(spec, last, init=False)
        return keep

    def strangers(self, known: set[str]) -> None:
        """Kill running containers whose name the spec does not have."""
        for name, group in self.groups.items():
            if name in known:
                continue
            for c in group:
                if _live(c):
                    self.actions.kill.append(ContainerToKill(c.id, name, f"Container {name} is not in the pod spec"))

    def garbage(self) -> None:
        for group in self.groups.values():
            dead = [c for c in group if not _live(c)]
            keep = set(id(c) for c in group[:KEEP_DEAD_PER_CONTAINER])
            self.actions.remove.extend(c.id for c in dead if id(c) not in keep)


def compute_pod_actions(
    pod: Obj,
    sandboxes: list[SandboxStatus],
    containers: list[ContainerStatus],
    *,
    backoff: Backoff,
    liveness_failed: Callable[[str], bool],
    now: float,
    hash_of: Callable[[Obj], str],
    started: Callable[[str], bool] | None = None,
) -> PodActions:
    """The actions for one pod (not being deleted) from its runtime state.

    `sandboxes`/`containers` are the pod's own (all attempts); `liveness_failed(container_id)` is the prober's
    verdict; `started(container_name)` says whether a sidecar's startup probe passed (default: once running);
    `hash_of` is the kubelet's spec hash (`containers.container_hash`); `now` is on the back-off's clock, in
    seconds, like the runtime's timestamps. `backoff` is only read.
    """
    spec = pod.get("spec") or {}
    p = _Planner(pod, containers, backoff, liveness_failed, started or (lambda _name: True), now, hash_of)
    a = p.actions
    known = {str(c.get("name", "")) for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
    p.garbage()
    create, attempt, sandbox_id = _sandbox_plan(pod, sandboxes)
    if create:
        a.attempt = attempt
        a.kill_pod = any(_live(c) for c in containers) or any(s.state == SandboxState.READY for s in sandboxes)
        if p.policy == "Never" and attempt != 0 and containers:
            a.kill_pod = True  # the pod ran already and will not run again: no second sandbox
            return a
        a.create_sandbox = True
        inits = list(spec.get("initContainers") or [])
        if inits:  # a new sandbox initializes from the first init container again
            p.restart(inits[0], p.latest(str(inits[0].get("name", ""))), init=True)
            return a
        for c in spec.get("containers") or []:
            name = str(c.get("name", ""))
            last = p.latest(name)
            if last is not None and p.policy == "OnFailure" and last.exit_code == 0 and not _live(last):
                continue  # succeeded already: OnFailure does not run it again
            if last is None:
                a.start.append(ContainerToStart(name, False, 0))
            else:
                p.restart(c, last, init=False)
        if not a.start and not a.waiting:
            a.create_sandbox = False  # every container is done: the pod has completed
        return a
    a.sandbox_id = sandbox_id
    p.strangers(known)
    a.initialized = p.init_containers()
    if a.init_failed:
        a.kill_pod = True
        return a
    if not a.initialized:
        return a
    keep = p.app_containers()
    sidecars_live = any(_live(c) for s in spec.get("initContainers") or [] if is_sidecar(s)
                        for c in p.groups.get(str(s.get("name", "")), [])[:1])
    regular_pending = keep > 0 or any(not s.init for s in a.start) or any(
        n in a.waiting for n in (str(c.get("name", "")) for c in spec.get("containers") or []))
    if not regular_pending:
        # Nothing regular runs or will run again: the pod is done; its sidecars go with it.
        a.start = []
        a.waiting = {}
        a.kill_pod = bool(sidecars_live) or any(_live(c) for c in containers) or bool(sandbox_id)
    return a


def containers_of_pod(containers: Iterable[ContainerStatus], uid: str) -> list[ContainerStatus]:
    return [c for c in containers if c.labels.get(LABEL_POD_UID) == uid]


def sandboxes_of_pod(sandboxes: Iterable[SandboxStatus], uid: str) -> list[SandboxStatus]:
    return [s for s in sandboxes if s.uid == uid]


def index_by_uid(containers: Iterable[ContainerStatus]) -> Mapping[str, list[ContainerStatus]]:
    out: dict[str, list[ContainerStatus]] = {}
    for c in containers:
        out.setdefault(c.labels.get(LABEL_POD_UID, ""), []).append(c)
    return out
