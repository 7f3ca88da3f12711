"""``kiosk.bench``: the place → ✓ benchmark runs end to end and reports something sane (no timed assertions).

The bench opens a Kivy window, one per process: it runs as a subprocess here,
as a user would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from kiosk.bench import STAGES, Book, BorrowRun, KioskBenchOptions, _item_counts, _splits, make_plan
from tests.helpers import REPO

EXPECTED_PROCESSES = {"sim-pad", "backend", "rfid-pad", "broker", "probe", "kiosk (bench process)"}


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in the report: strict JSON readers reject it")

    return dict(json.loads(text, parse_constant=refuse))


@pytest.mark.e2e
def test_one_borrow_of_one_book_is_measured_through_the_real_processes() -> None:
    done = subprocess.run([sys.executable, "-m", "kiosk.bench", "--json", "--runs", "1", "--items", "1",
                           "--floor-samples", "50"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = _strict_json(done.stdout)

    borrows = report["borrows"]["1"]
    assert borrows["runs"] == 1
    assert borrows["items_placed"] == borrows["items_done"] == 1
    assert borrows["not_done"] == {}
    item = borrows["item_placed_to_check"]
    assert item["n"] == 1 and 0 < item["p50_ms"] <= item["p95_ms"] <= item["max_ms"]
    assert borrows["borrow_first_placed_to_last_check"]["max_ms"] == item["max_ms"]  # one book: the same moment
    split = borrows["split"]
    assert set(split) == {name for name, *_ in STAGES}
    assert all(stage["n"] == 1 for stage in split.values())  # each stage seen once, in order or not
    assert sum(stage["p50_ms"] for stage in split.values()) == pytest.approx(item["p50_ms"], abs=0.01)
    assert borrows["ui"]["page_rebuilds_per_borrow"] >= 1

    floor = report["floor"]
    assert floor["poll_interval_ms"] == report["config"]["poll_interval_ms"] == 50
    assert 0 < floor["broker_hop_p50_ms"] <= floor["broker_hop_p99_ms"]
    assert set(report["cpu_percent_of_one_core"]) == EXPECTED_PROCESSES
    assert report["memory_mb"]["backend"] > 0
    assert len(report["machine"]["load_average_after"]) == 3
    assert report["machine"]["cores"] >= 1


def test_the_plan_gives_every_borrow_its_own_patron_and_books() -> None:
    plan = make_plan(KioskBenchOptions(runs=2, items=(1, 3)))
    assert [size for size, _, _ in plan.borrows] == [0, 1, 1, 3, 3]  # the warm-up first
    assert [len(books) for _, _, books in plan.borrows] == [1, 1, 1, 3, 3]
    assert len({book.uid for book in plan.books}) == len({book.item_id for book in plan.books}) == 9
    assert len({patron.card.uid for patron in plan.patrons}) == 5
    assert not {book.uid for book in plan.books} & {patron.card.uid for patron in plan.patrons}


def test_splits_follow_each_item_through_the_probes_record() -> None:
    books = [Book("KB000001", "E00401B000000001", ""), Book("KB000002", "E00401B000000002", "")]
    ms = 1_000_000
    run = BorrowRun(size=2, placed_ns=1000 * ms, books=books, checks_ns={"KB000001": 1100 * ms}, not_done={},
                    renders=1, frame_ms=[])
    seen = [
        [999 * ms, "tag_arrived", books[0].uid],  # before the placement: another borrow's
        [1001 * ms, "place_seen", books[0].uid], [1001 * ms, "place_seen", books[1].uid],
        [1020 * ms, "tag_arrived", books[0].uid],
        [1030 * ms, "checkout", "KB000001", "c1"], [1035 * ms, "checkout_reply", "c1", True],
        [1036 * ms, "secure", books[0].uid, "s1"], [1040 * ms, "secure_reply", "s1", True],
        [1040 * ms, "secure", books[0].uid, "s2"],  # a second request for the same tag: the first one counts
    ]
    split = _splits([run], seen)
    assert split["reader_sees_tag"]["n"] == 2 - 1  # the second book never arrived
    assert split["reader_sees_tag"]["p50_ms"] == pytest.approx(19.0)
    assert split["backend_checkout"]["p50_ms"] == pytest.approx(5.0)
    assert split["reader_unsecures"]["p50_ms"] == pytest.approx(4.0)
    assert split["kiosk_shows_check"]["p50_ms"] == pytest.approx(60.0)
    assert split["place_to_simulator"]["n"] == 2


@pytest.mark.parametrize("text, expected", [("1,10", (1, 10)), ("5", (5,)), (" 2, 3 ", (2, 3))])
def test_item_counts_are_read_from_the_command_line(text: str, expected: tuple[int, ...]) -> None:
    assert _item_counts(text) == expected


@pytest.mark.parametrize("text", ["", "0", "1,x", "25"])
def test_impossible_item_counts_are_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        _item_counts(text)
