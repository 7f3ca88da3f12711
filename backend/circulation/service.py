"""The standalone circulation: the decisions of :mod:`decide` applied to a store.

Each call is one store transaction: it reads the facts, asks the pure decision
function, writes the changes and remembers the result under its idempotency
key, all or nothing.  Works over any :class:`~backend.circulation.store.CirculationStore`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Callable, Protocol, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.circulation.decide import (
    accrued_fines,
    allocate_payment,
    compute_fine,
    decide_checkin,
    decide_checkout,
    decide_renew,
    patron_refusals,
)
from backend.circulation.errors import InvalidRequestError
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
from backend.circulation.messages import ReasonCode, message
from backend.circulation.model import (
    FineFacts,
    HoldFacts,
    HoldStatus,
    ItemFacts,
    ItemStatus,
    LoanFacts,
    PatronFacts,
    RuleSet,
)
from backend.circulation.store import CirculationStore, StoredResult, StoreSession

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Result)


class PinHasher(Protocol):
    def hash(self, secret: str) -> str: ...
    def verify(self, stored_hash: str, secret: str) -> bool: ...


class Argon2PinHasher:
    """Argon2id PIN hashing; a wrong PIN or a broken hash both verify as False."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def local_now() -> datetime:
    return datetime.now().astimezone()


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


