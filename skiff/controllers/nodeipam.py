"""Node IPAM: every node gets a pod CIDR carved out of the cluster CIDR.

Mirrors upstream's range allocator (`pkg/controller/nodeipam/ipam/range_allocator.go`): CIDRs of size
`/node_mask` are handed out lowest first; CIDRs already on nodes (also ones set by hand or by a node that
registered with its own) are marked used when seen, so a restart never hands one out twice; a node that
already has `spec.podCIDR` is left alone (the field is immutable once set); a node's CIDR is released when
the node is deleted. Pure half: `CIDRSet`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.interface import NODES, Informer, Patch
from skiff.controllers.base import Controller, ControllerContext
from skiff.controllers.endpoints import wait_synced

log = logging.getLogger("skiff.controllers.nodeipam")

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"  # as k3s
DEFAULT_NODE_MASK = 24
FIELD_MANAGER = "node-ipam-controller"


class CIDRSet:
    """The /node_mask subnets of a cluster CIDR, each free or used (upstream `cidrset`)."""

    def __init__(self, cluster_cidr: str, node_mask: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=True)
        if not self.network.prefixlen <= node_mask <= self.network.max_prefixlen:
            raise ValueError(f"node mask /{node_mask} does not fit in {cluster_cidr}")
        self.node_mask = node_mask
        self._used: set[str] = set()

    def occupy(self, cidr: str) -> None:
        """Mark a CIDR seen on a node as used; CIDRs outside the cluster CIDR are ignored."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return
        if net.version != self.network.version or not self._inside(net):
            return
        if net.prefixlen >= self.node_mask:  # a node's own subnet, or a part of one
            self._used.add(str(net.supernet(new_prefix=self.node_mask)))
        else:
            self._used.update(str(sub) for sub in net.subnets(new_prefix=self.node_mask))

    def _inside(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
        return (net.network_address in self.network and net.broadcast_address in self.network)

    def release(self, cidr: str) -> None:
        self._used.discard(str(ipaddress.ip_network(cidr, strict=False)))

    def allocate(self) -> str | None:
        """The lowest free subnet (marked used), None when the cluster CIDR is full."""
        for sub in self.network.subnets(new_prefix=self.node_mask):
            text = str(sub)
            if text not in self._used:
                self._used.add(text)
                return text
        return None


class NodeIpamController(Controller):
    """Keys are node names."""

    name = "node-ipam-controller"
    workers = 1  # allocation order is the CIDR order: one worker keeps it deterministic

    def __init__(self, ctx: ControllerContext, cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
                 node_mask: int = DEFAULT_NODE_MASK) -> None:
        super().__init__(ctx)
        self.cidrs = CIDRSet(cluster_cidr, node_mask)
        self.nodes: Informer = ctx.informers.informer(NODES)
        self._assigned: dict[str, str] = {}  # node name → the CIDR we (or someone) set on it

    def informers(self) -> Sequence[Informer]:
        return (self.nodes,)

    def setup(self) -> None:
        self.nodes.add_handler(self._on_node)

    def _on_node(self, type_: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        name = str(obj["metadata"]["name"])
        if new is None or type_ == "DELETED":
            cidr = self._assigned.pop(name, None)
            if cidr:
                self.cidrs.release(cidr)
            return
        cidr = (new.get("spec") or {}).get("podCIDR")
        if cidr:
            self._assigned[name] = cidr
            self.cidrs.occupy(cidr)
        else:
            self.queue.add(name)

    async def run(self) -> None:
        await wait_synced(self.informers())
        for node in self.nodes.list():  # every CIDR in use is known before the first allocation
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                self._assigned[node["metadata"]["name"]] = cidr
                self.cidrs.occupy(cidr)
        for node in self.nodes.list():
            if not (node.get("spec") or {}).get("podCIDR"):
                self.queue.add(node["metadata"]["name"])
        await super().run()

    async def sync(self, key: str) -> None:
        node = self.nodes.get("", key)
        if node is None or (node.get("spec") or {}).get("podCIDR") or (node.get("metadata") or {}).get("deletionTimestamp"):
            return
        cidr = self.cidrs.allocate()
        if cidr is None:
            await self.events.record(node, "Normal", "CIDRNotAvailable",
                                     f"Node {key} status is now: CIDRNotAvailable", FIELD_MANAGER)
            return
        try:
            await self.client.patch(NODES, "", key, Patch("strategic", {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}),
                                    field_manager=FIELD_MANAGER)
            self._assigned[key] = cidr
            log.info("allocated pod CIDR %s to node %s", cidr, key)
        except ApiError as e:
            self.cidrs.release(cidr)
            if e.code != 404:
                raise
