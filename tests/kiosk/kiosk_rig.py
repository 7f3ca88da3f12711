"""The kiosk under test: the real Kivy app (headless) in this process, everything else real processes.

Around it (:mod:`kiosk_stack`): Mosquitto with per-device credentials, the real
``openshelf backend`` with standalone circulation (a fresh SQLite database when
a test asks for a library), the FEIG simulator and ``openshelf rfid run`` for
the pad, an SMTP sink and a file printer.

The Kivy app runs on the main thread: the test pumps its event loop (``pump``)
instead of calling ``App.run``; everything else is the code ``openshelf kiosk``
runs. One Kivy app at a time per process, so one rig per test module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openshelf.site import load_site
from rfid.readersim import VirtualTag
from rfid.tagdata import UsageType, encode_iso28560_3
from tests.helpers import wait_for

from kiosk_library import Library
from kiosk_stack import KIOSK, KioskStack

SECURED, UNSECURED = 0x07, 0xC2
WINDOW_SIZE = (1280, 800)
DEADLINE_S = 20.0  # for anything that crosses processes on a loaded machine


class ShiftableClock:
    """time.monotonic plus an offset the test can move (idle timeouts without waiting), or hold still."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._held: float | None = None

    def __call__(self) -> float:
        return self._held if self._held is not None else time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    @contextmanager
    def held(self) -> Iterator[None]:
        """Time stands still inside the block (taking screenshots is not the patron's idle time)."""
        self._held = self()
        try:
            yield
        finally:
            self.offset = self._held - time.monotonic()
            self._held = None


def tag_uid(number: int) -> str:
    return f"E00401{number:010X}"


def item_tag(number: int, item_id: str, *, parts: int = 1, part: int = 1, afi: int = SECURED) -> VirtualTag:
    memory = encode_iso28560_3(item_id, parts_in_set=parts, part_number=part, country="VN", owner_isil="HN0001")
    return VirtualTag.holding(bytes.fromhex(tag_uid(number)), memory, afi=afi)


def patron_card_tag(number: int, card_id: str) -> VirtualTag:
    memory = encode_iso28560_3(card_id, usage=UsageType.PATRON_CARD, country="VN", owner_isil="HN0001")
    return VirtualTag.holding(bytes.fromhex(tag_uid(number)), memory, afi=SECURED)


