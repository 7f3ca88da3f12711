"""The kiosk as a patron uses it: the real Kivy app (headless) against the real backend process.

Around the app: ``openshelf backend`` (standalone circulation, a fresh SQLite
database per test, set up through its staff REST API), Mosquitto with one user
per device, the FEIG reader simulator and the real reader service for the pad.
Every flow asserts what matters outside the screen: the loans the backend holds
(read back through its REST API, as a librarian) and each tag's AFI in the
simulated reader. Screens and their layout are checked in
``test_kiosk_screenshots.py``.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from backend.circulation.messages import ReasonCode, message
from openshelf.contract import CirculationOp, KioskMode

from kiosk.escpos import encode_cp1258
from kiosk_library import Library, parse_time
from kiosk_rig import SECURED, UNSECURED, KioskRig, item_tag, patron_card_tag, tag_uid

pytestmark = pytest.mark.e2e


def vi(code: ReasonCode, **params: object) -> str:
    return message(code, **params).vi


def add_book(library: Library, number: int, item_id: str, title: str, author: str, *, parts: int = 1,
             **fields: object) -> None:
    """An item whose tags are numbered ``number``, ``number + 1``… (one per part)."""
    library.item(item_id, title, author, tags=tuple(tag_uid(number + part) for part in range(parts)), **fields)


def checkouts_of(kiosk: KioskRig, item_id: str) -> list:
    return kiosk.stack.sent(op=CirculationOp.CHECKOUT, item_id=item_id)


def assert_loans(library: Library, patron_id: str, item_ids: set[str]) -> None:
    """Exactly these open loans, each made once (a second checkout would show as a renewal)."""
    loans = library.loans(patron_id=patron_id)
    assert Counter(loan["item_id"] for loan in loans) == Counter(item_ids), loans
    assert all(loan["renewals"] == 0 for loan in loans), loans


@contextmanager
def database_locked(path: Path) -> Iterator[None]:
    """Another writer holds the backend's SQLite database: its writes wait (busy timeout) until the block ends."""
    connection = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


# --------------------------------------------------------------------------- borrow


def test_borrow_three_books_one_lifted_too_early_then_put_back(kiosk: KioskRig, library: Library) -> None:
    library.patron("P1001", pin="2580", email="ban.doc@example.vn")
    add_book(library, 0x1001, "B1001", "Truyện Kiều", "Nguyễn Du")
    add_book(library, 0x1002, "B1002", "Số đỏ", "Vũ Trọng Phụng")
    add_book(library, 0x1003, "B1003", "Dế Mèn phiêu lưu ký", "Tô Hoài")
    kiosk.tap("start.borrow")
    kiosk.wait_screen("identify")
    kiosk.sim.place_tag(patron_card_tag(0x1000, "P1001"))  # the library card on the pad
    kiosk.wait_screen("pin")
    kiosk.sim.remove_tag(tag_uid(0x1000))
    kiosk.enter_pin("2580")
    kiosk.wait_screen("borrow")

    kiosk.sim.place_tag(item_tag(0x1001, "B1001"))
    kiosk.sim.place_tag(item_tag(0x1002, "B1002"))
    kiosk.wait_item("B1001", "done")
    kiosk.wait_item("B1002", "done")
    kiosk.sim.fail_next_writes(1, "lift")  # the patron lifts the book while its tag is being written
    lifted = item_tag(0x1003, "B1003")
    kiosk.sim.place_tag(lifted)
    kiosk.wait_item("B1003", "tag_failed")
    kiosk.wait_departed(0x1003)
    assert kiosk.wait_text("item.status:B1003", lambda text: "nhấc lên quá sớm" in text)
    assert kiosk.sim.afi_of(tag_uid(0x1001)) == UNSECURED and lifted.afi == SECURED
    assert_loans(library, "P1001", {"B1001", "B1002", "B1003"})  # recorded; only the tag is not ready

    kiosk.sim.place_tag(lifted)  # put back on the pad
    kiosk.wait_item("B1003", "done")
    assert "Truyện Kiều" in kiosk.text("item.title:B1001")
    assert kiosk.text("item.status:B1002").startswith("Đã mượn — hạn trả")
    assert [kiosk.sim.afi_of(tag_uid(n)) for n in (0x1001, 0x1002, 0x1003)] == [UNSECURED] * 3
    assert_loans(library, "P1001", {"B1001", "B1002", "B1003"})
    assert [len(checkouts_of(kiosk, item)) for item in ("B1001", "B1002", "B1003")] == [1, 1, 1]  # put back: no 2nd

    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    assert "Số đỏ" in kiosk.text("receipt.text")
    kiosk.tap("receipt.print")
    kiosk.wait_text("notice", lambda text: text == "Đã in biên nhận.")
    printed = kiosk.printer_file.read_bytes()
    assert encode_cp1258("Dế Mèn phiêu lưu ký") in printed and printed.endswith(b"\x1dVB\x03")
    kiosk.tap("receipt.email")  # the address comes from the backend, for this session only
    kiosk.wait_text("notice", lambda text: text.startswith("Đã gửi biên nhận"))
    [(sender, recipients, mail)] = kiosk.smtp.received()
    assert recipients == ["ban.doc@example.vn"] and "Truyện Kiều" in mail.get_payload(decode=True).decode()
    kiosk.tap("receipt.done")
    kiosk.wait_screen("start")
    assert kiosk.controller.model.session is None and kiosk.controller.model.desk is None


