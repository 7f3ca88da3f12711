"""Kivy set-up that must happen before Kivy opens its window: lockdown, size, logging, input.

Call :func:`prepare_kivy` before anything imports ``kivy.core.window``.

Lockdown, as far as an application can do it (the rest is the session: see
docs/kiosk.md): full screen and borderless, no Escape-to-quit, no F1 settings
panel, no Kivy inspector or other debug modules, right-click multitouch
emulation off, SDL not minimising on focus loss and grabbing the keyboard so
Alt+Tab and friends reach the kiosk instead of the desktop, and SDL leaving
SIGINT/SIGTERM alone (the kiosk stops cleanly on them itself; a window-close
request is refused).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class _QuietOptionalInputs(logging.Filter):
    """Kivy logs a traceback for every optional Linux input provider it cannot load (mtdev, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Input:") and ("not supported" in message or "not available" in message):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def prepare_kivy(*, fullscreen: bool, size: tuple[int, int] | None, kivy_home: Path | None = None) -> None:
    os.environ.setdefault("KIVY_NO_ARGS", "1")  # our command line is ours
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy logs through the process's logging set-up
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    os.environ["SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS"] = "0"
    if fullscreen:
        os.environ["SDL_GRAB_KEYBOARD"] = "1"
    if kivy_home is not None:
        os.environ["KIVY_HOME"] = str(kivy_home)
    logging.getLogger("kivy").addFilter(_QuietOptionalInputs())

    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    # The default clock: frames at most every 1/maxfps, work posted from other threads runs at the next one
    # (within 17 ms). The "interrupt" clock runs such work at once, but any callback due every frame (each
    # Kivy Animation, e.g. a ScrollView's scroll bar fading out) then stops it sleeping at all: after every
    # page rebuild the loop redrew hundreds of times a second, taking every core under software rendering.
    Config.set("kivy", "kivy_clock", "default")
    Config.set("graphics", "maxfps", "60")
    Config.set("kivy", "keyboard_mode", "system")
    Config.set("kivy", "pause_on_minimize", "0")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "borderless", "1" if fullscreen else "0")
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    Config.set("graphics", "multisamples", "0")
    if size is not None:
        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
    for option, _ in Config.items("input"):
        Config.remove_option("input", option)
    Config.set("input", "mouse", "mouse,disable_multitouch")
    for option, _ in Config.items("modules"):
        Config.remove_option("modules", option)


def display_available() -> bool:
    """True when a desktop session can show a window (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
