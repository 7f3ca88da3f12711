"""LoopInbox: messages from MQTT threads reach the loop in order, with one wake-up per batch."""

from __future__ import annotations

import asyncio
import threading

from gate_controller.inbox import LoopInbox
from openshelf.contract import Channel, Kind, TopicParts

PARTS = TopicParts("openshelf", "s1", Kind.GATE, "gate-1", Channel.CMD, "alarm")


async def _until(predicate, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_batch_put_from_another_thread_arrives_in_order_with_one_wake_up():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[tuple[str, int]] = []
    first = inbox.wrap(lambda parts, n: got.append(("a", n)))
    second = inbox.wrap(lambda parts, n: got.append(("b", n)))

    def network_thread() -> None:
        for n in range(100):
            (first if n % 2 else second)(PARTS, n)

    thread = threading.Thread(target=network_thread)
    thread.start()
    thread.join()  # the loop has not run in between: every message waits in one batch
    await _until(lambda: len(got) == 100)
    assert [n for _, n in got] == list(range(100))
    assert {name for name, n in got if n % 2} == {"a"}
    assert inbox.wake_ups == 1 and inbox.delivered == 100


async def test_a_failing_handler_does_not_stop_the_rest_of_its_batch():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[int] = []

    def handler(parts: TopicParts, n: int) -> None:
        if n == 1:
            raise ValueError("bad message")
        got.append(n)

    forward = inbox.wrap(handler)
    for n in range(3):
        forward(PARTS, n)
    await _until(lambda: inbox.delivered == 3)
    assert got == [0, 2]


async def test_messages_put_from_a_thread_while_a_batch_drains_get_their_own_wake_up():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[int] = []

    def handler(parts: TopicParts, n: int) -> None:
        got.append(n)
        if n == 0:  # arrives during the drain, from a network thread
            thread = threading.Thread(target=inbox.put, args=(handler, parts, 1))
            thread.start()
            thread.join()

    thread = threading.Thread(target=inbox.put, args=(handler, PARTS, 0))
    thread.start()
    thread.join()
    await _until(lambda: got == [0, 1])
    assert inbox.wake_ups == 2


async def test_on_the_loop_itself_a_message_is_handled_at_once_unless_others_wait():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[str] = []
    handler = inbox.wrap(lambda parts, name: got.append(name))
    handler(PARTS, "direct")  # a link driven by this loop: nothing queued, so no hand-over at all
    assert got == ["direct"] and inbox.wake_ups == 0
    thread = threading.Thread(target=handler, args=(PARTS, "from a thread"))
    thread.start()
    thread.join()
    handler(PARTS, "behind it")  # must not overtake what is already queued
    assert got == ["direct"]
    await _until(lambda: len(got) == 3)
    assert got == ["direct", "from a thread", "behind it"]


def test_a_put_after_the_loop_closed_is_dropped_quietly():
    loop = asyncio.new_event_loop()
    inbox = LoopInbox(loop)
    loop.close()
    inbox.put(lambda parts, message: None, PARTS, "late")
    assert inbox.wake_ups == 0


async def test_an_urgent_message_queued_behind_ordinary_ones_is_handled_first():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[str] = []
    ordinary = inbox.wrap(lambda parts, name: got.append(name))
    urgent = inbox.wrap(lambda parts, name: got.append(name), urgent=True)

    def network_thread() -> None:
        for n in range(20):
            ordinary(PARTS, f"read-{n}")
        urgent(PARTS, "alarm")
        ordinary(PARTS, "read-20")
        urgent(PARTS, "silence")  # urgent ones keep their order among themselves

    thread = threading.Thread(target=network_thread)
    thread.start()
    thread.join()
    await _until(lambda: len(got) == 23)
    assert got[:2] == ["alarm", "silence"]
    assert got[2:] == [f"read-{n}" for n in range(21)]


async def test_an_urgent_message_arriving_during_a_drain_overtakes_the_rest_of_the_batch():
    inbox = LoopInbox(asyncio.get_running_loop())
    got: list[str] = []
    urgent = inbox.wrap(lambda parts, name: got.append(name), urgent=True)

    def ordinary_handler(parts: TopicParts, name: str) -> None:
        got.append(name)
        if name == "read-0":  # the alarm arrives from a network thread while the batch drains
            thread = threading.Thread(target=urgent, args=(parts, "alarm"))
            thread.start()
            thread.join()

    ordinary = inbox.wrap(ordinary_handler)
    thread = threading.Thread(target=lambda: [ordinary(PARTS, f"read-{n}") for n in range(5)])
    thread.start()
    thread.join()
    await _until(lambda: len(got) == 6)
    assert got == ["read-0", "alarm", "read-1", "read-2", "read-3", "read-4"]
