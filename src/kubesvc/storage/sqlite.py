"""SqliteStore: the engine over one sqlite file, the embedded default.

The whole state is loaded into memory on open and served from there; sqlite is
only written to, one transaction per batch (group commit), so the figure that
matters is fsyncs per second, not queries per second.

* WAL journal + ``synchronous=FULL``: a commit is on disk when it returns, and
  readers of the file (backups, ``sqlite3`` by hand) never block the writer.
* ``objects(key, revision, value)`` holds the current state; ``meta`` holds the
  revision counter, so deletes (which remove rows) never lose it.
* Fencing: every batch first checks that the stored counter is the one this
  process last wrote.  A second process writing the same file makes the next
  batch fail loudly instead of silently interleaving two histories.  (The
  apiserver also takes a lock file so it never gets that far.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .contract import StorageError, Stored
from .engine import DEFAULT_HISTORY, DEFAULT_WATCH_QUEUE, DELETED, Engine, Write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, revision INTEGER NOT NULL, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value);
"""
_UPSERT = (
    "INSERT INTO objects(key, revision, value) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET revision = excluded.revision, value = excluded.value"
)
_SET_REVISION = (
    "INSERT INTO meta(name, value) VALUES ('revision', ?) "
    "ON CONFLICT(name) DO UPDATE SET value = excluded.value"
)


class SqlitePersistence:
    """Writes batches to one sqlite file.  Called only from the engine's single
    worker thread (after construction), hence ``check_same_thread=False``."""

    blocking = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path}: cannot enable WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open {self.path}: {e}") from e
        self._conn = conn
        self._revision = 0  # the counter as this process last saw it on disk

    def load(self) -> tuple[list[Stored], int]:
        """Every object, and the revision to continue from."""
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
            rows = self._conn.execute("SELECT key, revision, value FROM objects").fetchall()
        except sqlite3.Error as e:
            raise StorageError(f"cannot read {self.path}: {e}") from e
        items = [Stored(key, rev, bytes(value)) for key, rev, value in rows]
        revision = max([int(row[0]) if row else 0, *(s.revision for s in items)])
        self._revision = int(row[0]) if row else 0
        return items, revision

    def write_batch(self, writes: Sequence[Write], revision: int) -> None:
        """One transaction for the batch: the final state of each key, and the counter."""
        final: dict[str, Write] = {}
        for write in writes:
            final[write.key] = write
        upserts = [(k, w.revision, w.stored.data) for k, w in final.items() if w.type != DELETED]
        deletes = [(k,) for k, w in final.items() if w.type == DELETED]
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
                on_disk = int(row[0]) if row else 0
                if on_disk != self._revision:
                    raise StorageError(
                        f"{self.path} was written by another process (revision {on_disk}, "
                        f"expected {self._revision}); refusing to write"
                    )
                if upserts:
                    conn.executemany(_UPSERT, upserts)
                if deletes:
                    conn.executemany("DELETE FROM objects WHERE key = ?", deletes)
                conn.execute(_SET_REVISION, (revision,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StorageError(f"cannot write {self.path}: {e}") from e
        self._revision = revision

    def close(self) -> None:
        self._conn.close()


class SqliteStore(Engine):
    """A durable store in the sqlite file at ``path`` (created if missing).

    Opening reads the whole file into memory (synchronously: do it at startup,
    before serving).  Watch history starts empty: ``oldest_revision`` equals
    the loaded revision, so watches from before the restart get
    :class:`~kubesvc.storage.contract.TooOldRevision` and clients re-list."""

    def __init__(
        self,
        path: str | Path,
        *,
        history_size: int = DEFAULT_HISTORY,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        persistence = SqlitePersistence(path)
        items, revision = persistence.load()
        super().__init__(
            persistence,
            items=items,
            revision=revision,
            history_size=history_size,
            watch_queue_size=watch_queue_size,
        )
        self.path = persistence.path
