"""Fan-out of live dashboard events (new alarm, snapshot attached, alarm updated) to SSE streams.

Events are published from any thread (the alarm writer, request threads) and
delivered to each subscriber's own asyncio queue on its own loop. A subscriber
that falls too far behind is closed; its browser reconnects and reloads the list.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_CLOSED = object()


@dataclass(frozen=True)
class LiveEvent:
    name: str
    data: dict[str, Any]


class Subscription:
    def __init__(self, notifier: "AlarmNotifier", loop: asyncio.AbstractEventLoop, max_pending: int) -> None:
        self._notifier = notifier
        self.loop = loop
        self._max_pending = max_pending
        # One slot more than events allowed, so the end marker always fits.
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max_pending + 1)
        self._ended = False

    def offer(self, item: object) -> None:
        """Runs on the subscriber's loop."""
        if self._ended:
            return
        if item is not _CLOSED and self._queue.qsize() < self._max_pending:
            self._queue.put_nowait(item)
            return
        if item is not _CLOSED:
            log.warning("a live dashboard fell behind; closing its stream so it reloads")
        self._ended = True
        self._notifier.unsubscribe(self)
        self._queue.put_nowait(_CLOSED)

    async def next(self, timeout_s: float) -> LiveEvent | None:
        """The next event; None on timeout. Raises StopAsyncIteration once closed."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout_s)
        except asyncio.TimeoutError:
            return None
        if item is _CLOSED:
            raise StopAsyncIteration
        assert isinstance(item, LiveEvent)
        return item

    def close(self) -> None:
        self._notifier.unsubscribe(self)


class AlarmNotifier:
    def __init__(self, max_pending: int = 256) -> None:
        self._max_pending = max_pending
        # Re-entrant: close() may run in a signal handler on the thread that already holds it.
        self._lock = threading.RLock()
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def subscribe(self) -> Subscription:
        """Call from inside the event loop that will consume the subscription."""
        subscription = Subscription(self, asyncio.get_running_loop(), self._max_pending)
        with self._lock:
            closed = self._closed
            if not closed:
                self._subscribers.add(subscription)
        if closed:
            subscription.offer(_CLOSED)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self._deliver(LiveEvent(name, data))

    def close(self) -> None:
        """End every open stream (at shutdown, so the HTTP server is not kept waiting)."""
        with self._lock:
            self._closed = True
        self._deliver(_CLOSED)
        with self._lock:
            self._subscribers.clear()

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _deliver(self, item: object) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            try:
                subscription.loop.call_soon_threadsafe(subscription.offer, item)
            except RuntimeError:  # its loop is already closed
                self.unsubscribe(subscription)
