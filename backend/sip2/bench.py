"""Checkouts per second: standalone (in-memory store) and over SIP2 on loopback.

``bench_sip2_checkouts(n)`` runs ``Sip2Circulation`` → ``Sip2Client`` → TCP →
``Sip2Server`` → ``MemoryCirculation`` with error detection on, the whole stack
a kiosk uses against an OpenShelf SIP2 server.  Client and server share one
Python process (and its GIL), so a separate server process would be faster.
Targets from the issue: ≥ 1,000 checkouts/s over SIP2; ≥ 2,000/s standalone on
SQLite (the database store is benchmarked with the backend).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher

from backend.circulation.interface import Circulation
from backend.circulation.memory import MemoryCirculation
from backend.circulation.model import CirculationRule, ItemFacts, PatronFacts, RuleSet
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import Sip2ClientConfig, Sip2ServerConfig, Sip2Terminal
from backend.sip2.server import Sip2Server

_LOANS_PER_PATRON = 10  # a realistic account size: decisions look at the patron's open loans
_USER, _PASSWORD = "bench-kiosk", "bench-password"


def _card(index: int) -> str:
    return f"BENCH{index // _LOANS_PER_PATRON:06d}"


def _library(n: int) -> MemoryCirculation:
    rules = RuleSet(rules=(CirculationRule(max_loans=_LOANS_PER_PATRON, fine_limit=None),))
    circulation = MemoryCirculation(rules, branch="MAIN", institution_id="MAIN")
    for index in range(0, n, _LOANS_PER_PATRON):
        circulation.add_patron(PatronFacts(patron_id=f"p{index}", card_ids=(_card(index),), name="Bạn đọc thử"))
    for index in range(n):
        circulation.add_item(ItemFacts(item_id=f"B{index:08d}", title=f"Sách thử {index}"))
    return circulation


def _run(circulation: Circulation, n: int) -> float:
    started = time.perf_counter()
    for index in range(n):
        result = circulation.checkout(_card(index), f"B{index:08d}", idempotency_key=uuid.uuid4().hex)
        if not result.ok:
            raise RuntimeError(f"benchmark checkout {index} refused: {result.reason.value}")
    return time.perf_counter() - started


def bench_standalone_memory_checkouts(n: int = 2000) -> dict[str, Any]:
    seconds = _run(_library(n), n)
    return {"n": n, "seconds": round(seconds, 4), "checkouts_per_s": round(n / seconds, 1), "store": "memory"}


def bench_sip2_checkouts(n: int = 2000, *, error_detection: bool = True) -> dict[str, Any]:
    """Checkouts per second through the full SIP2 stack on 127.0.0.1 (no timing assertions anywhere)."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    backend = _library(n)
    server_config = Sip2ServerConfig(
        port=0, institution_id="MAIN",
        terminals=(Sip2Terminal(user_id=_USER, password_hash=hasher.hash(_PASSWORD), location="MAIN"),),
    )
    with Sip2Server(backend, server_config, hasher=hasher) as server:
        client = Sip2Client(Sip2ClientConfig(
            host="127.0.0.1", port=server.port, user_id=_USER, password=_PASSWORD, institution_id="MAIN",
            location_code="MAIN", error_detection=error_detection,
        ))
        circulation = Sip2Circulation(client)
        try:
            client.connect()
            seconds = _run(circulation, n)
        finally:
            circulation.close()
    return {
        "n": n, "seconds": round(seconds, 4), "checkouts_per_s": round(n / seconds, 1),
        "error_detection": error_detection, "transport": "tcp-loopback", "measured_at": datetime.now().isoformat(),
    }


if __name__ == "__main__":  # pragma: no cover - manual use: python -m backend.sip2.bench
    print(bench_standalone_memory_checkouts())
    print(bench_sip2_checkouts())
