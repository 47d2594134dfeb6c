"""A small state file, replaced whole (write + rename), written from a worker thread.

The agent records what a restarted agent needs (the pod IPs it handed out,
each pod's namespace and processes) in files replaced atomically.  On ext4 a
rename over an existing file starts writing the new data out at once, so a
save costs a millisecond or more; on the event loop, in a burst of pods, that
delays every pod behind it.  So the loop only hands over the newest content
(:meth:`StateFile.set`, no I/O) and a worker thread writes it
(:meth:`StateFile.flush`) before whatever must not happen first: a pod's
namespace is made only once its IP and its state file are on disk.

Several sets before a flush become one write; a flush that finds the newest
content already written does nothing, so threads flushing the same file at
once write it once, never an older content over a newer one; after
:meth:`StateFile.remove` a late flush does not bring the file back.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the newest content and its version
        self._io = threading.Lock()  # one writer (or remover) at a time
        self._data: bytes | None = None
        self._version = 0
        self._written = 0
        self._removed = False

    def set(self, data: bytes) -> None:
        """The content the file should have (written by the next :meth:`flush`)."""
        with self._lock:
            self._version += 1
            self._data = data
            self._removed = False

    def flush(self) -> None:
        """Make the file hold at least the content set before this call (any thread)."""
        with self._io:
            with self._lock:
                version, data, removed = self._version, self._data, self._removed
            if removed or data is None or version <= self._written:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
            self._written = version

    def save(self, data: bytes) -> None:
        """Set and write now (where a thread hop is not worth it: adoption, tests)."""
        self.set(data)
        self.flush()

    def remove(self) -> None:
        """Delete the file; content set before this is never written after it."""
        with self._io:
            with self._lock:
                self._removed = True
                self._data = None
            self.path.unlink(missing_ok=True)
