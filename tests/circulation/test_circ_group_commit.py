"""Group commit: operations that queue up share one commit, and each stays atomic and durable.

Real SQLite files; the committing connection is wrapped only where a test needs to
hold or fail the commit.  Grouping is made deterministic by holding the writer in one
operation until the others are queued (polled, never slept on).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import create_engine

from backend.circulation.errors import StoreError
from backend.circulation.group_commit import GroupCommitter
from backend.db import make_engine
from backend.db.circulation_store import SqlCirculationStore
from sql_circ_testkit import migrated_database

DEADLINE_S = 10.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.002)


class _Gated:
    """A sqlite3 connection whose commit can be held (``gate``) or made to fail once (``fail_next``)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.inner = connection
        self.gate = threading.Event()
        self.gate.set()
        self.committing = threading.Event()
        self.fail_next = False

    def cursor(self) -> sqlite3.Cursor:
        return self.inner.cursor()

    def commit(self) -> None:
        self.committing.set()
        assert self.gate.wait(DEADLINE_S), "the test never opened the commit gate"
        if self.fail_next:
            self.fail_next = False
            raise sqlite3.OperationalError("disk I/O error")
        self.inner.commit()

    def rollback(self) -> None:
        self.inner.rollback()

    @property
    def in_transaction(self) -> bool:
        return self.inner.in_transaction


class _Db:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "group.db"
        with sqlite3.connect(self.path) as setup:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("CREATE TABLE rows (owner TEXT PRIMARY KEY)")
        self.connections: list[_Gated] = []

    def connect(self) -> _Gated:
        connection = _Gated(sqlite3.connect(self.path, check_same_thread=False, timeout=DEADLINE_S))
        connection.inner.execute("PRAGMA synchronous=FULL")
        self.connections.append(connection)
        return connection

    @property
    def last(self) -> _Gated:
        return self.connections[-1]

    def owners(self) -> set[str]:
        with sqlite3.connect(self.path) as reader:
            return {row[0] for row in reader.execute("SELECT owner FROM rows")}


@pytest.fixture
def db(tmp_path: Path) -> _Db:
    return _Db(tmp_path)


@pytest.fixture
def committer(db: _Db) -> Any:
    value = GroupCommitter(db.connect, lambda connection: connection.inner.close(), driver_error=sqlite3.Error)
    yield value
    value.close()


def _insert(owner: str, *, hold: threading.Event | None = None, inside: threading.Event | None = None,
            fail: bool = False) -> Callable[[sqlite3.Cursor], int]:
    """An operation: insert ``owner``, optionally wait for ``hold``, fail if asked; returns the rows it sees."""
    def operation(cursor: sqlite3.Cursor) -> int:
        cursor.execute("INSERT INTO rows (owner) VALUES (?)", (owner,))
        if inside is not None:
            inside.set()
        if hold is not None:
            assert hold.wait(DEADLINE_S)
        if fail:
            raise RuntimeError(f"{owner} changed its mind")
        return cursor.execute("SELECT count(*) FROM rows").fetchone()[0]
    return operation


