"""Request/reply over MQTT: match each reply to the request that is waiting for it."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Generic, TypeVar

from openshelf.contract import Reply, TopicParts

R = TypeVar("R", bound=Reply)


class ReplyWaiter(Generic[R]):
    """Futures keyed by correlation id; a reply nobody waits for (late, foreign) is dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, Future[R]] = {}
        self.late_replies = 0

    def expect(self, correlation_id: str) -> Future[R]:
        future: Future[R] = Future()
        with self._lock:
            self._waiting[correlation_id] = future
        return future

    def forget(self, correlation_id: str) -> None:
        with self._lock:
            self._waiting.pop(correlation_id, None)

    def deliver(self, parts: TopicParts, reply: R) -> None:
        """MQTT handler: hand the reply to its waiter (runs on the network thread)."""
        with self._lock:
            future = self._waiting.pop(reply.correlation_id, None)
            if future is None:
                self.late_replies += 1
                return
        future.set_result(reply)

    def fail_all(self, exc: BaseException) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(exc)
