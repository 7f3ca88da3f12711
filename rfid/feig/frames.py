"""Standard and advanced FEIG ISO Host frames.

Standard: LENGTH, COM-ADR, CONTROL, payload..., CRC-LSB, CRC-MSB (LENGTH <= 255).
Advanced: STX 0x02, ALENGTH (2 bytes MSB first), COM-ADR, CONTROL, payload..., CRC.
Both length fields count every byte of the frame, CRC included. "payload" is
everything between CONTROL and CRC: request DATA from the host, or STATUS + DATA
from the reader; the frame layer does not know the direction.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfid.feig.crc import crc16, crc16_bytes
from rfid.feig.errors import FeigCodecError

STX = 0x02
BROADCAST_ADDRESS = 0xFF
STANDARD_MIN_LENGTH = 5  # LENGTH, COM-ADR, CONTROL, CRC x2
STANDARD_MAX_LENGTH = 255
ADVANCED_MIN_LENGTH = 7  # STX, ALENGTH x2, COM-ADR, CONTROL, CRC x2
ADVANCED_MAX_LENGTH = 0xFFFF
STANDARD_OVERHEAD = 5
ADVANCED_OVERHEAD = 7


@dataclass(frozen=True)
class Frame:
    """One CRC-checked frame; ``payload`` excludes the header and the CRC."""

    com_adr: int
    control: int
    payload: bytes
    advanced: bool = False

    @property
    def status(self) -> int:
        """STATUS byte of a reader answer (first payload byte)."""
        if not self.payload:
            raise FeigCodecError("answer frame carries no STATUS byte")
        return self.payload[0]

    @property
    def answer_data(self) -> bytes:
        """DATA of a reader answer (payload after STATUS)."""
        return self.payload[1:]

    def encode(self) -> bytes:
        return encode_frame(self.com_adr, self.control, self.payload, advanced=self.advanced)


def encode_frame(com_adr: int, control: int, payload: bytes = b"", *, advanced: bool = False) -> bytes:
    """Frame ``payload``; switches to the advanced format when a standard frame would exceed 255 bytes."""
    _check_byte("COM-ADR", com_adr)
    _check_byte("CONTROL-BYTE", control)
    standard_length = len(payload) + STANDARD_OVERHEAD
    if not advanced and standard_length <= STANDARD_MAX_LENGTH:
        body = bytes((standard_length, com_adr, control)) + bytes(payload)
        return body + crc16_bytes(body)
    advanced_length = len(payload) + ADVANCED_OVERHEAD
    if advanced_length > ADVANCED_MAX_LENGTH:
        raise FeigCodecError(f"payload of {len(payload)} bytes does not fit an advanced frame")
    body = bytes((STX,)) + advanced_length.to_bytes(2, "big") + bytes((com_adr, control)) + bytes(payload)
    return body + crc16_bytes(body)


def declared_length(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """Frame length announced at ``start``; None if the header is not complete yet.

    Returns 0 for a header that cannot start a frame (length out of range).
    """
    if start >= len(buffer):
        return None
    first = buffer[start]
    if first != STX:
        return first if first >= STANDARD_MIN_LENGTH else 0
    if start + 3 > len(buffer):
        return None
    length = int.from_bytes(buffer[start + 1 : start + 3], "big")
    return length if length >= ADVANCED_MIN_LENGTH else 0


def decode_frame(raw: bytes | bytearray) -> Frame:
    """Decode exactly one complete frame (length and CRC are checked)."""
    length = declared_length(raw)
    if not length:
        raise FeigCodecError(f"not a frame header: {bytes(raw[:3]).hex(' ')}")
    if length != len(raw):
        raise FeigCodecError(f"frame announces {length} bytes but {len(raw)} were given")
    if crc16(raw) != 0:
        raise FeigCodecError(f"CRC error in frame {bytes(raw).hex(' ')}")
    advanced = raw[0] == STX
    header = 5 if advanced else 3
    return Frame(
        com_adr=raw[header - 2],
        control=raw[header - 1],
        payload=bytes(raw[header:-2]),
        advanced=advanced,
    )


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise FeigCodecError(f"{name} must be 0..255, got {value}")
