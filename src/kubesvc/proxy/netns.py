"""Run commands and open listening sockets inside a named network namespace.

``kubesvc up`` may run several nodes' proxies in one process, each for its
own node namespace; nft and conntrack then run under ``ip netns exec`` and
listening sockets are created in a short-lived thread that enters the
namespace with setns(2) (which affects only the calling thread), binds, and
hands the socket back.  When the proxy already runs inside its namespace
(``kubesvc proxy`` under ``ip netns exec``) none of this is used.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000


def exec_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def setns_net(fd: int) -> None:
    """Move the calling thread (or a child before exec) into the network namespace ``fd``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_socket(host: str, port: int, netns: str | None = None) -> socket.socket:
    """A bound, listening TCP socket; created inside ``netns`` if given."""
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        return s

    if not netns:
        return make()
    result: list[socket.socket | BaseException] = []

    def in_thread() -> None:
        try:
            with open(f"/run/netns/{netns}") as target:
                setns_net(target.fileno())  # this thread only; it ends right after
            result.append(make())
        except BaseException as e:  # handed to the caller
            result.append(e)

    t = threading.Thread(target=in_thread, name=f"netns-{netns}")
    t.start()
    t.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]
