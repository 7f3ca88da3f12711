"""Serve a SimulatedReader on a pseudo-terminal: the driver opens ``port`` like a serial port.

Linux ptys refuse even parity, so open the slave with parity none.
"""

from __future__ import annotations

import logging
import os
import select
import tty

from rfid.readersim.core import SimulatedReader
from rfid.readersim.transport import ThreadedTransport

logger = logging.getLogger(__name__)

READ_CHUNK = 4096


class PtyTransport(ThreadedTransport):
    thread_name = "readersim-pty"

    def __init__(self, reader: SimulatedReader) -> None:
        super().__init__()
        self._reader = reader
        self._master = -1
        self._slave = -1
        self._slave_path: str | None = None

    @property
    def port(self) -> str:
        """Path of the slave side, e.g. /dev/pts/7 (new on every start)."""
        if self._slave_path is None:
            raise RuntimeError("pty transport is not started")
        return self._slave_path

    @property
    def url(self) -> str:
        return self.port

    def _setup(self) -> None:
        self._master, self._slave = os.openpty()
        # Keep the slave open ourselves: the master would read EIO whenever the driver closes it.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._slave_path = os.ttyname(self._slave)

    def _teardown(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self._slave_path = None

    def _serve(self) -> None:
        session = self._reader.session()
        while True:
            readable, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            try:
                data = os.read(self._master, READ_CHUNK)
            except BlockingIOError:
                continue
            answer = session.feed(data)
            if answer and not self._write_all(answer):
                return

    def _write_all(self, data: bytes) -> bool:
        """Write everything unless asked to stop meanwhile; False when stopping."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                _, writable, _ = select.select([self._wake_r], [self._master], [])
                if not writable:
                    return False
        return True
