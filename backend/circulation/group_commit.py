"""Group commit: circulation transactions that arrive together share one durable SQLite commit.

SQLite lets one connection write at a time, and a durable commit (``synchronous=FULL``)
waits for the disk to flush the write-ahead log: on the development VM that flush costs
as much as the rest of a checkout.  When several terminals ask at once, the operations
waiting for the writer are run by whoever holds it, each inside its own ``SAVEPOINT`` of
one transaction, and one commit covers them all (PostgreSQL and InnoDB do the same
inside the server).  The holder runs the queued operations itself ("flat combining"):
a waiting caller sleeps once and wakes with its answer, instead of being woken to run
its part and woken again after the commit — under the GIL every wake-up costs.

What each caller still gets, exactly as with one transaction per call:

* **atomic**: an operation that raises is rolled back to its savepoint (the whole
  transaction when it was the first), the others are untouched;
* **durable**: ``run()`` returns only after the shared ``COMMIT`` returned, so nothing is
  answered before it is on disk; if that commit fails, every operation of the group
  raises :class:`StoreError` and none of them left a trace;
* **serialisable**: operations run one after the other on the one connection; each sees
  the ones before it, which is the outcome of running them serially.

One caller alone never waits for anyone: a group ends as soon as nobody is queued.
``transaction()`` is a ``with`` block for bulk work (imports, setup): it runs alone, in
queue order.  Nothing nests: an operation or block that asks for another transaction
raises instead of waiting for itself; a caller that waits longer than
``wait_timeout_s`` for the writer raises :class:`StoreError`, as SQLite's busy timeout
would.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable, Generic, TypeVar

from backend.circulation.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_MAX_GROUP = 32
DEFAULT_WAIT_TIMEOUT_S = 30.0  # as the engine's SQLite busy timeout

_WAITING, _LEAD, _DONE = "waiting", "lead", "done"


class _Request(Generic[T]):
    """One caller's operation (None: a ``with`` block that wants the writer to itself)."""

    __slots__ = ("operation", "ticket", "state", "result", "error")

    def __init__(self, operation: Callable[[Any], T] | None) -> None:
        self.operation = operation
        self.ticket: threading.Lock | None = None
        self.state = _WAITING
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommitter:
    """Runs operations on one DBAPI connection (SQLite), committing those that queued up together.

    ``connect()`` returns a fresh connection set up for durable commits; ``discard(connection)``
    takes back one that must not be used again (after a failed commit or rollback);
    ``on_failure()`` is told when a whole group was lost (e.g. to drop caches filled from it).
    """

    def __init__(self, connect: Callable[[], Any], discard: Callable[[Any], None], *,
                 driver_error: type[BaseException], max_group: int = DEFAULT_MAX_GROUP,
                 wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S, on_failure: Callable[[], None] | None = None) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._connect = connect
        self._discard = discard
        self._driver_error = driver_error
        self._max_group = max_group
        self._wait_timeout_s = wait_timeout_s
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._owned = False  # someone holds the writer
        self._pending: deque[_Request[Any]] = deque()
        self._connection: Any = None
        self._cursor: Any = None
        self._local = threading.local()
        self.groups_committed = 0
        self.operations_committed = 0

    # ------------------------------------------------------------------ public

    def run(self, operation: Callable[[Any], T]) -> T:
        """``operation(cursor)`` inside a transaction; its result once that transaction is on disk."""
        self._refuse_nesting()
        request: _Request[T] = _Request(operation)
        if not self._acquire(request):
            return request.outcome()  # a holder ran it for us
        return self._combine(request)

    def transaction(self) -> "ExclusiveTransaction":
        """``with committer.transaction() as cursor:`` — a transaction of its own (bulk work, setup)."""
        return ExclusiveTransaction(self)

    @property
    def waiting(self) -> int:
        """Callers queued for the writer right now."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Give the connection back, after whatever runs or waits before it."""
        self._acquire(_Request(None))
        try:
            self._drop_connection(rollback=False)
        finally:
            self._pass_writer()

    # ------------------------------------------------------------------ the writer

    def _refuse_nesting(self) -> None:
        if getattr(self._local, "inside", False):
            raise StoreError("circulation transactions do not nest")

    def _acquire(self, request: _Request[Any]) -> bool:
        """True once this thread holds the writer; False when a holder already ran ``request``."""
        with self._lock:
            if not self._owned:
                self._owned = True
                return True
            request.ticket = threading.Lock()
            request.ticket.acquire()
            self._pending.append(request)
        if not request.ticket.acquire(timeout=self._wait_timeout_s):
            with self._lock:
                if request in self._pending:
                    self._pending.remove(request)
                    # Like SQLite's busy timeout: stuck behind a very long transaction, fail instead of hanging.
                    raise StoreError(f"the circulation database stayed busy for {self._wait_timeout_s:g} s")
            request.ticket.acquire()  # taken up just now: its end is near
        return request.state == _LEAD

    def _pass_writer(self) -> None:
        """Hand the writer to the first queued caller, or mark it free."""
        with self._lock:
            if not self._pending:
                self._owned = False
                return
            following = self._pending.popleft()
            following.state = _LEAD
        assert following.ticket is not None
        following.ticket.release()

    def _next_operation(self, taken: int) -> _Request[Any] | None:
        """The next queued operation for this group (a ``with`` block waits for a group of its own)."""
        if taken >= self._max_group:
            return None
        with self._lock:
            if self._pending and self._pending[0].operation is not None:
                return self._pending.popleft()
        return None

    # ------------------------------------------------------------------ a group

    def _combine(self, mine: _Request[T]) -> T:
        """Holding the writer: run ``mine`` and what queues up meanwhile, commit once, wake everyone."""
        group: list[_Request[Any]] = []  # every request taken, finished when the group ends
        members: list[_Request[Any]] = []  # those whose changes are in the open transaction
        self._local.inside = True
        try:
            request: _Request[Any] | None = mine
            while request is not None:
                group.append(request)
                self._run_one(request, members)
                request = self._next_operation(len(group))
            self._commit(members)
        except BaseException as exc:  # the writer itself failed (not an operation): nothing of the group is kept
            self._fail(members, exc)
            for taken in group:
                if taken.error is None:
                    taken.error = StoreError(f"the circulation transaction failed: {exc}")
                    taken.error.__cause__ = exc
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like still stop this thread
        finally:
            self._local.inside = False
            self._pass_writer()
            for taken in group:
                if taken is not mine:
                    taken.state = _DONE
                    assert taken.ticket is not None
                    taken.ticket.release()
        return mine.outcome()

    def _run_one(self, request: _Request[Any], members: list[_Request[Any]]) -> None:
        first = not members
        if first:
            self._begin()
        else:
            self._cursor.execute("SAVEPOINT circulation_operation")
        try:
            assert request.operation is not None
            request.result = request.operation(self._cursor)
        except Exception as exc:  # the operation's own failure: undo its part only, tell its caller
            request.error = exc
            self._undo(first, members, exc)
            return
        if not first:
            self._cursor.execute("RELEASE circulation_operation")
        members.append(request)

    def _begin(self) -> None:
        if self._connection is None:
            self._connection = self._connect()
            self._cursor = self._connection.cursor()
        try:
            self._cursor.execute("BEGIN IMMEDIATE")
        except self._driver_error:
            self._drop_connection()
            raise

    def _undo(self, first: bool, members: list[_Request[Any]], exc: BaseException) -> None:
        try:
            if first:
                self._connection.rollback()
                return
            self._cursor.execute("ROLLBACK TO circulation_operation")
            self._cursor.execute("RELEASE circulation_operation")
        except self._driver_error as lost:
            # I/O errors, a full disk and the like end the whole transaction in SQLite.
            log.warning("circulation group lost after a failed operation (%s): %s", exc, lost)
            self._fail(members, lost)

    def _commit(self, members: list[_Request[Any]]) -> None:
        if not members:
            return
        try:
            self._connection.commit()
        except self._driver_error as exc:
            log.warning("circulation commit of %d operation(s) failed: %s", len(members), exc)
            self._fail(members, exc)
            return
        self.groups_committed += 1
        self.operations_committed += len(members)

    def _fail(self, members: list[_Request[Any]], exc: BaseException) -> None:
        """Nothing of ``members`` is stored: each of them raises StoreError; a fresh connection follows."""
        for request in members:
            request.error = StoreError(f"the circulation database could not commit: {exc}")
            request.error.__cause__ = exc
        members.clear()
        self._drop_connection()
        if self._on_failure is not None:
            self._on_failure()

    def _drop_connection(self, *, rollback: bool = True) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is None:
            return
        if rollback:
            try:
                connection.rollback()
            except self._driver_error:
                pass
        self._discard(connection)


class ExclusiveTransaction:
    """A ``with`` block's own transaction on the writer, in queue order with the groups."""

    __slots__ = ("_committer",)

    def __init__(self, committer: GroupCommitter) -> None:
        self._committer = committer

    def __enter__(self) -> Any:
        committer = self._committer
        committer._refuse_nesting()
        committer._acquire(_Request(None))
        try:
            committer._begin()
        except BaseException:
            committer._pass_writer()
            raise
        committer._local.inside = True
        return committer._cursor

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        committer = self._committer
        committer._local.inside = False
        failed = kind is not None
        try:
            if failed:
                committer._connection.rollback()
            else:
                committer._connection.commit()
        except committer._driver_error:
            failed = True
            committer._drop_connection()
            raise
        finally:
            if failed and committer._on_failure is not None:
                committer._on_failure()  # caches filled inside the transaction may hold what was undone
            committer._pass_writer()
