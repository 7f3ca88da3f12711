"""CRC16 of the FEIG ISO Host protocol (CRC-16/MCRF4XX parameters).

Reflected polynomial 0x8408, preset 0xFFFF, no final XOR. The CRC is sent LSB
first, so running it over a whole valid frame (CRC bytes included) gives 0.
"""

from __future__ import annotations

CRC_PRESET = 0xFFFF
CRC_POLYNOMIAL = 0x8408


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC_POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _build_table()


def crc16(data: bytes | bytearray | memoryview, preset: int = CRC_PRESET) -> int:
    """CRC16 over ``data``; pass a previous result as ``preset`` to continue."""
    crc = preset
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def crc16_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The two CRC bytes as they appear on the wire (LSB first)."""
    return crc16(data).to_bytes(2, "little")
