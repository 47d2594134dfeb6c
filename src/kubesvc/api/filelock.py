"""An exclusive lock file that names its holder.

Both the data dir (one ``kubesvc up`` per data dir) and the cluster network
(one ``kubesvc0`` per machine) are guarded the same way: a non-blocking
``flock`` held for the life of the process, with the holder's pid written
into the file so the refusal can say who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import IO


class Held(Exception):
    """Another process holds the lock; ``owner`` is its pid as written in the file."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"held by pid {owner}")
        self.owner = owner


def take(path: Path) -> IO[str]:
    """Lock ``path`` (creating it) or raise :class:`Held`; keep the returned file open to hold it."""
    f = open(path, "a+")  # noqa: SIM115 - held open on purpose: closing it releases the lock
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.seek(0)
        owner = f.read().strip() or "unknown"
        f.close()
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise Held(owner) from None
        raise
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f
