"""The `skiff` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def _server(args: argparse.Namespace) -> int:
    from skiff.apiserver.server import ServerConfig, serve

    config = ServerConfig(data_dir=Path(args.data_dir), port=args.port, bind=args.bind)
    try:
        asyncio.run(serve(config))
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
    s.set_defaults(func=_server)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
