"""Every kiosk screen, in Vietnamese and English, at 1280×800 and 1920×1080: checked, and photographed for the docs.

The screens are reached the way a patron reaches them, against the real backend
(one library for the module, set up through its REST API), the reader service
and the simulated pad. On each screen, in each language and size, the layout
checks of :mod:`kiosk_layout` must pass: every character has a glyph in the font
it is drawn with, no text is cut off or larger than its widget, no widget
reaches outside its parent.

``OPENSHELF_WRITE_SCREENSHOTS=1`` also writes the PNGs into ``docs/kiosk/``
(``<screen>-<language>-<W>x<H>.png``, palette PNGs); without it only a screen
that fails a check is written, to the test's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.helpers import REPO

from kiosk_layout import LANGUAGES, SCREEN_SIZES, ScreenCamera
from kiosk_library import Library
from kiosk_rig import UNSECURED, KioskRig, item_tag, tag_uid

pytestmark = pytest.mark.e2e

# A multi-part set waits for its missing part for a minute here, long enough to photograph the waiting.
READER_OPTIONS = {"set_wait_ms": 60_000}
DOCS = REPO / "docs" / "kiosk"
SCREENS = ("start", "identify", "pin", "pin-wrong", "message", "borrow", "borrow-multipart", "idle-countdown",
           "finish-check", "receipt", "return", "account", "offline", "borrow-offline", "technician")
MAX_TOTAL_BYTES = 4_000_000


def writing() -> bool:
    return os.environ.get("OPENSHELF_WRITE_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def shelf(rig: KioskRig) -> Iterator[Library]:
    """One library for every screen of the module."""
    staff = rig.fresh_library()
    staff.patron("S1001", pin="2580", email="ban.doc@example.vn", name="Nguyễn Thị Hoa")
    staff.patron("S1002", pin="1357", name="Trần Văn Bình")
    for number, item_id, title, author, extra in (
        (0xA001, "V1001", "Truyện Kiều", "Nguyễn Du", {}),
        (0xA002, "V1002", "Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh", {}),
        (0xA003, "V1003", "Từ điển Tiếng Việt", "Viện Ngôn ngữ học", {"in_library_only": True}),
        (0xA005, "V1005", "Nhật ký Đặng Thùy Trâm", "Đặng Thùy Trâm", {}),
        (0xA006, "V1006", "Nỗi buồn chiến tranh", "Bảo Ninh", {}),
        (0xA007, "V1007", "Đất rừng phương Nam", "Đoàn Giỏi", {"home_branch": "PHULY"}),
        (0xA008, "V1008", "Vợ nhặt", "Kim Lân", {}),
        (0xA009, "V1009", "Mắt biếc", "Nguyễn Nhật Ánh", {}),
        (0xA00A, "V1010", "Cánh đồng bất tận", "Nguyễn Ngọc Tư", {}),
        (0xA00B, "V1011", "Thương nhớ mười hai", "Vũ Bằng", {}),
        (0xA00C, "V1012", "Những ngôi sao xa xôi", "Lê Minh Khuê", {}),
        (0xA00D, "V1013", "Dế Mèn phiêu lưu ký", "Tô Hoài", {}),
    ):
        staff.item(item_id, title, author, tags=(tag_uid(number),), **extra)
    staff.item("V1004", "Việt Nam sử lược", "Trần Trọng Kim", tags=(tag_uid(0xA010), tag_uid(0xA011)))
    yield staff
    staff.close()


@pytest.fixture(scope="module")
def camera(rig: KioskRig, tmp_path_factory: pytest.TempPathFactory) -> ScreenCamera:
    return ScreenCamera(rig.pump, rig.app, rig.controller, DOCS, write=writing(),
                        failures_dir=tmp_path_factory.mktemp("screen-failures"))


def capture(kiosk: KioskRig, camera: ScreenCamera, name: str) -> None:
    assert name in SCREENS
    # The bottom bar shows its countdown from the kiosk's next tick on (at most a second after a touch).
    kiosk.pump(lambda: "countdown" not in kiosk.app.controls or kiosk.text("countdown"), what="the countdown")
    with kiosk.clock.held():  # photographing is not the patron's idle time
        written = camera.capture(name)
    assert len(written) == (len(LANGUAGES) * len(SCREEN_SIZES) if writing() else 0)


def test_start_identify_pin_and_message(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    capture(kiosk, camera, "start")
    kiosk.tap("start.borrow")
    kiosk.wait_screen("identify")
    capture(kiosk, camera, "identify")
    kiosk.scan_barcode("S1001")
    kiosk.wait_screen("pin")
    for digit in "25":
        kiosk.tap(f"keypad.{digit}")
    capture(kiosk, camera, "pin")
    for digit in "11":
        kiosk.tap(f"keypad.{digit}")
    kiosk.tap("keypad.ok")
    kiosk.wait_text("notice", lambda text: text == "Mã PIN không đúng.")
    capture(kiosk, camera, "pin-wrong")
    kiosk.tap("cancel")
    kiosk.wait_screen("start")
    kiosk.scan_barcode("X0000000")
    kiosk.enter_pin("1234")
    kiosk.wait_screen("message")
    capture(kiosk, camera, "message")


def test_borrow_with_every_item_state_then_receipt(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    kiosk.sign_in("S1001", "2580")
    kiosk.sim.place_tag(item_tag(0xA001, "V1001"))
    kiosk.sim.place_tag(item_tag(0xA003, "V1003"))
    kiosk.wait_item("V1001", "done")
    kiosk.wait_item("V1003", "refused")
    kiosk.sim.fail_next_writes(1, "lift")
    kiosk.sim.place_tag(item_tag(0xA002, "V1002"))
    kiosk.wait_item("V1002", "tag_failed")
    kiosk.wait_departed(0xA002)
    wait_titles(kiosk, {"V1001": "Truyện Kiều", "V1002": "Tôi thấy hoa vàng", "V1003": "Từ điển"})
    capture(kiosk, camera, "borrow")  # ✓, refused, lifted too early

    kiosk.clock.advance(52)
    kiosk.pump(lambda: kiosk.app._overlay is not None, what="the still-there overlay")
    capture(kiosk, camera, "idle-countdown")
    kiosk.tap("finish")  # a touch keeps the session
    kiosk.pump(lambda: kiosk.app._overlay is None, what="the overlay gone")

    kiosk.tap("finish")
    kiosk.wait_screen("finish_check")
    capture(kiosk, camera, "finish-check")
    kiosk.tap("finish_check.leave")
    kiosk.wait_screen("receipt")
    capture(kiosk, camera, "receipt")
    assert shelf.loaned_items("S1001") == {"V1001"}


def test_multi_part_set_waiting_for_its_second_part(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    kiosk.sign_in("S1001", "2580")
    kiosk.sim.place_tag(item_tag(0xA00D, "V1013"))
    kiosk.wait_item("V1013", "done")
    kiosk.sim.place_tag(item_tag(0xA010, "V1004", parts=2, part=1))
    kiosk.wait_item("V1004", "waiting_parts")
    wait_titles(kiosk, {"V1013": "Dế Mèn", "V1004": "Việt Nam sử lược"})
    capture(kiosk, camera, "borrow-multipart")
    assert shelf.loan_of("V1004") is None


def test_return_with_a_hold_and_another_branch(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    for item_id in ("V1006", "V1007", "V1008"):
        shelf.lend(item_id, "S1002")
    shelf.hold("S1001", "V1006")
    kiosk.tap("start.return")
    kiosk.wait_screen("return")
    for number, item_id in ((0xA006, "V1006"), (0xA007, "V1007"), (0xA008, "V1008")):
        kiosk.sim.place_tag(item_tag(number, item_id, afi=UNSECURED))
    for item_id, stage in (("V1006", "leave_at_desk"), ("V1007", "leave_at_desk"), ("V1008", "done")):
        kiosk.wait_item(item_id, stage)
    wait_titles(kiosk, {"V1006": "Nỗi buồn", "V1007": "Đất rừng", "V1008": "Vợ nhặt"})
    capture(kiosk, camera, "return")


def test_account_with_loans_holds_and_fines(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    kiosk.stack.replay_offline_checkout("S1002", "V1009", datetime.now(timezone.utc) - timedelta(days=18))
    shelf.lend("V1005", "S1002")
    for item_id in ("V1010", "V1011"):
        shelf.lend(item_id, "S1001")
        shelf.hold("S1002", item_id)
    shelf.take_back("V1010")  # ready for pickup
    shelf.fine("S1002", Decimal("15000"), "Sách bị hỏng")
    kiosk.tap("start.account")
    kiosk.scan_barcode("S1002")
    kiosk.enter_pin("1357")
    kiosk.wait_screen("account")
    wait_titles(kiosk, {"V1009": "Mắt biếc", "V1005": "Nhật ký", "V1010": "Cánh đồng", "V1011": "Thương nhớ"})
    capture(kiosk, camera, "account")


def test_offline_banner_and_an_offline_borrow(kiosk: KioskRig, shelf: Library, camera: ScreenCamera) -> None:
    kiosk.kill_backend()
    kiosk.pump(lambda: kiosk.app.controls.get("offline.banner"), what="the offline banner")
    capture(kiosk, camera, "offline")
    kiosk.tap("start.borrow")
    kiosk.scan_barcode("S1001")
    kiosk.wait_screen("borrow")
    kiosk.sim.place_tag(item_tag(0xA00C, "V1012"))
    kiosk.wait_item("V1012", "done")
    capture(kiosk, camera, "borrow-offline")  # titles are not known offline: the screen shows the item id
    kiosk.tap("finish")
    kiosk.wait_screen("receipt")
    kiosk.tap("receipt.done")
    kiosk.restart_backend()
    kiosk.pump(lambda: kiosk.runtime.queue.pending_count() == 0, what="the offline loan replayed")
    assert "V1012" in shelf.loaned_items("S1001")


def test_technician_exit(kiosk: KioskRig, camera: ScreenCamera) -> None:
    for _ in range(5):
        kiosk.tap("technician")
    kiosk.wait_screen("technician")
    for digit in "24":
        kiosk.tap(f"keypad.{digit}")
    capture(kiosk, camera, "technician")


def test_the_docs_hold_every_screenshot() -> None:
    """Runs last: docs/kiosk has every screen in every language and size, and docs/kiosk.md shows them all."""
    expected = {f"{screen}-{language}-{width}x{height}.png" for screen in SCREENS for language in LANGUAGES
                for width, height in SCREEN_SIZES}
    present = {path.name for path in DOCS.glob("*.png")}
    assert expected <= present, f"missing from docs/kiosk (run with OPENSHELF_WRITE_SCREENSHOTS=1): " \
                                f"{sorted(expected - present)}"
    assert present <= expected, f"screenshots no test writes: {sorted(present - expected)}"
    assert sum((DOCS / name).stat().st_size for name in present) < MAX_TOTAL_BYTES
    page = (REPO / "docs" / "kiosk.md").read_text(encoding="utf-8")
    assert [name for name in sorted(expected) if f"kiosk/{name}" not in page] == []


def wait_titles(kiosk: KioskRig, titles: dict[str, str]) -> None:
    """The titles have come from the backend (the rows show ids until then)."""
    def shown() -> bool:
        texts = " ".join(str(getattr(widget, "text", "")) for widget in kiosk.app.root.walk())
        return all(title in texts for title in titles.values())

    kiosk.pump(shown, what=f"titles {sorted(titles.values())}")
