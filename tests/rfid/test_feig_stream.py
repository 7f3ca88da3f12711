"""Streaming frame parser: split input, garbage and CRC errors are resynchronised and counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rfid.feig import FrameReader, encode_frame

ANSWER = bytes.fromhex("11 00 B0 00 01 03 00 E0 04 01 00 12 34 56 78 D8 35")
NO_TAG = bytes.fromhex("06 00 B0 01 5C 63")


def test_frame_split_byte_by_byte() -> None:
    reader = FrameReader()
    frames = [frame for byte in ANSWER for frame in reader.feed(bytes((byte,)))]
    assert [f.encode() for f in frames] == [ANSWER]
    assert reader.stats.garbage_bytes == 0 and reader.pending == 0


def test_two_frames_in_one_chunk() -> None:
    reader = FrameReader()
    assert [f.encode() for f in reader.feed(ANSWER + NO_TAG)] == [ANSWER, NO_TAG]
    assert reader.stats.frames == 2


def test_leading_garbage_is_dropped_and_counted() -> None:
    reader = FrameReader()
    frames = reader.feed(b"\x00\x01\x03" + NO_TAG)
    assert [f.encode() for f in frames] == [NO_TAG]
    assert reader.stats.garbage_bytes == 3


def test_crc_error_is_counted_and_next_frame_survives() -> None:
    reader = FrameReader()
    broken = NO_TAG[:-1] + bytes((NO_TAG[-1] ^ 0x01,))
    frames = reader.feed(broken + ANSWER)
    assert [f.encode() for f in frames] == [ANSWER]
    assert reader.stats.crc_errors == 1


def test_fake_long_length_byte_does_not_stall_following_frame() -> None:
    reader = FrameReader()
    # 0xF0 announces a 240-byte frame that never comes; the valid answer must not wait behind it.
    assert [f.encode() for f in reader.feed(b"\xf0" + NO_TAG)] == [NO_TAG]
    assert [f.encode() for f in reader.feed(b"\x02\xff\xff" + ANSWER)] == [ANSWER]


def test_incomplete_frame_waits_for_the_rest() -> None:
    reader = FrameReader()
    assert reader.feed(ANSWER[:10]) == []
    assert reader.pending == 10
    assert [f.encode() for f in reader.feed(ANSWER[10:])] == [ANSWER]


def test_clear_drops_pending_bytes() -> None:
    reader = FrameReader()
    reader.feed(ANSWER[:5])
    reader.clear()
    assert reader.pending == 0 and reader.stats.garbage_bytes == 5
    assert reader.feed(ANSWER[5:]) == []


def test_advanced_frame_in_stream() -> None:
    advanced = encode_frame(0x00, 0xB0, b"\x00\x01", advanced=True)
    reader = FrameReader()
    frames = reader.feed(b"\x99" + advanced + NO_TAG)
    assert [f.encode() for f in frames] == [advanced, NO_TAG]
    assert frames[0].advanced


frame_strategy = st.builds(
    lambda adr, control, payload, advanced: encode_frame(adr, control, payload, advanced=advanced),
    st.integers(0, 255),
    st.sampled_from([0xB0, 0xB1, 0x65]),
    st.binary(min_size=1, max_size=40),
    st.booleans(),
)


def _is_subsequence(needles: list[bytes], haystack: list[bytes]) -> bool:
    remaining = iter(haystack)
    return all(any(item == needle for item in remaining) for needle in needles)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(frame_strategy, min_size=1, max_size=6),
    garbage=st.lists(st.binary(max_size=30), min_size=7, max_size=7),
    cuts=st.lists(st.integers(1, 23), max_size=40),
)
def test_garbage_between_frames_never_loses_a_valid_frame(
    frames: list[bytes], garbage: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(g + f for g, f in zip(garbage, frames, strict=False)) + garbage[-1]
    reader = FrameReader()
    decoded: list[bytes] = []
    position = 0
    for cut in cuts:
        decoded += [f.encode() for f in reader.feed(stream[position : position + cut])]
        position += cut
    decoded += [f.encode() for f in reader.feed(stream[position:])]
    assert _is_subsequence(frames, decoded)
