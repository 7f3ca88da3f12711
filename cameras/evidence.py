"""Evidence from the ring buffer: the best snapshot near an alarm, and a short clip around it.

The snapshot is the frame nearest the alarm time among the frames of a small
window that are not noticeably blurrier than the sharpest one (variance of
the Laplacian), so motion blur loses to a crisp frame a few milliseconds
further away. Clips keep every frame's capture time in a JSON sidecar because
a video container only knows a nominal frame rate. An ``.avi`` clip holds the
ring's JPEGs as they are (see ``cameras.avi``); ``.mp4`` re-encodes them.

An H.264 camera's ring holds its packets: the snapshot candidates are decoded
from the keyframe before them (once per alarm) and the winner JPEG-encoded,
and the clip is an ``.mp4`` of the camera's own packets (see ``cameras.mp4``),
from the keyframe at or before the start of the pre-roll.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from cameras.avi import AviError, jpeg_size, write_mjpeg_avi
from cameras.packets import PacketError, Shown, decodable_run, decode_run, write_run_mp4
from cameras.ringbuffer import DEFAULT_JPEG_QUALITY, BufferedFrame, RingBufferError, encode_jpeg

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 0.5
DEFAULT_SHARPNESS_TOLERANCE = 0.8
CLIP_FORMATS: dict[str, tuple[str, str]] = {
    ".avi": ("MJPG", "video/x-msvideo"),
    ".mp4": ("mp4v", "video/mp4"),
}
_REORDER_SLACK = timedelta(seconds=0.3)
_MIN_CLIP_FPS = 0.5
_MAX_CLIP_FPS = 60.0


class EvidenceError(Exception):
    """A snapshot or clip could not be produced."""


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class Snapshot:
    """The chosen picture as JPEG, and when it was captured."""

    jpeg: bytes
    captured_at: datetime
    sequence: int


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: higher means more edges, i.e. a sharper image."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _jpeg_sharpness(frame: BufferedFrame) -> float:
    # Half resolution grayscale decodes several times faster and ranks blur the same way.
    gray = cv2.imdecode(np.frombuffer(frame.jpeg, dtype=np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_2)
    if gray is None:
        raise EvidenceError(f"frame {frame.sequence} is not a decodable JPEG")
    return sharpness(gray)


def pick_snapshot(
    frames: Sequence[BufferedFrame],
    alarm_at: datetime,
    window_s: float = DEFAULT_WINDOW_S,
    sharpness_tolerance: float = DEFAULT_SHARPNESS_TOLERANCE,
) -> BufferedFrame | None:
    """The frame nearest ``alarm_at`` within ``±window_s`` that is nearly as sharp as the sharpest; None if none."""
    window = timedelta(seconds=window_s)
    candidates = [frame for frame in frames if abs(frame.captured_at - alarm_at) <= window]
    if not candidates:
        return None
    scored: list[tuple[BufferedFrame, float]] = []
    for frame in candidates:
        try:
            scored.append((frame, _jpeg_sharpness(frame)))
        except EvidenceError as exc:
            log.warning("skipping snapshot candidate: %s", exc)
    if not scored:
        return None
    best = max(score for _, score in scored)
    sharp_enough = [frame for frame, score in scored if score >= best * sharpness_tolerance]
    return min(sharp_enough, key=lambda frame: abs(frame.captured_at - alarm_at))


def choose_snapshot(
    frames: Sequence[BufferedFrame],
    alarm_at: datetime,
    window_s: float = DEFAULT_WINDOW_S,
    sharpness_tolerance: float = DEFAULT_SHARPNESS_TOLERANCE,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> Snapshot | None:
    """Like ``pick_snapshot``, for JPEG frames and H.264 packets alike (packets from their keyframe on)."""
    if not any(frame.packet is not None for frame in frames):
        chosen = pick_snapshot(frames, alarm_at, window_s, sharpness_tolerance)
        return None if chosen is None else Snapshot(chosen.jpeg, chosen.captured_at, chosen.sequence)
    return _snapshot_from_packets(frames, alarm_at, window_s, sharpness_tolerance, jpeg_quality)


def _snapshot_from_packets(frames: Sequence[BufferedFrame], alarm_at: datetime, window_s: float,
                           sharpness_tolerance: float, jpeg_quality: int) -> Snapshot | None:
    window = timedelta(seconds=window_s)
    run = decodable_run(frames, alarm_at)
    # Decode only as far as the window reaches (plus what B-frame reordering may hold back).
    run = [frame for frame in run if frame.captured_at <= alarm_at + window + _REORDER_SLACK]
    if not run:
        return None
    try:
        pictures = decode_run(run)
    except PacketError as exc:
        log.warning("no snapshot candidates: %s", exc)
        return None
    candidates = [(shown, image) for shown, image in pictures if abs(shown.shown_at - alarm_at) <= window]
    if not candidates:
        return None
    scored = [(shown, image, sharpness(_half_gray(image))) for shown, image in candidates]
    best = max(score for _, _, score in scored)
    sharp_enough = [(shown, image) for shown, image, score in scored if score >= best * sharpness_tolerance]
    shown, image = min(sharp_enough, key=lambda pair: abs(pair[0].shown_at - alarm_at))
    try:
        jpeg = encode_jpeg(image, jpeg_quality)
    except RingBufferError as exc:
        log.warning("snapshot could not be encoded: %s", exc)
        return None
    return Snapshot(jpeg, shown.shown_at, shown.frame.sequence)


def _half_gray(image: np.ndarray) -> np.ndarray:
    # The same scale the JPEG path judges at (a half-size grayscale decode), so tolerances mean the same.
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)


def write_snapshot(frame: BufferedFrame | Snapshot, path: Path) -> Path:
    """Write the frame's JPEG to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_bytes(frame.jpeg)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise EvidenceError(f"cannot write snapshot {path}: {exc.strerror or exc}") from exc
    return path