def test_refused_checkout_says_why_in_vietnamese_and_keeps_the_tag_secured(kiosk: KioskRig,
                                                                          library: Library) -> None:
    library.patron("P2001", pin="1111")
    add_book(library, 0x2001, "B2001", "Từ điển Tiếng Việt", "Viện Ngôn ngữ học", in_library_only=True)
    add_book(library, 0x2002, "B2002", "Tắt đèn", "Ngô Tất Tố")
    kiosk.sign_in("P2001", "1111")  # a card at the start screen starts borrowing
    kiosk.sim.place_tag(item_tag(0x2001, "B2001"))
    kiosk.sim.place_tag(item_tag(0x2002, "B2002"))
    kiosk.wait_item("B2001", "refused")
    kiosk.wait_item("B2002", "done")
    assert kiosk.text("item.status:B2001") == vi(ReasonCode.ITEM_IN_LIBRARY_ONLY) == \
        "Tài liệu này chỉ được đọc tại thư viện."
    assert kiosk.sim.afi_of(tag_uid(0x2001)) == SECURED and kiosk.sim.afi_of(tag_uid(0x2002)) == UNSECURED
    assert_loans(library, "P2001", {"B2002"})
    assert library.item_status("B2001") == "available"
    kiosk.tap("lang.en")
    assert kiosk.text("item.status:B2001") == message(ReasonCode.ITEM_IN_LIBRARY_ONLY).en
    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    assert "Not completed" in kiosk.text("receipt.text") and "B2001" in kiosk.text("receipt.text")


def test_unknown_card_wrong_pin_and_expired_card_say_what_to_do_next(kiosk: KioskRig, library: Library) -> None:
    library.patron("P3001", pin="4321")
    library.patron("P3101", pin="3131", expires_on=date(2020, 1, 31))
    kiosk.tap("start.borrow")
    kiosk.scan_barcode("X999999")
    kiosk.enter_pin("1234")
    kiosk.wait_screen("message")
    assert kiosk.text("message") == vi(ReasonCode.UNKNOWN_PATRON)
    assert "quầy thủ thư" in kiosk.text("message.next")
    kiosk.tap("message.ok")
    kiosk.wait_screen("start")

    kiosk.present_card("P3001")  # the NFC card reader
    kiosk.enter_pin("0000")
    kiosk.wait_text("notice", lambda text: text == vi(ReasonCode.WRONG_PIN))
    assert kiosk.screen() == "pin" and "P3001" not in kiosk.text("notice")
    kiosk.enter_pin("4321")
    kiosk.wait_screen("borrow")
    kiosk.tap("finish")  # nothing borrowed: straight back to the start
    kiosk.wait_screen("start")

    kiosk.tap("start.account")
    kiosk.scan_barcode("P3101")
    kiosk.enter_pin("3131")
    kiosk.wait_screen("message")
    assert kiosk.text("message") == vi(ReasonCode.PATRON_EXPIRED, date=date(2020, 1, 31))
    assert library.loans(patron_id="P3001") == [] and library.loans(patron_id="P3101") == []


