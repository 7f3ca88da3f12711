"""The blocking part of borrowing or returning one item, run on a worker thread.

Borrow: check out (online, or into the durable queue when the backend is away
and the library allows it), then unsecure every part's tag and wait for the
reader's verified answer. Return: check in, then secure. The order matters: a
tag is never unsecured for an item that is not on loan, and an item is never
shown as done before its tag says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from openshelf.contract import CirculationOp, CirculationReply, SecureTagReply

from kiosk.backend_client import BackendUnavailable, CirculationClient
from kiosk.queue import OfflineQueue
from kiosk.tag_security import TagSecurityClient

log = logging.getLogger(__name__)

OfflineMode = Literal["refuse", "queue"]


@dataclass(frozen=True)
class ItemOrder:
    borrow: bool
    item_id: str
    uids: tuple[str, ...]
    idempotency_key: str
    card_id: str | None
    session_id: str | None
    already_recorded: bool
    go_offline: bool  # the backend is known to be away (or the queue is not yet replayed)
    offline_mode: OfflineMode


@dataclass(frozen=True)
class ItemOutcome:
    recorded: bool = False
    offline: bool = False
    refused: bool = False
    unavailable: bool = False  # backend away and the library refuses offline transactions
    reply: CirculationReply | None = None
    write_tag: bool = True  # False: the library system said to leave the tag as it is
    writes: dict[str, SecureTagReply] = field(default_factory=dict)


class ItemWorker:
    def __init__(self, circulation: CirculationClient, security: TagSecurityClient, queue: OfflineQueue) -> None:
        self._circulation = circulation
        self._security = security
        self._queue = queue

    def run(self, order: ItemOrder) -> ItemOutcome:
        outcome = ItemOutcome(recorded=order.already_recorded)
        if not order.already_recorded:
            outcome = self._record(order)
            if not outcome.recorded:
                return outcome
        if not outcome.write_tag:
            return outcome
        writes = {uid: self._security.set_security(uid, secure=not order.borrow) for uid in order.uids}
        return ItemOutcome(recorded=True, offline=outcome.offline, reply=outcome.reply, writes=writes)

    def _record(self, order: ItemOrder) -> ItemOutcome:
        op = CirculationOp.CHECKOUT if order.borrow else CirculationOp.CHECKIN
        request = self._circulation.new_request(op, idempotency_key=order.idempotency_key, item_id=order.item_id,
                                                card_id=order.card_id if order.borrow else None,
                                                session_id=order.session_id)
        if not order.go_offline:
            try:
                reply = self._circulation.call(request)
            except BackendUnavailable:
                pass
            else:
                if not reply.ok:
                    return ItemOutcome(refused=True, reply=reply)
                return ItemOutcome(recorded=True, reply=reply, write_tag=_should_write(order.borrow, reply))
        if order.offline_mode != "queue":
            return ItemOutcome(unavailable=True)
        # The same idempotency key as the unanswered attempt: if that one did arrive, the replay is a no-op.
        self._queue.enqueue(request)
        return ItemOutcome(recorded=True, offline=True)


def _should_write(borrow: bool, reply: CirculationReply) -> bool:
    flag = reply.desensitize if borrow else reply.resensitize
    return flag is not False  # unknown follows the kiosk's policy: always write
