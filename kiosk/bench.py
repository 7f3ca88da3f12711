"""``openshelf bench kiosk``: a book placed on the kiosk's pad → its "✓" on the screen, through the real processes.

The run starts a broker (Mosquitto when installed), the real ``openshelf backend``
(standalone circulation, a fresh SQLite database filled by ``openshelf import``),
the FEIG reader simulator and the reader service for the pad (``openshelf sim
reader``, ``openshelf rfid run``), and the real Kivy kiosk app in this process
(SDL2's offscreen driver when there is no display), pumped the way ``App.run``
pumps it. For each borrow the bench signs a new patron in (card on the pad, PIN
on the keypad), goes to Borrow, and places the books through the simulator's
control topic (``SimPlaceTags``).

Clocks: every stamp is ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for
every process on the machine). "Placed" is taken just before the place command
is published, so each figure includes the one broker hop to the simulator (the
split ``place command → simulator`` shows it). "✓" is taken after the frame in
which the item's status icon became the ✓: the moment a patron can see it.

A probe in a process of its own subscribes to the messages between the parts
(tag_arrived, the checkout request and reply, the secure_tag command and reply)
to split each item's time by who spent it. Beside the figures: the reader's poll
interval (placed → seen waits up to one poll), one broker hop measured in the
same run before the services start, the CPU share of every process and how busy
the machine was.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from openshelf.bench_gate import BenchBroker, Usage, _broker_floor, _free_port, _json_safe, _rss_mb, percentile
from openshelf.contract import (
    Channel,
    CirculationOp,
    CirculationReply,
    CirculationRequest,
    Kind,
    SecureTagReply,
    SecureTagRequest,
    SimPlaceTags,
    SimRemoveTags,
    SimTag,
    TagEvent,
    TopicParts,
    expires_in,
    topic,
)
from openshelf.demo import DEMO_KIOSK, DEMO_PAD_READER, demo_site
from openshelf.demo_catalog import DEMO_COUNTRY, DEMO_ISIL_LIBRARY
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from openshelf.supervisor import Child, Supervisor

log = logging.getLogger(__name__)

PIN = "2580"
SECURED_AFI = 0x07
READY_TIMEOUT_S = 90.0
STEP_TIMEOUT_S = 30.0  # sign-in, a screen change, a departure
BORROW_TIMEOUT_S = 30.0  # every ✓ of one borrow
DEPARTED_AFTER_MS = 300  # the pad's departure delay: only how soon the next borrow may start
WINDOW_SIZE = (1280, 800)
TARGET_ITEM_P95_MS = 500.0
TARGET_TEN_ITEMS_MS = 2000.0
SLOW_FRAME_MS = 50.0
# The hops between placing a book and its ✓: place → simulator, tag_arrived → kiosk, checkout → backend,
# reply → kiosk, secure_tag → reader, reply → kiosk.
HOPS_ON_PATH = 6
STAGES = (
    ("place_to_simulator", "placed", "place_seen",
     "the place command's hop to the simulator (the probe receives it beside the simulator)"),
    ("reader_sees_tag", "place_seen", "tag_arrived",
     "reader service: wait for the next poll, inventory, read the tag, publish tag_arrived"),
    ("kiosk_to_checkout", "tag_arrived", "checkout",
     "kiosk: tag_arrived → UI thread → worker → checkout request published"),
    ("backend_checkout", "checkout", "checkout_reply", "backend: checkout decided, stored and answered"),
    ("kiosk_to_secure", "checkout_reply", "secure", "kiosk worker: reply in → secure_tag command published"),
    ("reader_unsecures", "secure", "secure_reply",
     "reader service: wait for its turn between polls, write the AFI, read it back, answer"),
    ("kiosk_shows_check", "secure_reply", "check",
     "kiosk: reply → worker → UI thread → page rebuilt → frame drawn with the ✓"),
)


@dataclass(frozen=True)
class KioskBenchOptions:
    runs: int = 10
    items: tuple[int, ...] = (1, 10)
    poll_interval_ms: int = 50  # the demo's pad reader
    broker: str = "auto"
    floor_samples: int = 300
    keep_workdir: bool = False
    seed: int = 1


class KioskBenchError(RuntimeError):
    pass


# ------------------------------------------------------------------ the library: books, patrons, their tags


@dataclass(frozen=True)
class Book:
    item_id: str
    uid: str
    memory_hex: str

    def sim_tag(self) -> SimTag:
        return SimTag(uid=self.uid, memory_hex=self.memory_hex, afi=SECURED_AFI)


@dataclass(frozen=True)
class Patron:
    card_id: str
    card: Book  # the patron's ISO 15693 library card: a tag with the card number, usage "patron card"


def _book(index: int) -> Book:
    from rfid.tagdata import encode_iso28560_3

    item_id = f"KB{index:06d}"
    memory = encode_iso28560_3(item_id, country=DEMO_COUNTRY, owner_isil=DEMO_ISIL_LIBRARY)
    return Book(item_id, f"E00401B0{index:08X}", memory.hex().upper())


def _patron(index: int) -> Patron:
    from rfid.tagdata import UsageType, encode_iso28560_3

    card_id = f"KP{index:05d}"
    memory = encode_iso28560_3(card_id, usage=UsageType.PATRON_CARD, country=DEMO_COUNTRY,
                               owner_isil=DEMO_ISIL_LIBRARY)
    return Patron(card_id, Book(card_id, f"E00401C0{index:08X}", memory.hex().upper()))


@dataclass(frozen=True)
class Plan:
    """Every borrow of the run, warm-up first: (patron, books placed together)."""

    borrows: list[tuple[int, Patron, list[Book]]]  # (items per borrow, patron, books); size 0 = warm-up

    @property
    def books(self) -> list[Book]:
        return [book for _, _, books in self.borrows for book in books]

    @property
    def patrons(self) -> list[Patron]:
        return [patron for _, patron, _ in self.borrows]


def make_plan(options: KioskBenchOptions) -> Plan:
    sizes = [0] + [size for size in options.items for _ in range(options.runs)]
    borrows, next_book = [], 0
    for index, size in enumerate(sizes):
        count = max(1, size)
        borrows.append((size, _patron(index), [_book(next_book + offset) for offset in range(count)]))
        next_book += count
    return Plan(borrows)


def _write_import_files(workdir: Path, plan: Plan) -> tuple[Path, Path]:
    items, patrons = workdir / "items.csv", workdir / "patrons.csv"
    items.write_text("barcode,title,author,tag_uid\n" + "".join(
        f"{book.item_id},Sách thử {book.item_id},Tác giả thử,{book.uid}\n" for book in plan.books), encoding="utf-8")
    # "staff" may hold 20 loans by the default rules: a 10-item borrow is allowed.
    patrons.write_text("barcode,name,category,pin\n" + "".join(
        f"{patron.card_id},Bạn đọc {patron.card_id},staff,{PIN}\n" for patron in plan.patrons), encoding="utf-8")
    return items, patrons


def _import(site_path: Path, path: Path, kind: str, workdir: Path) -> None:
    """``openshelf import csv`` into the site database (it creates and migrates the database)."""
    done = subprocess.run([sys.executable, "-m", "openshelf", "import", "csv", str(path), "--kind", kind,
                           "--site", str(site_path)], capture_output=True, text=True, cwd=workdir, timeout=180)
    if done.returncode != 0:
        raise KioskBenchError(f"importing {kind} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _write_site(workdir: Path, broker_url: str, options: KioskBenchOptions) -> tuple[Path, str]:
    site = demo_site(broker_url=broker_url, http_port=_free_port(), modbus_port=_free_port(),
                     reader_port=_free_port(), pad_port=_free_port())
    site_id = f"kb{uuid.uuid4().hex[:10]}"
    site.update({"site": site_id, "data_dir": str(workdir / "data"), "gates": [], "cameras": []})
    pad = next(reader for reader in site["readers"] if reader["id"] == DEMO_PAD_READER)
    pad.update({"poll_interval_ms": options.poll_interval_ms, "departed_after_ms": DEPARTED_AFTER_MS})
    site["readers"] = [pad]
    site["kiosks"][0].update({"require_pin": True, "fullscreen": False, "language": "vi"})
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, site_id


# ------------------------------------------------------------------ the probe (its own process)


def serve_probe(broker_url: str, site_id: str) -> None:
    """Child process: stamp every message between the parts; stdin ``dump`` / ``quit``, JSON on stdout."""
    seen: list[list[Any]] = []
    lock = threading.Lock()

    def keep(*row: Any) -> None:
        stamp = time.monotonic_ns()
        with lock:
            seen.append([stamp, *row])

    def on_place(parts: TopicParts, command: SimPlaceTags) -> None:
        stamp = time.monotonic_ns()
        with lock:
            seen.extend([stamp, "place_seen", tag.uid] for tag in command.tags)

    def on_checkout(parts: TopicParts, request: CirculationRequest) -> None:
        if request.op is CirculationOp.CHECKOUT:
            keep("checkout", request.item_id, request.correlation_id)

    link = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-bench-probe")
    pad, kiosk = DEMO_PAD_READER, DEMO_KIOSK
    link.subscribe(topic(site_id, Kind.SIM, pad, Channel.CMD, "place_tags"), SimPlaceTags, on_place)
    link.subscribe(topic(site_id, Kind.READER, pad, Channel.EVENT, "tag_arrived"), TagEvent,
                   lambda parts, event: keep("tag_arrived", event.uid))
    link.subscribe(topic(site_id, Kind.BACKEND, "backend", Channel.CMD, "circulation"), CirculationRequest,
                   on_checkout)
    link.subscribe(topic(site_id, Kind.KIOSK, kiosk, Channel.REPLY, "circulation"), CirculationReply,
                   lambda parts, reply: keep("checkout_reply", reply.correlation_id, reply.ok))
    link.subscribe(topic(site_id, Kind.READER, pad, Channel.CMD, "secure_tag"), SecureTagRequest,
                   lambda parts, request: keep("secure", request.uid, request.correlation_id))
    link.subscribe(topic(site_id, Kind.KIOSK, kiosk, Channel.REPLY, "secure_tag"), SecureTagReply,
                   lambda parts, reply: keep("secure_reply", reply.correlation_id, reply.ok))
    if not link.start(wait_s=20):
        raise SystemExit("the probe could not connect to the broker")
    _answer({"event": "ready"})
    try:
        for line in sys.stdin:
            if line.strip() == "dump":
                with lock:
                    _answer({"seen": list(seen)})
            elif line.strip() in ("", "quit"):
                break
    finally:
        link.stop()


def _answer(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class ProbeProcess:
    """The bench side of :func:`serve_probe`."""

    def __init__(self, broker_url: str, site_id: str, log_path: Path) -> None:
        self._args = [sys.executable, "-c",
                      f"from kiosk.bench import serve_probe; serve_probe({broker_url!r}, {site_id!r})"]
        self._log_path = log_path
        self._popen: subprocess.Popen[str] | None = None

    def start(self) -> None:
        with self._log_path.open("ab") as log_file:
            self._popen = subprocess.Popen(self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=log_file, text=True)
        self._read()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def dump(self) -> list[list[Any]]:
        assert self._popen is not None and self._popen.stdin is not None
        self._popen.stdin.write("dump\n")
        self._popen.stdin.flush()
        return list(self._read()["seen"])

    def _read(self) -> dict[str, Any]:
        assert self._popen is not None and self._popen.stdout is not None
        line = self._popen.stdout.readline()
        if not line:
            raise KioskBenchError(f"the probe stopped; see {self._log_path}")
        return dict(json.loads(line))

    def stop(self) -> None:
        popen, self._popen = self._popen, None
        if popen is None:
            return
        try:
            if popen.stdin is not None:
                popen.stdin.write("quit\n")
                popen.stdin.close()
            popen.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            popen.kill()
            popen.wait(5)


# ------------------------------------------------------------------ the pad: the simulator's control topic


class PadScript:
    """Places and lifts tags on the simulated pad (``SimPlaceTags`` / ``SimRemoveTags``), and sees departures."""

    def __init__(self, broker_url: str, site_id: str) -> None:
        self._link = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-bench-pad")
        self._place = topic(site_id, Kind.SIM, DEMO_PAD_READER, Channel.CMD, "place_tags")
        self._remove = topic(site_id, Kind.SIM, DEMO_PAD_READER, Channel.CMD, "remove_tags")
        self._departed: set[str] = set()
        self._changed = threading.Condition()
        self._link.subscribe(topic(site_id, Kind.READER, DEMO_PAD_READER, Channel.EVENT, "tag_departed"), TagEvent,
                             self._on_departed)

    def start(self) -> None:
        if not self._link.start(wait_s=20):
            raise KioskBenchError("the bench could not connect to the broker")

    def stop(self) -> None:
        self._link.stop()

    def place(self, books: list[Book]) -> int:
        """Put the tags in the simulator's field; returns the stamp taken just before the command leaves."""
        command = SimPlaceTags(tags=[book.sim_tag() for book in books], expires_at=expires_in(10))
        stamp = time.monotonic_ns()
        self._link.publish(self._place, command)
        return stamp

    def lift(self, books: list[Book]) -> None:
        self._link.publish(self._remove, SimRemoveTags(uids=[book.uid for book in books], expires_at=expires_in(10)))

    def departed(self, books: list[Book]) -> bool:
        with self._changed:
            return all(book.uid in self._departed for book in books)

    def _on_departed(self, parts: TopicParts, event: TagEvent) -> None:
        with self._changed:
            self._departed.add(event.uid)


