"""What the gate path hands over to be stored: alarm records and device sightings.

Plain frozen dataclasses (they cross from the gate process to the backend as
pickles) and the :class:`AlarmRecorder` protocol the gate service writes to. No
database here: the gate process imports this module, not the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from openshelf.contract import AlarmItem, Message


@dataclass(frozen=True)
class AlarmRecord:
    alarm_id: str
    gate_id: str
    created_at: datetime
    decided_locally: bool
    items: tuple[AlarmItem, ...]


@dataclass(frozen=True)
class DeviceSighting:
    """A device's status (``online``) or state (``state``) message arrived."""

    device_id: str
    kind: str
    at: datetime
    online: bool | None = None
    state: Message | None = None


class AlarmRecorder(Protocol):
    """What the gate service needs from the writer: two calls that never block."""

    def record_alarm(self, record: AlarmRecord) -> None: ...

    def record_device(self, sighting: DeviceSighting) -> None: ...


def merge_sightings(earlier: DeviceSighting, later: DeviceSighting) -> DeviceSighting:
    """One sighting saying what both say: the later status and state win, the latest time is kept."""
    return DeviceSighting(
        device_id=later.device_id,
        kind=later.kind,
        at=max(earlier.at, later.at),
        online=later.online if later.online is not None else earlier.online,
        state=later.state if later.state is not None else earlier.state,
    )
