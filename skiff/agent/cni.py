"""The node's pod network config: one bridge, host-local IPAM over the node's pod CIDR, portmap.

What k3s's flannel-less default amounts to on one node (`cni0` bridge + host-local + portmap), built from
Debian's `containernetworking-plugins`. The bridge is `skiff0` and the IPAM state lives under the data dir,
so everything is found and removed by name. Addresses of the cluster CIDR that are not this node's are
made `unreachable` locally: a packet for another node's pods never leaves by the default route (the
networking issue adds the routes between nodes).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from pathlib import Path
from typing import Any

from skiff.util.fs import write_atomic

log = logging.getLogger("skiff.agent.cni")

BRIDGE = "skiff0"
NETWORK_NAME = "skiff"
CONFLIST_NAME = "10-skiff.conflist"


def conflist(pod_cidr: str, ipam_dir: Path) -> dict[str, Any]:
    """The CNI network config for a node whose pods take addresses from `pod_cidr` (pure)."""
    net = ipaddress.ip_network(pod_cidr, strict=False)
    gateway = str(net.network_address + 1)
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipMasq": True,
                "hairpinMode": True,  # a pod reaching itself through a Service address
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net), "gateway": gateway}]],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def write_conflist(conf_dir: Path, pod_cidr: str, ipam_dir: Path) -> Path:
    """Write (atomically) the conflist containerd loads; returns its path. Idempotent."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CONFLIST_NAME
    text = json.dumps(conflist(pod_cidr, ipam_dir), indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text.encode(), 0o644)
    return path


async def _ip(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


async def route_cluster_cidr_locally(cluster_cidr: str) -> None:
    """`ip route replace unreachable <cluster CIDR>`: the node's own /24 (on the bridge) is more specific,
    anything else in the range is refused here instead of following the default route off the machine."""
    code, out = await _ip("route", "replace", "unreachable", cluster_cidr)
    if code:
        log.warning("could not route %s locally: %s", cluster_cidr, out)


async def remove_network(cluster_cidr: str) -> None:
    """Undo what the node's pod network put on the host (for `skiff uninstall` and tests)."""
    await _ip("route", "del", "unreachable", cluster_cidr)
    await _ip("link", "del", BRIDGE)
