"""H.264 packets into an MP4 without re-encoding: the pictures survive bit for bit, with their real times."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from cameras.mp4 import Mp4Error, Mp4Sample, write_h264_mp4
from cameras.packets import decodable_run, decode_run, shown_order, write_run_mp4
from tests.cameras.h264_clips import BFRAMES, CLIPS, GOP, IPCAM, T0, decode_file, packet_ring, reference_pictures


def _boxes(data: bytes) -> list[bytes]:
    kinds, position = [], 0
    while position + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        kinds.append(kind)
        position += size
    return kinds


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_packets_muxed_into_mp4_decode_to_the_very_same_pictures(name, tmp_path):
    frames = packet_ring(CLIPS[name], count=2 * GOP).snapshot()  # whole groups: no B-frame left without its successor
    path = tmp_path / "clip.mp4"
    shown = write_run_mp4(frames, path)
    assert _boxes(path.read_bytes()) == [b"ftyp", b"moov", b"mdat"]  # index first: playable while downloading
    decoded = decode_file(path)
    reference = reference_pictures(CLIPS[name], 2 * GOP)
    assert len(decoded) == 2 * GOP
    assert all(np.array_equal(image, expected) for (_, image), expected in zip(decoded, reference))
    # Each picture carries its own time: frames arrived every 0.1 s, so they are shown every 0.1 s.
    assert [round(seconds, 3) for seconds, _ in decoded] == [round(0.1 * index, 3) for index in range(2 * GOP)]
    assert [item.shown_at for item in shown] == sorted(item.shown_at for item in shown)


def test_uneven_frame_times_are_kept_not_replaced_by_a_nominal_rate(tmp_path):
    frames = packet_ring(IPCAM, count=GOP).snapshot()
    times = [0.0, 0.1, 0.2, 0.45, 0.5, 0.6, 0.95, 1.0, 1.1, 1.2]  # a camera that hiccups
    samples = [Mp4Sample(frame.data, frame.keyframe, at) for frame, at in zip(frames, times)]
    path = tmp_path / "uneven.mp4"
    write_h264_mp4(path, samples, (320, 180), frames[0].packet.stream.parameter_sets)
    assert [round(seconds, 3) for seconds, _ in decode_file(path)] == times


def test_b_frames_are_shown_in_their_order_with_the_arrival_times(tmp_path):
    frames = packet_ring(BFRAMES, count=GOP).snapshot()
    shown = shown_order(frames)
    assert [item.frame.sequence for item in shown] != [frame.sequence for frame in frames]  # reordered
    assert [item.shown_at for item in shown] == [frame.captured_at for frame in frames]


def test_a_clip_must_start_at_a_keyframe(tmp_path):
    frames = packet_ring(IPCAM, count=15).snapshot()
    with pytest.raises(Mp4Error):
        write_h264_mp4(tmp_path / "x.mp4", [Mp4Sample(frame.data, frame.keyframe, 0.1 * index)
                                            for index, frame in enumerate(frames[1:])], (320, 180))
    with pytest.raises(Mp4Error):
        write_h264_mp4(tmp_path / "x.mp4", [], (320, 180))


def test_decodable_run_keeps_one_opening_from_its_first_keyframe():
    ring = packet_ring(IPCAM, count=15)
    frames = ring.snapshot()
    run = decodable_run(frames[3:], near=T0)
    assert run[0] is frames[GOP]  # the first keyframe after the three packets left out
    assert decodable_run([], near=T0) == []


def test_decode_run_pairs_every_picture_with_its_packet():
    frames = packet_ring(BFRAMES, count=2 * GOP).snapshot()
    pictures = decode_run(frames)
    reference = reference_pictures(BFRAMES, 2 * GOP)
    assert len(pictures) == 2 * GOP
    assert [shown.shown_at for shown, _ in pictures] == [frame.captured_at for frame in frames]
    assert all(np.array_equal(image, expected) for (_, image), expected in zip(pictures, reference))
