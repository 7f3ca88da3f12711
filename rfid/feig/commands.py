"""Request builders (host side) and request parsers (simulator side).

[0xB0] requests carry: command code, MODE, [UID when MODE.ADR = addressed], parameters.
[0xB1] NXP custom requests carry: MFR (0x04), command code, MODE, [UID].
UIDs travel MSB first (0xE0 first), the order the reader reports them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rfid.feig.errors import FeigCodecError
from rfid.feig.frames import BROADCAST_ADDRESS, encode_frame

CONTROL_ISO15693 = 0xB0
CONTROL_CUSTOM = 0xB1
MFR_NXP = 0x04
UID_LENGTH = 8

MODE_ADR_MASK = 0x07
INVENTORY_MODE_MORE = 0x80
# Unconfirmed: newer FEIG readers take an AFI byte after MODE when this bit is set;
# the MR101 has no such bit (its AFI filter lives in CFG4).
INVENTORY_MODE_AFI = 0x10


class Addressing(IntEnum):
    NON_ADDRESSED = 0b000
    ADDRESSED = 0b001
    SELECTED = 0b010


class IsoCommand(IntEnum):
    INVENTORY = 0x01
    READ_MULTIPLE_BLOCKS = 0x23
    WRITE_MULTIPLE_BLOCKS = 0x24
    SELECT = 0x25
    RESET_TO_READY = 0x26
    WRITE_AFI = 0x27
    LOCK_AFI = 0x28
    GET_SYSTEM_INFORMATION = 0x2B


class NxpCommand(IntEnum):
    SET_EAS = 0xA2
    RESET_EAS = 0xA3
    LOCK_EAS = 0xA4
    EAS_ALARM = 0xA5


@dataclass(frozen=True)
class ParsedRequest:
    """A decoded [0xB0] or [0xB1] request; ``mfr`` is None for [0xB0]."""

    control: int
    command: int
    mode: int
    uid: bytes | None
    params: bytes
    mfr: int | None = None

    @property
    def addressing(self) -> int:
        return self.mode & MODE_ADR_MASK


# ---- host side: builders ---------------------------------------------------------


def build_inventory(
    *, more: bool = False, afi: int | None = None, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    mode = INVENTORY_MODE_MORE if more else 0
    params = b""
    if afi is not None:
        _check_byte("AFI", afi)
        mode |= INVENTORY_MODE_AFI
        params = bytes((afi,))
    payload = bytes((IsoCommand.INVENTORY, mode)) + params
    return encode_frame(com_adr, CONTROL_ISO15693, payload, advanced=advanced)


def build_read_blocks(
    uid: bytes | None, first: int, count: int, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    _check_byte("first block", first)
    _check_count(count)
    return _iso_request(IsoCommand.READ_MULTIPLE_BLOCKS, uid, bytes((first, count)), com_adr, advanced)


def build_write_blocks(
    uid: bytes | None,
    first: int,
    block_size: int,
    data: bytes,
    *,
    com_adr: int = BROADCAST_ADDRESS,
    advanced: bool = False,
) -> bytes:
    _check_byte("first block", first)
    if not 1 <= block_size <= 32:
        raise FeigCodecError(f"block size must be 1..32, got {block_size}")
    if not data or len(data) % block_size:
        raise FeigCodecError(f"data length {len(data)} is not a positive multiple of block size {block_size}")
    count = len(data) // block_size
    _check_count(count)
    params = bytes((first, count, block_size)) + bytes(data)
    return _iso_request(IsoCommand.WRITE_MULTIPLE_BLOCKS, uid, params, com_adr, advanced)


def build_write_afi(
    uid: bytes | None, afi: int, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    _check_byte("AFI", afi)
    return _iso_request(IsoCommand.WRITE_AFI, uid, bytes((afi,)), com_adr, advanced)


def build_lock_afi(uid: bytes | None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False) -> bytes:
    return _iso_request(IsoCommand.LOCK_AFI, uid, b"", com_adr, advanced)


def build_get_system_info(
    uid: bytes | None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    return _iso_request(IsoCommand.GET_SYSTEM_INFORMATION, uid, b"", com_adr, advanced)


def build_reset_to_ready(
    uid: bytes | None = None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    return _iso_request(IsoCommand.RESET_TO_READY, uid, b"", com_adr, advanced)


def build_nxp_set_eas(uid: bytes | None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False) -> bytes:
    return _nxp_request(NxpCommand.SET_EAS, uid, com_adr, advanced)


def build_nxp_reset_eas(
    uid: bytes | None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    return _nxp_request(NxpCommand.RESET_EAS, uid, com_adr, advanced)


def build_nxp_lock_eas(uid: bytes | None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False) -> bytes:
    return _nxp_request(NxpCommand.LOCK_EAS, uid, com_adr, advanced)


def build_nxp_eas_alarm(
    uid: bytes | None = None, *, com_adr: int = BROADCAST_ADDRESS, advanced: bool = False
) -> bytes:
    return _nxp_request(NxpCommand.EAS_ALARM, uid, com_adr, advanced)


def _iso_request(command: int, uid: bytes | None, params: bytes, com_adr: int, advanced: bool) -> bytes:
    payload = bytes((command,)) + _mode_and_uid(uid) + params
    return encode_frame(com_adr, CONTROL_ISO15693, payload, advanced=advanced)


def _nxp_request(command: int, uid: bytes | None, com_adr: int, advanced: bool) -> bytes:
    payload = bytes((MFR_NXP, command)) + _mode_and_uid(uid)
    return encode_frame(com_adr, CONTROL_CUSTOM, payload, advanced=advanced)


def _mode_and_uid(uid: bytes | None) -> bytes:
    if uid is None:
        return bytes((Addressing.NON_ADDRESSED,))
    if len(uid) != UID_LENGTH:
        raise FeigCodecError(f"UID must be {UID_LENGTH} bytes, got {len(uid)}: {bytes(uid).hex()}")
    return bytes((Addressing.ADDRESSED,)) + bytes(uid)


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise FeigCodecError(f"{name} must be 0..255, got {value}")


def _check_count(count: int) -> None:
    if not 1 <= count <= 0xFF:
        raise FeigCodecError(f"block count must be 1..255, got {count}")


# ---- reader side: parsers ----------------------------------------------------------


def parse_request(control: int, payload: bytes) -> ParsedRequest:
    """Split a request payload into command, MODE, UID and the remaining parameters."""
    if control == CONTROL_ISO15693:
        return _split(control, None, payload)
    if control == CONTROL_CUSTOM:
        if len(payload) < 1:
            raise FeigCodecError("custom request without MFR byte")
        return _split(control, payload[0], payload[1:])
    raise FeigCodecError(f"no request layout known for CONTROL-BYTE 0x{control:02X}")


def _split(control: int, mfr: int | None, body: bytes) -> ParsedRequest:
    if len(body) < 2:
        raise FeigCodecError(f"request too short for command code and MODE: {body.hex(' ')}")
    command, mode = body[0], body[1]
    rest = body[2:]
    uid: bytes | None = None
    if command != IsoCommand.INVENTORY and mode & MODE_ADR_MASK == Addressing.ADDRESSED:
        if len(rest) < UID_LENGTH:
            raise FeigCodecError(f"addressed request without a full UID: {body.hex(' ')}")
        uid, rest = rest[:UID_LENGTH], rest[UID_LENGTH:]
    return ParsedRequest(control=control, command=command, mode=mode, uid=uid, params=bytes(rest), mfr=mfr)


def parse_read_params(params: bytes) -> tuple[int, int]:
    """(first block, block count) of Read Multiple Blocks."""
    if len(params) != 2:
        raise FeigCodecError(f"Read Multiple Blocks expects DB-ADR and DB-N, got {params.hex(' ')}")
    return params[0], params[1]


def parse_write_params(params: bytes) -> tuple[int, int, int, bytes]:
    """(first block, block count, block size, data) of Write Multiple Blocks."""
    if len(params) < 3:
        raise FeigCodecError(f"Write Multiple Blocks header incomplete: {params.hex(' ')}")
    first, count, size = params[0], params[1], params[2]
    data = params[3:]
    if len(data) != count * size:
        raise FeigCodecError(f"Write Multiple Blocks announces {count}x{size} bytes, carries {len(data)}")
    return first, count, size, bytes(data)


def parse_inventory_mode(mode: int, params: bytes) -> tuple[bool, int | None]:
    """(MORE flag, AFI filter or None) of an Inventory request."""
    afi = None
    if mode & INVENTORY_MODE_AFI:
        if len(params) != 1:
            raise FeigCodecError("Inventory MODE announces an AFI byte that is missing")
        afi = params[0]
    return bool(mode & INVENTORY_MODE_MORE), afi
