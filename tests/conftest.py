"""Fixtures every test shares: hermetic brokers, unique sites, leak and swallowed-error checks."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")

from openshelf import mqtt as openshelf_mqtt  # noqa: E402

from tests.helpers import Mosquitto  # noqa: E402


@pytest.fixture
def site_id() -> str:
    """A unique site id, so every test has its own topic space on a shared broker."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_url(mosquitto: Mosquitto) -> str:
    return mosquitto.url


@pytest.fixture(autouse=True)
def fail_on_swallowed_handler_errors() -> Iterator[None]:
    """An exception raised inside an MQTT message handler fails the test that caused it."""
    errors: list[tuple[str, BaseException]] = []

    def record(topic: str, exc: BaseException) -> None:
        errors.append((topic, exc))

    openshelf_mqtt.HANDLER_ERROR_HOOKS.append(record)
    yield
    openshelf_mqtt.HANDLER_ERROR_HOOKS.remove(record)
    if errors:
        topic, exc = errors[0]
        pytest.fail(f"{len(errors)} MQTT handler error(s); first on {topic}: {exc!r}")


_IGNORED_THREAD_PREFIXES = ("pydevd", "ThreadPoolExecutor", "asyncio_", "stdout-", "Dummy")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts must be stopped by the end of the test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        leaked = [
            thread for thread in threading.enumerate()
            if thread not in before and thread.is_alive()
            and not thread.name.startswith(_IGNORED_THREAD_PREFIXES)
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if leaked:
        pytest.fail(f"test left threads running: {[thread.name for thread in leaked]}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("OPENSHELF_TEST_POSTGRES_URL"):
        return
    skip = pytest.mark.skip(reason="set OPENSHELF_TEST_POSTGRES_URL to run PostgreSQL tests")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
