"""The gate's own decision when the backend is silent: every combination the reader can report."""

from __future__ import annotations

import itertools

import pytest

from gate_controller.local_decision import LocalOutcome, decide_locally
from openshelf.contract import AlarmReason, TagDecodeStatus, TagEvent
from openshelf.site import LocalDecisionSettings

UID = "E004010000000301"
AFIS = (None, 0x07, 0xC2, 0x00, 0x19)
EAS = (None, False, True)
ALL_SETTINGS = [
    LocalDecisionSettings(alarm_on_eas=alarm_on_eas, unknown_tag=policy)
    for alarm_on_eas, policy in itertools.product((True, False), ("alarm", "log"))
]
COMBINATIONS = list(itertools.product(AFIS, EAS, list(TagDecodeStatus), ALL_SETTINGS))


def read(afi: int | None = 0x07, eas: bool | None = None, decode: TagDecodeStatus = TagDecodeStatus.DECODED) -> TagEvent:
    return TagEvent(reader_id="r1", gate_id="gate-1", uid=UID, item_id="I0003", afi=afi, eas=eas, decode=decode)


@pytest.mark.parametrize(
    ("event", "outcome", "reason"),
    [
        (read(afi=0x07), LocalOutcome.ALARM, AlarmReason.SECURED_TAG),
        (read(afi=0xC2), LocalOutcome.PASS, None),
        (read(afi=0xC2, eas=True), LocalOutcome.ALARM, AlarmReason.EAS_ALARM),
        (read(afi=0x07, eas=True), LocalOutcome.ALARM, AlarmReason.EAS_ALARM),
        (read(afi=0x07, decode=TagDecodeStatus.CORRUPT), LocalOutcome.ALARM, AlarmReason.SECURED_TAG),
        (read(afi=0xC2, decode=TagDecodeStatus.CORRUPT), LocalOutcome.ALARM, AlarmReason.UNREADABLE_TAG),
        (read(afi=0xC2, decode=TagDecodeStatus.UNREAD), LocalOutcome.ALARM, AlarmReason.UNREADABLE_TAG),
        (read(afi=0xC2, decode=TagDecodeStatus.UNKNOWN_MODEL), LocalOutcome.ALARM, AlarmReason.UNKNOWN_TAG),
        (read(afi=0xC2, decode=TagDecodeStatus.BLANK), LocalOutcome.ALARM, AlarmReason.UNKNOWN_TAG),
        (read(afi=None), LocalOutcome.ALARM, AlarmReason.UNREADABLE_TAG),
        (read(afi=None, eas=False), LocalOutcome.PASS, None),
    ],
)
def test_default_policy_examples(event: TagEvent, outcome: LocalOutcome, reason: AlarmReason | None) -> None:
    decision = decide_locally(event, LocalDecisionSettings())
    assert (decision.outcome, decision.reason) == (outcome, reason)
    assert decision.explanation


def test_unknown_tags_are_only_logged_when_the_policy_says_log() -> None:
    settings = LocalDecisionSettings(unknown_tag="log")
    assert decide_locally(read(afi=0xC2, decode=TagDecodeStatus.CORRUPT), settings).outcome is LocalOutcome.LOG
    assert decide_locally(read(afi=None), settings).outcome is LocalOutcome.LOG
    assert decide_locally(read(afi=0x07, decode=TagDecodeStatus.CORRUPT), settings).outcome is LocalOutcome.ALARM


def test_eas_is_ignored_when_the_site_does_not_use_it() -> None:
    settings = LocalDecisionSettings(alarm_on_eas=False)
    assert decide_locally(read(afi=0xC2, eas=True), settings).outcome is LocalOutcome.PASS
    # without the EAS bit to go by, a tag with no AFI has an unknown security state
    assert decide_locally(read(afi=None, eas=False), settings).reason is AlarmReason.UNREADABLE_TAG


def test_secured_afis_are_configurable() -> None:
    settings = LocalDecisionSettings(secured_afis=[0x07, 0x19])
    assert decide_locally(read(afi=0x19), settings).reason is AlarmReason.SECURED_TAG
    assert decide_locally(read(afi=0x07), LocalDecisionSettings(secured_afis=[])).outcome is LocalOutcome.PASS


def test_every_combination_follows_the_rules() -> None:
    for afi, eas, decode, settings in COMBINATIONS:
        check_rules(afi, eas, decode, settings)


def check_rules(afi, eas, decode, settings) -> None:
    decision = decide_locally(read(afi=afi, eas=eas, decode=decode), settings)
    secured = afi in settings.secured_afis or (eas is True and settings.alarm_on_eas)
    security_known = afi is not None or (settings.alarm_on_eas and eas is not None)
    clearly_not_secured = decode is TagDecodeStatus.DECODED and security_known and not secured
    where = (afi, eas, decode, settings)
    if secured:
        assert decision.outcome is LocalOutcome.ALARM, where
        assert decision.reason in (AlarmReason.SECURED_TAG, AlarmReason.EAS_ALARM), where
    elif clearly_not_secured:
        assert decision.outcome is LocalOutcome.PASS and decision.reason is None, where
    else:  # never "all clear" for what the gate cannot tell: the unknown-tag policy decides
        expected = LocalOutcome.ALARM if settings.unknown_tag == "alarm" else LocalOutcome.LOG
        assert decision.outcome is expected, where
        assert decision.reason in (AlarmReason.UNKNOWN_TAG, AlarmReason.UNREADABLE_TAG), where


def test_a_log_policy_never_turns_an_alarm_into_a_pass() -> None:
    for afi, eas, decode, settings in COMBINATIONS:
        event = read(afi=afi, eas=eas, decode=decode)
        strict = decide_locally(event, settings.model_copy(update={"unknown_tag": "alarm"}))
        lenient = decide_locally(event, settings.model_copy(update={"unknown_tag": "log"}))
        assert strict.reason == lenient.reason, (afi, eas, decode)
        assert (strict.outcome is LocalOutcome.PASS) == (lenient.outcome is LocalOutcome.PASS), (afi, eas, decode)
