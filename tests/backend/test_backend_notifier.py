"""The live fan-out: every subscriber gets every event; a stalled one is cut loose, not waited for."""

from __future__ import annotations

import asyncio
import threading

import pytest

from backend.notifier import AlarmNotifier


async def test_events_from_another_thread_reach_every_subscriber() -> None:
    notifier = AlarmNotifier()
    first, second = notifier.subscribe(), notifier.subscribe()
    sender = threading.Thread(target=notifier.publish, args=("alarm", {"id": "a1"}), name="publisher")
    sender.start()
    sender.join()
    for subscription in (first, second):
        event = await subscription.next(timeout_s=2)
        assert event is not None and (event.name, event.data) == ("alarm", {"id": "a1"})
    first.close()
    assert notifier.subscriber_count == 1
    assert await second.next(timeout_s=0.01) is None  # nothing more: a heartbeat is due


async def test_a_subscriber_that_falls_behind_is_closed() -> None:
    notifier = AlarmNotifier(max_pending=2)
    slow = notifier.subscribe()
    for number in range(3):
        notifier.publish("alarm", {"n": number})
    await asyncio.sleep(0)  # let the loop deliver
    await asyncio.sleep(0)
    assert notifier.subscriber_count == 0
    assert [(await slow.next(timeout_s=1)).data for _ in range(2)] == [{"n": 0}, {"n": 1}]
    with pytest.raises(StopAsyncIteration):
        await slow.next(timeout_s=1)


async def test_close_ends_every_stream_and_later_subscribers_at_once() -> None:
    notifier = AlarmNotifier()
    open_stream = notifier.subscribe()
    notifier.close()
    with pytest.raises(StopAsyncIteration):
        await open_stream.next(timeout_s=1)
    with pytest.raises(StopAsyncIteration):
        await notifier.subscribe().next(timeout_s=1)
