"""Checkouts per second through the standalone circulation over the database store.

``bench_sql_checkouts(n, url, terminals=k)`` migrates the database at ``url`` (a
temporary SQLite file when None), loads ``n`` items and one patron per ten items,
then times ``n`` checkouts through :class:`~backend.db.circulation_store.SqlCirculation`
from ``k`` terminals at once (threads; each patron borrows their ten items at one
terminal). Each checkout is a full, durable transaction: idempotency lookup, patron,
item, rules, loans, holds, the loan, the item status, the remembered answer, and a
commit that is on disk (SQLite ``synchronous=FULL``) before the answer comes back.
Target from the issue: ≥ 2,000 checkouts/s on SQLite on 2 cores.

The same run measures the floors beneath it (SQLite): an empty ``BEGIN IMMEDIATE;
COMMIT`` and a durable one-row commit on a scratch file beside the database, each
from one connection — the second is the disk flush every durable commit pays.

    python -m backend.circulation_bench [N] [--terminals K …]      # temporary SQLite file
    python -m backend.circulation_bench 3000 postgresql+psycopg://user@host/empty_db --terminals 4
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, make_url

from backend.circulation.model import CirculationRule, RuleSet
from backend.db.circulation_store import SqlCirculation, SqlCirculationStore
from backend.db.engine import make_engine, upgrade_database
from backend.db.models import Item, Patron, PatronCard

LOANS_PER_PATRON = 10  # a realistic account size: decisions look at the patron's open loans
FLOOR_COMMITS = 500


def _card(index: int) -> str:
    return f"BENCH{index // LOANS_PER_PATRON:06d}"


def _item(index: int) -> str:
    return f"B{index:08d}"


def load_library(circulation: SqlCirculation, n: int) -> None:
    """Patrons, cards and items in bulk (setup is not what is measured)."""
    patrons = range(0, n, LOANS_PER_PATRON)
    with circulation.store.engine.begin() as connection:
        connection.execute(insert(Patron.__table__), [
            {"id": index // LOANS_PER_PATRON + 1, "barcode": _card(index), "name": "Bạn đọc thử",
             "category": "adult", "blocked": False, "home_branch": ""} for index in patrons])
        connection.execute(insert(PatronCard.__table__), [
            {"card_id": _card(index), "patron_id": index // LOANS_PER_PATRON + 1, "kind": "barcode"}
            for index in patrons])
        connection.execute(insert(Item.__table__), [
            {"item_id": _item(index), "title": f"Sách thử {index}", "author": "", "parts": 1,
             "in_library_only": False, "status": "available", "publisher": "", "call_number": "",
             "item_type": "book", "home_branch": "MAIN", "holding_branch": "", "location": ""}
            for index in range(n)])


def terminal_share(n: int, terminals: int, terminal: int) -> list[int]:
    """The checkouts one terminal does: whole patrons (ten items each), dealt round-robin."""
    return [index for index in range(n) if (index // LOANS_PER_PATRON) % terminals == terminal]


def sqlite_floors(folder: Path, commits: int = FLOOR_COMMITS) -> dict[str, float]:
    """Empty commits/s and durable one-row commits/s on a scratch SQLite file in ``folder`` (same disk)."""
    path = folder / f"floor-{uuid.uuid4().hex[:8]}.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE floor (id INTEGER PRIMARY KEY, key TEXT NOT NULL)")
        floors = {}
        for name, statement in (("empty_commits_per_s", None),
                                ("durable_row_commits_per_s", "INSERT INTO floor (key) VALUES (?)")):
            started = time.perf_counter()
            for _ in range(commits):
                connection.execute("BEGIN IMMEDIATE")
                if statement:
                    connection.execute(statement, (uuid.uuid4().hex,))
                connection.execute("COMMIT")
            floors[name] = round(commits / (time.perf_counter() - started), 1)
        return floors
    finally:
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _run_terminals(circulation: SqlCirculation, n: int, terminals: int) -> list[float]:
    """All checkouts from ``terminals`` threads; returns every checkout's latency in seconds."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    start = threading.Barrier(terminals)

    def terminal(number: int) -> None:
        mine: list[float] = []
        try:
            start.wait()
            for index in terminal_share(n, terminals, number):
                began = time.perf_counter()
                result = circulation.checkout(_card(index), _item(index), idempotency_key=uuid.uuid4().hex)
                mine.append(time.perf_counter() - began)
                if not result.ok:
                    raise RuntimeError(f"benchmark checkout {index} refused: {result.reason.value}")
        except BaseException as exc:  # reported by the caller: a benchmark must not hide a failure
            failures.append(exc)
        latencies.extend(mine)

    threads = [threading.Thread(target=terminal, args=(number,), name=f"bench-terminal-{number}")
               for number in range(terminals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return latencies


def bench_sql_checkouts(n: int = 5000, url: str | None = None, *, terminals: int = 1,
                        floor_commits: int = FLOOR_COMMITS) -> dict[str, Any]:
    """Time ``n`` checkouts from ``terminals`` terminals on a fresh database at ``url`` (default: temporary SQLite)."""
    with tempfile.TemporaryDirectory(prefix="openshelf-bench-") as folder:
        url = url or f"sqlite:///{Path(folder) / 'bench.db'}"
        sqlite = make_url(url).get_backend_name() == "sqlite"
        engine = make_engine(url)
        try:
            upgrade_database(engine)
            store = SqlCirculationStore(engine)
            store.save_rules(RuleSet(rules=(CirculationRule(max_loans=LOANS_PER_PATRON, fine_limit=None),)))
            circulation = SqlCirculation(store, branch="MAIN", institution_id="MAIN")
            load_library(circulation, n)
            database = make_url(url).database
            beside = Path(database).parent if database else Path(folder)
            floors = sqlite_floors(beside, floor_commits) if sqlite else {}
            started, cpu_started = time.perf_counter(), time.process_time()
            latencies = _run_terminals(circulation, n, terminals)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            grouped = store.group_commit
            commits = grouped.groups_committed if grouped is not None else n
            store.close()
        finally:
            engine.dispose()
    latencies.sort()
    return {
        "n": n, "terminals": terminals, "seconds": round(seconds, 4), "checkouts_per_s": round(n / seconds, 1),
        # CPU time of this process: what a checkout costs when the machine is shared with other work.
        "cpu_us_per_checkout": round(cpu_seconds / n * 1e6, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1e3, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
        "checkouts_per_commit": round(n / max(commits, 1), 2),
        **floors,
        "database": make_url(url).get_backend_name(), "loans_per_patron": LOANS_PER_PATRON,
        "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("url", nargs="?", default=None)
    parser.add_argument("--terminals", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args(argv)
    if args.url and len(args.terminals) > 1:
        parser.error("each run needs an empty database: with a URL, give one --terminals value")
    for terminals in args.terminals:
        print(bench_sql_checkouts(args.n, args.url, terminals=terminals), flush=True)


if __name__ == "__main__":  # pragma: no cover - manual use
    main()