def test_finish_with_an_unready_book_takes_its_loan_back(kiosk: KioskRig, library: Library) -> None:
    library.patron("P3501", pin="1212")
    add_book(library, 0x3501, "B3501", "Chí Phèo", "Nam Cao")
    kiosk.sign_in("P3501", "1212")
    kiosk.sim.fail_next_writes(3, "error")  # every attempt of the reader service fails
    kiosk.sim.place_tag(item_tag(0x3501, "B3501"))
    kiosk.wait_item("B3501", "tag_failed")
    assert library.loan_of("B3501") is not None
    kiosk.sim.remove_tag(tag_uid(0x3501))  # the patron picks it up instead of putting it back
    kiosk.wait_departed(0x3501)
    kiosk.tap("finish")
    kiosk.wait_screen("finish_check")
    kiosk.tap("finish_check.leave")
    kiosk.wait_screen("receipt")
    kiosk.wait_backend(lambda: library.loan_of("B3501") is None, "the loan taken back in the backend")
    assert kiosk.sim.afi_of(tag_uid(0x3501)) == SECURED  # so the gate alarms, and the records agree
    assert library.item_status("B3501") == "available"


# --------------------------------------------------------------------------- return, multi-part


def test_return_with_a_hold_and_another_branch_says_leave_at_the_desk(kiosk: KioskRig, library: Library) -> None:
    library.patron("P4001")
    library.patron("P4002")
    add_book(library, 0x4001, "B4001", "Nỗi buồn chiến tranh", "Bảo Ninh")
    add_book(library, 0x4002, "B4002", "Vợ nhặt", "Kim Lân")
    add_book(library, 0x4003, "B4003", "Đất rừng phương Nam", "Đoàn Giỏi", home_branch="PHULY")
    for item_id in ("B4001", "B4002", "B4003"):
        library.lend(item_id, "P4001")
    library.hold("P4002", "B4001")
    kiosk.tap("start.return")
    kiosk.wait_screen("return")
    for number, item_id in ((0x4001, "B4001"), (0x4002, "B4002"), (0x4003, "B4003")):
        kiosk.sim.place_tag(item_tag(number, item_id, afi=UNSECURED))
    kiosk.wait_item("B4001", "leave_at_desk")
    kiosk.wait_item("B4002", "done")
    kiosk.wait_item("B4003", "leave_at_desk")
    assert "quầy thủ thư" in kiosk.text("item.status:B4001") and "đặt trước" in kiosk.text("item.status:B4001")
    assert "chi nhánh khác" in kiosk.text("item.status:B4003")
    assert [kiosk.sim.afi_of(tag_uid(n)) for n in (0x4001, 0x4002, 0x4003)] == [SECURED] * 3
    assert library.loans(patron_id="P4001") == []
    [hold] = library.holds("P4002")
    assert (hold["item_id"], hold["status"]) == ("B4001", "ready")
    assert [library.item_status(item) for item in ("B4001", "B4002", "B4003")] == \
        ["on_hold_shelf", "available", "in_transit"]
    checkins = kiosk.stack.sent(op=CirculationOp.CHECKIN)
    assert {request.item_id for request in checkins} >= {"B4001", "B4002", "B4003"}
    assert all(request.card_id is None for request in checkins)  # a return never says who returned it


