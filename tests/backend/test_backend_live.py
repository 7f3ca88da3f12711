"""The live stream over real HTTP: an event per new alarm and per attached snapshot."""

from __future__ import annotations

import json
import threading

import httpx

from tests.backend.backend_testkit import ACCOUNTS, ServerThread
from tests.backend.conftest import Api
from tests.helpers import free_port, wait_for


def read_events(response: httpx.Response, into: list[tuple[str, dict]], stop: threading.Event) -> None:
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name is not None:
            into.append((name, json.loads(line[6:])))
            name = None
        if stop.is_set():
            return


def test_stream_sends_new_alarms_and_snapshots_then_ends_on_shutdown(api: Api) -> None:
    app = api.client.app
    with ServerThread(app, free_port()) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        username, password = ACCOUNTS["security"]
        assert client.post("/api/login", json={"username": username, "password": password}).status_code == 200
        events: list[tuple[str, dict]] = []
        stop = threading.Event()
        with client.stream("GET", "/api/alarms/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = threading.Thread(target=read_events, args=(response, events, stop), name="sse-reader")
            reader.start()
            try:
                wait_for(lambda: api.notifier.subscriber_count == 1, what="stream subscribed")
                alarm_id = api.add_alarm("I0003")
                api.notifier.publish("snapshot", {"id": alarm_id, "snapshot_url": "/api/evidence/x"})
                wait_for(lambda: len(events) == 2, what="two events")
            finally:
                stop.set()
                api.notifier.close()  # ends the stream, as a shutdown does
                reader.join(5)
        assert events[0][0] == "alarm" and events[0][1]["id"] == alarm_id
        assert events[0][1]["items"][0]["title"] == "Dế Mèn phiêu lưu ký"
        assert events[1] == ("snapshot", {"id": alarm_id, "snapshot_url": "/api/evidence/x"})
        assert not reader.is_alive()


def test_stream_refuses_technicians(api: Api) -> None:
    api.login("technician")
    assert api.client.get("/api/alarms/stream").status_code == 403
