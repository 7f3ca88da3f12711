"""``Sip2Circulation``: the :class:`Circulation` interface over a library system's SIP2 server.

The library system owns patrons, loans and rules; this class translates.
Answers from an OpenShelf SIP2 server carry the reason code and both messages
(``ZR``/``ZV``/``ZE``); other systems (Koha …) give a screen message, which is
passed on as ``detail`` inside a bilingual "the library system refused" text.

Security flags: a checkout's ``desensitize`` is taken from the library system
(Y/N/U) and is ``N`` whenever the checkout failed; the kiosk calls
:func:`~backend.circulation.interface.should_desensitize`.

Idempotency: results are remembered per ``idempotency_key`` in this process.  If
the link breaks after a checkout or check-in was sent, the item is looked up
(17, and 63 for the patron's loans) before the request is repeated once, so a
lost answer never makes a second loan.

Offline: when the library system cannot be reached and offline circulation is
enabled, checkouts and check-ins (without no-block) are written to the journal
and answered ``OFFLINE_RECORDED``; ``backend.sip2.offline.replay_offline`` sends
them later with no-block set.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, TypeVar

from backend.circulation.interface import (
    CheckinResult,
    CheckoutResult,
    FineView,
    HoldView,
    ItemInfo,
    LoanView,
    PatronAccount,
    PatronStatus,
    PaymentResult,
    RenewAllResult,
    RenewResult,
    Result,
    SystemStatus,
    Tristate,
)
from backend.circulation.messages import Bilingual, ReasonCode, message
from backend.circulation.model import HoldStatus, ItemStatus, SortHint
from backend.circulation.service import renew_all_result
from backend.sip2.client import Sip2Client
from backend.sip2.config import OfflineSettings
from backend.sip2.errors import Sip2ConnectionError, Sip2Error
from backend.sip2.fields import read_any_date
from backend.sip2.messages import (
    AlertType,
    CirculationStatus,
    PatronInformationResponse,
    PatronStatusFlags,
    Sip2Message,
    SummaryKind,
)
from backend.sip2.offline import OfflineJournal, OfflineKind, OfflineTransaction

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Result)

STATUS_FROM_CODE: dict[str, ItemStatus] = {
    CirculationStatus.AVAILABLE: ItemStatus.AVAILABLE,
    CirculationStatus.CHARGED: ItemStatus.ON_LOAN,
    CirculationStatus.CHARGED_NOT_RECALLABLE: ItemStatus.ON_LOAN,
    CirculationStatus.RECALLED: ItemStatus.ON_LOAN,
    CirculationStatus.CLAIMED_RETURNED: ItemStatus.ON_LOAN,
    CirculationStatus.WAITING_ON_HOLD_SHELF: ItemStatus.ON_HOLD_SHELF,
    CirculationStatus.WAITING_TO_BE_RESHELVED: ItemStatus.AVAILABLE,
    CirculationStatus.IN_TRANSIT: ItemStatus.IN_TRANSIT,
    CirculationStatus.IN_PROCESS: ItemStatus.IN_PROCESS,
    CirculationStatus.ON_ORDER: ItemStatus.IN_PROCESS,
    CirculationStatus.LOST: ItemStatus.LOST,
    CirculationStatus.MISSING: ItemStatus.MISSING,
}
_PATRON_BLOCKS = {ReasonCode.PATRON_EXPIRED, ReasonCode.PATRON_BLOCKED, ReasonCode.FINES_OVER_LIMIT}
_CHARGED = {CirculationStatus.CHARGED, CirculationStatus.CHARGED_NOT_RECALLABLE, CirculationStatus.RECALLED}


class Sip2Circulation:
    def __init__(self, client: Sip2Client, *, journal: OfflineJournal | None = None,
                 offline: OfflineSettings | None = None, clock: Callable[[], datetime] | None = None,
                 remember: int = 2048) -> None:
        self.client = client
        self.offline = offline if offline is not None else client.config.offline
        if self.offline.enabled and journal is None:
            raise ValueError("offline circulation needs a journal")
        self.journal = journal
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.currency = client.config.currency
        self._zone = client.codec.timezone
        self._results: OrderedDict[str, tuple[str, Result]] = OrderedDict()
        self._results_lock = threading.Lock()
        self._remember_max = remember

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ helpers

    def _text(self, answer: Sip2Message, reason: ReasonCode, ok: bool, **params: Any) -> Bilingual:
        """Both messages from an OpenShelf server; else a refusal quotes the library system's screen message."""
        vi, en = getattr(answer, "message_vi", None), getattr(answer, "message_en", None)
        if vi and en:
            return Bilingual(vi=vi, en=en)
        detail = _detail(answer)
        if not ok and detail and reason not in (ReasonCode.UNKNOWN_PATRON, ReasonCode.WRONG_PIN):
            return message(ReasonCode.LIBRARY_SYSTEM_REFUSED, detail=detail)
        return message(reason, currency=self.currency, **params)

    def _recall(self, key: str, operation: str, kind: type[R], **identity: Any) -> R | None:
        """The answer already given under ``key``; a key reused for another request gets DUPLICATE_REQUEST."""
        with self._results_lock:
            stored = self._results.get(key)
        if stored is None:
            return None
        if stored[0] == operation and isinstance(stored[1], kind):
            return stored[1]
        log.warning("idempotency key %s reused for a different request", key)
        return kind.model_validate({"ok": False, "reason": ReasonCode.DUPLICATE_REQUEST,
                                    "message": message(ReasonCode.DUPLICATE_REQUEST), **identity})

    def _remember(self, key: str, operation: str, result: Result) -> None:
        if result.reason is ReasonCode.SYSTEM_UNAVAILABLE:
            return  # nothing happened; a retry with the same key must really try again
        with self._results_lock:
            self._results[key] = (operation, result)
            while len(self._results) > self._remember_max:
                self._results.popitem(last=False)

    def _record_offline(self, tx: OfflineTransaction) -> None:
        assert self.journal is not None
        self.journal.append(tx)
        log.warning("library system unreachable: recorded offline %s %s", tx.kind.value, tx.tx_id)

    # ------------------------------------------------------------------ status

    def system_status(self) -> SystemStatus:
        try:
            answer = self.client.sc_status()
        except Sip2Error as exc:
            enabled = self.offline.enabled
            return SystemStatus(online=False, checkout_ok=enabled and self.offline.checkout,
                                checkin_ok=enabled and self.offline.checkin, renewal_ok=False, offline_ok=enabled,
                                detail=str(exc))
        return SystemStatus(online=answer.online_status, checkout_ok=answer.checkout_ok,
                            checkin_ok=answer.checkin_ok, renewal_ok=answer.acs_renewal_policy,
                            offline_ok=self.offline.enabled, institution_id=answer.institution_id,
                            library_name=answer.library_name or "", detail=_detail(answer))

    def patron_status(self, card_id: str, pin: str | None = None) -> PatronStatus:
        try:
            answer = self.client.patron_information(card_id, None, pin=pin)
        except Sip2Error as exc:
            return PatronStatus(card_id=card_id, found=False, **_unavailable(exc))
        return self._patron_status(card_id, pin, answer)

    def _patron_status(self, card_id: str, pin: str | None, answer: PatronInformationResponse) -> PatronStatus:
        flags = answer.patron_status
        found = answer.valid_patron if answer.valid_patron is not None else bool(answer.personal_name)
        pin_valid = None if pin is None else bool(answer.valid_patron_password)
        blocks = _blocks(flags)
        reason = _reason(answer.reason_code)
        if reason in _PATRON_BLOCKS and reason not in blocks:
            # The flags have no "expired" position; an OpenShelf server names the real reason.
            blocks = (reason, *(block for block in blocks if block is not ReasonCode.PATRON_BLOCKED))
        if reason is None:
            if not found:
                reason = ReasonCode.UNKNOWN_PATRON
            elif pin_valid is False:
                reason = ReasonCode.WRONG_PIN
            else:
                reason = blocks[0] if blocks else ReasonCode.PATRON_OK
        ok = found and pin_valid is not False
        fines = _decimal(answer.fee_amount)
        return PatronStatus(
            ok=ok, reason=reason, message=self._text(answer, reason, ok, amount=fines or Decimal(0)),
            detail=_detail(answer), card_id=card_id, found=found, name=answer.personal_name, pin_valid=pin_valid,
            may_borrow=ok and not flags.charge_privileges_denied, may_renew=ok and not flags.renewal_privileges_denied,
            blocks=blocks, fines_owed=fines, currency=answer.currency_type or self.currency,
            loans=answer.charged_items_count, overdue=answer.overdue_items_count,
            holds_ready=answer.hold_items_count,
        )

    def item_info(self, item_id: str) -> ItemInfo:
        try:
            answer = self.client.item_information(item_id)
        except Sip2Error as exc:
            return ItemInfo(item_id=item_id, found=False, **_unavailable(exc))
        reason = _reason(answer.reason_code)
        found = reason is not ReasonCode.UNKNOWN_ITEM and (
            bool(answer.title) or answer.circulation_status != CirculationStatus.OTHER)
        reason = reason or (ReasonCode.OK if found else ReasonCode.UNKNOWN_ITEM)
        return ItemInfo(
            ok=found, reason=reason, message=self._text(answer, reason, found), detail=_detail(answer),
            item_id=item_id, found=found, title=answer.title, status=STATUS_FROM_CODE.get(answer.circulation_status),
            due_at=read_any_date(answer.due_date, self._zone), hold_queue_length=answer.hold_queue_length,
            home_branch=answer.permanent_location or "", location=answer.current_location or "",
        )

    def patron_account(self, card_id: str) -> PatronAccount:
        try:
            return self._patron_account(card_id)
        except Sip2Error as exc:
            return PatronAccount(card_id=card_id, found=False, **_unavailable(exc))

    def _patron_account(self, card_id: str) -> PatronAccount:
        now = self.clock()
        charged = self.client.patron_information(card_id, SummaryKind.CHARGED_ITEMS)
        status = self._patron_status(card_id, None, charged)
        if not status.found:
            return PatronAccount(ok=False, reason=status.reason, message=status.message, detail=status.detail,
                                 card_id=card_id, found=False)
        loans = []
        for item_id in charged.charged_items:
            info = self.client.item_information(item_id)
            due = read_any_date(info.due_date, self._zone)
            loans.append(LoanView(item_id=item_id, title=info.title, due_at=due, overdue=due is not None and due < now))
        holds: list[HoldView] = []
        if charged.hold_items_count:
            ready = self.client.patron_information(card_id, SummaryKind.HOLD_ITEMS)
            holds += [HoldView(item_id=value, status=HoldStatus.READY) for value in ready.hold_items]
        if charged.unavailable_holds_count:
            waiting = self.client.patron_information(card_id, SummaryKind.UNAVAILABLE_HOLDS)
            holds += [HoldView(item_id=value, status=HoldStatus.PENDING) for value in waiting.unavailable_hold_items]
        fines: list[FineView] = []
        if charged.fine_items_count:
            listed = self.client.patron_information(card_id, SummaryKind.FINE_ITEMS)
            fines = [_fine_view(value) for value in listed.fine_items]
        return PatronAccount(ok=True, reason=ReasonCode.OK, message=message(ReasonCode.OK), card_id=card_id,
                             found=True, name=charged.personal_name, loans=tuple(loans), holds=tuple(holds),
                             fines=tuple(fines), fines_total=_decimal(charged.fee_amount),
                             currency=charged.currency_type or self.currency)

    # ------------------------------------------------------------------ checkout

    def checkout(self, card_id: str, item_id: str, *, idempotency_key: str, no_block: bool = False,
                 now: datetime | None = None) -> CheckoutResult:
        operation = f"checkout|{card_id}|{item_id}|{no_block}"
        earlier = self._recall(idempotency_key, operation, CheckoutResult, card_id=card_id, item_id=item_id)
        if earlier is not None:
            return earlier
        try:
            result = self._checkout(card_id, item_id, no_block, now)
        except Sip2Error as exc:
            result = self._checkout_offline(card_id, item_id, idempotency_key, no_block, now, exc)
        self._remember(idempotency_key, operation, result)
        return result

    def _checkout(self, card_id: str, item_id: str, no_block: bool, now: datetime | None) -> CheckoutResult:
        try:
            answer = self.client.checkout(card_id, item_id, no_block=no_block, now=now)
        except Sip2ConnectionError as exc:
            if not exc.maybe_processed:
                raise
            log.warning("link broke after checkout %s → %s was sent; checking before retrying", item_id, card_id)
            if self._is_charged_to(item_id, card_id):
                info = self.client.item_information(item_id)
                return CheckoutResult(ok=True, reason=ReasonCode.CHECKED_OUT, card_id=card_id, item_id=item_id,
                                      title=info.title, due_at=read_any_date(info.due_date, self._zone),
                                      desensitize=Tristate.UNKNOWN,
                                      message=message(ReasonCode.CHECKED_OUT,
                                                      due=read_any_date(info.due_date, self._zone)))
            answer = self.client.checkout(card_id, item_id, no_block=no_block, now=now)
        due = read_any_date(answer.due_date, self._zone)
        reason = _reason(answer.reason_code) or (
            ReasonCode.CHECKED_OUT if answer.ok else ReasonCode.LIBRARY_SYSTEM_REFUSED)
        return CheckoutResult(
            ok=answer.ok, reason=reason, message=self._text(answer, reason, answer.ok, due=due),
            detail=_detail(answer), card_id=card_id, item_id=item_id, title=answer.title,
            due_at=due if answer.ok else None, desensitize=answer.desensitize if answer.ok else Tristate.NO,
        )

    def _is_charged_to(self, item_id: str, card_id: str) -> bool:
        info = self.client.item_information(item_id)
        if info.circulation_status not in _CHARGED:
            return False
        loans = self.client.patron_information(card_id, SummaryKind.CHARGED_ITEMS)
        return item_id in loans.charged_items

    def _checkout_offline(self, card_id: str, item_id: str, key: str, no_block: bool, now: datetime | None,
                          exc: Sip2Error) -> CheckoutResult:
        if not (self.offline.enabled and self.offline.checkout) or no_block:
            log.warning("checkout %s → %s failed: %s", item_id, card_id, exc)
            return CheckoutResult(card_id=card_id, item_id=item_id, **_unavailable(exc))
        self._record_offline(OfflineTransaction(tx_id=key, kind=OfflineKind.ISSUE, at=now or self.clock(),
                                                card_id=card_id, item_id=item_id))
        return CheckoutResult(ok=True, reason=ReasonCode.OFFLINE_RECORDED,
                              message=message(ReasonCode.OFFLINE_RECORDED), detail=str(exc), card_id=card_id,
                              item_id=item_id, desensitize=self.offline.desensitize, offline=True)

    # ------------------------------------------------------------------ check-in

    def checkin(self, item_id: str, *, idempotency_key: str, no_block: bool = False,
                now: datetime | None = None, branch: str | None = None) -> CheckinResult:
        operation = f"checkin|{item_id}|{no_block}|{branch}"
        earlier = self._recall(idempotency_key, operation, CheckinResult, item_id=item_id)
        if earlier is not None:
            return earlier
        try:
            result = self._checkin(item_id, no_block, now, branch)
        except Sip2Error as exc:
            result = self._checkin_offline(item_id, idempotency_key, no_block, now, exc)
        self._remember(idempotency_key, operation, result)
        return result

    def _checkin(self, item_id: str, no_block: bool, now: datetime | None, branch: str | None) -> CheckinResult:
        try:
            answer = self.client.checkin(item_id, no_block=no_block, now=now, location=branch)
        except Sip2ConnectionError as exc:
            if not exc.maybe_processed:
                raise
            log.warning("link broke after check-in of %s was sent; checking before retrying", item_id)
            info = self.client.item_information(item_id)
            if info.circulation_status not in _CHARGED:
                return CheckinResult(ok=True, reason=ReasonCode.RETURNED, message=message(ReasonCode.RETURNED),
                                     item_id=item_id, title=info.title, resensitize=Tristate.YES)
            answer = self.client.checkin(item_id, no_block=no_block, now=now, location=branch)
        sort, hold_ready = _sort(answer.alert, answer.alert_type, answer.destination_location)
        reason = _reason(answer.reason_code) or _checkin_reason(answer.ok, sort)
        fine = _decimal(answer.fee_amount)
        text = self._text(answer, reason, answer.ok, branch=answer.destination_location or "")
        if fine and not (answer.message_vi and answer.message_en):
            text = text + message(ReasonCode.FINE_CHARGED, currency=answer.currency_type or self.currency,
                                  amount=fine)
        return CheckinResult(
            ok=answer.ok, reason=reason, message=text, detail=_detail(answer), item_id=item_id,
            title=answer.title or "", resensitize=answer.resensitize, fine_due=fine, sort=sort,
            destination=answer.destination_location, hold_ready=hold_ready,
            pickup_expires_at=read_any_date(answer.hold_pickup_date, self._zone),
        )

    def _checkin_offline(self, item_id: str, key: str, no_block: bool, now: datetime | None,
                         exc: Sip2Error) -> CheckinResult:
        if not (self.offline.enabled and self.offline.checkin) or no_block:
            log.warning("check-in of %s failed: %s", item_id, exc)
            return CheckinResult(item_id=item_id, resensitize=Tristate.UNKNOWN, **_unavailable(exc))
        self._record_offline(OfflineTransaction(tx_id=key, kind=OfflineKind.RETURN, at=now or self.clock(),
                                                item_id=item_id))
        return CheckinResult(ok=True, reason=ReasonCode.OFFLINE_RECORDED, message=message(ReasonCode.OFFLINE_RECORDED),
                             detail=str(exc), item_id=item_id, resensitize=Tristate.YES, offline=True,
                             sort=SortHint.HOLD_SHELF)

    # ------------------------------------------------------------------ renew

    def renew(self, card_id: str, item_id: str, *, now: datetime | None = None) -> RenewResult:
        try:
            answer = self.client.renew(card_id, item_id, now=now)
        except Sip2Error as exc:
            return RenewResult(card_id=card_id, item_id=item_id, **_unavailable(exc))
        due = read_any_date(answer.due_date, self._zone)
        reason = _reason(answer.reason_code) or (ReasonCode.RENEWED if answer.ok else ReasonCode.LIBRARY_SYSTEM_REFUSED)
        return RenewResult(ok=answer.ok, reason=reason, message=self._text(answer, reason, answer.ok, due=due),
                           detail=_detail(answer), card_id=card_id, item_id=item_id, title=answer.title,
                           due_at=due if answer.ok else None)

    def renew_all(self, card_id: str, *, now: datetime | None = None) -> RenewAllResult:
        try:
            loans = self.client.patron_information(card_id, SummaryKind.CHARGED_ITEMS)
        except Sip2Error as exc:
            return RenewAllResult(card_id=card_id, **_unavailable(exc))
        if loans.valid_patron is False:
            return RenewAllResult(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                  message=message(ReasonCode.UNKNOWN_PATRON), card_id=card_id)
        return renew_all_result(card_id, [self.renew(card_id, item_id, now=now) for item_id in loans.charged_items])

    # ------------------------------------------------------------------ payments

    def record_payment(self, card_id: str, amount: Decimal, *, idempotency_key: str, fee_id: str | None = None,
                       now: datetime | None = None) -> PaymentResult:
        operation = f"payment|{card_id}|{amount}|{fee_id}"
        earlier = self._recall(idempotency_key, operation, PaymentResult, card_id=card_id, amount=amount)
        if earlier is not None:
            return earlier
        try:
            # BK carries the key, so a server that remembers transaction ids (OpenShelf does) never books twice.
            answer = self.client.fee_paid(card_id, amount, fee_id=fee_id, transaction_id=idempotency_key[:64],
                                          now=now)
        except Sip2Error as exc:
            return PaymentResult(card_id=card_id, amount=amount, **_unavailable(exc))
        reason = _reason(answer.reason_code) or (
            ReasonCode.PAYMENT_RECORDED if answer.payment_accepted else ReasonCode.LIBRARY_SYSTEM_REFUSED)
        result = PaymentResult(
            ok=answer.payment_accepted, reason=reason,
            message=self._text(answer, reason, answer.payment_accepted, amount=amount), detail=_detail(answer),
            card_id=card_id, amount=amount, transaction_id=answer.transaction_id,
        )
        self._remember(idempotency_key, operation, result)
        return result


