"""PeriodicChore: a chore repeated on its own thread, surviving the failures it expects."""

from __future__ import annotations

import threading

from backend.periodic import PeriodicChore
from tests.helpers import wait_for


class DatabaseAway(Exception):
    pass


def test_runs_at_start_when_asked_then_every_turn_and_survives_expected_failures() -> None:
    calls: list[int] = []
    failures: list[Exception] = []

    def chore() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise DatabaseAway("gone for a moment")

    periodic = PeriodicChore("test-chore", 0.01, chore, expected=(DatabaseAway,), on_failure=failures.append,
                             at_start=True)
    periodic.start()
    try:
        wait_for(lambda: len(calls) >= 4, what="four turns")
    finally:
        periodic.stop()
    assert [str(exc) for exc in failures] == ["gone for a moment"]
    assert calls[:4] == [0, 1, 2, 3]
    assert not any(thread.name == "test-chore" for thread in threading.enumerate())


def test_without_at_start_the_first_turn_waits_a_whole_interval() -> None:
    calls: list[str] = []
    periodic = PeriodicChore("test-chore-late", 3600.0, lambda: calls.append("ran"), expected=(DatabaseAway,),
                             on_failure=lambda exc: None)
    periodic.start()
    periodic.stop()  # stopped long before its first turn
    assert calls == []
