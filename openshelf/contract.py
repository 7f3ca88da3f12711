"""The MQTT contract: every topic OpenShelf uses and every payload it carries.

This module is the only place that formats a topic string. Every payload is a
pydantic model with a ``version`` field and ``extra="forbid"``, so a receiver
can reject anything it does not understand instead of guessing.

Topic layout::

    <root>/v1/<site>/<kind>/<device_id>/status              retained, Last Will
    <root>/v1/<site>/<kind>/<device_id>/state               retained
    <root>/v1/<site>/<kind>/<device_id>/event/<type>        never retained
    <root>/v1/<site>/<kind>/<device_id>/cmd/<name>          never retained, has expires_at
    <root>/v1/<site>/<kind>/<device_id>/reply/<name>        never retained, answers a request

All messages use QoS 1 and carry an ``event_id`` so handlers can drop the
duplicates QoS 1 is allowed to deliver. Patron data never appears here beyond
opaque identifiers.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONTRACT_VERSION = "v1"
DEFAULT_ROOT = "openshelf"
_SEGMENT_FORBIDDEN = set("/+#\x00")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_event_id() -> str:
    # uuid4() makes a system call per id; a seeded PRNG is 5x cheaper on the gate's hot path,
    # and ids only need to be unique, not unpredictable.
    return uuid.UUID(int=random.getrandbits(128), version=4).hex


class Kind(str, enum.Enum):
    READER = "reader"
    GATE = "gate"
    CAMERA = "camera"
    BACKEND = "backend"
    KIOSK = "kiosk"
    SIM = "sim"


class Channel(str, enum.Enum):
    STATUS = "status"
    STATE = "state"
    EVENT = "event"
    CMD = "cmd"
    REPLY = "reply"


_NAMED_CHANNELS = {Channel.EVENT, Channel.CMD, Channel.REPLY}
WILDCARD = "+"


class TopicError(ValueError):
    """A topic segment is empty or contains a character MQTT reserves."""


def _check_segment(what: str, value: str, *, allow_wildcard: bool) -> str:
    if allow_wildcard and value == WILDCARD:
        return value
    if not value or _SEGMENT_FORBIDDEN & set(value):
        raise TopicError(f"{what} {value!r} must be non-empty and free of '/', '+', '#'")
    return value


def topic(
    site: str,
    kind: Kind | str,
    device_id: str,
    channel: Channel,
    name: str | None = None,
    *,
    root: str = DEFAULT_ROOT,
    wildcards: bool = False,
) -> str:
    """Build a topic (or, with ``wildcards=True``, a subscription filter using ``+``).

    This is the single function in OpenShelf that formats a topic string.
    """
    kind_value = kind.value if isinstance(kind, Kind) else kind
    if kind_value != WILDCARD:
        kind_value = Kind(kind_value).value
    elif not wildcards:
        raise TopicError("wildcards are only allowed in subscription filters")
    parts = [
        _check_segment("root", root, allow_wildcard=False),
        CONTRACT_VERSION,
        _check_segment("site", site, allow_wildcard=False),
        kind_value,
        _check_segment("device id", device_id, allow_wildcard=wildcards),
        channel.value,
    ]
    if channel in _NAMED_CHANNELS:
        if name is None:
            raise TopicError(f"channel {channel.value!r} needs a name")
        parts.append(_check_segment("name", name, allow_wildcard=wildcards))
    elif name is not None:
        raise TopicError(f"channel {channel.value!r} takes no name")
    return "/".join(parts)


@dataclass(frozen=True)
class TopicParts:
    root: str
    site: str
    kind: Kind
    device_id: str
    channel: Channel
    name: str | None


def parse_topic(value: str) -> TopicParts:
    """Split a concrete topic back into its parts; raises TopicError if it is not ours."""
    parts = value.split("/")
    if len(parts) not in (6, 7) or parts[1] != CONTRACT_VERSION:
        raise TopicError(f"not an OpenShelf {CONTRACT_VERSION} topic: {value!r}")
    try:
        kind = Kind(parts[3])
        channel = Channel(parts[5])
    except ValueError as exc:
        raise TopicError(f"unknown kind or channel in {value!r}") from exc
    name = parts[6] if len(parts) == 7 else None
    if (channel in _NAMED_CHANNELS) != (name is not None):
        raise TopicError(f"channel/name mismatch in {value!r}")
    return TopicParts(parts[0], parts[2], kind, parts[4], channel, name)


# --------------------------------------------------------------------------- payloads


class Message(BaseModel):
    """Base of every payload: versioned, strict, with an id for de-duplication."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    event_id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    sent_at: datetime = Field(default_factory=utcnow)

    @field_validator("sent_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a timezone")
        return value


