"""Per-key exponential back-off for container restarts and image pulls.

Mirrors client-go `util/flowcontrol/backoff.go` as the kubelet uses it (`pkg/kubelet/kubelet.go`:
`flowcontrol.NewBackOff(10s, 300s)`): the first delay is 10 s, each further failure doubles it up to 5 min;
an entry untouched for twice the maximum starts over. As the kubelet's `doBackOff` does, a container that ran
for at least `RESET_AFTER_RUN_SECONDS` before it exited starts over at 10 s too.

Pure: every method takes `now` (seconds on whatever clock the caller uses) so tests drive it with virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0
RESET_AFTER_RUN_SECONDS = 600.0


def go_duration(seconds: float) -> str:
    """`seconds` as Go's `time.Duration.String()` writes it (`10s`, `1m20s`, `5m0s`, `1.5s`, `250ms`), the
    format of every kubelet message that carries a duration."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    secs = _trim(rest / 1e9)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def container_key(pod_uid: str, container_name: str) -> str:
    return f"{pod_uid}/{container_name}"


def image_key(pod_uid: str, image: str) -> str:
    return f"{pod_uid}/image/{image}"


def crash_loop_message(delay: float, container_name: str, pod_full_name: str) -> str:
    """The `CrashLoopBackOff` waiting message, worded as kuberuntime's `doBackOff`."""
    return f"back-off {go_duration(delay)} restarting failed container={container_name} pod={pod_full_name}"


def image_backoff_message(image: str) -> str:
    """The `ImagePullBackOff` waiting message and `BackOff` event text (kubelet `images/image_manager.go`)."""
    return f'Back-off pulling image "{image}"'


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    """Delays per key. Not thread-safe; one instance per kubelet (and one for image pulls)."""

    def __init__(self, initial: float = INITIAL_SECONDS, maximum: float = MAX_SECONDS) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str) -> float:
        """The current delay of `key` (0 when it has none)."""
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def _expired(self, entry: _Entry, at: float) -> bool:
        return at - entry.last_update > 2 * self.maximum

    def next(self, key: str, now: float) -> float:
        """Record one more failure of `key` at `now`; returns the delay that now applies."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now
        return entry.delay

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        """True while less than the current delay has passed since `event_time` (a container's finish time):
        the kubelet must not restart it yet (upstream `IsInBackOffSince`)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return False
        return now - event_time < entry.delay

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        """True while less than the current delay has passed since the last failure (image pulls)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

    def remaining(self, key: str, event_time: float, now: float) -> float:
        """Seconds until `in_backoff_since(key, event_time, ...)` turns False (0 when it already is)."""
        if not self.in_backoff_since(key, event_time, now):
            return 0.0
        return max(0.0, event_time + self._entries[key].delay - now)

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (a pod's uid when the pod is gone)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def gc(self, now: float) -> None:
        """Drop entries that expired (upstream `Backoff.GC`)."""
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]
