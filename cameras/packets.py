"""Runs of H.264 packets from the ring buffer: which ones belong together, when each is shown, decoding.

Nothing here runs per frame: it runs when an alarm asks for a snapshot or a
clip, or when the live view takes a keyframe. Decoding goes through a short
temporary MP4 (``cameras.mp4``) read back by OpenCV's FFmpeg backend, so each
decoded picture comes back with its own timestamp and is matched to its packet
by that, not by counting.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cameras.h264 import presentation_order
from cameras.mp4 import Mp4Error, Mp4Sample, write_h264_mp4
from cameras.ringbuffer import BufferedFrame

log = logging.getLogger(__name__)

# Decoded timestamps come back rounded (milliseconds); frames are tens of milliseconds apart.
_MATCH_TOLERANCE_S = 0.005


class PacketError(Exception):
    """A run of packets cannot be muxed or decoded."""


@dataclass(frozen=True)
class Shown:
    """A packet and the wall-clock time its picture stands for."""

    frame: BufferedFrame
    shown_at: datetime


def decodable_run(frames: Sequence[BufferedFrame], near: datetime) -> list[BufferedFrame]:
    """The packets (oldest first) of the stream opening that holds the packet nearest ``near``, from its first keyframe.

    A reconnect starts a new opening, whose SPS and timestamps may differ: one clip or decode
    never mixes two. JPEG frames among them (a camera that changed codec) are left out.
    """
    packets = [frame for frame in frames if frame.packet is not None]
    if not packets:
        return []
    nearest = min(packets, key=lambda frame: abs(frame.captured_at - near))
    assert nearest.packet is not None
    session = nearest.packet.stream.session
    same = [frame for frame in packets if frame.packet is not None and frame.packet.stream.session == session]
    first_key = next((index for index, frame in enumerate(same) if frame.keyframe), len(same))
    return same[first_key:]


def shown_order(run: Sequence[BufferedFrame]) -> list[Shown]:
    """The packets of one opening in the order their pictures are shown, each with its wall-clock time.

    The k-th picture shown gets the k-th arrival time: B-frames arrive in decode order, but
    the camera sent pictures at an even pace in the order they are shown.
    """
    order = presentation_order([frame.packet.pts_ms if frame.packet else None for frame in run])
    return [Shown(run[index], run[rank].captured_at) for rank, index in enumerate(order)]


def write_run_mp4(run: Sequence[BufferedFrame], path: Path) -> list[Shown]:
    """Mux one opening's packets (starting at a keyframe) into ``path``; returns them in the order shown."""
    if not run or run[0].packet is None:
        raise PacketError("no H.264 packets to mux")
    stream = run[0].packet.stream
    shown = shown_order(run)
    shown_at = {item.frame.sequence: item.shown_at for item in shown}
    origin = shown[0].shown_at
    samples = [Mp4Sample(frame.data, frame.keyframe, (shown_at[frame.sequence] - origin).total_seconds())
               for frame in run]
    try:
        write_h264_mp4(path, samples, (stream.width, stream.height), stream.parameter_sets)
    except Mp4Error as exc:
        raise PacketError(str(exc)) from exc
    return shown


def decode_run(run: Sequence[BufferedFrame]) -> list[tuple[Shown, np.ndarray]]:
    """Decode one opening's packets (starting at a keyframe); pictures in the order shown, each with its packet.

    A picture the decoder could not produce is simply missing from the result.
    """
    with tempfile.TemporaryDirectory(prefix="openshelf-h264-") as folder:
        path = Path(folder) / "run.mp4"
        shown = write_run_mp4(run, path)
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        try:
            if not capture.isOpened():
                raise PacketError(f"OpenCV cannot open the {len(run)} packets it was given")
            pictures = _read_all(capture)
        finally:
            capture.release()
    return _match(shown, pictures)


def _read_all(capture: cv2.VideoCapture) -> list[tuple[float, np.ndarray]]:
    pictures: list[tuple[float, np.ndarray]] = []
    while True:
        ok, image = capture.read()
        if not ok or image is None:
            return pictures
        pictures.append((capture.get(cv2.CAP_PROP_POS_MSEC) / 1000, image))


def _match(shown: list[Shown], pictures: list[tuple[float, np.ndarray]]) -> list[tuple[Shown, np.ndarray]]:
    """Pair each decoded picture with the packet whose presentation time it carries."""
    origin = shown[0].shown_at
    offsets = [(item.shown_at - origin).total_seconds() for item in shown]
    matched: list[tuple[Shown, np.ndarray]] = []
    candidate = 0
    for offset_s, image in pictures:  # both lists are in the order shown: match walking forward
        while candidate + 1 < len(offsets) and abs(offsets[candidate + 1] - offset_s) <= abs(
                offsets[candidate] - offset_s):
            candidate += 1
        if candidate < len(offsets) and abs(offsets[candidate] - offset_s) <= _MATCH_TOLERANCE_S:
            matched.append((shown[candidate], image))
            candidate += 1
    if len(matched) < len(shown):
        log.warning("decoded %d of %d H.264 pictures", len(matched), len(shown))
    return matched
