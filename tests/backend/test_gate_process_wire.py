"""The gate process's channel: framing, gate view replication, coalesced sightings, the writer's lean paths."""

from __future__ import annotations

import pickle
import struct
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.alarm_writer import AlarmWriter
from backend.gate_decision import ItemFacts
from backend.gate_process_wire import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    GateWireError,
    Replicated,
    ViewAck,
    encode,
)
from backend.gate_records import AlarmRecord, DeviceSighting, merge_sightings
from backend.gate_view import GateView, LookupsWanted, ViewChange
from openshelf.contract import AlarmItem, AlarmReason, GateLinkState, GateState, utcnow


class ListReplica:
    """A replica that keeps what it is sent, pickled and framed as the real channel does."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.settled: list[object] = []

    def send(self, change: ViewChange) -> object:
        self.frames.append(encode(Replicated(len(self.frames) + 1, change)))
        return len(self.frames)

    def settle(self, ticket: object) -> None:
        self.settled.append(ticket)

    def replay(self) -> GateView:
        replica = GateView()
        for message in FrameDecoder().feed(b"".join(self.frames)):
            assert isinstance(message, Replicated)
            if not isinstance(message.change, LookupsWanted):
                replica.apply(message.change)
        return replica


def _state(view: GateView) -> tuple[dict[str, ItemFacts], dict[str, str]]:
    return dict(view._items), dict(view._item_of_uid)  # noqa: SLF001 - comparing whole views


def test_frames_survive_any_split_and_come_out_in_order() -> None:
    messages = [ViewAck(1), {"a": [1, 2]}, "x" * 100_000, ViewAck(2)]
    data = b"".join(encode(message) for message in messages)
    for step in (1, 7, 4096, len(data)):
        decoder = FrameDecoder()
        out: list[object] = []
        for start in range(0, len(data), step):
            out += decoder.feed(data[start:start + step])
        assert out == messages and decoder.pending == 0


def test_a_corrupt_or_impossible_frame_is_a_wire_error() -> None:
    with pytest.raises(GateWireError, match="undecodable"):
        FrameDecoder().feed(struct.pack("!I", 3) + b"\x80\x05x")
    with pytest.raises(GateWireError, match="out of step"):
        FrameDecoder().feed(struct.pack("!I", MAX_FRAME_BYTES + 1))


_ITEM_IDS = st.sampled_from(["I1", "I2", "I3", "I4"])
_UIDS = st.lists(st.sampled_from(["U1", "U2", "U3", "U4", "U5"]), max_size=3)
_FACTS = st.builds(lambda item_id, on_loan, in_library_only: ItemFacts(item_id, f"t-{item_id}", on_loan,
                                                                       in_library_only),
                   _ITEM_IDS, st.booleans(), st.booleans())
_OPS = st.one_of(
    st.tuples(st.just("put"), _FACTS, _UIDS),
    st.tuples(st.just("replace"), _FACTS, _UIDS),
    st.tuples(st.just("replace_many"), st.lists(st.tuples(_FACTS, _UIDS), max_size=3)),
    st.tuples(st.just("remove"), _ITEM_IDS),
    st.tuples(st.just("loan"), _ITEM_IDS, st.booleans()),
    st.tuples(st.just("replicate_again")),
)


def _do(view: GateView, op: tuple[Any, ...], replica: ListReplica) -> None:
    kind = op[0]
    if kind == "put":
        view.put_item(op[1], op[2])
    elif kind == "replace":
        view.replace_item(op[1], op[2])
    elif kind == "replace_many":
        view.replace_items(op[1])
    elif kind == "remove":
        view.remove_item(op[1])
    elif kind == "loan":
        view.set_on_loan(op[1], op[2])
    else:  # a new gate process starts from a snapshot
        replica.frames.clear()
        view.replicate_to(replica)


@settings(max_examples=150, deadline=None)
@given(before=st.lists(_OPS, max_size=6), after=st.lists(_OPS, max_size=12))
def test_a_replica_fed_the_changes_equals_its_master(before: list[tuple[Any, ...]],
                                                     after: list[tuple[Any, ...]]) -> None:
    master = GateView()
    unused = ListReplica()
    for op in before:
        if op[0] != "replicate_again":
            _do(master, op, unused)
    replica = ListReplica()
    master.replicate_to(replica)
    for op in after:
        _do(master, op, replica)
    assert _state(replica.replay()) == _state(master)
    for uid in ("U1", "U2", "U3", "U4", "U5"):
        assert replica.replay().lookup(uid) == master.lookup(uid)


def test_a_change_is_settled_outside_the_lock_and_lookups_wanted_follow_the_hook() -> None:
    master = GateView()
    replica = ListReplica()
    master.replicate_to(replica)
    master.put_item(ItemFacts("I1", "t", False, False), ["U1"])
    assert replica.settled[-1] == len(replica.frames)  # the writer waited for its own change
    master.set_lookup_hook(lambda item_id: None)
    master.set_on_loan("I1", False)  # no change: nothing sent
    changes = [message.change for message in FrameDecoder().feed(b"".join(replica.frames))]
    assert changes[-1] == LookupsWanted(True) and len(changes) == 4  # snapshot, hook state, put, hook set
    reported: list[str] = []
    master.set_lookup_hook(reported.append)
    master.report_lookup("I9")
    assert reported == ["I9"]


def test_merged_sightings_keep_the_latest_of_each_field() -> None:
    now = utcnow()
    state = GateState(io_link=GateLinkState.UP, light=False, buzzer=False, alarm_active=False)
    online = DeviceSighting("gate-1", "gate", now, online=True)
    stated = DeviceSighting("gate-1", "gate", now + timedelta(seconds=1), state=state)
    offline = DeviceSighting("gate-1", "gate", now - timedelta(seconds=1), online=False)
    merged = merge_sightings(merge_sightings(online, stated), offline)
    assert (merged.online, merged.state, merged.at) == (False, state, now + timedelta(seconds=1))
    assert pickle.loads(pickle.dumps(merged)) == merged


class CountingNotifier:
    def __init__(self, subscribers: int) -> None:
        self.subscriber_count = subscribers
        self.published: list[str] = []

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.published.append(data["id"])


@pytest.mark.parametrize("subscribers", [0, 1])
def test_the_writer_shapes_live_events_only_for_a_listening_dashboard(api: Any, subscribers: int) -> None:
    notifier = CountingNotifier(subscribers)
    writer = AlarmWriter(api.sessions, notifier)  # type: ignore[arg-type]
    writer.start()
    try:
        item = AlarmItem(uid="E0040100AAAAAA01", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)
        writer.record_alarm(AlarmRecord("a" * 32, "gate-1", utcnow(), False, (item,)))
        assert writer.flush()
    finally:
        writer.stop()
    assert writer.stats.alarms_written == 1
    assert notifier.published == (["a" * 32] if subscribers else [])
