"""Multi-part items: which parts of a set are on the reader, and whether the set is complete.

A three-volume item carries "3 parts" on every tag and part numbers 1, 2, 3. The
kiosk must not check out (or in) an incomplete set, so every change is reported
as a SetStatusEvent. ``final`` tells the kiosk it can decide: the set is complete,
or the wait (``set_wait_ms``, 5 s by default, as koha-rfidhub waits) is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openshelf.contract import SetStatusEvent


@dataclass
class _OpenSet:
    parts_in_set: int
    started: float
    parts_by_uid: dict[str, int] = field(default_factory=dict)
    wait_reported: bool = False

    @property
    def parts_present(self) -> list[int]:
        return sorted(set(self.parts_by_uid.values()))

    @property
    def complete(self) -> bool:
        return len(self.parts_present) == self.parts_in_set


class SetTracker:
    """Tracks the sets on one reader; every method returns the events to publish."""

    def __init__(self, reader_id: str, wait_s: float) -> None:
        self._reader_id = reader_id
        self._wait_s = wait_s
        self._sets: dict[str, _OpenSet] = {}
        self._item_of_uid: dict[str, str] = {}

    def part_arrived(self, uid: str, item_id: str, parts_in_set: int, part_number: int,
                     now: float) -> SetStatusEvent:
        entry = self._sets.get(item_id)
        if entry is None or entry.parts_in_set != parts_in_set:
            # A different set size under the same item id is a new (mis-tagged) set: start over.
            entry = self._sets[item_id] = _OpenSet(parts_in_set, now)
        entry.parts_by_uid[uid] = part_number
        self._item_of_uid[uid] = item_id
        return self._status(item_id, entry, now)

    def part_departed(self, uid: str, now: float) -> SetStatusEvent | None:
        item_id = self._item_of_uid.pop(uid, None)
        if item_id is None:
            return None
        entry = self._sets[item_id]
        entry.parts_by_uid.pop(uid, None)
        if not entry.parts_by_uid:
            del self._sets[item_id]  # the whole set left; placing it again starts a new wait
            return self._event(item_id, entry, final=True)
        return self._status(item_id, entry, now)

    def waits_over(self, now: float) -> list[SetStatusEvent]:
        """The final status of every incomplete set whose wait ran out since the last call."""
        events = []
        for item_id, entry in self._sets.items():
            if entry.wait_reported or now - entry.started < self._wait_s:
                continue
            entry.wait_reported = True
            if not entry.complete:  # a complete set was already reported as final
                events.append(self._event(item_id, entry, final=True))
        return events

    def _status(self, item_id: str, entry: _OpenSet, now: float) -> SetStatusEvent:
        waited_out = now - entry.started >= self._wait_s
        if waited_out:
            entry.wait_reported = True
        return self._event(item_id, entry, final=entry.complete or waited_out)

    def _event(self, item_id: str, entry: _OpenSet, *, final: bool) -> SetStatusEvent:
        return SetStatusEvent(reader_id=self._reader_id, item_id=item_id, parts_in_set=entry.parts_in_set,
                              parts_present=entry.parts_present, complete=entry.complete, final=final)
