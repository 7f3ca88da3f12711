"""The kiosk's building blocks: flat high-contrast buttons, wrapping text, drawn status icons, covers, QR."""

from __future__ import annotations

import colorsys
import logging
from typing import Any, Callable

from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle, Triangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.ui import theme
from kiosk.view import Icon

log = logging.getLogger(__name__)


def _paint_background(widget: Widget, colour: theme.Colour, radius: float = 0.0) -> None:
    with widget.canvas.before:
        widget._bg_colour = Color(*colour)
        shape = RoundedRectangle(radius=[radius]) if radius else Rectangle()
    widget._bg_shape = shape

    def follow(*_: Any) -> None:
        shape.pos, shape.size = widget.pos, widget.size

    widget.bind(pos=follow, size=follow)
    follow()


class Panel(BoxLayout):
    """A BoxLayout with a solid background."""

    def __init__(self, colour: theme.Colour = theme.BACKGROUND, radius: float = 0.0, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if name is not None:
            self.kiosk_name = name
        _paint_background(self, colour, radius)


class Text(Label):
    """Wrapping text. ``fit=True`` makes its height follow the text (for stacked layouts)."""

    def __init__(self, text: str = "", *, size: float, colour: theme.Colour = theme.TEXT, bold: bool = False,
                 align: str = "left", valign: str = "middle", fit: bool = False, shorten: bool = False,
                 name: str | None = None, **kwargs: Any) -> None:
        if name is not None:
            self.kiosk_name = name
        super().__init__(text=text, font_size=size, color=colour, bold=bold, halign=align, valign=valign,
                         shorten=shorten, shorten_from="right", **kwargs)
        if shorten:
            self.max_lines = 1
        self._fit = fit
        if fit:
            self.size_hint_y = None
            self.bind(texture_size=lambda *_: setattr(self, "height", self.texture_size[1]))
        self.bind(size=self._wrap)
        self._wrap()

    def _wrap(self, *_: Any) -> None:
        self.text_size = (self.width, None) if self._fit else (self.width, self.height)

    def show(self, text: str, colour: theme.Colour | None = None) -> None:
        """Change the text (and colour) of a label already on screen."""
        if text == self.text and (colour is None or tuple(self.color) == tuple(colour)):
            return
        _draw_on_new_texture(self)
        self.text = text
        if colour is not None:
            self.color = colour


def _draw_on_new_texture(label: Label) -> None:
    """Make the label's next text render into a new texture instead of its current one.

    Kivy rewrites a label's texture in place when its size stays the same; with software OpenGL (llvmpipe)
    writing into a texture the last frame drew from waits for that frame to finish: ~10 ms per label, which
    made updating a row in place slower than building the page anew.
    """
    core = getattr(label, "_label", None)
    if core is not None:
        core.texture = None


class KioskButton(ButtonBehavior, Label):
    """A big flat button; ``name`` identifies it (tests tap buttons by name)."""

    def __init__(self, text: str, *, name: str, on_press: Callable[[], None], size: float,
                 colour: theme.Colour = theme.PRIMARY, text_colour: theme.Colour = theme.PRIMARY_TEXT,
                 radius: float = 12.0, enabled: bool = True, **kwargs: Any) -> None:
        super().__init__(text=text, font_size=size, color=text_colour if enabled else theme.BACKGROUND,
                         bold=True, halign="center", valign="middle", **kwargs)
        self.kiosk_name = name
        self._colour = colour if enabled else theme.DISABLED
        self._action = on_press
        self.enabled = enabled
        _paint_background(self, self._colour, radius)
        self.bind(size=lambda *_: setattr(self, "text_size", (self.width * 0.92, self.height * 0.92)))

    def on_state(self, instance: Any, state: str) -> None:
        darker = tuple(channel * 0.75 for channel in self._colour[:3]) + (1.0,)
        self._bg_colour.rgba = darker if state == "down" else self._colour

    def on_release(self) -> None:
        if self.enabled:
            self._action()


class StatusIcon(Widget):
    """Drawn (not a font glyph, so never a missing-glyph box): ✓, ✗, !, …, or a clock."""

    def __init__(self, icon: Icon, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if name is not None:
            self.kiosk_name = name
        self.icon = icon
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    def show(self, icon: Icon) -> None:
        if icon is not self.icon:
            self.icon = icon
            self._draw()

    def _draw(self, *_: Any) -> None:
        self.canvas.clear()
        side = min(self.width, self.height) * 0.8
        cx, cy = _middle(self)
        left, bottom = cx - side / 2, cy - side / 2
        width = max(2.0, side / 9)
        with self.canvas:
            if self.icon is Icon.DONE:
                Color(*theme.DONE)
                Ellipse(pos=(left, bottom), size=(side, side))
                Color(*theme.BACKGROUND)
                Line(points=[left + side * 0.25, bottom + side * 0.5, left + side * 0.43, bottom + side * 0.3,
                             left + side * 0.76, bottom + side * 0.7], width=width, cap="round", joint="round")
            elif self.icon is Icon.ERROR:
                Color(*theme.ERROR)
                Ellipse(pos=(left, bottom), size=(side, side))
                Color(*theme.BACKGROUND)
                inset = side * 0.3
                Line(points=[left + inset, bottom + inset, left + side - inset, bottom + side - inset], width=width,
                     cap="round")
                Line(points=[left + inset, bottom + side - inset, left + side - inset, bottom + inset], width=width,
                     cap="round")
            elif self.icon is Icon.WARNING:
                self._warning_sign(cx, left, bottom, side)
            elif self.icon is Icon.WORKING:
                Color(*theme.PRIMARY)
                dot = side / 6
                for index in range(3):
                    Ellipse(pos=(left + side * (0.12 + index * 0.3), cy - dot / 2), size=(dot, dot))
            elif self.icon is Icon.WAITING:  # a clock face (Kivy's line width is half the stroke)
                Color(*theme.PRIMARY)
                stroke = side / 16
                Line(circle=(cx, cy, side / 2 - stroke), width=stroke)
                Line(points=[cx, cy + side * 0.28, cx, cy, cx + side * 0.2, cy], width=stroke, cap="round",
                     joint="round")

    @staticmethod
    def _warning_sign(cx: float, left: float, bottom: float, side: float) -> None:
        """A filled triangle with a white exclamation mark (an outline with a '!' of the same colour reads as a blob)."""
        top = bottom + side * 0.92
        Color(*theme.WARNING)
        Triangle(points=[left, bottom, left + side, bottom, cx, top])
        Color(*theme.BACKGROUND)
        stroke = side / 16
        Line(points=[cx, bottom + side * 0.64, cx, bottom + side * 0.36], width=stroke, cap="round")
        Ellipse(pos=(cx - stroke * 1.2, bottom + side * 0.12), size=(stroke * 2.4, stroke * 2.4))


def _middle(widget: Widget) -> tuple[float, float]:
    """The widget's centre from its pos and size: ``center`` is an alias that can still hold the old value
    inside a pos/size callback, which drew icons where the widget had been."""
    return widget.x + widget.width / 2, widget.y + widget.height / 2


class Cover(Widget):
    """A cover placeholder: a coloured book shape with the title's first letter."""

    def __init__(self, letter: str, hue: float, *, size_px: float, **kwargs: Any) -> None:
        super().__init__(size_hint=(None, None), size=(size_px * 0.72, size_px), **kwargs)
        with self.canvas:
            self._colour = Color(*_cover_colour(hue))
            self._shape = RoundedRectangle(radius=[size_px * 0.06])
            Color(1, 1, 1, 0.25)
            self._spine = Rectangle()
        self._label = Label(text=letter, font_size=size_px * 0.45, bold=True, color=(1, 1, 1, 1))
        self.add_widget(self._label)
        self.bind(pos=self._layout, size=self._layout)
        self._layout()

    def show(self, letter: str, hue: float) -> None:
        if letter != self._label.text:
            _draw_on_new_texture(self._label)
            self._label.text = letter
        colour = _cover_colour(hue)
        if tuple(self._colour.rgba) != colour:
            self._colour.rgba = colour

    def _layout(self, *_: Any) -> None:
        self._shape.pos, self._shape.size = self.pos, self.size
        self._spine.pos, self._spine.size = (self.x + self.width * 0.08, self.y), (self.width * 0.06, self.height)
        self._label.pos, self._label.size = self.pos, self.size


def _cover_colour(hue: float) -> tuple[float, float, float, float]:
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.55, 0.55)  # dark enough for white text (>= 4.5:1)
    return red, green, blue, 1.0


class QrCode(Widget):
    """A QR code drawn as squares; empty when the optional ``qrcode`` package is missing."""

    def __init__(self, payload: str, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if name is not None:
            self.kiosk_name = name
        self._matrix = qr_matrix(payload)
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    @property
    def available(self) -> bool:
        return bool(self._matrix)

    def _draw(self, *_: Any) -> None:
        self.canvas.clear()
        if not self._matrix:
            return
        count = len(self._matrix) + 8  # four modules of quiet zone on each side
        module = min(self.width, self.height) / count
        centre_x, centre_y = _middle(self)
        left = centre_x - module * count / 2
        top = centre_y + module * count / 2
        with self.canvas:
            Color(*theme.BACKGROUND)
            Rectangle(pos=(left, top - module * count), size=(module * count, module * count))
            Color(0, 0, 0, 1)
            for row_index, row in enumerate(self._matrix):
                for column_index, dark in enumerate(row):
                    if dark:
                        Rectangle(pos=(left + (column_index + 4) * module, top - (row_index + 5) * module),
                                  size=(module, module))


def qr_matrix(payload: str) -> list[list[bool]]:
    try:
        import qrcode
    except ImportError:
        log.info("qrcode is not installed: receipts show no QR code on screen")
        return []
    code = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]
