"""secure_tag: write AFI (and EAS), verify by reading back, retry with backoff, precise failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from openshelf.contract import SecureTagReply, SecureTagRequest, TagWriteOutcome, expires_in, utcnow

from rfid.drivers.base import ReaderTimeout
from rfid.secure import RetryPolicy, SecureTagWriter
from rfid.tagdata import AfiPolicy
from tests.rfid.reader_service_kit import danish_tag, make_rig

UID = "E004010000005E01"
FOREIGN_UID = "E016010000005E02"  # not NXP: no EAS bit


def request(rig: Any, *, secure: bool, uid: str = UID, **fields: Any) -> SecureTagRequest:
    return SecureTagRequest(uid=uid, secure=secure, reply_to=rig.reply_topic(), expires_at=expires_in(30), **fields)


def send(rig: Any, command: SecureTagRequest) -> SecureTagReply:
    rig.link.deliver(rig.command_topic(), command)
    assert rig.service.run_pending_commands() == 1
    replies = rig.link.on(rig.reply_topic())
    assert replies, "no reply published"
    reply = replies[-1]
    assert reply.correlation_id == command.correlation_id
    return reply


def test_secure_and_unsecure_write_the_afi_and_verify_it() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2))
        rig.polls(1)
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.afi, reply.attempts) == (True, TagWriteOutcome.DONE, 0x07, 1)
        assert rig.sim.afi_of(UID) == 0x07
        reply = send(rig, request(rig, secure=False))
        assert reply.ok and reply.afi == 0xC2 and rig.sim.afi_of(UID) == 0xC2
        assert reply.eas is None  # EAS is not configured


def test_departure_after_unsecuring_carries_the_new_afi() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0x07))
        rig.polls(1)
        assert send(rig, request(rig, secure=False)).ok
        rig.sim.remove_tag(UID)
        rig.polls(6)
        [departed] = rig.link.events("tag_departed")
        assert departed.afi == 0xC2


def test_configured_afi_values_and_eas_are_written_and_verified() -> None:
    with make_rig(secured_afi=0xDA, unsecured_afi=0xD7, set_eas=True) as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xD7))
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.afi, reply.eas) == (True, 0xDA, True)
        assert rig.sim.afi_of(UID) == 0xDA and rig.sim.eas_of(UID)
        reply = send(rig, request(rig, secure=False))
        assert (reply.ok, reply.afi, reply.eas) == (True, 0xD7, False)
        assert not rig.sim.eas_of(UID)


def test_eas_is_skipped_on_a_tag_without_nxp_eas() -> None:
    with make_rig(set_eas=True) as rig:
        rig.sim.place_tag(danish_tag(FOREIGN_UID, "3000000001", afi=0xC2))
        reply = send(rig, request(rig, secure=True, uid=FOREIGN_UID))
        assert reply.ok and reply.afi == 0x07 and reply.eas is None


@pytest.mark.parametrize("kind, outcome", [("error", TagWriteOutcome.WRITE_ERROR),
                                           ("lift", TagWriteOutcome.TAG_GONE)])
def test_forced_write_failures_are_answered_as_failure_after_the_retries(kind: str,
                                                                         outcome: TagWriteOutcome) -> None:
    with make_rig(write_retries=2) as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2))
        rig.sim.fail_next_writes(3, kind)  # type: ignore[arg-type]
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.attempts) == (False, outcome, 3)
        assert rig.sim.afi_of(UID) == 0xC2
        assert reply.detail


def test_a_write_that_fails_once_succeeds_on_retry() -> None:
    with make_rig(write_retries=2) as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2))
        rig.sim.fail_next_writes(1, "error")
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.attempts, reply.afi) == (True, TagWriteOutcome.DONE, 2, 0x07)


def test_locked_afi_is_reported_at_once_unless_it_already_holds_the_wanted_value() -> None:
    with make_rig(write_retries=3) as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2, afi_locked=True))
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.attempts, reply.afi) == (False, TagWriteOutcome.AFI_LOCKED, 1, 0xC2)
        reply = send(rig, request(rig, secure=False))
        assert (reply.ok, reply.outcome, reply.afi) == (True, TagWriteOutcome.DONE, 0xC2)


def test_a_tag_that_is_not_there_is_tag_gone() -> None:
    with make_rig(write_retries=1) as rig:
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.attempts) == (False, TagWriteOutcome.TAG_GONE, 2)


class _SilentWrites:
    """The reader acknowledges Write AFI but the tag never changes: only the read-back can tell."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def write_afi(self, uid: bytes, afi: int) -> None:
        return None


def test_an_acknowledged_write_that_did_not_happen_is_never_success() -> None:
    with make_rig(driver_wrapper=_SilentWrites, write_retries=1) as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2))
        reply = send(rig, request(rig, secure=True))
        assert (reply.ok, reply.outcome, reply.afi, reply.attempts) == (False, TagWriteOutcome.VERIFY_FAILED,
                                                                        0xC2, 2)


def test_bad_reply_to_and_expired_requests_are_not_executed() -> None:
    with make_rig() as rig:
        rig.sim.place_tag(danish_tag(UID, "3000000001", afi=0xC2))
        bad = SecureTagRequest(uid=UID, secure=True, reply_to="not/a/topic", expires_at=expires_in(30))
        rig.link.deliver(rig.command_topic(), bad)
        assert rig.service.run_pending_commands() == 0
        stale = request(rig, secure=True)
        stale = stale.model_copy(update={"expires_at": utcnow() - timedelta(seconds=1)})
        assert rig.service.execute(stale) is None
        assert rig.sim.afi_of(UID) == 0xC2 and rig.link.on(rig.reply_topic()) == []


class _UnreachableDriver:
    def write_afi(self, uid: bytes, afi: int) -> None:
        raise ReaderTimeout("reader did not answer")


def test_writer_backs_off_doubling_between_attempts() -> None:
    waits: list[float] = []
    writer = SecureTagWriter(_UnreachableDriver(), AfiPolicy(),  # type: ignore[arg-type]
                             RetryPolicy(retries=3, backoff_s=0.05), wait=waits.append)
    result = writer.execute(SecureTagRequest(uid=UID, secure=True, reply_to="x", expires_at=expires_in(5)))
    assert (result.ok, result.outcome, result.attempts) == (False, TagWriteOutcome.READER_UNREACHABLE, 4)
    assert waits == pytest.approx([0.05, 0.1, 0.2])
