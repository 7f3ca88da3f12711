"""KioskAnswers (what the backend replies to a kiosk) and the gate-view sync, without MQTT."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from backend.circulation.interface import ItemInfo
from backend.circulation.messages import ReasonCode, message
from backend.circulation.model import ItemStatus
from backend.gate_decision import ItemFacts as GateItem
from backend.gate_sync import GateSyncedCirculation, LoanStateRefresher
from backend.gate_view import GateView
from backend.kiosk_circulation import KioskAnswers
from backend.kiosk_sessions import KioskSessions
from circ_testkit import ADULT, BLOCKED, BOOK, EXPIRED, FINED, IN_HOUSE, NOW, OTHER_BOOK, PIN, Clock, make_library, \
    wait_until
from openshelf.contract import CirculationOp, CirculationRequest, expires_in
from openshelf.site import KioskSettings


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self) -> None:
        self.clock = Clock()
        self.library = make_library(self.clock)
        self.view = GateView()
        self.view.put_item(GateItem(BOOK, "Truyện Kiều", False, False), ["E004010000000001"])
        self.ticks = Ticks()
        self.sessions = KioskSessions(idle_s=60, clock=self.ticks)
        kiosks = {"k1": KioskSettings(id="k1"), "k2": KioskSettings(id="k2", require_pin=False)}
        self.answers = KioskAnswers(GateSyncedCirculation(self.library, self.view), self.sessions, kiosks,
                                    email_of=lambda card: "a@example.org" if card == ADULT else None,
                                    clock=self.clock)

    def ask(self, op: CirculationOp, kiosk: str = "k1", **fields: Any) -> Any:
        fields.setdefault("idempotency_key", uuid.uuid4().hex)
        request = CirculationRequest(kiosk_id=kiosk, op=op, reply_to=f"openshelf/v1/s/kiosk/{kiosk}/reply/circulation",
                                     expires_at=expires_in(5), **fields)
        return self.answers.answer(request)

    def sign_in(self, card: str = ADULT) -> str:
        reply = self.ask(CirculationOp.IDENTIFY, card_id=card, pin=PIN)
        assert reply.ok, reply
        return reply.session_id


@pytest.fixture
def setup() -> Setup:
    return Setup()


@pytest.mark.parametrize("card, pin, code", [
    (ADULT, "9999", "wrong_pin"), ("00000000", PIN, "unknown_patron"), (EXPIRED, PIN, "patron_expired"),
    (BLOCKED, PIN, "patron_blocked"), (ADULT, None, "pin_required"),
])
def test_identify_refusals(setup: Setup, card: str, pin: str | None, code: str) -> None:
    reply = setup.ask(CirculationOp.IDENTIFY, card_id=card, pin=pin)
    assert (reply.ok, reply.code, reply.session_id) == (False, code, None)
    assert reply.message_vi and reply.message_en


def test_a_wrong_pin_does_not_reveal_the_cards_other_problems(setup: Setup) -> None:
    reply = setup.ask(CirculationOp.IDENTIFY, card_id=EXPIRED, pin="9999")
    assert reply.code == "wrong_pin" and "hết hạn" not in reply.message_vi


def test_too_many_wrong_pins_lock_the_card_at_that_kiosk(setup: Setup) -> None:
    for _ in range(5):
        assert setup.ask(CirculationOp.IDENTIFY, card_id=ADULT, pin="0000").code == "wrong_pin"
    assert setup.ask(CirculationOp.IDENTIFY, card_id=ADULT, pin=PIN).code == "too_many_attempts"
    assert setup.ask(CirculationOp.IDENTIFY, kiosk="k2", card_id=ADULT, pin=PIN).ok  # another kiosk


def test_fined_patrons_sign_in_and_hear_why_checkouts_fail(setup: Setup) -> None:
    reply = setup.ask(CirculationOp.IDENTIFY, card_id=FINED, pin=PIN)
    assert reply.ok and reply.code == "fines_over_limit" and reply.fines_due == "60000"
    refused = setup.ask(CirculationOp.CHECKOUT, session_id=reply.session_id, item_id=BOOK)
    assert (refused.ok, refused.code, refused.desensitize) == (False, "fines_over_limit", False)


def test_checkout_updates_the_gate_view_and_sessions_expire(setup: Setup) -> None:
    session_id = setup.sign_in()
    reply = setup.ask(CirculationOp.CHECKOUT, session_id=session_id, item_id=BOOK)
    assert reply.ok and reply.desensitize is True and setup.view.lookup("E004010000000001").on_loan is True
    account = setup.ask(CirculationOp.ACCOUNT, session_id=session_id)
    assert [line.item_id for line in account.loans] == [BOOK] and account.has_email is True
    setup.ticks.now += 61
    late = setup.ask(CirculationOp.CHECKOUT, session_id=session_id, item_id=OTHER_BOOK)
    assert late.code == "session_expired"
    back = setup.ask(CirculationOp.CHECKIN, item_id=BOOK)  # returns need no session
    assert back.ok and back.resensitize is True and setup.view.lookup("E004010000000001").on_loan is False


def test_a_session_cannot_act_for_another_card(setup: Setup) -> None:
    session_id = setup.sign_in()
    reply = setup.ask(CirculationOp.CHECKOUT, session_id=session_id, card_id=FINED, item_id=BOOK)
    assert reply.code == "session_expired" and not setup.library.store.loans


def test_repeats_get_the_first_answer_and_a_reused_key_is_refused(setup: Setup) -> None:
    session_id = setup.sign_in()
    first = setup.ask(CirculationOp.RENEW_ALL, session_id=session_id, idempotency_key="same-key-1")
    again = setup.ask(CirculationOp.RENEW_ALL, session_id=session_id, idempotency_key="same-key-1")
    assert again.code == first.code and again.correlation_id != first.correlation_id
    assert again.event_id != first.event_id  # a new message, or the kiosk's de-duplication would drop it
    other = setup.ask(CirculationOp.CHECKIN, item_id=BOOK, idempotency_key="same-key-1")
    assert other.code == "duplicate_request"


def test_offline_replays_happen_when_they_happened_within_bounds(setup: Setup) -> None:
    then = NOW - timedelta(hours=2)
    reply = setup.ask(CirculationOp.CHECKOUT, card_id=ADULT, item_id=BOOK, no_block=True, occurred_at=then)
    assert reply.ok and setup.library.store.loans[BOOK].checked_out_at == then
    future = setup.ask(CirculationOp.CHECKIN, item_id=BOOK, no_block=True, occurred_at=NOW + timedelta(days=3))
    assert future.ok and setup.library.store.closed_loans[-1][1] == NOW  # never in the future
    in_house = setup.ask(CirculationOp.CHECKOUT, card_id=ADULT, item_id=IN_HOUSE, no_block=True)
    assert in_house.ok and in_house.desensitize is False  # lent by override, alarm stays on


def test_a_failing_circulation_still_answers(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(setup.library, "checkin", broken)
    reply = setup.ask(CirculationOp.CHECKIN, item_id=BOOK, idempotency_key="k-broken-1")
    assert (reply.ok, reply.code) == (False, "system_unavailable")
    monkeypatch.undo()
    assert setup.ask(CirculationOp.CHECKIN, item_id=BOOK, idempotency_key="k-broken-1").ok  # tried again


class FakeLibrarySystem:
    """Answers item information like a SIP2 library system would."""

    def __init__(self) -> None:
        self.on_loan: set[str] = set()
        self.asked: list[str] = []

    def item_info(self, item_id: str) -> ItemInfo:
        self.asked.append(item_id)
        status = ItemStatus.ON_LOAN if item_id in self.on_loan else ItemStatus.AVAILABLE
        return ItemInfo(ok=True, reason=ReasonCode.OK, message=message(ReasonCode.OK), item_id=item_id, found=True,
                        title="Số đỏ", status=status)


def test_the_refresher_follows_the_library_system_without_blocking_lookups() -> None:
    view = GateView()
    view.put_item(GateItem("I1", "Số đỏ", False, False), ["E004010000000009"])
    library = FakeLibrarySystem()
    ticks = Ticks()
    refresher = LoanStateRefresher(library, view, ttl_s=30, clock=ticks)  # type: ignore[arg-type]
    refresher.start()
    try:
        library.on_loan.add("I1")  # lent at the library's own desk
        assert view.lookup("E004010000000009").on_loan is False  # the gate decides on what it has now
        assert wait_until(lambda: view.get("I1").on_loan is True)
        view.lookup("E004010000000009")
        view.lookup("unknown-uid", "I2")  # an item only the library system knows is learned too
        assert wait_until(lambda: view.get("I2") is not None)
        assert library.asked.count("I1") == 1  # within the TTL: asked once
        ticks.now += 31
        library.on_loan.discard("I1")
        view.lookup("E004010000000009")
        assert wait_until(lambda: view.get("I1").on_loan is False)
    finally:
        refresher.stop()
