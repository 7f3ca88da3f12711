"""What the backend and its gate process say to each other over their socket pair, and how it is framed.

Frames are a 4-byte big-endian length and a pickle. Pickle, because both ends
are the same program started by the backend itself over a private socket pair
(nothing else can write to it), and the messages are the backend's own
dataclasses: no schema to keep twice.

Backend → gate process: :class:`GateProcessSetup` first, then
:class:`Replicated` gate view changes (backend.gate_view).
Gate process → backend: :class:`ChildStatus`, :class:`ViewAck`,
:class:`ItemLookedUp`, and what must be stored: ``AlarmRecord``,
:class:`DeviceSightings` (backend.gate_records).
"""

from __future__ import annotations

import logging
import pickle
import socket
import struct
from dataclasses import dataclass, field

from backend.gate_decision import GatePolicy
from backend.gate_records import DeviceSighting
from backend.gate_view import ViewChange
from openshelf.site import BrokerSettings

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 512 * 2**20  # a whole gate view of a large library fits many times over


class GateWireError(Exception):
    """A frame that cannot be what the other end sent: the channel is no longer trustworthy."""


# ------------------------------------------------------------------ backend → gate process


@dataclass(frozen=True)
class GateProcessSetup:
    """Everything the gate process needs; it connects to the broker as the backend device."""

    broker: BrokerSettings
    client_id: str
    username: str | None
    password: str | None
    site_id: str
    root: str
    backend_id: str
    policy: GatePolicy
    alarm_durations_ms: dict[str, int | None] = field(default_factory=dict)
    state_interval_s: float = 5.0
    sightings_every_s: float = 1.0
    log_level: int = logging.INFO

    def __repr__(self) -> str:  # never print the password
        return f"GateProcessSetup(site_id={self.site_id!r}, client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class Replicated:
    """The ``seq``-th change of the backend's gate view (acknowledged with :class:`ViewAck`)."""

    seq: int
    change: ViewChange


# ------------------------------------------------------------------ gate process → backend


@dataclass(frozen=True, slots=True)
class ViewAck:
    """Every change up to ``seq`` is in the gate process's view."""

    seq: int


@dataclass(frozen=True, slots=True)
class ItemLookedUp:
    """A gate read looked this item up (sent only while the backend wants lookups; at most every few seconds)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ChildStatus:
    connected: bool
    gate_reads: int
    alarms: int
    suppressed: int
    malformed_messages: int


@dataclass(frozen=True, slots=True)
class DeviceSightings:
    """The latest sighting of each device since the last batch (coalesced in the gate process)."""

    sightings: tuple[DeviceSighting, ...]


# ------------------------------------------------------------------ framing


def encode(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > MAX_FRAME_BYTES:
        raise GateWireError(f"{type(message).__name__} is {len(payload)} bytes, more than a frame may hold")
    return _HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Bytes in, whole messages out (frames may arrive split or several at once)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buffer += data
        messages: list[object] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, offset)
            if size > MAX_FRAME_BYTES:
                raise GateWireError(f"frame of {size} bytes announced; the channel is out of step")
            end = offset + _HEADER.size + size
            if len(buffer) < end:
                break
            messages.append(_load(bytes(buffer[offset + _HEADER.size:end])))
            offset = end
        del buffer[:offset]
        return messages

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _load(payload: bytes) -> object:
    try:
        return pickle.loads(payload)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same: a broken channel
        raise GateWireError(f"undecodable frame ({exc.__class__.__name__}: {exc})") from exc


def receive(sock: socket.socket, decoder: FrameDecoder, chunk: int = 1 << 16) -> list[object] | None:
    """Block for the next message(s) on ``sock``; None once the other end closed it."""
    while True:
        try:
            data = sock.recv(chunk)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            if decoder.pending:
                log.warning("gate process channel closed in the middle of a frame (%d bytes)", decoder.pending)
            return None
        messages = decoder.feed(data)
        if messages:
            return messages
