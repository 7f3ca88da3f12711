"""The Kivy application: one window, locked down, drawing whatever view the controller hands it.

Widgets change only here, on the main thread: :meth:`KioskApp.render` is called
by the controller (main thread), and work from other threads reaches the
controller through :meth:`KioskApp.post` (Kivy's Clock is thread-safe).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.widget import Widget

from kiosk.controller import KioskController
from kiosk.ui import theme
from kiosk.ui.screens import ScreenBuilder
from kiosk.ui.widgets import Panel, Text
from kiosk.view import KioskView
from kiosk.wedge import BarcodeWedge

log = logging.getLogger(__name__)

ENTER_KEYS = {13, 271}  # Return, keypad Enter
BLOCKED_KEYS = {27, 9} | set(range(282, 294))  # Escape, Tab, F1-F12: never reach Kivy's defaults


class KioskRoot(FloatLayout):
    """Every touch anywhere counts as activity (it resets the idle countdown)."""

    def __init__(self, on_activity: Callable[[], None], swallowing: Callable[[], bool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_activity = on_activity
        self._swallowing = swallowing

    def on_touch_down(self, touch: Any) -> bool:
        swallow = self._swallowing()  # asked first: the activity below takes the overlay away
        self._on_activity()
        return True if swallow else bool(super().on_touch_down(touch))


class KioskApp(App):
    title = "OpenShelf"
    use_kivy_settings = False

    def __init__(self, *, stop_event: threading.Event | None = None, on_ready: Callable[[], None] | None = None,
                 lockdown: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.controller: KioskController | None = None
        self._stop_event = stop_event
        self._on_ready = on_ready
        self._lockdown = lockdown
        self._view: KioskView | None = None
        self._content: KioskView | None = None
        self._builder: ScreenBuilder | None = None
        self._page: Widget | None = None
        self._overlay: Widget | None = None
        self._wedge = BarcodeWedge(self._scanned)
        self.controls: dict[str, Widget] = {}
        self.renders = 0  # pages built
        self.row_updates = 0  # pages updated in place (only item rows changed)
        self._events: list[Any] = []
        self._render_trigger: Any = None

    def attach(self, controller: KioskController) -> None:
        self.controller = controller

    # ------------------------------------------------------------------ lifecycle

    def build(self) -> KioskRoot:
        return KioskRoot(on_activity=self._activity, swallowing=lambda: self._overlay is not None)

    def on_start(self) -> None:
        from kivy.core.window import Window

        Window.bind(on_keyboard=self._on_keyboard, on_textinput=self._on_textinput,
                    on_request_close=self._refuse_close, on_resize=self._on_resize)
        if self._lockdown and hasattr(Window, "grab_mouse"):
            Window.grab_mouse()  # with SDL_GRAB_KEYBOARD the keyboard is grabbed too
        self._events = [Clock.schedule_interval(lambda dt: self._tick(), 1.0),
                        Clock.schedule_interval(self._wait_first_frames, 0)]
        assert self.controller is not None, "attach a controller before starting the app"
        self.controller.start()

    def _wait_first_frames(self, dt: float) -> bool | None:
        if Clock.frames_displayed < 3:
            return None
        if self._on_ready is not None:
            self._on_ready()
        return False

    def on_stop(self) -> None:
        from kivy.core.window import Window

        for event in self._events:
            event.cancel()
        if self._render_trigger is not None:
            self._render_trigger.cancel()
        Window.unbind(on_keyboard=self._on_keyboard, on_textinput=self._on_textinput,
                      on_request_close=self._refuse_close, on_resize=self._on_resize)
        if self.controller is not None:
            self.controller.stop()

    def open_settings(self, *args: Any) -> bool:
        return False  # F1 must never open Kivy's settings panel on a public kiosk

    def _refuse_close(self, *args: Any, **kwargs: Any) -> bool:
        log.info("window close request refused (kiosk lockdown)")
        return True

    # ------------------------------------------------------------------ threads → main thread

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the main thread at the next frame (safe to call from any thread)."""
        Clock.schedule_once(lambda dt: fn(), -1)

    def _tick(self) -> None:
        if self._stop_event is not None and self._stop_event.is_set():
            self.stop()
            return
        if self.controller is not None:
            self.controller.tick()

    # ------------------------------------------------------------------ input

    def _activity(self) -> None:
        if self.controller is not None:
            self.controller.touch()

    def _on_keyboard(self, window: Any, key: int, scancode: int, codepoint: str | None, modifiers: list[str]) -> bool:
        if key in ENTER_KEYS:
            self._wedge.enter()
            return True
        return key in BLOCKED_KEYS or bool(modifiers and {"alt", "ctrl", "meta"} & set(modifiers))

    def _on_textinput(self, window: Any, text: str) -> None:
        self._wedge.text(text)

    def _scanned(self, code: str) -> None:
        if self.controller is not None:
            self.controller.card(code)

    def _on_resize(self, *args: Any) -> None:
        self._content = None  # sizes are relative to the window: rebuild
        if self._view is not None:
            self.render(self._view)

    # ------------------------------------------------------------------ drawing

    def render(self, view: KioskView) -> None:
        """Show ``view`` at the next frame: several changes within one frame cost one page rebuild.

        Ten books on the pad change the page thirty times in a second (placed, titled, ✓); rebuilt
        one by one, inside one frame, the patron saw nothing until all ten ✓ appeared together.
        """
        self._view = view
        if self._render_trigger is None:
            self._render_trigger = Clock.create_trigger(self._render_latest, 0)
        self._render_trigger()

    @property
    def render_pending(self) -> bool:
        """A view was handed in that the screen does not show yet (it will at the next frame)."""
        return self._render_trigger is not None and bool(self._render_trigger.is_triggered)

    def _render_latest(self, dt: float) -> None:
        if self._view is not None:
            self._render_now(self._view)

    def _render_now(self, view: KioskView) -> None:
        """Rebuild the page only when more than the countdown and the item rows changed."""
        if self.root is None or self.controller is None:
            return
        content = view.content()
        if self._builder is None or self._content is None:
            self._build_page(view)
        elif content != self._content and not self._update_rows(view):
            self._build_page(view)
        self._content = content
        assert self._builder is not None
        if self._builder.countdown_label is not None:
            self._builder.countdown_label.text = view.countdown_text
        self._show_still_there(view)

    def _update_rows(self, view: KioskView) -> bool:
        assert self._builder is not None
        added = self._builder.update_rows(view)
        if added is None:
            return False
        for row in added:
            self.controls.update(_named_widgets(row))
        self.row_updates += 1
        return True

    def _build_page(self, view: KioskView) -> None:
        from kivy.core.window import Window

        root = self.root
        assert root is not None and self.controller is not None
        metrics = theme.Metrics(Window.height)
        self._builder = ScreenBuilder(view, metrics, self.controller.t, self.controller)
        page = self._builder.build()
        if self._page is not None:
            root.remove_widget(self._page)
        root.add_widget(page, index=len(root.children))
        self._page = page
        self.controls = _named_widgets(page)
        self.renders += 1

    def _show_still_there(self, view: KioskView) -> None:
        from kivy.core.window import Window

        if not view.still_there:
            if self._overlay is not None and self.root is not None:
                self.root.remove_widget(self._overlay)
                self._overlay = None
            return
        metrics = theme.Metrics(Window.height)
        if self._overlay is None:
            self._overlay = _StillThere(metrics, size_hint=(1, 1))
            assert self.root is not None
            self.root.add_widget(self._overlay)
        assert self.controller is not None
        self._overlay.show(self.controller.t("countdown.still_there"), view.countdown_text)


