"""The `skiff` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.agent.agent import AgentConfig


def _agent_config(args: argparse.Namespace, data_dir: Path, server_node: bool) -> AgentConfig:
    from skiff.agent.agent import AgentConfig

    return AgentConfig(data_dir=data_dir, node_name=args.node_name, node_ip=args.node_ip, server_node=server_node,
                       container_runtime_endpoint=args.container_runtime_endpoint, cluster_cidr=args.cluster_cidr,
                       cluster_dns=list(args.cluster_dns), kubelet_port=args.kubelet_port,
                       preload_images=[Path(p) for p in args.preload_image])


def _server(args: argparse.Namespace) -> int:
    from skiff.cli.components import run_server

    data_dir = Path(args.data_dir)
    agent = None if args.no_agent else _agent_config(args, data_dir / "agent", server_node=True)
    try:
        asyncio.run(run_server(data_dir, args.port, args.bind, sim_nodes=args.sim_nodes,
                               cluster_cidr=args.cluster_cidr, agent=agent))
    except KeyboardInterrupt:
        pass
    return 0


def _agent(args: argparse.Namespace) -> int:
    from skiff.agent.agent import run_agent
    from skiff.agent.join import JoinError, join, request_serving_context

    data_dir = Path(args.data_dir)
    cfg = _agent_config(args, data_dir, server_node=False)

    async def main() -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        client = await join(args.server, args.token, data_dir)
        ca = (data_dir / "server-ca.crt").read_bytes()

        async def tls(node_name: str, node_ip: str) -> ssl.SSLContext:
            return await request_serving_context(args.server, args.token, ca, data_dir, node_name, [node_ip])

        try:
            await run_agent(client, cfg, tls)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except JoinError as e:
        print(f"skiff agent: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _images_import(args: argparse.Namespace) -> int:
    from skiff.agent.containerd import ContainerdConfig
    from skiff.agent.images import import_archive
    from skiff.agent.images.oci import ImageArchiveError

    socket = (Path(args.container_runtime_endpoint.removeprefix("unix://")) if args.container_runtime_endpoint
              else ContainerdConfig.for_host(Path(args.data_dir)).socket_path)
    if not socket.exists():
        print(f"skiff images import: no containerd socket at {socket} (is the node agent running?)", file=sys.stderr)
        return 1
    try:
        for archive in args.files:
            for ref in asyncio.run(import_archive(socket, Path(archive))):
                print(f"imported {ref}")
    except (ImageArchiveError, OSError) as e:
        print(f"skiff images import: {e}", file=sys.stderr)
        return 1
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from skiff.agent.uninstall import uninstall

    asyncio.run(uninstall(Path(args.data_dir), args.cluster_cidr, purge=args.purge))
    return 0


def _node_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-name", default="", help="this node's name (default: the hostname)")
    p.add_argument("--node-ip", default="", help="this node's address (default: the default route's interface)")
    p.add_argument("--container-runtime-endpoint", default="",
                   help="a running CRI socket (default: start skiff's own containerd under the data dir)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod addresses of the cluster (default: %(default)s)")
    p.add_argument("--cluster-dns", action="append", default=[], metavar="IP",
                   help="DNS server for pods with dnsPolicy ClusterFirst (repeatable; default: the host's)")
    p.add_argument("--kubelet-port", type=int, default=10250, help="the agent's stream server port (default: %(default)s)")
    p.add_argument("--preload-image", action="append", default=[], metavar="ARCHIVE",
                   help="import this image archive (docker save / OCI) into the node at startup (repeatable)")


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
    s.add_argument("--no-agent", action="store_true", help="do not run a node agent (containers) on this machine")
    s.add_argument("--sim-nodes", type=int, default=0, metavar="N",
                   help="also run N simulated nodes in this process (like KWOK; no containers)")
    _node_flags(s)
    s.set_defaults(func=_server)
    a = sub.add_parser("agent", help="join this machine to a server as a node that runs pods")
    a.add_argument("--server", required=True, help="the server's URL, e.g. https://10.0.0.1:6443")
    a.add_argument("--token", required=True, help="the node token (the server's DATA_DIR/tls/node.token)")
    a.add_argument("--data-dir", default="/var/lib/skiff-agent", help="agent state (default: %(default)s)")
    _node_flags(a)
    a.set_defaults(func=_agent)
    img = sub.add_parser("images", help="manage the node's images")
    img_sub = img.add_subparsers(dest="images_command", required=True)
    imp = img_sub.add_parser("import", help="load docker-save / OCI archives into the node (like `k3s ctr images import`)")
    imp.add_argument("files", nargs="+", metavar="FILE.tar")
    imp.add_argument("--data-dir", default="/var/lib/skiff/agent",
                     help="the node agent's data dir (default: %(default)s, the server's embedded agent)")
    imp.add_argument("--container-runtime-endpoint", default="", help="a CRI socket instead of skiff's containerd")
    imp.set_defaults(func=_images_import)
    un = sub.add_parser("uninstall", help="remove the node agent's pods, containerd, mounts, bridge and routes")
    un.add_argument("--data-dir", default="/var/lib/skiff/agent",
                    help="the node agent's data dir (default: %(default)s, the server's embedded agent)")
    un.add_argument("--cluster-cidr", default="10.42.0.0/16", help="the cluster CIDR routed locally (default: %(default)s)")
    un.add_argument("--purge", action="store_true", help="also delete the data dir")
    un.set_defaults(func=_uninstall)
    sim = sub.add_parser("sim-nodes", help="run simulated nodes against a server, over HTTPS")
    sim.add_argument("--kubeconfig", required=True, help="kubeconfig of the cluster to join")
    sim.add_argument("--count", type=int, default=3, help="how many nodes (default: %(default)s)")
    sim.add_argument("--prefix", default="sim-node-", help="node name prefix (default: %(default)s)")
    sim.set_defaults(func=_sim_nodes)
    from skiff.cli import jobcmd, stack  # Swarm's `stack`/`service` and Nomad's `job` commands

    stack.add_parsers(sub)
    jobcmd.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
