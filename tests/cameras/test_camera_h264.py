"""H.264 without decoding: bitstream facts, and a real H.264 file read as the camera's own packets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cameras.h264 import (
    NAL_IDR, NAL_PPS, NAL_SPS, H264Error, annex_b, nal_type, nal_units, parameter_sets, parse_sps,
    presentation_order,
)
from cameras.source import OpenCvSource
from tests.cameras.h264_clips import BFRAMES, CLIPS, GOP, IPCAM, packet_ring

# The parameter sets of h264_bframes_320x180.mp4 (High profile, level 1.2).
SPS = bytes.fromhex("6764000cacd941419f9e1000000300100000030140f1429960")
PPS = bytes.fromhex("68ef8472c0")


def test_nal_units_split_three_and_four_byte_start_codes():
    data = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01\x65\x88\x84"
    assert nal_units(data) == [SPS, PPS, b"\x65\x88\x84"]
    assert [nal_type(unit) for unit in nal_units(data)] == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert nal_units(annex_b([SPS, PPS])) == [SPS, PPS]


def test_parameter_sets_from_avcc_and_from_annex_b_are_the_same():
    avcc = (bytes([1, SPS[1], SPS[2], SPS[3], 0xFF, 0xE1]) + struct.pack(">H", len(SPS)) + SPS
            + bytes([1]) + struct.pack(">H", len(PPS)) + PPS)
    assert parameter_sets(avcc) == annex_b([SPS, PPS])
    assert parameter_sets(annex_b([SPS, PPS, b"\x06\x05"])) == annex_b([SPS, PPS])  # SEI dropped
    assert parameter_sets(b"") == b""
    with pytest.raises(H264Error):
        parameter_sets(avcc[:9])


def test_parse_sps_reads_the_high_profile_fields():
    info = parse_sps(SPS)
    assert (info.profile_idc, info.level_idc, info.high_profile) == (100, 12, True)
    assert (info.chroma_format_idc, info.bit_depth_luma_minus8, info.bit_depth_chroma_minus8) == (1, 0, 0)
    with pytest.raises(H264Error):
        parse_sps(PPS)


def test_presentation_order_follows_timestamps_and_distrusts_nonsense():
    # I P B B as decoded; shown I B B P.
    assert presentation_order([0.0, 300.0, 100.0, 200.0]) == [0, 2, 3, 1]
    assert presentation_order([0.0, None, 100.0]) == [0, 1, 2]
    assert presentation_order([0.0, 100.0, 100.0]) == [0, 1, 2]
    far = [float(index) for index in range(40)]
    far[0], far[39] = far[39], far[0]  # a "B-frame" 39 frames away: timestamps from another clock
    assert presentation_order(far) == list(range(40))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=50))
def test_presentation_order_is_always_a_permutation(pts):
    assert sorted(presentation_order(pts)) == list(range(len(pts)))


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_an_h264_file_is_read_as_packets_with_keyframes_and_parameter_sets(name):
    source = OpenCvSource(str(CLIPS[name]), realtime=False)
    source.open()
    try:
        assert source.h264_passthrough and not source.passthrough
        frames = [source.read() for _ in range(25)]
    finally:
        source.close()
    assert all(frame is not None and frame.image is None and frame.packet is not None for frame in frames)
    packets = [frame.packet for frame in frames]
    assert [index for index, packet in enumerate(packets) if packet.keyframe] == [0, GOP, 2 * GOP]
    assert all(packet.data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")) for packet in packets)  # Annex B
    stream = packets[0].stream
    assert (stream.width, stream.height) == (320, 180)
    assert [nal_type(unit) for unit in nal_units(stream.parameter_sets)] == [NAL_SPS, NAL_PPS]
    assert NAL_IDR in {nal_type(unit) for unit in nal_units(packets[0].data)}
    assert [frame.index for frame in frames] == list(range(1, 26))


def test_b_frames_arrive_out_of_the_order_they_are_shown():
    frames = packet_ring(BFRAMES, count=GOP).snapshot()
    pts = [frame.packet.pts_ms for frame in frames]
    assert pts != sorted(pts)
    assert sorted(pts) == pytest.approx([100.0 * index for index in range(GOP)])


def test_each_opening_is_a_new_stream_session_and_decoding_can_be_chosen():
    source = OpenCvSource(str(IPCAM), realtime=False)
    sessions = []
    for _ in range(2):
        source.open()
        sessions.append(source.read().packet.stream.session)
        source.close()
    assert sessions[1] == sessions[0] + 1
    decoding = OpenCvSource(str(IPCAM), realtime=False, h264_passthrough=False)
    decoding.open()
    try:
        frame = decoding.read()
    finally:
        decoding.close()
    assert frame.packet is None and frame.image.shape == (180, 320, 3)