def test_multi_part_set_is_never_checked_out_incomplete(kiosk: KioskRig, library: Library) -> None:
    library.patron("P5001", pin="5555")
    add_book(library, 0x5000, "B5001", "Việt Nam sử lược", "Trần Trọng Kim", parts=2)  # tags 0x5000, 0x5001
    kiosk.present_card("P5001")
    kiosk.enter_pin("5555")
    kiosk.wait_screen("borrow")
    kiosk.sim.place_tag(item_tag(0x5000, "B5001", parts=2, part=1))
    kiosk.wait_item("B5001", "waiting_parts")
    kiosk.wait_item("B5001", "incomplete")  # the reader's set wait is over
    assert kiosk.text("item.status:B5001") == "Thiếu phần 2. Vui lòng đặt đủ các phần lên đầu đọc."
    assert library.loan_of("B5001") is None and kiosk.sim.afi_of(tag_uid(0x5000)) == SECURED
    assert checkouts_of(kiosk, "B5001") == []
    kiosk.sim.place_tag(item_tag(0x5001, "B5001", parts=2, part=2))
    kiosk.wait_item("B5001", "done")
    assert_loans(library, "P5001", {"B5001"})
    assert kiosk.sim.afi_of(tag_uid(0x5000)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x5001)) == UNSECURED
    assert len(checkouts_of(kiosk, "B5001")) == 1


# --------------------------------------------------------------------------- account


def test_account_shows_loans_holds_fines_and_renews(kiosk: KioskRig, library: Library) -> None:
    library.patron("P9001", pin="9090")
    library.patron("P9002")
    add_book(library, 0x9001, "B9001", "Mắt biếc", "Nguyễn Nhật Ánh")
    add_book(library, 0x9002, "B9002", "Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh")
    add_book(library, 0x9003, "B9003", "Cánh đồng bất tận", "Nguyễn Ngọc Tư")
    add_book(library, 0x9004, "B9004", "Thương nhớ mười hai", "Vũ Bằng")
    # A loan a kiosk recorded offline 20 days ago (14-day loans: overdue now), replayed through the backend.
    kiosk.stack.replay_offline_checkout("P9001", "B9001", datetime.now(timezone.utc) - timedelta(days=20))
    library.lend("B9002", "P9001")
    for item_id in ("B9003", "B9004"):  # on loan to someone else, held for P9001
        library.lend(item_id, "P9002")
        library.hold("P9001", item_id)
    library.take_back("B9003")  # comes back: the hold is ready for pickup
    library.fine("P9001", Decimal("15000"), "Sách bị hỏng")
    owed = Decimal(str(library.account("P9001")["fines_total"]))
    assert owed > Decimal("15000")  # the overdue loan's fine is accruing too

    kiosk.tap("start.account")
    kiosk.scan_barcode("P9001")
    kiosk.enter_pin("9090")
    kiosk.wait_screen("account")
    kiosk.pump(lambda: kiosk.app.controls.get("account.renew:B9002"), what="the loans")
    assert kiosk.text("loan.due:B9001").startswith("Quá hạn")
    assert kiosk.text("hold.status:B9003").startswith("Đã sẵn sàng") and kiosk.text("hold.status:B9004") == "Đang chờ"
    assert kiosk.text("account.fines") == f"Phí phạt: {int(owed):,} đ".replace(",", ".")

    before = library.loan_of("B9002")
    kiosk.tap("account.renew:B9002")
    kiosk.wait_text("notice", lambda text: text.startswith("Gia hạn thành công"))
    after = library.loan_of("B9002")
    assert after["renewals"] == 1
    assert parse_time(after["due_at"]) - parse_time(before["due_at"]) == timedelta(days=14)
    kiosk.tap("account.renew_all")
    kiosk.wait_backend(lambda: library.loan_of("B9002")["renewals"] == 2, "renew all")
    overdue = library.loan_of("B9001")
    assert overdue["renewals"] == 1 and parse_time(overdue["due_at"]) > datetime.now(timezone.utc)
    kiosk.pump(lambda: not kiosk.text("loan.due:B9001").startswith("Quá hạn"), what="the account reloaded")
    kiosk.tap("finish")
    kiosk.wait_screen("start")


