"""The `skiff` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _server(args: argparse.Namespace) -> int:
    from skiff.cli.components import run_server

    try:
        asyncio.run(run_server(Path(args.data_dir), args.port, args.bind, sim_nodes=args.sim_nodes))
    except KeyboardInterrupt:
        pass
    return 0


def _sim_nodes(args: argparse.Namespace) -> int:
    from skiff.agent.sim_cli import run_sim_nodes

    try:
        asyncio.run(run_sim_nodes(args.kubeconfig, args.count, args.prefix))
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiff", description="A lightweight orchestrator that speaks the Kubernetes API.")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("server", help="run the control plane (API server over the embedded store)")
    s.add_argument("--data-dir", default="/var/lib/skiff", help="state, credentials and kubeconfig (default: %(default)s)")
    s.add_argument("--port", type=int, default=6443, help="HTTPS port (default: %(default)s)")
    s.add_argument("--bind", default="127.0.0.1", help="listen address (default: %(default)s)")
    s.add_argument("--no-agent", action="store_true",
                   help="do not run containers on this machine (the node agent is not part of this release yet)")
    s.add_argument("--sim-nodes", type=int, default=0, metavar="N",
                   help="also run N simulated nodes in this process (like KWOK; no containers)")
    s.set_defaults(func=_server)
    sim = sub.add_parser("sim-nodes", help="run simulated nodes against a server, over HTTPS")
    sim.add_argument("--kubeconfig", required=True, help="kubeconfig of the cluster to join")
    sim.add_argument("--count", type=int, default=3, help="how many nodes (default: %(default)s)")
    sim.add_argument("--prefix", default="sim-node-", help="node name prefix (default: %(default)s)")
    sim.set_defaults(func=_sim_nodes)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