# --------------------------------------------------------------------------- clip


class ClipFrameTime(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence: int
    captured_at: datetime
    offset_s: float


class ClipSidecar(BaseModel):
    """The capture time of every frame of a clip, in the clip's frame order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    video: str
    fourcc: str
    nominal_fps: float
    alarm_at: datetime | None = None
    started_at: datetime
    ended_at: datetime
    frames: list[ClipFrameTime]


@dataclass(frozen=True)
class Clip:
    path: Path
    sidecar_path: Path
    content_type: str
    frames: int
    started_at: datetime
    ended_at: datetime


def _nominal_fps(frames: Sequence[BufferedFrame]) -> float:
    span = frames[-1].monotonic - frames[0].monotonic
    if len(frames) < 2 or span <= 0:
        return 10.0
    return min(_MAX_CLIP_FPS, max(_MIN_CLIP_FPS, (len(frames) - 1) / span))


def clip_suffix(frames: Sequence[BufferedFrame], jpeg_suffix: str = ".avi") -> str:
    """The container for these frames: ``.mp4`` for H.264 packets, else ``jpeg_suffix``."""
    return ".mp4" if any(frame.packet is not None for frame in frames) else jpeg_suffix


def write_clip(frames: Sequence[BufferedFrame], path: Path, *, alarm_at: datetime | None = None) -> Clip:
    """Write ``frames`` (oldest first) as ``path`` plus ``<path>.json`` (every frame's capture time).

    JPEG frames: ``.avi`` = the JPEGs muxed as MJPEG, ``.mp4`` = re-encoded as mp4v. H.264
    packets: ``.mp4`` holding the camera's packets of one stream opening (the one nearest
    ``alarm_at``), from its first keyframe.
    """
    if not frames:
        raise EvidenceError(f"no frames for clip {path}")
    suffix = path.suffix.lower()
    if suffix not in CLIP_FORMATS:
        raise EvidenceError(f"clip {path}: unsupported container {suffix!r}; use one of {sorted(CLIP_FORMATS)}")
    fourcc, content_type = CLIP_FORMATS[suffix]
    ordered = sorted(frames, key=lambda frame: frame.sequence)
    packets = any(frame.packet is not None for frame in ordered)
    if packets and suffix != ".mp4":
        raise EvidenceError(f"clip {path}: H.264 packets go into an .mp4, not {suffix!r}")
    fps = _nominal_fps(ordered)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial{suffix}")
    try:
        if packets:
            fourcc = "avc1"
            shown = _mux_mp4(ordered, temporary, alarm_at)
            written, times = [item.frame for item in shown], [item.shown_at for item in shown]
        elif suffix == ".avi":
            written = _mux_avi(ordered, temporary, fps)
            times = [frame.captured_at for frame in written]
        else:
            written = _encode_video(ordered, temporary, fourcc, fps)
            times = [frame.captured_at for frame in written]
        sidecar = _sidecar(written, times, path, fourcc, fps, alarm_at)
        sidecar_path = path.with_name(path.name + ".json")
        sidecar_temporary = sidecar_path.with_name(f".{sidecar_path.name}.partial")
        sidecar_temporary.write_text(sidecar.model_dump_json(indent=1), encoding="utf-8")
        os.replace(temporary, path)
        os.replace(sidecar_temporary, sidecar_path)
    except OSError as exc:
        raise EvidenceError(f"cannot write clip {path}: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return Clip(path, sidecar_path, content_type, len(written), times[0], times[-1])


def _mux_mp4(frames: Sequence[BufferedFrame], path: Path, alarm_at: datetime | None) -> list[Shown]:
    """Put one stream opening's packets into an MP4; returns them in the order they are shown."""
    run = decodable_run(frames, alarm_at or frames[-1].captured_at)
    if not run:
        raise EvidenceError(f"clip {path}: none of {len(frames)} packets follows a keyframe")
    try:
        return write_run_mp4(run, path)
    except PacketError as exc:
        raise EvidenceError(f"clip {path}: {exc}") from exc


def _mux_avi(frames: Sequence[BufferedFrame], path: Path, fps: float) -> list[BufferedFrame]:
    """Put the frames' JPEGs into an MJPEG AVI; returns exactly the frames that went in, in order."""
    size: tuple[int, int] | None = None
    written: list[BufferedFrame] = []
    jpegs: list[bytes] = []
    for frame in frames:
        try:
            frame_size = jpeg_size(frame.jpeg)
            jpeg = frame.jpeg if size is None or frame_size == size else _resized(frame, size)
        except (AviError, RingBufferError) as exc:
            log.warning("clip %s: skipping frame %d: %s", path.name, frame.sequence, exc)
            continue
        size = size or frame_size
        jpegs.append(jpeg)
        written.append(frame)
    if size is None:
        raise EvidenceError(f"clip {path}: none of {len(frames)} frames is a usable JPEG")
    try:
        write_mjpeg_avi(path, jpegs, fps, size)
    except AviError as exc:
        raise EvidenceError(f"clip {path}: {exc}") from exc
    return written


def _resized(frame: BufferedFrame, size: tuple[int, int]) -> bytes:
    # Rare (the camera changed resolution mid-clip): players expect one frame size per stream.
    return encode_jpeg(cv2.resize(frame.decode(), size, interpolation=cv2.INTER_AREA))


def _encode_video(frames: Sequence[BufferedFrame], path: Path, fourcc: str, fps: float) -> list[BufferedFrame]:
    """Write the decodable frames; returns exactly the frames that went into the video, in order."""
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    written: list[BufferedFrame] = []
    try:
        for frame in frames:
            try:
                image = frame.decode()
            except RingBufferError as exc:
                log.warning("clip %s: skipping frame: %s", path.name, exc)
                continue
            if writer is None:
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                if not writer.isOpened():
                    raise EvidenceError(f"OpenCV cannot write {fourcc} video to {path}")
            if (image.shape[1], image.shape[0]) != size:
                image = cv2.resize(image, size)
            writer.write(image)
            written.append(frame)
    finally:
        if writer is not None:
            writer.release()
    if not written:
        raise EvidenceError(f"clip {path}: none of {len(frames)} frames could be decoded")
    return written


def _sidecar(
    frames: Sequence[BufferedFrame], times: Sequence[datetime], video: Path, fourcc: str, fps: float,
    alarm_at: datetime | None,
) -> ClipSidecar:
    """``frames`` in the clip's order (the order shown), ``times`` when each was captured."""
    reference = alarm_at or times[0]
    return ClipSidecar(
        video=video.name,
        fourcc=fourcc,
        nominal_fps=round(fps, 3),
        alarm_at=alarm_at,
        started_at=times[0],
        ended_at=times[-1],
        frames=[
            ClipFrameTime(
                sequence=frame.sequence,
                captured_at=captured_at,
                offset_s=round((captured_at - reference).total_seconds(), 3),
            )
            for frame, captured_at in zip(frames, times)
        ],
    )
