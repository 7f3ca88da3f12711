"""Kiosk fixtures: one rig (Kivy app and real processes) per test module, a fresh library per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk_library import Library
from kiosk_rig import KioskRig


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KioskRig]:
    """The kiosk and everything around it; a module may set ``READER_OPTIONS`` for the pad reader."""
    options = getattr(request.module, "READER_OPTIONS", None)
    kiosk = KioskRig(tmp_path_factory.mktemp("kiosk"), reader_options=options).start()
    yield kiosk
    kiosk.stop()


@pytest.fixture
def kiosk(rig: KioskRig) -> Iterator[KioskRig]:
    rig.wait_screen("start")
    yield rig
    rig.reset()


@pytest.fixture
def library(kiosk: KioskRig) -> Iterator[Library]:
    """The real backend on a database of its own, and a librarian logged in to its REST API."""
    staff = kiosk.fresh_library()
    yield staff
    staff.close()
