"""Colours and sizes: high contrast, large touch targets, text readable at arm's length.

Sizes are fractions of the window height, so the same layout fills 1280×800 and
1920×1080. Text on every background meets WCAG AAA contrast (7:1) or better.
"""

from __future__ import annotations

from dataclasses import dataclass

Colour = tuple[float, float, float, float]


def rgb(hex_colour: str) -> Colour:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255, 1.0)


BACKGROUND = rgb("#FFFFFF")
TEXT = rgb("#111111")
MUTED_TEXT = rgb("#3A3A3A")
BAR = rgb("#0B3A6E")  # top bar: white text on dark blue, 11.6:1
BAR_TEXT = rgb("#FFFFFF")
PRIMARY = rgb("#0B4F9C")  # buttons: white on blue, 8.3:1
PRIMARY_TEXT = rgb("#FFFFFF")
SECONDARY = rgb("#E6ECF3")
SECONDARY_TEXT = rgb("#0B2B4F")
DONE = rgb("#116329")  # green 7.5:1 on white
ERROR = rgb("#A4161A")  # red 7.4:1 on white
WARNING = rgb("#7A4A00")  # dark amber 7.3:1 on white
WARNING_BACKGROUND = rgb("#FFF1CC")
OFFLINE = rgb("#FFD54F")
OFFLINE_TEXT = rgb("#111111")
ROW = rgb("#F4F6F8")
DISABLED = rgb("#9AA5B1")
OVERLAY = (0.0, 0.0, 0.0, 0.55)


@dataclass(frozen=True)
class Metrics:
    """Sizes in pixels for a window of ``height`` pixels."""

    height: float

    def u(self, percent: float) -> float:
        return self.height * percent / 100

    @property
    def heading(self) -> float:
        return self.u(5.6)

    @property
    def body(self) -> float:
        return self.u(3.5)

    @property
    def small(self) -> float:
        return self.u(2.9)

    @property
    def button(self) -> float:
        return self.u(11)

    @property
    def pad(self) -> float:
        return self.u(2)
