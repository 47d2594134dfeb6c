"""The ``kubesvc`` command.

``kubesvc up`` runs the whole cluster in the foreground; each component also
runs alone (``kubesvc apiserver``, ...).  Errors a user can cause (a data dir
in use, a port taken, a bad flag) print one line and exit non-zero: never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from kubesvc import __version__
from kubesvc.cli.errors import CliError


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kubesvc"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesvc", description="The Kubernetes Service system, in Python.")
    p.add_argument("--version", action="version", version=f"kubesvc {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="run the cluster in the foreground (API server and controllers)")
    _server_flags(up)
    up.add_argument("--nodes", type=int, default=None,
                    help="node network namespaces, each with an agent and a proxy (kernel mode, root; default 1 as root, 0 otherwise)")

    from kubesvc.agent.main import add_agent_parser

    add_agent_parser(sub)

    api = sub.add_parser("apiserver", help="run the API server alone")
    _server_flags(api)

    from kubesvc.cli.run import add_run_parser

    add_run_parser(sub, default_data_dir())

    from kubesvc.cli.dnsboot import add_dns_parser, add_up_flags

    add_up_flags(up)

    from kubesvc.cli.components import add_lb_flags

    add_lb_flags(up)

    from kubesvc.cli.componentproc import add_node_proxy_flags

    add_node_proxy_flags(up)
    add_dns_parser(sub)

    from kubesvc.proxy.main import add_proxy_parser

    add_proxy_parser(sub)

    from kubesvc.cli.demo import add_demo_parser

    add_demo_parser(sub)

    from kubesvc.cli.componentproc import add_components_parser

    add_components_parser(sub)
    return p


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="state, certificates and kubeconfig (default %(default)s: ~/.local/share/kubesvc)")
    p.add_argument("--port", type=int, default=6443, help="API server port (default 6443)")
    p.add_argument("--bind-address", default="127.0.0.1", help="API server address (default 127.0.0.1)")
    p.add_argument("--storage", default=None, help="storage URL: sqlite:///path/state.db (default, in the data dir) or memory://")
    p.add_argument("--service-cidr", default="10.0.0.0/16", help="ClusterIP range (default 10.0.0.0/16)")
    p.add_argument("--service-node-port-range", default="30000-32767", help="NodePort range (default 30000-32767)")


def run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine on uvloop when it is installed (faster TLS and sockets).

    Long-running commands all come through here, so the garbage-collection
    policy (see :mod:`kubesvc.cli.gcpolicy`) is set here too.
    """
    from kubesvc.cli.gcpolicy import install

    install()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from kubesvc.cli.demo import run_demo

            return run_demo(args)
        if args.command == "run":
            from kubesvc.cli.run import run_command

            return run_command(args)
        if args.command == "dns":
            from kubesvc.cli.dnsboot import run_dns_command

            return run_loop(run_dns_command(args))
        if args.command in ("up", "apiserver"):
            from kubesvc.cli.up import run_up

            return run_loop(run_up(args, with_controllers=args.command == "up"))
        if args.command == "components":
            from kubesvc.cli.componentproc import run_components

            return run_loop(run_components(args))
        if args.command == "agent":
            from kubesvc.agent.main import run_agent

            return run_loop(run_agent(args))
        if args.command == "proxy":
            from kubesvc.proxy.main import main_proxy

            return run_loop(main_proxy(args))
    except CliError as e:
        print(f"kubesvc: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