class Command(Message):
    """A command: the receiver ignores it once ``expires_at`` has passed."""

    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


def expires_in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


class Request(Command):
    """A command that wants an answer on ``reply_to`` carrying ``correlation_id``.

    Works on MQTT 3.1.1 and 5 alike because both live in the payload.
    """

    reply_to: str
    correlation_id: str = Field(default_factory=new_event_id)


class Reply(Message):
    correlation_id: str


# ---- availability (status) and state -------------------------------------------------


class DeviceStatus(Message):
    """Retained on ``status``; the Last Will publishes ``online=False``."""

    online: bool
    software: str = "openshelf"


class GateLinkState(str, enum.Enum):
    UP = "up"
    DOWN = "down"


class GateState(Message):
    io_link: GateLinkState
    light: bool
    buzzer: bool
    alarm_active: bool
    alarms_sounded: int = 0
    entries: int = 0
    exits: int = 0


class ReaderLinkState(str, enum.Enum):
    UP = "up"
    DOWN = "down"


class ReaderState(Message):
    link: ReaderLinkState
    tags_in_field: int = 0
    polls: int = 0
    frame_errors: int = 0


class StreamState(str, enum.Enum):
    LIVE = "live"
    STALE = "stale"
    CONNECTING = "connecting"


class CameraState(Message):
    stream: StreamState
    fps: float = 0.0
    frames: int = 0
    reason: str | None = None


class BackendState(Message):
    gate_reads: int = 0
    alarms: int = 0
    malformed_messages: int = 0


# ---- reader events ---------------------------------------------------------------------


class TagDecodeStatus(str, enum.Enum):
    DECODED = "decoded"
    BLANK = "blank"
    UNKNOWN_MODEL = "unknown_model"
    CORRUPT = "corrupt"
    UNREAD = "unread"


UID_PATTERN = r"^[0-9A-F]{16}$"


class TagEvent(Message):
    """A tag arrived in or departed from a reader's field.

    ``uid`` is the tag's 64-bit UID as 16 upper-case hex digits, MSB first.
    ``item_id`` is the decoded primary item identifier when the tag could be read.
    """

    reader_id: str
    gate_id: str | None = None
    uid: str = Field(pattern=UID_PATTERN)
    item_id: str | None = Field(default=None, max_length=64)
    decode: TagDecodeStatus = TagDecodeStatus.DECODED
    problem: str | None = None
    part_number: int | None = Field(default=None, ge=1, le=255)
    parts_in_set: int | None = Field(default=None, ge=1, le=255)
    owner_isil: str | None = None
    afi: int | None = Field(default=None, ge=0, le=255)
    eas: bool | None = None
    read_at: datetime = Field(default_factory=utcnow)


class SetStatusEvent(Message):
    """Reader → kiosk/backend: which parts of a multi-part item are on the reader."""

    reader_id: str
    item_id: str
    parts_in_set: int = Field(ge=2, le=255)
    parts_present: list[int]
    complete: bool
    final: bool = Field(description="true once the set is complete or the wait is over")


class CardTechnology(str, enum.Enum):
    ISO14443A = "iso14443a"
    ISO14443B = "iso14443b"
    FELICA = "felica"
    ISO15693 = "iso15693"
    BARCODE = "barcode"


class CardPresented(Message):
    """A patron card was presented. ``card_id`` is opaque (a UID or barcode), never a name."""

    reader_id: str
    card_id: str = Field(min_length=1, max_length=64)
    technology: CardTechnology
    read_at: datetime = Field(default_factory=utcnow)