# --------------------------------------------------------------------------- translation helpers


def _detail(answer: Sip2Message) -> str | None:
    lines = getattr(answer, "screen_message", ())
    return " ".join(line for line in lines if line).strip() or None


def _reason(code: str | None) -> ReasonCode | None:
    if not code:
        return None
    try:
        return ReasonCode(code)
    except ValueError:
        return None


def _decimal(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


def _blocks(flags: PatronStatusFlags) -> tuple[ReasonCode, ...]:
    blocks: list[ReasonCode] = []
    if flags.excessive_outstanding_fines or flags.excessive_outstanding_fees:
        blocks.append(ReasonCode.FINES_OVER_LIMIT)
    if flags.too_many_items_charged:
        blocks.append(ReasonCode.MAX_LOANS_REACHED)
    if flags.charge_privileges_denied and not blocks:
        blocks.append(ReasonCode.PATRON_BLOCKED)
    return tuple(blocks)


def _sort(alert: bool, alert_type: str | None, destination: str | None) -> tuple[SortHint, bool]:
    if alert_type == AlertType.HOLD_THIS_LIBRARY:
        return SortHint.HOLD_SHELF, True
    if alert_type == AlertType.HOLD_OTHER_LIBRARY:
        return SortHint.TRANSIT, True
    if alert_type == AlertType.SEND_TO_OTHER_LIBRARY or (alert and destination):
        return SortHint.TRANSIT, False
    if alert and alert_type not in (None, "00"):
        return SortHint.HOLD_SHELF, False  # unknown alert: let staff look at it
    return SortHint.SHELVE, False


def _checkin_reason(ok: bool, sort: SortHint) -> ReasonCode:
    if not ok:
        return ReasonCode.LIBRARY_SYSTEM_REFUSED
    return {SortHint.HOLD_SHELF: ReasonCode.RETURNED_HOLD_HERE,
            SortHint.TRANSIT: ReasonCode.RETURNED_TRANSIT}.get(sort, ReasonCode.RETURNED)


def _fine_view(text: str) -> FineView:
    head, _, rest = text.partition(" ")
    amount = _decimal(head)
    return FineView(amount=amount, description=rest if amount is not None else text)


def _unavailable(exc: Exception) -> dict[str, Any]:
    return {"ok": False, "reason": ReasonCode.SYSTEM_UNAVAILABLE, "message": message(ReasonCode.SYSTEM_UNAVAILABLE),
            "detail": str(exc)}
