"""People counting: local clock hours, hour buckets counted once per event, occupancy since the reset, beam faults."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from backend.db.gate_ops_models import BeamFault, GateHourCount, PassageSeen
from backend.gate_ops import (
    BeamFaultRecord,
    GateOpsRecorder,
    GateRef,
    OccupancySettings,
    PassageRecord,
    day_start,
    hourly_counts,
    local_hour_start,
    occupancy_settings,
    prune_seen_passages,
    read_occupancy,
    store_beam_faults,
    store_passages,
)
from zoneinfo import ZoneInfo

from openshelf.config import ConfigError, load_model
from openshelf.site import SiteConfig
from openshelf.contract import BeamFaultEvent, Channel, Kind, PassageDirection, PassageEvent, parse_topic, topic
from tests.backend.backend_testkit import GATE_ID
from tests.backend.conftest import Api

HCM = OccupancySettings(reset_hour=8, timezone="Asia/Ho_Chi_Minh")  # UTC+7, no daylight saving
# 2026-03-02 10:15 in Hà Nội: the library opened at 08:00 local = 01:00 UTC.
NOW = datetime(2026, 3, 2, 3, 15, tzinfo=timezone.utc)
GATES = [GateRef(GATE_ID, "Cổng chính"), GateRef("gate-2", "Cổng phụ")]


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc)


def passage(direction: str, at: datetime, gate_id: str = GATE_ID, event_id: str | None = None) -> PassageRecord:
    return PassageRecord(event_id or uuid.uuid4().hex, gate_id, PassageDirection(direction), at)


# ---------------------------------------------------------------------------- clock hours and the reset


def test_hours_and_the_reset_follow_the_library_clock() -> None:
    zone = HCM.zone
    assert local_hour_start(utc(2, 1, 59), zone) == utc(2, 1)
    assert day_start(NOW, HCM) == utc(2, 1)  # 08:00 local today
    assert day_start(utc(2, 0, 30), HCM) == utc(1, 1)  # 07:30 local: still yesterday's day
    assert day_start(utc(2, 1), HCM) == utc(2, 1)


def test_a_zone_with_a_quarter_hour_offset_gets_local_hour_buckets() -> None:
    kathmandu = OccupancySettings(reset_hour=9, timezone="Asia/Kathmandu")  # UTC+5:45
    assert local_hour_start(utc(2, 3, 0), kathmandu.zone) == utc(2, 2, 15)  # 08:45 local → 08:00 local
    assert day_start(utc(2, 3, 30), kathmandu) == utc(2, 3, 15)  # 09:15 local → 09:00 local


def test_the_reset_lands_on_local_midnight_across_a_daylight_saving_change() -> None:
    berlin = OccupancySettings(timezone="Europe/Berlin")  # clocks go forward on 2026-03-29 at 02:00
    assert day_start(utc(29, 12), berlin) == utc(28, 23)  # 00:00 CET
    assert day_start(utc(30, 12), berlin) == utc(29, 22)  # 00:00 CEST


def test_settings_come_from_the_site_file_and_its_environment_overrides(tmp_path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("site: hn\ndemo: true\nbackend: {timezone: Asia/Ho_Chi_Minh, day_starts_at_hour: 7}\n")
    settings = occupancy_settings(load_model(SiteConfig, path, {}).backend)
    assert settings.reset_hour == 7 and settings.zone == ZoneInfo("Asia/Ho_Chi_Minh")
    overridden = load_model(SiteConfig, path, {"OPENSHELF__BACKEND__DAY_STARTS_AT_HOUR": "6"})
    assert occupancy_settings(overridden.backend).reset_hour == 6
    with pytest.raises(ConfigError, match="backend.day_starts_at_hour"):
        load_model(SiteConfig, path, {"OPENSHELF__BACKEND__DAY_STARTS_AT_HOUR": "24"})
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus_Mons'"):
        load_model(SiteConfig, path, {"OPENSHELF__BACKEND__TIMEZONE": "Mars/Olympus_Mons"})
    assert occupancy_settings(SiteConfig(site="hn", demo=True).backend) == OccupancySettings()


# ---------------------------------------------------------------------------- storage


def test_passages_fill_local_hour_buckets_and_count_each_event_once(api: Api) -> None:
    repeated = passage("in", utc(2, 1, 5))
    batch = [repeated, repeated, passage("in", utc(2, 1, 50)), passage("out", utc(2, 2, 10))]
    with api.sessions() as session:
        assert store_passages(session, batch, HCM.zone, NOW) == 3
        assert store_passages(session, [repeated, batch[3]], HCM.zone, NOW) == 0  # a QoS 1 redelivery
        assert store_passages(session, [passage("in", utc(2, 1, 59))], HCM.zone, NOW) == 1
        counts = hourly_counts(session, GATE_ID, utc(2, 1), utc(2, 4), HCM)
        assert session.scalar(select(func.count()).select_from(GateHourCount)) == 2
    assert [(hour.hour_start, hour.entries, hour.exits) for hour in counts.hours] == [
        (utc(2, 1), 3, 0), (utc(2, 2), 0, 1), (utc(2, 3), 0, 0)]


def test_occupancy_counts_since_the_reset_clamps_at_zero_and_flags_drift(api: Api) -> None:
    today = [passage("in", utc(2, 1, minute)) for minute in range(5)] + [passage("out", utc(2, 2)),
                                                                          passage("out", utc(2, 3))]
    side_gate = [passage("out", utc(2, 2, 30), "gate-2"), passage("out", utc(2, 2, 31), "gate-2")]
    stray = [passage("in", utc(2, 1, 30), "gate-9")]
    last_night = [passage("in", utc(1, 12)), passage("in", utc(2, 0, 59))]  # before 08:00 local today
    with api.sessions() as session:
        store_passages(session, today + side_gate + stray + last_night, HCM.zone, NOW)
        occupancy = read_occupancy(session, NOW, HCM, GATES)
    assert occupancy.since == utc(2, 1) and occupancy.reset_hour == 8
    gates = {gate.gate_id: gate for gate in occupancy.gates}
    assert [gate.gate_id for gate in occupancy.gates] == [GATE_ID, "gate-2", "gate-9"]
    assert (gates[GATE_ID].entries, gates[GATE_ID].exits, gates[GATE_ID].occupancy) == (5, 2, 3)
    assert gates[GATE_ID].name == "Cổng chính" and not gates[GATE_ID].drift
    assert (gates["gate-2"].net, gates["gate-2"].occupancy, gates["gate-2"].drift) == (-2, 0, True)
    assert (occupancy.total.entries, occupancy.total.exits, occupancy.total.occupancy) == (6, 4, 2)
    assert not occupancy.total.drift


def test_beam_faults_keep_each_beams_latest_report(api: Api) -> None:
    stuck = BeamFaultRecord(GATE_ID, "1", "beam_a", True, utc(2, 2), utc(2, 2, 1))
    clear = BeamFaultRecord(GATE_ID, "1", "beam_a", False, utc(2, 2, 30), utc(2, 2, 30))
    with api.sessions() as session:
        assert store_beam_faults(session, [stuck]) == [stuck]
        assert read_occupancy(session, NOW, HCM, GATES).gates[0].beam_fault
        assert store_beam_faults(session, [clear, stuck]) == [clear]  # the late, older report changes nothing
        row = session.get(BeamFault, (GATE_ID, "1", "beam_a"))
        assert row is not None and not row.stuck and row.since == utc(2, 2, 30)
        assert not read_occupancy(session, NOW, HCM, GATES).gates[0].beam_fault


def test_counted_ids_are_forgotten_after_the_redelivery_window(api: Api) -> None:
    with api.sessions() as session:
        store_passages(session, [passage("in", utc(1, 2))], HCM.zone, utc(1, 2))
        store_passages(session, [passage("in", utc(2, 2))], HCM.zone, utc(2, 2))
        assert prune_seen_passages(session, utc(2, 0)) == 1
        assert session.scalar(select(func.count()).select_from(PassageSeen)) == 1


# ---------------------------------------------------------------------------- the recorder (MQTT side)


class FakeLink:
    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}

    def subscribe(self, topic_filter: str, model: type, handler) -> None:  # noqa: ANN001
        self.handlers[topic_filter] = handler

    def deliver(self, site_id: str, gate_id: str, name: str, message: object) -> None:
        concrete = topic(site_id, Kind.GATE, gate_id, Channel.EVENT, name)
        handler = next(handler for pattern, handler in self.handlers.items() if pattern.endswith("/" + name))
        handler(parse_topic(concrete), message)


class FakeNotifier:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def publish(self, name: str, data: dict) -> None:
        self.events.append((name, data))


def test_the_recorder_counts_events_from_the_broker_and_tells_the_dashboards(api: Api, site_id: str) -> None:
    link, notifier = FakeLink(), FakeNotifier()
    recorder = GateOpsRecorder(link, api.sessions, notifier, HCM, GATES, site_id=site_id, root="openshelf",
                               clock=lambda: NOW)
    recorder.start()
    try:
        assert set(link.handlers) == {topic(site_id, Kind.GATE, "+", Channel.EVENT, name, wildcards=True)
                                      for name in ("passage", "beam_fault")}
        entering = PassageEvent(gate_id=GATE_ID, direction=PassageDirection.IN, at=utc(2, 3, 10))
        link.deliver(site_id, GATE_ID, "passage", entering)
        link.deliver(site_id, GATE_ID, "passage", entering)  # the same event again
        # The topic names the gate (the broker's ACL vouches for it), whatever the payload claims.
        link.deliver(site_id, GATE_ID, "passage", PassageEvent(gate_id="gate-2", direction="in", at=utc(2, 3)))
        # A gate whose clock is hours off is counted at the time the backend received it.
        link.deliver(site_id, GATE_ID, "passage", PassageEvent(gate_id=GATE_ID, direction="out", at=utc(1, 3)))
        # Without the broker's ACL anyone could publish as an impossible gate; that must not spoil the batch.
        link.deliver(site_id, "g" * 80, "passage", PassageEvent(gate_id="g", direction="in", at=NOW))
        assert recorder.flush()
        assert recorder.passages_counted == 3
        link.deliver(site_id, GATE_ID, "passage", PassageEvent(gate_id=GATE_ID, direction="in",
                                                               at=NOW.replace(tzinfo=None)))  # no zone: as received
        assert recorder.flush()
        assert recorder.passages_counted == 4 and recorder.failures == 0
        name, latest = notifier.events[-1]
        assert name == "occupancy"
        assert latest["gates"][0]["gate_id"] == GATE_ID
        assert (latest["gates"][0]["entries"], latest["gates"][0]["exits"], latest["total"]["occupancy"]) == (3, 1, 2)

        fault = BeamFaultEvent(gate_id=GATE_ID, beam="beam_b", stuck=True, since=utc(2, 3))
        link.deliver(site_id, GATE_ID, "beam_fault", fault)
        assert recorder.flush()
        assert ("device_health", {"device_id": GATE_ID, "beam": "beam_b", "lane": "1", "stuck": True}) in \
            notifier.events
        assert notifier.events[-1][1]["gates"][0]["beam_fault"] is True
    finally:
        recorder.stop()
    link.deliver(site_id, GATE_ID, "passage", PassageEvent(gate_id=GATE_ID, direction="in", at=NOW))
    assert recorder.passages_counted == 4  # stopped: nothing more is queued or written
