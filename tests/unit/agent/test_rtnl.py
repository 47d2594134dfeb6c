"""The hand-packed rtnetlink requests: layout (pure), and, as root, what the kernel makes of them.

The layout tests decode each message with an independent little walker
(not the packer's own structs) and check the fields ``ip`` would send.  The
kernel test builds a pod's network in a throwaway namespace and reads it back
with ``ip -j``, so a wrong byte shows up as a wrong address or route, and a
kernel refusal as the errno ``ip`` would print.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import uuid

import pytest

from kubesvc.agent import nsutil, rtnl


def attrs(buf: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + 4 <= len(buf):
        n, kind = struct.unpack_from("=HH", buf, off)
        out[kind] = buf[off + 4:off + n]
        off += (n + 3) & ~3
    return out


def test_veth_add_layout() -> None:
    kind, flags, body = rtnl.veth_add("vpabc", "eth0", 7, 3)
    assert kind == rtnl.RTM_NEWLINK
    assert flags & rtnl.NLM_F_CREATE and flags & rtnl.NLM_F_EXCL and flags & rtnl.NLM_F_ACK
    family, _type, index, ifflags, change = struct.unpack_from("=BxHiII", body)
    assert (family, index, ifflags & 1, change & 1) == (0, 0, 1, 1)  # new link, brought up
    a = attrs(body[16:])
    assert a[rtnl.IFLA_IFNAME] == b"vpabc\0"
    assert struct.unpack("=I", a[rtnl.IFLA_MASTER]) == (3,)
    info = attrs(a[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth"
    peer = attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    pa = attrs(peer[16:])
    assert pa[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", pa[rtnl.IFLA_NET_NS_FD]) == (7,)


def test_addr_and_route_layout() -> None:
    kind, _flags, body = rtnl.addr_add(5, "10.244.1.9", 24)
    assert kind == rtnl.RTM_NEWADDR
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET, 24, 0, 0, 5)
    a = attrs(body[8:])
    assert a[rtnl.IFA_LOCAL] == a[rtnl.IFA_ADDRESS] == bytes([10, 244, 1, 9])
    kind, _flags, body = rtnl.default_route("10.244.1.1")
    assert kind == rtnl.RTM_NEWROUTE
    fam, dst_len, _src, _tos, table, _proto, scope, rtype, _f = struct.unpack_from("=BBBBBBBBI", body)
    assert (fam, dst_len, table, scope, rtype) == (socket.AF_INET, 0, 254, 0, 1)
    assert attrs(body[12:])[rtnl.RTA_GATEWAY] == bytes([10, 244, 1, 1])


def _ack(seq: int, err: int) -> bytes:
    payload = struct.pack("=i", err) + struct.pack("=IHHII", 16, 0, 0, seq, 0)
    return struct.pack("=IHHII", 16 + len(payload), rtnl.NLMSG_ERROR, 0, seq, 0) + payload


def test_acks_clear_pending_and_report_the_first_error() -> None:
    pending = {1, 2, 3}
    assert rtnl.parse_acks(_ack(1, 0) + _ack(2, -17) + _ack(3, -19), pending) == 17
    assert pending == set()
    pending = {4}
    assert rtnl.parse_acks(_ack(9, -1), pending) == 0  # not ours: ignored
    assert pending == {4}


def _ip_json(netns: str, *args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-n", netns, "-j", *args], capture_output=True, text=True,
                                     check=True).stdout)


def test_pod_network_in_the_kernel() -> None:
    """A veth into a fresh namespace, its address, links up, the default route: as ``ip`` shows them."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace and a veth pair")
    tag = uuid.uuid4().hex[:8]
    ns, veth, bridge = f"ks-rtnltest-{tag}", f"vr{tag}", f"br{tag}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    fd = nsutil.create_netns(ns)
    try:
        with rtnl.Rtnl() as host:
            host.request([rtnl.veth_add(veth, "eth0", fd, socket.if_nametoindex(bridge))])
            with pytest.raises(OSError) as e:  # the same name again: EEXIST, as `ip link add` says
                host.request([rtnl.veth_add(veth, "eth0", fd, socket.if_nametoindex(bridge))])
            assert e.value.errno == 17
        with nsutil.in_netns(fd), rtnl.Rtnl() as nl:
            eth0 = socket.if_nametoindex("eth0")
            nl.request([rtnl.link_up(socket.if_nametoindex("lo")), rtnl.addr_add(eth0, "10.99.7.5", 24),
                        rtnl.link_up(eth0), rtnl.default_route("10.99.7.1")])
        links = {x["ifname"]: x for x in _ip_json(ns, "addr")}
        assert "UP" in links["lo"]["flags"] and "UP" in links["eth0"]["flags"]
        assert [(a["local"], a["prefixlen"]) for a in links["eth0"]["addr_info"] if a["family"] == "inet"] \
            == [("10.99.7.5", 24)]
        routes = _ip_json(ns, "route")
        assert {"dst": "default", "gateway": "10.99.7.1", "dev": "eth0"}.items() <= routes[0].items()
        host_link = json.loads(subprocess.run(["ip", "-j", "link", "show", veth], capture_output=True, text=True,
                                              check=True).stdout)[0]
        assert host_link["master"] == bridge and "UP" in host_link["flags"]
        with rtnl.Rtnl() as host:
            host.request([rtnl.link_del(socket.if_nametoindex(veth))])
        assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0
        assert "eth0" not in {x["ifname"] for x in _ip_json(ns, "link")}  # the pair went together
    finally:
        os.close(fd)
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        nsutil.delete_netns(ns)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
