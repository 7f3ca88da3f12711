"""MP4 written straight from a camera's H.264 packets: no decoding, no re-encoding.

The ring buffer of an H.264 camera holds the camera's own access units, so a
clip is those packets in an ISO base media file (ISO/IEC 14496-12/-15): one
video track, the samples in one chunk, the index (``moov``) before the data so
a browser can start playing before the download ends. Every sample keeps its
real presentation time (the camera's frame times, not a nominal rate), and
B-frames get their composition offsets (``ctts``) plus an edit list so the
first frame shown starts the clip.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cameras.h264 import NAL_PPS, NAL_SPS, H264Error, nal_type, nal_units, parse_sps

TIMESCALE = 90_000  # media ticks per second (the usual one for video)
_MOVIE_TIMESCALE = 1000
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4


class Mp4Error(Exception):
    """The packets cannot be put into an MP4."""


@dataclass(frozen=True)
class Mp4Sample:
    """One access unit (Annex B, as the camera sent it) and when it is shown, in seconds from any origin."""

    data: bytes
    keyframe: bool
    shown_at_s: float


def write_h264_mp4(path: Path, samples: Sequence[Mp4Sample], size: tuple[int, int],
                   parameter_sets: bytes = b"") -> None:
    """Write ``samples`` (in decode order, the first a keyframe) as an H.264 MP4 of ``size`` (width, height).

    SPS and PPS come from ``parameter_sets`` (Annex B) and the samples themselves; they stay in
    the samples too, as ``ffmpeg -c copy`` leaves them.
    """
    if not samples:
        raise Mp4Error("an MP4 needs at least one sample")
    if not samples[0].keyframe:
        raise Mp4Error("the first sample must be a keyframe")
    sps, pps = _parameter_sets(parameter_sets, samples)
    payloads = [_length_prefixed(sample.data) for sample in samples]
    timing = _Timing.of([sample.shown_at_s for sample in samples])
    track = _TrackFacts(size, sps, pps, timing, [len(payload) for payload in payloads],
                        [index + 1 for index, sample in enumerate(samples) if sample.keyframe])
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    # The chunk offset has a fixed width, so the index's size does not depend on its value.
    moov_size = len(_moov(track, chunk_offset=0))
    moov = _moov(track, chunk_offset=len(ftyp) + moov_size + 8)
    media_size = sum(len(payload) for payload in payloads)
    if 8 + media_size > 0xFFFFFFFF:
        raise Mp4Error("clip too large for a 32-bit MP4")
    try:
        with path.open("wb") as out:
            out.write(ftyp)
            out.write(moov)
            out.write(struct.pack(">I4s", 8 + media_size, b"mdat"))
            for payload in payloads:
                out.write(payload)
    except OSError as exc:
        raise Mp4Error(f"cannot write {path}: {exc.strerror or exc}") from exc


def _parameter_sets(parameter_sets: bytes, samples: Sequence[Mp4Sample]) -> tuple[list[bytes], list[bytes]]:
    units = nal_units(parameter_sets) + nal_units(samples[0].data)
    sps = list(dict.fromkeys(unit for unit in units if nal_type(unit) == NAL_SPS))
    pps = list(dict.fromkeys(unit for unit in units if nal_type(unit) == NAL_PPS))
    if not sps or not pps:
        raise Mp4Error("no SPS/PPS in the stream's parameters or its first keyframe")
    return sps, pps


def _length_prefixed(access_unit: bytes) -> bytes:
    units = nal_units(access_unit)
    if not units:
        raise Mp4Error("a packet without any H.264 NAL unit")
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class _Timing:
    """Decode deltas, composition offsets and the edit-list start, in ``TIMESCALE`` ticks."""

    deltas: list[int]
    offsets: list[int]
    start: int
    duration: int

    @classmethod
    def of(cls, shown_at_s: Sequence[float]) -> "_Timing":
        origin = min(shown_at_s)
        shown = [round((value - origin) * TIMESCALE) for value in shown_at_s]
        order = sorted(range(len(shown)), key=lambda index: (shown[index], index))
        # Presentation times, strictly increasing in presentation order (equal times get a tick apart).
        ascending: list[int] = []
        for index in order:
            ascending.append(max(shown[index], ascending[-1] + 1) if ascending else shown[index])
        presented = [0] * len(shown)
        for rank, index in enumerate(order):
            presented[index] = ascending[rank]
        # Decode times are the presentation times in ascending order, moved back just enough that
        # no frame is shown before it is decoded.
        shift = max(0, max(ascending[index] - presented[index] for index in range(len(shown))))
        decode = [value - shift for value in ascending]
        deltas = [later - earlier for earlier, later in zip(decode, decode[1:])]
        deltas.append(_typical(deltas))
        offsets = [presented[index] - decode[index] for index in range(len(shown))]
        return cls(deltas, offsets, shift, ascending[-1] - ascending[0] + deltas[-1])


def _typical(deltas: list[int]) -> int:
    """The last frame lasts as long as a typical frame (a tenth of a second if there is only one)."""
    if not deltas:
        return TIMESCALE // 10
    return sorted(deltas)[len(deltas) // 2]


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value:
            runs[-1] = (runs[-1][0] + 1, value)
        else:
            runs.append((1, value))
    return runs


# --------------------------------------------------------------------------- boxes


@dataclass(frozen=True)
class _TrackFacts:
    size: tuple[int, int]
    sps: list[bytes]
    pps: list[bytes]
    timing: _Timing
    sample_sizes: list[int]
    keyframes: list[int]  # 1-based sample numbers


def _box(kind: bytes, *payloads: bytes) -> bytes:
    body = b"".join(payloads)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payloads: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payloads)


def _movie_time(ticks: int) -> int:
    return round(ticks * _MOVIE_TIMESCALE / TIMESCALE)


def _moov(track: _TrackFacts, chunk_offset: int) -> bytes:
    duration = _movie_time(track.timing.duration)
    mvhd = _full_box(b"mvhd", 0, 0, struct.pack(">IIIIIH10x", 0, 0, _MOVIE_TIMESCALE, duration, 0x00010000, 0x0100),
                     _MATRIX, bytes(24), struct.pack(">I", 2))
    return _box(b"moov", mvhd, _trak(track, chunk_offset, duration))


def _trak(track: _TrackFacts, chunk_offset: int, movie_duration: int) -> bytes:
    width, height = track.size
    tkhd = _full_box(b"tkhd", 0, 3, struct.pack(">IIIII8xhhH2x", 0, 0, 1, 0, movie_duration, 0, 0, 0),
                     _MATRIX, struct.pack(">II", width << 16, height << 16))
    parts = [tkhd]
    if track.timing.start:
        elst = _full_box(b"elst", 0, 0, struct.pack(">IIiHH", 1, movie_duration, track.timing.start, 1, 0))
        parts.append(_box(b"edts", elst))
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, track.timing.duration, _LANGUAGE_UND, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    minf = _box(b"minf", vmhd, dinf, _stbl(track, chunk_offset))
    parts.append(_box(b"mdia", mdhd, hdlr, minf))
    return _box(b"trak", *parts)


def _stbl(track: _TrackFacts, chunk_offset: int) -> bytes:
    count = len(track.sample_sizes)
    boxes = [_full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(track))]
    stts_runs = _runs(track.timing.deltas)
    boxes.append(_full_box(b"stts", 0, 0, struct.pack(">I", len(stts_runs)),
                           *(struct.pack(">II", n, delta) for n, delta in stts_runs)))
    if any(track.timing.offsets):
        ctts_runs = _runs(track.timing.offsets)
        boxes.append(_full_box(b"ctts", 0, 0, struct.pack(">I", len(ctts_runs)),
                               *(struct.pack(">II", n, offset) for n, offset in ctts_runs)))
    if len(track.keyframes) < count:  # without stss every sample is a sync sample
        boxes.append(_full_box(b"stss", 0, 0, struct.pack(f">I{len(track.keyframes)}I", len(track.keyframes),
                                                          *track.keyframes)))
    boxes.append(_full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)))
    boxes.append(_full_box(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *track.sample_sizes)))
    boxes.append(_full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)))
    return _box(b"stbl", *boxes)


def _avc1(track: _TrackFacts) -> bytes:
    width, height = track.size
    entry = struct.pack(">6xHHH12xHHIIIH32sHh", 1, 0, 0, width, height, 0x00480000, 0x00480000, 0, 1,
                        b"", 0x0018, -1)
    return _box(b"avc1", entry, _avcc(track.sps, track.pps))


def _avcc(sps: list[bytes], pps: list[bytes]) -> bytes:
    try:
        info = parse_sps(sps[0])
    except H264Error as exc:
        raise Mp4Error(f"unusable SPS: {exc}") from exc
    parts = [struct.pack(">BBBBBB", 1, info.profile_idc, info.constraint_flags, info.level_idc, 0xFF,
                         0xE0 | len(sps))]
    parts += [struct.pack(">H", len(unit)) + unit for unit in sps]
    parts.append(struct.pack(">B", len(pps)))
    parts += [struct.pack(">H", len(unit)) + unit for unit in pps]
    if info.high_profile:
        parts.append(struct.pack(">BBBB", 0xFC | info.chroma_format_idc, 0xF8 | info.bit_depth_luma_minus8,
                                 0xF8 | info.bit_depth_chroma_minus8, 0))
    return _box(b"avcC", *parts)
