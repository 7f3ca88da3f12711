"""SIP2 framing: checksum vectors, tolerance, charsets and malformed frames."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from backend.circulation.interface import Tristate
from backend.sip2.codec import Sip2Codec, checksum, checksum_ok, fold_to_latin1
from backend.sip2.errors import Sip2ChecksumError, Sip2EncodeError, Sip2FrameError, Sip2UnsupportedMessage
from backend.sip2.fields import read_any_date
from backend.sip2.framing import FrameReader
from backend.sip2.messages import (
    CheckinRequest,
    CheckoutRequest,
    CheckoutResponse,
    ItemInformationRequest,
    LoginRequest,
    PatronInformationResponse,
    PatronStatusFlags,
    PatronStatusResponse,
    RequestAcsResend,
    RequestScResend,
    ScStatus,
)
from circ_testkit import TZ

# (checksummed prefix, AZ) from the reference notes.
VECTORS = [
    (b"09N20160419    12200820160419    122008APReading Room 1|AO830|AB830$28170815|AC|AY2AZ", "EB80"),
    (b"97AZ", "FEF5"),
    (b"96AZ", "FEF6"),
    (b"9900302.00AY1AZ", "FCA5"),
    (b"9300CNkiosk1|COsecret|CPMAIN|AY0AZ", "F4A8"),
    (b"11YN20240115    093000" + b" " * 18 + b"AOMAIN|AA21000123|AB30001000123456|AC|AY3AZ", "EEA4"),
    (b"1720240115    093000AOMAIN|AB30001000123456|AY4AZ", "F50B"),
]
WHEN = datetime(2024, 1, 15, 9, 30, tzinfo=TZ)


@pytest.fixture
def codec() -> Sip2Codec:
    return Sip2Codec(timezone=TZ)


@pytest.mark.parametrize("prefix, expected", VECTORS)
def test_checksum_vectors(prefix: bytes, expected: str) -> None:
    assert checksum(prefix) == expected
    assert checksum_ok(prefix, expected.encode())
    assert (sum(prefix) + int(expected, 16)) % 65536 == 0


@pytest.mark.parametrize("prefix, expected", VECTORS)
def test_reference_frames_decode(codec: Sip2Codec, prefix: bytes, expected: str) -> None:
    decoded = codec.decode(prefix + expected.encode() + b"\r")
    assert decoded.checksummed
    assert decoded.message.code == prefix[:2].decode()


def test_encoder_reproduces_the_reference_frames(codec: Sip2Codec) -> None:
    login = LoginRequest(login_user_id="kiosk1", login_password="secret", location_code="MAIN")
    assert codec.encode(login, 0) == b"9300CNkiosk1|COsecret|CPMAIN|AY0AZF4A8\r"
    assert codec.encode(ScStatus(max_print_width=30), 1) == b"9900302.00AY1AZFCA5\r"
    assert codec.encode(RequestAcsResend()) == b"97AZFEF5\r"
    assert codec.encode(RequestScResend()) == b"96AZFEF6\r"
    item = ItemInformationRequest(transaction_date=WHEN, institution_id="MAIN", item_id="30001000123456")
    assert codec.encode(item, 4) == b"1720240115    093000AOMAIN|AB30001000123456|AY4AZF50B\r"
    checkout = CheckoutRequest(sc_renewal_policy=True, transaction_date=WHEN, institution_id="MAIN",
                               patron_id="21000123", item_id="30001000123456")
    assert codec.encode(checkout, 3) == VECTORS[5][0] + b"EEA4\r"


def test_the_reference_checkin_reads_as_expected(codec: Sip2Codec) -> None:
    message = codec.decode(VECTORS[0][0] + b"EB80\r").message
    assert isinstance(message, CheckinRequest)
    assert (message.current_location, message.institution_id, message.item_id) == ("Reading Room 1", "830",
                                                                                    "830$28170815")
    assert message.transaction_date == datetime(2016, 4, 19, 12, 20, 8, tzinfo=TZ)


@pytest.mark.parametrize("frame", [b"\n9900302.00AY1AZFCA5\r", b"9900302.00AY1AZFCA5\r\n", b"9900302.00AY1AZFCA5",
                                   b"\x00\n9900302.00AY1AZFCA5\r\n"])
def test_terminators_and_stray_bytes_are_tolerated(codec: Sip2Codec, frame: bytes) -> None:
    decoded = codec.decode(frame)
    assert decoded.sequence == 1 and decoded.message == ScStatus(max_print_width=30)


def test_crlf_terminator() -> None:
    frame = Sip2Codec(terminator="CRLF", timezone=TZ).encode(ScStatus(), 7)
    assert frame.endswith(b"AZ" + frame[-6:-2] + b"\r\n") and frame.count(b"\r") == 1


def test_bad_checksum_is_detected(codec: Sip2Codec) -> None:
    with pytest.raises(Sip2ChecksumError):
        codec.decode(b"9900302.00AY1AZFCA6\r")
    with pytest.raises(Sip2ChecksumError):
        codec.decode(b"9900302.00AY1AZXYZW\r")


def test_required_checksum() -> None:
    strict = Sip2Codec(timezone=TZ, require_checksum=True)
    with pytest.raises(Sip2ChecksumError, match="required"):
        strict.decode(b"9900302.00\r")
    assert strict.decode(b"9900302.00AY1AZFCA5\r").checksummed


def test_without_error_detection(codec: Sip2Codec) -> None:
    plain = Sip2Codec(timezone=TZ, error_detection=False)
    frame = plain.encode(ScStatus(), 3)
    assert frame == b"9900802.00\r"
    decoded = codec.decode(frame)
    assert (decoded.sequence, decoded.checksummed) == (None, False)


@pytest.mark.parametrize("frame, error", [
    (b"9", Sip2FrameError),
    (b"AB123", Sip2FrameError),
    (b"88AOx|", Sip2UnsupportedMessage),
    (b"11YN2024", Sip2FrameError),  # fixed fields cut short
    (b"99X0802.00", Sip2FrameError),  # a status code that is not a digit
])
def test_malformed_frames_raise_a_clear_error(codec: Sip2Codec, frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        codec.decode(frame)


def test_unknown_fields_are_kept_and_written_back(codec: Sip2Codec) -> None:
    frame = b"24" + b" " * 14 + b"00020240115    093000AOMAIN|AA21000123|AENguyen|ZZvendor|AFhello|AFworld|"
    message = codec.decode(frame).message
    assert isinstance(message, PatronStatusResponse)
    assert message.extra_fields == (("ZZ", "vendor"),) and message.screen_message == ("hello", "world")
    assert codec.decode(codec.encode(message, 2)).message == message


def test_values_never_break_the_frame(codec: Sip2Codec) -> None:
    response = CheckoutResponse(ok=True, transaction_date=WHEN, institution_id="MAIN", patron_id="1", item_id="2",
                                title="A | B\rC", due_date="")
    frame = codec.encode(response, 5)
    assert frame.count(b"\r") == 1 and b"&#124;" in frame
    assert codec.decode(frame).message.title == "A | B C"


def test_patron_status_flags_use_y_or_space(codec: Sip2Codec) -> None:
    flags = PatronStatusFlags(charge_privileges_denied=True, excessive_outstanding_fines=True)
    assert flags.to_wire() == "Y" + " " * 9 + "Y" + " " * 3
    assert PatronStatusFlags.from_wire("YNNNNNNNNNYNNN") == flags
    response = PatronInformationResponse(patron_status=flags, transaction_date=WHEN, charged_items_count=None)
    decoded = codec.decode(codec.encode(response, 1)).message
    assert decoded.patron_status == flags and decoded.charged_items_count is None


def test_tristate_and_odd_flags_are_read_leniently(codec: Sip2Codec) -> None:
    frame = b"121NUX20240115    093000AOMAIN|AA1|AB2|AJT|AH|"
    message = codec.decode(frame).message
    assert isinstance(message, CheckoutResponse)
    assert (message.ok, message.magnetic_media, message.desensitize) == (True, Tristate.UNKNOWN, Tristate.UNKNOWN)


def test_dates(codec: Sip2Codec) -> None:
    utc = Sip2Codec(timezone=TZ, utc_dates=True)
    request = ItemInformationRequest(transaction_date=WHEN, item_id="1")
    assert b"20240115   Z023000" in utc.encode(request)
    assert codec.decode(utc.encode(request)).message.transaction_date == WHEN
    assert codec.decode(b"17" + b" " * 18 + b"AOx|AB1|").message.transaction_date is None
    assert codec.decode(b"1720241399    999999AOx|AB1|").message.transaction_date is None
    with pytest.raises(Sip2EncodeError):
        codec.encode(ItemInformationRequest(transaction_date=datetime(2024, 1, 1), item_id="1"))


@pytest.mark.parametrize("text, expected", [
    ("20240129    235900", datetime(2024, 1, 29, 23, 59, tzinfo=TZ)),
    ("2024-01-29", datetime(2024, 1, 29, 23, 59, tzinfo=TZ)),
    ("2024-01-29 17:00", datetime(2024, 1, 29, 17, 0, tzinfo=TZ)),
    ("20240129   Z100000", datetime(2024, 1, 29, 10, 0, tzinfo=timezone.utc)),
    ("soon", None), ("", None),
])
def test_due_dates_in_the_forms_servers_write(text: str, expected: datetime | None) -> None:
    assert read_any_date(text, TZ) == expected


def test_latin1_links_fold_vietnamese() -> None:
    latin = Sip2Codec(charset="iso-8859-1", timezone=TZ)
    response = CheckoutResponse(ok=True, title="Đường về nhà", due_date="", transaction_date=WHEN)
    frame = latin.encode(response, 1)
    assert latin.decode(frame).message.title == "Duòng vê nhà"  # Latin-1 keeps what it can carry
    assert fold_to_latin1("Tiếng Việt – café") == "Tiêng Viêt ? café"
    assert fold_to_latin1("Nguyễn Thị Phượng, sữa") == "Nguyên Thi Phuong, sua"


def test_utf8_checksum_covers_the_encoded_bytes() -> None:
    utf8 = Sip2Codec(timezone=TZ)
    frame = utf8.encode(CheckoutResponse(ok=True, title="Truyện Kiều", due_date="", transaction_date=WHEN), 1)
    body = frame[:-5]
    assert checksum(body) == frame[-5:-1].decode()
    assert utf8.decode(frame).message.title == "Truyện Kiều"


def test_frame_reader_handles_split_and_merged_reads() -> None:
    reader = FrameReader()
    assert reader.feed(b"9900") == []
    assert reader.feed(b"302.00AY1AZFCA5\r\n9900302") == [b"9900302.00AY1AZFCA5"]
    assert reader.pending == len(b"9900302")
    assert reader.feed(b".00\r") == [b"9900302.00"]
    assert reader.feed(b"\r\n\r\n") == []


def test_frame_reader_refuses_endless_frames() -> None:
    reader = FrameReader(max_frame=100)
    with pytest.raises(Sip2FrameError, match="too long"):
        reader.feed(b"9" * 101)
    assert reader.pending == 0 and reader.feed(b"99\r") == [b"99"]
