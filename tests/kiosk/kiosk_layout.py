"""Checks every screen can pass, and its screenshots.

:func:`layout_problems` walks the widget tree of what is on screen and reports:

* a glyph the label's font does not have (it would show as a box): the font's
  ``cmap`` against every character shown (:mod:`kiosk_fonts`);
* text that does not fit its widget: a label drawn with ``shorten`` that had to
  shorten, wrapped text taller than its box (measured with Kivy's own text
  layout), an unwrapped label whose texture is larger than the label;
* a widget reaching outside its parent (scrolled content excepted), or
  drawing (rectangles, ellipses, lines, triangles of its canvas) outside itself.

:class:`ScreenCamera` runs the checks on the current screen in both languages at
1280×800 and 1920×1080, and writes PNGs (``<screen>-<language>-<W>x<H>.png``)
when asked to, or into the failure folder when a check fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kiosk_fonts import missing_glyphs
from kiosk_png import write_palette_png

SCREEN_SIZES = ((1280, 800), (1920, 1080))
LANGUAGES = ("vi", "en")
SLACK_PX = 2  # rounding in Kivy's layout
_MARKUP = re.compile(r"\[/?[a-z]+(=[^\]]*)?\]")


def layout_problems(root: Any) -> list[str]:
    from kivy.core.window import Window
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    problems: list[str] = []

    def visit(widget: Any, clip: tuple[float, float, float, float] | None) -> None:
        if isinstance(widget, Label) and widget.text:
            problems.extend(label_problems(widget))
        problems.extend(drawing_problems(widget))
        if clip is not None and widget.width > 0 and widget.height > 0:
            x, y, right, top = _rect(widget)
            left, bottom, clip_right, clip_top = clip
            if x < left - SLACK_PX or y < bottom - SLACK_PX or right > clip_right + SLACK_PX or top > clip_top + SLACK_PX:
                problems.append(f"{_describe(widget)} reaches outside its parent")
        child_clip = None if isinstance(widget, ScrollView) else _rect(widget)
        for child in widget.children:
            visit(child, child_clip)

    visit(root, (0.0, 0.0, float(Window.width), float(Window.height)))
    return problems


def label_problems(label: Any) -> list[str]:
    text = _MARKUP.sub("", label.text) if label.markup else label.text
    problems = []
    missing = missing_glyphs(text, font_file(label))
    if missing:
        problems.append(f"{_describe(label)}: no glyph for {sorted(missing)} in {font_file(label).name}")
    if getattr(label, "is_shortened", False):
        problems.append(f"{_describe(label)}: shortened to fit")
    width, height = label.text_size
    if width is None:  # not wrapped: the texture is the text's size
        if label.texture_size[0] > label.width + SLACK_PX or label.texture_size[1] > label.height + SLACK_PX:
            problems.append(f"{_describe(label)}: text {label.texture_size} larger than its widget "
                            f"({label.width:.0f}, {label.height:.0f})")
        return problems
    if label.width <= 0:
        return problems
    needed_width, needed_height = _measure(label, width)
    box = height if height is not None else label.height
    if needed_height > box + SLACK_PX:
        problems.append(f"{_describe(label)}: text taller than its box ({needed_height:.0f} > {box:.0f} px)")
    if needed_width > width + SLACK_PX:
        problems.append(f"{_describe(label)}: text wider than its box ({needed_width:.0f} > {width:.0f} px)")
    return problems


def drawing_problems(widget: Any) -> list[str]:
    """Shapes a widget draws outside its own box (instructions are in the same coordinates as its pos)."""
    problems = []
    left, bottom, right, top = widget.x, widget.y, widget.right, widget.top
    for canvas in (widget.canvas.before, widget.canvas, widget.canvas.after):
        for instruction in canvas.children if canvas is not None else ():
            box = _bounds(instruction)
            if box is None or widget.width <= 0 or widget.height <= 0:
                continue
            x0, y0, x1, y1 = box
            if x0 < left - SLACK_PX or y0 < bottom - SLACK_PX or x1 > right + SLACK_PX or y1 > top + SLACK_PX:
                problems.append(f"{_describe(widget)} draws a {type(instruction).__name__} at "
                                f"({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}), outside itself "
                                f"({left:.0f}, {bottom:.0f})-({right:.0f}, {top:.0f})")
    return problems


def _bounds(instruction: Any) -> tuple[float, float, float, float] | None:
    from kivy.graphics import Ellipse, Line, Rectangle, RoundedRectangle, Triangle

    if isinstance(instruction, (Rectangle, Ellipse, RoundedRectangle)):
        (x, y), (width, height) = instruction.pos, instruction.size
        return x, y, x + width, y + height
    if isinstance(instruction, (Line, Triangle)) and instruction.points:
        xs, ys = instruction.points[0::2], instruction.points[1::2]
        reach = instruction.width if isinstance(instruction, Line) else 0.0
        return min(xs) - reach, min(ys) - reach, max(xs) + reach, max(ys) + reach
    return None


def _measure(label: Any, width: float) -> tuple[float, float]:
    """The size the label's text needs when wrapped at ``width`` (Kivy's layout, nothing cut)."""
    from kivy.core.text import Label as CoreLabel
    from kivy.core.text.markup import MarkupLabel

    measure = (MarkupLabel if label.markup else CoreLabel)(
        text=label.text, font_size=label.font_size, font_name=label.font_name, bold=label.bold,
        text_size=(width, None), halign=label.halign, line_height=label.line_height,
        padding=label.padding)
    measure.refresh()
    return measure.content_size if hasattr(measure, "content_size") else measure.texture.size


def font_file(label: Any) -> Path:
    """The TrueType file Kivy draws this label with (its registered font family, regular or bold)."""
    from kivy.core.text import LabelBase
    from kivy.resources import resource_find

    family = LabelBase._fonts.get(label.font_name)
    if family is None:  # a font given by its file name
        return Path(resource_find(label.font_name) or label.font_name)
    regular, _italic, bold, _bold_italic = family
    return Path(bold if label.bold else regular)


def _rect(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, x + widget.width, y + widget.height


def _describe(widget: Any) -> str:
    name = getattr(widget, "kiosk_name", "")
    text = str(getattr(widget, "text", ""))[:50]
    return f"{type(widget).__name__}{f' {name!r}' if name else ''} {text!r}"


class ScreenCamera:
    """Checks (and, with ``write=True``, photographs) the current screen in every language and size."""

    def __init__(self, pump: Callable[..., Any], app: Any, controller: Any, out_dir: Path, *, write: bool,
                 failures_dir: Path) -> None:
        self._pump = pump
        self._app = app
        self._controller = controller
        self.out_dir = out_dir
        self.write = write
        self.failures_dir = failures_dir
        self.written: list[Path] = []

    def capture(self, name: str) -> list[Path]:
        """Every language × size of the current screen; fails with the problems found (and their PNGs)."""
        from kivy.core.window import Window

        original, problems, written = self._controller.t.language, [], []
        for size in SCREEN_SIZES:
            self._resize(size)
            for language in LANGUAGES:
                self._show_language(language)
                found = layout_problems(self._app.root)
                filename = f"{name}-{language}-{size[0]}x{size[1]}.png"
                if found:
                    problems += [f"{filename}: {problem}" for problem in found]
                    self._photograph(self.failures_dir / filename)
                if self.write:
                    written.append(self._photograph(self.out_dir / filename))
        self._resize(SCREEN_SIZES[0])
        self._show_language(original)
        assert tuple(Window.size) == SCREEN_SIZES[0]
        assert not problems, "layout problems (PNGs in {}):\n{}".format(self.failures_dir, "\n".join(problems))
        self.written += written
        return written

    def _resize(self, size: tuple[int, int]) -> None:
        from kivy.core.window import Window

        if tuple(Window.size) != size:
            Window.size = size
        builder = lambda: self._app._builder  # noqa: E731 - the page is rebuilt for the new size
        self._pump(lambda: tuple(Window.size) == size and list(self._app.root.size) == list(size)
                   and builder() is not None and builder().m.height == size[1], what=f"the screen laid out at {size}")
        self._pump(frames=2)

    def _show_language(self, language: str) -> None:
        controller = self._controller
        if controller.t.language != language:
            controller.t.set_language(language)  # not set_language(): that counts as a touch
            controller._refresh()
        self._pump(frames=3)

    def _photograph(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = self._app.root.export_as_image()
        width, height = image.texture.size
        rgba = np.frombuffer(image.texture.pixels, np.uint8).reshape(height, width, 4)
        write_palette_png(path, np.ascontiguousarray(rgba[:, :, :3]))
        return path
