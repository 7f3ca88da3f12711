"""Sip2Circulation against a server that speaks plain SIP2 (no OpenShelf ZR/ZV/ZE fields), as Koha does."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from backend.circulation.interface import Tristate, should_desensitize
from backend.circulation.messages import ReasonCode
from backend.circulation.model import HoldStatus, ItemStatus, SortHint
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.codec import Sip2Codec
from backend.sip2.messages import (
    CheckinResponse,
    CheckoutResponse,
    ItemInformationResponse,
    LoginResponse,
    PatronInformationResponse,
    PatronStatusFlags,
    RenewResponse,
)
from circ_testkit import NOW, TZ, Clock, ScriptedServer, answer, client_config

CODEC = Sip2Codec(timezone=TZ, terminator="CRLF")  # Koha writes CRLF by default


def koha(frame: bytes, session: dict) -> object:
    request = CODEC.decode(frame).message
    code = frame[:2]
    if code == b"93":
        return answer(CODEC, LoginResponse(ok=True), frame)
    if code == b"11":
        item = getattr(request, "item_id")
        if item == "fined":
            reply = CheckoutResponse(ok=False, transaction_date=NOW, item_id=item, title="x",
                                     screen_message=("Patron has fines",))
        else:
            reply = CheckoutResponse(ok=True, desensitize=Tristate.NO if item == "inhouse" else Tristate.YES,
                                     transaction_date=NOW, item_id=item, title="Tạp chí", due_date="2024-01-29")
        return answer(CODEC, reply, frame)
    if code == b"09":
        return answer(CODEC, CheckinResponse(ok=True, alert=True, transaction_date=NOW, item_id="h",
                                             alert_type="02", destination_location="CPL",
                                             screen_message=("Hold for another branch",)), frame)
    if code == b"63":
        summary = getattr(request, "summary")
        return answer(CODEC, PatronInformationResponse(
            patron_status=PatronStatusFlags(charge_privileges_denied=True, excessive_outstanding_fines=True),
            transaction_date=NOW, charged_items_count=1, hold_items_count=1, unavailable_holds_count=0,
            fine_items_count=1, personal_name="Koha Patron", valid_patron=True, fee_amount="7.50",
            currency_type="USD", charged_items=("c1",) if summary and summary.value == 2 else (),
            hold_items=("h1",) if summary and summary.value == 0 else (),
            fine_items=("7.50 Overdue c1",) if summary and summary.value == 3 else (),
        ), frame)
    if code == b"17":
        return answer(CODEC, ItemInformationResponse(circulation_status="04", transaction_date=NOW, item_id="c1",
                                                     title="Koha book", due_date="20240110    235900"), frame)
    if code == b"29":
        return answer(CODEC, RenewResponse(ok=False, transaction_date=NOW, screen_message=("Item on hold",)), frame)
    return None


def test_a_plain_sip2_library_system() -> None:
    with ScriptedServer(koha) as server:
        client = Sip2Client(client_config(server.port, terminator="CRLF", timeout_s=1.0), clock=Clock())
        circulation = Sip2Circulation(client, clock=Clock())
        try:
            lent = circulation.checkout("p", "book", idempotency_key="1")
            assert lent.ok and lent.reason is ReasonCode.CHECKED_OUT and lent.desensitize is Tristate.YES
            assert lent.due_at == datetime(2024, 1, 29, 23, 59, tzinfo=TZ) and "29/01/2024" in lent.message.vi

            in_house = circulation.checkout("p", "inhouse", idempotency_key="2")
            assert in_house.ok and not should_desensitize(in_house, when_unknown=True)

            refused = circulation.checkout("p", "fined", idempotency_key="3")
            assert (refused.ok, refused.reason, refused.desensitize) == (
                False, ReasonCode.LIBRARY_SYSTEM_REFUSED, Tristate.NO)
            assert refused.detail == "Patron has fines" and "Patron has fines" in refused.message.vi

            back = circulation.checkin("h", idempotency_key="4")
            assert (back.sort, back.destination, back.hold_ready) == (SortHint.TRANSIT, "CPL", True)
            assert back.reason is ReasonCode.RETURNED_TRANSIT and back.fine_due is None

            status = circulation.patron_status("p")
            assert status.found and not status.may_borrow and status.reason is ReasonCode.FINES_OVER_LIMIT
            assert status.fines_owed == Decimal("7.50") and status.currency == "USD" and status.loans == 1

            account = circulation.patron_account("p")
            assert [(loan.item_id, loan.title, loan.overdue) for loan in account.loans] == [("c1", "Koha book", True)]
            assert [(hold.item_id, hold.status) for hold in account.holds] == [("h1", HoldStatus.READY)]
            assert [(fine.amount, fine.description) for fine in account.fines] == [(Decimal("7.50"), "Overdue c1")]

            assert circulation.item_info("c1").status is ItemStatus.ON_LOAN
            renewal = circulation.renew("p", "c1")
            assert (renewal.ok, renewal.reason, renewal.detail) == (False, ReasonCode.LIBRARY_SYSTEM_REFUSED,
                                                                    "Item on hold")
        finally:
            circulation.close()
