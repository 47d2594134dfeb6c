"""The few rtnetlink requests a pod's network needs, packed by hand.

Why not pyroute2: its request machinery (an asyncio loop per socket, message
classes built per call) costs several milliseconds of CPU per pod, more than
the kernel's own work, and a burst of pods is CPU-bound.  The messages a pod
needs are fixed: a veth pair with one end moved into the pod's namespace, a
link brought up, an IPv4 address, a default route, a link deleted.  Each
request is one ``struct`` pack; several go to the kernel in one ``sendmsg``
and the acknowledgements come back in one read.

A netlink socket belongs to the network namespace it was created in: make
one per namespace (:meth:`Rtnl.__init__` in the thread that is there).
Errors are ``OSError`` with the kernel's errno, as ``ip`` would report them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Sequence

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
IFF_UP = 0x1
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY = 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")
_ERR = struct.Struct("=i")
_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    n = _ATTR.size + len(payload)
    return _ATTR.pack(n, kind) + payload + b"\0" * (-n % 4)


def _name(s: str) -> bytes:
    return s.encode() + b"\0"


def veth_add(name: str, peer: str, peer_netns_fd: int, master: int) -> tuple[int, int, bytes]:
    """``ip link add NAME master M up type veth peer name PEER netns FD`` as (type, flags, body)."""
    peer_info = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(peer)) \
        + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    linkinfo = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, _name(name)) \
        + attr(IFLA_MASTER, struct.pack("=I", master)) + attr(IFLA_LINKINFO, linkinfo)
    return RTM_NEWLINK, _CREATE, body


def link_up(index: int) -> tuple[int, int, bytes]:
    return RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)


def link_del(index: int) -> tuple[int, int, bytes]:
    return RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)


def addr_add(index: int, address: str, prefixlen: int) -> tuple[int, int, bytes]:
    """``ip addr add ADDRESS/PREFIXLEN dev INDEX`` (IPv4)."""
    raw = ipaddress.IPv4Address(address).packed
    body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + attr(IFA_LOCAL, raw) \
        + attr(IFA_ADDRESS, raw)
    return RTM_NEWADDR, _CREATE, body


def default_route(gateway: str) -> tuple[int, int, bytes]:
    """``ip route add default via GATEWAY`` (IPv4, main table)."""
    body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
        + attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
    return RTM_NEWROUTE, _CREATE, body


def parse_acks(data: bytes, pending: set[int]) -> int:
    """Remove acknowledged sequence numbers from ``pending``; the first error's errno (0: none)."""
    first = 0
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        if kind == NLMSG_ERROR and seq in pending:
            pending.discard(seq)
            (code,) = _ERR.unpack_from(data, off + _HDR.size)
            if code and not first:
                first = -code
        off += (length + 3) & ~3
    return first


class Rtnl:
    """A route netlink socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def request(self, msgs: Sequence[tuple[int, int, bytes]]) -> None:
        """Send every request in one write and wait for all their acks; the first failure raises OSError.

        The kernel handles them in order and keeps going after a failure, as ``ip -batch -force``.
        """
        out = bytearray()
        pending: set[int] = set()
        for kind, flags, body in msgs:
            self._seq += 1
            pending.add(self._seq)
            out += _HDR.pack(_HDR.size + len(body), kind, flags, self._seq, 0) + body
        self.sock.sendall(out)
        failed = 0
        while pending:
            code = parse_acks(self.sock.recv(65536), pending)
            failed = failed or code
        if failed:
            raise OSError(failed, os.strerror(failed))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
