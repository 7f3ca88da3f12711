"""The items of one borrow or return session: what is on the pad and what to do with each next.

Pure bookkeeping on the UI thread; the blocking work is ``kiosk.work``. A line
is one item (all parts of a multi-part set together). It is worked on only when
every part's tag is on the pad, and shown as done only when every part's tag
was written and verified.
"""

from __future__ import annotations

import logging

from openshelf.contract import SetStatusEvent, TagDecodeStatus, TagEvent, TagWriteOutcome

from kiosk.session import SETTLED, ItemLine, ItemStage, Purpose
from kiosk.work import ItemOutcome

log = logging.getLogger(__name__)

RETURN_TO_DESK_HINTS = frozenset({"hold_shelf", "transit", "other_branch"})


class ItemDesk:
    def __init__(self, purpose: Purpose) -> None:
        if purpose is Purpose.ACCOUNT:
            raise ValueError("the account screen has no items")
        self.purpose = purpose
        self.lines: dict[str, ItemLine] = {}
        self._line_of_uid: dict[str, str] = {}
        self._next_order = 0

    @property
    def borrowing(self) -> bool:
        return self.purpose is Purpose.BORROW

    def ordered(self) -> list[ItemLine]:
        return sorted(self.lines.values(), key=lambda line: line.order)

    def busy(self) -> bool:
        return any(line.busy for line in self.lines.values())

    def unfinished(self) -> list[ItemLine]:
        """Borrowed items whose tags are not (all) unsecured: they would alarm at the gate."""
        return [line for line in self.ordered()
                if line.recorded and line.stage in (ItemStage.TAG_FAILED, ItemStage.WORKING)]

    # ------------------------------------------------------------------ pad events

    def arrived(self, event: TagEvent) -> ItemLine:
        if event.item_id is None or event.decode is not TagDecodeStatus.DECODED:
            line = self._line(event.uid, None)
            line.present.add(event.uid)
            line.part_uids.setdefault(1, event.uid)
            if line.stage is ItemStage.NEW:
                line.stage = ItemStage.UNREADABLE
                line.reason_key = "item.unreadable"
            return line
        line = self._line(event.item_id, event.item_id)
        line.parts_in_set = max(line.parts_in_set, event.parts_in_set or 1)
        line.part_uids[event.part_number or 1] = event.uid
        line.present.add(event.uid)
        self._line_of_uid[event.uid] = line.key
        return line

    def departed(self, event: TagEvent) -> ItemLine | None:
        key = self._line_of_uid.get(event.uid) or (event.uid if event.uid in self.lines else None)
        line = self.lines.get(key) if key else None
        if line is not None:
            line.present.discard(event.uid)
        return line

    def set_status(self, event: SetStatusEvent) -> ItemLine | None:
        line = self.lines.get(event.item_id)
        if line is None:
            return None
        line.parts_in_set = max(line.parts_in_set, event.parts_in_set)
        line.set_final = event.final and not event.complete
        return line

    def _line(self, key: str, item_id: str | None) -> ItemLine:
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = ItemLine(key=key, item_id=item_id, order=self._next_order)
            self._next_order += 1
        return line

    # ------------------------------------------------------------------ decisions

    def ready_to_work(self, line: ItemLine) -> bool:
        """Decide the line's next step; True when the blocking work should start now."""
        if line.busy:
            line.rerun = True
            return False
        if line.stage in SETTLED:
            return False
        if line.parts_in_set > 1 and not line.complete:
            line.stage = ItemStage.INCOMPLETE if line.set_final else ItemStage.WAITING_PARTS
            return False
        if line.stage is ItemStage.TAG_FAILED and not all(uid in line.present for uid in line.unverified_uids):
            return False  # still waiting for the patron to put the book back
        return True

    def begin(self, line: ItemLine) -> tuple[str, ...]:
        """Mark the line as being worked on; returns the tags to write."""
        line.busy, line.rerun = True, False
        line.stage = ItemStage.WORKING
        return tuple(line.unverified_uids)

    def apply(self, line: ItemLine, outcome: ItemOutcome) -> None:
        line.busy = False
        reply = outcome.reply
        if outcome.unavailable:
            line.refuse(key="offline.refused")
            return
        if outcome.refused:
            line.refuse({"vi": reply.message_vi, "en": reply.message_en} if reply else None,
                        f"reason.{reply.code}" if reply else None)
            return
        line.recorded = True
        line.offline = line.offline or outcome.offline
        if reply is not None:
            line.due_at = reply.due_at or line.due_at
            line.sort_hint = reply.sort_hint or line.sort_hint
        if not outcome.write_tag:
            line.stage = ItemStage.TAKE_TO_DESK if self.borrowing else ItemStage.DONE
            return
        failures = []
        for uid, write in outcome.writes.items():
            if write.ok:
                line.verified.add(uid)
            else:
                failures.append(write.outcome)
        if line.unverified_uids:
            line.stage = ItemStage.TAG_FAILED
            line.reason_key = "item.lifted_too_early" if TagWriteOutcome.TAG_GONE in failures else "item.write_failed"
            return
        line.reason_key = None
        if not self.borrowing and line.sort_hint in RETURN_TO_DESK_HINTS:
            line.stage = ItemStage.LEAVE_AT_DESK
        else:
            line.stage = ItemStage.DONE