class StoreCirculation:
    """:class:`~backend.circulation.interface.Circulation` over a store (standalone mode)."""

    def __init__(self, store: CirculationStore, *, branch: str = "", institution_id: str = "",
                 library_name: str = "", clock: Callable[[], datetime] | None = None,
                 pin_hasher: PinHasher | None = None) -> None:
        self._store = store
        self.branch = branch
        self.institution_id = institution_id
        self.library_name = library_name
        self.clock = clock or local_now
        self.pin_hasher: PinHasher = pin_hasher or Argon2PinHasher()

    def close(self) -> None:
        """Nothing to release; the store belongs to whoever built it."""

    def _now(self, now: datetime | None) -> datetime:
        value = now or self.clock()
        if value.tzinfo is None:
            raise InvalidRequestError("'now' must be timezone-aware")
        return value

    # ------------------------------------------------------------------ status and lookups

    def system_status(self) -> SystemStatus:
        return SystemStatus(online=True, checkout_ok=True, checkin_ok=True, renewal_ok=True, offline_ok=False,
                            institution_id=self.institution_id, library_name=self.library_name)

    def patron_status(self, card_id: str, pin: str | None = None) -> PatronStatus:
        now = self._now(None)

        def read(session: StoreSession) -> tuple[PatronFacts, str | None, list[LoanFacts], list[HoldFacts],
                                                 RuleSet] | None:
            patron = session.patron_by_card(card_id)
            if patron is None:
                return None
            return (patron, session.pin_hash(patron.patron_id), session.open_loans_of(patron.patron_id),
                    session.holds_of(patron.patron_id), session.rules())

        facts = self._store.run(read)
        if facts is None:
            return PatronStatus(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                message=message(ReasonCode.UNKNOWN_PATRON), card_id=card_id, found=False)
        patron, pin_hash, loans, holds, rules = facts
        pin_valid = None if pin is None else (pin_hash is not None and self.pin_hasher.verify(pin_hash, pin))
        blocks = patron_refusals(patron, loans, rules, now)
        total_rule = rules.category_rule(patron.category)
        may_borrow = not blocks and len(loans) < total_rule.max_loans
        if pin_valid is False:
            reason = ReasonCode.WRONG_PIN
        elif blocks:
            reason = blocks[0]
        elif not may_borrow:
            reason = ReasonCode.MAX_LOANS_REACHED
        else:
            reason = ReasonCode.PATRON_OK
        owed = patron.fines_owed + accrued_fines(loans, rules, now)
        text = message(reason, currency=rules.currency, date=patron.expires_on, limit=total_rule.max_loans,
                       amount=owed)
        return PatronStatus(
            ok=pin_valid is not False, reason=reason, message=text, card_id=card_id, found=True,
            name=patron.name, pin_valid=pin_valid, may_borrow=may_borrow and pin_valid is not False,
            may_renew=not blocks and pin_valid is not False, blocks=blocks, expires_on=patron.expires_on,
            fines_owed=owed, currency=rules.currency,
            loans=len(loans), overdue=sum(1 for loan in loans if loan.due_at < now),
            holds_ready=sum(1 for hold in holds if hold.status is HoldStatus.READY),
        )

    def item_info(self, item_id: str) -> ItemInfo:
        def read(session: StoreSession) -> tuple[ItemFacts, LoanFacts | None, list[HoldFacts]] | None:
            item = session.item(item_id)
            if item is None:
                return None
            return item, session.open_loan(item_id), session.holds_for_item(item)

        facts = self._store.run(read)
        if facts is None:
            return ItemInfo(ok=False, reason=ReasonCode.UNKNOWN_ITEM, message=message(ReasonCode.UNKNOWN_ITEM),
                            item_id=item_id, found=False)
        item, loan, holds = facts
        return ItemInfo(
            ok=True, reason=ReasonCode.OK, message=message(ReasonCode.OK), item_id=item_id, found=True,
            title=item.title, author=item.author, item_type=item.item_type, status=item.status,
            due_at=loan.due_at if loan else None, hold_queue_length=len(holds),
            in_library_only=item.in_library_only, home_branch=item.home_branch, location=item.location,
        )

    def patron_account(self, card_id: str) -> PatronAccount:
        now = self._now(None)
        facts = self._store.run(lambda session: _account_facts(session, card_id))
        if facts is None:
            return PatronAccount(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                 message=message(ReasonCode.UNKNOWN_PATRON), card_id=card_id, found=False)
        patron, rules, loans, titles, holds, hold_titles, fines = facts
        loan_views = tuple(
            LoanView(item_id=loan.item_id, title=titles[loan.item_id], due_at=loan.due_at, overdue=loan.due_at < now,
                     renewals=loan.renewals,
                     fine_accruing=compute_fine(loan, rules.rule_for(loan.patron_category, loan.item_type), now))
            for loan in loans
        )
        hold_views = tuple(
            HoldView(hold_id=hold.hold_id, item_id=hold.item_id, record_id=hold.record_id,
                     title=hold_titles[hold.hold_id], status=hold.status, pickup_branch=hold.pickup_branch,
                     pickup_expires_at=hold.pickup_expires_at)
            for hold in holds
        )
        fine_views = tuple(FineView(fine_id=fine.fine_id, amount=fine.amount, description=fine.description,
                                    item_id=fine.item_id) for fine in fines)
        total = patron.fines_owed + sum((view.fine_accruing or Decimal(0) for view in loan_views), Decimal(0))
        return PatronAccount(ok=True, reason=ReasonCode.OK, message=message(ReasonCode.OK), card_id=card_id,
                             found=True, name=patron.name, loans=loan_views, holds=hold_views, fines=fine_views,
                             fines_total=total, currency=rules.currency)

    # ------------------------------------------------------------------ transactions

    def checkout(self, card_id: str, item_id: str, *, idempotency_key: str, no_block: bool = False,
                 now: datetime | None = None) -> CheckoutResult:
        now = self._now(now)
        fingerprint = _fingerprint("checkout", card_id, item_id, no_block)
        result, new = self._store.run(self._once(
            idempotency_key, "checkout", fingerprint, CheckoutResult, {"card_id": card_id, "item_id": item_id},
            lambda session: self._checkout(session, card_id, item_id, no_block, now)))
        if new and result.overridden:
            log.info("checkout of %s to %s overrode %s", item_id, card_id, [code.value for code in result.overridden])
        return result

    def _checkout(self, session: StoreSession, card_id: str, item_id: str, no_block: bool,
                  now: datetime) -> CheckoutResult:
        base = {"card_id": card_id, "item_id": item_id}
        patron = session.patron_by_card(card_id)
        if patron is None:
            return CheckoutResult(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                  message=message(ReasonCode.UNKNOWN_PATRON), **base)
        item = session.item(item_id, for_update=True)
        if item is None:
            return CheckoutResult(ok=False, reason=ReasonCode.UNKNOWN_ITEM,
                                  message=message(ReasonCode.UNKNOWN_ITEM), **base)
        rules = session.rules()
        loans = session.open_loans_of(patron.patron_id)
        item_loan = session.open_loan(item_id)
        holds = session.holds_for_item(item)
        decision = decide_checkout(patron, item, loans, holds, rules, now, item_loan=item_loan, no_block=no_block)
        if not decision.allowed:
            return CheckoutResult(ok=False, reason=decision.reason, message=decision.message, title=item.title, **base)
        assert decision.due_at is not None
        if decision.renews_existing and item_loan is not None:
            session.replace_loan(item_loan.model_copy(update={"due_at": decision.due_at,
                                                              "renewals": item_loan.renewals + 1}))
        else:
            if item_loan is not None:
                self._close_loan(session, item_loan, rules, now)
            session.add_loan(LoanFacts(item_id=item_id, patron_id=patron.patron_id, patron_category=patron.category,
                                       item_type=item.item_type, checked_out_at=now, due_at=decision.due_at,
                                       branch=self.branch))
            session.set_item_status(item_id, ItemStatus.ON_LOAN)
        if decision.fills_hold is not None:
            session.end_hold(decision.fills_hold, "filled", now)
        return CheckoutResult(
            ok=True, reason=decision.reason, message=decision.message, title=item.title, due_at=decision.due_at,
            desensitize=Tristate.YES if decision.desensitize else Tristate.NO, overridden=decision.overridden, **base,
        )

    def _close_loan(self, session: StoreSession, loan: LoanFacts, rules: RuleSet, now: datetime) -> Decimal:
        fine = compute_fine(loan, rules.rule_for(loan.patron_category, loan.item_type), now)
        session.close_loan(loan.item_id, now)
        if fine > 0:
            session.add_fine(FineFacts(fine_id=uuid.uuid4().hex, patron_id=loan.patron_id, amount=fine,
                                       kind="overdue", item_id=loan.item_id, created_at=now,
                                       description=f"overdue {loan.item_id}"))
        return fine

    def checkin(self, item_id: str, *, idempotency_key: str, no_block: bool = False,
                now: datetime | None = None, branch: str | None = None) -> CheckinResult:
        now = self._now(now)
        here = self.branch if branch is None else branch
        fingerprint = _fingerprint("checkin", item_id, no_block, here)
        result, _ = self._store.run(self._once(
            idempotency_key, "checkin", fingerprint, CheckinResult, {"item_id": item_id},
            lambda session: self._checkin(session, item_id, now, here)))
        return result

    def _checkin(self, session: StoreSession, item_id: str, now: datetime, branch: str) -> CheckinResult:
        item = session.item(item_id, for_update=True)
        if item is None:
            return CheckinResult(ok=False, reason=ReasonCode.UNKNOWN_ITEM, message=message(ReasonCode.UNKNOWN_ITEM),
                                 item_id=item_id, resensitize=Tristate.UNKNOWN)
        rules = session.rules()
        loan = session.open_loan(item_id)
        decision = decide_checkin(item, loan, session.holds_for_item(item), rules, now, branch=branch)
        if loan is not None:
            self._close_loan(session, loan, rules, now)
        if decision.trap_hold is not None:
            session.save_hold(decision.trap_hold)
        session.set_item_status(item_id, decision.item_status_after)
        trapped = decision.trap_hold
        return CheckinResult(
            ok=True, reason=decision.reason, message=decision.message, item_id=item_id, title=item.title,
            resensitize=Tristate.YES, fine_due=decision.fine_due, sort=decision.sort,
            destination=decision.destination, hold_ready=trapped is not None,
            pickup_expires_at=trapped.pickup_expires_at if trapped else None,
        )

    def renew(self, card_id: str, item_id: str, *, now: datetime | None = None) -> RenewResult:
        now = self._now(now)

        def transaction(session: StoreSession) -> RenewResult:
            patron = session.patron_by_card(card_id)
            if patron is None:
                return RenewResult(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                   message=message(ReasonCode.UNKNOWN_PATRON), card_id=card_id, item_id=item_id)
            return self._renew(session, patron, card_id, item_id, now)

        return self._store.run(transaction)

    def _renew(self, session: StoreSession, patron: PatronFacts, card_id: str, item_id: str,
               now: datetime) -> RenewResult:
        base = {"card_id": card_id, "item_id": item_id}
        item = session.item(item_id, for_update=True)
        if item is None:
            return RenewResult(ok=False, reason=ReasonCode.UNKNOWN_ITEM, message=message(ReasonCode.UNKNOWN_ITEM),
                               **base)
        rules = session.rules()
        loan = session.open_loan(item_id)
        decision = decide_renew(patron, item, loan, session.holds_for_item(item), rules, now,
                                patron_loans=session.open_loans_of(patron.patron_id))
        if not decision.allowed or loan is None or decision.due_at is None:
            return RenewResult(ok=False, reason=decision.reason, message=decision.message, title=item.title, **base)
        renewals = decision.renewals_after or loan.renewals + 1
        session.replace_loan(loan.model_copy(update={"due_at": decision.due_at, "renewals": renewals}))
        limit = rules.rule_for(patron.category, item.item_type).max_renewals
        return RenewResult(ok=True, reason=decision.reason, message=decision.message, title=item.title,
                           due_at=decision.due_at, renewals_left=max(0, limit - renewals), **base)

    def renew_all(self, card_id: str, *, now: datetime | None = None) -> RenewAllResult:
        now = self._now(now)

        def transaction(session: StoreSession) -> RenewAllResult:
            patron = session.patron_by_card(card_id)
            if patron is None:
                return RenewAllResult(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                      message=message(ReasonCode.UNKNOWN_PATRON), card_id=card_id)
            loans = sorted(session.open_loans_of(patron.patron_id), key=lambda loan: loan.due_at)
            return renew_all_result(card_id, [self._renew(session, patron, card_id, loan.item_id, now)
                                              for loan in loans])

        return self._store.run(transaction)

    def record_payment(self, card_id: str, amount: Decimal, *, idempotency_key: str, fee_id: str | None = None,
                       now: datetime | None = None) -> PaymentResult:
        now = self._now(now)
        fingerprint = _fingerprint("payment", card_id, amount, fee_id)
        result, _ = self._store.run(self._once(
            idempotency_key, "payment", fingerprint, PaymentResult, {"card_id": card_id, "amount": amount},
            lambda session: self._pay(session, card_id, amount, fee_id, idempotency_key, now)))
        return result

    def _pay(self, session: StoreSession, card_id: str, amount: Decimal, fee_id: str | None, reference: str,
             now: datetime) -> PaymentResult:
        base = {"card_id": card_id, "amount": amount}
        patron = session.patron_by_card(card_id)
        if patron is None:
            return PaymentResult(ok=False, reason=ReasonCode.UNKNOWN_PATRON,
                                 message=message(ReasonCode.UNKNOWN_PATRON), **base)
        fines = session.fines_of(patron.patron_id)
        if fee_id is not None:
            fines = [fine for fine in fines if fine.fine_id == fee_id]
        owed = sum((fine.amount for fine in fines), Decimal(0))
        if amount <= 0 or amount > owed:
            return PaymentResult(ok=False, reason=ReasonCode.INVALID_AMOUNT,
                                 message=message(ReasonCode.INVALID_AMOUNT), **base)
        for fine in allocate_payment(fines, amount):
            session.update_fine(fine)
        transaction_id = session.add_payment(patron.patron_id, amount, now, reference)
        currency = session.rules().currency
        return PaymentResult(ok=True, reason=ReasonCode.PAYMENT_RECORDED, transaction_id=transaction_id,
                             message=message(ReasonCode.PAYMENT_RECORDED, currency=currency, amount=amount), **base)

    # ------------------------------------------------------------------ idempotency

    def _once(self, key: str, operation: str, fingerprint: str, kind: type[R], identity: dict[str, object],
              act: Callable[[StoreSession], R]) -> Callable[[StoreSession], tuple[R, bool]]:
        """The transaction of an idempotent call: the remembered answer, or ``act`` and remember its answer.

        Returns (result, new); the key is checked before the transaction starts, so a missing one fails fast.
        """
        if not key:
            raise InvalidRequestError("an idempotency key is required")

        def transaction(session: StoreSession) -> tuple[R, bool]:
            earlier = self._recall(session, key, operation, fingerprint, kind, **identity)
            if earlier is not None:
                return earlier, False
            fresh = act(session)
            self._remember(session, key, operation, fingerprint, fresh)
            return fresh, True

        return transaction

    @staticmethod
    def _recall(session: StoreSession, key: str, operation: str, fingerprint: str, kind: type[R],
                **identity: object) -> R | None:
        if not key:
            raise InvalidRequestError("an idempotency key is required")
        stored = session.recall(key)
        if stored is None:
            return None
        if stored.operation == operation and stored.fingerprint == fingerprint:
            return kind.model_validate_json(stored.result_json)
        log.warning("idempotency key %s reused for a different %s", key, operation)
        return kind.model_validate({"ok": False, "reason": ReasonCode.DUPLICATE_REQUEST,
                                    "message": message(ReasonCode.DUPLICATE_REQUEST), **identity})

    @staticmethod
    def _remember(session: StoreSession, key: str, operation: str, fingerprint: str, result: Result) -> None:
        session.remember(key, StoredResult(operation=operation, fingerprint=fingerprint,
                                           result_json=result.model_dump_json()))


