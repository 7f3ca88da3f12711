"""Common lifecycle of simulator transports: one background thread, clean start/stop."""

from __future__ import annotations

import logging
import os
import threading
from types import TracebackType

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


class ThreadedTransport:
    """Subclasses implement ``_setup`` (open resources), ``_serve`` (loop until the wake
    pipe is readable) and ``_teardown`` (close resources)."""

    thread_name = "readersim"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._wake_r = -1
        self._wake_w = -1

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.thread_name} is already running")
        self._wake_r, self._wake_w = os.pipe()
        try:
            self._setup()
        except BaseException:
            self._close_wake_pipe()
            raise
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        os.write(self._wake_w, b"x")
        thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            logger.error("%s thread did not stop within %ss", self.thread_name, JOIN_TIMEOUT_S)
        self._teardown()
        self._close_wake_pipe()

    def __enter__(self) -> ThreadedTransport:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._serve()
        except Exception:  # a simulator bug must not die silently in a background thread
            logger.exception("%s stopped on an unexpected error", self.thread_name)

    def _close_wake_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _setup(self) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        raise NotImplementedError

    def _teardown(self) -> None:
        raise NotImplementedError
