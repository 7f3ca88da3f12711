"""The kiosk under test: the real Kivy app (headless), the real reader service on a simulated FEIG pad,
a protocol peer answering circulation, an SMTP sink and a file printer.

The Kivy app runs in the test process on the main thread: the test pumps its
event loop (``pump``) instead of calling ``App.run``; everything else is the
code ``openshelf kiosk`` runs. One Kivy window per process, so one rig per
test module.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from openshelf.contract import CardPresented, CardTechnology, Channel, KioskState, Kind, TopicParts, topic
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings, load_site

from kiosk_fonts import missing_glyphs
from kiosk_peer import KioskPeer
from kiosk_smtp import SmtpSink
from rfid.readersim import SimulatedReader, VirtualTag
from rfid.readersim.tcp_transport import TcpTransport
from rfid.tagdata import UsageType, encode_iso28560_3
from tests.helpers import Proc, wait_for

KIOSK = "kiosk-1"
PAD = "pad-1"
SECURED, UNSECURED = 0x07, 0xC2
EXIT_CODE = "24680"
KIOSK_SECRET = "kiosk-secret-demo"
SCREENSHOT_SIZES = ((1280, 800), (1920, 1080))
_MARKUP = re.compile(r"\[/?[a-z]+(=[^\]]*)?\]")


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
    def __init__(self, workdir: Path, broker_url: str, screenshots: Path) -> None:
        self.workdir = workdir
        self.broker_url = broker_url
        self.screenshots = screenshots
        self.site_id = f"t{uuid.uuid4().hex[:10]}"
        self.clock = ShiftableClock()
        self.sim = SimulatedReader()
        self.transport = TcpTransport(self.sim)
        self.smtp = SmtpSink()
        self.peer = KioskPeer(broker_url, self.site_id, kiosk_credentials=(KIOSK, KIOSK_SECRET))
        self.printer_file = workdir / "printer.bin"
        self.states: list[KioskState] = []
        self._observer = MqttLink(BrokerSettings(url=broker_url), client_id=f"{self.site_id}-observer")
        self.reader_proc: Proc | None = None
        self.runtime: Any = None

    # ------------------------------------------------------------------ lifecycle

    def write_site(self) -> Path:
        kiosk = {"id": KIOSK, "name": "Máy mượn trả 1", "secret": KIOSK_SECRET, "pad_reader": PAD,
                 "language": "vi", "require_pin": True, "idle_timeout_s": 60, "backend_deadline_ms": 3000,
                 "offline_mode": "queue", "exit_code": EXIT_CODE, "fullscreen": False,
                 "printer": {"kind": "escpos-file", "device": str(self.printer_file), "codepage": "cp1258"},
                 "smtp": {"host": "127.0.0.1", "port": self.smtp.port, "starttls": False,
                          "sender": "thuvien@example.vn"}}
        reader = {"id": PAD, "role": "pad", "port": self.transport.url, "profile": "feig-sim", "secret": "pad-secret",
                  "poll_interval_ms": 30, "departed_after_ms": 300, "write_retries": 2, "write_backoff_ms": 10,
                  "set_wait_ms": 1200}
        document = {"site": self.site_id, "name": "Thư viện tỉnh Hà Nam", "demo": True,
                    "data_dir": str(self.workdir / "data"), "broker": {"url": self.broker_url},
                    "backend": {"id": "backend", "public_url": self.peer.url, "secret": "backend-secret"},
                    "readers": [reader], "kiosks": [kiosk]}
        path = self.workdir / "site.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        return path

    def start(self) -> "KioskRig":
        self.transport.start()
        self.smtp.start()
        self.peer.start()
        site_path = self.write_site()
        state_topic = topic(self.site_id, Kind.KIOSK, KIOSK, Channel.STATE)
        self._observer.subscribe(state_topic, KioskState, self._keep_state)
        assert self._observer.start()
        self.reader_proc = Proc("rfid-pad", ["rfid", "run", "--site", str(site_path), "--device", PAD],
                                self.workdir / "rfid.log").start()
        self._start_app(site_path)
        return self

    def _start_app(self, site_path: Path) -> None:
        os.environ["KIVY_HOME"] = str(self.workdir / "kivy-home")
        from kiosk.ui.bootstrap import prepare_kivy

        prepare_kivy(fullscreen=False, size=SCREENSHOT_SIZES[0])
        from kivy.base import runTouchApp

        from kiosk.controller import RetryTimings
        from kiosk.main import build_kiosk

        # Automatic retries wait longer than in production, so a test can see the failure before it heals.
        self.runtime = build_kiosk(load_site(site_path), KIOSK, lockdown=False, clock=self.clock, replay_retry_s=0.5,
                                   retry=RetryTimings(after_s=4.0))
        self.runtime.start()
        wait_for(self.runtime.link.connected.is_set, 10, what="kiosk broker connection")
        self.app._run_prepare()
        runTouchApp(embedded=True)
        self.pump(lambda: self.app.controls.get("start.borrow"), what="start screen")

    def stop(self) -> None:
        try:
            if self.runtime is not None:
                self.app.stop()
                self.runtime.close()
        finally:
            if self.reader_proc is not None:
                code = self.reader_proc.stop()
                assert code == 0, f"reader service exited with {code}"
                assert "Traceback" not in self.reader_proc.log_text()
            self._observer.stop()
            self.peer.close()
            self.smtp.stop()
            self.transport.stop()

    @property
    def app(self) -> Any:
        return self.runtime.app

    @property
    def controller(self) -> Any:
        return self.runtime.controller

    # ------------------------------------------------------------------ driving

    def pump(self, until: Callable[[], Any] | None = None, *, frames: int = 0, timeout_s: float = 10.0,
             what: str = "") -> Any:
        """Run the Kivy event loop until ``until()`` is truthy (or for ``frames`` frames)."""
        from kivy.base import EventLoop

        deadline = time.monotonic() + timeout_s
        for _ in range(frames):
            EventLoop.idle()
        while until is not None:
            EventLoop.idle()
            value = until()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or until}; "
                                     f"screen {self.controller.model.screen.value}, controls {sorted(self.app.controls)[:40]}")
        return None

    def tap(self, name: str) -> None:
        from kivy.tests.common import UnitTestTouch

        widget = self.pump(lambda: self.app.controls.get(name), what=f"control {name!r}")
        assert getattr(widget, "enabled", True), f"{name} is disabled"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(frames=2)

    def text(self, name: str) -> str:
        widget = self.app.controls.get(name)
        return "" if widget is None else str(widget.text)

    def wait_text(self, name: str, predicate: Callable[[str], bool], *, timeout_s: float = 10.0) -> str:
        return self.pump(lambda: (lambda text: text if predicate(text) else None)(self.text(name)),
                         timeout_s=timeout_s, what=f"{name} text")

    def screen(self) -> str:
        return str(self.controller.model.screen.value)

    def wait_screen(self, screen: str, timeout_s: float = 10.0) -> None:
        self.pump(lambda: self.screen() == screen and self.app.controls, timeout_s=timeout_s,
                  what=f"screen {screen}")

    def scan_barcode(self, code: str) -> None:
        """A keyboard-wedge scanner: the characters, then Enter, all within a few milliseconds."""
        from kivy.core.window import Window

        Window.dispatch("on_textinput", code)
        Window.dispatch("on_keyboard", 13, 40, None, [])
        self.pump(frames=2)

    def present_card_over_mqtt(self, card_id: str) -> None:
        event = CardPresented(reader_id=PAD, card_id=card_id, technology=CardTechnology.ISO14443A)
        self._observer.publish(topic(self.site_id, Kind.READER, PAD, Channel.EVENT, "card_presented"),
                               event).wait_for_publish(5)

    def enter_pin(self, pin: str) -> None:
        self.wait_screen("pin")
        for digit in pin:
            self.tap(f"keypad.{digit}")
        self.tap("keypad.ok")

    def item_row_status(self, item_id: str) -> str:
        return self.text(f"item.status:{item_id}")

    def wait_item(self, item_id: str, stage: str, timeout_s: float = 10.0) -> Any:
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

    def reset(self) -> None:
        """Back to the start screen with an empty pad, as a patron walking away leaves it."""
        for uid in [uid.hex().upper() for uid in self.sim.field_uids()]:
            self.sim.remove_tag(uid)
        self.peer.silent = self.peer.lose_answers = False
        self.controller.end_session("test reset")
        self.pump(lambda: not self.controller._pad, timeout_s=5, what="empty pad")
        self.wait_screen("start")

    def _keep_state(self, parts: TopicParts, state: KioskState) -> None:
        self.states.append(state)

    # ------------------------------------------------------------------ screenshots and layout checks

    def capture(self, name: str, *, large_too: bool = False) -> list[Path]:
        """Screenshots of the current screen in both languages; every one passes the layout checks."""
        with self.clock.held():
            return self._capture(name, large_too)

    def _capture(self, name: str, large_too: bool) -> list[Path]:
        from kivy.core.window import Window

        original = self.controller.t.language
        written = []
        sizes = SCREENSHOT_SIZES if large_too else SCREENSHOT_SIZES[:1]
        for size in SCREENSHOT_SIZES:
            if tuple(Window.size) != size:
                Window.size = size
                self.pump(lambda: tuple(Window.size) == size and self.app.root.width == size[0], frames=3,
                          what=f"window {size}")
            for language in ("vi", "en"):
                self.controller.t.set_language(language)
                self.controller._refresh()
                self.pump(frames=3)
                problems = layout_problems(self.app.root)
                suffix = "" if size == SCREENSHOT_SIZES[0] else f"-{size[0]}x{size[1]}"
                path = self.screenshots / f"{name}-{language}{suffix}.png"
                if size in sizes or problems:  # a failing layout is always kept, to look at
                    self.app.root.export_to_png(str(path))
                    written.append(path)
                assert not problems, f"{name} ({language}, {size[0]}x{size[1]}): {problems} (see {path})"
        Window.size = SCREENSHOT_SIZES[0]
        self.pump(lambda: self.app.root.width == SCREENSHOT_SIZES[0][0], frames=3, what="window back to 1280x800")
        self.controller.t.set_language(original)
        self.controller._refresh()
        self.pump(frames=2)
        return written


def _font_of(label: Any) -> Path:
    import kivy

    fonts = Path(kivy.__file__).parent / "data" / "fonts"
    return fonts / ("Roboto-Bold.ttf" if label.bold else "Roboto-Regular.ttf")


def layout_problems(root: Any) -> list[str]:
    """Missing glyphs, shortened or overflowing text, widgets outside their parent (scrolled content excepted)."""
    from kivy.core.window import Window
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    problems: list[str] = []

    def visit(widget: Any, clip: tuple[float, float, float, float] | None) -> None:
        if isinstance(widget, Label) and widget.text:
            problems.extend(_label_problems(widget))
        if clip is not None and widget.width > 0 and widget.height > 0:
            x, y, right, top = _rect(widget)
            left, bottom, clip_right, clip_top = clip
            if x < left - 1 or y < bottom - 1 or right > clip_right + 1 or top > clip_top + 1:
                problems.append(f"{type(widget).__name__} {getattr(widget, 'kiosk_name', '')!r} "
                                f"{_short(getattr(widget, 'text', ''))!r} outside its box")
        child_clip = None if isinstance(widget, ScrollView) else _rect(widget)
        for child in widget.children:
            visit(child, child_clip)

    visit(root, (0.0, 0.0, float(Window.width), float(Window.height)))
    return problems


def _rect(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, x + widget.width, y + widget.height


def _short(text: str) -> str:
    return text[:40]


def _label_problems(label: Any) -> list[str]:
    from kivy.core.text import Label as CoreLabel
    from kivy.core.text.markup import MarkupLabel

    text = _MARKUP.sub("", label.text) if label.markup else label.text
    problems = []
    missing = missing_glyphs(text, _font_of(label))
    if missing:
        problems.append(f"missing glyphs {sorted(missing)} in {_short(text)!r}")
    if getattr(label, "is_shortened", False):
        problems.append(f"text shortened: {_short(text)!r}")
    width, height = label.text_size
    if width is None or label.width <= 0:
        return problems
    measure = (MarkupLabel if label.markup else CoreLabel)(text=label.text, font_size=label.font_size,
                                                           bold=label.bold, text_size=(width, None),
                                                           halign=label.halign)
    measure.refresh()
    needed = measure.content_size[1] if hasattr(measure, "content_size") else measure.texture.size[1]
    box = height if height is not None else label.height
    if needed > box + 2:
        problems.append(f"text taller than its box ({needed:.0f} > {box:.0f} px): {_short(text)!r}")
    return problems
