"""ServiceAccounts controller: every active namespace has the ServiceAccount `default`.

Mirrors `pkg/controller/serviceaccount/serviceaccounts_controller.go`: a namespace is synced when it is
added or updated and when one of the ensured accounts in it is deleted; namespaces that are not Active
(Terminating) are left alone; AlreadyExists (a lagging cache) and creation refused in a terminating
namespace are not errors. Pure half: `missing_service_accounts`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.interface import NAMESPACES, SERVICEACCOUNTS, Informer
from skiff.controllers.base import Controller, ControllerContext
from skiff.controllers.endpoints import wait_synced

DEFAULT_ACCOUNTS: tuple[str, ...] = ("default",)
FIELD_MANAGER = "service-account-controller"


def namespace_active(ns: Obj | None) -> bool:
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return ((ns.get("status") or {}).get("phase") or "Active") == "Active"


def missing_service_accounts(
    ns: Obj | None, existing: Collection[str], wanted: Sequence[str] = DEFAULT_ACCOUNTS
) -> list[str]:
    """Names in `wanted` to create in `ns` (none when the namespace is gone or not Active)."""
    if not namespace_active(ns):
        return []
    return [name for name in wanted if name not in existing]


class ServiceAccountsController(Controller):
    """Keys are namespace names."""

    name = "serviceaccount-controller"

    def __init__(self, ctx: ControllerContext, accounts: Sequence[str] = DEFAULT_ACCOUNTS) -> None:
        super().__init__(ctx)
        self.accounts = tuple(accounts)
        self.namespaces: Informer = ctx.informers.informer(NAMESPACES)
        self.service_accounts: Informer = ctx.informers.informer(SERVICEACCOUNTS)

    def informers(self) -> Sequence[Informer]:
        return (self.namespaces, self.service_accounts)

    def setup(self) -> None:
        self.namespaces.add_handler(self._on_namespace)
        self.service_accounts.add_handler(self._on_service_account)

    def _on_namespace(self, _type: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(str(new["metadata"]["name"]))

    def _on_service_account(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None or (new is not None and type_ != "DELETED"):
            return
        md = obj.get("metadata") or {}
        if md.get("name") in self.accounts:
            self.queue.add(str(md.get("namespace") or ""))

    async def run(self) -> None:
        await wait_synced(self.informers())
        for ns in self.namespaces.list():
            self.queue.add(str(ns["metadata"]["name"]))
        await super().run()

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get("", key)
        existing = {str((sa.get("metadata") or {}).get("name")) for sa in self.service_accounts.list(key)}
        for name in missing_service_accounts(ns, existing, self.accounts):
            try:
                await self.client.create(
                    SERVICEACCOUNTS,
                    key,
                    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as e:
                # 409 AlreadyExists: our cache lags; 403 Forbidden: the namespace is terminating now.
                if e.code not in (409, 403):
                    raise
