"""A FEIG ISO Host HF reader in software: request frames in, answer bytes out.

``SimulatedReader`` is transport-free and thread-safe: transports feed it bytes
from a background thread while a test scripts the field and the faults from
another. Wire faults (noise, dropped or corrupted answers) are part of the answer
bytes, so every transport shows them identically.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from rfid.feig.answers import encode_answer
from rfid.feig.errors import FeigCodecError
from rfid.feig.frames import BROADCAST_ADDRESS, Frame, decode_frame
from rfid.feig.stream import FrameReader
from rfid.readersim.field import TagField
from rfid.readersim.handlers import CommandHandler
from rfid.readersim.tags import VirtualTag

WriteFailureKind = Literal["lift", "error"]
STANDARD_FRAME_TAG_CAPACITY = 24  # (255 - 8) // 10 inventory records fit one standard answer

UidLike = bytes | str


@dataclass
class SimulatorStats:
    requests: int = 0
    answers: int = 0
    ignored_requests: int = 0  # addressed to another COM-ADR
    dropped_answers: int = 0
    corrupted_answers: int = 0
    noise_bytes: int = 0


class SimulatedReader:
    def __init__(
        self,
        tags: Iterable[VirtualTag] = (),
        *,
        com_adr: int = 0x00,
        only_new_tags: bool = True,
        max_tags_per_answer: int = STANDARD_FRAME_TAG_CAPACITY,
        reverse_block_bytes: bool = False,
    ) -> None:
        """``only_new_tags`` mimics CFG5 ONT=1 (MR101 default): inventoried tags stay quiet
        until Reset to Ready. ``reverse_block_bytes`` sends each block byte-reversed."""
        self._lock = threading.RLock()
        self._com_adr = com_adr
        self._field = TagField()
        self._write_failures: deque[WriteFailureKind] = deque()
        self._noise = bytearray()
        self._drop = 0
        self._corrupt = 0
        self._handler = CommandHandler(
            self._field,
            self._take_write_failure,
            only_new_tags=only_new_tags,
            max_tags_per_answer=max_tags_per_answer,
            reverse_block_bytes=reverse_block_bytes,
        )
        self.stats = SimulatorStats()
        self.set_tags(tags)

    # ---- the field -------------------------------------------------------------------------

    def place_tag(self, tag: VirtualTag) -> None:
        """Put a tag (new, or one taken away earlier) into the field; it starts in the ready state."""
        with self._lock:
            self._field.place(tag)

    def remove_tag(self, uid: UidLike) -> VirtualTag:
        """Take a tag out of the field; it keeps its state and can be placed again."""
        with self._lock:
            return self._field.remove(_uid(uid))

    def set_tags(self, tags: Iterable[VirtualTag]) -> None:
        """Replace the whole field."""
        with self._lock:
            for uid in list(self._field.present):
                self._field.remove(uid)
            for tag in tags:
                self._field.place(tag)

    def field_uids(self) -> list[bytes]:
        with self._lock:
            return list(self._field.present)

    def tag(self, uid: UidLike) -> VirtualTag:
        """A copy of a tag's current state (in the field or taken away)."""
        with self._lock:
            return self._field.find(_uid(uid)).copy()

    def afi_of(self, uid: UidLike) -> int:
        return self.tag(uid).afi

    def eas_of(self, uid: UidLike) -> bool:
        return self.tag(uid).eas

    def memory_of(self, uid: UidLike) -> bytes:
        return bytes(self.tag(uid).memory)

    # ---- scripted faults ---------------------------------------------------------------------

    def fail_next_writes(self, n: int = 1, kind: WriteFailureKind = "lift") -> None:
        """The next ``n`` writes fail: "lift" = tag leaves the field mid-write (STATUS 0x03, tag
        removed); "error" = tag reports an ISO 15693 program error (STATUS 0x95, nothing written)."""
        if kind not in ("lift", "error"):
            raise ValueError(f"unknown write failure kind {kind!r}")
        with self._lock:
            self._write_failures.extend([kind] * n)

    def inject_noise(self, data: bytes) -> None:
        """Send ``data`` on the line just before the next answer."""
        with self._lock:
            self._noise += data

    def drop_next_answers(self, n: int = 1) -> None:
        """Execute the next ``n`` requests but stay silent (the host times out)."""
        with self._lock:
            self._drop += n

    def corrupt_next_answers(self, n: int = 1) -> None:
        """Flip the CRC of the next ``n`` answers (the host sees a CRC error)."""
        with self._lock:
            self._corrupt += n

    def stats_dict(self) -> dict[str, int]:
        with self._lock:
            return asdict(self.stats)

    # ---- the wire ------------------------------------------------------------------------------

    def respond(self, request: bytes) -> bytes:
        """Answer bytes for one complete request frame (b"" for a corrupt frame: the reader stays silent)."""
        try:
            frame = decode_frame(request)
        except FeigCodecError:
            return b""
        return self.handle_frame(frame)

    def handle_frame(self, frame: Frame) -> bytes:
        with self._lock:
            if frame.com_adr not in (BROADCAST_ADDRESS, self._com_adr):
                self.stats.ignored_requests += 1
                return b""
            self.stats.requests += 1
            status, data = self._handler.handle(frame.control, frame.payload)
            answer = encode_answer(self._com_adr, frame.control, status, data, advanced=frame.advanced)
            return self._apply_wire_faults(answer)

    def session(self) -> ReaderSession:
        """A byte-stream endpoint for one connection (its own frame parser)."""
        return ReaderSession(self)

    def _apply_wire_faults(self, answer: bytes) -> bytes:
        if self._drop:
            self._drop -= 1
            self.stats.dropped_answers += 1
            return b""
        if self._corrupt:
            self._corrupt -= 1
            self.stats.corrupted_answers += 1
            answer = answer[:-1] + bytes((answer[-1] ^ 0xFF,))
        noise, self._noise = bytes(self._noise), bytearray()
        self.stats.noise_bytes += len(noise)
        self.stats.answers += 1
        return noise + answer

    def _take_write_failure(self) -> WriteFailureKind | None:
        return self._write_failures.popleft() if self._write_failures else None


class ReaderSession:
    """Feeds a byte stream (split or noisy) to a SimulatedReader and returns what it sends back."""

    def __init__(self, reader: SimulatedReader) -> None:
        self._reader = reader
        self._frames = FrameReader()

    @property
    def frame_stats(self) -> dict[str, int]:
        return self._frames.stats.as_dict()

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._reader.handle_frame(frame) for frame in self._frames.feed(data))


def _uid(uid: UidLike) -> bytes:
    return bytes.fromhex(uid) if isinstance(uid, str) else bytes(uid)