# --------------------------------------------------------------------------- idle timeout


def test_idle_timeout_counts_down_and_forgets_the_patron(kiosk: KioskRig, library: Library) -> None:
    library.patron("P6001", pin="6006")
    add_book(library, 0x6001, "B6001", "Gió lạnh đầu mùa", "Thạch Lam")
    add_book(library, 0x6002, "B6002", "Bỉ vỏ", "Nguyên Hồng")
    kiosk.sign_in("P6001", "6006")
    kiosk.sim.place_tag(item_tag(0x6001, "B6001"))
    kiosk.wait_item("B6001", "done")
    kiosk.sim.fail_next_writes(3, "error")
    kiosk.sim.place_tag(item_tag(0x6002, "B6002"))
    kiosk.wait_item("B6002", "tag_failed")
    kiosk.sim.remove_tag(tag_uid(0x6002))  # walks off with the unready book
    kiosk.wait_departed(0x6002)
    assert kiosk.wait_text("countdown", lambda text: text.startswith("Tự động kết thúc sau"))

    kiosk.clock.advance(52)
    kiosk.pump(lambda: kiosk.app._overlay is not None, what="the still-there overlay")
    assert kiosk.wait_text("countdown", lambda text: text in {f"Tự động kết thúc sau {s} giây" for s in range(1, 9)})
    kiosk.tap("finish")  # any touch keeps the session (the overlay swallows it: nothing is pressed)
    kiosk.pump(lambda: kiosk.app._overlay is None, what="overlay dismissed by a touch")
    assert kiosk.screen() == "borrow"

    kiosk.clock.advance(61)
    kiosk.wait_screen("start")
    model = kiosk.controller.model
    assert model.session is None and model.desk is None and model.titles == {}
    texts = " ".join(str(getattr(widget, "text", "")) for widget in kiosk.app.root.walk())
    assert "Gió lạnh" not in texts and "P6001" not in texts and "B6001" not in texts
    kiosk.wait_backend(lambda: library.loan_of("B6002") is None, "the unready loan taken back")
    assert_loans(library, "P6001", {"B6001"})
    assert kiosk.sim.afi_of(tag_uid(0x6001)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x6002)) == SECURED
    kiosk.pump(lambda: getattr(kiosk.stack.last_state(), "mode", None) is KioskMode.IDLE, what="idle state published")
    assert KioskMode.IN_SESSION in [state.mode for state in kiosk.stack.seen_states()]


# --------------------------------------------------------------------------- offline


