"""Checkouts per second over SIP2: terminals → TCP → OpenShelf's SIP2 server → standalone circulation.

``bench_sip2_checkouts(n, terminals=k)`` starts OpenShelf's SIP2 server in its own
process (as in production: the terminals are other machines) over the standalone
circulation on a temporary SQLite database (durable commits, as in production), or
over the in-memory store with ``store="memory"``.  ``k`` terminals (threads here,
each its own connection, logged in, error detection on) then do ``n`` checkouts;
each patron borrows their ten items at one terminal.  SIP2 has no pipelining: a
terminal sends its next request only after the answer.

The same run measures the transport floor: the same terminals doing ``n`` raw TCP
round trips of frames of the same sizes against a bare echo server in the server
process — what the network stack and the thread hand-offs cost without SIP2 or
circulation.  The server process reports its CPU time per checkout.

Targets from the issue: ≥ 1,000 checkouts/s over SIP2; ≥ 2,000/s standalone on
SQLite (``backend.circulation_bench``).

    python -m backend.sip2.bench [N] [--terminals K …] [--store sqlite|memory]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Literal

from argon2 import PasswordHasher

from backend.circulation.interface import Circulation
from backend.circulation.memory import MemoryCirculation
from backend.circulation.model import CirculationRule, ItemFacts, PatronFacts, RuleSet
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import Sip2ClientConfig, Sip2ServerConfig, Sip2Terminal
from backend.sip2.server import Sip2Server

Store = Literal["sqlite", "memory"]
_LOANS_PER_PATRON = 10  # a realistic account size: decisions look at the patron's open loans
_USER, _PASSWORD = "bench-kiosk", "bench-password"
# Sizes of a checkout request and an OpenShelf answer with error detection (Vietnamese texts included).
REQUEST_BYTES, ANSWER_BYTES = 86, 226
_START_TIMEOUT_S = 60.0


def _card(index: int) -> str:
    return f"BENCH{index // _LOANS_PER_PATRON:06d}"


def _item(index: int) -> str:
    return f"B{index:08d}"


def _rules() -> RuleSet:
    return RuleSet(rules=(CirculationRule(max_loans=_LOANS_PER_PATRON, fine_limit=None),))


def _memory_library(n: int) -> MemoryCirculation:
    circulation = MemoryCirculation(_rules(), branch="MAIN", institution_id="MAIN")
    for index in range(0, n, _LOANS_PER_PATRON):
        circulation.add_patron(PatronFacts(patron_id=f"p{index}", card_ids=(_card(index),), name="Bạn đọc thử"))
    for index in range(n):
        circulation.add_item(ItemFacts(item_id=_item(index), title=f"Sách thử {index}"))
    return circulation


def _share(n: int, terminals: int, terminal: int) -> list[int]:
    return [index for index in range(n) if (index // _LOANS_PER_PATRON) % terminals == terminal]


# --------------------------------------------------------------------------- the server side


def _sqlite_library(n: int, folder: Path, stack: ExitStack) -> Circulation:
    from backend.circulation_bench import load_library
    from backend.db.circulation_store import SqlCirculation, SqlCirculationStore
    from backend.db.engine import make_engine, upgrade_database

    engine = make_engine(f"sqlite:///{folder / 'sip2-bench.db'}")
    stack.callback(engine.dispose)
    upgrade_database(engine)
    store = SqlCirculationStore(engine)
    stack.callback(store.close)
    store.save_rules(_rules())
    circulation = SqlCirculation(store, branch="MAIN", institution_id="MAIN")
    load_library(circulation, n)
    return circulation


class _FloorServer:
    """Answers every CR-terminated frame with ``ANSWER_BYTES`` bytes: the transport without SIP2."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="sip2-bench-floor", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = b"x" * (ANSWER_BYTES - 1) + b"\r"
        with connection:
            while True:
                data = connection.recv(65536)
                if not data:
                    return
                connection.sendall(answer * data.count(b"\r"))

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)


