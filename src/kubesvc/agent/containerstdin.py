"""A container's stdin (``stdin: true``): a FIFO in the pod's state directory, written by ``kubectl attach -i``.

A FIFO rather than a pipe because a container outlives its agent: an agent
restarted over a running container finds the same path and attaches to it
again.  Without ``stdinOnce`` the container's end is opened read-write, so
the container holds a writer itself and never reads EOF however often
sessions come and go (upstream: stdin stays open).  With ``stdinOnce`` the
container gets a read-only end and the agent holds the only lasting writer;
it is closed when the first attach session ends, and the container reads EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path


def open_for_container(path: Path, once: bool) -> tuple[int, int | None]:
    """The fd to give the container as stdin, and the writer the agent keeps (``stdinOnce`` only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkfifo(path, 0o600)
    if not once:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC), None
    child = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # no writer yet: must not block
    os.set_blocking(child, True)
    try:
        holder = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(child)
        raise
    return child, holder


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class FifoWriter:
    """One attach session's writes into a container's stdin FIFO (non-blocking, waits on the loop when full)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    @classmethod
    def open(cls, path: Path) -> FifoWriter | None:
        """None when nobody reads the FIFO (the container is gone) or there is none."""
        try:
            return cls(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        except OSError:
            return None

    async def write(self, data: bytes) -> bool:
        """False once the container no longer reads (the writer is then closed)."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view and self.fd is not None:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.fd, _wake, ready)
                try:
                    await ready
                finally:
                    if self.fd is not None:
                        loop.remove_writer(self.fd)
            except OSError:  # EPIPE: the reader is gone
                self.close()
                return False
        return self.fd is not None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