AccountFacts = tuple[PatronFacts, RuleSet, list[LoanFacts], dict[str, str], list[HoldFacts], dict[str, str],
                     list[FineFacts]]


def _account_facts(session: StoreSession, card_id: str) -> AccountFacts | None:
    """What an account view shows, read in one transaction (None: unknown card)."""
    patron = session.patron_by_card(card_id)
    if patron is None:
        return None
    rules = session.rules()
    loans = sorted(session.open_loans_of(patron.patron_id), key=lambda loan: loan.due_at)
    titles = {loan.item_id: _title(session.item(loan.item_id)) for loan in loans}
    holds = sorted(session.holds_of(patron.patron_id), key=lambda hold: hold.placed_at)
    hold_titles = {hold.hold_id: _title(session.item(hold.item_id)) if hold.item_id else "" for hold in holds}
    fines = sorted(session.fines_of(patron.patron_id), key=lambda fine: fine.created_at)
    return patron, rules, loans, titles, holds, hold_titles, fines


def _title(item: ItemFacts | None) -> str:
    return item.title if item is not None else ""


def renew_all_result(card_id: str, results: list[RenewResult]) -> RenewAllResult:
    """Sum up one renewal per loan: ok when nothing was refused; the first refusal explains otherwise."""
    renewed = tuple(result for result in results if result.ok)
    refused = tuple(result for result in results if not result.ok)
    if refused:
        return RenewAllResult(ok=False, reason=refused[0].reason, message=refused[0].message, card_id=card_id,
                              renewed=renewed, refused=refused)
    return RenewAllResult(ok=True, reason=ReasonCode.OK, message=message(ReasonCode.OK), card_id=card_id,
                          renewed=renewed, refused=refused)
