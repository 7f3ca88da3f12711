"""Patron sessions at the kiosks: an opaque id, bound to one kiosk, that stands for an identified card.

A kiosk identifies a patron once (card + PIN) and then sends the session id with
each request; the backend knows which card it stands for. Ids are random and
say nothing; a session ends when the kiosk says so, after ``idle_s`` without a
request, after ``max_age_s`` in any case, or when the same kiosk identifies the
next patron. Sessions live in memory: a restarted backend forgets them and the
kiosk identifies the patron again (offline replays carry their card instead).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

DEFAULT_IDLE_S = 900.0
DEFAULT_MAX_AGE_S = 4 * 3600.0


@dataclass
class KioskSession:
    session_id: str
    kiosk_id: str
    card_id: str
    started: float
    last_used: float


class KioskSessions:
    def __init__(self, *, idle_s: float = DEFAULT_IDLE_S, max_age_s: float = DEFAULT_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s = idle_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, KioskSession] = {}
        self._current: dict[str, str] = {}  # kiosk id → its open session

    def open(self, kiosk_id: str, card_id: str) -> str:
        now = self._clock()
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            previous = self._current.pop(kiosk_id, None)
            if previous is not None:
                self._sessions.pop(previous, None)
            self._sessions[session_id] = KioskSession(session_id, kiosk_id, card_id, now, now)
            self._current[kiosk_id] = session_id
            if len(self._sessions) > 4 * max(1, len(self._current)):
                self._forget_expired(now)
        return session_id

    def get(self, session_id: str | None, kiosk_id: str) -> KioskSession | None:
        """The live session ``session_id`` of ``kiosk_id`` (and it counts as used now), else None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.kiosk_id != kiosk_id:
                return None
            if self._expired(session, now):
                self._drop(session)
                return None
            session.last_used = now
            return session

    def end(self, session_id: str | None, kiosk_id: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id or "")
            if session is None or session.kiosk_id != kiosk_id:
                return False
            self._drop(session)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expired(self, session: KioskSession, now: float) -> bool:
        return now - session.last_used > self._idle_s or now - session.started > self._max_age_s

    def _drop(self, session: KioskSession) -> None:
        self._sessions.pop(session.session_id, None)
        if self._current.get(session.kiosk_id) == session.session_id:
            del self._current[session.kiosk_id]

    def _forget_expired(self, now: float) -> None:
        for session in [session for session in self._sessions.values() if self._expired(session, now)]:
            self._drop(session)