def _named_widgets(tree: Widget) -> dict[str, Widget]:
    return {widget.kiosk_name: widget for widget in tree.walk(restrict=True) if hasattr(widget, "kiosk_name")}


class _StillThere(FloatLayout):
    """A dimmed screen with the countdown in large type; any touch dismisses it."""

    def __init__(self, metrics: theme.Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from kivy.graphics import Color, Rectangle

        with self.canvas.before:
            Color(*theme.OVERLAY)
            self._shade = Rectangle()
        self.bind(pos=self._follow, size=self._follow)
        box = Panel(theme.BACKGROUND, radius=metrics.u(2), orientation="vertical", size_hint=(0.7, 0.45),
                    pos_hint={"center_x": 0.5, "center_y": 0.5}, padding=metrics.u(4), spacing=metrics.u(2))
        self._question = Text("", size=metrics.u(5), bold=True, align="center", name="still_there")
        self._seconds = Text("", size=metrics.body, align="center", colour=theme.ERROR, bold=True)
        box.add_widget(self._question)
        box.add_widget(self._seconds)
        self.add_widget(box)
        self.kiosk_name = "still_there.overlay"

    def _follow(self, *_: Any) -> None:
        self._shade.pos, self._shade.size = self.pos, self.size

    def show(self, question: str, seconds: str) -> None:
        self._question.text, self._seconds.text = question, seconds

    def on_touch_down(self, touch: Any) -> bool:
        return True  # the touch only wakes the session (KioskRoot saw it); it presses nothing underneath
