"""Turns the kiosk's model into what the screen shows, in the patron's language, and into receipts."""

from __future__ import annotations

import dataclasses
import zlib
from datetime import datetime

from openshelf.site import KioskSettings

from kiosk.escpos import receipt_job
from kiosk.i18n import Translator
from kiosk.model import KioskModel, Say
from kiosk.printer import PaperStatus
from kiosk.receipt import Receipt, ReceiptLine, ReceiptSection, qr_payload
from kiosk.session import ItemLine, ItemStage
from kiosk.view import AccountView, HoldView, Icon, ItemView, KioskView, LoanView, ReceiptView, Screen

_ICONS = {
    ItemStage.NEW: Icon.WORKING, ItemStage.WORKING: Icon.WORKING, ItemStage.WAITING_PARTS: Icon.WAITING,
    ItemStage.INCOMPLETE: Icon.WARNING, ItemStage.DONE: Icon.DONE, ItemStage.LEAVE_AT_DESK: Icon.WARNING,
    ItemStage.TAKE_TO_DESK: Icon.WARNING, ItemStage.REFUSED: Icon.ERROR, ItemStage.TAG_FAILED: Icon.WARNING,
    ItemStage.UNREADABLE: Icon.ERROR, ItemStage.UNDONE: Icon.ERROR,
}
_SESSION_SCREENS = {Screen.IDENTIFY, Screen.PIN, Screen.BORROW, Screen.RETURN, Screen.ACCOUNT, Screen.FINISH_CHECK,
                    Screen.RECEIPT}


