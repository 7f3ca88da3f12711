"""The reader service: poll one HF reader, publish what enters and leaves its field, secure tags.

* A tag seen twenty times a second is one arrival; it departs when it has not
  been seen for ``departed_after_ms``. A tag whose memory cannot be decoded is
  still published (with the reason), because a gate must be able to alarm on it.
* Parts of multi-part items are reported as set status (see ``rfid.sets``).
* ISO 15693 patron cards (ISO 28560 usage type "patron card") are published as
  ``card_presented`` on readers that publish patron cards, never as items.
* ``secure_tag`` commands are carried out by the poll thread between two polls:
  the thread owns the driver, so commands and polls never interleave on the wire.
* A gate reader whose backend is offline inventories only secured tags (the AFI
  filter), so the gate controller's local decision still sees what matters.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from openshelf.contract import (
    CardPresented,
    CardTechnology,
    Channel,
    DeviceStatus,
    Kind,
    ReaderLinkState,
    ReaderState,
    SecureTagReply,
    SecureTagRequest,
    TagEvent,
    TopicError,
    TopicParts,
    new_event_id,
    parse_topic,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import ReaderSettings

from rfid.drivers.base import InventoryTag, ReaderDriver, ReaderError, ReaderLinkDown, ReaderTimeout, TagNotFound
from rfid.identify import TagReading, read_tag, unreadable
from rfid.secure import RetryPolicy, SecureTagWriter
from rfid.sets import SetTracker
from rfid.tagdata import AfiPolicy

log = logging.getLogger(__name__)

READ_ATTEMPTS_BEFORE_UNREADABLE = 3  # polls in a row a present tag may fail to read before it is published as such
COMMAND_WAIT_SLICE_S = 0.1  # how often an idle loop looks at the stop flag


@dataclass
class _Present:
    reading: TagReading
    last_seen: float
    silent: bool  # arrived without a tag event (a patron card): departs without one too


def afi_policy_of(settings: ReaderSettings) -> AfiPolicy:
    return AfiPolicy(secured_afi=settings.secured_afi, unsecured_afi=settings.unsecured_afi, use_eas=settings.set_eas)


class ReaderService:
    def __init__(
        self,
        *,
        driver: ReaderDriver,
        link: MqttLink,
        settings: ReaderSettings,
        site: str,
        root: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = driver
        self._link = link
        self._settings = settings
        self._site = site
        self._root = root
        self._clock = clock
        self._policy = afi_policy_of(settings)
        self._stop = threading.Event()
        self._writer = SecureTagWriter(
            driver, self._policy,
            RetryPolicy(retries=settings.write_retries, backoff_s=settings.write_backoff_ms / 1000),
            wait=lambda seconds: self._stop.wait(seconds),
        )
        self._commands: queue.Queue[SecureTagRequest] = queue.Queue()
        self._sets = SetTracker(settings.id, settings.set_wait_ms / 1000)
        self._present: dict[str, _Present] = {}
        self._read_failures: dict[str, int] = {}
        self._backends_online: dict[str, bool] = {}  # written by the MQTT thread, read by the poll thread
        self._backends_lock = threading.Lock()
        self._filtering = False
        self._link_state: ReaderLinkState | None = None
        self._polls = 0
        self._published_state: tuple[ReaderLinkState | None, int] | None = None

    def _topic(self, channel: Channel, name: str | None = None) -> str:
        return topic(self._site, Kind.READER, self._settings.id, channel, name, root=self._root)

    # ------------------------------------------------------------------ wiring

    def subscribe(self) -> None:
        """Subscribe to commands (and, on a gate reader, the backend's availability)."""
        self._link.subscribe(self._topic(Channel.CMD, "secure_tag"), SecureTagRequest, self._on_secure_request)
        if self._settings.role == "gate":
            backend_status = topic(self._site, Kind.BACKEND, "+", Channel.STATUS, root=self._root, wildcards=True)
            self._link.subscribe(backend_status, DeviceStatus, self._on_backend_status)

    def _on_secure_request(self, parts: TopicParts, request: SecureTagRequest) -> None:
        try:
            reply_to = parse_topic(request.reply_to)
        except TopicError as exc:
            log.warning("dropped secure_tag request %s for %s: bad reply_to: %s", request.correlation_id,
                        request.uid, exc)
            return
        if reply_to.channel is not Channel.REPLY:
            log.warning("dropped secure_tag request %s: reply_to %r is not a reply topic", request.correlation_id,
                        request.reply_to)
            return
        self._commands.put(request)

    def _on_backend_status(self, parts: TopicParts, status: DeviceStatus) -> None:
        with self._backends_lock:
            self._backends_online[parts.device_id] = status.online

    @property
    def afi_filtered(self) -> bool:
        """True while only secured tags are inventoried (gate reader, backend offline)."""
        return self._filtering

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; queued commands run between polls."""
        self._stop = stop  # a retry backoff waits on it, so stopping cuts the backoff short
        interval = self._settings.poll_interval_ms / 1000
        next_poll = self._clock()
        while not stop.is_set():
            self.poll_once()
            next_poll = max(next_poll + interval, self._clock())
            self._serve_commands_until(next_poll, stop)

    def _serve_commands_until(self, deadline: float, stop: threading.Event) -> None:
        while not stop.is_set():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            try:
                request = self._commands.get(timeout=min(remaining, COMMAND_WAIT_SLICE_S))
            except queue.Empty:
                continue
            self.execute(request)

    def run_pending_commands(self) -> int:
        """Carry out every queued command now (tests and tools drive the service without ``run``)."""
        done = 0
        while True:
            try:
                request = self._commands.get_nowait()
            except queue.Empty:
                return done
            self.execute(request)
            done += 1

    # ------------------------------------------------------------------ polling

    def poll_once(self) -> None:
        afi = self._inventory_afi()
        try:
            seen = self._driver.inventory(afi)
        except ReaderError as exc:
            self._set_link(ReaderLinkState.DOWN, str(exc))
            return
        self._set_link(ReaderLinkState.UP, None)
        self._polls += 1
        now = self._clock()
        for tag in seen:
            present = self._present.get(tag.uid_hex)
            if present is not None:
                present.last_seen = now
            else:
                self._identify(tag, now)
        seen_uids = {tag.uid_hex for tag in seen}
        for uid in [uid for uid in self._read_failures if uid not in seen_uids]:
            del self._read_failures[uid]
        self._depart_missing(now)
        for status in self._sets.waits_over(now):
            self._link.publish(self._topic(Channel.EVENT, "set_status"), status)
        self._publish_state()

    def _inventory_afi(self) -> int | None:
        with self._backends_lock:
            heard = list(self._backends_online.values())
        offline = bool(heard) and not any(heard)
        filtering = self._settings.role == "gate" and self._settings.offline_afi_filter and offline
        if filtering != self._filtering:
            self._filtering = filtering
            if filtering:
                log.warning("backend offline: reader %s now inventories only secured tags (AFI 0x%02X)",
                            self._settings.id, self._policy.secured_afi)
            else:
                log.info("backend online again: reader %s inventories every tag", self._settings.id)
        return self._policy.secured_afi if filtering else None

    def _identify(self, tag: InventoryTag, now: float) -> None:
        try:
            reading = read_tag(self._driver, self._settings, tag)
        except (ReaderTimeout, ReaderLinkDown) as exc:
            log.debug("reading tag %s interrupted by the serial link: %s", tag.uid_hex, exc)
            return  # a link problem, not the tag's: the next poll tries again without counting it
        except ReaderError as exc:
            failures = self._read_failures.get(tag.uid_hex, 0) + 1
            self._read_failures[tag.uid_hex] = failures
            if isinstance(exc, TagNotFound) and failures == 1:
                log.debug("tag %s left the field while being read", tag.uid_hex)
            if failures < READ_ATTEMPTS_BEFORE_UNREADABLE:
                return  # the next poll tries again
            log.warning("tag %s on %s answers inventories but cannot be read: %s", tag.uid_hex,
                        self._settings.id, exc)
            reading = unreadable(self._settings, tag, f"tag memory could not be read: {exc}")
        except ValueError as exc:  # content the contract cannot carry: report it, never stop polling
            log.exception("tag %s on %s: cannot publish what it holds", tag.uid_hex, self._settings.id)
            reading = unreadable(self._settings, tag, f"tag content cannot be published: {exc}"[:500])
        self._read_failures.pop(tag.uid_hex, None)
        self._arrive(reading, now)

    def _arrive(self, reading: TagReading, now: float) -> None:
        uid = reading.event.uid
        if reading.is_patron_card:
            self._present[uid] = _Present(reading, now, silent=True)
            self._present_card(reading)
            return
        self._present[uid] = _Present(reading, now, silent=False)
        self._link.publish(self._topic(Channel.EVENT, "tag_arrived"), reading.event)
        part = reading.set_part
        if part is not None:
            status = self._sets.part_arrived(uid, *part, now=now)
            self._link.publish(self._topic(Channel.EVENT, "set_status"), status)

    def _present_card(self, reading: TagReading) -> None:
        if not self._settings.publishes_patron_cards:
            log.debug("patron card %s ignored on %s (patron_cards off)", reading.event.uid, self._settings.id)
            return
        card_id = reading.event.item_id or reading.event.uid  # no card number written: the UID identifies it
        card = CardPresented(reader_id=self._settings.id, card_id=card_id, technology=CardTechnology.ISO15693)
        self._link.publish(self._topic(Channel.EVENT, "card_presented"), card)

    def _depart_missing(self, now: float) -> None:
        limit = self._settings.departed_after_ms / 1000
        for uid, present in list(self._present.items()):
            if now - present.last_seen < limit:
                continue
            del self._present[uid]
            if present.silent:
                continue
            departed = present.reading.event.model_copy(update={"event_id": new_event_id(), "sent_at": utcnow()})
            self._link.publish(self._topic(Channel.EVENT, "tag_departed"), departed)
            status = self._sets.part_departed(uid, now)
            if status is not None:
                self._link.publish(self._topic(Channel.EVENT, "set_status"), status)

    # ------------------------------------------------------------------ secure / unsecure

    def execute(self, request: SecureTagRequest) -> SecureTagReply | None:
        """Carry out one secure_tag request and publish the reply to its ``reply_to``."""
        if request.expired():
            log.info("secure_tag request %s for %s expired while queued; not written", request.correlation_id,
                     request.uid)
            return None
        result = self._writer.execute(request)
        reply = SecureTagReply(
            correlation_id=request.correlation_id, reader_id=self._settings.id, uid=request.uid, ok=result.ok,
            outcome=result.outcome, attempts=result.attempts, afi=result.afi, eas=result.eas, detail=result.detail,
        )
        if result.afi is not None:
            self._remember_security(request.uid, result.afi, result.eas)
        self._link.publish(request.reply_to, reply)
        return reply

    def _remember_security(self, uid: str, afi: int, eas: bool | None) -> None:
        # A later departure event then carries the tag's security state as it is now.
        present = self._present.get(uid)
        if present is None:
            return
        update: dict[str, object] = {"afi": afi} if eas is None else {"afi": afi, "eas": eas}
        event = present.reading.event.model_copy(update=update)
        present.reading = TagReading(event, present.reading.data)

    # ------------------------------------------------------------------ state

    def _set_link(self, state: ReaderLinkState, reason: str | None) -> None:
        if state is self._link_state:
            return
        if state is ReaderLinkState.DOWN:
            log.warning("reader %s unreachable: %s", self._settings.id, reason)
        elif self._link_state is ReaderLinkState.DOWN:
            log.info("reader %s reachable again", self._settings.id)
        self._link_state = state
        self._publish_state()

    def _publish_state(self) -> None:
        key = (self._link_state, len(self._present))
        if key == self._published_state:
            return
        self._published_state = key
        self._link.publish(
            self._topic(Channel.STATE),
            ReaderState(link=self._link_state or ReaderLinkState.DOWN, tags_in_field=len(self._present),
                        polls=self._polls),
            retain=True,
        )
