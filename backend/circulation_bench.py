"""Checkouts per second through the standalone circulation over the database store.

``bench_sql_checkouts(n, url)`` migrates the database at ``url`` (a temporary
SQLite file when None), loads ``n`` items and one patron per ten items, then
times ``n`` checkouts through :class:`~backend.db.circulation_store.SqlCirculation`:
each one a full transaction (idempotency lookup, patron, item lock, rules,
loans, holds, the loan, the item status, the remembered result, commit).
Target from the issue: ≥ 2,000 checkouts/s on SQLite on 2 cores.

    python -m backend.circulation_bench [N] [URL]
"""

from __future__ import annotations

import os
import sys
import tempfile
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


def _card(index: int) -> str:
    return f"BENCH{index // LOANS_PER_PATRON:06d}"


def _item(index: int) -> str:
    return f"B{index:08d}"


def _load_library(circulation: SqlCirculation, n: int) -> None:
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


def bench_sql_checkouts(n: int = 5000, url: str | None = None) -> dict[str, Any]:
    """Time ``n`` checkouts on a fresh database at ``url`` (default: a temporary SQLite file)."""
    with tempfile.TemporaryDirectory(prefix="openshelf-bench-") as folder:
        url = url or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(url)
        try:
            upgrade_database(engine)
            store = SqlCirculationStore(engine)
            store.save_rules(RuleSet(rules=(CirculationRule(max_loans=LOANS_PER_PATRON, fine_limit=None),)))
            circulation = SqlCirculation(store, branch="MAIN", institution_id="MAIN")
            _load_library(circulation, n)
            started, cpu_started = time.perf_counter(), time.process_time()
            for index in range(n):
                result = circulation.checkout(_card(index), _item(index), idempotency_key=uuid.uuid4().hex)
                if not result.ok:
                    raise RuntimeError(f"benchmark checkout {index} refused: {result.reason.value}")
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            store.close()
        finally:
            engine.dispose()
    return {
        "n": n, "seconds": round(seconds, 4), "checkouts_per_s": round(n / seconds, 1),
        # CPU time of this process: what a checkout costs when the machine is shared with other work.
        "cpu_us_per_checkout": round(cpu_seconds / n * 1e6, 1),
        "database": make_url(url).get_backend_name(), "loans_per_patron": LOANS_PER_PATRON,
        "cpus": os.cpu_count(), "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


if __name__ == "__main__":  # pragma: no cover - manual use
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(bench_sql_checkouts(count, sys.argv[2] if len(sys.argv) > 2 else None))