class Presenter:
    def __init__(self, translator: Translator, library: str, settings: KioskSettings,
                 printer_codepage: str = "transliterate") -> None:
        self.t = translator
        self._library = library
        self._settings = settings
        self._codepage = printer_codepage

    # ------------------------------------------------------------------ screens

    def view(self, model: KioskModel) -> KioskView:
        t = self.t
        base = KioskView(
            screen=model.screen, language=t.language, library=self._library, offline=model.offline,
            offline_text=self._offline_text(model), keypad_length=len(model.keypad), busy=model.busy,
            in_session=model.screen in _SESSION_SCREENS,
            notice=model.notice.render(t) if model.notice else "",
            notice_icon=model.notice.icon if model.notice else Icon.NONE,
            countdown=model.countdown,
            countdown_text=t("countdown.text", seconds=model.countdown) if model.countdown is not None else "",
            still_there=model.countdown is not None and model.countdown <= 10 and model.screen is not Screen.MESSAGE,
        )
        builder = getattr(self, f"_{model.screen.value}")
        return builder(model, base)

    def _offline_text(self, model: KioskModel) -> str:
        if not model.offline:
            return ""
        return self.t("app.offline_banner" if self._settings.offline_mode == "queue" else "app.offline_refuse_banner")

    def _start(self, model: KioskModel, base: KioskView) -> KioskView:
        return _replace(base, heading=self.t("start.welcome"), instruction=self.t("start.prompt"))

    def _identify(self, model: KioskModel, base: KioskView) -> KioskView:
        return _replace(base, heading=self._purpose_heading(model), instruction=self.t("identify.instruction"))

    def _pin(self, model: KioskModel, base: KioskView) -> KioskView:
        return _replace(base, heading=self.t("pin.heading"), instruction=self.t("pin.instruction"))

    def _technician(self, model: KioskModel, base: KioskView) -> KioskView:
        return _replace(base, heading=self.t("technician.heading"), instruction=self.t("technician.instruction"))

    def _borrow(self, model: KioskModel, base: KioskView) -> KioskView:
        return self._desk(model, base, "start.borrow", "borrow.instruction", "borrow.summary")

    def _return(self, model: KioskModel, base: KioskView) -> KioskView:
        return self._desk(model, base, "start.return", "return.instruction", "return.summary")

    def _desk(self, model: KioskModel, base: KioskView, heading: str, instruction: str, summary: str) -> KioskView:
        lines = model.desk.ordered() if model.desk else []
        done = sum(1 for line in lines if line.stage in (ItemStage.DONE, ItemStage.LEAVE_AT_DESK))
        return _replace(base, heading=self.t(heading), instruction=self.t(instruction),
                        items=tuple(self._item(model, line) for line in lines),
                        summary=self.t(summary, done=done), can_finish=True)

    def _finish_check(self, model: KioskModel, base: KioskView) -> KioskView:
        lines = model.desk.unfinished() if model.desk else []
        return _replace(base, heading=self.t("finish_check.heading"), instruction=self.t("finish_check.instruction"),
                        items=tuple(self._item(model, line) for line in lines))

    def _account(self, model: KioskModel, base: KioskView) -> KioskView:
        return _replace(base, heading=self.t("start.account"), account=self._account_view(model), can_finish=True,
                        instruction="" if model.account else self.t("account.loading"))

    def _receipt(self, model: KioskModel, base: KioskView) -> KioskView:
        receipt = self.receipt(model)
        can_print = self._settings.printer.kind != "none" and model.paper is not PaperStatus.OUT
        session = model.session
        can_email = (self._settings.smtp is not None and session is not None and session.has_email
                     and bool(session.session_id))
        notice = model.receipt_notice
        if notice is None and self._settings.printer.kind != "none" and model.paper is PaperStatus.OUT:
            notice = Say("receipt.out_of_paper", icon=Icon.WARNING)
        return _replace(base, heading=self.t("receipt.heading"), instruction=self.t("receipt.qr_hint"),
                        receipt=ReceiptView(tuple(receipt.text_lines(48)), receipt.qr_payload, can_print, can_email),
                        notice=notice.render(self.t) if notice else "",
                        notice_icon=notice.icon if notice else Icon.NONE)

    def _message(self, model: KioskModel, base: KioskView) -> KioskView:
        message, detail = model.message, model.message_detail
        return _replace(base, heading=message.render(self.t) if message else "",
                        instruction=detail.render(self.t) if detail else "",
                        notice_icon=message.icon if message else Icon.NONE)

    def _purpose_heading(self, model: KioskModel) -> str:
        purpose = model.session.purpose.value if model.session else "borrow"
        return self.t(f"start.{purpose}")

    # ------------------------------------------------------------------ items

    def _item(self, model: KioskModel, line: ItemLine) -> ItemView:
        summary = model.titles.get(line.item_id) if line.item_id else None
        title = summary.title if summary and summary.title else self.t("item.id", item_id=line.item_id or line.key)
        subtitle = summary.author if summary and summary.author else ""
        if line.parts_in_set > 1:
            parts = self.t("item.parts", parts=line.parts_in_set)
            subtitle = f"{subtitle} · {parts}" if subtitle else parts
        letter = next((char for char in title if char.isalnum()), "#").upper()
        hue = (zlib.crc32((line.item_id or line.key).encode()) % 360) / 360
        return ItemView(key=line.key, title=title, subtitle=subtitle, status=self._item_status(model, line),
                        icon=_ICONS[line.stage], cover_letter=letter, cover_hue=hue)

    def _item_status(self, model: KioskModel, line: ItemLine) -> str:
        t, borrowing = self.t, bool(model.desk and model.desk.borrowing)
        stage = line.stage
        missing = ", ".join(str(part) for part in line.missing_parts)
        if stage is ItemStage.NEW:
            return t("item.new")
        if stage is ItemStage.WORKING:
            return t("item.working_borrow" if borrowing else "item.working_return")
        if stage is ItemStage.WAITING_PARTS:
            return t("item.waiting_parts", parts=line.parts_in_set, missing=missing)
        if stage is ItemStage.INCOMPLETE:
            return t("item.incomplete", parts=line.parts_in_set, missing=missing)
        if stage is ItemStage.DONE:
            return self._done_status(line, borrowing)
        if stage is ItemStage.LEAVE_AT_DESK:
            return t("item.leave_at_desk_hold" if line.sort_hint == "hold_shelf" else "item.leave_at_desk_transit")
        if stage is ItemStage.TAKE_TO_DESK:
            return t("item.take_to_desk")
        if stage is ItemStage.REFUSED:
            return Say(texts=line.reason, key=line.reason_key).render(t)
        if stage is ItemStage.UNDONE:
            return t("item.undone")
        return t(line.reason_key or "item.write_failed")

    def _done_status(self, line: ItemLine, borrowing: bool) -> str:
        t = self.t
        if not borrowing:
            return t("item.returned_offline" if line.offline else "item.returned")
        if line.due_at is None:
            return t("item.borrowed_offline" if line.offline else "item.borrowed")
        return t("item.borrowed_due", due=line.due_at)

    # ------------------------------------------------------------------ account

    def _account_view(self, model: KioskModel) -> AccountView | None:
        reply = model.account
        if reply is None:
            return None
        t = self.t
        loans = tuple(
            LoanView(item_id=loan.item_id, title=self._title(model, loan.item_id),
                     due=t("account.overdue" if loan.overdue else "account.due", due=loan.due_at),
                     overdue=loan.overdue)
            for loan in reply.loans
        )
        holds = tuple(
            HoldView(item_id=hold.item_id, title=self._title(model, hold.item_id), ready=hold.ready,
                     status=(t("account.hold_ready_by", date=hold.pickup_by) if hold.ready and hold.pickup_by
                             else t("account.hold_ready") if hold.ready else t("account.hold_pending")))
            for hold in reply.holds
        )
        fines = t("account.fines", amount=t.money(reply.fines_due)) if reply.fines_due and _positive(
            reply.fines_due) else t("account.no_fines")
        return AccountView(loans=loans, holds=holds, fines=fines, loaded=True)

    def _title(self, model: KioskModel, item_id: str) -> str:
        summary = model.titles.get(item_id)
        return summary.title if summary and summary.title else self.t("item.id", item_id=item_id)

    # ------------------------------------------------------------------ receipt

    def receipt(self, model: KioskModel, now: datetime | None = None) -> Receipt:
        t = self.t
        now = now or datetime.now().astimezone()
        lines = model.desk.ordered() if model.desk else []
        borrowing = bool(model.desk and model.desk.borrowing)
        done = [line for line in lines if line.stage in (ItemStage.DONE, ItemStage.LEAVE_AT_DESK)]
        not_done = [line for line in lines if line.stage not in (ItemStage.DONE, ItemStage.LEAVE_AT_DESK)
                    and line.item_id is not None]
        done_lines = tuple(ReceiptLine(self._title(model, line.item_id or line.key), line.item_id or line.key,
                                       self._receipt_note(line, borrowing)) for line in done)
        failed_lines = tuple(ReceiptLine(self._title(model, line.item_id or line.key), line.item_id or line.key,
                                         self._item_status(model, line)) for line in not_done)
        sections = (
            ReceiptSection(t("receipt.borrowed" if borrowing else "receipt.returned"), done_lines),
            ReceiptSection(t("receipt.not_done"), failed_lines),
        )
        payload = None
        if done:
            borrowed = [(line.item_id or line.key, line.due_at) for line in done] if borrowing else []
            returned = [] if borrowing else [line.item_id or line.key for line in done]
            payload = qr_payload(self._settings.id, now, borrowed, returned)
        return Receipt(language=t.language, library=self._library, heading=t("receipt.title"),
                       when=f"{now:%H:%M} {t.format(now)}", sections=sections, footer=t("receipt.footer"),
                       qr_payload=payload, item_ids=tuple(line.item_id or line.key for line in done))

    def _receipt_note(self, line: ItemLine, borrowing: bool) -> str:
        if not borrowing:
            return self._item_status_plain(line)
        if line.due_at is None:
            return self.t("receipt.due_later")
        return self.t("receipt.due", due=line.due_at)

    def _item_status_plain(self, line: ItemLine) -> str:
        if line.stage is ItemStage.LEAVE_AT_DESK:
            return self.t("item.leave_at_desk_hold" if line.sort_hint == "hold_shelf" else "item.leave_at_desk_transit")
        return ""

    def print_job(self, model: KioskModel) -> bytes:
        codepage = "cp1258" if self._codepage == "cp1258" else "transliterate"
        return receipt_job(self.receipt(model), codepage=codepage)


def _replace(view: KioskView, **changes: object) -> KioskView:
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]


def _positive(amount: str) -> bool:
    try:
        return float(amount) > 0
    except ValueError:
        return False
