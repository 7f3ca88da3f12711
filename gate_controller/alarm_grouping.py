"""Locally decided alarms grouped per patron (pure: the caller passes the time).

Reads decided locally within ``window_s`` of the first one make one alarm listing
all their items (several items on one patron → one alarm). A tag that already
alarmed locally does not alarm again within ``repeat_hold_s`` of that alarm
(a tag read again while its alarm still sounds is the same patron).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from openshelf.contract import AlarmItem, new_event_id

READ_MEMORY = 4096  # which local alarm each read went into, for "dedupe by read"


class Joined(str, enum.Enum):
    NEW = "new"  # the read opened a new alarm: sound now
    ADDED = "added"  # the read joined the alarm that is open: no new sound
    REPEAT = "repeat"  # the tag is already in a recent local alarm: nothing new


@dataclass
class LocalAlarm:
    alarm_id: str
    opened_at: float
    closes_at: float
    items: list[AlarmItem] = field(default_factory=list)
    read_ids: list[str] = field(default_factory=list)

    def has_uid(self, uid: str) -> bool:
        return any(item.uid == uid for item in self.items)


class LocalAlarmGroups:
    def __init__(self, window_s: float, repeat_hold_s: float,
                 new_alarm_id: Callable[[], str] = new_event_id) -> None:
        if window_s < 0 or repeat_hold_s < 0:
            raise ValueError("window_s and repeat_hold_s must not be negative")
        self.window_s = window_s
        self.repeat_hold_s = max(repeat_hold_s, window_s)
        self._new_alarm_id = new_alarm_id
        self._open: LocalAlarm | None = None
        self._held: dict[str, tuple[float, str]] = {}  # uid -> (hold ends, alarm id)
        self._alarm_of_read: OrderedDict[str, str] = OrderedDict()

    def add(self, item: AlarmItem, read_id: str, now: float) -> tuple[Joined, LocalAlarm | None]:
        """File a locally decided alarm read. Returns how it joined, and the open alarm it joined
        (None for a repeat whose alarm is already closed)."""
        open_alarm = self.open_alarm(now)
        held = self._held.get(item.uid)
        if held is not None and now < held[0]:
            self._remember_read(read_id, held[1])
            in_open = open_alarm is not None and open_alarm.alarm_id == held[1]
            if in_open:
                open_alarm.read_ids.append(read_id)
            return Joined.REPEAT, open_alarm if in_open else None
        if open_alarm is None:
            open_alarm = LocalAlarm(self._new_alarm_id(), now, now + self.window_s)
            self._open = open_alarm
            joined = Joined.NEW
        else:
            joined = Joined.ADDED
        open_alarm.items.append(item)
        open_alarm.read_ids.append(read_id)
        self._held[item.uid] = (now + self.repeat_hold_s, open_alarm.alarm_id)
        self._remember_read(read_id, open_alarm.alarm_id)
        self._forget_expired(now)
        return joined, open_alarm

    def open_alarm(self, now: float) -> LocalAlarm | None:
        """The alarm new reads still join, if its window is still open."""
        if self._open is not None and now < self._open.closes_at:
            return self._open
        return None

    def close(self, alarm_id: str) -> LocalAlarm | None:
        """Stop adding to ``alarm_id`` (its window has passed); returns it if it was open."""
        if self._open is None or self._open.alarm_id != alarm_id:
            return None
        closed, self._open = self._open, None
        return closed

    def alarm_of_read(self, read_id: str) -> str | None:
        """The local alarm a read went into (None if it never alarmed locally)."""
        return self._alarm_of_read.get(read_id)

    def held(self, uid: str, now: float) -> str | None:
        """The local alarm a tag is in while its repeat hold lasts."""
        held = self._held.get(uid)
        return held[1] if held is not None and now < held[0] else None

    def _remember_read(self, read_id: str, alarm_id: str) -> None:
        self._alarm_of_read[read_id] = alarm_id
        if len(self._alarm_of_read) > READ_MEMORY:
            self._alarm_of_read.popitem(last=False)

    def _forget_expired(self, now: float) -> None:
        if len(self._held) > READ_MEMORY:
            self._held = {uid: held for uid, held in self._held.items() if now < held[0]}
