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

A ``journal`` file (a pod's state: written when the pod starts and again
when each container starts) is not replaced but appended to, one line per
content, the last complete line being the content (:func:`read_last`): an
append is a data write only, where a rename over the file is two metadata
changes and a forced write-out.  The first write of each :class:`StateFile`
replaces the file (so an adopted pod's history starts over), and so does
every ``COMPACT_AFTER``-th, so a file never grows past that many lines.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

COMPACT_AFTER = 32  # lines a journal file holds before it is rewritten with the newest alone


def read_last(path: Path) -> Any:
    """The content of a (journal) state file: its last line that parses as JSON; ValueError if none does."""
    for line in reversed(path.read_bytes().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: the one before it stands
    raise ValueError(f"{path}: no complete state line")


class StateFile:
    def __init__(self, path: Path, *, journal: bool = False) -> None:
        self.path = path
        self.journal = journal
        self._lines = 0  # lines in the file since this object last replaced it
        self._lock = threading.Lock()  # the newest content and its version
        self._io = threading.Lock()  # one writer (or remover) at a time
        self._data: bytes | None = None
        self._version = 0
        self._written = 0
        self._removed = False

    def set(self, data: bytes) -> None:
        """The content the file should have (written by the next :meth:`flush`); one line for a journal."""
        if self.journal and b"\n" in data:
            raise ValueError("a journal state file holds one line per content")
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
            if self.journal and 0 < self._lines < COMPACT_AFTER:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                try:
                    os.write(fd, data + b"\n")
                finally:
                    os.close(fd)
                self._lines += 1
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_bytes(data + b"\n" if self.journal else data)
                os.replace(tmp, self.path)
                self._lines = 1
            self._written = version

    @property
    def pending(self) -> bool:
        """Content set and not yet written."""
        with self._lock:
            return self._data is not None and self._version > self._written and not self._removed

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
            self._lines = 0
            self.path.unlink(missing_ok=True)