class KioskRig:
    def __init__(self, workdir: Path, *, reader_options: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.stack = KioskStack(workdir, reader_options=reader_options)
        self.clock = ShiftableClock()
        self.runtime: Any = None
        self._database_used = False

    @property
    def sim(self) -> Any:
        return self.stack.sim

    @property
    def printer_file(self) -> Path:
        return self.stack.printer_file

    @property
    def smtp(self) -> Any:
        return self.stack.smtp

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "KioskRig":
        try:
            self.stack.start()  # the reader and the backend start in the background while Kivy starts here
            self._start_app()
            self.stack.wait_ready()
            self.wait_backend_online()
        except BaseException:
            self.stop()  # nothing may outlive a failed start
            raise
        return self

    def _start_app(self) -> None:
        os.environ["KIVY_HOME"] = str(self.workdir / "kivy-home")
        from kiosk.ui.bootstrap import prepare_kivy

        prepare_kivy(fullscreen=False, size=WINDOW_SIZE)
        from kivy.base import runTouchApp
        from kivy.core.window import Window

        from kiosk.controller import RetryTimings
        from kiosk.main import build_kiosk

        Window.size = WINDOW_SIZE  # the window outlives an earlier module's app
        # Automatic retries wait longer than in production, so a test can see the failure before it heals.
        self.runtime = build_kiosk(load_site(self.stack.site_path), KIOSK, lockdown=False, clock=self.clock,
                                   replay_retry_s=0.5, retry=RetryTimings(after_s=4.0))
        self.runtime.start()
        wait_for(self.runtime.link.connected.is_set, DEADLINE_S, what="kiosk broker connection")
        self.app._run_prepare()
        runTouchApp(embedded=True)
        self.pump(lambda: self.app.controls.get("start.borrow"), what="start screen")

    def stop(self) -> None:
        try:
            if self.runtime is not None:
                self.app.stop()
                self.runtime.close()
                self.runtime = None
        finally:
            self.stack.stop()

    @property
    def app(self) -> Any:
        return self.runtime.app

    @property
    def controller(self) -> Any:
        return self.runtime.controller

    # ------------------------------------------------------------------ the backend

    def fresh_library(self) -> Library:
        """The backend on a new database (restarted unless the current one was never handed out)."""
        if self._database_used:
            assert self.stack.stop_backend() == 0, "the backend did not stop cleanly"
            self.stack.start_backend(self.stack.fresh_database())
        self._database_used = True
        self.wait_backend_online()
        return self.stack.librarian()

    def kill_backend(self) -> None:
        self.stack.kill_backend()
        self.pump(lambda: not self.controller.model.backend_online, timeout_s=DEADLINE_S,
                  what="the kiosk noticing the backend is gone")

    def restart_backend(self) -> None:
        """The backend again, on the same database (a restart after a crash or an update)."""
        self.stack.start_backend(self.stack.database)

    def wait_backend_online(self) -> None:
        self.pump(lambda: self.runtime.link.connected.is_set() and self.controller.model.backend_online
                  and not self.controller.model.offline, timeout_s=DEADLINE_S, what="the kiosk seeing the backend")

    # ------------------------------------------------------------------ driving

    def pump(self, until: Callable[[], Any] | None = None, *, frames: int = 0, timeout_s: float = DEADLINE_S,
             what: str = "", every_s: float = 0.0) -> Any:
        """Run the Kivy event loop until ``until()`` is truthy (asked every frame, or every ``every_s``)."""
        from kivy.base import EventLoop

        deadline = time.monotonic() + timeout_s
        for _ in range(frames):
            EventLoop.idle()
        next_question = 0.0
        while until is not None:
            EventLoop.idle()
            now = time.monotonic()
            if now >= next_question:
                next_question = now + every_s
                value = until()
                if value:
                    return value
            if now > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or until}; "
                                     f"screen {self.screen()}, controls {sorted(self.app.controls)[:40]}")
        return None

    def wait_backend(self, predicate: Callable[[], Any], what: str) -> Any:
        """Keep the kiosk running until ``predicate`` (which asks the backend over HTTP) holds."""
        return self.pump(predicate, every_s=0.1, what=what)

    def tap(self, name: str) -> None:
        from kivy.tests.common import UnitTestTouch

        widget = self.pump(lambda: not self.app.render_pending and self.app.controls.get(name),
                           what=f"control {name!r}")
        assert getattr(widget, "enabled", True), f"{name} is disabled"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(frames=2)

    def text(self, name: str) -> str:
        """The text the patron sees now (after the frame that shows the latest state)."""
        if self.app.render_pending:
            self.pump(lambda: not self.app.render_pending, what="the page to show the latest state")
        widget = self.app.controls.get(name)
        return "" if widget is None else str(widget.text)

    def wait_text(self, name: str, predicate: Callable[[str], bool], *, timeout_s: float = DEADLINE_S) -> str:
        return self.pump(lambda: (lambda text: text if predicate(text) else None)(self.text(name)),
                         timeout_s=timeout_s, what=f"{name} text (now {self.text(name)!r})")

    def screen(self) -> str:
        return str(self.controller.model.screen.value)

    def wait_screen(self, screen: str, timeout_s: float = DEADLINE_S) -> None:
        self.pump(lambda: self.screen() == screen and not self.app.render_pending and self.app.controls,
                  timeout_s=timeout_s, what=f"screen {screen}")

    def scan_barcode(self, code: str) -> None:
        """A keyboard-wedge scanner: the characters, then Enter, all within a few milliseconds."""
        from kivy.core.window import Window

        Window.dispatch("on_textinput", code)
        Window.dispatch("on_keyboard", 13, 40, None, [])
        self.pump(frames=2)

    def present_card(self, card_id: str) -> None:
        """A patron card on the kiosk's NFC reader."""
        self.stack.present_card(card_id)

    def enter_pin(self, pin: str) -> None:
        self.wait_screen("pin")
        for digit in pin:
            self.tap(f"keypad.{digit}")
        self.tap("keypad.ok")

    def sign_in(self, card_id: str, pin: str) -> None:
        """Borrow: the card scanned at the start screen, then the PIN; waits for the borrow screen."""
        self.scan_barcode(card_id)
        self.enter_pin(pin)
        self.wait_screen("borrow")

    def item_row_status(self, item_id: str) -> str:
        return self.text(f"item.status:{item_id}")

    def wait_item(self, item_id: str, stage: str, timeout_s: float = DEADLINE_S) -> Any:
        def line() -> Any:
            desk = self.controller.model.desk
            found = desk.lines.get(item_id) if desk else None
            return found if found is not None and found.stage.value == stage else None

        def describe() -> str:
            desk = self.controller.model.desk
            found = desk.lines.get(item_id) if desk else None
            return f"{item_id} {stage} (now {found.stage.value if found else 'absent'}: {self.item_row_status(item_id)!r})"

        try:
            return self.pump(line, timeout_s=timeout_s, what=f"{item_id} {stage}")
        except AssertionError as exc:
            raise AssertionError(f"{describe()}: {exc}") from None

    def wait_departed(self, number: int) -> None:
        """The reader reported the tag gone and the kiosk heard it."""
        self.pump(lambda: tag_uid(number) not in self.controller._pad, what=f"tag {tag_uid(number)} departure")

    def reset(self) -> None:
        """Back to the start screen with an empty pad, as a patron walking away leaves it."""
        for uid in [uid.hex().upper() for uid in self.sim.field_uids()]:
            self.sim.remove_tag(uid)
        self.controller.end_session("test reset")
        self.pump(lambda: not self.controller._pad, what="empty pad")
        self.wait_screen("start")
