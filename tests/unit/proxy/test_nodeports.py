"""--nodeport-addresses: the flag's rules, and which addresses take NodePorts (packet traces)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from proxy_builders import NODE, NODE_IP, endpoint, endpoint_slice, endpoints_of, program, reach, service

from kubesvc.proxy.nodeports import nodeport_ips, parse_nodeport_addresses
from kubesvc.proxy.proxier import Proxier, ProxyConfig
from kubesvc.testing.fakenft import FakeNft
from kubesvc.testing.nfttrace import Outcome

OTHER_IP = "192.168.5.5"  # a second address of the node
LOCAL = ("127.0.0.1", NODE_IP, OTHER_IP, "10.244.1.1")
OUTSIDE = "172.18.0.1"
EPS = {"10.244.1.5:8080", "10.244.2.5:8080"}


def nodeport_service() -> dict:
    return service(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])


def two_endpoints() -> list[dict]:
    return [endpoint_slice("web", endpoint("10.244.1.5", "node-1"), endpoint("10.244.2.5", "node-2"))]


def test_the_flag_takes_cidrs_or_primary_alone() -> None:
    assert parse_nodeport_addresses(["172.18.0.0/16,10.0.0.0/8", "192.168.0.0/24"]) == (
        "172.18.0.0/16", "10.0.0.0/8", "192.168.0.0/24")
    assert parse_nodeport_addresses(["primary"]) == ("primary",)
    assert parse_nodeport_addresses([]) == ()
    with pytest.raises(ValueError, match="can't use both 'primary' and CIDRs"):
        parse_nodeport_addresses(["primary,10.0.0.0/8"])
    for bad in ("172.18.0.2", "10.0.0.0/33", "nodes"):
        with pytest.raises(ValueError, match="must be a valid CIDR"):
            parse_nodeport_addresses([bad])


def test_the_addresses_chosen_are_local_ones_in_the_cidrs_never_loopback() -> None:
    assert nodeport_ips(("172.18.0.0/24",), NODE_IP, LOCAL) == (NODE_IP,)
    assert nodeport_ips(("0.0.0.0/1", "192.168.0.0/16"), NODE_IP, LOCAL) == ("10.244.1.1", OTHER_IP)
    assert nodeport_ips(("127.0.0.0/8",), NODE_IP, LOCAL) == ()  # localhost NodePorts are not supported
    assert nodeport_ips(("203.0.113.0/24",), NODE_IP, LOCAL) == ()  # no local address matches: nowhere
    # no IPv4 CIDR, or a /0: every local address (no list kept)
    assert nodeport_ips(("fd00::/64",), NODE_IP, LOCAL) is None
    assert nodeport_ips(("0.0.0.0/0", "10.0.0.0/8"), NODE_IP, LOCAL) is None
    assert nodeport_ips((), NODE_IP, LOCAL) is None
    # primary: the Node object's IP, if it is an address of this node
    assert nodeport_ips(("primary",), NODE_IP, LOCAL) == (NODE_IP,)
    assert nodeport_ips(("primary",), "", LOCAL) == ()
    assert nodeport_ips(("primary",), "172.18.0.99", LOCAL) == ()


def test_default_node_ports_answer_on_every_local_address_but_loopback() -> None:
    fake = program([nodeport_service()], two_endpoints(), fake=FakeNft(local_ips=LOCAL))
    for dst in (NODE_IP, OTHER_IP):
        assert endpoints_of(reach(fake, OUTSIDE, dst, 30080)) == EPS
    assert reach(fake, "127.0.0.1", "127.0.0.1", 30080, from_node=True) == {Outcome("ACCEPT")}


def test_limited_node_ports_answer_only_on_the_chosen_addresses() -> None:
    node = replace(NODE, nodeport_ips=(NODE_IP,))
    fake = program([nodeport_service()], two_endpoints(), node=node, fake=FakeNft(local_ips=LOCAL))
    out = reach(fake, OUTSIDE, NODE_IP, 30080)
    assert endpoints_of(out) == EPS and all(o.masquerade for o in out)
    assert endpoints_of(reach(fake, NODE_IP, NODE_IP, 30080, from_node=True)) == EPS
    assert reach(fake, OUTSIDE, OTHER_IP, 30080) == {Outcome("ACCEPT")}  # local, but not chosen: untouched
    assert reach(fake, "127.0.0.1", "127.0.0.1", 30080, from_node=True) == {Outcome("ACCEPT")}
    # the Service's clusterIP is not a NodePort address: unaffected
    assert endpoints_of(reach(fake, "10.244.1.50", "10.0.0.5")) == EPS


NODE_OBJ = {"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"addresses": [{"type": "ExternalIP", "address": OTHER_IP},
                                     {"type": "InternalIP", "address": NODE_IP}]}}


async def test_the_proxier_reads_the_node_addresses_on_full_syncs() -> None:
    addresses = [LOCAL]

    async def local() -> tuple[str, ...]:
        return addresses[0]

    fake = FakeNft(local_ips=(*LOCAL, "192.168.5.6"))
    p = await _synced(fake, ("192.168.5.0/24",), local)
    assert endpoints_of(reach(fake, OUTSIDE, OTHER_IP, 30080)) == EPS
    assert reach(fake, OUTSIDE, NODE_IP, 30080) == {Outcome("ACCEPT")}
    addresses[0] = (*LOCAL, "192.168.5.6")  # an address added to the node: taken on the next full sync
    p.applier.need_full = True
    await p.sync()
    assert endpoints_of(reach(fake, OUTSIDE, "192.168.5.6", 30080)) == EPS


async def test_primary_is_the_nodes_internal_ip() -> None:
    async def local() -> tuple[str, ...]:
        return LOCAL

    fake = FakeNft(local_ips=LOCAL)
    await _synced(fake, ("primary",), local)
    assert endpoints_of(reach(fake, OUTSIDE, NODE_IP, 30080)) == EPS
    assert reach(fake, OUTSIDE, OTHER_IP, 30080) == {Outcome("ACCEPT")}


async def test_kubesvc_proxy_refuses_a_bad_flag_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from kubesvc.proxy.main import add_proxy_parser, main_proxy

    parser = argparse.ArgumentParser()
    add_proxy_parser(parser.add_subparsers())
    args = parser.parse_args(["proxy", "--kubeconfig", "/nonexistent", "--node-name", "n",
                              "--nodeport-addresses", "10.0.0.0/8", "--nodeport-addresses", "primary"])
    assert await main_proxy(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "kubesvc proxy: --nodeport-addresses: nodePortAddresses[1]: Invalid value: 'primary': "
        "can't use both 'primary' and CIDRs"]


async def _synced(fake: FakeNft, nodeport_addresses: tuple[str, ...], local: Any) -> Proxier:
    """A proxier for node-1 limited to ``nodeport_addresses``, synced with a two-endpoint NodePort Service."""
    p = Proxier(ProxyConfig("node-1", cluster_cidr="10.244.0.0/16", nodeport_addresses=nodeport_addresses),
                fake, local_addresses=local)
    p.on_node(None, NODE_OBJ)
    p.mark_synced("services")
    p.mark_synced("endpointslices")
    p.on_service(None, nodeport_service())
    for sl in two_endpoints():
        p.on_slice(None, sl)
    await p.sync()
    return p
