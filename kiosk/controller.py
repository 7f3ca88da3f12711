"""The kiosk's flows: start, identify, borrow, return, account, receipt, end of session.

Threading: every method here runs on the UI (main) thread and is the only code
that changes the model. Blocking work (MQTT request/reply, HTTP, printer, SMTP)
goes to a worker pool through :meth:`KioskController._work`, whose result comes
back through ``post`` (the UI's run-on-main-thread function). MQTT handlers
reach the controller the same way. After every change the controller hands a
fresh :class:`~kiosk.view.KioskView` to ``render``.
"""

from __future__ import annotations

import hmac
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from openshelf.contract import CirculationOp, CirculationReply, SetStatusEvent, TagEvent
from openshelf.site import KioskSettings

from kiosk.backend_client import BackendUnavailable, CirculationClient
from kiosk.backend_http import BackendHttpError, ReceiptAddressBook, TitleCatalog
from kiosk.i18n import Translator
from kiosk.items import ItemDesk
from kiosk.mailer import MailError, ReceiptMailer
from kiosk.model import KioskModel, Say
from kiosk.presenter import Presenter
from kiosk.printer import PaperStatus, PrinterError, ReceiptPrinter
from kiosk.queue import OfflineQueue
from kiosk.session import ItemLine, ItemStage, PatronSession, Purpose
from kiosk.state import KioskStatePublisher
from kiosk.view import Icon, KioskView, Screen
from kiosk.work import ItemOrder, ItemOutcome, ItemWorker
from kiosk.workers import WorkerPool

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], None]], None]

MAX_PIN_ATTEMPTS = 3
MAX_PIN_LENGTH = 8
MAX_CODE_LENGTH = 16
MESSAGE_TIMEOUT_S = 15
STILL_THERE_S = 10
TECH_TAPS = 5
TECH_TAP_WINDOW_S = 3.0
TECH_LOCKOUT_S = 60.0
PAPER_CHECK_EVERY_S = 300.0


@dataclass(frozen=True)
class RetryTimings:
    """When a tag that failed while still on the pad is written again, and how often."""

    after_s: float = 1.5
    limit: int = 3


@dataclass
class KioskServices:
    circulation: CirculationClient
    worker: ItemWorker
    queue: OfflineQueue
    titles: TitleCatalog | None = None
    addresses: ReceiptAddressBook | None = None
    printer: ReceiptPrinter | None = None
    mailer: ReceiptMailer | None = None
    state: KioskStatePublisher | None = None


