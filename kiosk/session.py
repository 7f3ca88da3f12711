"""What the kiosk knows during one patron's session: who (opaque ids only) and each item on the pad.

Owned by the UI thread: only the controller changes these objects, and it runs
on the main thread. Work done elsewhere comes back as immutable results.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from openshelf.contract import new_event_id


class Purpose(str, enum.Enum):
    BORROW = "borrow"
    RETURN = "return"
    ACCOUNT = "account"


class ItemStage(str, enum.Enum):
    NEW = "new"
    WAITING_PARTS = "waiting_parts"  # a set whose other parts may still come
    INCOMPLETE = "incomplete"  # the reader's wait is over and parts are missing
    WORKING = "working"
    DONE = "done"  # recorded and the tag verified: the only state shown as '✓'
    LEAVE_AT_DESK = "leave_at_desk"  # returned, but it goes to the desk (hold, other branch)
    TAKE_TO_DESK = "take_to_desk"  # borrowed, but the library system keeps its security on
    REFUSED = "refused"
    TAG_FAILED = "tag_failed"  # recorded, but the tag was not (verifiably) written: put it back
    UNREADABLE = "unreadable"
    UNDONE = "undone"  # a checkout taken back because its tag never got written


SETTLED = frozenset({ItemStage.DONE, ItemStage.LEAVE_AT_DESK, ItemStage.TAKE_TO_DESK, ItemStage.REFUSED,
                     ItemStage.UNREADABLE, ItemStage.UNDONE})


@dataclass
class PatronSession:
    card_id: str
    purpose: Purpose
    session_id: str | None = None
    offline: bool = False
    has_email: bool = False


@dataclass
class ItemLine:
    key: str
    item_id: str | None
    order: int
    parts_in_set: int = 1
    part_uids: dict[int, str] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    stage: ItemStage = ItemStage.NEW
    idempotency_key: str = field(default_factory=new_event_id)
    recorded: bool = False
    offline: bool = False
    verified: set[str] = field(default_factory=set)
    due_at: datetime | None = None
    reason: dict[str, str] = field(default_factory=dict)  # language -> the backend's sentence
    reason_key: str | None = None  # or a kiosk catalog key
    sort_hint: str | None = None
    busy: bool = False
    rerun: bool = False
    title: str | None = None
    author: str | None = None
    set_final: bool = False

    @property
    def uids(self) -> list[str]:
        return [self.part_uids[part] for part in sorted(self.part_uids)]

    @property
    def parts_present(self) -> list[int]:
        return sorted(part for part, uid in self.part_uids.items() if uid in self.present)

    @property
    def missing_parts(self) -> list[int]:
        present = set(self.parts_present)
        return [part for part in range(1, self.parts_in_set + 1) if part not in present]

    @property
    def complete(self) -> bool:
        return not self.missing_parts

    @property
    def unverified_uids(self) -> list[str]:
        return [uid for uid in self.uids if uid not in self.verified]

    def refuse(self, reason: dict[str, str] | None = None, key: str | None = None) -> None:
        self.stage = ItemStage.REFUSED
        self.reason = reason or {}
        self.reason_key = key
