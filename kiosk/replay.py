"""Replays the offline queue, in order, once the backend answers again.

One thread. It tries the oldest pending transaction when woken (the backend's
status says online, a transaction was queued) and every ``retry_s`` otherwise;
the first unanswered request ends the round, so order is kept: nothing later is
sent before something earlier has been answered. Replays carry ``no_block``
(the patron already walked out with the book) and the original idempotency key
and time.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from kiosk.backend_client import BackendUnavailable, CirculationClient
from kiosk.queue import OfflineQueue, QueueError

log = logging.getLogger(__name__)


class Replayer:
    def __init__(self, queue: OfflineQueue, client: CirculationClient, *,
                 on_progress: Callable[[int], None] | None = None, retry_s: float = 5.0) -> None:
        self._queue = queue
        self._client = client
        self._on_progress = on_progress
        self._retry_s = retry_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replayed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kiosk-replay", daemon=True)
        self._thread.start()
        self._client.availability.add_listener(lambda online: self.wake() if online else None)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._client.deadline_s + 2)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._retry_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.replay_round()
            except QueueError:
                log.exception("offline queue unusable; will retry")

    def replay_round(self) -> int:
        """Send pending transactions oldest first until one goes unanswered; returns how many were answered."""
        answered = 0
        while not self._stop.is_set():
            entry = self._queue.next_pending()
            if entry is None:
                break
            self._queue.note_attempt(entry.seq)
            request = self._client.refreshed(entry.request, no_block=True)
            try:
                reply = self._client.call(request)
            except BackendUnavailable:
                break
            self._queue.mark_answered(entry.seq, accepted=reply.ok, code=reply.code)
            if not reply.ok:
                log.warning("offline %s of %s refused on replay: %s (%s); staff should check this item",
                            request.op.value, request.item_id, reply.code, reply.message_en)
            answered += 1
            self.replayed += 1
        if answered and self._on_progress is not None:
            self._on_progress(self._queue.pending_count())
        return answered
