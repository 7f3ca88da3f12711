"""Request/answer transport of the FEIG ISO Host protocol over a pyserial port.

Owns the port: opens it lazily, resynchronises the answer stream, retries on
timeouts, turns a vanished port into ``ReaderLinkDown`` and reopens on the next call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import serial

from rfid.drivers.base import ReaderLinkDown, ReaderTimeout
from rfid.drivers.outage_log import OutageLog
from rfid.drivers.profile import ReaderProfile
from rfid.feig.frames import BROADCAST_ADDRESS, Frame, decode_frame
from rfid.feig.stream import FrameReader

logger = logging.getLogger(__name__)

SerialFactory = Callable[..., Any]


def _port_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the port is gone; termios.error is not an OSError."""
    try:
        import termios
    except ImportError:  # not a POSIX system
        return (serial.SerialException, OSError)
    return (serial.SerialException, OSError, termios.error)


PORT_ERRORS = _port_errors()


@dataclass
class LinkStats:
    requests: int = 0
    answers: int = 0
    timeouts: int = 0  # attempts without a valid answer
    retries: int = 0
    link_downs: int = 0
    opens: int = 0
    unexpected_frames: int = 0  # valid frames that did not answer the pending request


class FeigLink:
    def __init__(
        self, profile: ReaderProfile, port: str, *, serial_factory: SerialFactory | None = None
    ) -> None:
        self._profile = profile
        self._port_url = port
        self._serial_factory = serial_factory or serial.serial_for_url
        self._port: Any = None
        self._lock = threading.RLock()
        self._frames = FrameReader()
        self._outage = OutageLog(logger, f"reader {profile.model} on {port}")
        self.stats = LinkStats()

    @property
    def port_url(self) -> str:
        return self._port_url

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def stats_dict(self) -> dict[str, int]:
        return {**asdict(self.stats), **self._frames.stats.as_dict()}

    def open(self) -> None:
        with self._lock:
            self._ensure_open()

    def close(self) -> None:
        with self._lock:
            self._drop_port()

    def transact(
        self, request: bytes, *, retries: int | None = None, before_retry: Callable[[], None] | None = None
    ) -> Frame:
        """Send ``request`` and return the matching answer frame (any STATUS)."""
        expected = decode_frame(request)
        attempts = 1 + (self._profile.retries if retries is None else retries)
        with self._lock:
            for attempt in range(attempts):
                if attempt:
                    self.stats.retries += 1
                    logger.debug("retrying %s (attempt %d of %d)", request.hex(" "), attempt + 1, attempts)
                    if before_retry is not None:
                        before_retry()
                answer = self._attempt(request, expected)
                if answer is not None:
                    self._outage.recovered()
                    return answer
                self.stats.timeouts += 1
            detail = f"no answer to {request.hex(' ')} within {self._profile.response_timeout_s}s x{attempts}"
            self._outage.fault("reader timeout", detail)
            raise ReaderTimeout(detail)

    def _attempt(self, request: bytes, expected: Frame) -> Frame | None:
        port = self._ensure_open()
        try:
            port.reset_input_buffer()
            self._frames.clear()
            port.write(request)
            self.stats.requests += 1
            return self._await_answer(port, expected)
        except PORT_ERRORS as exc:
            raise self._link_lost(exc) from exc

    def _await_answer(self, port: Any, expected: Frame) -> Frame | None:
        deadline = time.monotonic() + self._profile.response_timeout_s
        while time.monotonic() < deadline:
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            for frame in self._frames.feed(chunk):
                if self._answers(frame, expected):
                    self.stats.answers += 1
                    return frame
                self.stats.unexpected_frames += 1
                logger.debug("ignoring frame that does not answer the request: %s", frame)
        return None

    @staticmethod
    def _answers(frame: Frame, expected: Frame) -> bool:
        address_ok = expected.com_adr == BROADCAST_ADDRESS or frame.com_adr == expected.com_adr
        return frame.control == expected.control and address_ok and bool(frame.payload)

    def _ensure_open(self) -> Any:
        if self._port is not None:
            return self._port
        try:
            self._port = self._serial_factory(
                self._port_url,
                baudrate=self._profile.baudrate,
                bytesize=serial.EIGHTBITS,
                parity=self._profile.serial_parity,
                stopbits=serial.STOPBITS_ONE,
                timeout=self._profile.response_timeout_s,
                write_timeout=self._profile.write_timeout_s,
            )
        except (*PORT_ERRORS, ValueError) as exc:
            self._port = None
            self.stats.link_downs += 1
            self._outage.fault("reader link down", f"cannot open {self._port_url}: {exc}")
            raise ReaderLinkDown(f"cannot open {self._port_url}: {exc}") from exc
        self.stats.opens += 1
        self._frames.clear()
        logger.debug("opened %s", self._port_url)
        return self._port

    def _link_lost(self, exc: BaseException) -> ReaderLinkDown:
        self._drop_port()
        self.stats.link_downs += 1
        self._outage.fault("reader link down", f"{self._port_url}: {exc}")
        return ReaderLinkDown(f"lost {self._port_url}: {exc}")

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        # pyserial 3.5's socket:// close() skips socket.close() when shutdown() fails on a
        # dead peer, leaking the descriptor: close the raw socket ourselves as well.
        raw_socket = getattr(port, "_socket", None)
        try:
            port.close()
        except PORT_ERRORS as exc:
            logger.debug("error while closing %s: %s", self._port_url, exc)
        finally:
            if raw_socket is not None:
                raw_socket.close()
