"""Response DATA layouts: parsers (host side) and encoders (simulator side).

All functions work on the DATA after STATUS. Multi-byte values are MSB first.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfid.feig.commands import UID_LENGTH
from rfid.feig.errors import FeigCodecError
from rfid.feig.frames import encode_frame

INVENTORY_RECORD_LENGTH = 2 + UID_LENGTH  # TR-TYPE, DSFID, UID
SYSTEM_INFO_LENGTH = 1 + UID_LENGTH + 1 + 2 + 1  # DSFID, UID, AFI, MEM-SIZE, IC-REF
RF_TEC_MASK = 0xC0
RF_TEC_HF = 0x00


@dataclass(frozen=True)
class InventoryRecord:
    tr_type: int
    dsfid: int
    uid: bytes


@dataclass(frozen=True)
class BlockData:
    """Read Multiple Blocks answer: the blocks as delivered plus their security status bytes."""

    block_size: int
    blocks: tuple[bytes, ...]
    security: tuple[int, ...]

    @property
    def data(self) -> bytes:
        return b"".join(self.blocks)


@dataclass(frozen=True)
class SystemInfoRecord:
    dsfid: int
    uid: bytes
    afi: int
    block_size: int
    block_count: int
    ic_ref: int


@dataclass(frozen=True)
class WriteErrorDetail:
    """Extra DATA of a failed write: failing block (DB-ADR-E) and ISO error, when sent."""

    block: int | None
    iso_error: int | None


def encode_answer(com_adr: int, control: int, status: int, data: bytes = b"", *, advanced: bool = False) -> bytes:
    return encode_frame(com_adr, control, bytes((status,)) + bytes(data), advanced=advanced)


# ---- Inventory ---------------------------------------------------------------------


def decode_inventory(data: bytes) -> list[InventoryRecord]:
    if not data:
        return []
    count = data[0]
    body = data[1:]
    if len(body) != count * INVENTORY_RECORD_LENGTH:
        raise FeigCodecError(
            f"Inventory announces {count} data sets but carries {len(body)} bytes: {data.hex(' ')}"
        )
    records = []
    for offset in range(0, len(body), INVENTORY_RECORD_LENGTH):
        chunk = body[offset : offset + INVENTORY_RECORD_LENGTH]
        records.append(InventoryRecord(tr_type=chunk[0], dsfid=chunk[1], uid=bytes(chunk[2:])))
    return records


def encode_inventory(records: list[InventoryRecord]) -> bytes:
    out = bytearray((len(records),))
    for record in records:
        out += bytes((record.tr_type, record.dsfid)) + record.uid
    return bytes(out)


# ---- Read Multiple Blocks ------------------------------------------------------------


def decode_read_blocks(data: bytes) -> BlockData:
    if len(data) < 2:
        raise FeigCodecError(f"Read Multiple Blocks answer too short: {data.hex(' ')}")
    count, size = data[0], data[1]
    body = data[2:]
    if size == 0 or len(body) != count * (size + 1):
        raise FeigCodecError(f"Read Multiple Blocks announces {count}x{size} bytes, carries {len(body)}")
    blocks, security = [], []
    for offset in range(0, len(body), size + 1):
        security.append(body[offset])
        blocks.append(bytes(body[offset + 1 : offset + 1 + size]))
    return BlockData(block_size=size, blocks=tuple(blocks), security=tuple(security))


def encode_read_blocks(block_size: int, blocks: list[bytes], security: list[int] | None = None) -> bytes:
    security = security or [0] * len(blocks)
    out = bytearray((len(blocks), block_size))
    for sec, block in zip(security, blocks, strict=True):
        if len(block) != block_size:
            raise FeigCodecError(f"block of {len(block)} bytes, expected {block_size}")
        out += bytes((sec,)) + block
    return bytes(out)


# ---- Get System Information ---------------------------------------------------------
# MEM-SIZE follows ISO 15693 (values minus one), sent MSB first: byte 1 bits 4..0 =
# block size - 1, byte 2 = block count - 1. (unconfirmed against a FEIG manual)


def decode_system_info(data: bytes) -> SystemInfoRecord:
    if len(data) != SYSTEM_INFO_LENGTH:
        raise FeigCodecError(f"Get System Information answer has {len(data)} bytes, expected {SYSTEM_INFO_LENGTH}")
    return SystemInfoRecord(
        dsfid=data[0],
        uid=bytes(data[1:9]),
        afi=data[9],
        block_size=(data[10] & 0x1F) + 1,
        block_count=data[11] + 1,
        ic_ref=data[12],
    )


def encode_system_info(info: SystemInfoRecord) -> bytes:
    if not 1 <= info.block_size <= 32 or not 1 <= info.block_count <= 256:
        raise FeigCodecError(f"memory {info.block_count}x{info.block_size} cannot be expressed in MEM-SIZE")
    return (
        bytes((info.dsfid,))
        + info.uid
        + bytes((info.afi, info.block_size - 1, info.block_count - 1, info.ic_ref))
    )


# ---- errors --------------------------------------------------------------------------


def decode_write_error(status: int, data: bytes) -> WriteErrorDetail:
    """DB-ADR-E after STATUS 0x03; ISO-ERROR [, DB-ADR-E] after STATUS 0x95."""
    if status == 0x03:
        return WriteErrorDetail(block=data[0] if data else None, iso_error=None)
    if status == 0x95:
        return WriteErrorDetail(
            block=data[1] if len(data) > 1 else None,
            iso_error=data[0] if data else None,
        )
    return WriteErrorDetail(block=None, iso_error=None)


def decode_iso_error(data: bytes) -> int | None:
    return data[0] if data else None
