"""ResourceQuota: refuse writes that would exceed a quota, and charge the usage before the write.

Mirrors upstream `apiserver/pkg/admission/plugin/resourcequota` (controller.go `checkQuotas`): the
decision is the pure `skiff.api.quota.check_request` over the namespace's quotas as stored now; the
new usage is then written to each affected quota's `status.used` with its resourceVersion as
precondition, *before* the object itself is stored, so two concurrent creates cannot both fit under
the same limit: the loser of the conflict re-reads the quota and is checked again (only the quotas it
has not charged yet, as upstream). If the object write fails afterwards the quota stays over-charged
until the ResourceQuota controller recomputes it, as upstream. Dry-run requests are checked, never charged.
"""

from __future__ import annotations

from skiff.api import errors
from skiff.api.meta import Obj
from skiff.api.quota import QuotaRefused, check_request, evaluator_for
from skiff.apiserver.admission import Attributes, ObjectLookup, forbidden

# Upstream retries conflicting quota updates a few times before giving up with the conflict.
MAX_RETRIES = 8


class ResourceQuota:
    """Validating only; the last plugin of the chain (it sees the object as every other plugin left it)."""

    def __init__(self, lookup: ObjectLookup) -> None:
        self.lookup = lookup

    async def validate(self, attrs: Attributes) -> None:
        if attrs.subresource or not attrs.namespace:
            return  # subresources and cluster-scoped objects (namespaces too) use no quota
        evaluator = evaluator_for(attrs.info.group, attrs.info.plural)
        if not evaluator.handles(attrs.operation):
            return
        pending: set[str] | None = None  # quotas still to charge after a conflict
        for _ in range(MAX_RETRIES):
            quotas = await self.lookup.list("", "resourcequotas", attrs.namespace)
            if pending is not None:
                quotas = [q for q in quotas if (q.get("metadata") or {}).get("name") in pending]
            if not quotas:
                return
            try:
                charges = check_request(quotas, evaluator, attrs.operation, attrs.object, attrs.old_object)
            except QuotaRefused as e:
                raise forbidden(attrs, str(e)) from None
            if attrs.dry_run:
                return
            pending = set()
            for index, used in charges:
                quota = quotas[index]
                if await self._charge(quota, used) is None:
                    pending.add(str(quota["metadata"]["name"]))
            if not pending:
                return
        raise errors.conflict("resourcequotas", "", sorted(pending or {""})[0])

    async def _charge(self, quota: Obj, used: dict[str, str]) -> Obj | bool | None:
        """Write the new usage; None when the quota changed meanwhile (check again), True when it is gone."""
        updated = {**quota, "status": {**(quota.get("status") or {}), "used": used}}
        try:
            return await self.lookup.update_status("", "resourcequotas", updated)
        except errors.ApiError as e:
            if e.code == 409:
                return None
            if e.code == 404:
                return True  # deleted while we checked: nothing left to charge
            raise
