"""Scheduler throughput, pure: `schedule_one` + `Snapshot.assume` for N pods over M nodes (no I/O).

    python bench/bench_scheduler.py [--nodes 1000] [--pods 10000] [--plain]

By default the pods belong to 20 ReplicaSets (shared templates → cached node-local results); with
`--plain` every pod is its own template (no cache reuse).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from skiff.scheduler.plugins import default_framework
from skiff.scheduler.snapshot import PodInfo, Snapshot


def make_node(i: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"node-{i:05d}",
            "labels": {"kubernetes.io/hostname": f"node-{i:05d}", "topology.kubernetes.io/zone": f"z{i % 3}"},
        },
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
    }


def make_pod(i: int, plain: bool) -> dict[str, Any]:
    rs = i % 20
    md: dict[str, Any] = {
        "name": f"pod-{i}",
        "namespace": "default",
        "uid": f"u{i}",
        "labels": {"app": f"app{rs}", "pod-template-hash": f"h{rs}"},
    }
    if not plain:
        md["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": f"rs{rs}", "uid": f"rs-{rs}", "controller": True}
        ]
    return {
        "metadata": md,
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "resources": {"requests": {"cpu": f"{100 + 10 * rs}m", "memory": "128Mi"}},
                }
            ]
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--plain", action="store_true")
    args = ap.parse_args()
    snap = Snapshot()
    for i in range(args.nodes):
        snap.add_node(make_node(i))
    pods = [PodInfo(make_pod(i, args.plain)) for i in range(args.pods)]
    fw = default_framework(seed=0)
    unscheduled = 0
    t0 = time.perf_counter()
    for info in pods:
        res = fw.schedule_one(info, snap)
        if res.node is None:
            unscheduled += 1
        else:
            snap.assume(info, res.node)
    el = time.perf_counter() - t0
    per_node = sorted(len(n.pods) for n in snap.node_list())
    print(
        f"{args.pods} pods on {args.nodes} nodes{' (plain)' if args.plain else ''}: {el:.2f} s, "
        f"{args.pods / el:,.0f} pods/s; unscheduled {unscheduled}; pods per node min {per_node[0]} "
        f"max {per_node[-1]}"
    )


if __name__ == "__main__":
    main()
