"""`skiff server`: assemble store, registries, HTTP surface and background loops; run until SIGTERM.

Startup order: credentials → store → built-in registries → default namespaces → custom resources
from stored CRDs → HTTPS listener → ready. Shutdown: stop accepting, end watches, close the store
(pending acknowledged writes are already durable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.apiserver import metrics_api, nodecerts, proxy, reviews, subresources
from skiff.apiserver.admission import RegistryLookup
from skiff.apiserver.admission.plugins import default_chain
from skiff.apiserver.admission.priority import system_class
from skiff.apiserver.auth import AdminAuthorizer, Authenticator
from skiff.apiserver.certs import Credentials, bootstrap
from skiff.apiserver.http import APIServer, Served, model_of
from skiff.apiserver.metrics_api import MetricsAPI
from skiff.apiserver.openapi import OpenAPI
from skiff.apiserver.registry.catalog import builtin_strategies
from skiff.apiserver.registry.custom import CustomResourceStrategy
from skiff.apiserver.registry.events import events as events_conv
from skiff.apiserver.registry.generic import ListOptions, Registry, WriteOptions
from skiff.apiserver.registry.strategy import Strategy
from skiff.storage.compactor import run_compactor
from skiff.storage.interface import Store
from skiff.storage.sqlite import SQLiteStore

log = logging.getLogger("skiff.server")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPACT_INTERVAL = 300.0
COMPACT_RETAIN = 1000


@dataclass
class ServerConfig:
    data_dir: Path
    port: int = 6443
    bind: str = "127.0.0.1"


def _identity(obj: Obj) -> Obj:
    return obj


class ControlPlane:
    """The API server's state: store, registries by resource, and the HTTP application."""

    def __init__(self, store: Store, creds: Credentials) -> None:
        self.store = store
        self.creds = creds
        self.api = APIServer(Authenticator(creds), AdminAuthorizer())
        self.api.ca_pem = creds.ca_cert.read_bytes()
        self.registries: dict[tuple[str, str], Registry] = {}  # (group, plural) of the storage version
        self._tasks: list[asyncio.Task[Any]] = []
        self._custom: set[tuple[str, str, str]] = set()
        # Admission plugins read other objects through the registries (filled in below).
        self.admission = default_chain(RegistryLookup(self.registries))
        for strategy in builtin_strategies():
            self._register(strategy)
        reviews.install(self.api)
        subresources.install(self.api)
        nodecerts.install(self.api, creds)
        proxy.configure(self.api, creds)  # pod logs/exec/attach/port-forward go through to node agents
        self.metrics = MetricsAPI(self._scrape, self._agent_nodes, self._list_items("pods"))
        metrics_api.install(self.api, self.metrics)  # metrics.k8s.io from the agents' /metrics/resource
        self.openapi = OpenAPI([s.info for s in self.api.served.values() if not s.custom])
        self.api.openapi = self.openapi

    def _list_items(self, plural: str) -> Callable[[], Coroutine[Any, Any, list[Obj]]]:
        async def items() -> list[Obj]:
            return list((await self.registries[("", plural)].list("", ListOptions()))["items"])
        return items

    async def _agent_nodes(self) -> list[Obj]:
        """Nodes with an agent to scrape (simulated nodes advertise none and have no metrics)."""
        return [n for n in await self._list_items("nodes")() if proxy.agent_endpoint(n) is not None]

    async def _scrape(self, node_name: str) -> str:
        node = await self.registries[("", "nodes")].get("", node_name)
        return (await proxy.agent_get(self.api, node, "/metrics/resource")).decode()

    async def _namespace(self, name: str) -> Obj | None:
        return await self.registries[("", "namespaces")].try_get("", name)

    def _register(self, strategy: Strategy) -> None:
        info = strategy.info
        if info.storage_group is not None and info.storage_group != info.group:
            # A second API for another group's storage (events.k8s.io/v1 over core/v1 events).
            core = self.registries[(info.storage_group, info.plural)]

            def from_events_v1(obj: Obj) -> Obj:
                errs = events_conv.validate_events_v1(obj)
                if errs:
                    raise errors.invalid(info.kind, info.group, (obj.get("metadata") or {}).get("name", ""), errs)
                return events_conv.events_v1_to_core(obj)

            self.api.add(Served(info, core, events_conv.core_to_events_v1, from_events_v1, model_of(info)))
            return
        registry = Registry(self.store, strategy, self._namespace)
        registry.admission = self.admission
        self.registries[(info.group, info.plural)] = registry
        self.api.add(Served(info, registry, _identity, _identity, model_of(info)))
        for other in strategy.other_versions:
            self.api.add(Served(
                other,
                registry,
                (lambda o, i=other, s=strategy: s.to_version(o, i)),  # type: ignore[misc]
                (lambda o, i=other, s=strategy: s.from_version(o, i)),  # type: ignore[misc]
                model_of(other),
            ))

    async def seed(self) -> None:
        """Objects every cluster has from the start (idempotent across restarts)."""
        ns = self.registries[("", "namespaces")]
        for name in DEFAULT_NAMESPACES:
            if await ns.try_get("", name) is None:
                with contextlib.suppress(errors.ApiError):
                    await ns.create("", {"metadata": {"name": name}}, WriteOptions(field_manager="skiff-server"))
        # The built-in PriorityClasses, as upstream's apiserver bootstraps them, so `kubectl get pc` lists them.
        pcs = self.registries[("scheduling.k8s.io", "priorityclasses")]
        for name in ("system-node-critical", "system-cluster-critical"):
            if await pcs.try_get("", name) is None:
                with contextlib.suppress(errors.ApiError):
                    await pcs.create("", system_class(name), WriteOptions(field_manager="skiff-server"))

    # --- custom resources ----------------------------------------------------------------------------

    def sync_custom_resources(self, crds: list[Obj]) -> None:
        """Serve exactly the established CRDs' served versions; rebuild discovery and OpenAPI."""
        wanted: dict[tuple[str, str, str], Served] = {}
        established = []
        for crd in crds:
            conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
            if conds.get("Established") != "True" or (crd.get("metadata") or {}).get("deletionTimestamp"):
                continue
            established.append(crd)
            for ver in crd.get("spec", {}).get("versions") or []:
                if not ver.get("served"):
                    continue
                strategy = CustomResourceStrategy.from_crd(crd, ver["name"])
                i = strategy.info
                key = (i.group, i.version, i.plural)
                existing = self.api.served.get(key)
                registry = Registry(self.store, strategy, self._namespace)
                registry.admission = self.admission  # count/<resource>.<group> quotas cover custom resources
                version = i.api_version

                def to_served(o: Obj, v: str = version) -> Obj:
                    return {**o, "apiVersion": v}

                wanted[key] = Served(i, registry, to_served, to_served, None, custom=True)
                if existing is not None and not existing.custom:
                    del wanted[key]  # never shadow a built-in
        for key in self._custom - set(wanted):
            self.api.remove(*key)
        for served in wanted.values():
            self.api.add(served)
        self._custom = set(wanted)
        self.openapi.set_custom_resources(established)

    async def _crd_loop(self) -> None:
        """Follow CRDs: serve established ones, and on CRD deletion remove its custom objects first."""
        crd_reg = self.registries[("apiextensions.k8s.io", "customresourcedefinitions")]
        while True:
            try:
                lst = await crd_reg.list("", ListOptions())
                crds = {c["metadata"]["name"]: c for c in lst["items"]}
                self.sync_custom_resources(list(crds.values()))
                events = await crd_reg.watch("", ListOptions(resource_version=lst["metadata"]["resourceVersion"]))
                async for ev in events:
                    if ev.type in ("ADDED", "MODIFIED"):
                        crds[ev.object["metadata"]["name"]] = ev.object
                        if ev.object["metadata"].get("deletionTimestamp"):
                            await self._cleanup_crd(ev.object)
                    elif ev.type == "DELETED":
                        crds.pop(ev.object["metadata"]["name"], None)
                    elif ev.type == "ERROR":
                        break
                    self.sync_custom_resources(list(crds.values()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("CRD watch failed; relisting")
                await asyncio.sleep(1)

    async def _cleanup_crd(self, crd: Obj) -> None:
        """Upstream's `customresourcecleanup.apiextensions.k8s.io` finalizer: delete every custom object."""
        spec = crd.get("spec") or {}
        prefix = f"/registry/{spec.get('group')}/{(spec.get('names') or {}).get('plural')}/"
        while True:
            res = await self.store.list(prefix, None, 500)
            for kv in res.items:
                with contextlib.suppress(Exception):
                    await self.store.delete(kv.key)
            if not res.more:
                break
        crd_reg = self.registries[("apiextensions.k8s.io", "customresourcedefinitions")]

        def drop_finalizer(o: Obj) -> Obj:
            fin = [f for f in o["metadata"].get("finalizers") or [] if f != "customresourcecleanup.apiextensions.k8s.io"]
            o["metadata"]["finalizers"] = fin
            return o

        with contextlib.suppress(errors.ApiError):
            await crd_reg.guaranteed_update("", crd["metadata"]["name"], drop_finalizer, WriteOptions(field_manager="skiff-server"))

    def start_background(self) -> None:
        self._tasks += [
            asyncio.create_task(self._crd_loop()),
            asyncio.create_task(run_compactor(self.store, COMPACT_INTERVAL, COMPACT_RETAIN)),
            asyncio.create_task(self.metrics.run()),
        ]

    def start_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a component (controllers, scheduler, simulated nodes) until shutdown; stopped before the store."""
        self._tasks.append(asyncio.create_task(coro))

    async def stop_background(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t


async def serve(config: ServerConfig, on_ready: Callable[[ControlPlane], None] | None = None,
                stop: asyncio.Event | None = None, configure: Callable[[ControlPlane], None] | None = None) -> None:
    """Run the control plane until `stop` is set or SIGTERM/SIGINT arrives. `configure` runs before the HTTP
    application is built (extra routes, read-only resources); `on_ready` once it listens."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    creds = await asyncio.to_thread(bootstrap, config.data_dir, config.bind, config.port)
    (config.data_dir / "db").mkdir(exist_ok=True)
    store = SQLiteStore(str(config.data_dir / "db" / "state.db"))
    await store.start()
    plane = ControlPlane(store, creds)
    await plane.seed()
    crds = await plane.registries[("apiextensions.k8s.io", "customresourcedefinitions")].list("", ListOptions())
    plane.sync_custom_resources(crds["items"])
    plane.start_background()
    if configure is not None:
        configure(plane)
    runner = web.AppRunner(plane.api.app(), handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.bind, config.port, ssl_context=creds.server_ssl_context(), backlog=1024)
    await site.start()
    plane.api.ready = True
    log.info("skiff server ready on https://%s:%d (kubeconfig: %s)", config.bind, config.port, creds.kubeconfig)
    if on_ready is not None:
        on_ready(plane)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        plane.api.ready = False
        await runner.cleanup()
        await plane.stop_background()
        await store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
