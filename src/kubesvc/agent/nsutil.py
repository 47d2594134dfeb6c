"""Linux namespace syscalls the agent makes itself, instead of running ``ip``/``unshare``.

Python 3.11 has no ``os.setns``/``os.unshare``, so these go through libc.
Network namespaces are per thread: :func:`in_netns` moves only the calling
thread (a worker thread of the agent, never the event loop's), and always
back.  :func:`create_netns` and :func:`delete_netns` keep iproute2's layout
(a bind mount of the namespace on ``/run/netns/<name>``, ``/run/netns`` a
shared mount), so ``ip netns list/exec/pids`` keep seeing pod namespaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), flags, None), f"mount {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def netns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


@contextlib.contextmanager
def in_netns(fd: int) -> Iterator[None]:
    """Run the block with this thread in the namespace ``fd``; back to where it was after."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
        try:
            yield
        finally:
            try:
                setns(home, CLONE_NEWNET)
            except OSError as e:  # never seen; but then this thread must not serve again
                raise RuntimeError(f"could not return to the node namespace: {e}") from e
    finally:
        os.close(home)


def _share_run_dir() -> None:
    """``/run/netns`` as iproute2 makes it: a shared mount (bound on itself first if need be)."""
    NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
    d = str(NETNS_RUN_DIR)
    try:
        mount("", d, "none", MS_SHARED | MS_REC)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        mount(d, d, "none", MS_BIND | MS_REC)
        mount("", d, "none", MS_SHARED | MS_REC)


def create_netns(name: str) -> int:
    """A new, named network namespace; returns an open fd to it (the caller closes it).

    The new namespace is made by this thread (unshare), bound on
    ``/run/netns/<name>``, and the thread goes back to its own namespace.
    """
    _share_run_dir()
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            unshare(CLONE_NEWNET)
            try:
                mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path), "none", MS_BIND)
            finally:
                setns(home, CLONE_NEWNET)
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
    finally:
        os.close(home)
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def delete_netns(name: str) -> bool:
    """Unbind and remove ``/run/netns/<name>`` (as ``ip netns del``); False if it was not there."""
    path = netns_path(name)
    with contextlib.suppress(OSError):
        umount(str(path))
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(netns_path(name)).st_ino
    except OSError:
        return None


def pids_in_netns(name: str) -> list[int]:
    """Every process whose network namespace is ``name`` (as ``ip netns pids``)."""
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return []
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            s = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        if s.st_ino == st.st_ino and s.st_dev == st.st_dev:
            out.append(int(entry.name))
    return out
