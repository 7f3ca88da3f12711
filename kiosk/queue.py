"""The durable offline queue: circulation transactions accepted while the backend was away.

SQLite in WAL mode with ``synchronous=FULL``: a transaction is on disk before
``enqueue`` returns, so a power cut right after the patron saw '✓' loses
nothing. Every entry keeps the idempotency key of the patron's action (the same
key an earlier, unanswered online attempt used), so a replay the backend has
already applied is answered from the backend's memory instead of applied twice.
Entries are replayed strictly in the order they were accepted.

States: ``pending`` (not yet answered), ``done`` (the backend accepted it) and
``refused`` (the backend answered but refused it after the fact, e.g. the item
was on hold for someone else; kept for staff, see ``refused()``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openshelf.contract import CirculationRequest, utcnow

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queued (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'refused')),
    queued_at TEXT NOT NULL,
    answered_at TEXT,
    answer_code TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queued_pending ON queued (state, seq);
"""


class QueueError(Exception):
    """The queue file cannot be opened or written (disk full, permissions, corruption)."""


@dataclass(frozen=True)
class QueuedTransaction:
    seq: int
    request: CirculationRequest
    attempts: int


@dataclass(frozen=True)
class RefusedTransaction:
    seq: int
    request: CirculationRequest
    code: str
    answered_at: str


class OfflineQueue:
    """Thread-safe; one connection guarded by a lock (the kiosk writes a few rows a minute)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise QueueError(f"cannot open the offline queue {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(self, request: CirculationRequest) -> bool:
        """Store ``request`` durably; False if its idempotency key is already queued (nothing changes)."""
        payload = request.model_dump_json()
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO queued (idempotency_key, request, queued_at) VALUES (?, ?, ?)",
                    (request.idempotency_key, payload, utcnow().isoformat()),
                )
            except sqlite3.Error as exc:
                raise QueueError(f"cannot write to the offline queue {self.path}: {exc}") from exc
        added = cursor.rowcount == 1
        if added:
            log.info("queued %s %s (key %s)", request.op.value, request.item_id or "", request.idempotency_key)
        return added

    def next_pending(self) -> QueuedTransaction | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, request, attempts FROM queued WHERE state = 'pending' ORDER BY seq LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return QueuedTransaction(row[0], CirculationRequest.model_validate_json(row[1]), row[2])

    def pending(self) -> list[QueuedTransaction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, request, attempts FROM queued WHERE state = 'pending' ORDER BY seq"
            ).fetchall()
        return [QueuedTransaction(seq, CirculationRequest.model_validate_json(body), attempts)
                for seq, body, attempts in rows]

    def pending_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM queued WHERE state = 'pending'").fetchone()
        return int(count)

    def note_attempt(self, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE queued SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def mark_answered(self, seq: int, *, accepted: bool, code: str, at: datetime | None = None) -> None:
        state = "done" if accepted else "refused"
        with self._lock:
            self._db.execute(
                "UPDATE queued SET state = ?, answer_code = ?, answered_at = ? WHERE seq = ? AND state = 'pending'",
                (state, code, (at or utcnow()).isoformat(), seq),
            )

    def refused(self) -> list[RefusedTransaction]:
        """Offline transactions the backend refused on replay: staff must look at these items."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, request, answer_code, answered_at FROM queued WHERE state = 'refused' ORDER BY seq"
            ).fetchall()
        return [RefusedTransaction(seq, CirculationRequest.model_validate_json(body), code, answered_at)
                for seq, body, code, answered_at in rows]