class KioskController:
    def __init__(self, *, settings: KioskSettings, library: str, translator: Translator, services: KioskServices,
                 post: Post, render: Callable[[KioskView], None], exit_code: str | None = None,
                 on_technician_exit: Callable[[], None] | None = None, printer_codepage: str = "transliterate",
                 clock: Callable[[], float] = time.monotonic, max_workers: int = 8,
                 retry: RetryTimings = RetryTimings()) -> None:
        self.settings = settings
        self.t = translator
        self.model = KioskModel()
        self._services = services
        self._post = post
        self._render = render
        self._exit_code = exit_code
        self._on_technician_exit = on_technician_exit
        self._clock = clock
        self._retry = retry
        self._presenter = Presenter(translator, library, settings, printer_codepage)
        self._pool = WorkerPool(max_workers)
        self._pad: dict[str, TagEvent] = {}
        self._set_status: dict[str, SetStatusEvent] = {}
        self._last_activity = clock()
        self._retry_at: dict[str, tuple[float, int]] = {}
        self._tech_taps: list[float] = []
        self._tech_locked_until = 0.0
        self._tech_failures = 0
        self._next_paper_check = 0.0
        self._generation = 0  # bumped at every session end: late results of an old session are dropped
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._pool.start()
        self.model.queued = self._services.queue.pending_count()
        self.model.backend_online = self._services.circulation.availability.online
        self._check_paper()
        self._refresh()

    def stop(self) -> None:
        self._stopped = True
        self._pool.stop()

    @property
    def view(self) -> KioskView:
        return self._presenter.view(self.model)

    def _refresh(self) -> None:
        if self._stopped:
            return
        self._render(self.view)
        if self._services.state is not None:
            self._services.state.update(self.model, self.t.language)

    def _work(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None],
              failed: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn(*args)`` on a worker; ``then(result)`` runs on the UI thread (unless the session ended)."""
        generation = self._generation

        def deliver(future: Future[Any]) -> None:
            def on_main() -> None:
                if self._stopped or generation != self._generation:
                    return
                error = future.exception()
                if error is None:
                    then(future.result())
                elif failed is not None:
                    failed(error)
                else:
                    log.error("kiosk work failed: %r", error, exc_info=error)
                self._refresh()
            self._post(on_main)

        if self._stopped:
            return
        self._pool.submit(fn, *args).add_done_callback(deliver)

    # ------------------------------------------------------------------ patron input

    def touch(self) -> None:
        self._last_activity = self._clock()
        if self.model.countdown is not None and self.model.countdown <= STILL_THERE_S:
            self.model.countdown = None
            self._refresh()

    def set_language(self, language: str) -> None:
        self.touch()
        self.t.set_language(language)
        self._refresh()

    def choose(self, purpose: Purpose) -> None:
        self.touch()
        if self.model.screen is not Screen.START:
            return
        if purpose is Purpose.RETURN:
            self.model.session = PatronSession(card_id="", purpose=Purpose.RETURN)
            self._open_desk(Purpose.RETURN)
            return
        self.model.session = PatronSession(card_id="", purpose=purpose)
        self.model.screen = Screen.IDENTIFY
        self._refresh()

    def cancel(self) -> None:
        """'Back' / 'Cancel' before anything was recorded: straight back to the start."""
        self.touch()
        if self.model.screen in (Screen.BORROW, Screen.RETURN, Screen.ACCOUNT):
            self.finish()
            return
        self.end_session("cancelled")

    def card(self, card_id: str) -> None:
        """A patron card: from the card reader, the pad, or the barcode scanner."""
        self.touch()
        model = self.model
        if model.screen is Screen.START:
            model.session = PatronSession(card_id="", purpose=Purpose.BORROW)
            model.screen = Screen.IDENTIFY
        if model.screen is not Screen.IDENTIFY or model.busy or model.session is None:
            return
        model.pending_card = card_id
        model.notice = None
        if not model.backend_online:
            self._identify_unanswered(card_id, BackendUnavailable("the backend is known to be offline"))
            self._refresh()
            return
        if self.settings.require_pin:
            model.keypad = ""
            model.screen = Screen.PIN
            self._refresh()
            return
        self._identify(card_id, None)

    def keypad_digit(self, digit: str) -> None:
        self.touch()
        limit = MAX_CODE_LENGTH if self.model.screen is Screen.TECHNICIAN else MAX_PIN_LENGTH
        if digit.isdigit() and len(digit) == 1 and len(self.model.keypad) < limit:
            self.model.keypad += digit
            self._refresh()

    def keypad_delete(self) -> None:
        self.touch()
        self.model.keypad = self.model.keypad[:-1]
        self._refresh()

    def keypad_submit(self) -> None:
        self.touch()
        if self.model.screen is Screen.TECHNICIAN:
            self._technician_submit()
            return
        if self.model.screen is not Screen.PIN or not self.model.keypad or self.model.busy:
            return
        pin, self.model.keypad = self.model.keypad, ""
        if self.model.pending_card is not None:
            self._identify(self.model.pending_card, pin)

    # ------------------------------------------------------------------ identify

    def _identify(self, card_id: str, pin: str | None) -> None:
        model = self.model
        model.busy = True
        model.notice = Say("identify.checking", icon=Icon.WORKING)
        request = self._services.circulation.new_request(CirculationOp.IDENTIFY, card_id=card_id, pin=pin)
        self._work(self._call, request, then=lambda reply: self._identified(card_id, reply),
                   failed=lambda error: self._identify_unanswered(card_id, error))
        self._refresh()

    def _call(self, request: Any) -> CirculationReply:
        return self._services.circulation.call(request)

    def _identified(self, card_id: str, reply: CirculationReply) -> None:
        model = self.model
        model.busy = False
        model.notice = None
        session = model.session
        if session is None:
            return
        if reply.ok:
            session.card_id, session.session_id, session.has_email = card_id, reply.session_id, bool(reply.has_email)
            model.pending_card = None
            if session.purpose is Purpose.ACCOUNT:
                self._open_account(reply if reply.loans or reply.holds else None)
            else:
                self._open_desk(Purpose.BORROW)
            return
        said = Say(texts={"vi": reply.message_vi, "en": reply.message_en}, key=f"reason.{reply.code}",
                   icon=Icon.ERROR)
        if reply.code == "wrong_pin" and model.pin_attempts + 1 < MAX_PIN_ATTEMPTS:
            model.pin_attempts += 1
            model.screen, model.notice, model.keypad = Screen.PIN, said, ""
            return
        self._show_message(said, Say(_next_step_key(reply.code)))

    def _identify_unanswered(self, card_id: str, error: BaseException) -> None:
        model = self.model
        model.busy = False
        model.notice = None
        model.backend_online = False
        if not isinstance(error, BackendUnavailable):
            log.error("identify failed: %r", error)
        session = model.session
        if session is None:
            return
        if session.purpose is Purpose.BORROW and self.settings.offline_mode == "queue":
            # The library accepts offline loans: the card cannot be checked now, the backend will see it later.
            session.card_id, session.offline = card_id, True
            model.pending_card = None
            self._open_desk(Purpose.BORROW)
            return
        key = "offline.account_unavailable" if session.purpose is Purpose.ACCOUNT else "offline.refused"
        self._show_message(Say(key, icon=Icon.WARNING), Say("next.see_desk"))

    # ------------------------------------------------------------------ borrow / return

    def _open_desk(self, purpose: Purpose) -> None:
        model = self.model
        model.desk = ItemDesk(purpose)
        model.screen = Screen.BORROW if purpose is Purpose.BORROW else Screen.RETURN
        for event in list(self._pad.values()):
            self._item_arrived(event)
        self._refresh()

    def tag_arrived(self, event: TagEvent) -> None:
        self._pad[event.uid] = event
        if self.model.desk is None:
            return
        self.touch()
        self._item_arrived(event)
        self._refresh()

    def tag_departed(self, event: TagEvent) -> None:
        self._pad.pop(event.uid, None)
        desk = self.model.desk
        if desk is None:
            return
        line = desk.departed(event)
        if line is not None:
            desk.ready_to_work(line)
            self._refresh()

    def set_status(self, event: SetStatusEvent) -> None:
        self._set_status[event.item_id] = event
        desk = self.model.desk
        if desk is None:
            return
        line = desk.set_status(event)
        if line is not None:
            self._evaluate(line)
            self._refresh()

    def _item_arrived(self, event: TagEvent) -> None:
        desk = self.model.desk
        assert desk is not None
        line = desk.arrived(event)
        status = self._set_status.get(line.key)
        if status is not None and line.parts_in_set > 1:
            desk.set_status(status)
        self._retry_at.pop(line.key, None)  # placed again: automatic retries start over
        self._lookup_title(line)
        self._evaluate(line)

    def _lookup_title(self, line: ItemLine) -> None:
        titles = self._services.titles
        if titles is None or line.item_id is None or line.item_id in self.model.titles:
            return
        cached = titles.cached(line.item_id)
        if cached is not None:
            self.model.titles[line.item_id] = cached
            return
        item_id = line.item_id

        def keep(summary: Any) -> None:
            if summary is not None:
                self.model.titles[item_id] = summary

        self._work(titles.lookup, item_id, then=keep)

    def _evaluate(self, line: ItemLine) -> None:
        desk, session = self.model.desk, self.model.session
        if desk is None or session is None or not desk.ready_to_work(line) or line.item_id is None:
            return
        uids = desk.begin(line)
        order = ItemOrder(
            borrow=desk.borrowing, item_id=line.item_id, uids=uids, idempotency_key=line.idempotency_key,
            card_id=session.card_id or None, session_id=session.session_id, already_recorded=line.recorded,
            go_offline=session.offline or self.model.offline, offline_mode=self.settings.offline_mode,
        )
        self._work(self._services.worker.run, order, then=lambda outcome: self._item_done(line, outcome))

    def _item_done(self, line: ItemLine, outcome: ItemOutcome) -> None:
        desk = self.model.desk
        if desk is None:
            return
        desk.apply(line, outcome)
        if outcome.offline:
            self.model.queued = self._services.queue.pending_count()
            self.model.backend_online = self._services.circulation.availability.online
        if line.stage is ItemStage.TAG_FAILED:
            attempts = self._retry_at.get(line.key, (0.0, 0))[1]
            self._retry_at[line.key] = (self._clock() + self._retry.after_s, attempts)
        if line.rerun:
            self._evaluate(line)

    def _auto_retry(self, now: float) -> None:
        """A tag that failed while it is still on the pad (the reader saw no departure) is tried again."""
        desk = self.model.desk
        if desk is None:
            return
        for key, (due, attempts) in list(self._retry_at.items()):
            line = desk.lines.get(key)
            if line is None or line.stage is not ItemStage.TAG_FAILED or attempts >= self._retry.limit:
                continue
            if now >= due and all(uid in self._pad for uid in line.unverified_uids):
                self._retry_at[key] = (now + self._retry.after_s, attempts + 1)
                self._evaluate(line)

    # ------------------------------------------------------------------ account

    def _open_account(self, reply: CirculationReply | None) -> None:
        model = self.model
        model.screen = Screen.ACCOUNT
        if reply is not None:
            self._account_loaded(reply)
        else:
            self._load_account()
        self._refresh()

    def _load_account(self) -> None:
        session = self.model.session
        if session is None:
            return
        self.model.account_loading = True
        request = self._services.circulation.new_request(CirculationOp.ACCOUNT, card_id=session.card_id,
                                                         session_id=session.session_id)
        self._work(self._call, request, then=self._account_loaded, failed=self._account_unanswered)

    def _account_loaded(self, reply: CirculationReply) -> None:
        model = self.model
        model.account_loading = False
        if not reply.ok:
            model.notice = Say(texts={"vi": reply.message_vi, "en": reply.message_en}, key=f"reason.{reply.code}",
                               icon=Icon.ERROR)
            return
        model.account = reply
        for item_id in [loan.item_id for loan in reply.loans] + [hold.item_id for hold in reply.holds]:
            self._lookup_title(ItemLine(key=item_id, item_id=item_id, order=0))

    def _account_unanswered(self, error: BaseException) -> None:
        self.model.account_loading = False
        self.model.backend_online = False
        self.model.notice = Say("offline.account_unavailable", icon=Icon.WARNING)

    def renew(self, item_id: str | None) -> None:
        """Renew one loan (``item_id``) or, with None, all of them."""
        self.touch()
        session = self.model.session
        if self.model.screen is not Screen.ACCOUNT or session is None or self.model.busy:
            return
        op = CirculationOp.RENEW if item_id else CirculationOp.RENEW_ALL
        request = self._services.circulation.new_request(op, card_id=session.card_id, session_id=session.session_id,
                                                         item_id=item_id)
        self.model.busy = True
        self.model.notice = Say("account.renewing", icon=Icon.WORKING)
        self._work(self._call, request, then=self._renewed, failed=self._account_unanswered_busy)
        self._refresh()

    def _renewed(self, reply: CirculationReply) -> None:
        self.model.busy = False
        self.model.notice = Say(texts={"vi": reply.message_vi, "en": reply.message_en}, key=f"reason.{reply.code}",
                                icon=Icon.DONE if reply.ok else Icon.ERROR)
        self._load_account()

    def _account_unanswered_busy(self, error: BaseException) -> None:
        self.model.busy = False
        self._account_unanswered(error)

    # ------------------------------------------------------------------ finish, receipt, end

    def finish(self) -> None:
        self.touch()
        model = self.model
        desk = model.desk
        if desk is not None and desk.busy():
            model.notice = Say("finish.wait", icon=Icon.WORKING)
            self._refresh()
            return
        if desk is not None and desk.borrowing and desk.unfinished() and model.screen is Screen.BORROW:
            model.screen = Screen.FINISH_CHECK
            self._refresh()
            return
        self._show_receipt_or_end()

    def back_to_pad(self) -> None:
        self.touch()
        if self.model.screen is Screen.FINISH_CHECK:
            self.model.screen = Screen.BORROW
            self._refresh()

    def finish_anyway(self) -> None:
        """Leave the unready books: their loans are taken back, so the records match the alarm."""
        self.touch()
        if self.model.screen is not Screen.FINISH_CHECK:
            return
        self._undo_unfinished()
        self._show_receipt_or_end()

    def _show_receipt_or_end(self) -> None:
        model = self.model
        desk = model.desk
        worked = desk is not None and any(line.stage is not ItemStage.NEW for line in desk.lines.values())
        if not worked:
            self.end_session("finished")
            return
        model.screen = Screen.RECEIPT
        model.notice = None
        self._refresh()

    def print_receipt(self) -> None:
        self.touch()
        printer = self._services.printer
        if self.model.screen is not Screen.RECEIPT or printer is None or self.model.busy:
            return
        job = self._presenter.print_job(self.model)
        self.model.busy = True
        self.model.receipt_notice = Say("receipt.printing", icon=Icon.WORKING)
        self._work(self._print_and_check, printer, job, then=self._printed, failed=self._print_failed)
        self._refresh()

    @staticmethod
    def _print_and_check(printer: ReceiptPrinter, job: bytes) -> PaperStatus:
        printer.print_job(job)
        return printer.paper()

    def _printed(self, paper: PaperStatus) -> None:
        self.model.busy = False
        self.model.paper = paper
        self.model.receipt_notice = Say("receipt.printed", icon=Icon.DONE)

    def _print_failed(self, error: BaseException) -> None:
        self.model.busy = False
        log.warning("receipt not printed: %s", error)
        if not isinstance(error, PrinterError):
            log.error("printer failure", exc_info=error)
        self.model.receipt_notice = Say("receipt.print_failed", icon=Icon.ERROR)

    def email_receipt(self) -> None:
        self.touch()
        model, mailer, addresses = self.model, self._services.mailer, self._services.addresses
        session = model.session
        if (model.screen is not Screen.RECEIPT or mailer is None or addresses is None or session is None
                or not session.session_id or model.busy):
            return
        receipt = self._presenter.receipt(model)
        model.busy = True
        model.receipt_notice = Say("receipt.sending", icon=Icon.WORKING)
        self._work(_send_receipt, addresses, mailer, session.session_id, receipt, then=self._emailed,
                   failed=self._email_failed)
        self._refresh()

    def _emailed(self, sent: bool) -> None:
        self.model.busy = False
        self.model.receipt_notice = Say("receipt.emailed" if sent else "receipt.no_address",
                                        icon=Icon.DONE if sent else Icon.WARNING)

    def _email_failed(self, error: BaseException) -> None:
        self.model.busy = False
        log.warning("receipt not e-mailed: %s", error)
        self.model.receipt_notice = Say("receipt.email_failed", icon=Icon.ERROR)

    def done(self) -> None:
        self.end_session("finished")

    def end_session(self, why: str) -> None:
        """Back to the start; the patron's data leaves the screen and the kiosk's memory."""
        model = self.model
        self._undo_unfinished()
        session = model.session
        if session is not None and session.session_id and not session.offline:
            request = self._services.circulation.new_request(CirculationOp.END_SESSION, card_id=session.card_id,
                                                             session_id=session.session_id)
            self._pool.submit(_quietly, self._services.circulation.call, request)
        if session is not None:
            log.info("session ended (%s)", why)
        self._generation += 1
        model.clear_patron()
        self._retry_at.clear()
        model.screen = Screen.START
        self.t.set_language(self.settings.language)
        self._refresh()

    def _undo_unfinished(self) -> None:
        desk, session = self.model.desk, self.model.session
        if desk is None or session is None or not desk.borrowing:
            return
        for line in desk.unfinished():
            if line.item_id is None:
                continue
            log.warning("taking back the loan of %s: its tag was never unsecured", line.item_id)
            order = ItemOrder(borrow=False, item_id=line.item_id, uids=tuple(uid for uid in line.verified
                                                                             if uid in self._pad),
                              idempotency_key=f"{line.idempotency_key[:58]}-undo", card_id=None,
                              session_id=session.session_id, already_recorded=False,
                              go_offline=session.offline or self.model.offline,
                              offline_mode=self.settings.offline_mode)
            self._pool.submit(_quietly, self._services.worker.run, order)
            line.stage = ItemStage.UNDONE
            line.recorded = False

    def _show_message(self, message: Say, detail: Say | None = None) -> None:
        model = self.model
        model.screen = Screen.MESSAGE
        model.message, model.message_detail = message, detail

    def acknowledge(self) -> None:
        self.end_session("message acknowledged")

    # ------------------------------------------------------------------ technician exit

    def technician_tap(self) -> None:
        now = self._clock()
        if self._exit_code is None or self.model.screen is not Screen.START or now < self._tech_locked_until:
            return
        self._tech_taps = [tap for tap in self._tech_taps if now - tap <= TECH_TAP_WINDOW_S] + [now]
        if len(self._tech_taps) >= TECH_TAPS:
            self._tech_taps = []
            self.model.screen, self.model.keypad, self.model.notice = Screen.TECHNICIAN, "", None
            self.touch()
            self._refresh()

    def _technician_submit(self) -> None:
        code, self.model.keypad = self.model.keypad, ""
        if self._exit_code is not None and hmac.compare_digest(code.encode(), self._exit_code.encode()):
            log.warning("technician exit")
            self.end_session("technician exit")
            if self._on_technician_exit is not None:
                self._on_technician_exit()
            return
        self._tech_failures += 1
        log.warning("wrong technician exit code (%d in a row)", self._tech_failures)
        if self._tech_failures >= 3:
            self._tech_failures = 0
            self._tech_locked_until = self._clock() + TECH_LOCKOUT_S
        self.end_session("technician code refused")

    # ------------------------------------------------------------------ time, availability

    def tick(self) -> None:
        """Once a second on the UI thread: idle countdown, automatic retries, heartbeat, paper."""
        now = self._clock()
        self._auto_retry(now)
        if self._services.state is not None:
            self._services.state.heartbeat()
        if now >= self._next_paper_check and self.model.screen is Screen.START:
            self._check_paper()
        self._count_down(now)

    def _count_down(self, now: float) -> None:
        model = self.model
        if model.screen is Screen.START:
            if model.countdown is not None:
                model.countdown = None
                self._refresh()
            return
        if model.busy or (model.desk is not None and model.desk.busy()):
            self._last_activity = now  # never time out in the middle of a transaction
        limit = MESSAGE_TIMEOUT_S if model.screen in (Screen.MESSAGE, Screen.TECHNICIAN) else self.settings.idle_timeout_s
        remaining = int(limit - (now - self._last_activity) + 0.999)
        if remaining <= 0:
            self.end_session("idle timeout")
            return
        if remaining != model.countdown:
            model.countdown = remaining
            self._refresh()

    def backend_availability(self, online: bool) -> None:
        self.model.backend_online = online
        self.model.queued = self._services.queue.pending_count()
        self._refresh()

    def queue_progress(self, pending: int) -> None:
        self.model.queued = pending
        self.model.backend_online = self._services.circulation.availability.online
        self._refresh()

    def _check_paper(self) -> None:
        printer = self._services.printer
        self._next_paper_check = self._clock() + PAPER_CHECK_EVERY_S
        if printer is None:
            return
        self._work(printer.paper, then=self._paper_checked)

    def _paper_checked(self, paper: PaperStatus) -> None:
        self.model.paper = paper


def _send_receipt(addresses: ReceiptAddressBook, mailer: ReceiptMailer, session_id: str, receipt: Any) -> bool:
    try:
        address = addresses.address_of(session_id)
    except BackendHttpError as exc:
        raise MailError(str(exc)) from exc
    if address is None:
        return False
    mailer.send(receipt, address)
    return True


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except BackendUnavailable:
        log.info("best-effort %s not answered", getattr(fn, "__name__", "call"))
    except Exception:  # noqa: BLE001 - fire-and-forget work must never take a worker down silently
        log.exception("background kiosk work failed")


def _next_step_key(code: str) -> str:
    if code in ("unknown_patron",):
        return "next.unknown_card"
    if code in ("wrong_pin",):
        return "next.wrong_pin"
    return "next.see_desk"