class _Callers:
    """Threads each making one call; records what each returned or raised."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.outcomes: dict[str, Any] = {}

    def start(self, name: str, call: Callable[[], Any]) -> None:
        def body() -> None:
            try:
                self.outcomes[name] = call()
            except BaseException as exc:  # recorded for the test to assert on
                self.outcomes[name] = exc

        thread = threading.Thread(target=body, name=f"group-{name}")
        self.threads[name] = thread
        thread.start()

    def join(self) -> None:
        for thread in self.threads.values():
            thread.join(DEADLINE_S)
        assert not any(thread.is_alive() for thread in self.threads.values())


def _hold_the_writer(committer: GroupCommitter, callers: _Callers) -> threading.Event:
    """Start "first", which keeps the writer until the returned event is set."""
    hold, inside = threading.Event(), threading.Event()
    callers.start("first", lambda: committer.run(_insert("first", hold=hold, inside=inside)))
    assert inside.wait(DEADLINE_S)
    return hold


def _queue(committer: GroupCommitter, callers: _Callers, name: str, call: Callable[[], Any]) -> None:
    queued = committer.waiting
    callers.start(name, call)
    _until(lambda: committer.waiting == queued + 1, f"{name} is queued")


def test_operations_alone_commit_one_by_one(committer: GroupCommitter, db: _Db) -> None:
    for number, owner in enumerate(("a", "b", "c"), start=1):
        assert committer.run(_insert(owner)) == number
        assert owner in db.owners()  # on disk when the call returned
    assert (committer.groups_committed, committer.operations_committed) == (3, 3)


def test_queued_operations_share_one_commit_and_none_returns_before_it(committer: GroupCommitter,
                                                                      db: _Db) -> None:
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    for owner in ("b", "c", "d"):
        _queue(committer, callers, owner, lambda owner=owner: committer.run(_insert(owner)))
    db.last.gate.clear()
    hold.set()
    _until(db.last.committing.is_set, "the group commits")
    assert all(thread.is_alive() for thread in callers.threads.values())  # nobody answered yet
    assert db.owners() == set()  # and nothing is visible before the commit
    db.last.gate.set()
    callers.join()
    assert callers.outcomes == {"first": 1, "b": 2, "c": 3, "d": 4}  # each saw those before it
    assert db.owners() == {"first", "b", "c", "d"}
    assert (committer.groups_committed, committer.operations_committed) == (1, 4)


def test_a_failing_operation_is_rolled_back_alone(committer: GroupCommitter, db: _Db) -> None:
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    for owner in ("b", "c", "d"):
        _queue(committer, callers, owner, lambda owner=owner: committer.run(_insert(owner, fail=owner == "c")))
    hold.set()
    callers.join()
    assert isinstance(callers.outcomes["c"], RuntimeError)
    assert [callers.outcomes[owner] for owner in ("first", "b", "d")] == [1, 2, 3]
    assert db.owners() == {"first", "b", "d"} and committer.groups_committed == 1


def test_a_failing_first_operation_leaves_nothing(committer: GroupCommitter, db: _Db) -> None:
    with pytest.raises(RuntimeError):
        committer.run(_insert("first", fail=True))
    assert committer.run(_insert("second")) == 1
    assert db.owners() == {"second"}


def test_a_failed_commit_fails_every_operation_of_the_group(committer: GroupCommitter, db: _Db) -> None:
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    for owner in ("b", "c"):
        _queue(committer, callers, owner, lambda owner=owner: committer.run(_insert(owner)))
    db.last.fail_next = True
    hold.set()
    callers.join()
    assert all(isinstance(outcome, StoreError) for outcome in callers.outcomes.values())
    assert db.owners() == set()
    assert committer.run(_insert("after")) == 1  # a fresh connection takes over
    assert db.owners() == {"after"} and len(db.connections) == 2


def test_nothing_nests(committer: GroupCommitter, db: _Db) -> None:
    def nested(cursor: sqlite3.Cursor) -> None:
        cursor.execute("INSERT INTO rows (owner) VALUES ('outer')")
        committer.run(_insert("inner"))

    with pytest.raises(StoreError, match="nest"):
        committer.run(nested)
    with committer.transaction() as cursor:
        cursor.execute("INSERT INTO rows (owner) VALUES ('block')")
        with pytest.raises(StoreError, match="nest"):
            committer.run(_insert("inside the block"))
    assert db.owners() == {"block"}


def test_a_with_block_runs_alone_in_queue_order(committer: GroupCommitter, db: _Db) -> None:
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    _queue(committer, callers, "b", lambda: committer.run(_insert("b")))

    def block() -> int:
        with committer.transaction() as cursor:
            cursor.execute("INSERT INTO rows (owner) VALUES ('block')")
            return cursor.execute("SELECT count(*) FROM rows").fetchone()[0]

    _queue(committer, callers, "block", block)
    _queue(committer, callers, "d", lambda: committer.run(_insert("d")))
    hold.set()
    callers.join()
    assert callers.outcomes == {"first": 1, "b": 2, "block": 3, "d": 4}
    assert committer.groups_committed == 2  # first + b, then d; the block committed on its own


def test_a_caller_stuck_behind_a_long_transaction_gives_up_like_a_busy_database(db: _Db) -> None:
    committer = GroupCommitter(db.connect, lambda connection: connection.inner.close(), driver_error=sqlite3.Error,
                               wait_timeout_s=0.05)
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    with pytest.raises(StoreError, match="busy"):
        committer.run(_insert("impatient"))
    assert committer.waiting == 0
    hold.set()
    callers.join()
    assert callers.outcomes == {"first": 1} and db.owners() == {"first"}
    committer.close()


def test_closing_waits_for_the_group_and_a_new_call_reconnects(committer: GroupCommitter, db: _Db) -> None:
    callers = _Callers()
    hold = _hold_the_writer(committer, callers)
    _queue(committer, callers, "b", lambda: committer.run(_insert("b")))
    _queue(committer, callers, "closer", committer.close)
    hold.set()
    callers.join()
    assert callers.outcomes == {"first": 1, "b": 2, "closer": None} and db.owners() == {"first", "b"}
    assert committer.run(_insert("c")) == 3
    assert len(db.connections) == 2


def test_the_store_commits_durably_and_gives_connections_back_as_it_found_them(tmp_path: Path) -> None:
    with migrated_database("sqlite", tmp_path) as url:
        engine = make_engine(url)
        _check_durable_store(engine)


def _check_durable_store(engine: Any) -> None:
    try:
        store = SqlCirculationStore(engine)
        with store.session() as session:
            assert session._rows("PRAGMA synchronous", {})[0][0] == 2  # FULL: the log is flushed at commit
        store.close()
        connections = [engine.raw_connection() for _ in range(3)]
        try:
            for connection in connections:
                cursor = connection.cursor()
                cursor.execute("PRAGMA synchronous")
                assert cursor.fetchone()[0] == 1  # the engine's own NORMAL, for everyone else
        finally:
            for connection in connections:
                connection.close()
    finally:
        engine.dispose()


def test_postgres_stores_need_no_group_commit() -> None:
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")  # never connected
    try:
        assert SqlCirculationStore(engine).group_commit is None
    finally:
        engine.dispose()

