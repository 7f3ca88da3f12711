"""What the backend answers a kiosk: one CirculationRequest in, one CirculationReply out.

Rules the answers follow:

* Only opaque ids and codes leave the backend: no names, no addresses
  (``has_email`` says whether a receipt can be e-mailed; the address itself is
  fetched over HTTP by the kiosk, for the session, when the patron asks).
* ``identify`` checks the card and, when the kiosk's settings require it, the
  PIN; a wrong PIN says only that (the card's other problems are not revealed
  to someone who does not know the PIN), and too many wrong PINs for one card at
  one kiosk lock it for a while. An expired or blocked card is refused; a patron
  over the fine limit or the loan limit may still sign in (to see the account,
  to return, to renew what the rules allow) and hears why checkouts will fail.
* A successful identify opens a session bound to that kiosk; checkout, renew,
  renew_all and account need it. Offline replays (``no_block``) may instead
  carry the card id, because the kiosk could not open a session while offline;
  they are applied at ``occurred_at``.
* Checkout and check-in are idempotent per kiosk and ``idempotency_key`` (the
  key reaches the circulation, so a replay after a backend restart still gets
  the first answer); the other requests are answered once per key from memory.
* Every refusal has a code and both languages.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable, Mapping

from backend.circulation.interface import (
    CheckinResult,
    CheckoutResult,
    Circulation,
    PatronAccount,
    Result,
    Tristate,
)
from backend.circulation.messages import Bilingual, ReasonCode, message
from backend.kiosk_sessions import KioskSessions
from backend.rate_limit import LoginRateLimiter
from openshelf.contract import (
    CirculationOp,
    CirculationReply,
    CirculationRequest,
    HoldLine,
    LoanLine,
    new_event_id,
    utcnow,
)
from openshelf.site import KioskSettings

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request"
SESSION_EXPIRED = "session_expired"
PIN_REQUIRED = "pin_required"
TOO_MANY_ATTEMPTS = "too_many_attempts"
KIOSK_TEXTS: dict[str, Bilingual] = {
    INVALID_REQUEST: Bilingual(vi="Yêu cầu không hợp lệ. Vui lòng liên hệ quầy thủ thư.",
                               en="The request is not valid. Please see the staff at the desk."),
    SESSION_EXPIRED: Bilingual(vi="Phiên làm việc đã kết thúc. Vui lòng quét lại thẻ bạn đọc.",
                               en="Your session has ended. Please scan your library card again."),
    PIN_REQUIRED: Bilingual(vi="Vui lòng nhập mã PIN.", en="Please enter your PIN."),
    TOO_MANY_ATTEMPTS: Bilingual(
        vi="Nhập sai mã PIN quá nhiều lần. Vui lòng thử lại sau hoặc liên hệ quầy thủ thư.",
        en="Too many wrong PINs. Please try again later or see the staff at the desk."),
}
_REFUSED_AT_SIGN_IN = {ReasonCode.PATRON_EXPIRED, ReasonCode.PATRON_BLOCKED}
_REMEMBERED_REPLIES = 4096
# An offline replay is applied when it happened, but never in the future nor further back than this.
MAX_REPLAY_AGE = timedelta(days=30)
PIN_FAILURES, PIN_WINDOW_S = 5, 900.0


def tristate_flag(value: Tristate) -> bool | None:
    """Y/N become a flag; U (the library system does not say) stays unknown: the kiosk's policy decides."""
    if value is Tristate.UNKNOWN:
        return None
    return value is Tristate.YES


