"""``kubesvc run NAME --image=IMG [--replicas=N] [--port=P] [--labels=k=v,...]``.

The seed document starts with ``kubectl run ... --replicas=2 --labels=...``,
which today's kubectl no longer accepts (its ``run`` makes a bare pod).  This
command makes what kubectl of that day made: a Deployment labelled ``run=NAME``
(or ``--labels``), selecting exactly those labels, with one container named
NAME running IMG and exposing ``--port``.  Errors print one line, as kubectl's
do (``Error from server (AlreadyExists): ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from kubesvc.cli.errors import CliError

Obj = dict[str, Any]


def add_run_parser(sub: Any, default_data_dir: Path) -> None:
    default_kc = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(default_data_dir / "kubeconfig")
    p = sub.add_parser("run", help="create a Deployment the way the seed's `kubectl run --replicas` did")
    p.add_argument("name", help="the Deployment's (and container's) name")
    p.add_argument("--image", required=True, help="container image, e.g. nginx")
    p.add_argument("--replicas", type=int, default=1, help="number of pods (default 1)")
    p.add_argument("--port", type=int, default=None, help="the container port to expose")
    p.add_argument("--labels", "-l", default="", help="comma-separated labels, default run=NAME")
    p.add_argument("--namespace", "-n", default=None, help="namespace (default: the kubeconfig's)")
    p.add_argument("--kubeconfig", default=default_kc, help=f"kubeconfig (default {default_kc})")
    p.add_argument("--dry-run", action="store_true", help="print the Deployment as JSON instead of creating it")


def parse_labels(text: str, name: str) -> dict[str, str]:
    from kubesvc.api.selectors import label_value_errors, qualified_name_errors

    if not text:
        return {"run": name}
    out: dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise CliError(f"invalid label spec: {part}")
        errs = qualified_name_errors(k) + label_value_errors(v)
        if errs:
            raise CliError(f"invalid label {part!r}: {errs[0]}")
        out[k] = v
    return out


def build_deployment(name: str, image: str, replicas: int, port: int | None, labels: dict[str, str]) -> Obj:
    """The Deployment ``kubectl run --replicas`` generated (deployment/apps.v1)."""
    container: Obj = {"name": name, "image": image}
    if port is not None:
        container["ports"] = [{"containerPort": port}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}}},
    }


def run_command(args: argparse.Namespace) -> int:
    import orjson

    if args.replicas < 0:
        raise CliError("--replicas must be greater than or equal to 0")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise CliError("--port must be between 1 and 65535")
    body = build_deployment(args.name, args.image, args.replicas, args.port, parse_labels(args.labels, args.name))
    if args.dry_run:
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return 0
    return asyncio.run(_create(args, body))


async def _create(args: argparse.Namespace, body: Obj) -> int:
    import aiohttp

    from kubesvc.api.resources import by_kind
    from kubesvc.client.config import ConfigError
    from kubesvc.client.rest import ApiClient, ApiError

    deployments = by_kind("apps/v1", "Deployment")
    assert deployments is not None
    try:
        client = ApiClient.from_kubeconfig(args.kubeconfig, timeout=15)
    except ConfigError as e:
        raise CliError(str(e)) from None
    try:
        ns = args.namespace or client.config.namespace
        await client.create(deployments, body, ns)
    except ApiError as e:
        raise CliError(f"Error from server ({e.reason or e.code}): {e.message}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise CliError(f"cannot reach the API server at {client.config.server}: {e or type(e).__name__}") from None
    finally:
        await client.close()
    print(f"deployment.apps/{args.name} created")
    return 0
