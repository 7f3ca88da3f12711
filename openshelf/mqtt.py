"""The one MQTT helper every OpenShelf process uses.

It connects with the device's own credentials, announces ``online`` on its
retained status topic with a Last Will saying ``offline``, reconnects with a
backoff capped at a few seconds, replays its subscriptions after every
reconnect, validates every inbound payload against the contract model before a
handler sees it, drops duplicates (QoS 1 may deliver twice) and expired
commands, and keeps counters of all of that.

Handlers run on the MQTT network thread and must be quick; asyncio services
wrap them with :func:`to_loop`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from openshelf.contract import (
    Command,
    DeviceStatus,
    Message,
    TopicError,
    TopicParts,
    parse_topic,
)
from openshelf.site import BrokerSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[TopicParts, M], None]

# Called with (topic, exception) whenever a handler raises. Tests append a hook that
# fails the test, so an exception swallowed here can never pass unnoticed.
HANDLER_ERROR_HOOKS: list[Callable[[str, BaseException], None]] = []

_DEDUP_WINDOW = 8192
_QOS = 1


@dataclass
class LinkStats:
    received: int = 0
    malformed: int = 0
    duplicates: int = 0
    expired: int = 0
    handler_errors: int = 0
    connects: int = 0
    published: int = 0


@dataclass
class _Subscription(Generic[M]):
    topic_filter: str
    model: type[M]
    handler: Handler[M]
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)


class MqttLinkError(Exception):
    pass


class MqttLink:
    """A long-lived connection for one device (or service) identity."""

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        client_id: str,
        status_topic: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._broker = broker
        self._client_id = client_id
        self._status_topic = status_topic
        self._subscriptions: dict[str, _Subscription[Any]] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self._session_up = False  # guarded by _lock: subscriptions made now reach the broker
        self.stats = LinkStats()
        self._started = False
        self._client = self._build_client(username, password)

    # ------------------------------------------------------------------ setup

    def _build_client(self, username: str | None, password: str | None) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        if username is not None:
            client.username_pw_set(username, password)
        if self._broker.tls:
            client.tls_set(ca_certs=str(self._broker.ca_file) if self._broker.ca_file else None,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self._broker.max_reconnect_delay_s)))
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(0)
        if self._status_topic:
            client.will_set(self._status_topic, DeviceStatus(online=False).model_dump_json(), qos=_QOS, retain=True)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    @staticmethod
    def _on_socket_open(client: paho.Client, userdata: Any, sock: Any) -> None:
        # Nagle's algorithm alone adds 40-90 ms per hop; every hop here is latency-critical.
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            log.debug("could not set TCP_NODELAY on %r", sock)

    # ------------------------------------------------------------------ lifecycle

    def start(self, wait_s: float | None = 10.0) -> bool:
        """Connect in the background; with ``wait_s`` wait that long for the first connection."""
        if self._started:
            raise MqttLinkError("link already started")
        self._started = True
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=self._broker.keepalive_s)
        self._client.loop_start()
        if wait_s is None:
            return self.connected.is_set()
        return self.connected.wait(wait_s)

    def stop(self) -> None:
        """Say ``offline`` (a clean stop does not fire the Last Will) and disconnect."""
        if not self._started:
            return
        if self._status_topic and self.connected.is_set():
            info = self._client.publish(
                self._status_topic, DeviceStatus(online=False).model_dump_json(), qos=_QOS, retain=True
            )
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                log.debug("offline status not confirmed before disconnect")
        self._started = False  # a disconnect we asked for is not worth a warning
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    # ------------------------------------------------------------------ publish / subscribe

    def publish(self, topic_name: str, message: Message, *, retain: bool = False) -> paho.MQTTMessageInfo:
        info = self._client.publish(topic_name, message.model_dump_json(), qos=_QOS, retain=retain)
        self.stats.published += 1
        return info

    def subscribe(self, topic_filter: str, model: type[M], handler: Handler[M]) -> None:
        """Deliver every valid ``model`` published on ``topic_filter`` to ``handler``.

        Subscriptions are remembered and replayed after each reconnect.
        """
        with self._lock:
            self._subscriptions[topic_filter] = _Subscription(topic_filter, model, handler)
            session_up = self._session_up
        if session_up:
            self._client.subscribe(topic_filter, qos=_QOS)

    # ------------------------------------------------------------------ callbacks

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%s refused %s: %s", self._broker.host, self._broker.port, self._client_id, reason_code)
            return
        self.stats.connects += 1
        if self.stats.connects > 1:
            log.info("reconnected to broker %s:%s as %s", self._broker.host, self._broker.port, self._client_id)
        with self._lock:
            # From here on subscribe() sends its own SUBSCRIBE; before, the replay below covers it.
            self._session_up = True
            filters = list(self._subscriptions)
        for topic_filter in filters:
            client.subscribe(topic_filter, qos=_QOS)
        if self._status_topic:
            client.publish(self._status_topic, DeviceStatus(online=True).model_dump_json(), qos=_QOS, retain=True)
        self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was_connected = self.connected.is_set()
        with self._lock:
            self._session_up = False
        self.connected.clear()
        if was_connected and self._started:  # not while stop() is disconnecting
            log.warning("lost broker connection (%s); reconnecting", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.stats.received += 1
        subscription = self._match(msg.topic)
        if subscription is None:
            return
        try:
            parts = parse_topic(msg.topic)
            message = subscription.model.model_validate_json(msg.payload)
        except (TopicError, ValidationError, ValueError) as exc:
            self.stats.malformed += 1
            log.warning("dropped malformed message on %s: %s", msg.topic, _short_reason(exc))
            return
        if self._is_duplicate(subscription, message.event_id):
            self.stats.duplicates += 1
            return
        if isinstance(message, Command) and message.expired():
            self.stats.expired += 1
            log.info("ignored expired command on %s (expired %s)", msg.topic, message.expires_at.isoformat())
            return
        try:
            subscription.handler(parts, message)
        except Exception as exc:  # noqa: BLE001 - a bad handler must not kill the network thread
            self.stats.handler_errors += 1
            log.exception("handler for %s failed", msg.topic)
            for hook in list(HANDLER_ERROR_HOOKS):
                hook(msg.topic, exc)

    def _match(self, topic_name: str) -> _Subscription[Any] | None:
        with self._lock:
            for topic_filter, subscription in self._subscriptions.items():
                if paho.topic_matches_sub(topic_filter, topic_name):
                    return subscription
        return None

    @staticmethod
    def _is_duplicate(subscription: _Subscription[Any], event_id: str) -> bool:
        seen = subscription.seen
        if event_id in seen:
            return True
        seen[event_id] = None
        if len(seen) > _DEDUP_WINDOW:
            seen.popitem(last=False)
        return False


def _short_reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        return f"{where}: {first['msg']} ({exc.error_count()} error(s))"
    return str(exc)


def to_loop(loop: asyncio.AbstractEventLoop, handler: Handler[M]) -> Handler[M]:
    """Wrap a handler so it runs on ``loop`` instead of the MQTT network thread."""

    def forward(parts: TopicParts, message: M) -> None:
        loop.call_soon_threadsafe(handler, parts, message)

    return forward
