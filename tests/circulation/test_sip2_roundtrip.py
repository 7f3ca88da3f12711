"""Property tests: every SIP2 message survives encode → arbitrary TCP chunking → decode."""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backend.circulation.interface import Tristate
from backend.sip2.codec import Sip2Codec
from backend.sip2.fields import Fixed, FixedKind, Var, VarKind
from backend.sip2.framing import FrameReader
from backend.sip2.messages import REGISTRY, PatronStatusFlags, Sip2Message, SummaryKind
from circ_testkit import TZ

FIXED_ALPHABET = "".join(char for char in string.printable if char not in "|\r\n\t\x0b\x0c")
VALUE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=24,
).filter(lambda value: "&#124;" not in value)
LATIN1_TEXT = st.text(alphabet=st.characters(max_codepoint=255, blacklist_characters="\r\n"), max_size=24).filter(
    lambda value: "&#124;" not in value)
DATES = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=TZ))
MESSAGES = sorted(REGISTRY.values(), key=lambda cls: cls.code)


def fixed_strategy(layout: Fixed) -> st.SearchStrategy[Any]:
    kind = layout.kind
    if kind in (FixedKind.YN, FixedKind.BIT):
        return st.booleans()
    if kind is FixedKind.TRI:
        return st.sampled_from(list(Tristate))
    if kind is FixedKind.DATE:
        return DATES
    if kind in (FixedKind.COUNT, FixedKind.DIGITS):
        return st.none() | st.integers(0, 10**layout.length - 1)
    if kind is FixedKind.STATUS:
        return st.builds(PatronStatusFlags, **{name: st.booleans() for name in PatronStatusFlags.model_fields})
    if kind is FixedKind.SUMMARY:
        return st.none() | st.sampled_from(list(SummaryKind))
    return st.text(alphabet=FIXED_ALPHABET, min_size=layout.length, max_size=layout.length)


def var_strategy(var: Var, text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    if var.kind is VarKind.REPEAT:
        return st.lists(text, max_size=3).map(tuple)
    if var.kind is VarKind.YN:
        return st.none() | st.booleans()
    if var.kind is VarKind.INT:
        return st.none() | st.integers(0, 10**6)
    return text if var.required else st.none() | text


def message_strategy(cls: type[Sip2Message], text: st.SearchStrategy[str]) -> st.SearchStrategy[Sip2Message]:
    known = {var.code for _, var in cls.var_layout} | {"AY", "AZ"}
    extra_code = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2).filter(lambda c: c not in known)
    fields: dict[str, st.SearchStrategy[Any]] = {name: fixed_strategy(layout) for name, layout in cls.fixed_layout}
    fields.update({name: var_strategy(var, text) for name, var in cls.var_layout})
    fields["extra_fields"] = st.lists(st.tuples(extra_code, text), max_size=2).map(tuple)
    return st.builds(cls, **fields)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def _ends_like_a_trailer(codec: Sip2Codec, message: Sip2Message) -> bool:
    body = codec.encode_body(message)
    return len(body) >= 5 and body[-3:-1] == "AY" and body[-1].isdigit()


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


CODECS = {(detect, terminator): Sip2Codec(timezone=TZ, error_detection=detect, terminator=terminator)
          for detect in (True, False) for terminator in ("CR", "CRLF")}


@pytest.mark.parametrize("cls", MESSAGES, ids=[cls.__name__ for cls in MESSAGES])
def test_round_trip_utf8(cls: type[Sip2Message]) -> None:
    @SETTINGS
    @given(message=message_strategy(cls, VALUE_TEXT), sequence=st.integers(0, 9),
           link=st.sampled_from(sorted(CODECS)), cuts=st.lists(st.integers(0, 10_000), max_size=4))
    def check(message: Sip2Message, sequence: int, link: tuple[bool, str], cuts: list[int]) -> None:
        error_detection = link[0]
        codec = CODECS[link]
        assume(error_detection or not _ends_like_a_trailer(codec, message))
        frame = codec.encode(message, sequence)
        reader = FrameReader()
        frames = [complete for piece in chunked(frame + frame, cuts) for complete in reader.feed(piece)]
        assert len(frames) == 2 and reader.pending == 0
        for raw in frames:
            decoded = codec.decode(raw)
            assert decoded.message == message
            expected_sequence = sequence if error_detection and cls.code not in ("96", "97") else None
            assert decoded.sequence == expected_sequence
            assert decoded.checksummed is error_detection

    check()


@pytest.mark.parametrize("cls", MESSAGES, ids=[cls.__name__ for cls in MESSAGES])
def test_round_trip_latin1(cls: type[Sip2Message]) -> None:
    codec = Sip2Codec(charset="iso-8859-1", timezone=TZ)

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=message_strategy(cls, LATIN1_TEXT), sequence=st.integers(0, 9))
    def check(message: Sip2Message, sequence: int) -> None:
        assert codec.decode(codec.encode(message, sequence)).message == message

    check()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    codec = Sip2Codec(timezone=TZ)
    try:
        codec.decode(data)
    except ValueError:
        pass  # Sip2FrameError and its subclasses are ValueErrors
