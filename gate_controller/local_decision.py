"""What the gate decides on its own when the backend does not answer in time (pure).

The gate only knows what the reader saw: the AFI byte, the EAS bit (on tags that
have one) and whether the tag's memory could be decoded. It does not know the
catalogue, so an on-loan item is recognised by its AFI alone. Rules, first match
wins (docs/gate-io.md, "Deciding locally"):

1. EAS bit set and ``alarm_on_eas`` → alarm ``eas_alarm``.
2. AFI in ``secured_afis`` (0x07: on the shelf) → alarm ``secured_tag``,
   even if the memory could not be decoded (the AFI is the security bit).
3. Memory corrupt or not read → the ``unknown_tag`` policy, reason ``unreadable_tag``.
4. Memory blank or of an unknown data model (another library, another system)
   → the ``unknown_tag`` policy, reason ``unknown_tag``.
5. No AFI reported and no usable EAS bit: the security state is unknown
   → the ``unknown_tag`` policy, reason ``unreadable_tag``. Silence is never "all clear".
6. Otherwise (an AFI outside ``secured_afis``, e.g. 0xC2 on loan) → pass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from openshelf.contract import AlarmReason, TagDecodeStatus, TagEvent
from openshelf.site import LocalDecisionSettings

UNREADABLE = frozenset({TagDecodeStatus.CORRUPT, TagDecodeStatus.UNREAD})
FOREIGN = frozenset({TagDecodeStatus.BLANK, TagDecodeStatus.UNKNOWN_MODEL})


class LocalOutcome(str, enum.Enum):
    ALARM = "alarm"
    PASS = "pass"
    LOG = "log"  # an unknown tag the policy only logs


@dataclass(frozen=True, slots=True)
class LocalDecision:
    outcome: LocalOutcome
    reason: AlarmReason | None  # None only for PASS
    explanation: str


def decide_locally(event: TagEvent, settings: LocalDecisionSettings) -> LocalDecision:
    """The gate's own decision for one read (see the module docstring for the rules)."""
    if event.eas is True and settings.alarm_on_eas:
        return LocalDecision(LocalOutcome.ALARM, AlarmReason.EAS_ALARM, "EAS bit set")
    if event.afi is not None and event.afi in settings.secured_afis:
        return LocalDecision(LocalOutcome.ALARM, AlarmReason.SECURED_TAG, f"AFI 0x{event.afi:02X} is secured")
    if event.decode in UNREADABLE:
        return _unknown(settings, AlarmReason.UNREADABLE_TAG, f"tag memory {event.decode.value}")
    if event.decode in FOREIGN:
        return _unknown(settings, AlarmReason.UNKNOWN_TAG, f"tag memory {event.decode.value}")
    eas_tells = settings.alarm_on_eas and event.eas is not None
    if event.afi is None and not eas_tells:
        return _unknown(settings, AlarmReason.UNREADABLE_TAG, "no AFI reported: security state unknown")
    if event.afi is None:
        return LocalDecision(LocalOutcome.PASS, None, "EAS bit clear")
    return LocalDecision(LocalOutcome.PASS, None, f"AFI 0x{event.afi:02X} is not secured")


def _unknown(settings: LocalDecisionSettings, reason: AlarmReason, explanation: str) -> LocalDecision:
    outcome = LocalOutcome.ALARM if settings.unknown_tag == "alarm" else LocalOutcome.LOG
    return LocalDecision(outcome, reason, explanation)