class KioskAnswers:
    """Turns kiosk requests into circulation calls and replies (no MQTT here; see backend.kiosk_service)."""

    def __init__(self, circulation: Circulation, sessions: KioskSessions, kiosks: Mapping[str, KioskSettings], *,
                 email_of: Callable[[str], str | None] = lambda card_id: None,
                 limiter: LoginRateLimiter | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._circulation = circulation
        self._sessions = sessions
        self._kiosks = kiosks
        self._email_of = email_of
        self._limiter = limiter or LoginRateLimiter(max_failures=PIN_FAILURES, window_s=PIN_WINDOW_S)
        self._clock = clock
        self._replies: OrderedDict[tuple[str, str], tuple[CirculationOp, CirculationReply]] = OrderedDict()
        self._replies_lock = threading.Lock()
        self._handlers: dict[CirculationOp, Callable[[CirculationRequest], CirculationReply]] = {
            CirculationOp.IDENTIFY: self._identify, CirculationOp.CHECKOUT: self._checkout,
            CirculationOp.CHECKIN: self._checkin, CirculationOp.RENEW: self._renew,
            CirculationOp.RENEW_ALL: self._renew_all, CirculationOp.ACCOUNT: self._account,
            CirculationOp.END_SESSION: self._end_session,
        }

    def knows(self, kiosk_id: str) -> bool:
        return kiosk_id in self._kiosks

    # ------------------------------------------------------------------ entry point

    def answer(self, request: CirculationRequest) -> CirculationReply:
        """The reply to ``request`` (never raises: a failure becomes a ``system_unavailable`` reply)."""
        key = (request.kiosk_id, request.idempotency_key)
        with self._replies_lock:
            earlier = self._replies.get(key)
        if earlier is not None:
            op, reply = earlier
            if op is not request.op:
                log.warning("kiosk %s reused idempotency key %s for %s", request.kiosk_id,
                            request.idempotency_key, request.op.value)
                return self._refusal(request, ReasonCode.DUPLICATE_REQUEST.value,
                                     _text(ReasonCode.DUPLICATE_REQUEST))
            return reply.model_copy(update={"correlation_id": request.correlation_id, "event_id": new_event_id(),
                                            "sent_at": utcnow()})
        try:
            reply = self._handlers[request.op](request)
        except Exception:  # noqa: BLE001 - a kiosk must always get an answer; the log has the details
            log.exception("kiosk %s: %s failed", request.kiosk_id, request.op.value)
            return self._refusal(request, ReasonCode.SYSTEM_UNAVAILABLE.value, _text(ReasonCode.SYSTEM_UNAVAILABLE))
        if reply.code != ReasonCode.SYSTEM_UNAVAILABLE.value:  # nothing happened: a retry must really try
            with self._replies_lock:
                self._replies[key] = (request.op, reply)
                while len(self._replies) > _REMEMBERED_REPLIES:
                    self._replies.popitem(last=False)
        return reply

    # ------------------------------------------------------------------ operations

    def _identify(self, request: CirculationRequest) -> CirculationReply:
        card_id = request.card_id
        if not card_id:
            return self._refusal(request, INVALID_REQUEST, KIOSK_TEXTS[INVALID_REQUEST])
        settings = self._kiosks[request.kiosk_id]
        if settings.require_pin and not request.pin:
            return self._refusal(request, PIN_REQUIRED, KIOSK_TEXTS[PIN_REQUIRED])
        if request.pin and self._limiter.retry_after(card_id, request.kiosk_id) > 0:
            return self._refusal(request, TOO_MANY_ATTEMPTS, KIOSK_TEXTS[TOO_MANY_ATTEMPTS])
        status = self._circulation.patron_status(card_id, request.pin or None)
        if status.pin_valid is False:
            self._limiter.failed(card_id, request.kiosk_id)
            return self._refusal(request, ReasonCode.WRONG_PIN.value, _text(ReasonCode.WRONG_PIN))
        if not status.found or not status.ok:
            return self._from_result(request, status)
        if request.pin:
            self._limiter.succeeded(card_id, request.kiosk_id)
        refused = [block for block in status.blocks if block in _REFUSED_AT_SIGN_IN]
        if refused:
            return self._from_result(request, status, ok=False)
        session_id = self._sessions.open(request.kiosk_id, card_id)
        account = self._circulation.patron_account(card_id)
        return self._reply(request, ok=True, code=status.reason.value, text=status.message, session_id=session_id,
                           has_email=self._email_of(card_id) is not None,
                           fines_due=_amount(status.fines_owed), **self._account_lines(account))

    def _checkout(self, request: CirculationRequest) -> CirculationReply:
        card_id = self._card_for(request)
        if card_id is None or not request.item_id:
            return self._no_session(request)
        result = self._circulation.checkout(card_id, request.item_id, idempotency_key=self._key(request),
                                            no_block=request.no_block, now=self._when(request))
        return self._from_checkout(request, result)

    def _checkin(self, request: CirculationRequest) -> CirculationReply:
        if not request.item_id:
            return self._refusal(request, INVALID_REQUEST, KIOSK_TEXTS[INVALID_REQUEST])
        if request.session_id:
            self._sessions.get(request.session_id, request.kiosk_id)  # a return keeps the session alive
        result = self._circulation.checkin(request.item_id, idempotency_key=self._key(request),
                                           no_block=request.no_block, now=self._when(request))
        return self._from_checkin(request, result)

    def _renew(self, request: CirculationRequest) -> CirculationReply:
        card_id = self._card_for(request)
        if card_id is None or not request.item_id:
            return self._no_session(request)
        result = self._circulation.renew(card_id, request.item_id, now=self._when(request))
        return self._from_result(request, result, item_id=request.item_id, due_at=result.due_at)

    def _renew_all(self, request: CirculationRequest) -> CirculationReply:
        card_id = self._card_for(request)
        if card_id is None:
            return self._no_session(request)
        result = self._circulation.renew_all(card_id, now=self._when(request))
        account = self._circulation.patron_account(card_id)
        return self._from_result(request, result, **self._account_lines(account))

    def _account(self, request: CirculationRequest) -> CirculationReply:
        card_id = self._card_for(request)
        if card_id is None:
            return self._no_session(request)
        account = self._circulation.patron_account(card_id)
        if not account.ok:
            return self._from_result(request, account)
        return self._from_result(request, account, has_email=self._email_of(card_id) is not None,
                                 fines_due=_amount(account.fines_total), **self._account_lines(account))

    def _end_session(self, request: CirculationRequest) -> CirculationReply:
        self._sessions.end(request.session_id, request.kiosk_id)
        return self._reply(request, ok=True, code=ReasonCode.OK.value, text=_text(ReasonCode.OK))

    # ------------------------------------------------------------------ helpers

    def _card_for(self, request: CirculationRequest) -> str | None:
        """The card a request acts for: its live session's, or (offline replays only) the card it carries."""
        session = self._sessions.get(request.session_id, request.kiosk_id)
        if session is not None:
            if request.card_id and request.card_id != session.card_id:
                log.warning("kiosk %s sent a card with the session of another card; refused", request.kiosk_id)
                return None
            return session.card_id
        if request.no_block and request.card_id:
            return request.card_id
        return None

    def _no_session(self, request: CirculationRequest) -> CirculationReply:
        if not request.item_id and request.op in (CirculationOp.CHECKOUT, CirculationOp.RENEW):
            return self._refusal(request, INVALID_REQUEST, KIOSK_TEXTS[INVALID_REQUEST])
        return self._refusal(request, SESSION_EXPIRED, KIOSK_TEXTS[SESSION_EXPIRED])

    @staticmethod
    def _key(request: CirculationRequest) -> str:
        return f"kiosk:{request.kiosk_id}:{request.idempotency_key}"

    def _when(self, request: CirculationRequest) -> datetime | None:
        """When an offline replay happened (bounded); None (now) for everything else."""
        if not request.no_block:
            return None
        now = self._clock()
        return min(max(request.occurred_at, now - MAX_REPLAY_AGE), now).astimezone()

    def _account_lines(self, account: PatronAccount) -> dict[str, list]:
        if not account.ok:
            return {}
        loans = []
        for loan in account.loans:
            due_at = loan.due_at or self._circulation.item_info(loan.item_id).due_at
            if due_at is not None:
                loans.append(LoanLine(item_id=loan.item_id, due_at=due_at, renewals=loan.renewals or 0,
                                      overdue=loan.overdue))
        holds = [HoldLine(item_id=hold.item_id or hold.record_id or "", ready=hold.status.value == "ready",
                          pickup_by=hold.pickup_expires_at)
                 for hold in account.holds if hold.item_id or hold.record_id]
        return {"loans": loans, "holds": holds}

    def _from_checkout(self, request: CirculationRequest, result: CheckoutResult) -> CirculationReply:
        return self._from_result(request, result, item_id=result.item_id, due_at=result.due_at,
                                 desensitize=tristate_flag(result.desensitize) if result.ok else False)

    def _from_checkin(self, request: CirculationRequest, result: CheckinResult) -> CirculationReply:
        return self._from_result(request, result, item_id=result.item_id,
                                 resensitize=tristate_flag(result.resensitize),
                                 sort_hint=result.sort.value if result.ok else None,
                                 fines_due=_amount(result.fine_due) if result.fine_due else None)

    def _from_result(self, request: CirculationRequest, result: Result, *, ok: bool | None = None,
                     **fields: object) -> CirculationReply:
        return self._reply(request, ok=result.ok if ok is None else ok, code=result.reason.value,
                           text=result.message, **fields)

    def _refusal(self, request: CirculationRequest, code: str, text: Bilingual) -> CirculationReply:
        return self._reply(request, ok=False, code=code, text=text, item_id=request.item_id)

    @staticmethod
    def _reply(request: CirculationRequest, *, ok: bool, code: str, text: Bilingual,
               **fields: object) -> CirculationReply:
        return CirculationReply(correlation_id=request.correlation_id, ok=ok, code=code, message_vi=text.vi,
                                message_en=text.en, **fields)


def _text(code: ReasonCode) -> Bilingual:
    return message(code)


def _amount(value: object) -> str | None:
    return None if value is None else str(value)