class SecureTagRequest(Request):
    """Kiosk/backend → reader: set one tag's security state, verified by reading it back.

    ``secure=True`` writes the 'on shelf' AFI (and sets EAS where configured);
    ``secure=False`` writes the 'on loan' AFI (and clears EAS).
    """

    uid: str = Field(pattern=UID_PATTERN)
    secure: bool


class TagWriteOutcome(str, enum.Enum):
    DONE = "done"
    TAG_GONE = "tag_gone"
    WRITE_ERROR = "write_error"
    AFI_LOCKED = "afi_locked"
    VERIFY_FAILED = "verify_failed"
    READER_UNREACHABLE = "reader_unreachable"


class SecureTagReply(Reply):
    """Reader → requester: the result of a SecureTagRequest. ``ok`` only after a verified read-back."""

    reader_id: str
    uid: str = Field(pattern=UID_PATTERN)
    ok: bool
    outcome: TagWriteOutcome
    attempts: int = Field(ge=0)
    afi: int | None = Field(default=None, ge=0, le=255)
    eas: bool | None = None
    detail: str | None = None


# ---- kiosk circulation (request/reply; opaque identifiers only) -------------------------


class CirculationOp(str, enum.Enum):
    IDENTIFY = "identify"
    CHECKOUT = "checkout"
    CHECKIN = "checkin"
    RENEW = "renew"
    RENEW_ALL = "renew_all"
    ACCOUNT = "account"
    END_SESSION = "end_session"


class CirculationRequest(Request):
    """Kiosk → backend. Carries opaque ids only: the card id, a session id, item ids.

    ``idempotency_key`` stays the same when a queued transaction is replayed, so the
    backend applies it once; ``occurred_at`` is when the patron did it, and
    ``no_block`` marks an offline transaction replayed after the fact.
    """

    kiosk_id: str
    op: CirculationOp
    idempotency_key: str = Field(min_length=8, max_length=64)
    session_id: str | None = None
    card_id: str | None = Field(default=None, max_length=64)
    pin: str | None = Field(default=None, max_length=16)
    item_id: str | None = Field(default=None, max_length=64)
    no_block: bool = False
    occurred_at: datetime = Field(default_factory=utcnow)


class LoanLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str
    due_at: datetime
    renewals: int = 0
    overdue: bool = False


class HoldLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str
    ready: bool
    pickup_by: datetime | None = None


class CirculationReply(Reply):
    """Backend → kiosk (on the request's reply_to). No names, no addresses: codes and ids."""

    ok: bool
    code: str
    message_vi: str = ""
    message_en: str = ""
    session_id: str | None = None
    item_id: str | None = None
    due_at: datetime | None = None
    desensitize: bool | None = Field(default=None, description="write the on-loan AFI after checkout")
    resensitize: bool | None = Field(default=None, description="write the on-shelf AFI after check-in")
    sort_hint: str | None = Field(default=None, description="e.g. 'hold_shelf', 'other_branch'")
    loans: list[LoanLine] = Field(default_factory=list)
    holds: list[HoldLine] = Field(default_factory=list)
    fines_due: str | None = Field(default=None, description="decimal amount in the library's currency")
    has_email: bool | None = None


class KioskMode(str, enum.Enum):
    IDLE = "idle"
    IN_SESSION = "in_session"
    OFFLINE = "offline"
    OUT_OF_PAPER = "out_of_paper"


class KioskState(Message):
    mode: KioskMode
    queued_transactions: int = 0
    language: str = "vi"


# ---- gate alarm path -------------------------------------------------------------------


class AlarmReason(str, enum.Enum):
    NOT_ON_LOAN = "not_on_loan"
    IN_LIBRARY_ONLY = "in_library_only"
    UNKNOWN_TAG = "unknown_tag"
    UNREADABLE_TAG = "unreadable_tag"
    SECURED_TAG = "secured_tag"
    EAS_ALARM = "eas_alarm"


class AlarmItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uid: str = Field(pattern=UID_PATTERN)
    item_id: str | None = None
    reason: AlarmReason


class AlarmCommand(Command):
    """Backend → gate: sound the alarm for ``alarm_id``.

    ``read_event_ids`` names the reader events this decision answers, so a gate that
    is waiting to decide locally knows the backend has decided.
    """

    alarm_id: str
    items: list[AlarmItem] = Field(min_length=1)
    duration_ms: int | None = Field(default=None, ge=100, le=60_000)
    read_event_ids: list[str] = Field(default_factory=list)


