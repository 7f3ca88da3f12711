from datetime import timedelta

import pytest
from pydantic import ValidationError

from openshelf.contract import (
    CATALOGUE,
    AlarmCommand,
    AlarmItem,
    AlarmReason,
    Channel,
    Kind,
    TagEvent,
    TopicError,
    parse_topic,
    spec_for,
    topic,
    utcnow,
)


def test_topic_layout_for_each_channel():
    assert topic("hn", Kind.GATE, "g1", Channel.STATUS) == "openshelf/v1/hn/gate/g1/status"
    assert topic("hn", Kind.GATE, "g1", Channel.STATE) == "openshelf/v1/hn/gate/g1/state"
    assert topic("hn", Kind.READER, "r1", Channel.EVENT, "tag_arrived") == "openshelf/v1/hn/reader/r1/event/tag_arrived"
    assert topic("hn", Kind.GATE, "g1", Channel.CMD, "alarm", root="lib") == "lib/v1/hn/gate/g1/cmd/alarm"


def test_wildcards_only_in_filters():
    assert topic("hn", "+", "+", Channel.EVENT, "+", wildcards=True) == "openshelf/v1/hn/+/+/event/+"
    with pytest.raises(TopicError):
        topic("hn", Kind.GATE, "+", Channel.STATE)
    with pytest.raises(TopicError):
        topic("hn", "+", "g1", Channel.STATE)


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "x#", "nul\x00"])
def test_bad_segments_are_refused(bad):
    with pytest.raises(TopicError):
        topic("hn", Kind.GATE, bad, Channel.STATE)
    with pytest.raises(TopicError):
        topic(bad, Kind.GATE, "g1", Channel.STATE)


def test_named_channels_need_a_name_and_others_refuse_one():
    with pytest.raises(TopicError):
        topic("hn", Kind.GATE, "g1", Channel.CMD)
    with pytest.raises(TopicError):
        topic("hn", Kind.GATE, "g1", Channel.STATUS, "x")


def test_parse_topic_round_trips():
    built = topic("hn", Kind.CAMERA, "cam-1", Channel.EVENT, "snapshot")
    parts = parse_topic(built)
    assert (parts.site, parts.kind, parts.device_id, parts.channel, parts.name) == (
        "hn", Kind.CAMERA, "cam-1", Channel.EVENT, "snapshot")
    for bad in ["openshelf/v2/hn/gate/g1/state", "openshelf/v1/hn/toaster/g1/state", "a/b", "openshelf/v1/hn/gate/g1/cmd"]:
        with pytest.raises(TopicError):
            parse_topic(bad)


def test_payloads_forbid_unknown_fields_and_check_version():
    event = TagEvent(reader_id="r1", uid="E004010000000301", item_id="I0003")
    data = event.model_dump(mode="json")
    assert data["version"] == 1
    with pytest.raises(ValidationError):
        TagEvent.model_validate({**data, "patron_name": "Nguyễn Văn A"})
    with pytest.raises(ValidationError):
        TagEvent.model_validate({**data, "version": 2})
    with pytest.raises(ValidationError):
        TagEvent.model_validate({**data, "uid": "not-hex"})
    assert TagEvent.model_validate_json(event.model_dump_json()) == event


def test_commands_expire():
    item = AlarmItem(uid="E004010000000301", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)
    live = AlarmCommand(alarm_id="a1", items=[item], expires_at=utcnow() + timedelta(seconds=5))
    dead = AlarmCommand(alarm_id="a1", items=[item], expires_at=utcnow() - timedelta(seconds=1))
    assert not live.expired()
    assert dead.expired()


def test_naive_timestamps_are_refused():
    from datetime import datetime
    with pytest.raises(ValidationError):
        TagEvent(reader_id="r1", uid="E004010000000301", sent_at=datetime(2026, 1, 1))


def test_catalogue_is_consistent():
    seen = set()
    for spec in CATALOGUE:
        key = (spec.kind, spec.channel, spec.name)
        assert key not in seen
        seen.add(key)
        assert "version" in spec.model.model_fields
        assert spec.retained == (spec.channel in {Channel.STATUS, Channel.STATE})
        assert spec_for(*key) is spec


def test_mqtt_doc_is_generated_from_the_contract():
    from openshelf.contract_docs import render_mqtt_doc
    from openshelf.paths import repo_root
    text = (repo_root() / "docs" / "mqtt.md").read_text(encoding="utf-8")
    assert text == render_mqtt_doc(), "docs/mqtt.md is stale: run `python -m openshelf.contract_docs > docs/mqtt.md`"
