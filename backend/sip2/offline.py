"""Offline circulation: what the kiosk did while the library system was unreachable.

Transactions are written to a journal the moment they happen (the patron has
already walked away with the book).  Once the library system answers again
they are either replayed over SIP2 with *no block* set, in the order they
happened and with their original times, or exported as a Koha ``.koc`` file for
staff to upload (Circulation → Offline circulation file upload).

``.koc`` format (tab-separated, UTF-8, one transaction per line, oldest first)::

    Version=1.0<TAB>Generator=openshelf<TAB>GeneratorVersion=0.1
    2026-07-23 10:15:30<TAB>issue<TAB><card><TAB><item>
    2026-07-23 10:16:00<TAB>return<TAB><item>
    2026-07-23 10:17:00<TAB>payment<TAB><card><TAB>5.00

Generators differ on the timestamp (``YYYY-MM-DD HH:MM:SS`` or
``YYYY-MM-DD HH-MM-SS mmm``); which one a Koha version accepts is unconfirmed,
so it is an export option and the parser reads both.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Iterable, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backend.circulation.interface import Circulation, Result
from backend.circulation.messages import ReasonCode
from backend.sip2.errors import Sip2Error

log = logging.getLogger(__name__)

KOC_VERSION = "1.0"
GENERATOR = "openshelf"
GENERATOR_VERSION = "0.1"
KocTimestamp = Literal["seconds", "millis"]


class OfflineError(Sip2Error, ValueError):
    """A journal or ``.koc`` file that cannot be read."""


class OfflineKind(StrEnum):
    ISSUE = "issue"
    RETURN = "return"
    PAYMENT = "payment"


class OfflineTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tx_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1)
    kind: OfflineKind
    at: datetime
    card_id: str | None = None
    item_id: str | None = None
    amount: Decimal | None = None

    @model_validator(mode="after")
    def _complete(self) -> "OfflineTransaction":
        if self.at.tzinfo is None:
            raise ValueError("offline transaction times must be timezone-aware")
        needs = {OfflineKind.ISSUE: ("card_id", "item_id"), OfflineKind.RETURN: ("item_id",),
                 OfflineKind.PAYMENT: ("card_id", "amount")}[self.kind]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"an offline {self.kind.value} needs {', '.join(missing)}")
        for name in ("card_id", "item_id"):
            value = getattr(self, name)
            if value is not None and any(char in value for char in "\t\r\n"):
                raise ValueError(f"{name} may not contain tabs or line breaks")
        return self


class ReplayOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tx_id: str
    ok: bool
    reason: ReasonCode
    detail: str | None = None


class ReplayReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    replayed: int = 0
    refused: tuple[tuple[OfflineTransaction, ReplayOutcome], ...] = ()
    remaining: int = 0
    stopped: str | None = Field(default=None, description="why replay stopped early (library system still away)")


class OfflineJournal(Protocol):
    """Durable list of offline transactions; the DB-backed one lives in backend/db."""

    def append(self, transaction: OfflineTransaction) -> None: ...
    def pending(self) -> list[OfflineTransaction]: ...
    def mark_replayed(self, outcome: ReplayOutcome) -> None: ...


class MemoryJournal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transactions: list[OfflineTransaction] = []
        self.outcomes: dict[str, ReplayOutcome] = {}

    def append(self, transaction: OfflineTransaction) -> None:
        with self._lock:
            self._transactions.append(transaction)

    def pending(self) -> list[OfflineTransaction]:
        with self._lock:
            return [tx for tx in self._transactions if tx.tx_id not in self.outcomes]

    def mark_replayed(self, outcome: ReplayOutcome) -> None:
        with self._lock:
            self.outcomes[outcome.tx_id] = outcome


class JsonlJournal:
    """An append-only JSON-lines file: ``{"tx": …}`` when recorded, ``{"done": …}`` when replayed.

    Every append is flushed and fsynced: the record must survive a power cut.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _write(self, record: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, transaction: OfflineTransaction) -> None:
        self._write({"tx": transaction.model_dump(mode="json")})

    def mark_replayed(self, outcome: ReplayOutcome) -> None:
        self._write({"done": outcome.model_dump(mode="json")})

    def _records(self) -> tuple[list[OfflineTransaction], dict[str, ReplayOutcome]]:
        transactions: list[OfflineTransaction] = []
        outcomes: dict[str, ReplayOutcome] = {}
        if not self.path.exists():
            return transactions, outcomes
        with self._lock:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if "tx" in record:
                    transactions.append(OfflineTransaction.model_validate(record["tx"]))
                elif "done" in record:
                    outcome = ReplayOutcome.model_validate(record["done"])
                    outcomes[outcome.tx_id] = outcome
            except (ValueError, ValidationError) as exc:
                # A torn last line after a crash must not hide every other transaction.
                log.error("%s line %d is unreadable and skipped: %s", self.path, number, exc)
        return transactions, outcomes

    def pending(self) -> list[OfflineTransaction]:
        transactions, outcomes = self._records()
        return [tx for tx in transactions if tx.tx_id not in outcomes]

    def outcomes(self) -> dict[str, ReplayOutcome]:
        return self._records()[1]


# --------------------------------------------------------------------------- .koc


