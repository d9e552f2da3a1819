"""Node IPAM hands each node a /24 of the cluster CIDR, never one in use, and frees it with the node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import NODES
from skiff.controllers.base import ControllerContext
from skiff.controllers.nodeipam import CIDRSet, NodeIpamController
from skiff.testing import eventually, start_control_plane


@pytest.mark.parametrize(
    ("occupied", "expected"),
    [
        pytest.param([], ["10.42.0.0/24", "10.42.1.0/24"], id="lowest-first"),
        pytest.param(["10.42.0.0/24"], ["10.42.1.0/24", "10.42.2.0/24"], id="skips-used"),
        pytest.param(["10.42.0.7/32"], ["10.42.1.0/24", "10.42.2.0/24"], id="part-of-a-subnet-occupies-it"),
        pytest.param(["10.42.0.0/23"], ["10.42.2.0/24", "10.42.3.0/24"], id="wider-occupies-every-subnet"),
        pytest.param(["10.128.0.0/24", "fd00::/64", "junk"], ["10.42.0.0/24", "10.42.1.0/24"], id="outside-ignored"),
    ],
)
def test_cidr_set_allocates_lowest_free(occupied: list[str], expected: list[str]) -> None:
    s = CIDRSet("10.42.0.0/16", 24)
    for c in occupied:
        s.occupy(c)
    assert [s.allocate(), s.allocate()] == expected


def test_cidr_set_runs_out_and_reuses_released() -> None:
    s = CIDRSet("10.42.0.0/23", 24)
    assert [s.allocate(), s.allocate(), s.allocate()] == ["10.42.0.0/24", "10.42.1.0/24", None]
    s.release("10.42.0.0/24")
    assert s.allocate() == "10.42.0.0/24"


def test_cidr_set_refuses_a_mask_wider_than_the_cluster() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        CIDRSet("10.42.0.0/16", 8)


async def test_controller_assigns_cidrs_to_nodes_without_one(tmp_path: Path) -> None:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    factory = InformerFactory(client)
    await client.create(NODES, "", {"metadata": {"name": "old"}, "spec": {"podCIDR": "10.42.0.0/24"}})
    await client.create(NODES, "", {"metadata": {"name": "a"}})
    ctrl = NodeIpamController(ControllerContext(client, factory, factory.new_queue))
    ctrl.setup()
    task = asyncio.create_task(ctrl.run())
    try:
        def has_cidr(name: str, want: str):  # type: ignore[no-untyped-def]
            async def probe() -> bool:
                return ((await client.get(NODES, "", name)).get("spec") or {}).get("podCIDR") == want
            return probe

        await eventually(has_cidr("a", "10.42.1.0/24"), "node a gets the first free /24")
        await client.create(NODES, "", {"metadata": {"name": "b"}})
        await eventually(has_cidr("b", "10.42.2.0/24"), "node b gets the next one")
        node = await client.get(NODES, "", "b")
        assert node["spec"]["podCIDRs"] == ["10.42.2.0/24"]
    finally:
        task.cancel()
        await factory.stop()
        await plane.store.close()
