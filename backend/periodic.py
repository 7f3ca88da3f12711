"""A chore the backend repeats on a thread of its own (pruning, watching the catalogue)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class PeriodicChore:
    """Calls ``chore`` every ``every_s`` until stopped (first at start when ``at_start``).

    An exception of the ``expected`` kinds (a database away for a while) is handed to
    ``on_failure`` and the chore runs again at its next turn; anything else is a bug and
    ends the thread loudly.
    """

    def __init__(self, name: str, every_s: float, chore: Callable[[], object], *,
                 expected: tuple[type[Exception], ...], on_failure: Callable[[Exception], None],
                 at_start: bool = False) -> None:
        self._name = name
        self._every_s = every_s
        self._chore = chore
        self._expected = expected
        self._on_failure = on_failure
        self._at_start = at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        if self._at_start:
            self._once()
        while not self._stop.wait(self._every_s):
            self._once()

    def _once(self) -> None:
        try:
            self._chore()
        except self._expected as exc:
            self._on_failure(exc)
