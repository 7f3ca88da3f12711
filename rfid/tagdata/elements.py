"""ISO 15962 element framing as used by ISO 28560-2 (no directory, DSFID 0x06).

Element = precursor [+ relative-OID byte] [+ padding-length byte] + length byte
+ compacted data [+ padding zeros].

Precursor: bit 7 offset flag (a padding-length byte follows), bits 6-4 compaction
scheme, bits 3-0 OID 1-14, or 15 for "relative OID byte follows" (OID = 15 + byte).
The padding-length value is the number of 0x00 bytes after the data.  A 0x00
byte where a precursor is expected ends the data.

For OID >= 15 with the offset flag the byte order is not settled (dp2 itself is
inconsistent); this module reads the relative OID first, as dp2's parser and
writer do, and the encoder never pads such elements, so it never has to choose.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import BLOCK_SIZE
from .errors import EncodeError
from .model import CompactionScheme
from .oids import FIRST_EXTENDED_OID, MAX_OID, PRIMARY_ITEM_ID

_OFFSET_FLAG = 0x80
_EXTENDED_OID_NIBBLE = 0x0F
MAX_DATA_LENGTH = 0xFF


@dataclass(frozen=True, slots=True)
class RawElement:
    oid: int
    scheme: CompactionScheme
    data: bytes
    padding: int = 0


def parse_elements(memory: bytes) -> tuple[list[RawElement], str | None]:
    """The elements up to the terminator, and the reason parsing stopped early (or ``None``).

    Returns what was read before a fault so that a diagnosis can still show it.
    """
    elements: list[RawElement] = []
    seen: set[int] = set()
    pos, size = 0, len(memory)
    while pos < size and memory[pos] != 0:
        start = pos
        precursor = memory[pos]
        pos += 1
        oid = precursor & 0x0F
        if oid == 0:
            return elements, f"precursor 0x{precursor:02X} at offset {start} has OID 0"
        header = 1 + (oid == _EXTENDED_OID_NIBBLE) + bool(precursor & _OFFSET_FLAG)
        if pos + header > size:
            return elements, f"element at offset {start} is cut off by the end of memory"
        if oid == _EXTENDED_OID_NIBBLE:
            oid = FIRST_EXTENDED_OID + memory[pos]
            pos += 1
        padding = 0
        if precursor & _OFFSET_FLAG:
            padding = memory[pos]
            pos += 1
        length = memory[pos]
        pos += 1
        end = pos + length
        if end + padding > size:
            return elements, (
                f"element OID {oid} at offset {start}: {length} data + {padding} padding bytes "
                f"run past the end of memory ({size} bytes)"
            )
        if memory[end : end + padding].strip(b"\x00"):
            return elements, f"element OID {oid} at offset {start}: padding bytes are not 0x00"
        if not elements and oid != PRIMARY_ITEM_ID:
            return elements, f"first element is OID {oid}; the primary item ID (OID 1) must come first"
        if oid in seen:
            return elements, f"element OID {oid} appears twice (second at offset {start})"
        seen.add(oid)
        scheme = CompactionScheme((precursor >> 4) & 0x07)
        elements.append(RawElement(oid, scheme, memory[pos:end], padding))
        pos = end + padding
    return elements, None


def build_element(oid: int, scheme: CompactionScheme, data: bytes, *, align_at: int | None = None) -> bytes:
    """One framed element.

    ``align_at``: the element's offset in memory; if given, the element is padded
    to end on a block boundary (so the blocks holding it can be locked).
    """
    if not 1 <= oid <= MAX_OID:
        raise EncodeError(f"OID must be 1-{MAX_OID}, got {oid}")
    if len(data) > MAX_DATA_LENGTH:
        raise EncodeError(f"element OID {oid} has {len(data)} bytes of data; at most {MAX_DATA_LENGTH} fit")
    precursor = int(scheme) << 4
    if oid < FIRST_EXTENDED_OID:
        precursor |= oid
        extended = b""
    else:
        precursor |= _EXTENDED_OID_NIBBLE
        extended = bytes([oid - FIRST_EXTENDED_OID])
    body = extended + bytes([len(data)]) + data
    unpadded_end = (align_at or 0) + 1 + len(body)
    if align_at is None or unpadded_end % BLOCK_SIZE == 0:
        return bytes([precursor]) + body
    if extended:
        raise EncodeError(f"element OID {oid}: padding of extended-OID elements is not supported")
    padding = -(unpadded_end + 1) % BLOCK_SIZE
    return bytes([precursor | _OFFSET_FLAG, padding]) + body + bytes(padding)
