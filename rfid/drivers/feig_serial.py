"""FEIG ISO Host reader (ID ISC.MR101 and relatives) behind ``ReaderDriver``.

The port is any pyserial URL: ``/dev/ttyUSB0``, ``/dev/pts/N`` (simulator pty) or
``socket://127.0.0.1:PORT`` (simulator over TCP). Transport robustness (resync,
retries, reopen, outage logging) lives in ``FeigLink``; this module maps commands
and STATUS bytes onto the driver interface.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from rfid.drivers.base import (
    AfiLockedError,
    InvalidRequestError,
    InventoryTag,
    ReaderDriver,
    ReaderProtocolError,
    ReaderStatusError,
    ReaderTimeout,
    SystemInfo,
    TagNotFound,
    TagWriteError,
    check_uid,
)
from rfid.drivers.feig_link import FeigLink, SerialFactory
from rfid.drivers.profile import ReaderProfile
from rfid.feig import answers, commands
from rfid.feig.errors import FeigCodecError
from rfid.feig.frames import Frame
from rfid.feig.status import (
    ISO_ERROR_ALREADY_LOCKED,
    ISO_ERROR_BLOCK_LOCKED,
    Status,
    describe_iso_error,
    describe_status,
)

logger = logging.getLogger(__name__)

MAX_INVENTORY_PAGES = 64  # guards against a reader that keeps answering "more data"
INVENTORY_DATA_STATUSES = {Status.OK, Status.MORE_DATA, Status.RF_COMMUNICATION_ERROR}
WRITE_FAILURE_STATUSES = {Status.WRITE_ERROR, Status.ISO_ERROR}

T = TypeVar("T")


class FeigReader(ReaderDriver):
    """FEIG ISO Host driver. Calls are serialised; the port opens lazily and reopens after a link loss."""

    def __init__(self, profile: ReaderProfile, port: str, *, serial_factory: SerialFactory | None = None) -> None:
        self._profile = profile
        self._link = FeigLink(profile, port, serial_factory=serial_factory)
        # Multi-request operations (inventory pages, chunked reads/writes) must not interleave.
        self._operation = threading.RLock()
        self._frame_options: dict[str, Any] = {
            "com_adr": profile.com_address,
            "advanced": profile.frame_format == "advanced",
        }

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def profile(self) -> ReaderProfile:
        return self._profile

    @property
    def stats(self) -> dict[str, int]:
        """Transport counters: requests, answers, timeouts, retries, link_downs, opens, crc_errors, ..."""
        return self._link.stats_dict()

    def open(self) -> None:
        self._link.open()

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> FeigReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- inventory -------------------------------------------------------------------

    def inventory(self, afi: int | None = None) -> list[InventoryTag]:
        if afi is not None and not 0 <= afi <= 0xFF:
            raise InvalidRequestError(f"AFI must be 0..255, got {afi}")
        in_reader_filter = afi is not None and self._profile.afi_filter == "inventory_mode"
        with self._operation:
            records = self._inventory_pages(afi if in_reader_filter else None)
            if self._profile.inventory_reset_to_ready:
                self._reset_to_ready_once()
            tags = _unique_tags(records)
            if afi is not None and not in_reader_filter:
                tags = [tag for tag in tags if self._has_afi(tag.uid, afi)]
            return tags

    def reset_to_ready(self) -> None:
        """Non-addressed Reset to Ready: quiet tags answer inventories and non-addressed commands again."""
        self._link.transact(commands.build_reset_to_ready(None, **self._frame_options))

    def _inventory_pages(self, afi: int | None) -> list[answers.InventoryRecord]:
        records: list[answers.InventoryRecord] = []
        more = False
        for _ in range(MAX_INVENTORY_PAGES):
            request = commands.build_inventory(more=more, afi=afi, **self._frame_options)
            # A lost answer leaves the tags quiet (ONT=1): wake them before asking again.
            prelude = None if more or not self._profile.inventory_reset_to_ready else self._reset_to_ready_once
            frame = self._link.transact(request, before_retry=prelude)
            if frame.status == Status.NO_TRANSPONDER:
                return records
            if frame.status not in INVENTORY_DATA_STATUSES:
                raise self._status_error("inventory", frame)
            records.extend(_decode(answers.decode_inventory, frame))
            if frame.status != Status.MORE_DATA:
                return records
            more = True
        raise ReaderProtocolError(f"reader kept reporting 'more data' after {MAX_INVENTORY_PAGES} pages")

    def _reset_to_ready_once(self) -> None:
        try:
            self._link.transact(commands.build_reset_to_ready(None, **self._frame_options), retries=0)
        except ReaderTimeout:
            logger.debug("Reset to Ready was not answered; continuing")

    def _has_afi(self, uid: bytes, afi: int) -> bool:
        try:
            return self.system_info(uid).afi == afi
        except TagNotFound:
            return False  # left the field between inventory and the AFI check

    # ---- memory ------------------------------------------------------------------------

    def read_blocks(self, uid: bytes, first: int, count: int) -> bytes:
        """Blocks ``first .. first+count-1`` of the addressed tag, concatenated."""
        check_uid(uid)
        return self._read(uid, first, count)

    def read_blocks_any(self, first: int, count: int) -> bytes:
        """Non-addressed read: works only with exactly one (non-quiet) tag in the field."""
        return self._read(None, first, count)

    def write_blocks(self, uid: bytes, first: int, data: bytes) -> None:
        check_uid(uid)
        size = self._profile.block_size
        if not data or len(data) % size:
            raise InvalidRequestError(f"data length {len(data)} is not a positive multiple of block size {size}")
        _check_block_range(first, len(data) // size)
        step = self._profile.max_blocks_per_write * size
        with self._operation:
            for offset in range(0, len(data), step):
                chunk = self._to_wire_order(data[offset : offset + step])
                start = first + offset // size
                request = commands.build_write_blocks(uid, start, size, chunk, **self._frame_options)
                self._expect_write_ok("write blocks", uid, self._link.transact(request))

    def _read(self, uid: bytes | None, first: int, count: int) -> bytes:
        _check_block_range(first, count)
        out = bytearray()
        step = self._profile.max_blocks_per_read
        with self._operation:
            for start in range(first, first + count, step):
                out += self._read_chunk(uid, start, min(step, first + count - start))
        return bytes(out)

    def _read_chunk(self, uid: bytes | None, start: int, n: int) -> bytes:
        frame = self._link.transact(commands.build_read_blocks(uid, start, n, **self._frame_options))
        self._expect_ok("read blocks", uid, frame)
        block_data = _decode(answers.decode_read_blocks, frame)
        if len(block_data.blocks) != n:
            raise ReaderProtocolError(f"asked for {n} blocks at {start}, got {len(block_data.blocks)}")
        return self._to_host_order(block_data.blocks)

    def _to_wire_order(self, data: bytes) -> bytes:
        if not self._profile.reverse_block_bytes:
            return data
        size = self._profile.block_size
        return b"".join(data[i : i + size][::-1] for i in range(0, len(data), size))

    def _to_host_order(self, blocks: tuple[bytes, ...]) -> bytes:
        if self._profile.reverse_block_bytes:
            return b"".join(block[::-1] for block in blocks)
        return b"".join(blocks)

    # ---- system information, AFI, EAS ---------------------------------------------------

    def system_info(self, uid: bytes) -> SystemInfo:
        check_uid(uid)
        frame = self._link.transact(commands.build_get_system_info(uid, **self._frame_options))
        self._expect_ok("system info", uid, frame)
        record = _decode(answers.decode_system_info, frame)
        return SystemInfo(
            uid=record.uid,
            dsfid=record.dsfid,
            afi=record.afi,
            block_size=record.block_size,
            block_count=record.block_count,
            ic_ref=record.ic_ref,
        )

    def write_afi(self, uid: bytes, afi: int) -> None:
        check_uid(uid)
        if not 0 <= afi <= 0xFF:
            raise InvalidRequestError(f"AFI must be 0..255, got {afi}")
        frame = self._link.transact(commands.build_write_afi(uid, afi, **self._frame_options))
        if frame.status == Status.ISO_ERROR:
            iso_error = answers.decode_iso_error(frame.answer_data)
            if iso_error in (ISO_ERROR_BLOCK_LOCKED, ISO_ERROR_ALREADY_LOCKED):
                raise AfiLockedError(f"AFI of {uid.hex().upper()} is locked", iso_error=iso_error)
        self._expect_write_ok("write AFI", uid, frame)

    def set_eas(self, uid: bytes, enabled: bool) -> None:
        check_uid(uid)
        build = commands.build_nxp_set_eas if enabled else commands.build_nxp_reset_eas
        frame = self._link.transact(build(uid, **self._frame_options))
        self._expect_write_ok("set EAS" if enabled else "reset EAS", uid, frame)

    def eas_state(self, uid: bytes) -> bool:
        """Addressed EAS Alarm: only a tag whose EAS bit is set answers. Silence also means
        "tag gone", so read the AFI (system_info) first to know the tag is there."""
        check_uid(uid)
        frame = self._link.transact(commands.build_nxp_eas_alarm(uid, **self._frame_options))
        if frame.status == Status.OK:
            return True
        if frame.status == Status.NO_TRANSPONDER:
            return False
        raise self._status_error("EAS alarm", frame)

    def eas_alarm(self) -> bool:
        frame = self._link.transact(commands.build_nxp_eas_alarm(None, **self._frame_options))
        if frame.status == Status.OK:
            return True
        if frame.status == Status.NO_TRANSPONDER:
            return False
        raise self._status_error("EAS alarm", frame)

    # ---- STATUS mapping -------------------------------------------------------------------

    def _expect_ok(self, what: str, uid: bytes | None, frame: Frame) -> None:
        if frame.status == Status.OK:
            return
        if frame.status == Status.NO_TRANSPONDER:
            target = uid.hex().upper() if uid else "any tag"
            logger.debug("%s: %s did not answer", what, target)
            raise TagNotFound(f"{what}: {target} did not answer")
        raise self._status_error(what, frame)

    def _expect_write_ok(self, what: str, uid: bytes, frame: Frame) -> None:
        if frame.status in WRITE_FAILURE_STATUSES:
            detail = answers.decode_write_error(frame.status, frame.answer_data)
            message = f"{what} on {uid.hex().upper()} failed: {describe_status(frame.status)}"
            if detail.block is not None:
                message += f" at block {detail.block}"
            if detail.iso_error is not None:
                message += f", ISO error {describe_iso_error(detail.iso_error)}"
            logger.info(message)
            raise TagWriteError(message, block=detail.block, iso_error=detail.iso_error)
        self._expect_ok(what, uid, frame)

    @staticmethod
    def _status_error(what: str, frame: Frame) -> ReaderStatusError:
        iso_error = answers.decode_iso_error(frame.answer_data) if frame.status == Status.ISO_ERROR else None
        message = f"{what}: reader answered {describe_status(frame.status)}"
        if iso_error is not None:
            message += f", ISO error {describe_iso_error(iso_error)}"
        logger.info(message)
        return ReaderStatusError(message, status=frame.status, iso_error=iso_error)


def _decode(decoder: Callable[[bytes], T], frame: Frame) -> T:
    try:
        return decoder(frame.answer_data)
    except FeigCodecError as exc:
        logger.warning("malformed answer %s: %s", frame, exc)
        raise ReaderProtocolError(f"malformed answer: {exc}") from exc


def _unique_tags(records: list[answers.InventoryRecord]) -> list[InventoryTag]:
    seen: dict[bytes, InventoryTag] = {}
    for record in records:
        if len(record.uid) == 8 and record.uid not in seen:
            seen[record.uid] = InventoryTag(uid=record.uid, dsfid=record.dsfid, tr_type=record.tr_type)
    return list(seen.values())


def _check_block_range(first: int, count: int) -> None:
    if not 0 <= first <= 0xFF or count < 1 or first + count > 0x100:
        raise InvalidRequestError(f"block range {first}+{count} is outside 0..255 or empty")