def test_offline_borrow_is_queued_and_replayed_once_after_the_backend_restarts(kiosk: KioskRig,
                                                                                library: Library) -> None:
    library.patron("P7001", pin="7007")
    add_book(library, 0x7001, "B7001", "Những ngôi sao xa xôi", "Lê Minh Khuê")
    add_book(library, 0x7002, "B7002", "Người mẹ cầm súng", "Nguyễn Thi")
    kiosk.kill_backend()  # SIGKILL: the broker's Last Will tells the kiosk at once
    kiosk.pump(lambda: kiosk.app.controls.get("offline.banner"), what="the offline banner")
    kiosk.tap("start.borrow")
    kiosk.scan_barcode("P7001")
    kiosk.wait_screen("borrow")  # the PIN cannot be checked offline; the library accepts queued loans
    for number, item_id in ((0x7001, "B7001"), (0x7002, "B7002")):
        kiosk.sim.place_tag(item_tag(number, item_id))
        kiosk.wait_item(item_id, "done")  # one after the other: the queue keeps the patron's order
    assert "ngoại tuyến" in kiosk.text("item.status:B7001")
    assert kiosk.sim.afi_of(tag_uid(0x7001)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x7002)) == UNSECURED
    assert kiosk.runtime.queue.pending_count() == 2
    kiosk.pump(lambda: any(s.mode is KioskMode.OFFLINE and s.queued_transactions == 2
                           for s in kiosk.stack.seen_states()), what="offline state with 2 queued")
    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    kiosk.tap("receipt.done")
    kiosk.wait_screen("start")

    restarted_at = datetime.now(timezone.utc)
    kiosk.restart_backend()  # the same database
    kiosk.pump(lambda: kiosk.runtime.queue.pending_count() == 0, what="the queue replayed")
    assert_loans(library, "P7001", {"B7001", "B7002"})
    first, second = (library.loan_of(item) for item in ("B7001", "B7002"))
    # Applied when they happened, in that order, before the backend came back.
    assert parse_time(first["checked_out_at"]) <= parse_time(second["checked_out_at"]) < restarted_at
    # The kiosk tried while the backend was down too (those attempts expired unread): oldest first, each
    # transaction with one key throughout, B7002 only once B7001 was answered.
    replays = kiosk.stack.sent(op=CirculationOp.CHECKOUT, card_id="P7001")
    order = [request.item_id for request in replays]
    assert set(order) == {"B7001", "B7002"} and order == sorted(order)
    assert len({request.idempotency_key for request in replays}) == 2
    assert all(request.no_block for request in replays)
    kiosk.pump(lambda: not kiosk.app.controls.get("offline.banner"), what="the offline banner gone")
    kiosk.pump(lambda: kiosk.stack.last_state().mode is KioskMode.IDLE
               and kiosk.stack.last_state().queued_transactions == 0, what="idle state after the replay")


def test_an_answer_lost_after_the_deadline_is_not_applied_twice(kiosk: KioskRig, library: Library) -> None:
    library.patron("P8001", pin="8008")
    add_book(library, 0x8001, "B8001", "Vang bóng một thời", "Nguyễn Tuân")
    kiosk.sign_in("P8001", "8008")
    with database_locked(kiosk.stack.database):
        # The backend takes the checkout but cannot write it yet; the kiosk's deadline passes, it queues the
        # checkout (same idempotency key) and lets the patron go.
        kiosk.sim.place_tag(item_tag(0x8001, "B8001"))
        kiosk.wait_item("B8001", "done")
        assert kiosk.runtime.queue.pending_count() == 1 and library is not None
    # The database is free: the first checkout is written and answered, too late for the kiosk; the
    # replays carry the same key and get the first answer.
    kiosk.pump(lambda: kiosk.runtime.queue.pending_count() == 0, what="the queued checkout replayed")
    assert_loans(library, "P8001", {"B8001"})
    attempts = checkouts_of(kiosk, "B8001")
    assert len(attempts) >= 2 and {request.idempotency_key for request in attempts} == {attempts[0].idempotency_key}
    assert not attempts[0].no_block and all(request.no_block for request in attempts[1:])
    assert kiosk.sim.afi_of(tag_uid(0x8001)) == UNSECURED


# --------------------------------------------------------------------------- lockdown


def test_escape_f1_and_window_close_do_not_leave_the_kiosk(kiosk: KioskRig) -> None:
    from kivy.core.window import Window

    for key in (27, 282):  # Escape, F1
        assert Window.dispatch("on_keyboard", key, 0, None, []) is True
    assert Window.dispatch("on_request_close") is True
    kiosk.pump(frames=3)
    assert kiosk.app.root is not None and kiosk.screen() == "start"
    for _ in range(5):
        kiosk.tap("technician")
    kiosk.wait_screen("technician")
    for digit in "1111":
        kiosk.tap(f"keypad.{digit}")
    kiosk.tap("keypad.ok")
    kiosk.wait_screen("start")  # a wrong code only goes back to the start
