"""H.264 bitstream facts the camera needs without a decoder: NAL units, parameter sets, frame order.

An H.264 camera's packets are kept in the ring buffer as they arrive (Annex B
access units, in decode order). Only a snapshot, the live view and nothing
else ever decode them; a clip is the same packets muxed into an MP4. What
that takes from the bitstream is small: where the NAL units are, which are
the SPS/PPS a decoder or a muxer needs, and a few SPS fields for the MP4's
``avcC`` box.

Frames with B-frames arrive in decode order, not in the order they are shown.
Each packet's arrival time is known, and its presentation timestamp gives the
order it is shown in, so the k-th frame *shown* gets the k-th arrival time
(``presentation_order``): every frame keeps a real wall-clock time, whatever
clock or rate the stream's own timestamps use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

NAL_SLICE = 1
NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
_START_CODE = b"\x00\x00\x01"
# Profiles whose SPS carries chroma format and bit depths (and whose avcC repeats them).
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
# A B-frame is never shown more than this many frames before or after it is decoded.
_MAX_REORDER = 16


class H264Error(Exception):
    """The bytes are not the H.264 the camera code expects."""


def nal_units(access_unit: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes removed)."""
    units: list[bytes] = []
    start = access_unit.find(_START_CODE)
    while start >= 0:
        begin = start + 3
        following = access_unit.find(_START_CODE, begin)
        end = len(access_unit) if following < 0 else following
        # A four-byte start code leaves its leading zero at the end of the previous unit.
        unit = access_unit[begin:end].rstrip(b"\x00") if following >= 0 else access_unit[begin:end]
        if unit:
            units.append(unit)
        start = following
    return units


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


def annex_b(units: Sequence[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


def parameter_sets(extradata: bytes) -> bytes:
    """The stream's SPS/PPS as Annex B, from FFmpeg extradata in either form (Annex B or MP4 ``avcC``)."""
    if not extradata:
        return b""
    if extradata[0] != 1:  # already Annex B (RTSP, MPEG-TS)
        return annex_b([unit for unit in nal_units(extradata) if nal_type(unit) in (NAL_SPS, NAL_PPS)])
    try:
        return annex_b(_avcc_parameter_sets(extradata))
    except (IndexError, struct.error) as exc:
        raise H264Error(f"malformed avcC extradata ({len(extradata)} bytes)") from exc


def _avcc_parameter_sets(avcc: bytes) -> list[bytes]:
    units: list[bytes] = []
    position = 5
    for count_mask in (0x1F, 0xFF):  # number of SPS (low 5 bits), then number of PPS
        count = avcc[position] & count_mask
        position += 1
        for _ in range(count):
            (length,) = struct.unpack_from(">H", avcc, position)
            units.append(avcc[position + 2:position + 2 + length])
            position += 2 + length
    return units


# --------------------------------------------------------------------------- SPS


@dataclass(frozen=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int = 1  # 4:2:0
    bit_depth_luma_minus8: int = 0
    bit_depth_chroma_minus8: int = 0

    @property
    def high_profile(self) -> bool:
        return self.profile_idc in _HIGH_PROFILES


def parse_sps(sps: bytes) -> SpsInfo:
    """The SPS fields an MP4 ``avcC`` box repeats (``sps`` is one NAL unit, header byte included)."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise H264Error("not a sequence parameter set")
    profile, constraints, level = sps[1], sps[2], sps[3]
    if profile not in _HIGH_PROFILES:
        return SpsInfo(profile, constraints, level)
    bits = _BitReader(_unescape(sps[4:]))
    try:
        bits.exp_golomb()  # seq_parameter_set_id
        chroma = bits.exp_golomb()
        if chroma == 3:
            bits.bit()  # separate_colour_plane_flag
        luma_depth, chroma_depth = bits.exp_golomb(), bits.exp_golomb()
    except IndexError as exc:
        raise H264Error("truncated sequence parameter set") from exc
    return SpsInfo(profile, constraints, level, chroma, luma_depth, chroma_depth)


def _unescape(payload: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 → 00 00)."""
    return payload.replace(b"\x00\x00\x03", b"\x00\x00")


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def bit(self) -> int:
        byte = self._data[self._position >> 3]
        value = (byte >> (7 - (self._position & 7))) & 1
        self._position += 1
        return value

    def exp_golomb(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("exp-Golomb code too long")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return (1 << zeros) - 1 + value


# --------------------------------------------------------------------------- frame order


def presentation_order(pts: Sequence[float | None]) -> list[int]:
    """Indices (in decode order) of the frames in the order they are shown.

    Decode order when the timestamps cannot be trusted (missing, repeated, or
    moving a frame further than any B-frame reordering would).
    """
    decode_order = list(range(len(pts)))
    if any(value is None for value in pts) or len(set(pts)) != len(pts):
        return decode_order
    shown = sorted(decode_order, key=lambda index: pts[index])  # type: ignore[arg-type,return-value]
    if any(abs(position - index) > _MAX_REORDER for position, index in enumerate(shown)):
        return decode_order
    return shown
