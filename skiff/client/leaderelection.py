"""Leader election on coordination.k8s.io/v1 Leases, after client-go `tools/leaderelection`.

A candidate acquires the Lease when nobody holds it or the holder's record has not changed for
`lease_duration` seconds *as observed locally* (upstream measures expiry by its own clock from the
moment it last saw the record change, so clock skew between hosts does not matter). The leader renews
every `retry_period`; if it cannot renew for `renew_deadline` it stops leading (its work is cancelled)
and `run` returns. Every write carries the resourceVersion read, so two candidates can never both win
the same round. On cancellation the leader releases the lease (holderIdentity "", leaseDurationSeconds
1), as upstream's ReleaseOnCancel, so a successor need not wait for expiry.

`can_acquire` and `lease_spec` are the pure halves; `LeaderElector` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from skiff.api.errors import ApiError
from skiff.api.meta import rfc3339_micro
from skiff.client.interface import LEASES, Client, Obj

log = logging.getLogger("skiff.client.leaderelection")
JITTER = 1.2  # upstream JitterFactor


@dataclass(frozen=True)
class Observation:
    """The lease record as last seen, and when (local monotonic seconds) it last changed."""

    holder: str
    renew_time: str
    lease_duration: float
    observed_at: float


def can_acquire(obs: Observation | None, identity: str, now: float) -> bool:
    """May `identity` write itself as holder? Yes if the lease is free, already ours, or its holder has not
    renewed it for a full lease duration by our clock (upstream tryAcquireOrRenew)."""
    if obs is None or not obs.holder or obs.holder == identity:
        return True
    return obs.observed_at + obs.lease_duration <= now


def lease_spec(current: Obj | None, identity: str, lease_duration: int, now: dt.datetime) -> Obj:
    """The spec that makes `identity` the holder: keeps acquireTime and leaseTransitions while the holder
    stays the same; a new holder (after another one, or after a release) gets a fresh acquireTime and one more
    transition; a lease created now starts at 0 transitions."""
    cur = current or {}
    renew = rfc3339_micro(now)
    same_holder = cur.get("holderIdentity") == identity
    transitions = int(cur.get("leaseTransitions") or 0)
    if current is not None and not same_holder:
        transitions += 1
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": lease_duration,
        "acquireTime": (cur.get("acquireTime") or renew) if same_holder else renew,
        "renewTime": renew,
        "leaseTransitions": transitions,
    }


def released_spec(current: Obj, now: dt.datetime) -> Obj:
    """Upstream release(): an empty holder with a 1 s duration, transitions kept."""
    t = rfc3339_micro(now)
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": t,
        "renewTime": t,
        "leaseTransitions": int(current.get("leaseTransitions") or 0),
    }


class LeaderElector:
    """One candidate for the Lease `namespace/name`. `run` campaigns, leads, and returns when leadership is lost."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period * JITTER:
            raise ValueError("need lease_duration > renew_deadline > retry_period * 1.2 (as upstream)")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: Observation | None = None
        self._lease: Obj | None = None
        self.attempts = 0  # acquire/renew rounds tried: observability and tests
        self.leading = False

    @property
    def leader(self) -> str:
        """The holder as last observed ("" when unknown or released)."""
        return self._observed.holder if self._observed else ""

    async def run(self, on_started_leading: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER))
        log.info("%s: became leader of lease %s/%s", self.identity, self.namespace, self.name)
        self.leading = True
        work: asyncio.Future[None] = asyncio.ensure_future(on_started_leading())
        try:
            last_renew = loop.time()
            while not work.done():
                await asyncio.wait({work}, timeout=self.retry_period)
                if work.done():
                    break
                if await self._try_acquire_or_renew():
                    last_renew = loop.time()
                elif loop.time() - last_renew >= self.renew_deadline:
                    log.warning(
                        "%s: failed to renew lease %s/%s; stopping leading",
                        self.identity,
                        self.namespace,
                        self.name,
                    )
                    break
        finally:
            self.leading = False
            if not work.done():
                work.cancel()
            with contextlib.suppress(BaseException):
                await work
            await asyncio.shield(self._release())
        exc = None if work.cancelled() else work.exception()
        if exc is not None:
            raise exc

    async def _try_acquire_or_renew(self) -> bool:
        self.attempts += 1
        loop = asyncio.get_running_loop()
        now = dt.datetime.now(dt.UTC)
        try:
            lease: Obj | None = await self.client.get(LEASES, self.namespace, self.name)
        except ApiError as e:
            if e.code != 404:
                log.info("%s: reading lease: %s", self.identity, e.message)
                return False
            lease = None
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": lease_spec(None, self.identity, max(1, round(self.lease_duration)), now),
            }
            return await self._write(
                lambda: self.client.create(LEASES, self.namespace, body, field_manager="leader-election")
            )
        spec = lease.get("spec") or {}
        self._observe(spec, loop.time())
        if not can_acquire(self._observed, self.identity, loop.time()):
            return False
        new = {**lease, "spec": lease_spec(spec, self.identity, max(1, round(self.lease_duration)), now)}
        return await self._write(
            lambda: self.client.update(LEASES, self.namespace, new, field_manager="leader-election")
        )

    def _observe(self, spec: Obj, now: float) -> None:
        holder = str(spec.get("holderIdentity") or "")
        renew = str(spec.get("renewTime") or "")
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        o = self._observed
        if o is None or o.holder != holder or o.renew_time != renew:
            self._observed = Observation(holder, renew, duration, now)

    async def _write(self, op: Callable[[], Awaitable[Obj]]) -> bool:
        try:
            written = await op()
        except ApiError as e:
            if e.code not in (409,):
                log.info("%s: writing lease: %s", self.identity, e.message)
            return False
        self._lease = written
        spec = written.get("spec") or {}
        self._observed = Observation(
            self.identity,
            str(spec.get("renewTime") or ""),
            self.lease_duration,
            asyncio.get_running_loop().time(),
        )
        return True

    async def _release(self) -> None:
        """Give the lease up if we still hold it (best effort: a conflict means someone else took it)."""
        lease = self._lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        new = {**lease, "spec": released_spec(lease.get("spec") or {}, dt.datetime.now(dt.UTC))}
        try:
            await self.client.update(LEASES, self.namespace, new, field_manager="leader-election")
        except Exception as e:  # best effort: the lease expires on its own anyway
            log.info("%s: releasing lease: %s", self.identity, e)
        self._lease = None
