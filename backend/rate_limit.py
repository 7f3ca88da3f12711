"""A small in-memory limit on failed logins per (username, client address)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

_MAX_KEYS = 10_000


class LoginRateLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until another attempt is allowed; 0 when allowed now."""
        key = (username.casefold(), address)
        with self._lock:
            failures = self._recent(key)
            if len(failures) < self._max_failures:
                return 0.0
            return max(0.0, failures[0] + self._window_s - self._clock())

    def failed(self, username: str, address: str) -> None:
        key = (username.casefold(), address)
        with self._lock:
            if len(self._failures) >= _MAX_KEYS and key not in self._failures:
                self._forget_stale()
            failures = self._recent(key)
            failures.append(self._clock())
            self._failures[key] = failures

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.casefold(), address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.get(key, deque())
        horizon = self._clock() - self._window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def _forget_stale(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        if len(self._failures) >= _MAX_KEYS:
            self._failures.clear()
