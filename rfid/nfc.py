"""Patron cards on an NFC reader (ISO 14443 A/B, FeliCa) through nfcpy, published as ``card_presented``.

nfcpy cannot read ISO 15693 (NFC Type 5): ISO 15693 patron cards are read by the
HF reader service (ISO 28560 usage type "patron card") instead.

Only the card's anticollision identifier is used (NFCID1 / PUPI / IDm): the card
is never activated or read, so no patron data leaves the card reader beyond an
opaque id. A card held on the pad is one event; it must be missing from two
polls in a row and for ``removed_after_s`` before presenting it again counts again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from openshelf.contract import CardPresented, CardTechnology, Channel, Kind, topic
from openshelf.mqtt import MqttLink

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("106A", "106B", "212F")
REOPEN_DELAY_S = 2.0
MISSES_BEFORE_REMOVED = 2  # one lost frame while the card lies on the pad is not a removal


class CardReaderError(Exception):
    """The NFC reader cannot be opened or stopped answering (unplugged, no libusb, bad path)."""


@dataclass(frozen=True)
class CardRead:
    card_id: str  # upper-case hex of the card's anticollision id
    technology: CardTechnology


class CardReader(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def poll(self) -> CardRead | None:
        """The card on the reader now, or None."""
        ...


# --------------------------------------------------------------------------- nfcpy


def card_from_target(target: Any) -> CardRead | None:
    """An nfcpy RemoteTarget (as ``sense`` returns it) to the card's id and technology."""
    brty = str(getattr(target, "brty", ""))
    if brty.endswith("A"):
        uid = target.sdd_res or (target.rid_res[2:6] if target.rid_res else None)  # Type 1 tags: UID in RID_RES
        return CardRead(bytes(uid).hex().upper(), CardTechnology.ISO14443A) if uid else None
    if brty.endswith("B") and target.sensb_res and len(target.sensb_res) >= 5:
        return CardRead(bytes(target.sensb_res[1:5]).hex().upper(), CardTechnology.ISO14443B)  # PUPI
    if brty.endswith("F") and target.sensf_res and len(target.sensf_res) >= 9:
        return CardRead(bytes(target.sensf_res[1:9]).hex().upper(), CardTechnology.FELICA)  # IDm
    return None


class NfcpyCardReader:
    """A reader nfcpy supports: ``usb:VID:PID`` / ``usb:BUS:DEV``, ``tty:USB0:pn532``, or ``udp:HOST:PORT``.

    ``usb:`` needs libusb-1.0 on the host (Debian: ``libusb-1.0-0``); without it
    ``open`` raises :class:`CardReaderError` naming the cause.
    """

    def __init__(self, path: str, targets: Sequence[str] = DEFAULT_TARGETS) -> None:
        self._path = path
        self._target_types = tuple(targets)
        self._clf: Any = None

    def open(self) -> None:
        if self._clf is not None:
            return
        try:
            import nfc
        except ImportError as exc:
            raise CardReaderError(f"nfcpy is not installed: {exc}") from exc
        try:
            self._clf = nfc.ContactlessFrontend(self._path)
        except OSError as exc:
            raise CardReaderError(f"cannot open NFC reader {self._path!r}: {exc}") from exc
        log.info("NFC reader open: %s", self._clf)

    def close(self) -> None:
        clf, self._clf = self._clf, None
        if clf is not None:
            try:
                clf.close()
            except OSError as exc:
                log.debug("closing NFC reader %s: %s", self._path, exc)

    def poll(self) -> CardRead | None:
        self.open()
        import nfc.clf

        targets = [nfc.clf.RemoteTarget(brty) for brty in self._target_types]
        try:
            found = self._clf.sense(*targets, iterations=1)
        except nfc.clf.UnsupportedTargetError as exc:
            raise CardReaderError(f"NFC reader {self._path!r} cannot sense {self._target_types}: {exc}") from exc
        except (OSError, nfc.clf.Error) as exc:
            self.close()  # the next poll reopens it
            raise CardReaderError(f"NFC reader {self._path!r} failed: {exc}") from exc
        return card_from_target(found) if found is not None else None


# --------------------------------------------------------------------------- test seam


class SimulatedCardReader:
    """A card reader whose pad is scripted: ``present`` a card, ``take_away`` it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._card: CardRead | None = None
        self._failures = 0
        self.polls = 0
        self.opened = False

    def present(self, card_id: str, technology: CardTechnology = CardTechnology.ISO14443A) -> None:
        with self._lock:
            self._card = CardRead(card_id.upper(), technology)

    def take_away(self) -> None:
        with self._lock:
            self._card = None

    def fail_next_polls(self, n: int) -> None:
        with self._lock:
            self._failures += n

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def poll(self) -> CardRead | None:
        with self._lock:
            self.polls += 1
            if self._failures:
                self._failures -= 1
                raise CardReaderError("simulated reader failure")
            return self._card


# --------------------------------------------------------------------------- service


class CardService:
    """Polls a CardReader and publishes ``card_presented`` once per presentation."""

    def __init__(
        self,
        *,
        reader: CardReader,
        link: MqttLink,
        reader_id: str,
        site: str,
        root: str,
        poll_interval_s: float = 0.1,
        removed_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._link = link
        self._reader_id = reader_id
        self._topic = topic(site, Kind.READER, reader_id, Channel.EVENT, "card_presented", root=root)
        self._poll_interval_s = poll_interval_s
        self._removed_after_s = removed_after_s
        self._clock = clock
        self._current: CardRead | None = None
        self._last_seen = 0.0
        self._misses = 0
        self._failing = False
        self.polls = 0
        self.presentations = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = self._clock()
            ok = self.poll_once()
            pause = self._poll_interval_s if ok else REOPEN_DELAY_S
            stop.wait(max(0.0, pause - (self._clock() - started)))

    def poll_once(self) -> bool:
        """One poll; False if the reader failed (the caller waits longer before the next)."""
        self.polls += 1
        try:
            card = self._reader.poll()
        except CardReaderError as exc:
            if not self._failing:
                log.warning("NFC reader %s failed: %s; retrying", self._reader_id, exc)
                self._failing = True
            return False
        if self._failing:
            log.info("NFC reader %s works again", self._reader_id)
            self._failing = False
        self._see(card, self._clock())
        return True

    def _see(self, card: CardRead | None, now: float) -> None:
        if card is None:
            self._misses += 1
            gone_long_enough = now - self._last_seen >= self._removed_after_s
            if self._misses >= MISSES_BEFORE_REMOVED and gone_long_enough:
                self._current = None
            return
        if card != self._current:  # a new card, or the same one presented again after it was taken away
            self._publish(card)
        self._current = card
        self._last_seen = now
        self._misses = 0

    def _publish(self, card: CardRead) -> None:
        self.presentations += 1
        log.info("card presented on %s (%s)", self._reader_id, card.technology.value)
        self._link.publish(self._topic, CardPresented(reader_id=self._reader_id, card_id=card.card_id,
                                                      technology=card.technology))
