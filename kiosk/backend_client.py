"""The kiosk's seam to circulation: CirculationRequest out, CirculationReply back, with a deadline.

The backend answers on the kiosk's own reply topic with the request's
correlation id. A request that is not answered within the deadline raises
:class:`BackendUnavailable` and marks the backend offline; the backend's
retained status topic (its Last Will says ``offline``) and the kiosk's own
broker connection are watched too, so the kiosk knows it is offline before a
patron has to wait for a deadline.

Requests expire at their deadline (``expires_at``): a request stuck in a
reconnecting client must not reach the backend long after the kiosk gave up on
it. It would do no harm (the queued copy carries the same idempotency key) but
the patron's screen would no longer match what happened.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

from openshelf.contract import (
    Channel,
    CirculationOp,
    CirculationReply,
    CirculationRequest,
    DeviceStatus,
    Kind,
    TopicParts,
    expires_in,
    new_event_id,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink

from kiosk.replies import ReplyWaiter

log = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The backend did not answer within the deadline, or is known to be offline."""


class Availability:
    """Is the backend reachable? Fed by status messages, deadlines and answers; reports changes."""

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._online = True  # until something says otherwise: the first request finds out
        self._listeners: list[Callable[[bool], None]] = [on_change] if on_change else []

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    @property
    def online(self) -> bool:
        with self._lock:
            return self._online

    def set(self, online: bool, why: str) -> None:
        with self._lock:
            changed = online != self._online
            self._online = online
        if changed:
            (log.info if online else log.warning)("backend %s: %s", "online" if online else "offline", why)
            for listener in list(self._listeners):
                listener(online)


class CirculationClient:
    def __init__(self, link: MqttLink, *, site: str, root: str, kiosk_id: str, backend_id: str,
                 deadline_s: float, availability: Availability | None = None) -> None:
        self._link = link
        self._kiosk_id = kiosk_id
        self._deadline_s = deadline_s
        self.availability = availability or Availability()
        self._request_topic = topic(site, Kind.BACKEND, backend_id, Channel.CMD, "circulation", root=root)
        self.reply_topic = topic(site, Kind.KIOSK, kiosk_id, Channel.REPLY, "circulation", root=root)
        self._status_topic = topic(site, Kind.BACKEND, backend_id, Channel.STATUS, root=root)
        self._replies: ReplyWaiter[CirculationReply] = ReplyWaiter()

    @property
    def deadline_s(self) -> float:
        return self._deadline_s

    def subscribe(self) -> None:
        self._link.subscribe(self.reply_topic, CirculationReply, self._replies.deliver)
        self._link.subscribe(self._status_topic, DeviceStatus, self._on_backend_status)

    def _on_backend_status(self, parts: TopicParts, status: DeviceStatus) -> None:
        # "online" is a hint, not proof: the next answered request (or replay) confirms it.
        self.availability.set(status.online, "status topic says " + ("online" if status.online else "offline"))

    def new_request(self, op: CirculationOp, *, idempotency_key: str | None = None, **fields: Any) -> CirculationRequest:
        return CirculationRequest(
            kiosk_id=self._kiosk_id, op=op, idempotency_key=idempotency_key or new_event_id(),
            reply_to=self.reply_topic, expires_at=expires_in(self._deadline_s), **fields,
        )

    def refreshed(self, request: CirculationRequest, **update: Any) -> CirculationRequest:
        """The same transaction (same idempotency key) as a new message with a fresh deadline."""
        return request.model_copy(update={
            "event_id": new_event_id(), "correlation_id": new_event_id(), "sent_at": utcnow(),
            "expires_at": expires_in(self._deadline_s),
            "reply_to": self.reply_topic, **update,
        })

    def call(self, request: CirculationRequest, *, deadline_s: float | None = None) -> CirculationReply:
        """Send ``request`` and wait for its answer; raises BackendUnavailable after the deadline."""
        if not self._link.connected.is_set():
            self.availability.set(False, "no broker connection")
            raise BackendUnavailable("the kiosk is not connected to the broker")
        future = self._replies.expect(request.correlation_id)
        self._link.publish(self._request_topic, request)
        try:
            reply = future.result(timeout=deadline_s or self._deadline_s)
        except FutureTimeout:
            self._replies.forget(request.correlation_id)
            self.availability.set(False, f"no answer to {request.op.value} within {deadline_s or self._deadline_s:.1f} s")
            raise BackendUnavailable(f"no answer to {request.op.value} within the deadline") from None
        self.availability.set(True, f"answered {request.op.value}")
        return reply
