"""Log a link fault once per outage and the recovery once, instead of once per poll."""

from __future__ import annotations

import logging


class OutageLog:
    def __init__(self, logger: logging.Logger, subject: str) -> None:
        self._logger = logger
        self._subject = subject
        self._fault: str | None = None
        self._failures = 0

    @property
    def in_outage(self) -> bool:
        return self._fault is not None

    def fault(self, kind: str, detail: str) -> None:
        """Record a failed call; logs only when the kind of fault changes."""
        self._failures += 1
        if self._fault == kind:
            return
        self._fault = kind
        self._logger.warning(
            "%s: %s (%s); repeats are not logged until it recovers", self._subject, kind, detail
        )

    def recovered(self) -> None:
        if self._fault is None:
            return
        self._logger.info(
            "%s: recovered from %s after %d failed call(s)", self._subject, self._fault, self._failures
        )
        self._fault = None
        self._failures = 0
