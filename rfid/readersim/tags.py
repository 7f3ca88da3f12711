"""Virtual ISO 15693 tags for the reader simulator."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

UID_LENGTH = 8
NXP_MANUFACTURER = 0x04
ICODE_SLI_USER_BLOCKS = 28


def nxp_uid(serial: int) -> bytes:
    """A plausible NXP ICODE SLI UID (MSB first): E0 04 01 + 5-byte serial."""
    return bytes((0xE0, NXP_MANUFACTURER, 0x01)) + serial.to_bytes(5, "big")


@dataclass
class VirtualTag:
    """State of one tag. ``uid`` is MSB first; ``memory`` is in tag-memory order."""

    uid: bytes
    afi: int = 0x00
    dsfid: int = 0x00
    eas: bool = False
    afi_locked: bool = False
    eas_locked: bool = False
    block_size: int = 4
    block_count: int = ICODE_SLI_USER_BLOCKS
    memory: bytearray = field(default_factory=bytearray)  # zero-padded to block_size * block_count
    ic_ref: int = 0x01  # (unconfirmed for ICODE SLI)
    tr_type: int = 0x03  # what an MR101 reports for an NXP ICODE SLI

    def __post_init__(self) -> None:
        self.uid = bytes(self.uid)
        if len(self.uid) != UID_LENGTH:
            raise ValueError(f"UID must be {UID_LENGTH} bytes, got {self.uid.hex()}")
        for name in ("afi", "dsfid", "ic_ref", "tr_type"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} must be 0..255, got {getattr(self, name)}")
        if not 1 <= self.block_size <= 32 or not 1 <= self.block_count <= 256:
            raise ValueError(f"memory {self.block_count}x{self.block_size} is not an ISO 15693 layout")
        size = self.block_size * self.block_count
        if len(self.memory) > size:
            raise ValueError(f"memory of {len(self.memory)} bytes exceeds {size}")
        self.memory = bytearray(self.memory) + bytearray(size - len(self.memory))

    @classmethod
    def from_hex(cls, uid_hex: str, **fields: object) -> VirtualTag:
        return cls(uid=bytes.fromhex(uid_hex), **fields)  # type: ignore[arg-type]

    @classmethod
    def holding(cls, uid: bytes, memory: bytes, **fields: object) -> VirtualTag:
        """A tag big enough for ``memory``: at least an ICODE SLI's 28 blocks, more if needed."""
        block_size = int(fields.pop("block_size", 4))  # type: ignore[call-overload]
        blocks_needed = -(-len(memory) // block_size)
        block_count = max(ICODE_SLI_USER_BLOCKS, blocks_needed)
        return cls(uid=uid, block_size=block_size, block_count=block_count,  # type: ignore[arg-type]
                   memory=bytearray(memory), **fields)

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    @property
    def is_nxp(self) -> bool:
        return self.uid[1] == NXP_MANUFACTURER

    def block(self, index: int) -> bytes:
        start = index * self.block_size
        return bytes(self.memory[start : start + self.block_size])

    def write_block(self, index: int, data: bytes) -> None:
        start = index * self.block_size
        self.memory[start : start + self.block_size] = data

    def copy(self) -> VirtualTag:
        return copy.deepcopy(self)
