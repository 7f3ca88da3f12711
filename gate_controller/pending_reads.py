"""Reads waiting for the backend's answer, each with a deadline (pure: the caller passes the time).

Every read of a tag at this gate must be answered: by an ``AlarmCommand`` naming it
(or, from a backend that does not name reads, the same tag UID), or by a
``PassNotice``. A read that is still unanswered at its deadline is handed back
by :meth:`PendingReads.due` so the gate decides it locally.

The deadline is the arrival time plus one fixed delay, so reads expire in arrival
order and the earliest deadline is always at the front.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from openshelf.contract import TagEvent

EARLY_ANSWER_MEMORY = 4096  # answers that overtook their read (bounded, oldest forgotten)


@dataclass(frozen=True, slots=True)
class PendingRead:
    event: TagEvent
    arrived_at: float
    deadline: float


class PendingReads:
    def __init__(self, deadline_s: float) -> None:
        if deadline_s < 0:
            raise ValueError("deadline_s must not be negative")
        self.deadline_s = deadline_s
        self._pending: OrderedDict[str, PendingRead] = OrderedDict()
        self._by_uid: dict[str, list[str]] = {}
        self._answered_early: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, read_id: object) -> bool:
        return read_id in self._pending

    def add(self, event: TagEvent, now: float) -> PendingRead | None:
        """Start waiting for ``event``; None if it is already waiting or was already answered."""
        read_id = event.event_id
        if read_id in self._pending:
            return None
        if read_id in self._answered_early:
            del self._answered_early[read_id]
            return None
        read = PendingRead(event, now, now + self.deadline_s)
        self._pending[read_id] = read
        self._by_uid.setdefault(event.uid, []).append(read_id)
        return read

    def resolve(self, read_ids: Iterable[str], uids: Iterable[str] = ()) -> list[PendingRead]:
        """The backend answered these reads (by id) or these tags (by UID): stop waiting for them.

        An id that is not waiting is remembered, in case the answer overtook the read.
        """
        resolved: list[PendingRead] = []
        for read_id in read_ids:
            read = self._remove(read_id)
            if read is not None:
                resolved.append(read)
            else:
                self._remember_early(read_id)
        for uid in uids:
            for read_id in list(self._by_uid.get(uid, ())):
                read = self._remove(read_id)
                if read is not None:
                    resolved.append(read)
        return resolved

    def due(self, now: float) -> list[PendingRead]:
        """Remove and return every read whose deadline has passed, oldest first."""
        expired: list[PendingRead] = []
        while self._pending:
            read_id, read = next(iter(self._pending.items()))
            if read.deadline > now:
                break
            self._remove(read_id)
            expired.append(read)
        return expired

    def next_deadline(self) -> float | None:
        if not self._pending:
            return None
        return next(iter(self._pending.values())).deadline

    def _remove(self, read_id: str) -> PendingRead | None:
        read = self._pending.pop(read_id, None)
        if read is None:
            return None
        siblings = self._by_uid.get(read.event.uid)
        if siblings is not None:
            siblings.remove(read_id)
            if not siblings:
                del self._by_uid[read.event.uid]
        return read

    def _remember_early(self, read_id: str) -> None:
        self._answered_early[read_id] = None
        if len(self._answered_early) > EARLY_ANSWER_MEMORY:
            self._answered_early.popitem(last=False)