# ------------------------------------------------------------------ the kiosk app, in this process


class KioskUnderTest:
    """The real kiosk (``kiosk.main.build_kiosk``), its Kivy loop pumped here frame by frame as ``App.run`` does."""

    def __init__(self, site_path: Path, workdir: Path) -> None:
        self._site_path = site_path
        self._workdir = workdir
        self.runtime: Any = None
        self.frame_ms: list[float] = []

    def start(self) -> None:
        os.environ.setdefault("KIVY_HOME", str(self._workdir / "kivy-home"))
        from kiosk.ui.bootstrap import prepare_kivy

        prepare_kivy(fullscreen=False, size=WINDOW_SIZE)
        from kivy.base import runTouchApp

        from kiosk.main import build_kiosk
        from openshelf.site import load_site

        self.runtime = build_kiosk(load_site(self._site_path), DEMO_KIOSK, lockdown=False)
        self.runtime.start()
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not self.runtime.link.connected.wait(0.1):
            if time.monotonic() > deadline:
                raise KioskBenchError("the kiosk did not connect to the broker")
        self.runtime.app._run_prepare()
        runTouchApp(embedded=True)
        self.pump_until(lambda: self.app.controls.get("start.borrow"), "the start screen")

    def stop(self) -> None:
        if self.runtime is not None:
            self.app.stop()
            self.runtime.close()
            self.runtime = None

    @property
    def app(self) -> Any:
        return self.runtime.app

    @property
    def screen(self) -> str:
        return str(self.runtime.controller.model.screen.value)

    @property
    def renders(self) -> int:
        return int(self.app.renders)

    def frame(self) -> int:
        """One turn of the Kivy loop (input, clock callbacks, drawing); returns the stamp after it."""
        from kivy.base import EventLoop

        started = time.monotonic_ns()
        EventLoop.idle()
        ended = time.monotonic_ns()
        self.frame_ms.append((ended - started) / 1e6)
        return ended

    def pump_until(self, until: Callable[[], Any], what: str, timeout_s: float = STEP_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            self.frame()
            value = until()
            if value:
                return value
            if time.monotonic() > deadline:
                raise KioskBenchError(f"timed out waiting for {what}; kiosk screen {self.screen}")

    def pump_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.frame()

    def wait_screen(self, *screens: str) -> str:
        return str(self.pump_until(lambda: self.screen in screens and self.app.controls and self.screen,
                                   f"screen {'/'.join(screens)}"))

    def tap(self, name: str) -> None:
        from kivy.tests.common import UnitTestTouch

        widget = self.pump_until(lambda: self.app.controls.get(name), f"control {name!r}")
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.frame()

    def checks(self, item_ids: list[str]) -> dict[str, int]:
        """Pump until every item shows its ✓ (or settles otherwise); returns item → stamp of the ✓'s frame."""
        from kiosk.view import Icon

        shown: dict[str, int] = {}
        deadline = time.monotonic() + BORROW_TIMEOUT_S
        while len(shown) < len(item_ids) and time.monotonic() < deadline:
            stamp = self.frame()
            for item_id in item_ids:
                icon = self.app.controls.get(f"item.icon:{item_id}")
                if item_id not in shown and icon is not None and icon.icon is Icon.DONE:
                    shown[item_id] = stamp
            if self._all_settled(item_ids, shown):
                break
        return shown

    def _all_settled(self, item_ids: list[str], shown: dict[str, int]) -> bool:
        """Items that will never show a ✓ (refused, unreadable…) do not keep the borrow waiting."""
        from kiosk.session import SETTLED, ItemStage

        desk = self.runtime.controller.model.desk
        if desk is None:
            return False
        lines = [desk.lines.get(item_id) for item_id in item_ids if item_id not in shown]
        return all(line is not None and line.stage in SETTLED - {ItemStage.DONE} for line in lines)

    def stages(self, item_ids: list[str]) -> dict[str, str]:
        desk = self.runtime.controller.model.desk
        lines = desk.lines if desk is not None else {}
        return {item_id: (lines[item_id].stage.value if item_id in lines else "absent") for item_id in item_ids}


# ------------------------------------------------------------------ one borrow


@dataclass
class BorrowRun:
    size: int  # 0: the warm-up
    placed_ns: int
    books: list[Book]
    checks_ns: dict[str, int]
    not_done: dict[str, str]  # item → the stage it ended in
    renders: int
    frame_ms: list[float]

    def item_latencies_ms(self) -> list[float]:
        return [(stamp - self.placed_ns) / 1e6 for stamp in self.checks_ns.values()]

    def total_ms(self) -> float | None:
        if self.not_done or not self.checks_ns:
            return None
        return (max(self.checks_ns.values()) - self.placed_ns) / 1e6


def borrow(kiosk: KioskUnderTest, pad: PadScript, size: int, patron: Patron, books: list[Book],
           poll_interval_s: float, rng: random.Random) -> BorrowRun:
    _sign_in(kiosk, pad, patron)
    kiosk.pump_for(rng.uniform(0, poll_interval_s))  # a random phase of the reader's poll cycle
    renders, frames = kiosk.renders, len(kiosk.frame_ms)
    placed = pad.place(books)
    item_ids = [book.item_id for book in books]
    checks = kiosk.checks(item_ids)
    run = BorrowRun(size=size, placed_ns=placed, books=books, checks_ns=checks,
                    not_done={item: stage for item, stage in kiosk.stages(item_ids).items() if item not in checks},
                    renders=kiosk.renders - renders, frame_ms=kiosk.frame_ms[frames:])
    _finish(kiosk, pad, books)
    return run


def _sign_in(kiosk: KioskUnderTest, pad: PadScript, patron: Patron) -> None:
    """Borrow, library card on the pad, lift it, PIN: as a patron does it."""
    kiosk.wait_screen("start")
    kiosk.tap("start.borrow")
    kiosk.wait_screen("identify")
    pad.place([patron.card])
    kiosk.wait_screen("pin")
    pad.lift([patron.card])
    for digit in PIN:
        kiosk.tap(f"keypad.{digit}")
    kiosk.tap("keypad.ok")
    if kiosk.wait_screen("borrow", "message") != "borrow":
        raise KioskBenchError(f"patron {patron.card_id} was not signed in (screen {kiosk.screen})")


def _finish(kiosk: KioskUnderTest, pad: PadScript, books: list[Book]) -> None:
    """Lift the books, finish, leave the receipt; wait until the pad is empty again."""
    pad.lift(books)
    kiosk.tap("finish")
    screen = kiosk.wait_screen("receipt", "finish_check", "start")
    if screen == "finish_check":
        kiosk.tap("finish_check.leave")
        screen = kiosk.wait_screen("receipt", "start")
    if screen == "receipt":
        kiosk.tap("receipt.done")
    kiosk.pump_until(lambda: pad.departed(books), "the books to leave the pad")
    kiosk.pump_for(0.1)  # the kiosk hears the departures with the bench: let it take them in


# ------------------------------------------------------------------ the run


def run_kiosk_bench(options: KioskBenchOptions) -> dict[str, Any]:
    if options.runs < 1 or not options.items or min(options.items) < 1:
        raise ValueError("runs and every item count must be >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="openshelf-bench-kiosk-"))
    broker = BenchBroker(options.broker, workdir)
    supervisor = Supervisor()
    probe: ProbeProcess | None = None
    pad: PadScript | None = None
    kiosk: KioskUnderTest | None = None
    load_before = os.getloadavg()
    try:
        broker.start()
        site_path, site_id = _write_site(workdir, broker.url, options)
        hop = _broker_floor(broker.url, site_id, options.floor_samples)
        plan = make_plan(options)
        for path, kind in zip(_write_import_files(workdir, plan), ("items", "patrons")):
            _import(site_path, path, kind, workdir)
        _start_services(supervisor, site_path, workdir)
        probe = ProbeProcess(broker.url, site_id, workdir / "probe.log")
        probe.start()
        pad = PadScript(broker.url, site_id)
        pad.start()
        kiosk = KioskUnderTest(site_path, workdir)
        kiosk.start()
        processes = {child.name: child.pid for child in supervisor.children}
        processes.update({"broker": broker.pid, "probe": probe.pid, "kiosk (bench process)": os.getpid()})
        runs, usage = _drive(kiosk, pad, plan, options, processes)
        memory = {name: _rss_mb(pid) for name, pid in processes.items()}
        report = build_report(options, broker.kind, runs, probe.dump(), hop, usage, memory,
                              (load_before, os.getloadavg()))
        report["workdir"] = str(workdir) if options.keep_workdir else None
        return _json_safe(report)
    finally:
        for part in (kiosk, pad, probe):
            if part is not None:
                part.stop()
        supervisor.stop()
        broker.stop()
        if options.keep_workdir:
            print(f"openshelf bench kiosk: site file and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _start_services(supervisor: Supervisor, site_path: Path, workdir: Path) -> None:
    site = str(site_path)
    for name, args in (("sim-pad", ["sim", "reader", "--site", site, "--device", DEMO_PAD_READER]),
                       ("backend", ["backend", "--site", site]),
                       ("rfid-pad", ["rfid", "run", "--site", site, "--device", DEMO_PAD_READER])):
        supervisor.start(Child(name, args, workdir / f"{name}.log", restart=False), READY_TIMEOUT_S)


def _drive(kiosk: KioskUnderTest, pad: PadScript, plan: Plan, options: KioskBenchOptions,
           processes: dict[str, int | None]) -> tuple[list[BorrowRun], Usage]:
    """The warm-up borrow (connections, caches, fonts), then the measured ones."""
    rng = random.Random(options.seed)
    poll_s = options.poll_interval_ms / 1000
    usage = Usage(processes)
    runs = []
    for index, (size, patron, books) in enumerate(plan.borrows):
        if index == 1:
            usage.begin()
        runs.append(borrow(kiosk, pad, size, patron, books, poll_s, rng))
        log.info("borrow %d/%d (%d item(s)): %d ✓", index, len(plan.borrows) - 1, len(books),
                 len(runs[-1].checks_ns))
    usage.end()
    return runs, usage


# ------------------------------------------------------------------ the report


def summary(values: list[float]) -> dict[str, float | int]:
    return {"n": len(values), "p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95),
            "max_ms": max(values) if values else float("nan")}


def _item_stamps(run: BorrowRun, seen: list[list[Any]]) -> dict[str, dict[str, int]]:
    """item → stage → stamp (first occurrence after the placement), from the probe's record."""
    by_uid = {book.uid: book.item_id for book in run.books}
    stamps: dict[str, dict[str, int]] = {book.item_id: {"placed": run.placed_ns} for book in run.books}
    checkout_of: dict[str, str] = {}  # correlation id → item
    secure_of: dict[str, str] = {}
    for stamp, kind, *rest in seen:
        if stamp < run.placed_ns:
            continue
        item = _item_of(kind, rest, by_uid, checkout_of, secure_of)
        if item is not None and item in stamps:
            stamps[item].setdefault(kind, stamp)
    for item, stamp in run.checks_ns.items():
        stamps[item]["check"] = stamp
    return stamps


def _item_of(kind: str, rest: list[Any], by_uid: dict[str, str], checkout_of: dict[str, str],
             secure_of: dict[str, str]) -> str | None:
    if kind in ("place_seen", "tag_arrived"):
        return by_uid.get(rest[0])
    if kind == "checkout":
        checkout_of.setdefault(rest[1], rest[0])
        return str(rest[0])
    if kind == "checkout_reply":
        return checkout_of.get(rest[0])
    if kind == "secure":
        secure_of.setdefault(rest[1], by_uid.get(rest[0], ""))
        return by_uid.get(rest[0])
    if kind == "secure_reply":
        return secure_of.get(rest[0])
    return None


def _splits(runs: list[BorrowRun], seen: list[list[Any]]) -> dict[str, Any]:
    samples: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for stamps in _item_stamps(run, seen).values():
            for name, start, end, _ in STAGES:
                if start in stamps and end in stamps:
                    samples[name].append((stamps[end] - stamps[start]) / 1e6)
    return {name: {**summary(samples[name]), "what": what} for name, _, _, what in STAGES}


def _borrows_report(size: int, runs: list[BorrowRun], seen: list[list[Any]]) -> dict[str, Any]:
    latencies = [value for run in runs for value in run.item_latencies_ms()]
    totals = [total for run in runs if (total := run.total_ms()) is not None]
    frames = [value for run in runs for value in run.frame_ms]
    item_p95 = percentile(latencies, 0.95)
    total_p95 = percentile(totals, 0.95)
    return {
        "runs": len(runs),
        "items_placed": sum(len(run.books) for run in runs),
        "items_done": sum(len(run.checks_ns) for run in runs),
        "not_done": dict(Counter(stage for run in runs for stage in run.not_done.values())),
        "item_placed_to_check": summary(latencies),
        "borrow_first_placed_to_last_check": summary(totals),
        "split": _splits(runs, seen),
        "ui": {"page_rebuilds_per_borrow": percentile([float(run.renders) for run in runs], 0.5),
               "frame_ms": {"n": len(frames), "p50_ms": percentile(frames, 0.5), "max_ms": max(frames, default=0.0)},
               "frames_over_50_ms": sum(1 for value in frames if value > SLOW_FRAME_MS),
               "note": "one turn of the Kivy loop each, during the timed part of the borrows: a turn with "
                       "nothing to do returns within a frame (60 fps, woken early by posted work); a longer one "
                       "is the UI thread working (posted callbacks, page rebuilds, layout, text, drawing)"},
        "target": {"item_p95_ms": TARGET_ITEM_P95_MS, "item_p95_met": item_p95 <= TARGET_ITEM_P95_MS,
                   **({"borrow_p95_ms": TARGET_TEN_ITEMS_MS, "borrow_p95_met": total_p95 <= TARGET_TEN_ITEMS_MS}
                      if size >= 10 else {})},
    }


def build_report(options: KioskBenchOptions, broker_kind: str, runs: list[BorrowRun], seen: list[list[Any]],
                 hop: list[float], usage: Usage, memory: dict[str, float],
                 load: tuple[tuple[float, float, float], tuple[float, float, float]]) -> dict[str, Any]:
    warmup, measured = runs[0], runs[1:]
    hop_p50, hop_p99 = percentile(hop, 0.5), percentile(hop, 0.99)
    return {
        "config": {"runs": options.runs, "items": list(options.items), "poll_interval_ms": options.poll_interval_ms,
                   "departed_after_ms": DEPARTED_AFTER_MS, "broker": broker_kind, "reader": "FEIG simulator "
                   "(`openshelf sim reader`, TCP, no serial line time) + `openshelf rfid run`",
                   "backend": "`openshelf backend`, standalone circulation, SQLite",
                   "kiosk": "kiosk.main.build_kiosk in the bench process, Kivy loop pumped as App.run does",
                   "window": f"{WINDOW_SIZE[0]}x{WINDOW_SIZE[1]}", "python": sys.version.split()[0]},
        "borrows": {str(size): _borrows_report(size, [run for run in measured if run.size == size], seen)
                    for size in options.items},
        "warmup_item_ms": warmup.item_latencies_ms()[0] if warmup.checks_ns else float("nan"),
        "floor": {"poll_interval_ms": options.poll_interval_ms, "broker_hop_p50_ms": hop_p50,
                  "broker_hop_p99_ms": hop_p99, "hops_on_path": HOPS_ON_PATH,
                  "path_p50_ms": HOPS_ON_PATH * hop_p50 + options.poll_interval_ms / 2,
                  "note": "placed → seen waits up to one poll (half on average); the path crosses the broker "
                          f"{HOPS_ON_PATH} times; path_p50 = {HOPS_ON_PATH} hops at p50 + half a poll. One hop is "
                          "measured in this run before the services start"},
        "cpu_percent_of_one_core": usage.cpu_percent,
        "machine": {**usage.machine, "load_average_before": [round(value, 2) for value in load[0]],
                    "load_average_after": [round(value, 2) for value in load[1]]},
        "memory_mb": memory,
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_report(report: dict[str, Any]) -> str:
    config, floor, machine = report["config"], report["floor"], report["machine"]
    lines = [f"kiosk: book placed on the pad → its ✓ on screen, reader poll {config['poll_interval_ms']} ms, "
             f"broker {config['broker']}, {config['runs']} borrow(s) per size"]
    for size, borrows in report["borrows"].items():
        item, total = borrows["item_placed_to_check"], borrows["borrow_first_placed_to_last_check"]
        lines.append(f"  {size}-item borrow: per item p50 {_num(item['p50_ms'])} / p95 {_num(item['p95_ms'])} / "
                     f"max {_num(item['max_ms'])} ms (n={item['n']}, placed {borrows['items_placed']}, "
                     f"done {borrows['items_done']}, not done {borrows['not_done'] or 0}); whole borrow p50 "
                     f"{_num(total['p50_ms'])} / p95 {_num(total['p95_ms'])} / max {_num(total['max_ms'])} ms")
        lines.append("    split (p50 / p95 ms): " + ", ".join(
            f"{name} {_num(stage['p50_ms'])}/{_num(stage['p95_ms'])}" for name, stage in borrows["split"].items()))
        ui = borrows["ui"]
        lines.append(f"    UI: {_num(ui['page_rebuilds_per_borrow'], 0)} page rebuilds per borrow, frame p50 "
                     f"{_num(ui['frame_ms']['p50_ms'])} / max {_num(ui['frame_ms']['max_ms'])} ms, "
                     f"{ui['frames_over_50_ms']} frame(s) over 50 ms; target {borrows['target']}")
    lines.append(f"  floor: poll {floor['poll_interval_ms']} ms, broker hop p50 {_num(floor['broker_hop_p50_ms'], 2)} / "
                 f"p99 {_num(floor['broker_hop_p99_ms'], 2)} ms, path p50 {_num(floor['path_p50_ms'])} ms; "
                 f"warm-up item {_num(report['warmup_item_ms'])} ms")
    lines.append(f"  machine: {machine['busy_percent_of_one_core']:.0f}% of one core busy "
                 f"({machine['other_processes_percent_of_one_core']:.0f}% not ours), load average before "
                 f"{machine['load_average_before']}, after {machine['load_average_after']}")
    for name, rss in report["memory_mb"].items():
        cpu = report["cpu_percent_of_one_core"].get(name)
        lines.append(f"  {name:<22} rss {rss:7.1f} MB   cpu {_num(cpu)}%")
    return "\n".join(lines)


# ------------------------------------------------------------------ command line


def _item_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of item counts such as 1,10") from None
    if not counts or not all(1 <= count <= 24 for count in counts):
        raise argparse.ArgumentTypeError("item counts go from 1 to 24 (one inventory answer holds 24 tags)")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=10, help="borrows timed for each item count")
    parser.add_argument("--items", type=_item_counts, default=(1, 10),
                        help="books placed together in one borrow, comma-separated (default 1,10)")
    parser.add_argument("--poll-ms", type=int, default=50, help="the pad reader's poll interval (the demo's: 50)")
    parser.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                        help="Mosquitto when installed (auto), or the embedded broker")
    parser.add_argument("--floor-samples", type=int, default=300, help="samples for the broker hop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with the site file and logs")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a summary")
    parser.set_defaults(func=_run)


def register_bench(subparsers: Any) -> None:
    kiosk = subparsers.add_parser(
        "kiosk", help="book placed on the kiosk's pad → its ✓ on screen, 1 and 10 books per borrow",
        description="Starts a broker, the backend (standalone circulation), the FEIG reader simulator and the "
                    "reader service for the pad, and the real Kivy kiosk (headless without a display); signs "
                    "patrons in and times every book from its placement on the simulated pad to the frame that "
                    "shows its ✓. Prints p50/p95/max per item and per borrow, where the time went, the poll "
                    "interval and broker hop measured in the same run, and every process's CPU share.")
    add_arguments(kiosk)


def _run(args: argparse.Namespace) -> int:
    import importlib.util

    from openshelf.bench import _stop_cleanly_on_sigterm

    if importlib.util.find_spec("kivy") is None:
        print("openshelf bench kiosk: Kivy is not installed; install the kiosk extra: pip install 'openshelf[kiosk]'",
              file=sys.stderr)
        return 2
    _stop_cleanly_on_sigterm()
    report = run_kiosk_bench(KioskBenchOptions(runs=args.runs, items=args.items, poll_interval_ms=args.poll_ms,
                                               broker=args.broker, floor_samples=args.floor_samples,
                                               keep_workdir=args.keep))
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    placed = sum(borrows["items_placed"] for borrows in report["borrows"].values())
    done = sum(borrows["items_done"] for borrows in report["borrows"].values())
    return 0 if placed and done == placed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover - `openshelf bench kiosk` once registered
    sys.exit(main())
