"""A fixed pool of worker threads for the kiosk's blocking I/O (MQTT request/reply, HTTP, printer, SMTP).

Started and stopped explicitly (no threads appear on first use), so the kiosk
knows exactly which threads it runs and joins them all when it stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

log = logging.getLogger(__name__)

_STOP = object()


class WorkerPool:
    def __init__(self, size: int, name: str = "kiosk-io") -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        if self._threads:
            return
        for index in range(self._size):
            thread = threading.Thread(target=self._serve, name=f"{self._name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stopping:
            future.set_exception(RuntimeError("the worker pool is stopped"))
            return future
        self._jobs.put((future, fn, args))
        return future

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the jobs already queued, then end every thread."""
        if self._stopping:
            return
        self._stopping = True
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("worker %s still busy after %.0f s", thread.name, timeout_s)
        self._threads = []

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)
