"""The kiosk as a patron uses it: the real Kivy app (headless), the real reader service on a simulated
pad, and a protocol peer answering circulation over the real broker.

Every flow asserts what matters outside the screen: the loans the backend
holds, and each tag's AFI in the simulated reader. Screenshots of each screen,
in both languages, are written to ``$OPENSHELF_KIOSK_SCREENSHOTS`` (docs/kiosk
when regenerating the documentation) or a temporary folder, and each passes
the layout checks (no missing glyphs, no text cut off, nothing outside its box)
at 1280×800 and 1920×1080.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from backend.circulation.messages import ReasonCode, message
from openshelf.contract import CirculationOp, KioskMode

from kiosk.escpos import encode_cp1258
from kiosk_peer import PeerItem, PeerLoan, PeerPatron
from kiosk_rig import SECURED, UNSECURED, KioskRig, item_tag, patron_card_tag, tag_uid
from tests.helpers import Mosquitto

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def rig(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskRig]:
    screenshots = Path(os.environ.get("OPENSHELF_KIOSK_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    screenshots.mkdir(parents=True, exist_ok=True)
    kiosk = KioskRig(tmp_path_factory.mktemp("kiosk"), mosquitto.url, screenshots).start()
    yield kiosk
    kiosk.stop()


@pytest.fixture
def kiosk(rig: KioskRig) -> Iterator[KioskRig]:
    rig.wait_screen("start")
    yield rig
    rig.reset()


def vi(code: ReasonCode, **params: object) -> str:
    return message(code, **params).vi


def add_items(rig: KioskRig, *items: PeerItem) -> None:
    for item in items:
        rig.peer.library.add_item(item)


def sign_in_with_pad_card(rig: KioskRig, tag_number: int, card_id: str, pin: str) -> None:
    """The patron lays an ISO 15693 library card on the pad, lifts it, and types the PIN."""
    rig.sim.place_tag(patron_card_tag(tag_number, card_id))
    rig.wait_screen("pin")
    rig.sim.remove_tag(tag_uid(tag_number))
    rig.enter_pin(pin)


# --------------------------------------------------------------------------- borrow


def test_borrow_three_books_one_lifted_too_early_then_put_back(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P1001", pin="2580", email="ban.doc@example.vn"))
    add_items(kiosk, PeerItem("B1001", "Truyện Kiều", "Nguyễn Du"), PeerItem("B1002", "Số đỏ", "Vũ Trọng Phụng"),
              PeerItem("B1003", "Dế Mèn phiêu lưu ký", "Tô Hoài"))
    kiosk.capture("start", large_too=True)
    kiosk.tap("start.borrow")
    kiosk.wait_screen("identify")
    kiosk.capture("identify")
    kiosk.sim.place_tag(patron_card_tag(0x1000, "P1001"))
    kiosk.wait_screen("pin")
    kiosk.sim.remove_tag(tag_uid(0x1000))
    for digit in "25":
        kiosk.tap(f"keypad.{digit}")
    kiosk.capture("pin")
    for digit in "80":
        kiosk.tap(f"keypad.{digit}")
    kiosk.tap("keypad.ok")
    kiosk.wait_screen("borrow")

    kiosk.sim.place_tag(item_tag(0x1001, "B1001"))
    kiosk.sim.place_tag(item_tag(0x1002, "B1002"))
    kiosk.wait_item("B1001", "done")
    kiosk.wait_item("B1002", "done")
    kiosk.sim.fail_next_writes(1, "lift")  # the patron lifts the book while its tag is being written
    lifted = item_tag(0x1003, "B1003")
    kiosk.sim.place_tag(lifted)
    kiosk.wait_item("B1003", "tag_failed")
    kiosk.pump(lambda: tag_uid(0x1003) not in kiosk.controller._pad, what="the lifted book's departure")
    assert kiosk.wait_text("item.status:B1003", lambda text: "nhấc lên quá sớm" in text)
    assert kiosk.sim.afi_of(tag_uid(0x1001)) == UNSECURED and lifted.afi == SECURED
    assert kiosk.peer.loans_of("P1001") == {"B1001", "B1002", "B1003"}  # recorded; only the tag is missing
    kiosk.capture("borrow-put-back")

    kiosk.sim.place_tag(lifted)  # put back on the pad
    kiosk.wait_item("B1003", "done")
    assert "Truyện Kiều" in kiosk.text("item.title:B1001")
    assert kiosk.text("item.status:B1002").startswith("Đã mượn — hạn trả")
    kiosk.capture("borrow", large_too=True)
    assert [kiosk.sim.afi_of(tag_uid(n)) for n in (0x1001, 0x1002, 0x1003)] == [UNSECURED] * 3
    assert kiosk.peer.loans_of("P1001") == {"B1001", "B1002", "B1003"}
    assert sorted(kiosk.peer.applied.values()) == [1, 1, 1]

    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    kiosk.capture("receipt")
    assert "Số đỏ" in kiosk.text("receipt.text")
    kiosk.tap("receipt.print")
    kiosk.wait_text("notice", lambda text: text == "Đã in biên nhận.")
    printed = kiosk.printer_file.read_bytes()
    assert encode_cp1258("Dế Mèn phiêu lưu ký") in printed and printed.endswith(b"\x1dVB\x03")
    kiosk.tap("receipt.email")
    kiosk.wait_text("notice", lambda text: text.startswith("Đã gửi biên nhận"))
    [(sender, recipients, mail)] = kiosk.smtp.received()
    assert recipients == ["ban.doc@example.vn"] and "Truyện Kiều" in mail.get_payload(decode=True).decode()
    kiosk.tap("receipt.done")
    kiosk.wait_screen("start")
    assert kiosk.controller.model.session is None and kiosk.controller.model.desk is None


def test_refused_checkout_says_why_in_vietnamese_and_keeps_the_tag_secured(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P2001", pin="1111"))
    add_items(kiosk, PeerItem("B2001", "Từ điển Tiếng Việt", "Viện Ngôn ngữ học", in_library_only=True),
              PeerItem("B2002", "Tắt đèn", "Ngô Tất Tố"))
    kiosk.scan_barcode("P2001")  # a card at the start screen starts borrowing
    kiosk.enter_pin("1111")
    kiosk.wait_screen("borrow")
    kiosk.sim.place_tag(item_tag(0x2001, "B2001"))
    kiosk.sim.place_tag(item_tag(0x2002, "B2002"))
    kiosk.wait_item("B2001", "refused")
    kiosk.wait_item("B2002", "done")
    assert kiosk.text("item.status:B2001") == vi(ReasonCode.ITEM_IN_LIBRARY_ONLY)
    assert kiosk.sim.afi_of(tag_uid(0x2001)) == SECURED and kiosk.sim.afi_of(tag_uid(0x2002)) == UNSECURED
    assert kiosk.peer.loans_of("P2001") == {"B2002"}
    kiosk.capture("borrow-refused")
    kiosk.tap("lang.en")
    assert kiosk.text("item.status:B2001") == message(ReasonCode.ITEM_IN_LIBRARY_ONLY).en
    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    assert "Not completed" in kiosk.text("receipt.text") and "B2001" in kiosk.text("receipt.text")


def test_unknown_card_and_wrong_pin_say_what_to_do_next(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P3001", pin="4321"))
    kiosk.tap("start.borrow")
    kiosk.scan_barcode("X999999")
    kiosk.enter_pin("1234")
    kiosk.wait_screen("message")
    assert kiosk.text("message") == vi(ReasonCode.UNKNOWN_PATRON)
    assert "quầy thủ thư" in kiosk.text("message.next")
    kiosk.capture("message")
    kiosk.tap("message.ok")
    kiosk.wait_screen("start")

    kiosk.present_card_over_mqtt("P3001")  # an NFC card reader
    kiosk.enter_pin("0000")
    kiosk.wait_text("notice", lambda text: text == vi(ReasonCode.WRONG_PIN))
    assert kiosk.screen() == "pin" and "P3001" not in kiosk.text("notice")
    kiosk.capture("pin-wrong")
    kiosk.enter_pin("4321")
    kiosk.wait_screen("borrow")


def test_finish_with_an_unready_book_takes_its_loan_back(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P3501", pin="1212"))
    add_items(kiosk, PeerItem("B3501", "Chí Phèo", "Nam Cao"))
    kiosk.scan_barcode("P3501")
    kiosk.enter_pin("1212")
    kiosk.wait_screen("borrow")
    kiosk.sim.fail_next_writes(3, "error")
    kiosk.sim.place_tag(item_tag(0x3501, "B3501"))
    kiosk.wait_item("B3501", "tag_failed")
    kiosk.sim.remove_tag(tag_uid(0x3501))  # the patron picks it up instead of putting it back
    kiosk.pump(lambda: tag_uid(0x3501) not in kiosk.controller._pad, what="departure")
    kiosk.tap("finish")
    kiosk.wait_screen("finish_check")
    kiosk.capture("finish-check")
    kiosk.tap("finish_check.leave")
    kiosk.wait_screen("receipt")
    kiosk.pump(lambda: not kiosk.peer.on_loan("B3501"), what="the loan taken back")
    assert kiosk.sim.afi_of(tag_uid(0x3501)) == SECURED  # so the gate alarms, and the records agree


# --------------------------------------------------------------------------- return, multi-part


def test_return_with_a_hold_and_another_branch_says_leave_at_the_desk(kiosk: KioskRig) -> None:
    library = kiosk.peer.library
    library.add_patron(PeerPatron("P4001"))
    library.add_patron(PeerPatron("P4002"))
    add_items(kiosk, PeerItem("B4001", "Nỗi buồn chiến tranh", "Bảo Ninh", hold_for="P4002"),
              PeerItem("B4002", "Vợ nhặt", "Kim Lân"),
              PeerItem("B4003", "Đất rừng phương Nam", "Đoàn Giỏi", home_branch="Chi nhánh Phủ Lý"))
    due = datetime.now(timezone.utc) + timedelta(days=3)
    for item_id in ("B4001", "B4002", "B4003"):
        library.loans[item_id] = PeerLoan("P4001", due)
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
    assert kiosk.peer.loans_of("P4001") == set()
    assert all(request.card_id is None for request in kiosk.peer.ops(CirculationOp.CHECKIN))
    kiosk.capture("return")


def test_multi_part_set_is_never_checked_out_incomplete(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P5001", pin="5555"))
    add_items(kiosk, PeerItem("B5001", "Việt Nam sử lược", "Trần Trọng Kim", parts=2))
    kiosk.present_card_over_mqtt("P5001")
    kiosk.enter_pin("5555")
    kiosk.wait_screen("borrow")
    kiosk.sim.place_tag(item_tag(0x5001, "B5001", parts=2, part=1))
    kiosk.wait_item("B5001", "waiting_parts")
    kiosk.wait_item("B5001", "incomplete")  # the reader's set wait is over
    assert kiosk.text("item.status:B5001") == "Thiếu phần 2. Vui lòng đặt đủ các phần lên đầu đọc."
    assert not kiosk.peer.on_loan("B5001") and kiosk.sim.afi_of(tag_uid(0x5001)) == SECURED
    kiosk.capture("borrow-multipart")
    kiosk.sim.place_tag(item_tag(0x5002, "B5001", parts=2, part=2))
    kiosk.wait_item("B5001", "done")
    assert kiosk.peer.loans_of("P5001") == {"B5001"}
    assert kiosk.sim.afi_of(tag_uid(0x5001)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x5002)) == UNSECURED
    assert len(kiosk.peer.ops(CirculationOp.CHECKOUT)) >= 1 and max(kiosk.peer.applied.values()) == 1


# --------------------------------------------------------------------------- account


def test_account_shows_loans_holds_fines_and_renews(kiosk: KioskRig) -> None:
    library = kiosk.peer.library
    library.add_patron(PeerPatron("P9001", pin="9090", fines=Decimal("15000")))
    library.add_patron(PeerPatron("P9002"))
    add_items(kiosk, PeerItem("B9001", "Mắt biếc", "Nguyễn Nhật Ánh"),
              PeerItem("B9002", "Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh"),
              PeerItem("B9003", "Cánh đồng bất tận", "Nguyễn Ngọc Tư", hold_for="P9001", hold_ready=True),
              PeerItem("B9004", "Thương nhớ mười hai", "Vũ Bằng", hold_for="P9001"))
    now = datetime.now(timezone.utc)
    library.loans["B9001"] = PeerLoan("P9001", now - timedelta(days=2))
    library.loans["B9002"] = PeerLoan("P9001", now + timedelta(days=9))
    library.loans["B9004"] = PeerLoan("P9002", now + timedelta(days=4))
    kiosk.tap("start.account")
    kiosk.scan_barcode("P9001")
    kiosk.enter_pin("9090")
    kiosk.wait_screen("account")
    kiosk.pump(lambda: kiosk.app.controls.get("account.renew:B9002"), what="loans")
    assert kiosk.text("loan.due:B9001").startswith("Quá hạn")
    assert kiosk.text("hold.status:B9003").startswith("Đã sẵn sàng") and kiosk.text("hold.status:B9004") == "Đang chờ"
    assert kiosk.text("account.fines") == "Phí phạt: 15.000 đ"
    kiosk.pump(lambda: "Mắt biếc" in str([w.text for w in kiosk.app.controls.values() if hasattr(w, "text")]) or True)
    kiosk.capture("account")
    old_due = library.loans["B9002"].due_at
    kiosk.tap("account.renew:B9002")
    kiosk.wait_text("notice", lambda text: text.startswith("Gia hạn thành công"))
    assert library.loans["B9002"].due_at == old_due + timedelta(days=14)
    kiosk.tap("account.renew_all")
    kiosk.pump(lambda: library.loans["B9001"].renewals == 1, what="renew all")
    assert library.loans["B9002"].renewals == 2
    kiosk.tap("finish")
    kiosk.wait_screen("start")


# --------------------------------------------------------------------------- idle timeout


def test_idle_timeout_counts_down_and_forgets_the_patron(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P6001", pin="6006"))
    add_items(kiosk, PeerItem("B6001", "Gió lạnh đầu mùa", "Thạch Lam"), PeerItem("B6002", "Bỉ vỏ", "Nguyên Hồng"))
    kiosk.scan_barcode("P6001")
    kiosk.enter_pin("6006")
    kiosk.wait_screen("borrow")
    kiosk.sim.place_tag(item_tag(0x6001, "B6001"))
    kiosk.wait_item("B6001", "done")
    kiosk.sim.fail_next_writes(3, "error")
    kiosk.sim.place_tag(item_tag(0x6002, "B6002"))
    kiosk.wait_item("B6002", "tag_failed")
    kiosk.sim.remove_tag(tag_uid(0x6002))  # walks off with the unready book
    kiosk.pump(lambda: tag_uid(0x6002) not in kiosk.controller._pad, what="departure")
    assert kiosk.wait_text("countdown", lambda text: text.startswith("Tự động kết thúc sau"))

    kiosk.clock.advance(52)
    kiosk.pump(lambda: kiosk.app._overlay is not None, timeout_s=3, what="the still-there overlay")
    kiosk.capture("still-there")
    kiosk.tap("finish")  # any touch keeps the session (the overlay swallows it: nothing is pressed)
    kiosk.pump(lambda: kiosk.app._overlay is None, what="overlay dismissed by a touch")
    assert kiosk.screen() == "borrow"

    kiosk.clock.advance(61)
    kiosk.wait_screen("start", timeout_s=5)
    model = kiosk.controller.model
    assert model.session is None and model.desk is None and model.titles == {}
    texts = " ".join(str(getattr(widget, "text", "")) for widget in kiosk.app.root.walk())
    assert "Gió lạnh" not in texts and "P6001" not in texts and "B6001" not in texts
    kiosk.pump(lambda: not kiosk.peer.on_loan("B6002"), what="the unready loan taken back")
    assert kiosk.peer.loans_of("P6001") == {"B6001"}
    assert kiosk.sim.afi_of(tag_uid(0x6001)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x6002)) == SECURED
    modes = [state.mode for state in kiosk.states]
    assert KioskMode.IN_SESSION in modes and modes[-1] is KioskMode.IDLE


# --------------------------------------------------------------------------- offline


def test_offline_borrow_is_queued_and_replayed_once_after_the_backend_restarts(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P7001", pin="7007"))
    add_items(kiosk, PeerItem("B7001", "Những ngôi sao xa xôi", "Lê Minh Khuê"),
              PeerItem("B7002", "Người mẹ cầm súng", "Nguyễn Thi"))
    kiosk.peer.go_down()
    kiosk.pump(lambda: kiosk.app.controls.get("offline.banner"), what="the offline banner")
    kiosk.tap("start.borrow")
    kiosk.scan_barcode("P7001")
    kiosk.wait_screen("borrow")  # the PIN cannot be checked offline; the library accepts queued loans
    for number, item_id in ((0x7001, "B7001"), (0x7002, "B7002")):
        kiosk.sim.place_tag(item_tag(number, item_id))
    kiosk.wait_item("B7001", "done")
    kiosk.wait_item("B7002", "done")
    assert "ngoại tuyến" in kiosk.text("item.status:B7001")
    assert kiosk.sim.afi_of(tag_uid(0x7001)) == UNSECURED and kiosk.sim.afi_of(tag_uid(0x7002)) == UNSECURED
    assert kiosk.runtime.queue.pending_count() == 2 and kiosk.peer.loans_of("P7001") == set()
    kiosk.capture("borrow-offline")
    kiosk.pump(lambda: any(s.mode is KioskMode.OFFLINE and s.queued_transactions == 2 for s in kiosk.states),
               what="offline state with 2 queued")
    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    kiosk.tap("receipt.done")
    kiosk.wait_screen("start")

    kiosk.peer.come_back()
    kiosk.pump(lambda: kiosk.peer.loans_of("P7001") == {"B7001", "B7002"}, what="replayed loans")
    kiosk.pump(lambda: not kiosk.app.controls.get("offline.banner"), what="the offline banner gone")
    assert kiosk.runtime.queue.pending_count() == 0
    replays = [request for request in kiosk.peer.ops(CirculationOp.CHECKOUT) if request.card_id == "P7001"]
    assert [request.item_id for request in replays] == ["B7001", "B7002"]  # in the order they happened
    assert all(request.no_block and request.occurred_at < replays[-1].sent_at for request in replays)
    assert [kiosk.peer.applied[request.idempotency_key] for request in replays] == [1, 1]
    kiosk.pump(lambda: kiosk.states[-1].mode is KioskMode.IDLE and kiosk.states[-1].queued_transactions == 0,
               what="idle state after the replay")


def test_an_answer_lost_after_the_deadline_is_not_applied_twice(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P8001", pin="8008"))
    add_items(kiosk, PeerItem("B8001", "Vang bóng một thời", "Nguyễn Tuân"))
    kiosk.scan_barcode("P8001")
    kiosk.enter_pin("8008")
    kiosk.wait_screen("borrow")
    kiosk.peer.lose_answers = True  # the backend applies the checkout, its answer never arrives
    kiosk.sim.place_tag(item_tag(0x8001, "B8001"))
    kiosk.wait_item("B8001", "done", timeout_s=15)
    assert kiosk.peer.loans_of("P8001") == {"B8001"} and kiosk.runtime.queue.pending_count() == 1
    kiosk.peer.lose_answers = False
    kiosk.pump(lambda: kiosk.runtime.queue.pending_count() == 0, what="replay of the unanswered checkout")
    attempts = [request for request in kiosk.peer.ops(CirculationOp.CHECKOUT) if request.item_id == "B8001"]
    # A loaded machine may need more than one replay; what matters is one key, applied once.
    assert len(attempts) >= 2 and {request.idempotency_key for request in attempts} == {attempts[0].idempotency_key}
    assert kiosk.peer.applied[attempts[0].idempotency_key] == 1 and all(request.no_block for request in attempts[1:])
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
    kiosk.capture("technician")
    for digit in "1111":
        kiosk.tap(f"keypad.{digit}")
    kiosk.tap("keypad.ok")
    kiosk.wait_screen("start")  # a wrong code only goes back to the start


def test_expired_patron_gets_the_reason_and_the_desk(kiosk: KioskRig) -> None:
    kiosk.peer.library.add_patron(PeerPatron("P3101", pin="3131", expires_on=date(2020, 1, 31)))
    kiosk.tap("start.account")
    kiosk.scan_barcode("P3101")
    kiosk.enter_pin("3131")
    kiosk.wait_screen("message")
    assert kiosk.text("message") == vi(ReasonCode.PATRON_EXPIRED, date=date(2020, 1, 31))