def _koc_time(value: datetime, style: KocTimestamp, zone: tzinfo | None) -> str:
    local = value.astimezone(zone) if zone is not None else value
    if style == "millis":
        return local.strftime("%Y-%m-%d %H-%M-%S ") + f"{local.microsecond // 1000:03d}"
    return local.strftime("%Y-%m-%d %H:%M:%S")


def export_koc(transactions: Iterable[OfflineTransaction], *, timestamp: KocTimestamp = "seconds",
               zone: tzinfo | None = None, generator: str = GENERATOR,
               generator_version: str = GENERATOR_VERSION) -> str:
    """The ``.koc`` text for ``transactions`` (sorted oldest first), times in ``zone`` (default: as recorded)."""
    lines = [f"Version={KOC_VERSION}\tGenerator={generator}\tGeneratorVersion={generator_version}"]
    for tx in sorted(transactions, key=lambda tx: tx.at):
        stamp = _koc_time(tx.at, timestamp, zone)
        if tx.kind is OfflineKind.ISSUE:
            fields = [stamp, "issue", tx.card_id or "", tx.item_id or ""]
        elif tx.kind is OfflineKind.RETURN:
            fields = [stamp, "return", tx.item_id or ""]
        else:
            fields = [stamp, "payment", tx.card_id or "", f"{tx.amount:.2f}"]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def _parse_koc_time(text: str, zone: tzinfo) -> datetime:
    for pattern, cut in (("%Y-%m-%d %H:%M:%S", None), ("%Y-%m-%d %H-%M-%S", 19)):
        try:
            value = datetime.strptime(text[:cut] if cut else text, pattern)
        except ValueError:
            continue
        if cut and len(text) > cut:
            millis = text[cut:].strip()
            if not millis.isdigit():
                raise OfflineError(f"bad milliseconds in timestamp {text!r}")
            value = value.replace(microsecond=int(millis) * 1000)
        return value.replace(tzinfo=zone)
    raise OfflineError(f"unrecognised .koc timestamp {text!r}")


def parse_koc(text: str, *, zone: tzinfo) -> list[OfflineTransaction]:
    """Read a ``.koc`` file (LF or CRLF, either timestamp style); times are taken as local to ``zone``."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("Version="):
        raise OfflineError(".koc files start with a 'Version=' header line")
    transactions = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        try:
            transactions.append(_koc_line(fields, zone))
        except (OfflineError, ValidationError, InvalidOperation, IndexError) as exc:
            raise OfflineError(f".koc line {number}: {exc}") from None
    return transactions


def _koc_line(fields: list[str], zone: tzinfo) -> OfflineTransaction:
    at = _parse_koc_time(fields[0], zone)
    action = fields[1]
    if action == "issue" and len(fields) == 4:
        return OfflineTransaction(kind=OfflineKind.ISSUE, at=at, card_id=fields[2], item_id=fields[3])
    if action == "return" and len(fields) == 3:
        return OfflineTransaction(kind=OfflineKind.RETURN, at=at, item_id=fields[2])
    if action == "payment" and len(fields) == 4:
        return OfflineTransaction(kind=OfflineKind.PAYMENT, at=at, card_id=fields[2], amount=Decimal(fields[3]))
    raise OfflineError(f"unknown action or wrong field count: {fields!r}")


# --------------------------------------------------------------------------- replay

_STILL_AWAY = {ReasonCode.SYSTEM_UNAVAILABLE, ReasonCode.OFFLINE_RECORDED}


def replay_transaction(circulation: Circulation, tx: OfflineTransaction) -> Result:
    """Send one offline transaction with no-block set and its original time."""
    key = f"offline-{tx.tx_id}"
    if tx.kind is OfflineKind.ISSUE:
        return circulation.checkout(tx.card_id or "", tx.item_id or "", idempotency_key=key, no_block=True, now=tx.at)
    if tx.kind is OfflineKind.RETURN:
        return circulation.checkin(tx.item_id or "", idempotency_key=key, no_block=True, now=tx.at)
    return circulation.record_payment(tx.card_id or "", tx.amount or Decimal(0), idempotency_key=key, now=tx.at)


def replay_offline(journal: OfflineJournal, circulation: Circulation) -> ReplayReport:
    """Replay every pending transaction, oldest first; stop (keeping the rest) if the system is away again.

    A transaction the library system refuses even with no-block is marked done
    and reported in ``refused`` for staff to resolve; it is not retried.
    """
    pending = sorted(journal.pending(), key=lambda tx: tx.at)
    replayed = 0
    refused: list[tuple[OfflineTransaction, ReplayOutcome]] = []
    for index, tx in enumerate(pending):
        result = replay_transaction(circulation, tx)
        if result.reason in _STILL_AWAY:
            log.warning("offline replay stopped at %s: the library system is unavailable", tx.tx_id)
            return ReplayReport(replayed=replayed, refused=tuple(refused), remaining=len(pending) - index,
                                stopped=result.detail or result.reason.value)
        outcome = ReplayOutcome(tx_id=tx.tx_id, ok=result.ok, reason=result.reason, detail=result.detail)
        journal.mark_replayed(outcome)
        replayed += 1
        if not result.ok:
            log.warning("offline %s %s refused on replay: %s", tx.kind.value, tx.tx_id, result.reason.value)
            refused.append((tx, outcome))
    return ReplayReport(replayed=replayed, refused=tuple(refused), remaining=0)
