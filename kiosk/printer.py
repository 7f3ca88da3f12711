"""Receipt printers: ESC/POS over a serial port, a USB printer-class device, or a file.

``printer.kind`` in the site file picks one:

* ``escpos-serial`` — ``device`` is a serial port (``/dev/ttyUSB0``) or a pyserial
  URL; paper status is asked with ``DLE EOT 4``.
* ``escpos-usb`` — ``device`` is the kernel's printer node (``/dev/usb/lp0``) or
  ``VENDOR:PRODUCT`` in hex (``04b8:0202``), found through sysfs. Needs no
  driver beyond Linux's ``usblp``; the kiosk user must be in group ``lp``.
* ``escpos-file`` — appends each job to ``device`` (a spool file, or tests).
* ``none`` — no printer; the receipt is on screen (and by e-mail) only.

Every call blocks and must run off the UI thread.
"""

from __future__ import annotations

import enum
import logging
import os
import select
import threading
import time
from pathlib import Path
from typing import Protocol

from openshelf.site import PrinterSettings

from kiosk.escpos import PAPER_END_BITS, PAPER_NEAR_END_BITS, STATUS_PAPER

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 0.5


class PrinterError(Exception):
    """The printer cannot be reached or refused the job."""


class PaperStatus(str, enum.Enum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"
    UNKNOWN = "unknown"


def paper_status_of(status_byte: int) -> PaperStatus:
    if status_byte & PAPER_END_BITS:
        return PaperStatus.OUT
    if status_byte & PAPER_NEAR_END_BITS:
        return PaperStatus.NEAR_END
    return PaperStatus.OK


class ReceiptPrinter(Protocol):
    def print_job(self, job: bytes) -> None: ...

    def paper(self) -> PaperStatus: ...

    def close(self) -> None: ...


class FilePrinter:
    """Appends jobs to a file; paper never runs out."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def print_job(self, job: bytes) -> None:
        try:
            with self._lock, self._path.open("ab") as handle:
                handle.write(job)
        except OSError as exc:
            raise PrinterError(f"cannot write to {self._path}: {exc.strerror}") from exc

    def paper(self) -> PaperStatus:
        return PaperStatus.OK

    def close(self) -> None:
        return None


class SerialPrinter:
    """ESC/POS over RS-232 (or a USB-serial adapter); opened per job so an unplugged printer recovers."""

    def __init__(self, port: str, baudrate: int = 19200) -> None:
        self._port = port
        self._baudrate = baudrate
        self._lock = threading.Lock()

    def _open(self):  # type: ignore[no-untyped-def]
        import serial

        try:
            return serial.serial_for_url(self._port, baudrate=self._baudrate, timeout=STATUS_TIMEOUT_S,
                                         write_timeout=5.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PrinterError(f"cannot open printer port {self._port}: {exc}") from exc

    def print_job(self, job: bytes) -> None:
        import serial

        with self._lock:
            port = self._open()
            try:
                port.write(job)
                port.flush()
            except (serial.SerialException, OSError) as exc:
                raise PrinterError(f"printing on {self._port} failed: {exc}") from exc
            finally:
                port.close()

    def paper(self) -> PaperStatus:
        import serial

        with self._lock:
            try:
                port = self._open()
            except PrinterError:
                return PaperStatus.UNKNOWN
            try:
                port.reset_input_buffer()
                port.write(STATUS_PAPER)
                port.flush()
                answer = port.read(1)
            except (serial.SerialException, OSError):
                return PaperStatus.UNKNOWN
            finally:
                port.close()
        return paper_status_of(answer[0]) if answer else PaperStatus.UNKNOWN

    def close(self) -> None:
        return None


class UsbPrinter:
    """A USB printer-class device through the kernel's ``usblp`` node."""

    def __init__(self, device: str, sysfs: Path = Path("/sys/class/usbmisc")) -> None:
        self._device = device
        self._sysfs = sysfs
        self._lock = threading.Lock()

    def node(self) -> Path:
        if self._device.startswith("/"):
            return Path(self._device)
        vendor, _, product = self._device.lower().partition(":")
        for entry in sorted(self._sysfs.glob("lp*")):
            usb_device = (entry / "device").resolve().parent
            try:
                ids = ((usb_device / "idVendor").read_text().strip(), (usb_device / "idProduct").read_text().strip())
            except OSError:
                continue
            if ids == (vendor, product):
                return Path("/dev/usb") / entry.name
        raise PrinterError(f"no USB printer {self._device} is connected (looked in {self._sysfs})")

    def print_job(self, job: bytes) -> None:
        with self._lock:
            node = self.node()
            try:
                fd = os.open(node, os.O_WRONLY)
            except OSError as exc:
                raise PrinterError(f"cannot open {node}: {exc.strerror}") from exc
            try:
                view = memoryview(job)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            except OSError as exc:
                raise PrinterError(f"printing on {node} failed: {exc.strerror}") from exc
            finally:
                os.close(fd)

    def paper(self) -> PaperStatus:
        with self._lock:
            try:
                fd = os.open(self.node(), os.O_RDWR | os.O_NONBLOCK)
            except (OSError, PrinterError):
                return PaperStatus.UNKNOWN
            try:
                os.write(fd, STATUS_PAPER)
                deadline = time.monotonic() + STATUS_TIMEOUT_S
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                    if readable:
                        answer = os.read(fd, 1)
                        if answer:
                            return paper_status_of(answer[0])
                return PaperStatus.UNKNOWN
            except OSError:
                return PaperStatus.UNKNOWN
            finally:
                os.close(fd)

    def close(self) -> None:
        return None


def build_printer(settings: PrinterSettings) -> ReceiptPrinter | None:
    """The printer the site file describes, or None when there is none."""
    if settings.kind == "none":
        return None
    if not settings.device:
        raise PrinterError(f"printer kind {settings.kind} needs a device")
    if settings.kind == "escpos-serial":
        return SerialPrinter(settings.device, settings.baudrate)
    if settings.kind == "escpos-usb":
        return UsbPrinter(settings.device)
    return FilePrinter(Path(settings.device))
