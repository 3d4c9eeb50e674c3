"""Where a persistent emulator keeps its state: one SQLite file (standard library only).

Each record is a JSON object filed under a kind (`session`, `link`, ...) and a key (its id).
The emulator writes through: every change is one transaction, committed before the request is
answered, so a stopped (or killed) emulator comes back with everything it had answered for.
The file is in WAL mode; one connection, guarded by a lock, serves the server's threads.

An `EmulatorStore` is opened (and checked) when the emulator is built: a file that is not an
emulator state file, is corrupt, or cannot be written is a `StateFileError` at start, never a
failure half-way through a request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"
_TABLES = {"emulator_meta", "emulator_records"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS emulator_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emulator_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"""
_UPSERT = (
    "INSERT INTO emulator_records (kind, key, body) VALUES (?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body"
)

# One change: ("put", kind, key, record) or ("delete", kind, key, None).
Change = tuple[str, str, str, Any]


class StateFileError(RuntimeError):
    """The state file cannot be used: says which file and why."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"Emulator state file {path}: {why}")
        self.path = path


class EmulatorStore:
    """A write-through store of JSON records in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise StateFileError(self.path, "is a directory, not a file")
        try:
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10
            )
        except sqlite3.Error as exc:
            raise StateFileError(self.path, f"cannot be opened ({exc})") from exc
        try:
            self._prepare()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StateFileError(self.path, f"is corrupt or cannot be written ({exc})") from exc
        except StateFileError:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        """Check the file is ours (or empty), set WAL mode, create the tables, prove a write."""
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and not tables.issuperset(_TABLES):
            raise StateFileError(self.path, "is an SQLite database but not an emulator state file")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        version = conn.execute(
            "SELECT value FROM emulator_meta WHERE key = 'schema_version'"
        ).fetchone()
        if version is not None and version[0] != SCHEMA_VERSION:
            raise StateFileError(
                self.path, f"has schema version {version[0]}, this emulator reads {SCHEMA_VERSION}"
            )
        opened = datetime.now(UTC).isoformat()
        with self._transaction():
            conn.execute(
                "INSERT OR REPLACE INTO emulator_meta (key, value) VALUES (?, ?), (?, ?)",
                ("schema_version", SCHEMA_VERSION, "opened_at", opened),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # Reading -----------------------------------------------------------------------------

    def load(self, kind: str) -> dict[str, Any]:
        """Every record of `kind`, by key, in the order they were first written."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT key, body FROM emulator_records WHERE kind = ? ORDER BY rowid", (kind,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateFileError(self.path, f"cannot be read ({exc})") from exc
        out: dict[str, Any] = {}
        for key, body in rows:
            try:
                out[key] = json.loads(body)
            except ValueError as exc:
                raise StateFileError(self.path, f"holds an unreadable {kind} {key!r}") from exc
        return out

    # Writing -----------------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> None:
        """Write `changes` in one transaction: all of them, or (on an error) none."""
        rows = [
            (op, kind, key, None if op == "delete" else json.dumps(record, sort_keys=True))
            for op, kind, key, record in changes
        ]
        with self._lock, self._transaction():
            for op, kind, key, body in rows:
                if op == "put":
                    self._conn.execute(_UPSERT, (kind, key, body))
                elif op == "delete":
                    self._conn.execute(
                        "DELETE FROM emulator_records WHERE kind = ? AND key = ?", (kind, key)
                    )
                else:
                    raise ValueError(f"unknown change {op!r}")

    def put(self, kind: str, key: str, record: Any) -> None:
        self.apply([("put", kind, key, record)])

    def delete(self, kind: str, key: str) -> None:
        self.apply([("delete", kind, key, None)])

    def clear(self) -> None:
        """Forget every record (the control API's reset)."""
        with self._lock, self._transaction():
            self._conn.execute("DELETE FROM emulator_records")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when the block raises."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