class PassNotice(Command):
    """Backend → gate: this read does not alarm (e.g. the item is on loan).

    The gate needs a positive answer for every read: silence is never "all clear".
    """

    read_event_id: str
    uid: str = Field(pattern=UID_PATTERN)
    reason: str


class SilenceCommand(Command):
    """Backend → gate: staff silenced the alarm from the dashboard."""

    alarm_id: str | None = None


class GateAlarmEvent(Message):
    """Gate → everyone: the gate actually started sounding (or tried to)."""

    gate_id: str
    alarm_id: str
    items: list[AlarmItem]
    decided_locally: bool = False
    outputs_ok: bool = True
    problem: str | None = None
    started_at: datetime = Field(default_factory=utcnow)


class PassageDirection(str, enum.Enum):
    IN = "in"
    OUT = "out"


class PassageEvent(Message):
    """Gate → backend: a person passed the beams (direction from the beam order)."""

    gate_id: str
    lane: str = "1"
    direction: PassageDirection
    at: datetime


class BeamFaultEvent(Message):
    """Gate → backend: a beam has been broken too long (blocked or faulty) or recovered."""

    gate_id: str
    lane: str = "1"
    beam: Literal["beam_a", "beam_b"]
    stuck: bool
    since: datetime


# ---- simulator control -----------------------------------------------------------------


