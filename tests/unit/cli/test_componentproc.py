"""``kubesvc up``'s components process: its command line, and the garbage-collection policy."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import pytest

from kubesvc.cli import gcpolicy
from kubesvc.cli.componentproc import child_argv, parse_nodes
from kubesvc.cli.errors import CliError
from kubesvc.cli.main import build_parser


def test_child_argv_round_trips_through_the_components_parser() -> None:
    up = argparse.Namespace(service_cidr="10.96.0.0/12", dns_port=5353, lb_pool=["172.18.255.0/24"], verbose=True,
                            dns_pods="verified", dns_upstream=["127.0.0.1:5353", "10.1.1.1"])
    argv = child_argv(Path("/d/kubeconfig"), up, [("node-1", "ks-node-1"), ("node-2", "ks-node-2")], kernel=True)
    assert argv[:3] == [sys.executable, "-m", "kubesvc"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == "components" and args.verbose
    assert (args.kubeconfig, args.service_cidr, args.dns_port) == (Path("/d/kubeconfig"), "10.96.0.0/12", 5353)
    assert args.lb_pool == ["172.18.255.0/24"] and args.kernel and args.dns_pods == "verified"
    assert args.dns_upstream == ["127.0.0.1:5353", "10.1.1.1"]
    assert parse_nodes(args.node) == [("node-1", "ks-node-1"), ("node-2", "ks-node-2")]


def test_node_proxy_flags_reach_the_components_process() -> None:
    up = build_parser().parse_args(["up", "--nodeport-addresses", "172.18.0.0/16", "--nodeport-addresses", "primary",
                                    "--conntrack-tcp-be-liberal"])
    args = build_parser().parse_args(child_argv(Path("k"), up, [("node-1", "ks-node-1")], kernel=True)[3:])
    assert args.nodeport_addresses == ["172.18.0.0/16", "primary"] and args.conntrack_tcp_be_liberal


def test_a_bad_nodeport_address_is_one_line() -> None:
    from kubesvc.cli.componentproc import check_node_proxy_flags

    with pytest.raises(CliError, match="invalid --nodeport-addresses"):
        check_node_proxy_flags(build_parser().parse_args(["up", "--nodeport-addresses", "10.0.0.0/33"]))


def test_without_nodes_there_is_no_kernel_flag() -> None:
    up = argparse.Namespace(service_cidr="10.0.0.0/16", dns_port=0, lb_pool=None, verbose=False)
    args = build_parser().parse_args(child_argv(Path("k"), up, [], kernel=False)[3:])
    assert not args.kernel and args.node == [] and args.lb_pool is None


@pytest.mark.parametrize("bad", ["node-1", "=ns", "node-1="])
def test_a_bad_node_entry_is_one_line(bad: str) -> None:
    with pytest.raises(CliError, match="want NAME=NETNS"):
        parse_nodes([bad])


def test_survivors_of_a_full_collection_are_frozen() -> None:
    gc.unfreeze()
    gcpolicy.install()
    gcpolicy.install()  # idempotent
    try:
        assert gc.callbacks.count(gcpolicy._on_gc) == 1
        keep = [{"i": i} for i in range(1000)]
        gc.collect()
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.callbacks.remove(gcpolicy._on_gc)
        gcpolicy._state["installed"] = False
        gc.unfreeze()
