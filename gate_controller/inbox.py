"""Hands messages from MQTT network threads to the gate's event loop, one wake-up per batch.

``loop.call_soon_threadsafe`` per message writes to the loop's self-pipe every
time: a system call on the network thread, a wake-up of the loop thread, and a
GIL hand-over in both directions. At a gate reader's full rate (and with many
gates in one process) that hand-over, not the work, dominated the controller's
CPU profile. Here the network thread only appends to a queue and wakes the loop
when no drain is pending; messages keep their arrival order across handlers.
When the MQTT links run on the loop itself (``MqttLink.start_on_loop``) a message
arriving with nothing queued is handled at once, without any hand-over.

Handlers wrapped as *urgent* (the gate's alarm and silence commands) have a lane of
their own: when a backlog builds up, an urgent message is handled before every
ordinary message still queued (tag reads, pass notices), so a relay write never
waits behind a queue of bookkeeping. Urgent messages keep their order among
themselves (a silence never overtakes the alarm it follows, nor the reverse).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from openshelf.contract import TopicParts

log = logging.getLogger(__name__)

Handler = Callable[[TopicParts, Any], None]


class LoopInbox:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        running = asyncio._get_running_loop()  # noqa: SLF001 - the public getter raises when none runs
        self._loop_thread = threading.get_ident() if running is loop else None
        self._items: deque[tuple[Handler, TopicParts, Any]] = deque()
        self._urgent: deque[tuple[Handler, TopicParts, Any]] = deque()
        self._drain_pending = False
        self.wake_ups = 0
        self.delivered = 0

    def wrap(self, handler: Handler, *, urgent: bool = False) -> Handler:
        """A handler for the MQTT thread that runs ``handler`` on the loop (``urgent``: before ordinary work)."""

        def forward(parts: TopicParts, message: Any) -> None:
            self.put(handler, parts, message, urgent=urgent)

        return forward

    def put(self, handler: Handler, parts: TopicParts, message: Any, *, urgent: bool = False) -> None:
        """Queue one call (any thread). Appending before reading the flag is what makes this race-free:
        a drain that already cleared the flag either sees this item or a new drain is scheduled for it."""
        if (not self._items and not self._urgent and not self._drain_pending
                and threading.get_ident() == self._loop_thread):
            self.delivered += 1
            self._call(handler, parts, message)
            return
        (self._urgent if urgent else self._items).append((handler, parts, message))
        if self._drain_pending:
            return
        self._drain_pending = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the process is stopping, the message is moot
            log.debug("event loop closed; dropped a message for %s", getattr(handler, "__qualname__", handler))
        else:
            self.wake_ups += 1

    def _drain(self) -> None:
        self._drain_pending = False
        items = self._items
        self._drain_urgent()
        for _ in range(len(items)):  # what is here now; later arrivals come with their own wake-up
            handler, parts, message = items.popleft()
            self.delivered += 1
            self._call(handler, parts, message)
            self._drain_urgent()  # one that arrived meanwhile (a network thread, or a handler) goes next

    def _drain_urgent(self) -> None:
        urgent = self._urgent
        while urgent:
            handler, parts, message = urgent.popleft()
            self.delivered += 1
            self._call(handler, parts, message)

    @staticmethod
    def _call(handler: Handler, parts: TopicParts, message: Any) -> None:
        try:
            handler(parts, message)
        except Exception:  # noqa: BLE001 - one bad message must not stop the others
            log.exception("handler %s failed for a message on %s/%s",
                          getattr(handler, "__qualname__", handler), parts.device_id, parts.name)