class SimTag(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uid: str = Field(pattern=UID_PATTERN)
    memory_hex: str = Field(pattern=r"^([0-9A-Fa-f]{2})*$", max_length=4096)
    dsfid: int = Field(default=0, ge=0, le=255)
    afi: int = Field(default=0x07, ge=0, le=255)


class SimPlaceTags(Command):
    """Place tags in a simulated reader's field (the scripted ``walk``)."""

    tags: list[SimTag] = Field(min_length=1)


class SimRemoveTags(Command):
    uids: list[str] = Field(min_length=1)


class SimReaderFault(Command):
    """Script a simulated reader's next faults: failing writes (AFI, EAS, blocks) or lost answers.

    ``lift``: the tag leaves the field mid-write; ``error``: the tag reports a program error.
    """

    write_failures: int = Field(default=0, ge=0, le=100)
    write_failure_kind: Literal["lift", "error"] = "error"
    dropped_answers: int = Field(default=0, ge=0, le=100)


class SimBeamStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    beam: Literal["beam_a", "beam_b"]
    broken: bool
    after_ms: int = Field(default=0, ge=0, le=60_000)


class SimBeams(Command):
    """Drive a simulated gate I/O module's beams through a sequence (a patron walking)."""

    steps: list[SimBeamStep] = Field(min_length=1, max_length=1000)


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class TopicSpec:
    kind: Kind
    channel: Channel
    name: str | None
    model: type[Message]
    retained: bool
    publisher: str
    subscribers: str
    purpose: str


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(Kind.READER, Channel.STATUS, None, DeviceStatus, True, "reader service", "backend, dashboard",
              "online/offline; offline is the Last Will"),
    TopicSpec(Kind.READER, Channel.STATE, None, ReaderState, True, "reader service", "backend",
              "serial link health and poll counters"),
    TopicSpec(Kind.READER, Channel.EVENT, "tag_arrived", TagEvent, False, "reader service",
              "backend, gate controller", "a tag entered the reader's field (debounced)"),
    TopicSpec(Kind.READER, Channel.EVENT, "tag_departed", TagEvent, False, "reader service", "backend",
              "a tag left the reader's field"),
    TopicSpec(Kind.READER, Channel.EVENT, "set_status", SetStatusEvent, False, "reader service",
              "kiosk", "parts of a multi-part item present on the reader, and whether the set is complete"),
    TopicSpec(Kind.READER, Channel.EVENT, "card_presented", CardPresented, False, "reader service (NFC/HF)",
              "kiosk", "a patron card was presented (opaque card id)"),
    TopicSpec(Kind.READER, Channel.CMD, "secure_tag", SecureTagRequest, False, "kiosk, backend",
              "reader service", "secure or unsecure one tag; answered on reply_to"),
    TopicSpec(Kind.READER, Channel.REPLY, "secure_tag", SecureTagReply, False, "reader service",
              "the requester", "verified result of a secure_tag request (published to the request's reply_to)"),
    TopicSpec(Kind.GATE, Channel.STATUS, None, DeviceStatus, True, "gate controller", "backend, dashboard",
              "online/offline; offline is the Last Will"),
    TopicSpec(Kind.GATE, Channel.STATE, None, GateState, True, "gate controller", "backend",
              "I/O module link and relay state"),
    TopicSpec(Kind.GATE, Channel.CMD, "alarm", AlarmCommand, False, "backend", "gate controller",
              "sound the alarm (light + buzzer) for one alarm"),
    TopicSpec(Kind.GATE, Channel.CMD, "silence", SilenceCommand, False, "backend", "gate controller",
              "staff silenced the alarm"),
    TopicSpec(Kind.GATE, Channel.CMD, "pass", PassNotice, False, "backend", "gate controller",
              "the backend's answer for a read that does not alarm"),
    TopicSpec(Kind.GATE, Channel.EVENT, "alarm", GateAlarmEvent, False, "gate controller",
              "backend, camera service", "the gate started sounding; cameras take evidence"),
    TopicSpec(Kind.GATE, Channel.EVENT, "passage", PassageEvent, False, "gate controller", "backend",
              "a person passed through the gate, in or out"),
    TopicSpec(Kind.GATE, Channel.EVENT, "beam_fault", BeamFaultEvent, False, "gate controller", "backend",
              "a beam is blocked or faulty, or recovered"),
    TopicSpec(Kind.CAMERA, Channel.STATUS, None, DeviceStatus, True, "camera service", "backend, dashboard",
              "online/offline; offline is the Last Will"),
    TopicSpec(Kind.CAMERA, Channel.STATE, None, CameraState, True, "camera service", "backend",
              "stream live / stale / connecting"),
    TopicSpec(Kind.KIOSK, Channel.STATUS, None, DeviceStatus, True, "kiosk", "backend, dashboard",
              "online/offline; offline is the Last Will"),
    TopicSpec(Kind.KIOSK, Channel.STATE, None, KioskState, True, "kiosk", "backend, dashboard",
              "idle / in session / offline / out of paper, queued transactions"),
    TopicSpec(Kind.BACKEND, Channel.CMD, "circulation", CirculationRequest, False, "kiosk", "backend",
              "identify a patron, check out / in, renew, account; answered on reply_to"),
    TopicSpec(Kind.KIOSK, Channel.REPLY, "circulation", CirculationReply, False, "backend", "kiosk",
              "the answer to a circulation request (same correlation_id)"),
    TopicSpec(Kind.BACKEND, Channel.STATUS, None, DeviceStatus, True, "backend", "every device",
              "online/offline; offline is the Last Will"),
    TopicSpec(Kind.BACKEND, Channel.STATE, None, BackendState, True, "backend", "monitoring",
              "decision counters"),
    TopicSpec(Kind.SIM, Channel.CMD, "place_tags", SimPlaceTags, False, "openshelf sim walk",
              "reader simulator", "put tags into a simulated reader's field"),
    TopicSpec(Kind.SIM, Channel.CMD, "remove_tags", SimRemoveTags, False, "openshelf sim walk",
              "reader simulator", "take tags out of a simulated reader's field"),
    TopicSpec(Kind.SIM, Channel.CMD, "reader_fault", SimReaderFault, False, "tests, staff training",
              "reader simulator", "make a simulated reader's next writes fail or its answers get lost"),
    TopicSpec(Kind.SIM, Channel.CMD, "beams", SimBeams, False, "openshelf sim walk",
              "gate I/O simulator", "break and clear a simulated gate's beams"),
)


def spec_for(kind: Kind, channel: Channel, name: str | None = None) -> TopicSpec:
    for spec in CATALOGUE:
        if (spec.kind, spec.channel, spec.name) == (kind, channel, name):
            return spec
    raise KeyError(f"no topic {kind.value}/{channel.value}/{name} in the contract")