def serve(n: int, store: Store, error_detection_required: bool, pipe: Connection) -> None:
    """The server process: library, SIP2 server and floor server; answers "cpu" and "stop" on ``pipe``."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    config = Sip2ServerConfig(
        port=0, institution_id="MAIN", require_error_detection=error_detection_required,
        terminals=(Sip2Terminal(user_id=_USER, password_hash=hasher.hash(_PASSWORD), location="MAIN"),),
    )
    with tempfile.TemporaryDirectory(prefix="openshelf-sip2-bench-") as folder, ExitStack() as stack:
        library = _sqlite_library(n, Path(folder), stack) if store == "sqlite" else _memory_library(n)
        server = stack.enter_context(Sip2Server(library, config, hasher=hasher))
        floor = _FloorServer()
        stack.callback(floor.close)
        pipe.send((server.port, floor.port))
        while (command := pipe.recv()) != "stop":
            if command == "cpu":
                pipe.send(time.process_time())
    pipe.send("stopped")


class _ServerProcess:
    """``serve`` in a spawned process (or a thread, ``in_process=True``: tests, profiling)."""

    def __init__(self, n: int, store: Store, *, in_process: bool, error_detection: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        args = (n, store, error_detection, child)
        self._runner: Any = (threading.Thread(target=serve, args=args, name="sip2-bench-server") if in_process
                             else context.Process(target=serve, args=args, name="sip2-bench-server"))
        self._runner.start()
        if not self._pipe.poll(_START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("the SIP2 bench server did not start")
        self.port, self.floor_port = self._pipe.recv()

    def cpu_seconds(self) -> float:
        self._pipe.send("cpu")
        return float(self._pipe.recv())

    def stop(self) -> None:
        if self._runner.is_alive():
            self._pipe.send("stop")
            if self._pipe.poll(_START_TIMEOUT_S):
                self._pipe.recv()
        self._runner.join(_START_TIMEOUT_S)


# --------------------------------------------------------------------------- the terminals


def _run_terminals(terminals: int, work: Callable[[int], Callable[[], None]], count: Callable[[int], int]
                   ) -> tuple[float, list[float]]:
    """Run ``work(t)`` (a prepared terminal's loop body factory) on ``terminals`` threads; wall time and latencies."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    ready = threading.Barrier(terminals + 1)
    lock = threading.Lock()

    def terminal(number: int) -> None:
        mine: list[float] = []
        try:
            step = work(number)
            ready.wait()
            for _ in range(count(number)):
                began = time.perf_counter()
                step()
                mine.append(time.perf_counter() - began)
        except BaseException as exc:  # reported below: a benchmark must not hide a failure
            failures.append(exc)
            ready.abort()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=terminal, args=(number,), name=f"sip2-bench-terminal-{number}")
               for number in range(terminals)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - started, latencies


def _sip2_terminals(port: int, n: int, terminals: int, error_detection: bool) -> tuple[float, list[float]]:
    circulations: list[Sip2Circulation] = []

    def prepare(number: int) -> Callable[[], None]:
        client = Sip2Client(Sip2ClientConfig(
            host="127.0.0.1", port=port, user_id=_USER, password=_PASSWORD, institution_id="MAIN",
            location_code="MAIN", error_detection=error_detection,
        ))
        circulation = Sip2Circulation(client)
        circulations.append(circulation)
        client.connect()
        mine = iter(_share(n, terminals, number))

        def checkout() -> None:
            index = next(mine)
            result = circulation.checkout(_card(index), _item(index), idempotency_key=uuid.uuid4().hex)
            if not result.ok:
                raise RuntimeError(f"benchmark checkout {index} refused: {result.reason.value}")
        return checkout

    try:
        return _run_terminals(terminals, prepare, lambda number: len(_share(n, terminals, number)))
    finally:
        for circulation in circulations:
            circulation.close()


def _floor_terminals(port: int, n: int, terminals: int) -> float:
    sockets: list[socket.socket] = []
    request = b"y" * (REQUEST_BYTES - 1) + b"\r"

    def prepare(_: int) -> Callable[[], None]:
        connection = socket.create_connection(("127.0.0.1", port))
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append(connection)

        def round_trip() -> None:
            connection.sendall(request)
            received = b""
            while not received.endswith(b"\r"):
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionError("the floor server closed the connection")
                received += chunk
        return round_trip

    try:
        seconds, _ = _run_terminals(terminals, prepare, lambda number: len(_share(n, terminals, number)))
    finally:
        for connection in sockets:
            connection.close()
    return n / seconds


def bench_sip2_checkouts(n: int = 2000, *, terminals: int = 4, store: Store = "sqlite",
                         error_detection: bool = True, in_process: bool = False) -> dict[str, Any]:
    """Checkouts per second through the full SIP2 stack on 127.0.0.1 (no timing assertions anywhere)."""
    server = _ServerProcess(n, store, in_process=in_process, error_detection=error_detection)
    try:
        floor_per_s = _floor_terminals(server.floor_port, n, terminals)
        cpu_started = server.cpu_seconds()
        seconds, latencies = _sip2_terminals(server.port, n, terminals, error_detection)
        server_cpu = server.cpu_seconds() - cpu_started
    finally:
        server.stop()
    latencies.sort()
    return {
        "n": n, "terminals": terminals, "store": store, "seconds": round(seconds, 4),
        "checkouts_per_s": round(n / seconds, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1e3, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
        # Meaningful only with the server in its own process (in-process it includes the terminals).
        "server_cpu_us_per_checkout": round(server_cpu / n * 1e6, 1),
        "tcp_floor_round_trips_per_s": round(floor_per_s, 1),
        "error_detection": error_detection, "transport": "tcp-loopback",
        "server": "thread" if in_process else "process", "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def bench_standalone_memory_checkouts(n: int = 2000) -> dict[str, Any]:
    """The decision work without a database or SIP2 (for comparison)."""
    circulation = _memory_library(n)
    started = time.perf_counter()
    for index in range(n):
        result = circulation.checkout(_card(index), _item(index), idempotency_key=uuid.uuid4().hex)
        if not result.ok:
            raise RuntimeError(f"benchmark checkout {index} refused: {result.reason.value}")
    seconds = time.perf_counter() - started
    return {"n": n, "seconds": round(seconds, 4), "checkouts_per_s": round(n / seconds, 1), "store": "memory"}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=3000)
    parser.add_argument("--terminals", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    args = parser.parse_args(argv)
    for terminals in args.terminals:
        print(bench_sip2_checkouts(args.n, terminals=terminals, store=args.store), flush=True)


if __name__ == "__main__":  # pragma: no cover - manual use
    main()
