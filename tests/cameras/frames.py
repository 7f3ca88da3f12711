"""Frames for camera tests: deterministic images with chosen capture times."""

from __future__ import annotations

from datetime import datetime, timedelta

import cv2
import numpy as np

from cameras.ringbuffer import BufferedFrame, FrameRing


def checkerboard(width: int = 160, height: int = 120, shade: int = 0) -> np.ndarray:
    """A checkerboard (plenty of edges, so it is 'sharp') with a shade offset to tell frames apart."""
    tile = max(4, width // 16)
    ys, xs = np.mgrid[0:height, 0:width]
    board = (((xs // tile) + (ys // tile)) % 2 * 160 + 40).astype(np.uint8)
    image = cv2.merge([board, board, board])
    return cv2.add(image, np.full_like(image, shade % 50))


def fill_ring(ring: FrameRing, start: datetime, count: int, step_s: float, *, image: np.ndarray | None = None,
              monotonic0: float = 1000.0) -> list[BufferedFrame]:
    """Push ``count`` frames captured every ``step_s`` from ``start``."""
    stored = []
    for index in range(count):
        picture = image if image is not None else checkerboard(shade=index)
        ok, jpeg = cv2.imencode(".jpg", picture)
        assert ok
        stored.append(ring.push_jpeg(jpeg.tobytes(), start + timedelta(seconds=index * step_s),
                                     monotonic0 + index * step_s))
    return stored
